package workflows_test

import (
	"strings"
	"testing"
	"time"

	"dunning/workflows"
)

// inFlightThenSecond is a life whose first payment, pi_1, is in flight (a
// bank debit) when it opens, so nobody is told; pi_2 fails at +1h and the
// life's first payment_failed notice goes out then, for pi_2's money
// alone, while pi_1 is still processing.
func inFlightThenSecond(t *testing.T, opts ...func(*world)) *recoveryTest {
	rt := newRecoveryTest(t, append([]func(*world){func(w *world) { w.intentStatus["pi_1"] = "processing" }}, opts...)...)
	rt.signal(time.Hour, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(time.Hour)))
	return rt
}

// debitFails makes pi_1's debit fail at d: Stripe shows it unpaid from
// then on, and its payment_failed event comes at d when event is set.
func (rt *recoveryTest) debitFails(d time.Duration, event bool) {
	rt.at(d-time.Second, func() { rt.w.set(func() { rt.w.intentStatus["pi_1"] = "requires_payment_method" }) })
	if event {
		rt.signal(d, workflows.SignalPaymentFailed, failed("evt_debit_failed", "pi_1", t0.Add(d)))
	}
}

// lifeNotices are the payment_failed notices under the life's own key.
func (w *world) lifeNotices() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, x := range w.notices {
		if x.Type == "payment_failed" && strings.HasSuffix(x.Key, ":past_due:notice") {
			n++
		}
	}
	return n
}

// pi_1 was in flight when the customer was told of pi_2, and its debit
// fails 8 hours into a 10-hour grace. The customer is told of it by a
// payment_failed notice of its own, naming its amount, and is suspended
// no sooner than half the grace period after that notice, not on the
// first failure's deadline two hours later.
func TestPaymentInFlightAtTheFirstNoticeThatFailsIsToldAndGivenTheLead(t *testing.T) {
	rt := inFlightThenSecond(t)
	rt.debitFails(8*time.Hour, true)
	rt.at(time.Hour+time.Minute, func() {
		if n := rt.w.lifeNotices(); n != 1 || len(rt.w.noticesFor("pi_1")) != 0 {
			t.Errorf("at +1h: %d life notices, pi_1's %v; want the first notice, nothing of pi_1 (in flight)", n, rt.w.noticesFor("pi_1"))
		}
	})
	want := t0.Add(13 * time.Hour)
	rt.at(8*time.Hour+time.Minute, func() {
		told := rt.w.noticesFor("pi_1")
		if len(told) != 1 {
			t.Fatalf("notices %v; want one payment_failed of pi_1's own once its debit failed", rt.w.noticeTypes())
		}
		n := told[0]
		if n.Type != "payment_failed" || n.AmountDue != 4900 || !strings.Contains(n.Reason, "pi_1") {
			t.Errorf("pi_1's notice %+v; want payment_failed naming pi_1 and its 49.00", n)
		}
		if n.Deadline == nil || !n.Deadline.Equal(want) {
			t.Errorf("pi_1's notice deadline %v, want %v: half the grace period after it", n.Deadline, want)
		}
		if s := rt.status(); !s.SuspendAt.Equal(want) {
			t.Errorf("suspend_at %v, want %v", s.SuspendAt, want)
		}
	})
	rt.at(12*time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
			t.Errorf("4 hours after pi_1's notice: stage %s, control plane %v; want past_due, nothing taken", s.Stage, rt.w.controlActions())
		}
	})
	rt.at(13*time.Hour+10*time.Minute, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended || !equal(rt.w.controlActions(), []string{"suspend"}) {
			t.Errorf("5 hours after pi_1's notice: stage %s, control plane %v; want suspended once", s.Stage, rt.w.controlActions())
		}
	})
	rt.update(13*time.Hour+20*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
	rt.run(input())
	if n, own := rt.w.lifeNotices(), len(rt.w.noticesFor("pi_1")); n != 1 || own != 1 || len(rt.w.noticesFor("pi_2")) != 0 {
		t.Errorf("%d life notices, %d of pi_1, %d of pi_2; want 1, 1, 0", n, own, len(rt.w.noticesFor("pi_2")))
	}
}

// pi_1's debit fails with no event yet (or one lost); the re-check before
// the suspension finds it owed. Nobody is suspended for it before the
// customer is told: the suspension is called off, pi_1 is told at once,
// and the suspension comes half the grace period after that notice.
func TestPaymentInFlightFoundFailedByTheRecheckIsToldBeforeTheSuspension(t *testing.T) {
	rt := inFlightThenSecond(t)
	rt.debitFails(9*time.Hour, false)
	var toldAt time.Time
	rt.at(10*time.Hour+time.Minute, func() {
		s := rt.status()
		if s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
			t.Errorf("at the deadline with pi_1 just found failed: stage %s, control plane %v; want past_due, nothing taken", s.Stage, rt.w.controlActions())
		}
		told := rt.w.noticesFor("pi_1")
		if len(told) != 1 || told[0].Type != "payment_failed" {
			t.Fatalf("pi_1's notices %+v; want one payment_failed, sent before any suspension", told)
		}
		toldAt = told[0].CreatedAt
		if want := toldAt.Add(5 * time.Hour); !s.SuspendAt.Equal(want) {
			t.Errorf("suspend_at %v, want %v: half the grace period after pi_1's notice", s.SuspendAt, want)
		}
	})
	rt.at(15*time.Hour+10*time.Minute, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended || !equal(rt.w.controlActions(), []string{"suspend"}) {
			t.Errorf("after the moved deadline: stage %s, control plane %v; want suspended once", s.Stage, rt.w.controlActions())
		}
	})
	rt.update(15*time.Hour+20*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
	rt.run(input())
}

// Look for the race: pi_1's failure event comes while the first notice
// (of pi_2) is at the mailer. That notice was decided without pi_1's
// money; pi_1 is told by one of its own, once.
func TestPaymentInFlightFailingDuringTheFirstNoticeIsToldOnce(t *testing.T) {
	rt := inFlightThenSecond(t, func(w *world) { w.noticeDelayAll = 10 * time.Minute })
	rt.debitFails(time.Hour+5*time.Minute, true)
	rt.at(3*time.Hour, func() {
		if n := rt.w.lifeNotices(); n != 1 {
			t.Errorf("%d life notices, want 1", n)
		}
		if first := rt.w.notices[0]; first.AmountDue != 4900 || first.Type != "payment_failed" {
			t.Errorf("first notice %+v; want payment_failed for pi_2's 49.00 alone", first)
		}
		told := rt.w.noticesFor("pi_1")
		if len(told) != 1 || told[0].Type != "payment_failed" || told[0].CreatedAt.Before(t0.Add(time.Hour+10*time.Minute)) {
			t.Fatalf("pi_1's notices %+v; want one payment_failed, once the first notice returned", told)
		}
	})
	rt.update(3*time.Hour+time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
	rt.run(input())
	if n := len(rt.w.noticesFor("pi_1")); n != 1 {
		t.Errorf("%d notices of pi_1, want 1", n)
	}
}

// Look for the race: pi_1's failure event comes while a retry round
// charges pi_2. It is told once the round is over, and its notice moves
// the suspension.
func TestPaymentInFlightFailingDuringARetryRoundIsTold(t *testing.T) {
	rt := inFlightThenSecond(t, func(w *world) { w.chargeDelay = 10 * time.Minute })
	rt.debitFails(2*time.Hour+5*time.Minute, true)
	rt.at(2*time.Hour+30*time.Minute, func() {
		told := rt.w.noticesFor("pi_1")
		if len(told) != 1 || told[0].Type != "payment_failed" {
			t.Fatalf("notices %v; want one payment_failed of pi_1's own after the round", rt.w.noticeTypes())
		}
	})
	rt.update(3*time.Hour+30*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
	rt.run(input())
	if n := len(rt.w.noticesFor("pi_1")); n != 1 {
		t.Errorf("%d notices of pi_1, want 1", n)
	}
}

// The reverse: a payment in flight at the first notice that succeeds is
// told nothing, and holds up nothing; one that fails before the first
// notice is owed in it, and told by it alone (one key, one request).
func TestPaymentInFlightThatSucceedsOrFailsBeforeTheNoticeIsNotToldApart(t *testing.T) {
	t.Run("succeeds", func(t *testing.T) {
		rt := inFlightThenSecond(t)
		rt.at(4*time.Hour-time.Second, func() { rt.w.set(func() { rt.w.paidIntents["pi_1"] = true; delete(rt.w.intentStatus, "pi_1") }) })
		rt.signal(4*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_debit_paid", IntentID: "pi_1", Created: t0.Add(4 * time.Hour), Source: "payment_intent.succeeded"})
		rt.at(10*time.Hour+10*time.Minute, func() {
			if s := rt.status(); s.Stage != workflows.StageSuspended {
				t.Errorf("at the deadline, pi_2 unpaid: stage %s, want suspended on time", s.Stage)
			}
		})
		rt.update(10*time.Hour+20*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
		rt.run(input())
		if n, own := rt.w.lifeNotices(), len(rt.w.noticesFor("pi_1")); n != 1 || own != 0 {
			t.Errorf("%d life notices, %d of pi_1; want 1, none of the payment that succeeded", n, own)
		}
	})
	t.Run("fails before the first notice", func(t *testing.T) {
		rt := newRecoveryTest(t, func(w *world) { w.intentStatus["pi_1"] = "processing" })
		rt.debitFails(30*time.Minute, true)
		rt.signal(time.Hour, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(time.Hour)))
		rt.update(3*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
		rt.run(input())
		if n, own := rt.w.lifeNotices(), len(rt.w.noticesFor("pi_1")); n != 1 || own != 0 || rt.w.notices[0].AmountDue != 4900 {
			t.Errorf("%d life notices (first %+v), %d of pi_1; want pi_1 told in the first notice alone", n, rt.w.notices[0], own)
		}
	})
}

// Look for the race, on a failure that joins the life: pi_2's event comes
// while the retry round charges pi_1. The customer is told of pi_2 once
// the round is over, not at the next retry or deadline.
func TestFailureJoiningDuringARetryRoundIsToldAtOnce(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.chargeDelay = 10 * time.Minute })
	rt.signal(time.Hour+5*time.Minute, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(time.Hour+5*time.Minute)))
	rt.at(time.Hour+30*time.Minute, func() {
		told := rt.w.noticesFor("pi_2")
		if len(told) != 1 || told[0].Type != "payment_failed" {
			t.Fatalf("notices %v; want one payment_failed of pi_2's own once the round was over", rt.w.noticeTypes())
		}
	})
	rt.update(time.Hour+40*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
	rt.run(input())
}

// A failure that joins a told life while Stripe has the payment in flight
// (its event said failed, but a bank debit has begun since): Stripe is
// asked before its notice, and it is not told as failed. If the debit
// succeeds the customer hears nothing of it; if it fails, they are told
// then, and the suspension moves to half the grace period after that.
func TestFailureJoiningWhileItsPaymentIsInFlightIsToldOnlyIfItFails(t *testing.T) {
	joins := func(t *testing.T) *recoveryTest {
		rt := newRecoveryTest(t, func(w *world) { w.intentStatus["pi_2"] = "processing" })
		rt.signal(2*time.Hour, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(2*time.Hour)))
		rt.at(2*time.Hour+time.Minute, func() {
			if in := intentOf(rt.status(), "pi_2"); in == nil || in.State != workflows.IntentInFlight || len(rt.w.noticesFor("pi_2")) != 0 {
				t.Errorf("pi_2 %+v, its notices %v; want it in flight and not told as failed", in, rt.w.noticesFor("pi_2"))
			}
		})
		return rt
	}
	t.Run("succeeds", func(t *testing.T) {
		rt := joins(t)
		rt.at(5*time.Hour-time.Second, func() { rt.w.set(func() { rt.w.paidIntents["pi_2"] = true; delete(rt.w.intentStatus, "pi_2") }) })
		rt.signal(5*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_debit_paid", IntentID: "pi_2", Created: t0.Add(5 * time.Hour), Source: "payment_intent.succeeded"})
		rt.update(6*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
		rt.run(input())
		if n := len(rt.w.noticesFor("pi_2")); n != 0 {
			t.Errorf("%d notices of pi_2, want none: its payment succeeded", n)
		}
	})
	t.Run("fails", func(t *testing.T) {
		rt := joins(t)
		rt.at(8*time.Hour-time.Second, func() { rt.w.set(func() { rt.w.intentStatus["pi_2"] = "requires_payment_method" }) })
		rt.signal(8*time.Hour, workflows.SignalPaymentFailed, failed("evt_debit_failed", "pi_2", t0.Add(8*time.Hour)))
		want := t0.Add(13 * time.Hour)
		rt.at(8*time.Hour+time.Minute, func() {
			told := rt.w.noticesFor("pi_2")
			if len(told) != 1 || told[0].Type != "payment_failed" || told[0].CreatedAt.Before(t0.Add(8*time.Hour)) {
				t.Fatalf("pi_2's notices %+v; want one payment_failed, once its debit failed", told)
			}
			if told[0].PayURL != "https://invoice.stripe.com/i/in_pi_2" {
				t.Errorf("pi_2's notice pays at %q; want its own invoice's page, as Stripe gave it", told[0].PayURL)
			}
			if s := rt.status(); !s.SuspendAt.Equal(want) {
				t.Errorf("suspend_at %v, want %v", s.SuspendAt, want)
			}
		})
		rt.at(12*time.Hour, func() {
			if s := rt.status(); s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
				t.Errorf("4 hours after pi_2's notice: stage %s, control plane %v; want past_due", s.Stage, rt.w.controlActions())
			}
		})
		rt.update(12*time.Hour+time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
		rt.run(input())
		if n := len(rt.w.noticesFor("pi_2")); n != 1 {
			t.Errorf("%d notices of pi_2, want 1", n)
		}
	})
}

// pi_1 was in flight at the first notice; the customer is suspended for
// pi_2 and pays it. The account comes back, and neither the customer nor
// ops are told that pi_1 failed: it is still in flight. When its debit
// fails, the customer is told of it by a notice of its own.
func TestPaymentInFlightWhenASuspendedCustomerPaysIsNotToldAsFailed(t *testing.T) {
	rt := inFlightThenSecond(t)
	rt.at(12*time.Hour-time.Second, func() { rt.w.set(func() { rt.w.paidIntents["pi_2"] = true }) })
	rt.signal(12*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_2", IntentID: "pi_2", Created: t0.Add(12 * time.Hour), Source: "payment_intent.succeeded"})
	rt.at(12*time.Hour+30*time.Minute, func() {
		for _, n := range rt.w.notices {
			if n.Type == "account_resumed" && strings.Contains(n.Reason, "failed") {
				t.Errorf("resume notice %q; want nothing said of a failure: pi_1 is in flight", n.Reason)
			}
		}
		for _, a := range rt.w.alerts {
			if strings.Contains(a.Text, "failed payments: pi_1") {
				t.Errorf("alert %q names pi_1 a failed payment; it is in flight", a.Text)
			}
		}
		if len(rt.w.noticesFor("pi_1")) != 0 {
			t.Errorf("pi_1 told as failed while in flight")
		}
	})
	rt.debitFails(14*time.Hour, true)
	rt.at(14*time.Hour+time.Minute, func() {
		if told := rt.w.noticesFor("pi_1"); len(told) != 1 || told[0].Type != "payment_failed" {
			t.Errorf("pi_1's notices %+v; want one payment_failed once its debit failed", told)
		}
	})
	rt.update(14*time.Hour+2*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
	rt.run(input())
}
