package worker_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/activities"
	"dunning/workflows"
)

// TestRecordRetryNowDuringTheRecheckHistory records, as
// TestRecordHistories does (set DUNNING_RECORD_HISTORIES),
// recovery-cus_retrynow_recheck: the scheduled retry (+2s) declines; the
// re-check before the suspension (+8s) waits three seconds for Stripe,
// and an operator's retry_now is accepted meanwhile. The suspension is
// deferred, the retry asked runs first and pays, and the life ends
// recovered, never suspended (retry-now-before-take-away).
// recovery-cus_retrynow_recheck_before was recorded by this recorder on
// the code before the change, with DUNNING_RECORD_BEFORE=1: there the
// customer was suspended first, then the retry paid and the account was
// resumed.
func TestRecordRetryNowDuringTheRecheckHistory(t *testing.T) {
	dir := recordDir(t)
	before := os.Getenv("DUNNING_RECORD_BEFORE") != ""
	const q = "dunning-retrynow-recheck"
	tmp, w := dryRecorder(t, q)
	started := time.Now()
	standIn(w, "IntentOwed", func(ctx context.Context, in activities.OwedInput) (activities.Owed, error) {
		if in.SkipCharge && time.Since(started) > 7*time.Second {
			time.Sleep(3 * time.Second) // the re-check before the suspension
		}
		return owedAnswer(in, "pm_1", "customer default", "fp_1"), nil
	})
	var mu sync.Mutex
	var controls []string
	standIn(w, "ControlPlane", func(ctx context.Context, in activities.ControlPlaneInput) (activities.ControlPlaneResult, error) {
		mu.Lock()
		defer mu.Unlock()
		controls = append(controls, in.Action)
		return activities.ControlPlaneResult{}, nil
	})
	confirms := newConfirmStandIn(w, confirmAnswer{declineOn: "fp_1"}, pays)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	cus := "cus_retrynow_recheck"
	id := workflows.RecoveryWorkflowID(cus)
	f := workflows.PaymentFailedSignal{EventID: "evt_recheck_failed", Created: time.Now(), Intent: workflows.PaymentIntentInfo{
		ID: "pi_recheck", Amount: 4900, Currency: "usd", InvoiceID: "in_recheck", DeclineCode: "insufficient_funds", PaymentMethodID: "pm_1",
		Decline: activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentMethod: "pm_1", Fingerprint: "fp_1"}}}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{2 * time.Second}, GracePeriod: 8 * time.Second, DeprovisionAfter: time.Hour,
		CardUpdateDebounce: time.Hour, MaxGraceExtension: 48 * time.Hour}}
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, f,
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	// The re-check before the suspension runs from about +8s to +11s.
	time.Sleep(time.Until(started.Add(9500 * time.Millisecond)))
	h, err := tmp.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: workflows.ControlRetryNow,
		Args: []any{workflows.OperatorRequest{Operator: "ops"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		t.Fatal(err)
	}
	var answer workflows.OperatorResult
	if err := h.Get(ctx, &answer); err != nil || !strings.Contains(answer.Message, "retrying") {
		t.Fatalf("retry_now: %+v %v; want accepted, retrying now", answer, err)
	}
	res := recoveryResult(t, tmp, id, time.Minute)
	mu.Lock()
	got := strings.Join(controls, ",")
	mu.Unlock()
	t.Logf("stage %s, control plane [%s], %d confirms", res.Stage, got, confirms.count())
	name := "recovery-cus_retrynow_recheck"
	want := ""
	if before {
		name, want = name+"_before", "suspend,resume"
	}
	if res.Stage != workflows.StageRecovered || got != want || confirms.count() != 2 {
		t.Fatalf("stage %s, control plane [%s], %d confirms; want recovered by the retry asked, control plane [%s]", res.Stage, got, confirms.count(), want)
	}
	recordHistory(t, tmp, dir, name, id)
}
