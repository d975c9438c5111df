package workflows_test

import (
	"testing"
	"time"

	"dunning/workflows"
)

// The first scheduled retry (+1h) declines, and the mailer takes three
// hours to take its payment_retry_failed notice (an outage its retries
// ride through): the round ends at +4h, past the second (+2h) and third
// (+3h) retries of the schedule. They are not made up back to back on
// the card that just declined: one retry more, an interval (1h) on.
func TestRetriesMissedDuringALongRoundAreNotMadeUpInABurst(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.noticeDelay = map[string]time.Duration{"payment_retry_failed": 3 * time.Hour} })
	rt.at(4*time.Hour+30*time.Minute, func() {
		s := rt.status()
		if len(rt.w.retries) != 1 {
			t.Errorf("%d confirms by +4h30m, want 1: the retries missed during the round are not made up at once", len(rt.w.retries))
		}
		if n := countPrefix(rt.w.noticeTypes(), "payment_retry_failed"); n != 1 {
			t.Errorf("notices %v, want one payment_retry_failed", rt.w.noticeTypes())
		}
		if want := t0.Add(5 * time.Hour); !s.RetryAt.Equal(want) {
			t.Errorf("next retry at %s, want %s (one interval after the round)", s.RetryAt, want)
		}
	})
	rt.at(5*time.Hour+5*time.Minute, func() {
		if len(rt.w.retries) != 2 {
			t.Errorf("%d confirms by +5h05m, want 2", len(rt.w.retries))
		}
		if s := rt.status(); !s.RetryAt.IsZero() {
			t.Errorf("next retry at %s after the schedule's last, want none", s.RetryAt)
		}
		rt.env.CancelWorkflow()
	})
	rt.signal(0, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, input())
}

// An operator pauses the recovery at +30m, over the three scheduled
// retries (+1h, +2h, +3h), and resumes it at +4h: the deadlines move by
// the pause, and the card is confirmed once at the first retry after the
// resume, not once per retry the pause went over.
func TestPauseOverScheduledRetriesResumesWithOneConfirm(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.update(30*time.Minute, workflows.ControlPause, workflows.OperatorRequest{Reason: "disputed"}, mustAccept(t, "pause"))
	rt.update(4*time.Hour, workflows.ControlResume, workflows.OperatorRequest{}, mustAccept(t, "resume"))
	rt.at(4*time.Hour+35*time.Minute, func() {
		if len(rt.w.retries) != 1 {
			t.Errorf("%d confirms by +4h35m, want 1 (the first retry, moved by the pause to +4h30m)", len(rt.w.retries))
		}
		if n := countPrefix(rt.w.noticeTypes(), "payment_retry_failed"); n != 1 {
			t.Errorf("notices %v, want one payment_retry_failed", rt.w.noticeTypes())
		}
		rt.env.CancelWorkflow()
	})
	rt.signal(0, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, input())
}
