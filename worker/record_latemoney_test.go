package worker_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"dunning/e2e"
	"dunning/internal/stripefixture"
	"dunning/workflows"
)

// TestRecordLateMoneyOnceHistory records, against the e2e stand-ins,
// recovery-cus_off_waived_paid: the debt is waived while the Amberflo
// deactivation is held, and the customer's payment of it comes while the
// customer is told of the waiver. The payment reaches ops once
// (late-money-once); and recovery-cus_off_waiver_found_paid (below). Set
// DUNNING_RECORD_HISTORIES as for TestRecordHistories.
func TestRecordLateMoneyOnceHistory(t *testing.T) {
	dir := recordDir(t)
	tmp, peers, send := deprovisionRecorder(t, "late-money")
	customer, intent := stripefixture.NewID("cus"), stripefixture.NewID("pi")
	id := workflows.RecoveryWorkflowID(customer)
	hold := peers.Amberflo.HoldNext(e2e.MethodPath(http.MethodPut, "/customers"))
	send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent})
	select {
	case <-hold.Arrived():
	case <-time.After(90 * time.Second):
		t.Fatalf("%s: the Amberflo deactivation never came", customer)
	}
	if err := tmp.Client.SignalWorkflow(context.Background(), id, "", workflows.ControlWaive,
		workflows.OperatorRequest{Reason: "recorded", Operator: "test"}); err != nil {
		t.Fatalf("waive %s: %v", customer, err)
	}
	time.Sleep(time.Second) // taken by the workflow while the request is held
	told := peers.Notices.HoldNext(e2e.MethodPath(http.MethodPost))
	hold.Release()
	select {
	case <-told.Arrived():
	case <-time.After(90 * time.Second):
		t.Fatalf("%s: the waiver notice never came", customer)
	}
	peers.Stripe.SetIntentStatus(intent, "succeeded")
	send(workflows.EventPaymentSucceeded, stripefixture.Options{Customer: customer, ObjectID: intent})
	time.Sleep(2 * time.Second) // the payment reaches the workflow while the notice is held
	told.Release()
	res := recoveryResult(t, tmp, id, 2*time.Minute)
	if res.Stage != workflows.StageDeprovisioned || len(res.Forgiven) != 1 {
		t.Fatalf("stage %s, forgiven %v; want deprovisioned with the intent forgiven", res.Stage, res.Forgiven)
	}
	n := len(peers.Alerts.Requests(func(r e2e.Request) bool { return strings.Contains(string(r.Body), "Money after the end") }))
	if n != 1 {
		t.Fatalf("%d money-after-the-end alerts for one payment, want 1", n)
	}
	recordHistory(t, tmp, dir, "recovery-cus_off_waived_paid", id)

	// recovery-cus_off_waiver_found_paid: the customer paid while the
	// deactivation was held, and no event came; the waiver taken then
	// finds the intent paid in Stripe, and ops hear of the money
	// (waiver-finds-late-money).
	customer, intent = stripefixture.NewID("cus"), stripefixture.NewID("pi")
	id = workflows.RecoveryWorkflowID(customer)
	hold = peers.Amberflo.HoldNext(e2e.MethodPath(http.MethodPut, "/customers"))
	send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent})
	select {
	case <-hold.Arrived():
	case <-time.After(90 * time.Second):
		t.Fatalf("%s: the Amberflo deactivation never came", customer)
	}
	peers.Stripe.SetIntentStatus(intent, "succeeded")
	if err := tmp.Client.SignalWorkflow(context.Background(), id, "", workflows.ControlWaive,
		workflows.OperatorRequest{Reason: "recorded", Operator: "test"}); err != nil {
		t.Fatalf("waive %s: %v", customer, err)
	}
	time.Sleep(time.Second)
	hold.Release()
	res = recoveryResult(t, tmp, id, 2*time.Minute)
	if res.Stage != workflows.StageDeprovisioned || len(res.Forgiven) != 0 {
		t.Fatalf("stage %s, forgiven %v; want deprovisioned with nothing forgiven", res.Stage, res.Forgiven)
	}
	n = len(peers.Alerts.Requests(func(r e2e.Request) bool {
		return strings.Contains(string(r.Body), "Money after the end") && strings.Contains(string(r.Body), intent)
	}))
	if n != 1 {
		t.Fatalf("%d money-after-the-end alerts for the payment the waiver found, want 1", n)
	}
	recordHistory(t, tmp, dir, "recovery-cus_off_waiver_found_paid", id)
	if p := peers.Problems(); len(p) > 0 {
		t.Errorf("stand-ins found requests wrong: %q", p)
	}
}
