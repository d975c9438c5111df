package workflows_test

import (
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"dunning/activities"
	"dunning/workflows"
)

// retryFailedNotices counts the payment_retry_failed notices sent.
func retryFailedNotices(rt *recoveryTest) int {
	return countPrefix(rt.w.noticeTypes(), "payment_retry_failed")
}

// The first scheduled retry (+1h) declines, and the mailer takes three
// hours to take its payment_retry_failed notice: the round ends at +4h,
// past the second (+2h) and third (+3h) retries of the schedule. The card
// that just declined is not confirmed again at once, once per missed
// retry: one retry is still owed, an interval (1h) on, at +5h, well
// before the suspension (+10h).
func TestRetriesMissedDuringALongRoundAreNotMadeUpInABurst(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.noticeDelay = map[string]time.Duration{"payment_retry_failed": 3 * time.Hour} })
	rt.at(4*time.Hour+30*time.Minute, func() {
		if len(rt.w.retries) != 1 || retryFailedNotices(rt) != 1 {
			t.Errorf("by +4h30m: %d confirms at %v, notices %v; want 1 confirm and one payment_retry_failed: the retries missed during the round are not made up back to back",
				len(rt.w.retries), rt.w.retryTimes, rt.w.noticeTypes())
		}
		if s, want := rt.status(), t0.Add(5*time.Hour); !s.RetryAt.Equal(want) {
			t.Errorf("next retry at %s, want %s (one interval after the round)", s.RetryAt, want)
		}
	})
	rt.at(5*time.Hour+5*time.Minute, func() {
		if len(rt.w.retries) != 2 || retryFailedNotices(rt) != 2 {
			t.Errorf("by +5h05m: %d confirms at %v, notices %v; want 2 confirms and two payment_retry_failed", len(rt.w.retries), rt.w.retryTimes, rt.w.noticeTypes())
		}
		if s := rt.status(); !s.RetryAt.IsZero() {
			t.Errorf("next retry at %s after the schedule's last, want none", s.RetryAt)
		}
		rt.env.CancelWorkflow()
	})
	rt.signal(0, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, input())
}

// The mailer takes eleven hours to take the first retry's notice: the
// round (+1h) ends at +12h, past the two retries left (+2h, +3h) and the
// suspension (+10h). The customer is not suspended with a retry owed
// because dunning was late: exactly one more confirm, then the
// suspension; not one per missed retry.
func TestRoundPastTheDeadlineOwesOneRetryBeforeTheSuspension(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.noticeDelay = map[string]time.Duration{"payment_retry_failed": 11 * time.Hour} })
	rt.at(13*time.Hour, func() {
		s := rt.status()
		if s.Stage != workflows.StageSuspended {
			t.Errorf("stage %s at +13h, want suspended", s.Stage)
		}
		if len(rt.w.retries) != 2 || retryFailedNotices(rt) != 2 {
			t.Errorf("%d confirms at %v, notices %v; want 2 confirms (the first retry, then one for both missed) and two payment_retry_failed",
				len(rt.w.retries), rt.w.retryTimes, rt.w.noticeTypes())
		}
		if kinds := rt.w.noticeTypes(); countPrefix(kinds[:max(slices.Index(kinds, "account_suspended"), 0)], "payment_retry_failed") != 2 {
			t.Errorf("notices %v: want the owed retry made, and its failure told, before the suspension", kinds)
		}
		rt.env.CancelWorkflow()
	})
	rt.signal(0, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, input())
}

// The mailer takes two and a half hours to take the first notice
// (payment_failed): the life wakes for its retries at +2h30m, past the
// first (+1h) and second (+2h). No card declined since the failure
// dunning was told of: one retry runs at once for both, and the schedule
// goes on at its third (+3h).
func TestRetriesMissedByALateLifeRunOnceAtOnce(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.noticeDelay = map[string]time.Duration{"payment_failed": 150 * time.Minute} })
	rt.at(2*time.Hour+45*time.Minute, func() {
		if len(rt.w.retries) != 1 || retryFailedNotices(rt) != 1 {
			t.Errorf("by +2h45m: %d confirms at %v, notices %v; want 1 confirm (one for both missed retries) and one payment_retry_failed",
				len(rt.w.retries), rt.w.retryTimes, rt.w.noticeTypes())
		}
		if len(rt.w.retryTimes) > 0 && !rt.w.retryTimes[0].Equal(t0.Add(150*time.Minute)) {
			t.Errorf("first confirm at %s, want at once when the life woke (+2h30m)", rt.w.retryTimes[0])
		}
		if s, want := rt.status(), t0.Add(3*time.Hour); !s.RetryAt.Equal(want) || s.RetriesDone != 2 {
			t.Errorf("%d retries done, next at %s; want 2 done, the next at %s (the schedule's third)", s.RetriesDone, s.RetryAt, want)
		}
	})
	rt.at(3*time.Hour+5*time.Minute, func() {
		if len(rt.w.retries) != 2 {
			t.Errorf("by +3h05m: %d confirms at %v; want 2 (the third of the schedule)", len(rt.w.retries), rt.w.retryTimes)
		}
		rt.env.CancelWorkflow()
	})
	rt.signal(0, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, input())
}

// Stripe refuses the list for six hours after pi_1 is paid, while the
// first two retries of the schedule (+1h, +2h) fall due with nothing
// owed; pi_2, declined at +5h, is then adopted, and the customer told of
// it, which moves the suspension to +11h (the notice lead, 5h, after).
// The schedule's next retry (+20h) comes after the suspension: one retry
// of pi_2 is still owed before it, an interval (1h) after the adoption,
// not at once on the card that just declined.
func TestAdoptionOwesOneRetryBeforeTheSuspension(t *testing.T) {
	set := settings
	set.RetrySchedule = []time.Duration{time.Hour, 2 * time.Hour, 20 * time.Hour}
	rt := newRecoveryTest(t)
	second := secondFailure()
	second.Created = t0.Add(5 * time.Hour).Unix()
	rt.w.unpaid = []activities.UnpaidPayment{second}
	rt.w.unpaidErr = func() error {
		if rt.w.now().Before(t0.Add(6 * time.Hour)) {
			return temporal.NewNonRetryableApplicationError("403 this key may not list invoices", activities.ErrStripeRejected, nil)
		}
		return nil
	}
	rt.signal(30*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_1", Created: t0.Add(30 * time.Minute), IntentID: "pi_1", Source: "payment_intent.succeeded"})
	var adopted time.Time
	rt.at(6*time.Hour+31*time.Minute, func() {
		in := intentOf(rt.status(), "pi_2")
		if in == nil || in.AdoptedAt.IsZero() {
			t.Fatalf("pi_2 = %+v, want it adopted at +6h30m", in)
		}
		adopted = in.AdoptedAt
		if len(rt.w.retries) != 0 {
			t.Errorf("%d confirms at the adoption, want none on the card that just declined", len(rt.w.retries))
		}
	})
	rt.at(12*time.Hour, func() {
		s := rt.status()
		if s.Stage != workflows.StageSuspended {
			t.Errorf("stage %s at +12h, want suspended", s.Stage)
		}
		if len(rt.w.retries) != 1 || rt.w.retries[0].IntentID != "pi_2" || !rt.w.retryTimes[0].Equal(adopted.Add(time.Hour)) {
			t.Errorf("confirms %d at %v, want one of pi_2 an interval after its adoption (%s), before the suspension", len(rt.w.retries), rt.w.retryTimes, adopted.Add(time.Hour))
		}
		rt.env.CancelWorkflow()
	})
	rt.signal(0, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, workflows.RecoveryInput{StripeCustomerID: customer, Settings: set})
}
