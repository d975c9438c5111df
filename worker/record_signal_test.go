package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/activities"
	"dunning/workflows"
)

// TestRecordRetryNowSignalHistory records, as TestRecordHistories does
// (set DUNNING_RECORD_HISTORIES), a recovery in which an operator's
// retry_now, sent as a signal (the UI's Send Signal), is judged in the
// workflow while the card last tried is stopped and a card event named
// another payment method since: recovery-cus_sig_retrynow_rejected was
// recorded before retry-now-judges-the-charge, and refused it;
// recovery-cus_sig_retrynow_accepted since. The workflow runs on a worker
// of its own with the activities dry, and is sent its signals directly.
func TestRecordRetryNowSignalHistory(t *testing.T) {
	dir := recordDir(t)
	const q = "dunning-sig"
	tmp, w := dryRecorder(t, q)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	cus := "cus_sigretry"
	id := workflows.RecoveryWorkflowID(cus)
	now := time.Now()
	f := workflows.PaymentFailedSignal{EventID: "evt_sig_failed", Created: now, Intent: workflows.PaymentIntentInfo{
		ID: "pi_sig", Amount: 4900, Currency: "usd", InvoiceID: "in_sig", DeclineCode: "stolen_card", PaymentMethodID: "pm_1",
		Decline: activities.Decline{Code: "card_declined", DeclineCode: "stolen_card", PaymentMethod: "pm_1", Fingerprint: "fp_1"}}}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{time.Hour}, GracePeriod: 10 * time.Hour, DeprovisionAfter: 10 * time.Hour,
		CardUpdateDebounce: time.Hour, MaxGraceExtension: 48 * time.Hour}}
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, f,
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
		EventID: "evt_sig_card", Created: time.Now(), PaymentMethodID: "pm_2", Source: "payment_method.attached"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	v, err := tmp.Client.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var s workflows.RecoveryState
	if err := v.Get(&s); err != nil {
		t.Fatal(err)
	}
	outcome := ""
	for _, a := range s.Actions {
		if a.Kind == "operator: "+workflows.ControlRetryNow || a.Kind == "operator: retry now" {
			outcome = "accepted"
			if strings.HasPrefix(a.Outcome, "rejected") {
				outcome = "rejected"
			}
		}
	}
	if outcome == "" {
		t.Fatalf("retry_now not applied: %+v", s.Actions)
	}
	waiveAndRecord(t, tmp, dir, "recovery-cus_sig_retrynow_"+outcome, id)
}
