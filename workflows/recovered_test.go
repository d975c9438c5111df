package workflows_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"dunning/activities"
	"dunning/workflows"
)

// secondFailure is pi_2 as Stripe lists it: declined on the customer's
// card 5 minutes after pi_1, its failure event not delivered yet.
func secondFailure() activities.UnpaidPayment {
	return activities.UnpaidPayment{IntentID: "pi_2", InvoiceID: "in_pi_2", Amount: 2500, Currency: "usd", Status: "requires_payment_method",
		Created: t0.Add(5 * time.Minute).Unix(), Why: "intent requires_payment_method after a decline (insufficient_funds)",
		Decline: activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", Charge: "ch_2", PaymentMethod: "pm_1",
			Fingerprint: "fp_pm_1", IntentStatus: "requires_payment_method"}}
}

func (w *world) alertTitles() []string {
	var out []string
	for _, a := range w.alerts {
		out = append(out, a.Title)
	}
	return out
}

func countPrefix(all []string, prefix string) int {
	n := 0
	for _, s := range all {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func intentOf(s workflows.RecoveryState, id string) *workflows.Intent {
	for _, in := range s.Intents {
		if in.ID == id {
			return in
		}
	}
	return nil
}

// pi_1 fails and is paid; pi_2 failed 5 minutes after it, but its event
// comes 15 minutes after the payment. The customer is not told that the
// recovery is over, pi_2 is taken into the life (no charge at once on the
// card that just declined), its late event is recognised as applied and
// opens nothing, and the life ends once pi_2 is paid too, with one
// "recovered".
func TestDelayedSecondFailureKeepsTheLifeGoing(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.w.unpaid = []activities.UnpaidPayment{secondFailure()}
	rt.w.succeedOnAttempt = 1
	rt.at(30*time.Minute, func() {
		rt.w.mu.Lock()
		rt.w.paidIntents["pi_1"] = true
		rt.w.mu.Unlock()
		rt.env.SignalWorkflow(workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_1", Created: t0.Add(30 * time.Minute), IntentID: "pi_1", Source: "payment_intent.succeeded"})
	})
	var lifecycle string
	rt.at(31*time.Minute, func() {
		s := rt.status()
		lifecycle = s.Lifecycle
		if s.Stage != workflows.StagePastDue {
			t.Errorf("stage %s after pi_1 was paid, want past_due: pi_2 is unpaid", s.Stage)
		}
		in := intentOf(s, "pi_2")
		if in == nil || in.State != workflows.IntentOpen || in.AdoptedAt.IsZero() || in.Amount != 2500 {
			t.Fatalf("pi_2 = %+v, want it open, found in Stripe", in)
		}
		if in.Decline == nil || in.Decline.Class != activities.DeclineSoft {
			t.Errorf("pi_2 decline = %+v, want it classified (soft) as the event's would be", in.Decline)
		}
		if want := []string{"payment_failed", "payment_failed"}; !equal(rt.w.noticeTypes(), want) {
			t.Errorf("notices %v, want %v: told of pi_2, not \"recovered\"", rt.w.noticeTypes(), want)
		} else if n := rt.w.notices[1]; n.AmountDue != 2500 || !strings.HasSuffix(n.Key, ":past_due:pi_2:notice") {
			t.Errorf("second notice %+v, want pi_2's own, for its 25.00", n)
		}
		if n := countPrefix(rt.w.alertTitles(), "Recovered"); n != 0 {
			t.Errorf("alerts %v: ops told of a recovery with pi_2 unpaid", rt.w.alertTitles())
		}
	})
	// Stripe's event for pi_2, a quarter of an hour late.
	late := failed("evt_second", "pi_2", t0.Add(5*time.Minute))
	late.Intent.Amount, late.Intent.PaymentMethodID = 2500, "pm_1"
	late.Intent.Decline = secondFailure().Decline
	rt.signal(45*time.Minute, workflows.SignalPaymentFailed, late)
	rt.at(50*time.Minute, func() {
		s := rt.status()
		if s.Lifecycle != lifecycle {
			t.Errorf("life %q became %q: the late event opened a new one", lifecycle, s.Lifecycle)
		}
		if !equal(rt.w.noticeTypes(), []string{"payment_failed", "payment_failed"}) {
			t.Errorf("notices %v after the late event, want pi_1's and pi_2's payment_failed only", rt.w.noticeTypes())
		}
		for _, c := range s.Cards {
			if c.Key == "fp_pm_1" && len(c.Attempts) != 1 {
				t.Errorf("card fp_pm_1 attempts %v, want the one decline counted once", c.Attempts)
			}
		}
		if len(rt.w.retries) != 0 {
			t.Errorf("retries %v before the scheduled one: the card that just declined was charged at once", rt.w.retries)
		}
	})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
	if len(rt.w.retries) != 1 || rt.w.retries[0].IntentID != "pi_2" {
		t.Errorf("retries %v, want pi_2 charged once, at the scheduled retry", rt.w.retries)
	}
	states := map[string]workflows.IntentState{}
	for _, in := range res.Intents {
		states[in.ID] = in.State
	}
	if len(states) != 2 || states["pi_1"] != workflows.IntentPaid || states["pi_2"] != workflows.IntentPaid {
		t.Errorf("intents %v, want pi_1 and pi_2 paid in one life", states)
	}
	if want := []string{"payment_failed", "payment_failed", "payment_recovered"}; !equal(rt.w.noticeTypes(), want) {
		t.Errorf("notices %v, want %v", rt.w.noticeTypes(), want)
	}
	if n := countPrefix(rt.w.alertTitles(), "Recovered"); n != 1 {
		t.Errorf("alerts %v, want one Recovered", rt.w.alertTitles())
	}
	if rt.w.unpaidReads != 2 {
		t.Errorf("%d reads of the other unpaid payments, want one at each end asked for", rt.w.unpaidReads)
	}
}

// The payment of pi_2 reaches the recovery while Stripe's list, taken
// before it, still shows pi_2 unpaid: it is not taken up, and the life
// ends recovered.
func TestPaymentDuringTheUnpaidReadIsApplied(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.unpaidDelay = time.Minute })
	rt.w.unpaid = []activities.UnpaidPayment{secondFailure()}
	rt.signal(30*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_1", Created: t0.Add(30 * time.Minute), IntentID: "pi_1", Source: "payment_intent.succeeded"})
	rt.signal(30*time.Minute+20*time.Second, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_2", Created: t0.Add(30 * time.Minute), InvoiceID: "in_pi_2", Source: "invoice.paid"})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered || len(res.Intents) != 1 {
		t.Fatalf("ended %s with %+v, want recovered with pi_1 alone", res.Stage, res.Intents)
	}
	if rt.w.unpaidReads != 1 {
		t.Errorf("%d reads of the other unpaid payments, want 1", rt.w.unpaidReads)
	}
	if want := []string{"payment_failed", "payment_recovered"}; !equal(rt.w.noticeTypes(), want) {
		t.Errorf("notices %v, want %v", rt.w.noticeTypes(), want)
	}
	if len(rt.w.retries) != 0 {
		t.Errorf("retries %v, want none", rt.w.retries)
	}
}

// An operator's waiver sent while Stripe is asked is refused with an
// answer that holds: the recovery may yet go on.
func TestWaiveDuringTheUnpaidReadIsAnsweredTruly(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.unpaidDelay = time.Minute })
	rt.w.unpaid = []activities.UnpaidPayment{secondFailure()}
	rt.signal(30*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_1", Created: t0.Add(30 * time.Minute), IntentID: "pi_1", Source: "payment_intent.succeeded"})
	var refusal error
	rt.update(30*time.Minute+20*time.Second, workflows.ControlWaive, workflows.OperatorRequest{Operator: "ops", Reason: "goodwill"},
		func(r workflows.OperatorResult, err error) {
			if err == nil {
				t.Errorf("waiver accepted (%+v) while Stripe was asked, with nothing known to forgive", r)
			}
			refusal = err
		})
	rt.at(32*time.Minute, func() {
		if s := rt.status(); intentOf(s, "pi_2") == nil || s.Stage != workflows.StagePastDue {
			t.Errorf("stage %s, intents %+v: want pi_2 taken up", s.Stage, s.Intents)
		}
		rt.w.mu.Lock()
		rt.w.paidIntents["pi_2"] = true
		rt.w.mu.Unlock()
		rt.env.SignalWorkflow(workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_2", Created: t0.Add(32 * time.Minute), IntentID: "pi_2", Source: "payment_intent.succeeded"})
	})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
	if refusal == nil || !strings.Contains(refusal.Error(), "Stripe is being asked") {
		t.Errorf("waiver answered %v, want it refused saying Stripe is being asked", refusal)
	}
}

// Stripe does not answer the list: the customer is not told "recovered"
// until it does; ops hear of the wait once it passes the re-check bound.
func TestUnansweredUnpaidReadHoldsTheRecoveredNotice(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.w.unpaidErr = func() error {
		if rt.w.now().Before(t0.Add(30*time.Minute + 90*time.Minute)) {
			return errors.New("stripe answered 503")
		}
		return nil
	}
	rt.signal(30*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_1", Created: t0.Add(30 * time.Minute), IntentID: "pi_1", Source: "payment_intent.succeeded"})
	rt.at(100*time.Minute, func() {
		if !equal(rt.w.noticeTypes(), []string{"payment_failed"}) {
			t.Errorf("notices %v while Stripe could not be asked, want no payment_recovered", rt.w.noticeTypes())
		}
		if s := rt.status(); s.Next.Kind != workflows.NextConfirmRecovered {
			t.Errorf("next %+v, want %s", s.Next, workflows.NextConfirmRecovered)
		}
	})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered once Stripe answered", res.Stage)
	}
	if d := rt.env.Now().Sub(t0); d < 120*time.Minute || d > 125*time.Minute {
		t.Errorf("ended at +%s, want soon after Stripe answered again (+2h)", d)
	}
	if want := []string{"payment_failed", "payment_recovered"}; !equal(rt.w.noticeTypes(), want) {
		t.Errorf("notices %v, want %v", rt.w.noticeTypes(), want)
	}
	if n := countPrefix(rt.w.alertTitles(), "Recovery not confirmed"); n != 1 {
		t.Errorf("alerts %v, want ops told once of the held notice", rt.w.alertTitles())
	}
}

// pi_2's late event reaches the recovery while Stripe is asked: the
// failure joins the life as ever, nothing is adopted twice, and the
// customer is not told "recovered".
func TestLateFailureDuringTheUnpaidReadJoinsOnce(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.unpaidDelay = time.Minute })
	rt.w.unpaid = []activities.UnpaidPayment{secondFailure()}
	rt.w.succeedOnAttempt = 1
	rt.at(30*time.Minute, func() {
		rt.w.mu.Lock()
		rt.w.paidIntents["pi_1"] = true
		rt.w.mu.Unlock()
		rt.env.SignalWorkflow(workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_1", Created: t0.Add(30 * time.Minute), IntentID: "pi_1", Source: "payment_intent.succeeded"})
	})
	late := failed("evt_second", "pi_2", t0.Add(5*time.Minute))
	late.Intent.Amount = 2500
	rt.signal(30*time.Minute+20*time.Second, workflows.SignalPaymentFailed, late)
	rt.at(35*time.Minute, func() {
		s := rt.status()
		n := 0
		for _, in := range s.Intents {
			if in.ID == "pi_2" {
				n++
				if !in.AdoptedAt.IsZero() || in.State != workflows.IntentOpen {
					t.Errorf("pi_2 = %+v, want it open as its event brought it", in)
				}
			}
		}
		if n != 1 || s.Stage != workflows.StagePastDue {
			t.Errorf("stage %s with pi_2 %d time(s), want past_due with pi_2 once", s.Stage, n)
		}
		if !equal(rt.w.noticeTypes(), []string{"payment_failed", "payment_failed"}) {
			t.Errorf("notices %v, want pi_1's and pi_2's payment_failed, no payment_recovered while pi_2 is owed", rt.w.noticeTypes())
		}
	})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered || len(res.Intents) != 2 {
		t.Fatalf("ended %s with %+v, want recovered with pi_1 and pi_2", res.Stage, res.Intents)
	}
	if want := []string{"payment_failed", "payment_failed", "payment_recovered"}; !equal(rt.w.noticeTypes(), want) {
		t.Errorf("notices %v, want %v", rt.w.noticeTypes(), want)
	}
}

// Stripe still lists a failed payment from weeks before this life (a
// debt an earlier recovery left when it deprovisioned, or a checkout the
// customer abandoned after a decline). It is not this life's late event:
// dunning neither charges it nor holds the end for it. The customer hears
// that this recovery is over, and ops are told of the older payment once.
func TestOlderUnpaidPaymentIsToldNotCharged(t *testing.T) {
	rt := newRecoveryTest(t)
	old := secondFailure()
	old.IntentID, old.InvoiceID, old.Decline.Charge = "pi_old", "in_old", "ch_old"
	old.Created = t0.Add(-40 * 24 * time.Hour).Unix()
	rt.w.unpaid = []activities.UnpaidPayment{old}
	rt.at(30*time.Minute, func() {
		rt.w.mu.Lock()
		rt.w.paidIntents["pi_1"] = true
		rt.w.mu.Unlock()
		rt.env.SignalWorkflow(workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_1", Created: t0.Add(30 * time.Minute), IntentID: "pi_1", Source: "payment_intent.succeeded"})
	})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered: an older payment does not hold this life", res.Stage)
	}
	if intentOf(rt.status(), "pi_old") != nil {
		t.Errorf("pi_old taken into the life; it is older than the life's late-event window")
	}
	for _, r := range rt.w.retries {
		if r.IntentID == "pi_old" {
			t.Errorf("pi_old charged: %+v", r)
		}
	}
	if want := []string{"payment_failed", "payment_recovered"}; !equal(rt.w.noticeTypes(), want) {
		t.Errorf("notices %v, want %v", rt.w.noticeTypes(), want)
	}
	if n := countPrefix(rt.w.alertTitles(), "Older unpaid payments"); n != 1 {
		t.Fatalf("alerts %v, want ops told once of the older unpaid payment", rt.w.alertTitles())
	}
	for _, a := range rt.w.alerts {
		if strings.HasPrefix(a.Title, "Older unpaid payments") && !strings.Contains(a.Text, "pi_old") {
			t.Errorf("alert %q does not name pi_old", a.Text)
		}
	}
}

// pi_2 was declined twice before its events came: first on a card the
// bank said was stolen (ch_1, on pm_9), then by Stripe's own retry on
// the customer's card (ch_2, on pm_1), which is what Stripe's list shows
// when the life adopts pi_2. The late event of ch_1, created before the
// adoption, is a decline the life never saw: the stolen card is stopped
// and its attempt counted, not dropped as the adopted decline.
func TestEarlierDeclineOfAnAdoptedIntentIsApplied(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.w.unpaid = []activities.UnpaidPayment{secondFailure()}
	rt.at(30*time.Minute, func() {
		rt.w.mu.Lock()
		rt.w.paidIntents["pi_1"] = true
		rt.w.mu.Unlock()
		rt.env.SignalWorkflow(workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_1", Created: t0.Add(30 * time.Minute), IntentID: "pi_1", Source: "payment_intent.succeeded"})
	})
	first := failed("evt_second_first", "pi_2", t0.Add(3*time.Minute))
	first.Intent.Amount, first.Intent.PaymentMethodID, first.Intent.DeclineCode = 2500, "pm_9", "stolen_card"
	first.Intent.Decline = activities.Decline{Code: "card_declined", DeclineCode: "stolen_card", Charge: "ch_1", PaymentMethod: "pm_9",
		Fingerprint: "fp_pm_9", IntentStatus: "requires_payment_method"}
	rt.signal(45*time.Minute, workflows.SignalPaymentFailed, first)
	rt.at(50*time.Minute, func() {
		s := rt.status()
		if in := intentOf(s, "pi_2"); in == nil || in.AdoptedAt.IsZero() {
			t.Fatalf("pi_2 = %+v, want it adopted from Stripe's list", in)
		}
		var stolen *workflows.CardRecord
		for _, c := range s.Cards {
			if c.Key == "fp_pm_9" {
				stolen = c
			}
		}
		if stolen == nil || !stolen.Stopped || len(stolen.Attempts) != 1 {
			t.Errorf("card fp_pm_9 = %+v, want it stopped with its one attempt counted: the stolen-card decline was dropped as the adopted one", stolen)
		}
		if !slices.Contains(s.AppliedEvents, "evt_second_first") {
			t.Errorf("applied events %v, want evt_second_first remembered", s.AppliedEvents)
		}
	})
	rt.at(55*time.Minute, func() { rt.env.CancelWorkflow() })
	rt.signal(0, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, input())
}

// pi_2 and pi_3 both declined on the customer's card before their events
// came, and the life adopts both from one list of Stripe's: two attempts
// on that card, not one.
func TestTwoAdoptedDeclinesOnOneCardCountTwice(t *testing.T) {
	rt := newRecoveryTest(t)
	third := secondFailure()
	third.IntentID, third.InvoiceID, third.Created = "pi_3", "in_pi_3", t0.Add(7*time.Minute).Unix()
	third.Decline.Charge = "ch_3"
	rt.w.unpaid = []activities.UnpaidPayment{secondFailure(), third}
	rt.at(30*time.Minute, func() {
		rt.w.mu.Lock()
		rt.w.paidIntents["pi_1"] = true
		rt.w.mu.Unlock()
		rt.env.SignalWorkflow(workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_1", Created: t0.Add(30 * time.Minute), IntentID: "pi_1", Source: "payment_intent.succeeded"})
	})
	rt.at(35*time.Minute, func() {
		s := rt.status()
		for _, id := range []string{"pi_2", "pi_3"} {
			if in := intentOf(s, id); in == nil || in.AdoptedAt.IsZero() {
				t.Fatalf("%s = %+v, want it adopted from Stripe's list", id, in)
			}
		}
		var attempts []time.Time
		for _, c := range s.Cards {
			if c.Key == "fp_pm_1" {
				attempts = c.Attempts
			}
		}
		if len(attempts) != 2 {
			t.Errorf("card fp_pm_1 attempts %v, want the two adopted declines counted", attempts)
		}
	})
	rt.at(40*time.Minute, func() { rt.env.CancelWorkflow() })
	rt.signal(0, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, input())
}

// Stripe refuses the list when pi_1 is paid (ops are told at once that
// the notice is held, and it is asked again in an hour); pi_2 fails
// meanwhile and joins the life, so that hold is over; when pi_2 is paid,
// Stripe still refuses: that is a new hold, and ops hear of it too,
// dated from its own start.
func TestANewHoldAfterAFailureJoinedIsToldAgain(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.w.unpaidErr = func() error {
		if rt.w.now().Before(t0.Add(7 * time.Hour)) {
			return temporal.NewNonRetryableApplicationError("403 this key may not list invoices", activities.ErrStripeRejected, nil)
		}
		return nil
	}
	rt.signal(30*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_1", Created: t0.Add(30 * time.Minute), IntentID: "pi_1", Source: "payment_intent.succeeded"})
	rt.signal(50*time.Minute, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(50*time.Minute)))
	rt.at(51*time.Minute, func() {
		if n := countPrefix(rt.w.alertTitles(), "Recovery not confirmed"); n != 1 {
			t.Errorf("alerts %v, want ops told of the first hold", rt.w.alertTitles())
		}
	})
	rt.at(5*time.Hour, func() {
		rt.w.mu.Lock()
		rt.w.paidIntents["pi_2"] = true
		rt.w.mu.Unlock()
		rt.env.SignalWorkflow(workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_2", Created: t0.Add(5 * time.Hour), IntentID: "pi_2", Source: "payment_intent.succeeded"})
	})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered once Stripe answered", res.Stage)
	}
	var held []string
	for _, a := range rt.w.alerts {
		if strings.HasPrefix(a.Title, "Recovery not confirmed") {
			held = append(held, a.Text)
		}
	}
	if len(held) != 2 {
		t.Fatalf("held alerts %q, want one for each hold", held)
	}
	if since := t0.Add(5 * time.Hour).UTC().Format(time.RFC3339); !strings.Contains(held[1], "since "+since) {
		t.Errorf("second held alert %q, want it dated from the second hold (%s)", held[1], since)
	}
}

// While the end as recovered is held (Stripe refused the list, and is
// asked again in an hour), an operator's waiver and grace extension are
// refused with an answer that holds: the recovery is not ending.
func TestControlsDuringAHeldEndAreAnsweredTruly(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.w.unpaidErr = func() error {
		if rt.w.now().Before(t0.Add(2 * time.Hour)) {
			return temporal.NewNonRetryableApplicationError("403 this key may not list invoices", activities.ErrStripeRejected, nil)
		}
		return nil
	}
	rt.signal(30*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_1", Created: t0.Add(30 * time.Minute), IntentID: "pi_1", Source: "payment_intent.succeeded"})
	var refusals []error
	answer := func(r workflows.OperatorResult, err error) {
		if err == nil {
			t.Errorf("control accepted (%+v) with nothing known to be owed", r)
		}
		refusals = append(refusals, err)
	}
	rt.update(45*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Operator: "ops", Reason: "goodwill"}, answer)
	rt.update(46*time.Minute, workflows.ControlExtendGrace, workflows.ExtendGraceRequest{By: "24h", Reason: "asked"}, answer)
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered once Stripe answered", res.Stage)
	}
	if len(refusals) != 2 {
		t.Fatalf("answers %v, want two refusals", refusals)
	}
	for _, err := range refusals {
		if err == nil || strings.Contains(err.Error(), "is ending") || !strings.Contains(err.Error(), "held") {
			t.Errorf("answered %v while the end was held for Stripe, want it said held, not ending", err)
		}
	}
}

// Stripe refuses the list for six hours after pi_1 is paid, while every
// scheduled retry of the life falls due with nothing owed; pi_2, declined
// at +5h, is then adopted. The missed retries are not made up in a burst
// on the card that just declined: one retry, an interval later.
func TestAdoptionAfterALongHoldDoesNotBurstRetries(t *testing.T) {
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
	rt.at(6*time.Hour+31*time.Minute, func() {
		if in := intentOf(rt.status(), "pi_2"); in == nil || in.AdoptedAt.IsZero() {
			t.Fatalf("pi_2 = %+v, want it adopted at +6h30m", in)
		}
		if len(rt.w.retries) != 0 {
			t.Errorf("%d confirms at the adoption, want none on the card that just declined", len(rt.w.retries))
		}
	})
	rt.at(8*time.Hour, func() {
		if len(rt.w.retries) != 1 {
			t.Errorf("%d confirms by +8h, want the missed scheduled retries made up as one", len(rt.w.retries))
		}
		if n := countPrefix(rt.w.noticeTypes(), "payment_retry_failed"); n > 1 {
			t.Errorf("notices %v, want at most one payment_retry_failed", rt.w.noticeTypes())
		}
		rt.env.CancelWorkflow()
	})
	rt.signal(0, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, input())
}
