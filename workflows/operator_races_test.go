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

// A retry_now accepted while the re-check before a take-away runs is
// made before the take-away, as it is when asked a moment earlier: the
// operator was told the payments are retried now. The retry succeeds,
// and the customer is never suspended (or deprovisioned).
func TestRetryNowDuringTheRecheckRunsBeforeTheTakeAway(t *testing.T) {
	for _, c := range []struct {
		name  string
		at    time.Duration
		want  []string
		stage workflows.Stage
	}{
		// The suspension's re-check runs from +10h to +10h20m.
		{"suspension", 10*time.Hour + 5*time.Minute, nil, workflows.StageRecovered},
		// Suspended at +10h20m; the deprovisioning's re-check runs from
		// +30h20m to +30h40m.
		{"deprovisioning", 30*time.Hour + 25*time.Minute, []string{"suspend", "resume"}, workflows.StageRecovered},
	} {
		t.Run(c.name, func(t *testing.T) {
			rt := newRecoveryTest(t, slowChecks(10*time.Minute))
			// The three scheduled retries decline; the operator's succeeds.
			rt.w.succeedOnAttempt = 4
			rt.update(c.at, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}, func(r workflows.OperatorResult, err error) {
				if err != nil || !strings.Contains(r.Message, "retrying") {
					t.Errorf("retry_now: %+v %v; want accepted, retrying now", r, err)
				}
			})
			res := rt.run(input())
			if res.Stage != c.stage || !equal(rt.w.controlActions(), c.want) {
				t.Fatalf("stage %s, control plane %v; want %s with %v: the retry asked is made before anything is taken away",
					res.Stage, rt.w.controlActions(), c.stage, c.want)
			}
			if len(rt.w.retries) != 4 {
				t.Errorf("%d confirms, want 4 (three scheduled, the operator's)", len(rt.w.retries))
			}
		})
	}
}

// A retry_now asked during the re-check that declines again leaves the
// take-away to be decided again after it: the customer is suspended then,
// on a re-check of its own, once.
func TestRetryNowDuringTheRecheckThatDeclinesStillSuspends(t *testing.T) {
	rt := newRecoveryTest(t, slowChecks(10*time.Minute))
	rt.update(10*time.Hour+5*time.Minute, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}, mustAccept(t, "retry_now"))
	rt.at(12*time.Hour, func() {
		s := rt.status()
		if s.Stage != workflows.StageSuspended || len(rt.w.retries) != 4 || !equal(rt.w.controlActions(), []string{"suspend"}) {
			t.Errorf("at +12h stage %s, %d confirms, control plane %v; want suspended once, after the operator's retry",
				s.Stage, len(rt.w.retries), rt.w.controlActions())
		}
		if len(rt.w.retryTimes) == 4 && len(rt.w.controls) == 1 && rt.w.controls[0].RequestedAt.Before(rt.w.retryTimes[3]) {
			t.Errorf("suspended at %s, before the operator's retry at %s", rt.w.controls[0].RequestedAt, rt.w.retryTimes[3])
		}
	})
	rt.update(13*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end the test"}, mustAccept(t, "waive"))
	if res := rt.run(input()); res.Stage != workflows.StageWaived {
		t.Fatalf("stage %s", res.Stage)
	}
}

// A waiver sent as a signal (the UI's Send Signal) while the control
// plane deprovisions is applied once that call returns, before the
// Amberflo step begins: it is carried out as one sent a moment later,
// during the deactivation. The debt is forgiven (in Stripe too) and the
// customer is never moved to OFFBOARDED, which Amberflo never undoes.
// Before, it was refused as coming after the end, and the customer was
// OFFBOARDED with the debt standing for every later life.
func TestWaiverSignalledWhileDeprovisioningIsCarriedOut(t *testing.T) {
	// Suspended at +10h10m; deprovisioning from +30h10m to +30h20m.
	rt := newRecoveryTest(t, func(w *world) { w.controlDelay = 10 * time.Minute })
	rt.signal(30*time.Hour+15*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Operator: "ops@example.com", Reason: "goodwill"})
	res := rt.run(input())
	if res.Stage != workflows.StageDeprovisioned || len(rt.w.offboarded) != 0 {
		t.Fatalf("stage %s, offboarded %v; want deprovisioned and never OFFBOARDED", res.Stage, rt.w.offboarded)
	}
	if len(rt.w.forgiven) != 1 || rt.w.forgiven[0].IntentID != "pi_1" || !equal(res.Forgiven, []string{"pi_1"}) {
		t.Fatalf("forgiven in Stripe %+v, result forgives %v; want pi_1", rt.w.forgiven, res.Forgiven)
	}
	if s := rt.status(); s.Waive != nil {
		t.Errorf("waiver %+v left asked for after the life ended", s.Waive)
	}
	dep := alertTitled(rt.w.alerts, "Deprovisioned: ")
	if dep == nil || !strings.Contains(dep.Text, "waived by operator ops@example.com") {
		t.Errorf("deprovisioning alert %+v, want it to say the debt was waived", dep)
	}
}

// A pause accepted while a retry round waits on Stripe (the owed check
// before a charge, or a confirm) stops the round there: the confirm under
// way completes, as answered, and nothing more is charged nor taken away
// while paused, the suspension deadline passing included.
func TestPauseDuringTheChargePathStopsTheRound(t *testing.T) {
	for _, c := range []struct {
		name     string
		opt      func(*world)
		confirms int
		says     string
	}{
		// The first retry (+1h) checks pi_1 until +1h10m.
		{"owed check", slowChecks(10 * time.Minute), 0, "paused"},
		// The first retry confirms pi_1 from +1h to +1h10m.
		{"confirm", func(w *world) { w.chargeDelay = 10 * time.Minute }, 1, "charge already under way completes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rt := newRecoveryTest(t, c.opt)
			rt.signal(5*time.Minute, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(5*time.Minute)))
			rt.update(time.Hour+5*time.Minute, workflows.ControlPause, workflows.OperatorRequest{Reason: "customer on the phone"}, func(r workflows.OperatorResult, err error) {
				if err != nil || !strings.Contains(r.Message, c.says) {
					t.Errorf("pause: %+v %v; want accepted, saying %q", r, err, c.says)
				}
			})
			rt.at(15*time.Hour, func() {
				s := rt.status()
				if s.Stage != workflows.StagePastDue || !s.Paused || len(rt.w.retries) != c.confirms || len(rt.w.controls) != 0 {
					t.Errorf("at +15h stage %s paused %v, %d confirms, control plane %v; want past due, paused, %d confirm(s), nothing taken away",
						s.Stage, s.Paused, len(rt.w.retries), rt.w.controlActions(), c.confirms)
				}
			})
			rt.update(16*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end the test"}, mustAccept(t, "waive"))
			if res := rt.run(input()); res.Stage != workflows.StageWaived || len(rt.w.retries) != c.confirms {
				t.Fatalf("stage %s after %d confirms; want waived after %d", res.Stage, len(rt.w.retries), c.confirms)
			}
		})
	}
}

// A waiver asked as an update while the control plane deprovisions is
// accepted, and its answer says what then happens: the resources are
// taken back all the same, the debt is forgiven, and the Amberflo
// customer is deactivated but never moved to OFFBOARDED. Before, it was
// refused, and the customer was OFFBOARDED with the debt standing, while
// a waiver asked a moment later, during the deactivation, forgave it.
func TestWaiverAskedWhileDeprovisioningIsCarriedOutAsAnswered(t *testing.T) {
	// Suspended at +10h10m; deprovisioning from +30h10m to +30h20m.
	rt := newRecoveryTest(t, func(w *world) { w.controlDelay = 10 * time.Minute })
	var answer workflows.OperatorResult
	rt.update(30*time.Hour+15*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Operator: "ops@example.com", Reason: "goodwill"},
		func(r workflows.OperatorResult, err error) {
			if err != nil || !r.Accepted {
				t.Errorf("waiver during the deprovisioning: %+v %v, want accepted", r, err)
			}
			answer = r
		})
	res := rt.run(input())
	if !strings.Contains(answer.Message, "not moved to OFFBOARDED") || !strings.Contains(answer.Message, "ends as deprovisioned") {
		t.Errorf("waiver answer %q, want it to say the customer is not moved to OFFBOARDED and the recovery ends as deprovisioned", answer.Message)
	}
	if res.Stage != workflows.StageDeprovisioned || len(rt.w.offboarded) != 0 || !equal(rt.w.controlActions(), []string{"suspend", "deprovision"}) {
		t.Fatalf("stage %s, control plane %v, offboarded %v; want deprovisioned and never OFFBOARDED", res.Stage, rt.w.controlActions(), rt.w.offboarded)
	}
	if len(rt.w.forgiven) != 1 || !equal(res.Forgiven, []string{"pi_1"}) {
		t.Fatalf("forgiven in Stripe %+v, result forgives %v; want pi_1", rt.w.forgiven, res.Forgiven)
	}
	if s := rt.status(); s.Waive != nil {
		t.Errorf("waiver %+v left asked for after the life ended", s.Waive)
	}
	if !strings.Contains(strings.Join(rt.w.noticeTypes(), ","), "payment_waived") {
		t.Errorf("notices %v, want the customer told of the waiver", rt.w.noticeTypes())
	}
}

// A waiver asked while the control plane deprovisions a customer who
// pays meanwhile forgives nothing and is not left asked for.
func TestWaiverAskedWhileDeprovisioningAPayingCustomerForgivesNothing(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.controlDelay = 10 * time.Minute })
	rt.update(30*time.Hour+12*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Operator: "ops", Reason: "goodwill"}, mustAccept(t, "waive"))
	rt.at(30*time.Hour+14*time.Minute, func() { rt.w.set(func() { rt.w.paidIntents["pi_1"] = true }) })
	rt.signal(30*time.Hour+14*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Created: t0.Add(30*time.Hour + 14*time.Minute), Source: "payment_intent.succeeded"})
	res := rt.run(input())
	if res.Stage != workflows.StageDeprovisioned || len(rt.w.forgiven) != 0 || len(rt.w.deactive) != 0 || len(rt.w.offboarded) != 0 {
		t.Fatalf("stage %s, forgiven %v, deactivated %v, offboarded %v; want deprovisioned, nothing forgiven, Amberflo kept", res.Stage, rt.w.forgiven, rt.w.deactive, rt.w.offboarded)
	}
	if s := rt.status(); s.Waive != nil {
		t.Errorf("waiver %+v left asked for after the life ended", s.Waive)
	}
	if rt.w.alertsWith("critical", "Money after the end") != 1 {
		t.Errorf("alerts %+v, want one money-after-the-end alert", rt.w.alerts)
	}
}
