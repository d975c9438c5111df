package workflows_test

import (
	"strings"
	"testing"
	"time"

	"dunning/activities"
	"dunning/workflows"
)

// processingCharges makes every confirm answer that the payment is
// processing (a bank debit), after chargeDelay.
func processingCharges(w *world) {
	w.chargeDelay = 10 * time.Minute
	w.retryHook = func(in activities.RetryInput) (activities.RetryResult, error, bool) {
		w.retries = append(w.retries, in)
		w.intentStatus[in.IntentID] = "processing"
		return activities.RetryResult{Outcome: activities.RetryProcessing, Status: "processing"}, nil, true
	}
}

// An operator's answer is the truth. A waiver accepted while a charge is
// at Stripe says the charge is kept as paid if it succeeds; when Stripe
// answers that it is processing, the waiver waits for its outcome rather
// than forgive the money on its way, and the life ends recovered when it
// lands.
func TestAWaiverKeepsAPaymentInFlightThatSucceeds(t *testing.T) {
	rt := newRecoveryTest(t, processingCharges)
	rt.update(time.Hour+5*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "goodwill", Operator: "ops"}, func(r workflows.OperatorResult, err error) {
		if err != nil || !r.Accepted || !strings.Contains(r.Message, "kept as paid") {
			t.Errorf("waive during a charge: %+v %v; want accepted, saying a charge that succeeds is kept as paid", r, err)
		}
	})
	rt.at(2*time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StagePastDue || s.Waive == nil {
			t.Errorf("at +2h stage %s, waiver %+v; want past due, the waiver waiting for the payment in flight", s.Stage, s.Waive)
		}
	})
	rt.at(3*time.Hour, func() {
		rt.w.set(func() { rt.w.paidIntents["pi_1"] = true; delete(rt.w.intentStatus, "pi_1") })
	})
	rt.signal(3*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Created: t0.Add(3 * time.Hour), Source: "payment_intent.succeeded"})
	res := rt.run(input())
	if len(rt.w.forgiven) != 0 {
		t.Errorf("forgave %s in Stripe while its payment was processing", rt.w.forgiven[0].IntentID)
	}
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s (intents %+v), want recovered by the payment that was in flight", res.Stage, res.Intents)
	}
	if len(rt.w.retries) != 1 {
		t.Errorf("%d confirms, want the one that was in flight", len(rt.w.retries))
	}
}

// The same payment in flight fails: the waiver takes it up then, and the
// life ends waived with nothing charged again.
func TestAWaiverForgivesAPaymentInFlightThatFails(t *testing.T) {
	rt := newRecoveryTest(t, processingCharges)
	rt.update(time.Hour+5*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "goodwill", Operator: "ops"}, mustAccept(t, "waive"))
	rt.at(3*time.Hour, func() {
		rt.w.set(func() { rt.w.intentStatus["pi_1"] = "requires_payment_method" })
	})
	rt.signal(3*time.Hour, workflows.SignalPaymentFailed, failed("evt_debit_failed", "pi_1", t0.Add(3*time.Hour)))
	res := rt.run(input())
	if res.Stage != workflows.StageWaived {
		t.Fatalf("stage %s (intents %+v), want waived once the payment in flight failed", res.Stage, res.Intents)
	}
	if len(rt.w.forgiven) != 1 || rt.w.forgiven[0].IntentID != "pi_1" {
		t.Errorf("forgiven %+v, want pi_1 once", rt.w.forgiven)
	}
	if len(rt.w.retries) != 1 || len(rt.w.controls) != 0 {
		t.Errorf("%d confirms, control plane %v; want only the confirm that was in flight, nothing taken away", len(rt.w.retries), rt.w.controlActions())
	}
}

// A payment in flight that never settles while the waiver waits still
// reaches ops past the bound.
func TestAWaiverWaitingForAPaymentInFlightStillAlertsPastTheBound(t *testing.T) {
	rt := newRecoveryTest(t, processingCharges)
	rt.update(time.Hour+5*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "goodwill", Operator: "ops"}, mustAccept(t, "waive"))
	rt.at(9*24*time.Hour, func() {
		if n := rt.w.alertsWith("warning", "Payment still in flight"); n != 1 {
			t.Errorf("%d alerts of the payment in flight after 9 days, want 1", n)
		}
		if len(rt.w.controls) != 0 || len(rt.w.forgiven) != 0 {
			t.Errorf("control plane %v, forgiven %+v; want nothing while the waiver waits", rt.w.controlActions(), rt.w.forgiven)
		}
	})
	rt.at(9*24*time.Hour+time.Hour, func() {
		rt.w.set(func() { rt.w.paidIntents["pi_1"] = true; delete(rt.w.intentStatus, "pi_1") })
	})
	rt.signal(9*24*time.Hour+time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Created: t0.Add(9*24*time.Hour + time.Hour), Source: "payment_intent.succeeded"})
	if res := rt.run(input()); res.Stage != workflows.StageRecovered {
		t.Errorf("stage %s, want recovered", res.Stage)
	}
}
