package workflows_test

import (
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/workflow"

	"dunning/activities"
	"dunning/workflows"
)

// retry_now answers what the charge path would do now. After a card event
// the card it would charge may no longer be the one a hold is on: an
// operator's retry_now is then taken, and the new card charged at once,
// before the card event's own (debounced) round.
func TestRetryNowChargesTheCardSetSinceAHold(t *testing.T) {
	for _, tc := range []struct {
		name    string
		decline activities.Decline
		limit   int
	}{
		{"stop decline", activities.Decline{Code: "card_declined", DeclineCode: "stolen_card"}, 0},
		{"attempt limit", activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRecoveryTest(t, func(w *world) { w.declines["pm_1"] = tc.decline })
			in := input()
			in.Settings.CardUpdateDebounce = 10 * time.Minute
			in.Settings.MaxAttemptsPerCard = tc.limit
			// The scheduled retry at +1h declines on pm_1, which holds it.
			// At +90m the customer adds pm_2 and makes it the default.
			rt.at(90*time.Minute, func() { rt.w.set(func() { rt.w.defaultPM = "pm_2" }) })
			rt.signal(90*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
				EventID: "evt_attached", Created: t0.Add(90 * time.Minute), PaymentMethodID: "pm_2", Source: "payment_method.attached"})
			var answer string
			rt.update(91*time.Minute, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}, func(r workflows.OperatorResult, err error) {
				if err != nil || !r.Accepted {
					t.Errorf("retry_now after a new card: %+v %v; want accepted", r, err)
				}
				answer = r.Message
			})
			rt.w.succeedOnAttempt = 2
			res := rt.runWith(withFirst(rt, in))
			var pms []string
			for _, r := range rt.w.retries {
				pms = append(pms, r.PaymentMethodID)
			}
			if res.Stage != workflows.StageRecovered || !equal(pms, []string{"pm_1", "pm_2"}) {
				t.Fatalf("stage %s, confirms with %v; want pm_1 (held after it), then pm_2", res.Stage, pms)
			}
			if d := rt.env.Now().Sub(t0); d >= 100*time.Minute {
				t.Errorf("recovered at +%s; want at once on retry_now (+91m), not at the card event's round (+100m)", d)
			}
			if strings.Contains(answer, "held back") {
				t.Errorf("answer %q names a hold on what is charged", answer)
			}
		})
	}
}

// withFirst signals the first failure at 0 and returns in, for runWith.
func withFirst(rt *recoveryTest, in workflows.RecoveryInput) workflows.RecoveryInput {
	rt.signal(0, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	return in
}

// The card whose CVC was wrong, entered again: a new payment method with
// the card's fingerprint. The status no longer shows only the hold, and
// retry_now is taken and charges it.
func TestRetryNowChargesTheSameCardEnteredAgain(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.declines["pm_1"] = activities.Decline{Code: "incorrect_cvc", DeclineCode: "incorrect_cvc"}
		w.fingerprints = map[string]string{"pm_1b": w.fingerprint("pm_1")}
	})
	in := input()
	in.Settings.CardUpdateDebounce = 10 * time.Minute
	rt.at(90*time.Minute, func() { rt.w.set(func() { rt.w.defaultPM = "pm_1b" }) })
	rt.signal(90*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
		EventID: "evt_attached", Created: t0.Add(90 * time.Minute), PaymentMethodID: "pm_1b", Source: "payment_method.attached"})
	rt.at(90*time.Minute+30*time.Second, func() {
		s := rt.status()
		if len(s.Cards) != 1 || !strings.Contains(s.Cards[0].Held, "pm_1b") {
			t.Errorf("status cards %+v; want the card's hold to say that pm_1b, set since, is tried if it carries it", s.Cards)
		}
	})
	rt.update(91*time.Minute, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}, mustAccept(t, "retry_now after the card was entered again"))
	rt.w.succeedOnAttempt = 2
	res := rt.runWith(withFirst(rt, in))
	var pms []string
	for _, r := range rt.w.retries {
		pms = append(pms, r.PaymentMethodID)
	}
	if res.Stage != workflows.StageRecovered || !equal(pms, []string{"pm_1", "pm_1b"}) {
		t.Fatalf("stage %s, confirms with %v; want pm_1 (incorrect CVC), then pm_1b", res.Stage, pms)
	}
	if d := rt.env.Now().Sub(t0); d >= 100*time.Minute {
		t.Errorf("recovered at +%s; want at once on retry_now (+91m)", d)
	}
}

// retry_now is refused, naming the hold, when the charge path would hold
// every payment: the card last tried is held and the card event changed
// nothing; or the customer made a held card the default, which Stripe
// named at the card event's round, while the card last tried for an
// intent is not held.
func TestRetryNowRefusedWhileWhatWouldBeChargedIsHeld(t *testing.T) {
	stolen := activities.Decline{Code: "card_declined", DeclineCode: "stolen_card"}
	t.Run("an address edit", func(t *testing.T) {
		rt := newRecoveryTest(t, func(w *world) { w.declines["pm_1"] = stolen })
		rt.signal(90*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
			EventID: "evt_addr", Created: t0.Add(90 * time.Minute), PaymentMethodID: "pm_1", Source: "customer.source.updated"})
		refused := false
		rt.update(95*time.Minute, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}, func(r workflows.OperatorResult, err error) {
			refused = err != nil && strings.Contains(err.Error(), "pi_1: the bank said never to try this card again")
			if !refused {
				t.Errorf("retry_now on a stopped card after an address edit: %+v %v; want refused, naming the hold", r, err)
			}
		})
		if res := rt.run(input()); res.Stage != workflows.StageDeprovisioned || len(rt.w.retries) != 1 || !refused {
			t.Fatalf("stage %s, %d confirms; want the stopped card tried once", res.Stage, len(rt.w.retries))
		}
	})
	t.Run("a held card made the default", func(t *testing.T) {
		rt := newRecoveryTest(t)
		first := failed("evt_first", "pi_1", t0)
		first.Intent.PaymentMethodID = "pm_1"
		first.Intent.Decline = activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentMethod: "pm_1", Fingerprint: "fp_pm_1"}
		second := failed("evt_second", "pi_2", t0.Add(10*time.Minute))
		second.Intent.PaymentMethodID = "pm_9"
		stopped := stolen
		stopped.PaymentMethod, stopped.Fingerprint = "pm_9", "fp_pm_9"
		second.Intent.Decline = stopped
		rt.signal(10*time.Minute, workflows.SignalPaymentFailed, second)
		rt.at(20*time.Minute, func() { rt.w.set(func() { rt.w.defaultPM = "pm_9" }) })
		rt.signal(20*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
			EventID: "evt_default", Created: t0.Add(20 * time.Minute), Source: "customer.updated"})
		refused := false
		rt.update(30*time.Minute, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}, func(r workflows.OperatorResult, err error) {
			refused = err != nil && strings.Contains(err.Error(), "pi_1: the bank said never to try this card again") &&
				strings.Contains(err.Error(), "pi_2: the bank said never to try this card again")
			if !refused {
				t.Errorf("retry_now with a stopped card as the default: %+v %v; want refused, naming the hold of each payment", r, err)
			}
		})
		res := rt.runFrom(input(), first)
		if res.Stage != workflows.StageDeprovisioned || len(rt.w.retries) != 0 || !refused {
			t.Fatalf("stage %s, confirms %+v; want none on the stopped default", res.Stage, rt.w.retries)
		}
	})
}

// A life recorded before a new payment method lifted a needs-new-data
// hold holds the card whatever carries it: retry_now says so too, once
// Stripe has named the card entered again.
func TestRetryNowInALifeRecordedBeforeFreshDataLiftedTheHold(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.declines["pm_1"] = activities.Decline{Code: "incorrect_cvc", DeclineCode: "incorrect_cvc"}
		w.fingerprints = map[string]string{"pm_1b": w.fingerprint("pm_1")}
	})
	rt.env.OnGetVersion("fresh-data-lifts-new-data-hold", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	rt.at(90*time.Minute, func() { rt.w.set(func() { rt.w.defaultPM = "pm_1b" }) })
	rt.signal(90*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
		EventID: "evt_default", Created: t0.Add(90 * time.Minute), Source: "customer.updated"})
	refused := false
	rt.update(95*time.Minute, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}, func(r workflows.OperatorResult, err error) {
		refused = err != nil && strings.Contains(err.Error(), "pi_1: the card's details must change first")
		if !refused {
			t.Errorf("retry_now: %+v %v; want refused, naming the hold", r, err)
		}
	})
	if res := rt.run(input()); res.Stage != workflows.StageDeprovisioned || len(rt.w.retries) != 1 || !refused {
		t.Fatalf("stage %s, %d confirms; want the card held whatever the payment method", res.Stage, len(rt.w.retries))
	}
}

// A customer who removed their last card: retry_now still asks Stripe
// (a card may have been added without an event yet), and its answer says
// that nothing may be charged, rather than promising a charge.
func TestRetryNowAfterTheLastCardWasRemovedSaysSo(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.signal(10*time.Minute, workflows.SignalPaymentMethodRemoved, workflows.PaymentMethodRemovedSignal{
		EventID: "evt_removed", Created: t0.Add(10 * time.Minute), Source: "payment_method.detached"})
	var answer string
	rt.update(20*time.Minute, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}, func(r workflows.OperatorResult, err error) {
		if err != nil || !r.Accepted {
			t.Errorf("retry_now: %+v %v; want accepted, to ask Stripe again", r, err)
		}
		answer = r.Message
	})
	rt.runWith(withFirst(rt, input()))
	if !strings.Contains(answer, "no usable payment method") {
		t.Errorf("answer %q; want it to say the customer had no usable payment method", answer)
	}
}

// A life recorded before retry_now judged what a confirm would charge
// (no retry-now-judges-the-charge marker) judged a retry_now sent as a
// signal (the UI's Send Signal) on the card last tried alone, and refused
// it while that card was held, whatever card event came since: its
// history goes on that way (a replay that accepted it would run a round
// the history does not hold), and nothing is charged before the card
// event's own round. A life recorded since judges it as the update does.
func TestRetryNowSignalInALifeRecordedBeforeItJudgedTheCharge(t *testing.T) {
	stolen := activities.Decline{Code: "card_declined", DeclineCode: "stolen_card"}
	for _, tc := range []struct {
		name    string
		version workflow.Version
		// at is when pm_2 is first confirmed: at once on retry_now, or at
		// the card event's round.
		at time.Duration
	}{
		{"recorded before", workflow.DefaultVersion, 100 * time.Minute},
		{"recorded since", 1, 91 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRecoveryTest(t, func(w *world) { w.declines["pm_1"] = stolen })
			rt.env.OnGetVersion("retry-now-judges-the-charge", workflow.DefaultVersion, 1).Return(tc.version)
			in := input()
			in.Settings.CardUpdateDebounce = 10 * time.Minute
			rt.at(90*time.Minute, func() { rt.w.set(func() { rt.w.defaultPM = "pm_2" }) })
			rt.signal(90*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
				EventID: "evt_attached", Created: t0.Add(90 * time.Minute), PaymentMethodID: "pm_2", Source: "payment_method.attached"})
			rt.signal(91*time.Minute, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"})
			var confirms []time.Time
			rt.w.retryHook = func(in activities.RetryInput) (activities.RetryResult, error, bool) {
				confirms = append(confirms, rt.w.now())
				return activities.RetryResult{}, nil, false
			}
			rt.w.succeedOnAttempt = 2
			res := rt.runWith(withFirst(rt, in))
			if res.Stage != workflows.StageRecovered || len(confirms) != 2 {
				t.Fatalf("stage %s, confirms at %v; want pm_1 (stopped), then pm_2", res.Stage, offsets(confirms))
			}
			if got := confirms[1].Sub(t0).Round(time.Minute); got != tc.at {
				t.Errorf("pm_2 confirmed at +%s, want +%s", got, tc.at)
			}
		})
	}
}
