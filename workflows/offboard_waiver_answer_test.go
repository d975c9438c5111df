package workflows_test

import (
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"dunning/activities"
	"dunning/workflows"
)

// An operator's answer is the truth. The waiver comes while the
// deactivation is retried through an Amberflo outage, and Amberflo then
// refuses the deactivation for good: the customer was never deactivated,
// so the answer must not have said that it stays deactivated.
func TestWaiverAnswerDuringARefusedDeactivationSaysNoDeactivation(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.disableDelay = 3 * time.Hour
		w.disable = func(activities.AmberfloInput) (activities.DisableResult, error) {
			return activities.DisableResult{}, temporal.NewNonRetryableApplicationError(
				`amberflo: deactivate customer "acme-cus_1": PUT /customers: amberflo answered 400 Bad Request`, activities.ErrAmberfloRejected, nil)
		}
	})
	var answer string
	rt.update(deprovisionAt+time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Operator: "ops@example.com", Reason: "goodwill"},
		func(r workflows.OperatorResult, err error) {
			if err != nil || !r.Accepted {
				t.Errorf("waiver during the deactivation: %+v %v, want accepted", r, err)
			}
			answer = r.Message
		})
	res := rt.run(input())
	if res.Stage != workflows.StageDeprovisioned || len(rt.w.forgiven) != 1 || len(rt.w.offboarded) != 0 {
		t.Fatalf("stage %s, forgiven %+v, offboarded %v; want deprovisioned, pi_1 forgiven, never OFFBOARDED", res.Stage, rt.w.forgiven, rt.w.offboarded)
	}
	if strings.Contains(answer, "stays deactivated") {
		t.Errorf("waiver answer %q says the Amberflo customer stays deactivated; Amberflo refused to deactivate it", answer)
	}
	if !strings.Contains(answer, "not moved to OFFBOARDED") {
		t.Errorf("waiver answer %q, want it to say the customer is not moved to OFFBOARDED", answer)
	}
}
