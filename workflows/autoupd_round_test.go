package workflows_test

import (
	"strings"
	"testing"
	"time"

	"dunning/workflows"
)

// Card rules, with retry_now taking the round: the network updates the
// card while a card update's confirm of it is under way (the confirm
// declines on the old details). The automatic update is an event that
// changes what would be charged: the card is confirmed again at once with
// its new details, as it is when the update comes between rounds; it is
// not taken for the card just tried as it was.
func TestAutomaticUpdateDuringACardUpdateRoundIsCharged(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.chargeDelay = 20 * time.Minute })
	rt.at(10*time.Minute, func() { rt.w.set(func() { rt.w.defaultPM = "pm_2" }) })
	rt.signal(10*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
		EventID: "evt_new_default", Created: t0.Add(10 * time.Minute), PaymentMethodID: "pm_2", Source: "customer.updated"})
	// The card-update round confirms pm_2 from +11m to +31m.
	rt.signal(20*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
		EventID: "evt_auto", Created: t0.Add(20 * time.Minute), PaymentMethodID: "pm_2", Source: workflows.EventPaymentMethodAutoUpd})
	rt.w.succeedOnAttempt = 2
	res := rt.run(input())
	var pms []string
	for _, r := range rt.w.retries {
		pms = append(pms, r.PaymentMethodID)
	}
	paidBy := ""
	for _, a := range rt.status().Actions {
		if a.Kind == "intent paid" {
			paidBy = a.Outcome
		}
	}
	if res.Stage != workflows.StageRecovered || !equal(pms, []string{"pm_2", "pm_2"}) || !strings.Contains(paidBy, "card update") {
		t.Fatalf("stage %s, confirms with %v, paid %q; want pm_2 declined, then pm_2 again at once after its automatic update (not at the +1h schedule)", res.Stage, pms, paidBy)
	}
}
