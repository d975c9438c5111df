package workflows_test

import (
	"testing"
	"time"

	"dunning/activities"
	"dunning/workflows"
)

// pi_1 fails on pm_a (insufficient funds) at 0; the customer has no
// default payment method. Stripe's own retry on pm_b fails soft at +30m,
// but its event is late. Dunning's first retry, at +1h, confirms pm_a
// (the card that failed, as far as it knows) and the bank says
// stolen_card. The +30m event arrives at +1h30m: it is older than
// dunning's own decline, so it is an attempt on pm_b, counted, and the
// intent keeps the stop on pm_a. No later retry charges pm_b, a card
// older than the intent's last decline, nor pm_a.
func TestOlderEventKeepsDunningsOwnStopDecline(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.defaultPM = ""
		w.declines = map[string]activities.Decline{"pm_a": {Code: "card_declined", DeclineCode: "stolen_card"}}
	})
	soft := activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds"}
	rt.signal(90*time.Minute, workflows.SignalPaymentFailed, declinedWith("evt_late", t0.Add(30*time.Minute), "pm_b", soft))
	rt.at(100*time.Minute, func() {
		s := rt.status()
		in := intentOf(s, "pi_1")
		if in == nil || in.PaymentMethodID != "pm_a" || in.Decline == nil || in.Decline.Class != activities.DeclineStop ||
			in.LastDecline != "stolen_card" {
			t.Errorf("pi_1 = %+v, want it to keep dunning's newer stop decline on pm_a", in)
		}
		for _, c := range s.Cards {
			if c.Key == "fp_pm_b" && len(c.Attempts) != 1 {
				t.Errorf("pm_b attempts %v, want 1: Stripe's attempt at +30m", c.Attempts)
			}
		}
	})
	rt.at(7*time.Hour, func() {
		if len(rt.w.retries) != 1 || rt.w.retries[0].PaymentMethodID != "pm_a" {
			t.Errorf("confirms %+v, want only the first retry's, on pm_a", rt.w.retries)
		}
		for _, r := range rt.w.retries[min(1, len(rt.w.retries)):] {
			t.Errorf("confirm of %s with %s after the stop decline, want none", r.IntentID, r.PaymentMethodID)
		}
		rt.env.CancelWorkflow()
	})
	rt.signal(0, workflows.SignalPaymentFailed, declinedWith("evt_first", t0, "pm_a", soft))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, input())
}

// Stripe's clock runs two minutes behind the workflow's: the retry sent
// at +1h declines on a charge Stripe created at +58m (do_not_honor, never
// again). A late event created at +57m, before that charge, is older and
// leaves the stop in place; one created at +59m, after it by Stripe's
// clock, is newer than dunning's decline (its own retry on pm_c) and
// replaces it, though the workflow's clock sent the confirm later.
func TestOwnDeclineOrderedByStripesClock(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.defaultPM = "" })
	rt.w.retryHook = func(in activities.RetryInput) (activities.RetryResult, error, bool) {
		if in.PaymentMethodID != "pm_a" {
			return activities.RetryResult{}, nil, false
		}
		d := activities.Decline{Code: "card_declined", DeclineCode: "do_not_honor", AdviceCode: "do_not_try_again",
			PaymentMethod: "pm_a", Fingerprint: "fp_pm_a", Charge: "ch_at58", Created: t0.Add(58 * time.Minute)}
		rt.w.retries = append(rt.w.retries, in)
		return activities.RetryResult{Outcome: activities.RetryDeclined, Status: "requires_payment_method",
			PaymentMethod: "pm_a", DeclineCode: d.DeclineCode, Decline: d}, nil, true
	}
	soft := activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds"}
	rt.signal(70*time.Minute, workflows.SignalPaymentFailed, declinedWith("evt_57", t0.Add(57*time.Minute), "pm_b", soft))
	rt.at(75*time.Minute, func() {
		in := intentOf(rt.status(), "pi_1")
		if in == nil || in.PaymentMethodID != "pm_a" || in.Decline == nil || in.Decline.Class != activities.DeclineStop {
			t.Errorf("pi_1 = %+v, want the stop on pm_a kept: the +57m event is older than the charge", in)
		}
	})
	rt.signal(80*time.Minute, workflows.SignalPaymentFailed, declinedWith("evt_59", t0.Add(59*time.Minute), "pm_c", soft))
	rt.at(85*time.Minute, func() {
		in := intentOf(rt.status(), "pi_1")
		if in == nil || in.PaymentMethodID != "pm_c" || in.LastDecline != "insufficient_funds" || !in.LastEventAt.Equal(t0.Add(59*time.Minute)) {
			t.Errorf("pi_1 = %+v, want the +59m decline on pm_c: newer than the charge by Stripe's clock", in)
		}
		rt.env.CancelWorkflow()
	})
	rt.signal(0, workflows.SignalPaymentFailed, declinedWith("evt_first", t0, "pm_a", soft))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, input())
}

// The first retry (+1h) on pm_a is answered that the bank wants the
// customer to authenticate (402 authentication_required): a decline by
// dunning too. Stripe's attempt on pm_b at +30m, whose event comes at
// +1h30m, is older: the intent keeps pm_a and the authentication it
// waits for.
func TestOlderEventKeepsDunningsOwnAuthenticationDecline(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.defaultPM = "" })
	rt.w.retryHook = func(in activities.RetryInput) (activities.RetryResult, error, bool) {
		d := activities.Decline{Code: "authentication_required", DeclineCode: "authentication_required",
			PaymentMethod: in.PaymentMethodID, Fingerprint: "fp_" + in.PaymentMethodID, IntentStatus: "requires_payment_method"}
		rt.w.retries = append(rt.w.retries, in)
		return activities.RetryResult{Outcome: activities.RetryRequiresAction, Status: "requires_payment_method",
			PaymentMethod: in.PaymentMethodID, DeclineCode: d.DeclineCode, Decline: d}, nil, true
	}
	soft := activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds"}
	rt.signal(90*time.Minute, workflows.SignalPaymentFailed, declinedWith("evt_late", t0.Add(30*time.Minute), "pm_b", soft))
	rt.at(100*time.Minute, func() {
		in := intentOf(rt.status(), "pi_1")
		if in == nil || in.PaymentMethodID != "pm_a" || in.Decline == nil || in.Decline.Class != activities.DeclineAuthentication || !in.NeedsAction {
			t.Errorf("pi_1 = %+v, want it to keep dunning's newer authentication decline on pm_a", in)
		}
		rt.env.CancelWorkflow()
	})
	rt.signal(0, workflows.SignalPaymentFailed, declinedWith("evt_first", t0, "pm_a", soft))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, input())
}
