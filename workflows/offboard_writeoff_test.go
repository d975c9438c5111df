package workflows_test

import (
	"strings"
	"testing"
	"time"

	"dunning/workflows"
)

// Ops are told the truth. While the Amberflo deactivation runs, someone
// writes the invoice off in Stripe (uncollectible): the re-check after the
// deactivation finds nothing owed, and the customer is not OFFBOARDED. No
// money came: the deprovisioning alert must not say that everything owed
// was paid, nor point to a money-after-the-end alert that is never sent.
func TestWrittenOffDuringTheDeactivationIsNotToldAsPaid(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.disableDelay = 3 * time.Hour })
	rt.at(deprovisionAt+time.Hour, func() { rt.w.set(func() { rt.w.invoiceState["in_pi_1"] = "uncollectible" }) })
	res := rt.run(input())
	if res.Stage != workflows.StageDeprovisioned || len(rt.w.offboarded) != 0 {
		t.Fatalf("stage %s, offboarded %v; want deprovisioned, never OFFBOARDED", res.Stage, rt.w.offboarded)
	}
	dep := alertTitled(rt.w.alerts, "Deprovisioned: ")
	if dep == nil {
		t.Fatal("no deprovisioning alert")
	}
	late := rt.w.alertsWith("critical", "Money after the end")
	if strings.Contains(dep.Text, "was paid") && late == 0 {
		t.Errorf("deprovisioning alert %q says it was paid, and no money-after-the-end alert was sent; nothing was paid", dep.Text)
	}
	if !strings.Contains(dep.Text, "written off or canceled in Stripe") || !strings.Contains(dep.Text, "pi_1") {
		t.Errorf("deprovisioning alert %q; want it to say pi_1 was written off in Stripe while the deprovisioning ran", dep.Text)
	}
}
