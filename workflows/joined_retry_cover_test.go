package workflows_test

import (
	"slices"
	"testing"
	"time"

	"dunning/activities"
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
	rt.signal(joined, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(joined)))
	rt.at(joined+30*time.Minute, func() {
		if n := len(confirmsOf(rt.w, "pi_2")); n != 0 {
			t.Errorf("%d confirms of pi_2 half an hour after it joined, want none on the card that just declined it", n)
		}
		told := rt.w.noticesFor("pi_2")
		if len(told) != 1 || told[0].NextActionAt == nil || !told[0].NextActionAt.Equal(t0.Add(joined+time.Hour)) {
			t.Errorf("pi_2's notices %+v; want one naming its retry at %s", told, t0.Add(joined+time.Hour))
		}
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
	rt.update(20*time.Hour+20*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
	rt.run(longScheduleInput())
}

// The same, and the card is funded by then: pi_2's own retry takes every
// payment owed, and the customer is recovered at +5h, never suspended.
func TestFailureJoiningBeforeALateScheduledRetryIsRecoveredByItsOwnRetry(t *testing.T) {
	joined := 4 * time.Hour
	rt := newRecoveryTest(t, func(w *world) {
		w.retryHook = func(in activities.RetryInput) (activities.RetryResult, error, bool) {
			if w.now().Before(t0.Add(joined)) {
				return activities.RetryResult{}, nil, false
			}
			w.retries = append(w.retries, in)
			w.retryTimes = append(w.retryTimes, w.now())
			w.paidIntents[in.IntentID] = true
			return activities.RetryResult{Outcome: activities.RetrySucceeded, Status: "succeeded", AmountReceived: 4900}, nil, true
		}
	})
	rt.signal(joined, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(joined)))
	res := rt.run(longScheduleInput())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered by pi_2's own retry", res.Stage)
	}
	if len(rt.w.controls) != 0 || slices.Contains(rt.w.noticeTypes(), "account_suspended") {
		t.Errorf("control plane %v, notices %v; want nothing taken away", rt.w.controlActions(), rt.w.noticeTypes())
	}
	got := confirmsOf(rt.w, "pi_2")
	if len(got) != 1 || !rt.w.retryTimes[got[0]].Equal(t0.Add(joined+time.Hour)) {
		t.Errorf("pi_2 confirmed %d times at %v, want once, an hour after it joined", len(got), rt.w.retryTimes)
	}
	if end := rt.env.Now(); end.After(t0.Add(joined + 2*time.Hour)) {
		t.Errorf("the life ended at +%s, want soon after pi_2's retry", end.Sub(t0))
	}
}
