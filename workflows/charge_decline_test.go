package workflows_test

import (
	"testing"
	"time"

	"dunning/activities"
	"dunning/workflows"
)

// failedWithCharge is Stripe's own failed attempt as an event of an API
// version that names the charge without showing it: the error says
// generic_decline, and only the charge's outcome may say more.
func failedWithCharge(eventID, intent, charge string, created time.Time) workflows.PaymentFailedSignal {
	f := failed(eventID, intent, created)
	f.Intent.PaymentMethodID = "pm_1"
	f.Intent.DeclineCode = "generic_decline"
	f.Intent.Decline = activities.Decline{Code: "card_declined", DeclineCode: "generic_decline", Charge: charge,
		PaymentMethod: "pm_1", Fingerprint: "fp_pm_1", IntentStatus: "requires_payment_method"}
	return f
}

// Respect the card. A stop that only the failed charge's outcome carries
// (previously_declined_do_not_retry) is read before the card is tried
// again, and the card is never confirmed.
func TestAStopOnlyTheFirstFailuresChargeCarriesIsHonoured(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.chargeOutcomes["ch_first"] = "previously_declined_do_not_retry"
	})
	res := rt.runFrom(input(), failedWithCharge("evt_first", "pi_1", "ch_first", t0))
	for _, r := range rt.w.retries {
		if r.PaymentMethodID == "pm_1" {
			t.Fatalf("confirmed pm_1 at %v although its charge said previously_declined_do_not_retry (stage %s)", offsets(rt.w.retryTimes), res.Stage)
		}
	}
	if len(rt.w.chargeReads) != 1 || rt.w.chargeReads[0] != "ch_first" {
		t.Errorf("charges read %v, want ch_first once", rt.w.chargeReads)
	}
}

// The charge read says nothing more (the issuer declined): the card is
// tried on the schedule as before, and the charge is read once.
func TestAChargeThatSaysNothingMoreLeavesTheScheduleAsItWas(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.w.succeedOnAttempt = 1
	res := rt.runFrom(input(), failedWithCharge("evt_first", "pi_1", "ch_first", t0))
	if res.Stage != workflows.StageRecovered || len(rt.w.retries) != 1 || rt.w.retries[0].PaymentMethodID != "pm_1" {
		t.Fatalf("stage %s, confirms %+v; want pm_1 confirmed once, recovered", res.Stage, rt.w.retries)
	}
	if len(rt.w.chargeReads) != 1 {
		t.Errorf("charges read %v, want one", rt.w.chargeReads)
	}
}

// Stripe does not answer the read of the charge: the card is not tried
// that round, and is once the charge can be read.
func TestAChargeStripeDoesNotShowYetHoldsTheRound(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.chargeDownUntil = t0.Add(2 * time.Hour) })
	rt.w.succeedOnAttempt = 1
	res := rt.runFrom(input(), failedWithCharge("evt_first", "pi_1", "ch_first", t0))
	if res.Stage != workflows.StageRecovered || len(rt.w.retries) != 1 {
		t.Fatalf("stage %s, %d confirms; want recovered by one confirm once the charge was read", res.Stage, len(rt.w.retries))
	}
	if ended := rt.env.Now().Sub(t0); ended < 2*time.Hour {
		t.Errorf("recovered by a confirm at +%s, in the first round, whose charge read got no answer; want the second round's", ended)
	}
}
