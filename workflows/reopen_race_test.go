package workflows_test

import (
	"testing"
	"time"

	"dunning/workflows"
)

// Look for the race (found by the soak, seed 303): pi_2's late failure
// reaches the customer suspended for pi_1, and while Stripe is asked
// about pi_2 before its notice, the payment of pi_1 comes in. On fresh
// state every payment the customer was told of before is paid and pi_2
// is untold: the life reopens, as it does when the two come in the other
// order (TestLateFailureWhileTheSuspendedCustomerIsCheckedReopens). The
// account is given back, pi_2 is told once, past due, and nobody is
// suspended for it before the lead after that notice.
func TestPaymentWhileALateFailureIsCheckedReopens(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.checkDelay = time.Minute })
	late := 12 * time.Hour
	second := failed("evt_second", "pi_2", t0.Add(11*time.Hour))
	second.Intent.Amount = 2500
	rt.signal(late, workflows.SignalPaymentFailed, second)
	rt.payPI1(late + 20*time.Second)
	rt.at(late+10*time.Minute, func() {
		s := rt.status()
		if s.Stage != workflows.StagePastDue || !equal(rt.w.controlActions(), []string{"suspend", "resume"}) {
			t.Errorf("stage %s, control plane %v; want the account given back (pi_1, all the customer was told of, is paid), past due for pi_2",
				s.Stage, rt.w.controlActions())
		}
		notes := rt.w.noticesFor("pi_2")
		if len(notes) != 1 {
			t.Fatalf("%d notices for pi_2, want 1", len(notes))
		}
		if want := notes[0].CreatedAt.Add(joinedLead); notes[0].Deadline == nil || !notes[0].Deadline.Equal(want) || !s.SuspendAt.Equal(want) {
			t.Errorf("pi_2's deadline %v, suspend_at %v; want %v, the lead after its notice", notes[0].Deadline, s.SuspendAt, want)
		}
	})
	rt.at(late+joinedLead-time.Minute, func() {
		if s := rt.status(); s.Stage != workflows.StagePastDue || len(rt.w.controls) != 2 {
			t.Errorf("before pi_2's lead: stage %s, control plane %v; want past due, nothing taken again", s.Stage, rt.w.controlActions())
		}
	})
	rt.update(late+joinedLead-time.Minute/2, workflows.ControlWaive, workflows.OperatorRequest{Operator: "ops", Reason: "end of test"}, mustAccept(t, "waive"))
	res := rt.run(input())
	if res.Stage != workflows.StageWaived {
		t.Fatalf("stage %s, want waived", res.Stage)
	}
	rt.w.keysUnique(t)
}
