package workflows_test

import (
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"dunning/activities"
	"dunning/workflows"
)

// Fresh state decides. A failure that joins the life while the re-check
// before the suspension runs has not been asked about: here Stripe has it
// paid already (its event came late), and the first intent was paid just
// before the deadline. Nothing is owed, so nothing is suspended.
func TestAFailureThatJoinsDuringTheRecheckIsAskedAboutBeforeTheSuspension(t *testing.T) {
	rt := newRecoveryTest(t, slowChecks(10*time.Minute))
	rt.at(9*time.Hour, func() { rt.w.set(func() { rt.w.paidIntents["pi_2"] = true }) })
	rt.at(10*time.Hour-time.Minute, func() { rt.w.set(func() { rt.w.paidIntents["pi_1"] = true }) })
	rt.signal(10*time.Hour+5*time.Minute, workflows.SignalPaymentFailed, failed("evt_late_pi2", "pi_2", t0.Add(9*time.Hour)))
	res := rt.run(input())
	if len(rt.w.controls) != 0 {
		t.Fatalf("control plane %v; want nothing: both intents were paid in Stripe", rt.w.controlActions())
	}
	if res.Stage != workflows.StageRecovered {
		t.Errorf("stage %s, want recovered", res.Stage)
	}
}

// The same, with the late failure really owed: the customer is told of
// it (the deadline moves to half the grace period after the notice), it
// is asked about, then the customer is suspended for it, once.
func TestAFailureThatJoinsDuringTheRecheckAndIsOwedIsSuspendedFor(t *testing.T) {
	rt := newRecoveryTest(t, slowChecks(10*time.Minute))
	rt.at(10*time.Hour-time.Minute, func() { rt.w.set(func() { rt.w.paidIntents["pi_1"] = true }) })
	rt.signal(10*time.Hour+5*time.Minute, workflows.SignalPaymentFailed, failed("evt_late_pi2", "pi_2", t0.Add(9*time.Hour)))
	rt.at(11*time.Hour, func() {
		s := rt.status()
		if s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
			t.Errorf("at +11h stage %s, control plane %v; want past_due: the customer was just told of pi_2", s.Stage, rt.w.controlActions())
		}
		if n := rt.w.notices; len(n) == 0 || n[len(n)-1].Type != "payment_failed" || !strings.HasSuffix(n[len(n)-1].Key, ":past_due:pi_2:notice") {
			t.Errorf("notices %v, want the last pi_2's payment_failed", rt.w.noticeTypes())
		}
	})
	rt.at(16*time.Hour, func() {
		s := rt.status()
		if s.Stage != workflows.StageSuspended || !equal(rt.w.controlActions(), []string{"suspend"}) {
			t.Errorf("at +16h stage %s, control plane %v; want suspended once, for pi_2", s.Stage, rt.w.controlActions())
		}
		asked := 0
		for _, c := range rt.w.checks {
			if strings.Contains(c, "pi_2") {
				asked++
			}
		}
		if asked == 0 {
			t.Errorf("pi_2 never asked about before the suspension (checks %v)", rt.w.checks)
		}
	})
	rt.update(16*time.Hour+time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
	rt.run(input())
}

// A debt written off in Stripe (invoice uncollectible) before the
// suspension calls the suspension off; the life then ends waived, and
// nobody is told that money was recovered.
func TestADebtWrittenOffBeforeTheSuspensionEndsWaived(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.at(9*time.Hour, func() { rt.w.set(func() { rt.w.invoiceState["in_pi_1"] = "uncollectible" }) })
	res := rt.run(input())
	if len(rt.w.controls) != 0 {
		t.Fatalf("control plane %v, want nothing", rt.w.controlActions())
	}
	notices := strings.Join(rt.w.noticeTypes(), ",")
	if res.Stage != workflows.StageWaived || strings.Contains(notices, "payment_recovered") || rt.w.alertsWith("info", "Recovered") != 0 {
		t.Fatalf("stage %s, notices %s, %d 'Recovered' alerts; want waived, and nobody told that money was recovered",
			res.Stage, notices, rt.w.alertsWith("info", "Recovered"))
	}
}

// Paid by bank transfer while suspended (no event; only the re-check
// before the deprovisioning sees it): the customer is resumed, and the
// resumed notice that the mailer refuses reaches ops.
func TestPaidAtTheRecheckBeforeDeprovisioningResumesAndARefusedNoticeReachesOps(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.rejectNotice["account_resumed"] = true })
	rt.at(29*time.Hour, func() { rt.w.set(func() { rt.w.invoiceState["in_pi_1"] = "paid" }) })
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
	if want := []string{"suspend", "resume"}; !equal(rt.w.controlActions(), want) {
		t.Fatalf("control plane %v, want %v", rt.w.controlActions(), want)
	}
	if n := rt.w.alertsWith("critical", "not delivered"); n != 1 {
		t.Errorf("%d alerts of the undelivered account_resumed notice, want 1 (alerts %+v)", n, rt.w.alerts)
	}
}

// One key, one request. The control plane refuses a suspension; more is
// owed by the time an operator resumes, so the next suspension carries
// another amount and time: it goes under a key of its own.
func TestAControlCallAfterARefusedOneHasItsOwnKey(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.w.rejectControl["suspend"] = 1
	rt.signal(11*time.Hour, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(11*time.Hour)))
	rt.update(12*time.Hour, workflows.ControlResume, workflows.OperatorRequest{Operator: "ops"}, mustAccept(t, "resume"))
	// pi_2, joined while paused, is told of at the resume: the second
	// suspension comes half the grace period (5h) after.
	rt.at(18*time.Hour, func() {
		if got := rt.w.controlTries; len(got) != 2 || got[0].Action != "suspend" || got[1].Action != "suspend" {
			t.Errorf("control plane tries %+v, want the refused suspension and the second", got)
		}
	})
	rt.update(19*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
	rt.run(input())
	byKey := map[string]activities.ControlPlaneInput{}
	for _, c := range rt.w.controlTries {
		if prev, seen := byKey[c.IdempotencyKey]; seen && prev != c {
			t.Errorf("key %s sent with two bodies: %s due %d at %s, then %s due %d at %s", c.IdempotencyKey,
				prev.Action, prev.AmountDue, prev.RequestedAt.Format(time.RFC3339), c.Action, c.AmountDue, c.RequestedAt.Format(time.RFC3339))
		}
		byKey[c.IdempotencyKey] = c
	}
	if len(byKey) != len(rt.w.controlTries) {
		t.Errorf("%d requests under %d keys; want a key each", len(rt.w.controlTries), len(byKey))
	}
}

// A suspended customer who pays while the recovery is paused (here by
// Amberflo refusing the re-check before the deprovisioning) stays
// suspended, as the pause said, but ops hear of it at once, once; the
// operator's resume gives the account back.
func TestPaidWhilePausedAndSuspendedReachesOpsAndTheResumeGivesBack(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.at(29*time.Hour, func() {
		rt.w.set(func() {
			rt.w.amberfloErr = temporal.NewNonRetryableApplicationError("amberflo answered 400", activities.ErrAmberfloRejected, nil)
		})
	})
	rt.signal(31*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Created: t0.Add(31 * time.Hour), Source: "payment_intent.succeeded"})
	rt.signal(32*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_again", IntentID: "pi_1", Created: t0.Add(32 * time.Hour), Source: "invoice.paid"})
	rt.at(40*time.Hour, func() {
		s := rt.status()
		if !s.Paused || s.Stage != workflows.StageSuspended || !equal(rt.w.controlActions(), []string{"suspend"}) {
			t.Errorf("at +40h stage %s paused %v control %v; want suspended and paused, waiting for the operator", s.Stage, s.Paused, rt.w.controlActions())
		}
		if n := rt.w.alertsWith("critical", "Paid but still suspended"); n != 1 {
			t.Errorf("%d alerts that the customer paid while paused, want 1", n)
		}
	})
	rt.update(41*time.Hour, workflows.ControlResume, workflows.OperatorRequest{Operator: "ops"}, mustAccept(t, "resume"))
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered || !equal(rt.w.controlActions(), []string{"suspend", "resume"}) {
		t.Errorf("stage %s, control %v; want recovered and resumed", res.Stage, rt.w.controlActions())
	}
}
