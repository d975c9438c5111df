package workflows_test

import (
	"strings"
	"testing"
	"time"

	"dunning/workflows"
)

// debitUnseen makes pi_1 processing from d on (the customer pays the
// open invoice by bank debit after the last scheduled retry, so no
// re-check of dunning's sees it), with its payment_intent.processing
// event at d when event is set.
func (rt *recoveryTest) debitUnseen(d time.Duration, event bool) {
	rt.debitStarts(d)
	if event {
		rt.signal(d, workflows.SignalPaymentProcessing, workflows.PaymentProcessingSignal{EventID: "evt_debit_processing", Created: t0.Add(d), IntentID: "pi_1"})
	}
}

// debitFailureEvent is pi_1's failure event at d, its failed way to pay
// of type pmType.
func (rt *recoveryTest) debitFailureEvent(d time.Duration, pmType string) {
	rt.at(d-time.Second, func() { rt.w.set(func() { rt.w.intentStatus["pi_1"] = "requires_payment_method" }) })
	f := failed("evt_debit_failed_again", "pi_1", t0.Add(d))
	f.Intent.FailedPaymentMethodType = pmType
	rt.signal(d, workflows.SignalPaymentFailed, f)
}

// toldAgainWithLead checks, just after pi_1's debit failed at +9h, that
// the customer was told of it by a notice of pi_1's own and is not
// suspended before half the grace period after it; and, at the end, that
// they were suspended once after that lead.
func (rt *recoveryTest) toldAgainWithLead(t *testing.T) {
	t.Helper()
	rt.at(10*time.Hour+time.Minute, func() {
		s := rt.status()
		if s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
			t.Errorf("at the old deadline, pi_1's debit just failed: stage %s, control plane %v; want past_due, nothing taken", s.Stage, rt.w.controlActions())
		}
		told := rt.w.failedNotices("pi_1")
		if len(told) != 1 || rt.w.lifeNotices() != 1 {
			t.Fatalf("%d life notices, pi_1's own payment_failed notices %d (%v); want the first, and one of pi_1's for the debit that failed",
				rt.w.lifeNotices(), len(told), rt.w.noticeTypes())
		}
		again := told[0]
		if !strings.HasSuffix(again.Key, ":past_due:pi_1:again:1:notice") || again.AmountDue != 4900 {
			t.Errorf("notice of the failed debit %+v; want the failed-again key, naming pi_1's 49.00", again)
		}
		want := again.CreatedAt.Add(5 * time.Hour)
		if !s.SuspendAt.Equal(want) || again.Deadline == nil || !again.Deadline.Equal(want) {
			t.Errorf("suspend_at %v, notice deadline %v; want %v, half the grace period after the notice", s.SuspendAt, again.Deadline, want)
		}
	})
	rt.at(14*time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
			t.Errorf("before the lead after the notice: stage %s, control plane %v; want past_due", s.Stage, rt.w.controlActions())
		}
	})
	rt.at(14*time.Hour+10*time.Minute, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended || !equal(rt.w.controlActions(), []string{"suspend"}) {
			t.Errorf("after the lead: stage %s, control plane %v; want suspended once", s.Stage, rt.w.controlActions())
		}
	})
	rt.update(14*time.Hour+20*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
}

// pi_1 fails at 0 and the customer is told. After the last scheduled
// retry (+3h) they pay the invoice by bank debit at +3h30m: Stripe sends
// payment_intent.processing, and no re-check of dunning's sees the debit
// processing before it fails at +9h (its event names no way to pay).
// The processing event marks the payment in flight, so its failure is a
// failure again: told by a notice of its own, and no suspension before
// the lead after it. A processing event older than what is known of the
// intent changes nothing.
func TestProcessingEventMarksAToldPaymentInFlightAndItsFailureIsToldAgain(t *testing.T) {
	t.Run("processing, then failed", func(t *testing.T) {
		rt := newRecoveryTest(t)
		rt.debitUnseen(3*time.Hour+30*time.Minute, true)
		rt.debitFailureEvent(9*time.Hour, "")
		rt.at(4*time.Hour, func() {
			if s := rt.status(); s.Intents[0].State != workflows.IntentInFlight {
				t.Errorf("at +4h pi_1 is %s, want in flight (its processing event came at +3h30m)", s.Intents[0].State)
			}
		})
		rt.toldAgainWithLead(t)
		rt.run(input())
		if n := len(rt.w.failedNotices("pi_1")); n != 1 {
			t.Errorf("%d notices of pi_1's own, want 1", n)
		}
	})
	t.Run("a processing event older than the failure", func(t *testing.T) {
		rt := newRecoveryTest(t)
		rt.signal(time.Hour+30*time.Minute, workflows.SignalPaymentProcessing,
			workflows.PaymentProcessingSignal{EventID: "evt_old_processing", Created: t0.Add(-time.Hour), IntentID: "pi_1"})
		rt.at(2*time.Hour, func() {
			if s := rt.status(); s.Intents[0].State != workflows.IntentOpen {
				t.Errorf("pi_1 is %s after a processing event from before its failure, want open", s.Intents[0].State)
			}
		})
		rt.update(2*time.Hour+time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
		rt.run(input())
	})
}

// The same debit, its processing event lost or late: dunning never saw
// it processing. Its failure event, created after the customer was told
// and naming a bank debit as the way to pay that failed, is a failure
// again all the same: told, and the lead given. A card's decline at the
// same moment was seen by the customer on the page as they paid, and
// stays the failure already told: suspended at the deadline.
func TestDebitFailureUnseenProcessingIsToldAgain(t *testing.T) {
	for _, pmType := range []string{"us_bank_account", "sepa_debit", "bacs_debit"} {
		t.Run(pmType, func(t *testing.T) {
			rt := newRecoveryTest(t)
			rt.debitUnseen(3*time.Hour+30*time.Minute, false)
			rt.debitFailureEvent(9*time.Hour, pmType)
			rt.toldAgainWithLead(t)
			rt.run(input())
		})
	}
	t.Run("card", func(t *testing.T) {
		rt := newRecoveryTest(t)
		rt.debitFailureEvent(9*time.Hour, "card")
		rt.at(10*time.Hour+10*time.Minute, func() {
			if s := rt.status(); s.Stage != workflows.StageSuspended || len(rt.w.failedNotices("pi_1")) != 0 {
				t.Errorf("after a card's decline: stage %s, pi_1's own notices %d; want suspended at the deadline, no notice of its own",
					s.Stage, len(rt.w.failedNotices("pi_1")))
			}
		})
		rt.update(10*time.Hour+20*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
		rt.run(input())
	})
}
