package worker_test

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

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
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	cus := "cus_basil_invoice"
	id := workflows.RecoveryWorkflowID(cus)
	failure := workflows.PaymentFailedSignal{EventID: "evt_basil_failed", Created: time.Now(), Intent: workflows.PaymentIntentInfo{
		ID: "pi_basil", Amount: 4900, Currency: "usd", DeclineCode: "insufficient_funds"}}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{time.Hour}, GracePeriod: 2 * time.Hour, DeprovisionAfter: time.Hour,
		CardUpdateDebounce: time.Hour, MaxGraceExtension: 48 * time.Hour}}
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, failure,
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_basil_paid",
		Created: time.Now(), InvoiceID: "in_basil", Source: workflows.EventInvoicePaid}); err != nil {
		t.Fatal(err)
	}
	res := recoveryResult(t, tmp, id, time.Minute)
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered by the invoice.paid", res.Stage)
	}
	recordHistory(t, tmp, dir, "recovery-cus_basil_invoice", id)
}
