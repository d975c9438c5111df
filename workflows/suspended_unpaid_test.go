package workflows_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"dunning/activities"
	"dunning/workflows"
)

// Under the test settings the customer is suspended 10 hours after pi_1
// failed, deprovisioned 20 hours after that, and given half the grace
// period (5 hours) after the notice of a failure that joins.
const (
	suspendedAt = 10 * time.Hour
	joinedLead  = 5 * time.Hour
)

// payPI1 pays pi_1 in Stripe and tells the recovery, at d.
func (rt *recoveryTest) payPI1(d time.Duration) {
	rt.at(d, func() {
		rt.w.set(func() { rt.w.paidIntents["pi_1"] = true })
		rt.env.SignalWorkflow(workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_1", Created: t0.Add(d), IntentID: "pi_1", Source: "payment_intent.succeeded"})
	})
}

// keysUnique reports a notice or alert key used twice.
func (w *world) keysUnique(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[string]bool{}
	for _, n := range w.notices {
		if seen[n.Key] {
			t.Errorf("notice key %s sent twice (%v)", n.Key, w.noticeTypesLocked())
		}
		seen[n.Key] = true
	}
	for _, a := range w.alerts {
		if seen[a.Key] {
			t.Errorf("alert key %s sent twice", a.Key)
		}
		seen[a.Key] = true
	}
}

func (w *world) noticeTypesLocked() []string {
	var out []string
	for _, n := range w.notices {
		out = append(out, n.Type)
	}
	return out
}

// stageNoticeTypes are the notices sent, but those of failed retries.
func (w *world) stageNoticeTypes() []string {
	var out []string
	for _, typ := range w.noticeTypes() {
		if typ != "payment_retry_failed" {
			out = append(out, typ)
		}
	}
	return out
}

// A suspended customer pays pi_1, the payment they were suspended for;
// pi_2 failed five minutes after it, and its event has not come. Stripe
// is asked before the customer hears that it is over: the account is
// given back (pi_1 is paid), but the life goes on past due for pi_2,
// which is told by a notice of its own, and nobody is suspended for it
// before half the grace period after that notice. Suspended again for
// pi_2, the customer pays it and is resumed, under keys of their own.
func TestSuspendedCustomerWhoPaysIsCheckedForOtherUnpaidPayments(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.w.unpaid = []activities.UnpaidPayment{secondFailure()}
	paid := 12 * time.Hour
	rt.at(paid-time.Minute, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended {
			t.Fatalf("stage %s before the payment, want suspended", s.Stage)
		}
	})
	rt.payPI1(paid)
	var told time.Time
	rt.at(paid+time.Minute, func() {
		s := rt.status()
		if rt.w.unpaidReads != 1 {
			t.Errorf("%d reads of the other unpaid payments, want one before the end", rt.w.unpaidReads)
		}
		if s.Stage != workflows.StagePastDue || !equal(rt.w.controlActions(), []string{"suspend", "resume"}) {
			t.Fatalf("stage %s, control plane %v; want the account given back and the life past due for pi_2", s.Stage, rt.w.controlActions())
		}
		in := intentOf(s, "pi_2")
		if in == nil || in.State != workflows.IntentOpen || in.AdoptedAt.IsZero() {
			t.Fatalf("pi_2 = %+v, want it taken up from Stripe's list", in)
		}
		if want := []string{"payment_failed", "account_suspended", "account_resumed", "payment_failed"}; !equal(rt.w.stageNoticeTypes(), want) {
			t.Errorf("notices %v, want %v: pi_2 told, nothing said to be over", rt.w.stageNoticeTypes(), want)
		}
		if n := countPrefix(rt.w.alertTitles(), "Recovered"); n != 0 {
			t.Errorf("alerts %v: ops told of a recovery with pi_2 unpaid", rt.w.alertTitles())
		}
		notes := rt.w.noticesFor("pi_2")
		if len(notes) != 1 || notes[0].AmountDue != 2500 {
			t.Fatalf("pi_2's notices %+v, want one for its 25.00", notes)
		}
		told = notes[0].CreatedAt
		want := told.Add(joinedLead)
		if !s.SuspendAt.Equal(want) || notes[0].Deadline == nil || !notes[0].Deadline.Equal(want) {
			t.Errorf("suspend_at %v, pi_2's deadline %v; want %v, the lead after its notice", s.SuspendAt, notes[0].Deadline, want)
		}
	})
	rt.at(paid+joinedLead-time.Minute, func() {
		if s := rt.status(); s.Stage != workflows.StagePastDue || len(rt.w.controls) != 2 {
			t.Errorf("before pi_2's lead: stage %s, control plane %v; want past_due, nothing taken again", s.Stage, rt.w.controlActions())
		}
	})
	rt.at(paid+joinedLead+time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended {
			t.Errorf("after pi_2's lead: stage %s, want suspended for it", s.Stage)
		}
		rt.w.set(func() { rt.w.paidIntents["pi_2"] = true })
		rt.env.SignalWorkflow(workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_2", Created: rt.env.Now(), IntentID: "pi_2", Source: "payment_intent.succeeded"})
	})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered || len(res.Intents) != 2 {
		t.Fatalf("ended %s with %+v, want recovered with pi_1 and pi_2", res.Stage, res.Intents)
	}
	if want := []string{"suspend", "resume", "suspend", "resume"}; !equal(rt.w.controlActions(), want) {
		t.Errorf("control plane %v, want %v", rt.w.controlActions(), want)
	}
	if want := []string{"payment_failed", "account_suspended", "account_resumed", "payment_failed", "account_suspended", "account_resumed"}; !equal(rt.w.stageNoticeTypes(), want) {
		t.Errorf("notices %v, want %v", rt.w.stageNoticeTypes(), want)
	}
	if n := countPrefix(rt.w.alertTitles(), "Recovered"); n != 1 {
		t.Errorf("alerts %v, want one Recovered", rt.w.alertTitles())
	}
	if rt.w.unpaidReads != 2 {
		t.Errorf("%d reads of the other unpaid payments, want one at each end asked for", rt.w.unpaidReads)
	}
	rt.w.keysUnique(t)
}

// Stripe does not answer the list when the suspended customer pays: no
// answer keeps nothing away from a customer who paid what they were told
// of. The account is given back at once; the customer hears "recovered"
// only once Stripe answers, and ops hear of the wait.
func TestSuspendedCustomerWhoPaysIsResumedWhileStripeCannotBeAsked(t *testing.T) {
	rt := newRecoveryTest(t)
	paid := 12 * time.Hour
	rt.w.unpaidErr = func() error {
		if rt.w.now().Before(t0.Add(paid + 2*time.Hour)) {
			return errors.New("stripe answered 503")
		}
		return nil
	}
	rt.payPI1(paid)
	rt.at(paid+10*time.Minute, func() {
		s := rt.status()
		if !equal(rt.w.controlActions(), []string{"suspend", "resume"}) {
			t.Errorf("control plane %v while Stripe could not be asked; want the paid customer resumed", rt.w.controlActions())
		}
		if s.Stage != workflows.StagePastDue || s.Next.Kind != workflows.NextConfirmRecovered {
			t.Errorf("stage %s, next %+v; want the end held until Stripe answers", s.Stage, s.Next)
		}
		if want := []string{"payment_failed", "account_suspended", "account_resumed"}; !equal(rt.w.stageNoticeTypes(), want) {
			t.Errorf("notices %v, want %v", rt.w.stageNoticeTypes(), want)
		}
	})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered once Stripe answered", res.Stage)
	}
	if d := rt.env.Now().Sub(t0); d < paid+2*time.Hour || d > paid+2*time.Hour+5*time.Minute {
		t.Errorf("ended at +%s, want soon after Stripe answered again", d)
	}
	if want := []string{"suspend", "resume"}; !equal(rt.w.controlActions(), want) {
		t.Errorf("control plane %v, want %v", rt.w.controlActions(), want)
	}
	if want := []string{"payment_failed", "account_suspended", "account_resumed", "payment_recovered"}; !equal(rt.w.stageNoticeTypes(), want) {
		t.Errorf("notices %v, want %v", rt.w.stageNoticeTypes(), want)
	}
	if n := countPrefix(rt.w.alertTitles(), "Recovery not confirmed"); n != 1 {
		t.Errorf("alerts %v, want ops told once of the held end", rt.w.alertTitles())
	}
	rt.w.keysUnique(t)
}

// pi_2's late event reaches the suspended recovery while Stripe is asked
// (after pi_1 was paid): the account is given back all the same, pi_2 is
// told once, and nobody is suspended for it before its lead.
func TestLateFailureWhileTheSuspendedCustomerIsCheckedReopens(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.unpaidDelay = time.Minute })
	rt.w.unpaid = []activities.UnpaidPayment{secondFailure()}
	paid := 12 * time.Hour
	rt.payPI1(paid)
	late := failed("evt_second", "pi_2", t0.Add(5*time.Minute))
	late.Intent.Amount = 2500
	rt.signal(paid+20*time.Second, workflows.SignalPaymentFailed, late)
	rt.at(paid+10*time.Minute, func() {
		s := rt.status()
		if s.Stage != workflows.StagePastDue || !equal(rt.w.controlActions(), []string{"suspend", "resume"}) {
			t.Errorf("stage %s, control plane %v; want the account given back, past due for pi_2", s.Stage, rt.w.controlActions())
		}
		if n := len(rt.w.noticesFor("pi_2")); n != 1 {
			t.Errorf("%d notices for pi_2, want 1", n)
		}
		if in := intentOf(s, "pi_2"); in == nil || !in.AdoptedAt.IsZero() {
			t.Errorf("pi_2 = %+v, want it open as its event brought it", in)
		}
	})
	rt.at(paid+joinedLead-time.Minute, func() {
		if len(rt.w.controls) != 2 {
			t.Errorf("control plane %v before pi_2's lead", rt.w.controlActions())
		}
	})
	rt.update(paid+joinedLead-time.Minute/2, workflows.ControlWaive, workflows.OperatorRequest{Operator: "ops", Reason: "end of test"}, mustAccept(t, "waive"))
	res := rt.run(input())
	if res.Stage != workflows.StageWaived {
		t.Fatalf("stage %s, want waived", res.Stage)
	}
	rt.w.keysUnique(t)
}

// pi_2 is paid while Stripe's list, taken before, still shows it unpaid:
// the suspended customer is resumed and the life ends recovered.
func TestPaymentWhileTheSuspendedCustomerIsCheckedIsApplied(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.unpaidDelay = time.Minute })
	rt.w.unpaid = []activities.UnpaidPayment{secondFailure()}
	paid := 12 * time.Hour
	rt.payPI1(paid)
	rt.signal(paid+20*time.Second, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_2", Created: t0.Add(paid), InvoiceID: "in_pi_2", Source: "invoice.paid"})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered || len(res.Intents) != 1 {
		t.Fatalf("ended %s with %+v, want recovered with pi_1 alone", res.Stage, res.Intents)
	}
	if rt.w.unpaidReads != 1 {
		t.Errorf("%d reads of the other unpaid payments, want 1", rt.w.unpaidReads)
	}
	if want := []string{"suspend", "resume"}; !equal(rt.w.controlActions(), want) {
		t.Errorf("control plane %v, want %v", rt.w.controlActions(), want)
	}
	if want := []string{"payment_failed", "account_suspended", "account_resumed"}; !equal(rt.w.stageNoticeTypes(), want) {
		t.Errorf("notices %v, want %v", rt.w.stageNoticeTypes(), want)
	}
}

// An operator pauses while Stripe is asked: the answer said nothing more
// is done automatically, so the account waits for the operator's resume
// (ops are told it is paid), and is given back then.
func TestPauseWhileTheSuspendedCustomerIsCheckedHolds(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.unpaidDelay = time.Minute })
	paid := 12 * time.Hour
	rt.payPI1(paid)
	rt.update(paid+20*time.Second, workflows.ControlPause, workflows.OperatorRequest{Operator: "ops", Reason: "looking"}, mustAccept(t, "pause"))
	rt.at(paid+time.Hour, func() {
		if !equal(rt.w.controlActions(), []string{"suspend"}) {
			t.Errorf("control plane %v while paused, want nothing more", rt.w.controlActions())
		}
		if n := countPrefix(rt.w.alertTitles(), "Paid but still suspended"); n != 1 {
			t.Errorf("alerts %v, want ops told the paused customer has paid", rt.w.alertTitles())
		}
	})
	rt.update(paid+2*time.Hour, workflows.ControlResume, workflows.OperatorRequest{Operator: "ops"}, mustAccept(t, "resume"))
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
	if want := []string{"suspend", "resume"}; !equal(rt.w.controlActions(), want) {
		t.Errorf("control plane %v, want %v", rt.w.controlActions(), want)
	}
	if d := rt.env.Now().Sub(t0); d < paid+2*time.Hour {
		t.Errorf("resumed at +%s, before the operator resumed the recovery (+%s)", d, paid+2*time.Hour)
	}
	if n := countPrefix(rt.w.alertTitles(), "Paid but still suspended"); n != 1 {
		t.Errorf("alerts %v, want ops told once that the paused customer has paid", rt.w.alertTitles())
	}
}

// pi_2 fails while the customer is suspended for pi_1, an hour before
// the deprovisioning. The customer is told of it, and is not
// deprovisioned before half the grace period after that notice, which
// names that date; the status shows it.
func TestFailureJoiningWhileSuspendedMovesTheDeprovisioning(t *testing.T) {
	rt := newRecoveryTest(t)
	deprovAt := suspendedAt + settings.DeprovisionAfter
	joined := deprovAt - time.Hour
	second := failed("evt_second", "pi_2", t0.Add(joined))
	second.Intent.Amount = 2500
	rt.signal(joined, workflows.SignalPaymentFailed, second)
	want := t0.Add(joined + joinedLead)
	rt.at(joined+time.Minute, func() {
		notes := rt.w.noticesFor("pi_2")
		if len(notes) != 1 {
			t.Fatalf("notices %v, want one payment_failed for pi_2", rt.w.stageNoticeTypes())
		}
		if notes[0].Deadline == nil || !notes[0].Deadline.Equal(want) {
			t.Errorf("pi_2's deadline %v, want %v: the lead after its notice", notes[0].Deadline, want)
		}
		s := rt.status()
		if !s.DeprovisionAt.Equal(want) {
			t.Errorf("deprovision_at %v; want the deprovisioning at %v", s.DeprovisionAt, want)
		}
		// The schedule is spent: pi_2 gets a retry of its own first, an
		// interval of the schedule after it joined.
		if retry := t0.Add(joined + time.Hour); s.Next.Kind != workflows.NextRetry || !s.Next.At.Equal(retry) {
			t.Errorf("next %+v; want pi_2's own retry at %v", s.Next, retry)
		}
	})
	rt.at(deprovAt+time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended || !equal(rt.w.controlActions(), []string{"suspend"}) {
			t.Errorf("after the first deadline: stage %s, control plane %v; want suspended, not deprovisioned", s.Stage, rt.w.controlActions())
		}
	})
	res := rt.run(input())
	if res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("stage %s, want deprovisioned", res.Stage)
	}
	if d := rt.env.Now().Sub(t0); d < joined+joinedLead {
		t.Errorf("deprovisioned at +%s, want no sooner than +%s", d, joined+joinedLead)
	}
}

// An operator pauses while Stripe is asked, and Stripe lists pi_2: it is
// taken up, and nothing more is done while paused. The operator's resume
// gives the account back (pi_1, all the customer was told of, is paid),
// and pi_2 is told and given its own lead past due.
func TestResumeAfterAPauseDuringTheCheckGivesTheAccountBack(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.unpaidDelay = time.Minute })
	rt.w.unpaid = []activities.UnpaidPayment{secondFailure()}
	paid := 12 * time.Hour
	rt.payPI1(paid)
	rt.update(paid+20*time.Second, workflows.ControlPause, workflows.OperatorRequest{Operator: "ops", Reason: "looking"}, mustAccept(t, "pause"))
	rt.at(paid+time.Hour, func() {
		s := rt.status()
		if in := intentOf(s, "pi_2"); in == nil || in.AdoptedAt.IsZero() {
			t.Errorf("pi_2 = %+v, want it taken up", in)
		}
		if s.Stage != workflows.StageSuspended || !equal(rt.w.controlActions(), []string{"suspend"}) {
			t.Errorf("stage %s, control plane %v while paused; want nothing more done", s.Stage, rt.w.controlActions())
		}
	})
	resumed := paid + 2*time.Hour
	rt.update(resumed, workflows.ControlResume, workflows.OperatorRequest{Operator: "ops"}, mustAccept(t, "resume"))
	rt.at(resumed+time.Minute, func() {
		s := rt.status()
		if s.Stage != workflows.StagePastDue || !equal(rt.w.controlActions(), []string{"suspend", "resume"}) {
			t.Errorf("stage %s, control plane %v; want the account given back, past due for pi_2", s.Stage, rt.w.controlActions())
		}
		notes := rt.w.noticesFor("pi_2")
		if len(notes) != 1 {
			t.Fatalf("pi_2's notices %+v, want one", notes)
		}
		if want := notes[0].CreatedAt.Add(joinedLead); !s.SuspendAt.Equal(want) {
			t.Errorf("suspend_at %v, want %v", s.SuspendAt, want)
		}
	})
	rt.update(resumed+2*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Operator: "ops", Reason: "end of test"}, mustAccept(t, "waive"))
	if res := rt.run(input()); res.Stage != workflows.StageWaived {
		t.Fatalf("stage %s, want waived", res.Stage)
	}
	rt.w.keysUnique(t)
}

// An operator's waiver and retry_now sent while Stripe is asked, for a
// suspended customer who paid, are refused with answers that hold (Stripe
// may yet find a payment); once pi_2 is found, the waiver is taken and
// forgives it.
func TestControlsWhileTheSuspendedCustomerIsCheckedAreAnsweredTruly(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.unpaidDelay = time.Minute })
	rt.w.unpaid = []activities.UnpaidPayment{secondFailure()}
	paid := 12 * time.Hour
	rt.payPI1(paid)
	var refusals []error
	refused := func(r workflows.OperatorResult, err error) {
		if err == nil {
			t.Errorf("accepted %+v while Stripe was asked, with nothing known to be owed", r)
		}
		refusals = append(refusals, err)
	}
	rt.update(paid+20*time.Second, workflows.ControlWaive, workflows.OperatorRequest{Operator: "ops", Reason: "goodwill"}, refused)
	rt.update(paid+30*time.Second, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}, refused)
	rt.at(paid+5*time.Minute, func() {
		if s := rt.status(); s.Stage != workflows.StagePastDue || intentOf(s, "pi_2") == nil {
			t.Errorf("stage %s, intents %+v; want the life reopened for pi_2", s.Stage, s.Intents)
		}
	})
	rt.update(paid+10*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Operator: "ops", Reason: "goodwill"}, mustAccept(t, "waive"))
	res := rt.run(input())
	if res.Stage != workflows.StageWaived {
		t.Fatalf("stage %s, want waived", res.Stage)
	}
	if len(refusals) != 2 || !strings.Contains(refusals[0].Error(), "Stripe is being asked") {
		t.Errorf("answers %v, want the waiver refused saying Stripe is being asked, and retry_now refused", refusals)
	}
	if want := []string{"suspend", "resume"}; !equal(rt.w.controlActions(), want) {
		t.Errorf("control plane %v, want %v", rt.w.controlActions(), want)
	}
	if want := []string{"payment_failed", "account_suspended", "account_resumed", "payment_failed", "payment_waived"}; !equal(rt.w.stageNoticeTypes(), want) {
		t.Errorf("notices %v, want %v", rt.w.stageNoticeTypes(), want)
	}
	rt.w.keysUnique(t)
}

// pi_2's failure comes while Stripe and Amberflo are asked again before
// the deprovisioning: it is called off, the customer is told of pi_2, and
// is not deprovisioned before half the grace period after that notice.
func TestFailureDuringTheDeprovisioningRecheckIsToldAndGivenItsLead(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.checkDelay = time.Minute })
	deprovAt := suspendedAt + settings.DeprovisionAfter
	second := failed("evt_second", "pi_2", t0.Add(deprovAt))
	second.Intent.Amount = 2500
	var told time.Time
	rt.at(deprovAt-time.Minute, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended {
			t.Fatalf("stage %s before the deprovisioning, want suspended", s.Stage)
		}
	})
	rt.at(deprovAt+30*time.Second, func() {
		if !equal(rt.w.controlActions(), []string{"suspend"}) {
			t.Fatalf("control plane %v, want the re-check before the deprovisioning under way", rt.w.controlActions())
		}
		rt.env.SignalWorkflow(workflows.SignalPaymentFailed, second)
	})
	rt.at(deprovAt+time.Hour, func() {
		notes := rt.w.noticesFor("pi_2")
		if len(notes) != 1 {
			t.Fatalf("notices %v, want pi_2 told", rt.w.noticeTypes())
		}
		told = notes[0].CreatedAt
		if s := rt.status(); s.Stage != workflows.StageSuspended || !s.DeprovisionAt.Equal(told.Add(joinedLead)) {
			t.Errorf("an hour after pi_2's notice: stage %s, deprovision_at %v; want suspended until %v", s.Stage, s.DeprovisionAt, told.Add(joinedLead))
		}
	})
	res := rt.run(input())
	if res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("stage %s, want deprovisioned", res.Stage)
	}
	notes := rt.w.noticesFor("pi_2")
	if len(notes) != 1 {
		t.Fatalf("notices %v, want pi_2 told", rt.w.noticeTypes())
	}
	if now, want := rt.env.Now(), notes[0].CreatedAt.Add(joinedLead); now.Before(want) {
		t.Errorf("deprovisioned at %v, %s after pi_2's notice; want no sooner than %v", now, now.Sub(notes[0].CreatedAt), want)
	}
}
