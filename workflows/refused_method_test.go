package workflows_test

import (
	"time"

	"testing"

	"go.temporal.io/sdk/temporal"

	"dunning/activities"
	"dunning/workflows"
)

// methodRefused is Stripe's answer, as RetryPayment returns it, to a
// confirm whose payment method the customer no longer has (removed in the
// portal after the owed check chose it): 400 invalid_request_error on
// payment_method. Nothing was charged.
func methodRefused(pm string) error {
	return temporal.NewNonRetryableApplicationError(
		"confirm payment intent pi_1: stripe rejected the request (400 invalid_request_error resource_missing): No such PaymentMethod: '"+pm+"'",
		activities.ErrStripeRejected, nil,
		activities.StripeRefusal{Status: 400, Type: "invalid_request_error", Code: "resource_missing", Param: "payment_method"})
}

// The customer replaces the card between the owed check and the confirm:
// Stripe refuses the card that was chosen. That is no decline: the card
// is not counted, nobody is alarmed, and the charge is decided again at
// once on what Stripe says now, the new card, under a key of its own.
func TestCardReplacedBeforeTheConfirmIsDecidedAgain(t *testing.T) {
	var confirms []time.Time
	rt := newRecoveryTest(t, func(w *world) {
		w.retryHook = func(in activities.RetryInput) (activities.RetryResult, error, bool) {
			confirms = append(confirms, w.now())
			if in.PaymentMethodID == "pm_1" {
				w.defaultPM = "pm_2"
				return activities.RetryResult{}, methodRefused("pm_1"), true
			}
			return activities.RetryResult{}, nil, false
		}
	})
	rt.w.succeedOnAttempt = 2 // the first attempt is the refused one
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered || len(rt.w.retries) != 1 || rt.w.retries[0].PaymentMethodID != "pm_2" {
		t.Fatalf("stage %s, charged %+v; want recovered by one confirm with pm_2", res.Stage, rt.w.retries)
	}
	if len(confirms) != 2 || confirms[1].Sub(confirms[0]) > time.Minute {
		t.Errorf("confirms at %v; want the new card confirmed in the same round as the refused one", offsets(confirms))
	}
	if n := rt.w.alertsWith("critical", ""); n != 0 {
		t.Errorf("%d critical alerts, want none for a card the customer replaced: %+v", n, rt.w.alerts)
	}
	for _, c := range res.Cards {
		if c.Key == "fp_pm_1" && len(c.Attempts) > 0 {
			t.Errorf("card pm_1 counted %d attempt(s); Stripe refused it, nothing reached the card", len(c.Attempts))
		}
	}
	for _, n := range rt.w.notices {
		if n.Type == "payment_retry_failed" {
			t.Errorf("customer told of a failed retry; nothing was declined")
		}
	}
}

// Stripe keeps refusing what dunning reads as the card to charge: each
// round decides once more on fresh state, then stops (no hot loop) and
// tells ops; the refusal neither counts against the card nor pauses the
// recovery, which goes on to its stages.
func TestPaymentMethodStripeKeepsRefusingReachesOps(t *testing.T) {
	var confirms []time.Time
	rt := newRecoveryTest(t, func(w *world) {
		w.retryHook = func(in activities.RetryInput) (activities.RetryResult, error, bool) {
			confirms = append(confirms, w.now())
			return activities.RetryResult{}, methodRefused(in.PaymentMethodID), true
		}
	})
	res := rt.run(input())
	if res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("stage %s, want deprovisioned: the refusal must not hold the recovery", res.Stage)
	}
	rounds := len(settings.RetrySchedule)
	if len(confirms) != 2*rounds {
		t.Errorf("%d confirms at %v; want two per round (%d rounds)", len(confirms), offsets(confirms), rounds)
	}
	if n := rt.w.alertsWith("critical", "refused the payment method"); n != rounds {
		t.Errorf("%d alerts about the refused payment method, want one per round (%d): %+v", n, rounds, rt.w.alerts)
	}
	for _, c := range res.Cards {
		if len(c.Attempts) > 0 {
			t.Errorf("card %s counted %d attempt(s); Stripe refused every confirm", c.Key, len(c.Attempts))
		}
	}
}
