package worker_test

import (
	"slices"
	"testing"
	"time"

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
	before := recordingBefore()
	const q = "dunning-joined-cover"
	tmp, w := dryRecorder(t, q)
	owedStandIn(w, "pm_1", "fp_1", nil)
	confirm := newConfirmStandIn(w, confirmAnswer{declineOn: "fp_1"}, pays)
	id, started := startLife(t, tmp, w, q, "cus_joined_cover", lifeSettings(20*time.Second, time.Second, 2*time.Second, 40*time.Second),
		declinedOn(failedEvent("evt_cover_first", "pi_cover_1", 4900), "pm_1", "fp_1"))
	time.Sleep(time.Until(started.Add(5 * time.Second)))
	signal(t, tmp, id, workflows.SignalPaymentFailed, declinedOn(failedEvent("evt_cover_second", "pi_cover_2", 4900), "pm_1", "fp_1"))
	if before {
		time.Sleep(time.Until(started.Add(23 * time.Second)))
		if s, n := lifeStatus(t, tmp, id), confirm.count(); s.Stage != workflows.StageSuspended || n != 1 {
			t.Fatalf("stage %s after %d confirms; want the code before the change: suspended, the second payment never retried", s.Stage, n)
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
