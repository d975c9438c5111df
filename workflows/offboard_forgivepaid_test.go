package workflows_test

import (
	"strings"
	"testing"
	"time"

	"dunning/workflows"
)

// Nothing silent. The waiver comes while the deactivation runs, and the
// customer paid meanwhile without an event reaching dunning (it is lost,
// or late): the waiver finds the intent paid in Stripe. That is money
// after the end: ops hear of it, once, and are not told the debt was
// waived.
func TestWaiverDuringTheDeactivationThatFindsItPaidTellsTheMoney(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.disableDelay = 3 * time.Hour })
	rt.update(deprovisionAt+time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Operator: "ops@example.com", Reason: "goodwill"},
		mustAccept(t, "waiver during the deactivation"))
	rt.at(deprovisionAt+2*time.Hour, func() { rt.w.set(func() { rt.w.paidIntents["pi_1"] = true }) })
	res := rt.run(input())
	if res.Stage != workflows.StageDeprovisioned || len(rt.w.offboarded) != 0 {
		t.Fatalf("stage %s, offboarded %v; want deprovisioned, never OFFBOARDED", res.Stage, rt.w.offboarded)
	}
	if n := rt.w.alertsWith("critical", "Money after the end"); n != 1 {
		t.Errorf("%d money-after-the-end alerts, want 1 for pi_1 found paid after deprovisioning", n)
	} else if late := alertTitled(rt.w.alerts, "Money after the end"); !strings.Contains(late.Text, "pi_1") || strings.Contains(late.Text, "waived by an operator") {
		t.Errorf("money-after-the-end alert %q; want it to name pi_1, and not as waived", late.Text)
	}
	dep := alertTitled(rt.w.alerts, "Deprovisioned: ")
	if dep == nil || strings.Contains(dep.Text, "waived by") {
		t.Errorf("deprovisioning alert %+v; it must not say the debt was waived", dep)
	}
}
