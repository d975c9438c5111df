package workflows_test

import (
	"strings"
	"testing"
	"time"

	"dunning/workflows"
)

// Nothing silent, and nothing twice. The debt is waived while the
// deactivation runs; the customer then pays it after all (their bank's
// own retry, say) while ops are being told of the deprovisioning. One
// payment is one money-after-the-end alert, not two.
func TestPaymentOfADebtWaivedDuringTheDeactivationAlertsOnce(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.disableDelay = 3 * time.Hour
		w.slowAlerts = map[string]time.Duration{"Deprovisioned: ": 2 * time.Hour}
	})
	rt.update(deprovisionAt+time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Operator: "ops@example.com", Reason: "goodwill"},
		mustAccept(t, "waiver during the deactivation"))
	rt.at(deprovisionAt+4*time.Hour, func() {
		rt.w.set(func() { rt.w.paidIntents["pi_1"] = true })
		rt.env.SignalWorkflow(workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_after_waiver", IntentID: "pi_1",
			Created: t0.Add(deprovisionAt + 4*time.Hour), Source: "payment_intent.succeeded"})
	})
	res := rt.run(input())
	if res.Stage != workflows.StageDeprovisioned || len(rt.w.forgiven) != 1 {
		t.Fatalf("stage %s, forgiven %+v; want deprovisioned with pi_1 forgiven", res.Stage, rt.w.forgiven)
	}
	if n := rt.w.alertsWith("critical", "Money after the end"); n != 1 {
		var texts []string
		for _, a := range rt.w.alerts {
			if strings.HasPrefix(a.Title, "Money after the end") {
				texts = append(texts, a.Text)
			}
		}
		t.Fatalf("%d money-after-the-end alerts for one payment, want 1: %q", n, texts)
	}
}
