package worker_test

import (
	"context"
	"testing"
	"time"

	"dunning/activities"
	"dunning/workflows"
)

// TestRecordBasilInvoicePaidHistory records, as TestRecordHistories does
// (set DUNNING_RECORD_HISTORIES), recovery-cus_basil_invoice: a failure
// of API version 2025-03-31.basil names no invoice; Stripe's owed check
// names it (invoice-from-stripe), so that the invoice.paid that follows,
// which names no intent, pays the intent and the life ends recovered.
// Stripe's owed check answers through a stand-in; everything else is dry.
func TestRecordBasilInvoicePaidHistory(t *testing.T) {
	dir := recordDir(t)
	const q = "dunning-basil-invoice"
	tmp, w := dryRecorder(t, q)
	standIn(w, "IntentOwed", func(ctx context.Context, in activities.OwedInput) (activities.Owed, error) {
		o := owedAnswer(in, "pm_card", "customer default", "fp_card")
		o.InvoiceID = "in_basil"
		return o, nil
	})
	// A basil event names no invoice on the intent: the owed read does.
	failure := failedEvent("evt_basil_failed", "pi_basil", 4900)
	failure.Intent.InvoiceID = ""
	id, _ := startLife(t, tmp, w, q, "cus_basil_invoice", lifeSettings(2*time.Hour, time.Hour, time.Hour), failure)
	time.Sleep(3 * time.Second)
	signal(t, tmp, id, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_basil_paid",
		Created: time.Now(), InvoiceID: "in_basil", Source: workflows.EventInvoicePaid})
	res := recoveryResult(t, tmp, id, time.Minute)
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered by the invoice.paid", res.Stage)
	}
	recordHistory(t, tmp, dir, "recovery-cus_basil_invoice", id)
}
