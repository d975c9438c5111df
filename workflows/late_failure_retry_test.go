package workflows_test

import (
	"slices"
	"testing"
	"time"

	"dunning/activities"
	"dunning/workflows"
)

// tenDayInput is a life with one retry, an hour after the first failure,
// and ten days' grace: the schedule is spent long before the suspension.
func tenDayInput() workflows.RecoveryInput {
	in := input()
	in.Settings.RetrySchedule = []time.Duration{time.Hour}
	in.Settings.GracePeriod = 10 * day
	in.Settings.DeprovisionAfter = 20 * day
	return in
}

// confirmsOf are the indexes of the confirms of intent, declined or not.
func confirmsOf(w *world, intent string) []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var idx []int
	for i, r := range w.retries {
		if r.IntentID == intent {
			idx = append(idx, i)
		}
	}
	return idx
}

// joins makes pi_2 fail, and join the life, at d.
func (rt *recoveryTest) joins(d time.Duration) {
	rt.signal(d, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(d)))
}

// toldOfItsRetry checks, half an hour after pi_2 joined at joined, that it
// was not confirmed at once on the card that just declined it, and that
// its one notice names its retry, an interval (1h) after it joined.
func (rt *recoveryTest) toldOfItsRetry(joined time.Duration) {
	rt.at(joined+30*time.Minute, func() {
		if n := len(confirmsOf(rt.w, "pi_2")); n != 0 {
			rt.t.Errorf("%d confirms of pi_2 half an hour after it joined, want none on the card that just declined it", n)
		}
		told := rt.w.noticesFor("pi_2")
		if len(told) != 1 || told[0].NextActionAt == nil || !told[0].NextActionAt.Equal(t0.Add(joined+time.Hour)) {
			rt.t.Errorf("pi_2's notices %+v; want one naming its retry at %s", told, t0.Add(joined+time.Hour))
		}
	})
}

// recoveredByOwnRetry runs in, in which pi_2 joins at joined and the card
// is funded from then on (every confirm pays), and checks that pi_2's own
// retry, an interval (1h) after it joined, takes every payment owed: the
// customer is recovered soon after it, never suspended.
func recoveredByOwnRetry(t *testing.T, in workflows.RecoveryInput, joined time.Duration) {
	t.Helper()
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
	rt.joins(joined)
	res := rt.run(in)
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

// A second payment fails on day 2 of a ten-day grace whose one retry was
// made at +1h. Told of it, the customer is not taken away from without
// dunning ever retrying it: it is confirmed once, an interval of the
// schedule (1h) after it joined, not at once on the card that just
// declined it; its notice names that retry. Declined again, the
// customer is suspended on the deadline, once, after that retry.
func TestFailureJoiningAfterTheScheduleIsRetriedBeforeTheSuspension(t *testing.T) {
	rt := newRecoveryTest(t)
	joined := 2 * day
	rt.joins(joined)
	rt.toldOfItsRetry(joined)
	rt.at(joined+2*time.Hour, func() {
		got := confirmsOf(rt.w, "pi_2")
		if len(got) != 1 {
			t.Fatalf("%d confirms of pi_2 by two hours after it joined (confirms at %v), want one", len(got), rt.w.retryTimes)
		}
		if at := rt.w.retryTimes[len(rt.w.retryTimes)-1]; !at.Equal(t0.Add(joined + time.Hour)) {
			t.Errorf("pi_2 confirmed at %s, want an hour after it joined (%s)", at, t0.Add(joined+time.Hour))
		}
		if s := rt.status(); !s.RetryAt.IsZero() || s.Stage != workflows.StagePastDue {
			t.Errorf("stage %s, next retry %s; want past_due, no retry left", s.Stage, s.RetryAt)
		}
	})
	rt.at(10*day+time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended || !equal(rt.w.controlActions(), []string{"suspend"}) {
			t.Errorf("past the deadline: stage %s, control plane %v; want suspended once", s.Stage, rt.w.controlActions())
		}
		if n := len(confirmsOf(rt.w, "pi_2")); n != 1 {
			t.Errorf("%d confirms of pi_2 before the suspension, want 1", n)
		}
	})
	rt.waive(10*day + 2*time.Hour)
	rt.run(tenDayInput())
}

// The same, and the card is funded by then: the retry of the payment that
// joined late takes every payment owed, and the customer is recovered,
// never suspended.
func TestFailureJoiningAfterTheScheduleIsRecoveredByItsRetry(t *testing.T) {
	recoveredByOwnRetry(t, tenDayInput(), 2*day)
}

// A suspended customer pays pi_1 at +12h, after every retry of the
// schedule (+1h, +2h, +3h); Stripe lists pi_2 unpaid, the account is
// given back and the life goes on past due for it. pi_2 is confirmed
// once, an interval (1h) after it was taken up, before it can suspend
// the customer again.
func TestPaymentFoundAsASuspendedCustomerPaysIsRetriedBeforeTheNextSuspension(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.w.unpaid = []activities.UnpaidPayment{secondFailure()}
	paid := 12 * time.Hour
	rt.payPI1(paid)
	rt.at(paid+30*time.Minute, func() {
		if s := rt.status(); s.Stage != workflows.StagePastDue || len(confirmsOf(rt.w, "pi_2")) != 0 {
			t.Errorf("stage %s, %d confirms of pi_2; want past_due, none at once", s.Stage, len(confirmsOf(rt.w, "pi_2")))
		}
	})
	rt.at(paid+joinedLead+time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended || !equal(rt.w.controlActions(), []string{"suspend", "resume", "suspend"}) {
			t.Errorf("stage %s, control plane %v; want suspended again for pi_2", s.Stage, rt.w.controlActions())
		}
		got := confirmsOf(rt.w, "pi_2")
		if len(got) != 1 || !rt.w.retryTimes[len(rt.w.retryTimes)-1].Equal(t0.Add(paid+time.Hour)) {
			t.Errorf("pi_2 confirmed %d times (declines at %v), want once, an hour after it was taken up", len(got), rt.w.retryTimes)
		}
	})
	rt.waive(paid + joinedLead + 2*time.Hour)
	rt.run(input())
}

// pi_1 was in flight when the customer was first told (of pi_2), and its
// debit fails at +8h, after every retry of the schedule. It is confirmed
// once, an hour later, before the suspension half the grace period after
// its notice (+13h).
func TestPaymentInFlightThatFailsAfterTheScheduleIsRetriedBeforeTheSuspension(t *testing.T) {
	rt := inFlightThenSecond(t)
	rt.debitFails(8*time.Hour, true)
	before := -1
	rt.at(8*time.Hour+time.Minute, func() { before = len(confirmsOf(rt.w, "pi_1")) })
	rt.at(13*time.Hour+10*time.Minute, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended {
			t.Errorf("stage %s, want suspended", s.Stage)
		}
		if got := len(confirmsOf(rt.w, "pi_1")) - before; got != 1 || !slices.ContainsFunc(rt.w.retryTimes, t0.Add(9*time.Hour).Equal) {
			t.Errorf("%d confirms of pi_1 after its debit failed (declines at %v), want one at +9h", got, rt.w.retryTimes)
		}
	})
	rt.waive(13*time.Hour + 20*time.Minute)
	rt.run(input())
}

// The schedule waits five hours, and a second payment fails at +9h, its
// one retry made: the interval would bring its own retry at +14h, the
// very deadline (half the grace period after its notice). It is retried
// shortly before it instead, at +13h, and the customer suspended at +14h
// only after that retry declined.
func TestFailureJoiningAfterTheScheduleIsRetriedBeforeASoonerDeadline(t *testing.T) {
	rt := newRecoveryTest(t)
	in := input()
	in.Settings.RetrySchedule = []time.Duration{5 * time.Hour}
	joined := 9 * time.Hour
	rt.joins(joined)
	rt.at(joined+time.Minute, func() {
		if s := rt.status(); !s.SuspendAt.Equal(t0.Add(14*time.Hour)) || !s.RetryAt.Equal(t0.Add(13*time.Hour)) {
			t.Errorf("suspend_at %s, next retry %s; want the retry at +13h, an hour before the suspension at +14h", s.SuspendAt, s.RetryAt)
		}
	})
	rt.at(14*time.Hour+10*time.Minute, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended {
			t.Errorf("stage %s, want suspended", s.Stage)
		}
		got := confirmsOf(rt.w, "pi_2")
		if len(got) != 1 || !slices.ContainsFunc(rt.w.retryTimes, t0.Add(13*time.Hour).Equal) {
			t.Errorf("pi_2 confirmed %d times (declines at %v), want once, at +13h", len(got), rt.w.retryTimes)
		}
	})
	rt.waive(14*time.Hour + 20*time.Minute)
	rt.run(in)
}
