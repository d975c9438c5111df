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
	ctx := context.Background()
	cus := "cus_retrynow_recheck"
	settings := lifeSettings(8*time.Second, time.Hour, 2*time.Second)
	id, _ := startLife(t, tmp, w, q, cus, settings, declinedOn(failedEvent("evt_recheck_failed", "pi_recheck", 4900), "pm_1", "fp_1"))
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
