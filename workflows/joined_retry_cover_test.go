package workflows_test

import (
	"testing"
	"time"

	"dunning/workflows"
)

// longScheduleInput is a life whose last retry, at +20h, comes after the
// ten-hour grace period: a payment that fails after the second retry
// (+2h) has no retry of the schedule before the suspension.
func longScheduleInput() workflows.RecoveryInput {
	in := input()
	in.Settings.RetrySchedule = []time.Duration{time.Hour, 2 * time.Hour, 20 * time.Hour}
	return in
}

// A second payment fails at +4h; the schedule's next retry is at +20h,
// after the suspension at +10h. It is not taken as covering pi_2: pi_2
// gets a round of its own an interval (1h) after its notice, before the
// suspension, and named in that notice. Declined again, the customer is
// suspended on the deadline, and the schedule goes on as it was: its
// last retry is made at +20h, once.
func TestFailureJoiningBeforeALateScheduledRetryIsRetriedBeforeTheSuspension(t *testing.T) {
	rt := newRecoveryTest(t)
	joined := 4 * time.Hour
	rt.joins(joined)
	rt.toldOfItsRetry(joined)
	rt.at(joined+30*time.Minute, func() {
		if s := rt.status(); !s.RetryAt.Equal(t0.Add(20*time.Hour)) || s.RetriesDone != 2 {
			t.Errorf("schedule %d done, next %s; want 2 done, the next at +20h as it was", s.RetriesDone, s.RetryAt)
		}
	})
	rt.at(10*time.Hour+10*time.Minute, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended || !equal(rt.w.controlActions(), []string{"suspend"}) {
			t.Errorf("past the deadline: stage %s, control plane %v; want suspended once", s.Stage, rt.w.controlActions())
		}
		got := confirmsOf(rt.w, "pi_2")
		if len(got) != 1 || !rt.w.retryTimes[got[0]].Equal(t0.Add(joined+time.Hour)) {
			t.Errorf("pi_2 confirmed %d times before the suspension (confirms at %v), want once, at +5h", len(got), rt.w.retryTimes)
		}
	})
	rt.at(20*time.Hour+10*time.Minute, func() {
		s := rt.status()
		got := confirmsOf(rt.w, "pi_2")
		if s.RetriesDone != 3 || len(got) != 2 || !rt.w.retryTimes[got[1]].Equal(t0.Add(20*time.Hour)) {
			t.Errorf("schedule %d done, pi_2 confirmed at %v; want the schedule's last retry made at +20h, once", s.RetriesDone, rt.w.retryTimes)
		}
	})
	rt.waive(20*time.Hour + 20*time.Minute)
	rt.run(longScheduleInput())
}

// The same, and the card is funded by then: pi_2's own retry takes every
// payment owed, and the customer is recovered at +5h, never suspended.
func TestFailureJoiningBeforeALateScheduledRetryIsRecoveredByItsOwnRetry(t *testing.T) {
	recoveredByOwnRetry(t, longScheduleInput(), 4*time.Hour)
}
