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

// TestRecordRetryNowAfterTheRoundsChargeHistory records, as
// TestRecordHistories does (set DUNNING_RECORD_HISTORIES),
// recovery-cus_retrynow_after: the scheduled retry's confirm is declined
// at once, and the mailer takes three seconds to take the customer's
// payment_retry_failed notice. An operator's retry_now comes meanwhile:
// the round begins no confirm after it, so the retry asked runs once the
// round ends (retry-now-after-the-rounds-charges), and pays.
func TestRecordRetryNowAfterTheRoundsChargeHistory(t *testing.T) {
	dir := recordDir(t)
	const q = "dunning-retrynow-after"
	tmp, w := dryRecorder(t, q)
	owedStandIn(w, "pm_1", "fp_1", nil)
	confirms := newConfirmStandIn(w, confirmAnswer{declineOn: "fp_1"}, pays)
	standIn(w, "Notice", func(ctx context.Context, in activities.NoticeInput) (activities.NotifyResult, error) {
		if in.Type == "payment_retry_failed" {
			time.Sleep(3 * time.Second)
		}
		return activities.NotifyResult{}, nil
	})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	cus := "cus_retrynow_after"
	id := workflows.RecoveryWorkflowID(cus)
	f := workflows.PaymentFailedSignal{EventID: "evt_after_failed", Created: time.Now(), Intent: workflows.PaymentIntentInfo{
		ID: "pi_after", Amount: 4900, Currency: "usd", InvoiceID: "in_after", DeclineCode: "insufficient_funds", PaymentMethodID: "pm_1",
		Decline: activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentMethod: "pm_1", Fingerprint: "fp_1"}}}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{2 * time.Second, time.Hour}, GracePeriod: 10 * time.Hour, DeprovisionAfter: 10 * time.Hour,
		CardUpdateDebounce: time.Hour, MaxGraceExtension: 48 * time.Hour}}
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, f,
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	// The retry at 2s is declined; its notice is taken from about 2s to 5s.
	deadline := time.Now().Add(30 * time.Second)
	for confirms.count() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	h, err := tmp.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: workflows.ControlRetryNow,
		Args: []any{workflows.OperatorRequest{Operator: "ops"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		t.Fatal(err)
	}
	var answer workflows.OperatorResult
	if err := h.Get(ctx, &answer); err != nil || !strings.Contains(answer.Message, "if it begins none, the retry asked runs once it ends") {
		t.Fatalf("retry_now: %+v %v; want it asked after the round's charge", answer, err)
	}
	res := recoveryResult(t, tmp, id, time.Minute)
	if res.Stage != workflows.StageRecovered || confirms.count() != 2 {
		t.Fatalf("stage %s after %d confirms; want recovered by the retry asked", res.Stage, confirms.count())
	}
	recordHistory(t, tmp, dir, "recovery-cus_retrynow_after", id)
}
