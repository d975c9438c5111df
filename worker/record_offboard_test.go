package worker_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"dunning/e2e"
	"dunning/internal/stripefixture"
	"dunning/workflows"
)

// TestRecordOffboardHistories records, against the e2e stand-ins (an
// Amberflo that answers as Amberflo documents), the histories of the
// deprovisioning whose Amberflo step is two steps
// (offboard-on-fresh-state): recovery-cus_off_deprov (still owed:
// deactivated, then OFFBOARDED), recovery-cus_off_paid (paid while the
// deactivation was held: never OFFBOARDED) and recovery-cus_off_waived (an
// operator's waiver then: forgiven, never OFFBOARDED). Set
// DUNNING_RECORD_HISTORIES as for TestRecordHistories.
func TestRecordOffboardHistories(t *testing.T) {
	dir := recordDir(t)
	tmp, peers, send := deprovisionRecorder(t, "offboard")
	// held deprovisions a new customer with the Amberflo deactivation
	// held until during has run, and returns the life's result.
	held := func(during func(customer, intent string)) (string, workflows.RecoveryResult) {
		customer, intent := stripefixture.NewID("cus"), stripefixture.NewID("pi")
		hold := peers.Amberflo.HoldNext(e2e.MethodPath(http.MethodPut, "/customers"))
		send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent})
		if during != nil {
			select {
			case <-hold.Arrived():
			case <-time.After(90 * time.Second):
				t.Fatalf("%s: the Amberflo deactivation never came", customer)
			}
			during(customer, intent)
			time.Sleep(time.Second) // taken by the workflow while the request is held
		}
		hold.Release()
		return customer, recoveryResult(t, tmp, workflows.RecoveryWorkflowID(customer), 2*time.Minute)
	}

	owed, res := held(nil)
	if res.Stage != workflows.StageDeprovisioned || peers.Amberflo.Stage(owed) != "OFFBOARDED" || peers.Amberflo.Enabled(owed) {
		t.Fatalf("owed: stage %s, Amberflo %s enabled %v; want deprovisioned, disabled and OFFBOARDED",
			res.Stage, peers.Amberflo.Stage(owed), peers.Amberflo.Enabled(owed))
	}
	recordHistory(t, tmp, dir, "recovery-cus_off_deprov", workflows.RecoveryWorkflowID(owed))

	paid, res := held(func(customer, intent string) {
		peers.Stripe.SetIntentStatus(intent, "succeeded")
		send(workflows.EventPaymentSucceeded, stripefixture.Options{Customer: customer, ObjectID: intent})
	})
	if res.Stage != workflows.StageDeprovisioned || peers.Amberflo.Stage(paid) == "OFFBOARDED" || peers.Amberflo.Offboardings(paid) != 0 {
		t.Fatalf("paid: stage %s, Amberflo %s; want deprovisioned and never OFFBOARDED", res.Stage, peers.Amberflo.Stage(paid))
	}
	recordHistory(t, tmp, dir, "recovery-cus_off_paid", workflows.RecoveryWorkflowID(paid))

	waived, res := held(func(customer, _ string) {
		err := tmp.Client.SignalWorkflow(context.Background(), workflows.RecoveryWorkflowID(customer), "", workflows.ControlWaive,
			workflows.OperatorRequest{Reason: "recorded", Operator: "test"})
		if err != nil {
			t.Fatalf("waive %s: %v", customer, err)
		}
	})
	if res.Stage != workflows.StageDeprovisioned || peers.Amberflo.Stage(waived) == "OFFBOARDED" || len(res.Forgiven) != 1 {
		t.Fatalf("waived: stage %s, Amberflo %s, forgiven %v; want deprovisioned, never OFFBOARDED, the intent forgiven",
			res.Stage, peers.Amberflo.Stage(waived), res.Forgiven)
	}
	recordHistory(t, tmp, dir, "recovery-cus_off_waived", workflows.RecoveryWorkflowID(waived))
	if p := peers.Problems(); len(p) > 0 {
		t.Errorf("stand-ins found requests wrong: %q", p)
	}
}
