package workflows_test

import (
	"testing"
	"time"

	"dunning/workflows"
)

// The customer could not be read at the first failure, so the Stripe ID
// stood in for the product's. Before the suspension the customer is read
// again, and the control plane is asked to suspend the product's
// customer, not a guess.
func TestAnUnreadCustomerIsReadAgainBeforeTheSuspension(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.profileDownUntil = t0.Add(5 * time.Hour) })
	rt.at(11*time.Hour, func() {
		if got := rt.w.controlActions(); len(got) != 1 || got[0] != "suspend" {
			t.Fatalf("control plane %v at +11h, want the suspension", got)
		}
		if id := rt.w.controls[0].CustomerID; id != "acme-"+customer {
			t.Errorf("suspended %q, want the product's customer %q", id, "acme-"+customer)
		}
	})
	rt.update(11*time.Hour+time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
	rt.run(input())
}

// Still unreadable when the suspension is due: nothing is suspended until
// the customer can be read, and ops hear of it past the bound.
func TestACustomerStillUnreadHoldsTheSuspension(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.profileDownUntil = t0.Add(13 * time.Hour) })
	rt.at(12*time.Hour+30*time.Minute, func() {
		if got := rt.w.controlActions(); len(got) != 0 {
			t.Errorf("control plane %v at +12h30m while the customer could not be read, want nothing", got)
		}
		if n := rt.w.alertsWith("critical", "Re-check unanswered"); n != 1 {
			t.Errorf("%d alerts of the unanswered re-check, want 1", n)
		}
	})
	rt.at(14*time.Hour, func() {
		if got := rt.w.controls; len(got) != 1 || got[0].CustomerID != "acme-"+customer {
			t.Errorf("control plane %+v at +14h, want the product's customer suspended once it could be read", got)
		}
	})
	rt.update(14*time.Hour+time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
	rt.run(input())
}
