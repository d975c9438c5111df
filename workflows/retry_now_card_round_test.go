package workflows_test

import (
	"strings"
	"testing"
	"time"

	"dunning/activities"
	"dunning/workflows"
)

// An operator's answer is the truth. The customer adds a card without
// making it the default: the card update's round finds that what would be
// charged has not changed, and charges nothing. An operator's retry_now
// comes while that round asks Stripe: it is answered as taken by the
// round, and the round charges nothing. The retry asked must still
// happen: the customer's card is confirmed at once, not at the +1h
// schedule.
func TestRetryNowDuringACardRoundThatChargesNothingStillRetries(t *testing.T) {
	rt := newRecoveryTest(t, slowChecks(5*time.Minute))
	rt.signal(10*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
		EventID: "evt_added", Created: t0.Add(10 * time.Minute), PaymentMethodID: "pm_9", Source: workflows.EventPaymentMethodAttached})
	var answer string
	rt.update(13*time.Minute, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}, func(r workflows.OperatorResult, err error) {
		if err != nil || !r.Accepted {
			t.Errorf("retry_now during the card round: %+v %v; want accepted", r, err)
		}
		answer = r.Message
	})
	rt.w.succeedOnAttempt = 1
	first := failed("evt_first", "pi_1", t0)
	first.Intent.PaymentMethodID = "pm_1"
	first.Intent.Decline = activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentMethod: "pm_1", Fingerprint: "fp_pm_1"}
	res := rt.runFrom(input(), first)
	paidBy := ""
	for _, a := range rt.status().Actions {
		if a.Kind == "intent paid" {
			paidBy = a.Outcome
		}
	}
	var pms []string
	for _, r := range rt.w.retries {
		pms = append(pms, r.PaymentMethodID)
	}
	if res.Stage != workflows.StageRecovered || !equal(pms, []string{"pm_1"}) || strings.Contains(paidBy, "scheduled") {
		t.Fatalf("stage %s, confirms with %v, paid %q (retry_now answered %q); want pm_1 confirmed for the retry asked, before the schedule",
			res.Stage, pms, paidBy, answer)
	}
	if !strings.Contains(answer, "the retry asked runs after it") {
		t.Errorf("retry_now answered %q; want it to say the retry runs after a card round that charges nothing", answer)
	}
}
