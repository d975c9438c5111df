package worker_test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/activities"
	"dunning/workflows"
)

// TestRecordJoinedRetryCoverHistory records, as TestRecordHistories does
// (set DUNNING_RECORD_HISTORIES), recovery-cus_joined_cover: a life whose
// schedule (+2s, +40s) outlasts its grace period (20s). The first retry
// (+2s) declines; a second payment fails at +5s, when the schedule's next
// retry (+40s) comes after the suspension (+20s). It gets a round of its
// own an interval (2s) after its notice (joined-retry-before-deadline);
// that round pays both and the life ends recovered, never suspended.
// recovery-cus_joined_cover_before was recorded by this recorder on the
// code before the change, with DUNNING_RECORD_BEFORE=1: there the retry
// at +40s was taken as covering the second payment, the customer was
// suspended at +20s without it retried, and an operator waived the life.
func TestRecordJoinedRetryCoverHistory(t *testing.T) {
	dir := recordDir(t)
	before := os.Getenv("DUNNING_RECORD_BEFORE") != ""
	const q = "dunning-joined-cover"
	tmp, w := dryRecorder(t, q)
	owedStandIn(w, "pm_1", "fp_1", nil)
	confirm := newConfirmStandIn(w, confirmAnswer{declineOn: "fp_1"}, pays)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	cus := "cus_joined_cover"
	id := workflows.RecoveryWorkflowID(cus)
	failure := func(event, intent string) workflows.PaymentFailedSignal {
		return workflows.PaymentFailedSignal{EventID: event, Created: time.Now(), Intent: workflows.PaymentIntentInfo{
			ID: intent, Amount: 4900, Currency: "usd", InvoiceID: "in_" + intent, DeclineCode: "insufficient_funds", PaymentMethodID: "pm_1",
			Decline: activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentMethod: "pm_1", Fingerprint: "fp_1"}}}
	}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{2 * time.Second, 40 * time.Second}, GracePeriod: 20 * time.Second, DeprovisionAfter: time.Hour,
		CardUpdateDebounce: time.Second, MaxGraceExtension: 48 * time.Hour}}
	started := time.Now()
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, failure("evt_cover_first", "pi_cover_1"),
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(started.Add(5 * time.Second)))
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaymentFailed, failure("evt_cover_second", "pi_cover_2")); err != nil {
		t.Fatal(err)
	}
	if before {
		time.Sleep(time.Until(started.Add(23 * time.Second)))
		v, err := tmp.Client.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
		if err != nil {
			t.Fatal(err)
		}
		var s workflows.RecoveryState
		if err := v.Get(&s); err != nil {
			t.Fatal(err)
		}
		if n := confirm.count(); s.Stage != workflows.StageSuspended || n != 1 {
			t.Fatalf("stage %s after %d confirms; want the code before the change: suspended, the second payment never retried", s.Stage, confirm.count())
		}
		waiveAndRecord(t, tmp, dir, "recovery-cus_joined_cover_before", id)
		return
	}
	res := recoveryResult(t, tmp, id, time.Minute)
	var confirms []string
	var confirmedAt []time.Time
	for _, c := range confirm.asked() {
		confirms, confirmedAt = append(confirms, c.in.IntentID), append(confirmedAt, c.start)
	}
	t.Logf("stage %s, confirms %v at %v", res.Stage, confirms, confirmedAt)
	if res.Stage != workflows.StageRecovered || len(confirms) != 3 || !slices.Contains(confirms[1:], "pi_cover_2") ||
		!confirmedAt[2].Before(started.Add(20*time.Second)) {
		t.Fatalf("stage %s after confirms %v at %v; want recovered before the suspension by the second payment's own retry, which confirms both",
			res.Stage, confirms, confirmedAt)
	}
	recordHistory(t, tmp, dir, "recovery-cus_joined_cover", id)
}
