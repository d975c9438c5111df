package workflows_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"dunning/activities"
	"dunning/workflows"
)

const day = 24 * time.Hour

// weekInput is a recovery with the production defaults: retries after 1,
// 3 and 5 days, suspension 7 days after the first failure.
func weekInput() workflows.RecoveryInput {
	in := input()
	in.Settings.RetrySchedule = []time.Duration{day, 3 * day, 5 * day}
	in.Settings.GracePeriod = 7 * day
	in.Settings.DeprovisionAfter = 14 * day
	return in
}

// noticesFor are the notices sent under intent's own key.
func (w *world) noticesFor(intent string) []activities.NoticeInput {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []activities.NoticeInput
	for _, n := range w.notices {
		if strings.HasSuffix(n.Key, ":"+intent+":notice") {
			out = append(out, n)
		}
	}
	return out
}

// A second invoice's payment fails 6 days into a 7-day grace. The
// customer is told of it, by a payment_failed notice of its own naming
// its amount, and is not suspended the next day, on the first failure's
// deadline, but three days after that notice; the status shows that
// deadline.
func TestSecondFailureLateInTheGraceIsToldAndNotSuspendedTheNextDay(t *testing.T) {
	rt := newRecoveryTest(t)
	second := failed("evt_second", "pi_2", t0.Add(6*day))
	second.Intent.Amount = 2500
	rt.signal(6*day, workflows.SignalPaymentFailed, second)
	rt.at(6*day+time.Minute, func() {
		told := rt.w.noticesFor("pi_2")
		if len(told) != 1 {
			t.Fatalf("notices %v; want one payment_failed for pi_2", rt.w.noticeTypes())
		}
		n := told[0]
		if n.Type != "payment_failed" || n.AmountDue != 2500 || !strings.Contains(n.Reason, "pi_2") {
			t.Errorf("pi_2's notice %+v; want payment_failed naming pi_2 and its 25.00", n)
		}
		if want := t0.Add(9 * day); n.Deadline == nil || !n.Deadline.Equal(want) {
			t.Errorf("pi_2's notice deadline %v, want %v: three days after it", n.Deadline, want)
		}
		s := rt.status()
		if want := t0.Add(9 * day); !s.SuspendAt.Equal(want) {
			t.Errorf("status suspend_at %v; want the suspension at %v", s.SuspendAt, want)
		}
		// The schedule is spent: pi_2 gets a retry of its own first, a
		// day (the schedule's first interval) after it joined.
		if want := t0.Add(7 * day); s.Next.Kind != workflows.NextRetry || !s.Next.At.Equal(want) {
			t.Errorf("status next %+v; want pi_2's own retry at %v", s.Next, want)
		}
	})
	rt.at(8*day, func() {
		if s := rt.status(); s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
			t.Errorf("a day after the first deadline: stage %s, control plane %v; want past_due, nothing taken", s.Stage, rt.w.controlActions())
		}
	})
	rt.at(9*day+time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended || !equal(rt.w.controlActions(), []string{"suspend"}) {
			t.Errorf("three days after pi_2's notice: stage %s, control plane %v; want suspended once", s.Stage, rt.w.controlActions())
		}
	})
	rt.update(9*day+2*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
	rt.run(weekInput())
	if n := len(rt.w.noticesFor("pi_2")); n != 1 {
		t.Errorf("%d notices for pi_2, want 1", n)
	}
}

// pi_1 is paid; Stripe cannot be asked for other unpaid payments until
// two hours after the suspension deadline, and then lists pi_2. The
// adopted payment is told to the customer, and nobody is suspended for it
// before half the grace period after that notice.
func TestPaymentAdoptedAfterAHoldPastTheDeadlineIsToldBeforeAnySuspension(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.w.unpaid = []activities.UnpaidPayment{secondFailure()}
	rt.w.unpaidErr = func() error {
		if rt.w.now().Before(t0.Add(12 * time.Hour)) {
			return errors.New("stripe answered 503")
		}
		return nil
	}
	var want time.Time // the suspension: half the grace period after pi_2's notice
	rt.at(9*time.Hour, func() {
		rt.w.set(func() { rt.w.paidIntents["pi_1"] = true })
		rt.env.SignalWorkflow(workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_1", Created: t0.Add(9 * time.Hour), IntentID: "pi_1", Source: "payment_intent.succeeded"})
	})
	rt.at(13*time.Hour, func() {
		s := rt.status()
		if in := intentOf(s, "pi_2"); in == nil || in.AdoptedAt.IsZero() {
			t.Fatalf("pi_2 = %+v, want it adopted from Stripe's list", in)
		}
		if s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
			t.Errorf("an hour after adopting pi_2: stage %s, control plane %v; want past_due, nothing taken", s.Stage, rt.w.controlActions())
		}
		told := rt.w.noticesFor("pi_2")
		if len(told) != 1 || told[0].Type != "payment_failed" || told[0].AmountDue != 2500 {
			t.Fatalf("pi_2's notices %+v; want one payment_failed for its 25.00", told)
		}
		want = told[0].CreatedAt.Add(5 * time.Hour)
		if told[0].CreatedAt.Before(t0.Add(12*time.Hour)) || told[0].Deadline == nil || !told[0].Deadline.Equal(want) || !s.SuspendAt.Equal(want) {
			t.Errorf("told at %v, deadline %v, suspend_at %v; want half the grace period after the notice, sent once Stripe answered",
				told[0].CreatedAt, told[0].Deadline, s.SuspendAt)
		}
	})
	rt.at(14*time.Hour, func() {
		if s := rt.status(); s.Next.Kind != workflows.NextSuspend || !s.Next.At.Equal(want) {
			t.Errorf("next %+v, want the suspension at %v", s.Next, want)
		}
	})
	rt.at(17*time.Hour+10*time.Minute, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended || !equal(rt.w.controlActions(), []string{"suspend"}) {
			t.Errorf("at +17h10m stage %s, control plane %v; want suspended once, for pi_2", s.Stage, rt.w.controlActions())
		}
	})
	rt.update(18*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
	rt.run(input())
}

// Look for the race: an operator waives while pi_2's notice is at the
// mailer. The step decides again once it returns: the waiver is carried
// out at once, nothing is charged or taken away, and the customer hears
// that the debt is forgiven.
func TestWaiverDuringAJoinedFailuresNoticeIsCarriedOutAtOnce(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.noticeDelayAll = 10 * time.Minute })
	rt.signal(6*day, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(6*day)))
	retriesBefore := -1
	rt.at(6*day+time.Minute, func() {
		retriesBefore = len(rt.w.retries)
	})
	rt.update(6*day+5*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "goodwill", Operator: "ops"}, mustAccept(t, "waive"))
	res := rt.run(weekInput())
	if res.Stage != workflows.StageWaived {
		t.Fatalf("stage %s, want waived", res.Stage)
	}
	if end := rt.env.Now(); end.After(t0.Add(6*day + 30*time.Minute)) {
		t.Errorf("the life ended at %v; want at once after pi_2's notice", end)
	}
	if len(rt.w.controls) != 0 || len(rt.w.retries) != retriesBefore {
		t.Errorf("control plane %v, %d retries after the waiver; want nothing", rt.w.controlActions(), len(rt.w.retries)-retriesBefore)
	}
	if n := len(rt.w.noticesFor("pi_2")); n != 1 {
		t.Errorf("%d notices for pi_2, want 1", n)
	}
	if types := rt.w.noticeTypes(); types[len(types)-1] != "payment_waived" {
		t.Errorf("notices %v; want the last to say the debt is waived", types)
	}
}

// The first payment was in flight (a bank debit) when it failed, and its
// failure comes 8 hours into a 10-hour grace: the customer's first
// notice goes out then, and the suspension comes no sooner than half the
// grace period after it, not 2 hours later.
func TestFirstFailureToldLateInTheGraceIsNotSuspendedSoonAfter(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.intentStatus["pi_1"] = "processing" })
	rt.at(8*time.Hour-time.Minute, func() { rt.w.set(func() { rt.w.intentStatus["pi_1"] = "requires_payment_method" }) })
	rt.signal(8*time.Hour, workflows.SignalPaymentFailed, failed("evt_debit_failed", "pi_1", t0.Add(8*time.Hour)))
	rt.at(8*time.Hour+time.Minute, func() {
		if types := rt.w.noticeTypes(); len(types) == 0 || types[0] != "payment_failed" || rt.w.notices[0].CreatedAt.Before(t0.Add(8*time.Hour)) {
			t.Fatalf("notices %v; want the first, payment_failed, once the debit failed", types)
		}
		n := rt.w.notices[0]
		if want := n.CreatedAt.Add(5 * time.Hour); n.Deadline == nil || !n.Deadline.Equal(want) {
			t.Errorf("first notice at %v with deadline %v; want %v", n.CreatedAt, n.Deadline, want)
		}
	})
	rt.at(12*time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
			t.Errorf("4 hours after the first notice: stage %s, control plane %v; want past_due", s.Stage, rt.w.controlActions())
		}
	})
	rt.at(13*time.Hour+10*time.Minute, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended {
			t.Errorf("5 hours after the first notice: stage %s, want suspended", s.Stage)
		}
	})
	rt.update(13*time.Hour+20*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
	rt.run(input())
}
