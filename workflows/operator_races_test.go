package workflows_test

// An operator acting while an activity of a take-away runs: what the
// answer says is what then happens, and the take-away is decided on the
// state after every control accepted meanwhile.

import (
	"strings"
	"testing"
	"time"

	"dunning/workflows"
)

// A pause asked while the control plane deprovisions cannot stop what
// follows (the Amberflo deactivation, the end as deprovisioned): it is
// refused, saying so, rather than answered "nothing more is done
// automatically" and followed by the deactivation.
func TestPauseWhileDeprovisioningIsRefusedTruly(t *testing.T) {
	// Suspended at +10h10m (the control plane takes ten minutes);
	// deprovisioning from +30h10m to +30h20m.
	rt := newRecoveryTest(t, func(w *world) { w.controlDelay = 10 * time.Minute })
	answered := false
	rt.update(30*time.Hour+15*time.Minute, workflows.ControlPause, workflows.OperatorRequest{Reason: "customer on the phone"}, func(r workflows.OperatorResult, err error) {
		answered = true
		if err == nil {
			t.Errorf("pause during the deprovisioning: accepted %q; then the Amberflo customer was deactivated, which it said would not happen", r.Message)
			return
		}
		if !strings.Contains(err.Error(), "deprovisioning is under way") || !strings.Contains(err.Error(), "Amberflo") {
			t.Errorf("pause refused with %q; want it to say the deprovisioning and the Amberflo step go on", err)
		}
	})
	res := rt.run(input())
	if !answered {
		t.Fatal("the pause was never answered")
	}
	if res.Stage != workflows.StageDeprovisioned || len(rt.w.deactive) != 1 || len(rt.w.offboarded) != 1 {
		t.Fatalf("stage %s, deactivated %v, offboarded %v; want deprovisioned, deactivated and OFFBOARDED once", res.Stage, rt.w.deactive, rt.w.offboarded)
	}
}

// A pause or an extension accepted while the re-check before
// deprovisioning runs calls the deprovisioning off (regression: the
// suspension's re-check is covered in money_test.go).
func TestControlsDuringTheDeprovisioningRecheckCallItOff(t *testing.T) {
	for _, c := range []struct {
		name string
		ctl  string
		arg  any
	}{
		{"pause", workflows.ControlPause, workflows.OperatorRequest{Reason: "look"}},
		{"extend", workflows.ControlExtendGrace, workflows.ExtendGraceRequest{By: "5h", Reason: "promised"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Suspended at +10h20m (its re-check takes 20 minutes); the
			// deprovisioning's re-check runs from +30h20m to +30h40m.
			rt := newRecoveryTest(t, slowChecks(10*time.Minute))
			rt.update(30*time.Hour+25*time.Minute, c.ctl, c.arg, mustAccept(t, c.name))
			rt.at(31*time.Hour, func() {
				if s := rt.status(); s.Stage != workflows.StageSuspended || len(rt.w.deactive) != 0 {
					t.Errorf("at +31h stage %s, control plane %v; want still suspended", s.Stage, rt.w.controlActions())
				}
			})
			rt.update(32*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end the test"}, mustAccept(t, "waive"))
			if res := rt.run(input()); res.Stage != workflows.StageWaived || !equal(rt.w.controlActions(), []string{"suspend", "resume"}) {
				t.Fatalf("stage %s control plane %v; want waived after suspend, resume", res.Stage, rt.w.controlActions())
			}
		})
	}
}
