package worker_test

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/workflows"
)

// TestRecordMoneyOnceHistory records, as TestRecordHistories does (set
// DUNNING_RECORD_HISTORIES), recovery-cus_money_credited: a life whose
// invoice is tried by two intents (the second after the first), then
// paid by a credit note (invoice.paid with amount_paid 0), under
// money-once. The workflow runs on a worker of its own with the
// activities dry, and is sent its signals directly.
func TestRecordMoneyOnceHistory(t *testing.T) {
	dir := recordDir(t)
	const q = "dunning-money"
	tmp, w := dryRecorder(t, q)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	cus := "cus_moneyonce"
	id := workflows.RecoveryWorkflowID(cus)
	failed := func(event, intent string) workflows.PaymentFailedSignal {
		return workflows.PaymentFailedSignal{EventID: event, Created: time.Now(), Intent: workflows.PaymentIntentInfo{
			ID: intent, Amount: 4900, Currency: "usd", InvoiceID: "in_money", DeclineCode: "insufficient_funds"}}
	}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{time.Hour}, GracePeriod: 10 * time.Hour, DeprovisionAfter: 10 * time.Hour,
		CardUpdateDebounce: time.Hour, MaxGraceExtension: 48 * time.Hour}}
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, failed("evt_money_1", "pi_money_1"),
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaymentFailed, failed("evt_money_2", "pi_money_2")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	nothing := int64(0)
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_money_paid",
		Created: time.Now(), InvoiceID: "in_money", Source: workflows.EventInvoicePaid, AmountPaid: &nothing}); err != nil {
		t.Fatal(err)
	}
	var res workflows.RecoveryResult
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := tmp.Client.GetWorkflow(wctx, id, "").Get(wctx, &res); err != nil {
		t.Fatal(err)
	}
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
	recordHistory(t, tmp, dir, "recovery-cus_money_credited", id)
}
