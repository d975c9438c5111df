package workflows_test

// The money rules (DESIGN.md), one or more tests each, against the world
// of recovery_test.go: Stripe and Amberflo answer as the real ones would,
// slowly when a test says so, and record what dunning asked of them.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"dunning/activities"
	"dunning/workflows"
)

func slowChecks(d time.Duration) func(*world) { return func(w *world) { w.checkDelay = d } }

func (w *world) alertsWith(severity, title string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, a := range w.alerts {
		if a.Severity == severity && strings.Contains(a.Title, title) {
			n++
		}
	}
	return n
}

func (w *world) set(fn func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fn()
}

// Rule 1: an operator's waiver accepted while the re-check before
// suspension runs is carried out; the customer is not suspended.
func TestWaiveDuringSuspensionRecheckIsHonoured(t *testing.T) {
	rt := newRecoveryTest(t, slowChecks(10*time.Minute))
	// Suspension is due at +10h; its re-check takes Stripe 10 minutes.
	rt.update(10*time.Hour+5*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "goodwill", Operator: "ops"}, mustAccept(t, "waive"))
	res := rt.run(input())
	if res.Stage != workflows.StageWaived {
		t.Fatalf("stage %s, want waived", res.Stage)
	}
	if len(rt.w.controls) != 0 {
		t.Fatalf("control plane %v after the waiver was answered done; want no call", rt.w.controlActions())
	}
	if len(rt.w.forgiven) != 1 || rt.w.forgiven[0].IntentID != "pi_1" {
		t.Errorf("forgiven in stripe: %+v, want pi_1 once", rt.w.forgiven)
	}
}

// Rule 1: a pause accepted during the re-check stops the suspension.
func TestPauseDuringSuspensionRecheckStopsIt(t *testing.T) {
	rt := newRecoveryTest(t, slowChecks(10*time.Minute))
	rt.update(10*time.Hour+5*time.Minute, workflows.ControlPause, workflows.OperatorRequest{Reason: "customer on the phone"}, mustAccept(t, "pause"))
	rt.at(12*time.Hour, func() {
		s := rt.status()
		if s.Stage != workflows.StagePastDue || !s.Paused || len(rt.w.controls) != 0 {
			t.Errorf("at +12h stage %s paused %v control %v; want past_due, paused, nothing suspended", s.Stage, s.Paused, rt.w.controlActions())
		}
	})
	rt.update(13*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "settled by phone"}, mustAccept(t, "waive"))
	if res := rt.run(input()); res.Stage != workflows.StageWaived || len(rt.w.controls) != 0 {
		t.Fatalf("stage %s control %v", res.Stage, rt.w.controlActions())
	}
}

// Rule 1: an extension accepted during the re-check moves the suspension.
func TestExtendGraceDuringSuspensionRecheckMovesIt(t *testing.T) {
	rt := newRecoveryTest(t, slowChecks(10*time.Minute))
	rt.update(10*time.Hour+5*time.Minute, workflows.ControlExtendGrace, workflows.ExtendGraceRequest{By: "5h", Reason: "promised to pay"}, mustAccept(t, "extend"))
	rt.at(14*time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
			t.Errorf("at +14h stage %s control %v; want past_due until +15h", s.Stage, rt.w.controlActions())
		}
	})
	rt.at(16*time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended {
			t.Errorf("at +16h stage %s, want suspended after the extension ran out", s.Stage)
		}
	})
	rt.signal(17*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Created: t0.Add(17 * time.Hour), Source: "payment_intent.succeeded"})
	if res := rt.run(input()); res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s", res.Stage)
	}
}

// Rule 1: a waiver in the middle of a retry round stops the rest of it.
func TestWaiveDuringRetryRoundStopsCharging(t *testing.T) {
	rt := newRecoveryTest(t, slowChecks(10*time.Minute))
	rt.signal(time.Minute, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(time.Minute)))
	// The first scheduled retry is at +1h; its owed check of pi_1 takes
	// until +1h10m.
	rt.update(time.Hour+5*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "contract dispute"}, mustAccept(t, "waive"))
	res := rt.run(input())
	if res.Stage != workflows.StageWaived {
		t.Fatalf("stage %s, want waived", res.Stage)
	}
	if len(rt.w.retries) != 0 {
		t.Fatalf("%d confirms after the waiver was answered done: %+v", len(rt.w.retries), rt.w.retries)
	}
}

// Rule 1: an update that can no longer take effect says so.
func TestExtendGraceWhileSuspendingIsRefused(t *testing.T) {
	// The control plane takes 10 minutes to suspend, from +10h.
	rt := newRecoveryTest(t, func(w *world) { w.controlDelay = 10 * time.Minute })
	rt.update(10*time.Hour+5*time.Minute, workflows.ControlExtendGrace, workflows.ExtendGraceRequest{By: "5h"}, mustReject(t, "extend while the suspension runs"))
	rt.update(10*time.Hour+6*time.Minute, workflows.ControlPause, workflows.OperatorRequest{Reason: "look"}, func(r workflows.OperatorResult, err error) {
		if err != nil || !r.Accepted || !strings.Contains(r.Message, "under way") {
			t.Errorf("pause during the suspension: %+v %v; want accepted, saying the suspension completes", r, err)
		}
	})
	rt.at(11*time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended || !s.Paused {
			t.Errorf("at +11h stage %s paused %v; want suspended (as answered) and paused", s.Stage, s.Paused)
		}
	})
	rt.update(12*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end the test"}, mustAccept(t, "waive"))
	if res := rt.run(input()); res.Stage != workflows.StageWaived {
		t.Fatalf("stage %s", res.Stage)
	}
	if want := []string{"suspend", "resume"}; !equal(rt.w.controlActions(), want) {
		t.Fatalf("control plane %v, want %v", rt.w.controlActions(), want)
	}
}

// Rule 2: an invoice paid by other means is never charged again.
func TestInvoicePaidElsewhereIsNotCharged(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.at(30*time.Minute, func() { rt.w.set(func() { rt.w.invoiceState["in_pi_1"] = "paid" }) })
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered || len(rt.w.retries) != 0 || len(rt.w.controls) != 0 {
		t.Fatalf("stage %s, %d confirms, control %v; want recovered with no confirm", res.Stage, len(rt.w.retries), rt.w.controlActions())
	}
}

// Rule 2: the Amberflo invoice that decides is the one the intent pays.
func TestAmberfloInvoiceOfTheIntentsPeriodDecides(t *testing.T) {
	march := t0.Add(-30 * 24 * time.Hour)
	april := t0
	t.Run("old one settled by bank transfer, newer one unpaid: not suspended", func(t *testing.T) {
		rt := newRecoveryTest(t, func(w *world) {
			w.amberfloByPeriod[march] = "SETTLED"
			w.amberfloByPeriod[april] = "FAILED"
		})
		res := rt.run(input())
		if res.Stage != workflows.StageRecovered || len(rt.w.controls) != 0 || len(rt.w.retries) != 0 {
			t.Fatalf("stage %s, control %v, %d confirms; want recovered, nothing charged or suspended", res.Stage, rt.w.controlActions(), len(rt.w.retries))
		}
	})
	t.Run("newer one settled, the old debt unpaid: still owed", func(t *testing.T) {
		rt := newRecoveryTest(t, func(w *world) {
			w.amberfloByPeriod[march] = "FAILED"
			w.amberfloByPeriod[april] = "SETTLED"
		})
		rt.at(11*time.Hour, func() {
			if s := rt.status(); s.Stage != workflows.StageSuspended {
				t.Errorf("at +11h stage %s, want suspended: the settled invoice is another period's", s.Stage)
			}
		})
		rt.signal(12*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Created: t0.Add(12 * time.Hour), Source: "payment_intent.succeeded"})
		if res := rt.run(input()); res.Stage != workflows.StageRecovered {
			t.Fatalf("stage %s", res.Stage)
		}
	})
}

// Rule 3: a payment in flight is neither retried, nor announced as
// failed, nor suspended for; ops hear once if it stays in flight.
func TestPaymentInFlightIsNotAFailure(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.intentStatus["pi_1"] = "processing" })
	in := input()
	in.Settings.InFlightAlertAfter = 12 * time.Hour
	rt.at(13*time.Hour, func() {
		s := rt.status()
		if s.Stage != workflows.StagePastDue || s.Intents[0].State != workflows.IntentInFlight {
			t.Errorf("at +13h stage %s intent %s, want past_due and in flight", s.Stage, s.Intents[0].State)
		}
		if n := rt.w.alertsWith("warning", "still in flight"); n != 1 {
			t.Errorf("%d in-flight alerts by +13h, want 1", n)
		}
	})
	rt.signal(14*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Created: t0.Add(14 * time.Hour), Source: "payment_intent.succeeded"})
	res := rt.run(in)
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
	if len(rt.w.retries) != 0 || len(rt.w.controls) != 0 || len(rt.w.notices) != 0 {
		t.Fatalf("%d confirms, control %v, notices %v; want none for a payment in flight", len(rt.w.retries), rt.w.controlActions(), rt.w.noticeTypes())
	}
}

// Rule 3: a payment in flight that fails after all is owed again.
func TestPaymentInFlightThatFailsIsOwedAgain(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.intentStatus["pi_1"] = "processing" })
	rt.at(3*time.Hour, func() { rt.w.set(func() { rt.w.intentStatus["pi_1"] = "requires_payment_method" }) })
	bounced := failed("evt_bounced", "pi_1", t0.Add(3*time.Hour))
	bounced.Intent.DeclineCode = "insufficient_funds"
	rt.signal(3*time.Hour, workflows.SignalPaymentFailed, bounced)
	rt.at(4*time.Hour, func() {
		s := rt.status()
		if s.Intents[0].State != workflows.IntentOpen || !strings.Contains(strings.Join(rt.w.noticeTypes(), ","), "payment_failed") {
			t.Errorf("at +4h intent %s notices %v; want open again and the customer told", s.Intents[0].State, rt.w.noticeTypes())
		}
	})
	if res := rt.run(input()); res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("stage %s, want deprovisioned (never paid)", res.Stage)
	}
}

// Rule 3: the bank asking the customer to authenticate is not a decline:
// the customer is asked to act, with the invoice's page, and no more
// off-session retries are made.
func TestRequiresActionAsksTheCustomer(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.retryHook = func(in activities.RetryInput) (activities.RetryResult, error, bool) {
			w.retries = append(w.retries, in)
			return activities.RetryResult{Outcome: activities.RetryRequiresAction, Status: "requires_payment_method", DeclineCode: "authentication_required"}, nil, true
		}
	})
	rt.signal(2*time.Hour+30*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Created: t0.Add(150 * time.Minute), Source: "payment_intent.succeeded"})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered || len(rt.w.retries) != 1 {
		t.Fatalf("stage %s after %d confirms; want one confirm, then the customer's own payment", res.Stage, len(rt.w.retries))
	}
	var asked *activities.NoticeInput
	for i, n := range rt.w.notices {
		if n.Type == "payment_action_required" {
			asked = &rt.w.notices[i]
		}
		if n.Type == "payment_retry_failed" {
			t.Errorf("a request to authenticate was told as a failed retry")
		}
	}
	if asked == nil || !strings.HasPrefix(asked.PayURL, "https://invoice.stripe.com/") {
		t.Fatalf("notices %+v; want payment_action_required with the invoice page", rt.w.notices)
	}
}

// Rule 3, answered with a new card: the bank asked the customer to
// authenticate the payment with their card, and they set another card as
// their default instead. The request concerned the old card: the new one
// is confirmed at once, off-session, as Stripe allows from requires_action.
func TestNewCardChargedAfterAuthenticationWasAsked(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.intentStatus["pi_1"], w.intentPM["pi_1"] = "requires_action", "pm_1" })
	first := failed("evt_first", "pi_1", t0)
	first.Intent.Status, first.Intent.PaymentMethodID, first.Intent.DeclineCode = "requires_action", "pm_1", "authentication_required"
	first.Intent.Decline = activities.Decline{Code: "authentication_required", PaymentMethod: "pm_1", IntentStatus: "requires_action"}
	rt.signal(0, workflows.SignalPaymentFailed, first)
	rt.at(30*time.Minute, func() { rt.w.set(func() { rt.w.defaultPM = "pm_2" }) })
	rt.signal(30*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
		EventID: "evt_new_default", Created: t0.Add(30 * time.Minute), Source: "customer.updated"})
	rt.w.succeedOnAttempt = 1
	res := rt.runWith(input())
	if res.Stage != workflows.StageRecovered || len(rt.w.retries) != 1 || rt.w.retries[0].PaymentMethodID != "pm_2" {
		t.Fatalf("stage %s, confirms %+v; want one confirm with the new default pm_2 once the customer set it", res.Stage, rt.w.retries)
	}
	if types := rt.w.noticeTypes(); !slices.Contains(types, "payment_action_required") {
		t.Errorf("notices %v; want the customer asked to authenticate before the new card came", types)
	}
}

// Rule 4: a waived intent that a later life meets is never charged.
func TestWaivedIntentIsNeverChargedByALaterLife(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.update(30*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "goodwill"}, mustAccept(t, "waive"))
	if res := rt.run(input()); res.Stage != workflows.StageWaived {
		t.Fatalf("first life: stage %s", res.Stage)
	}
	if st := rt.w.invoiceState["in_pi_1"]; st != "uncollectible" {
		t.Fatalf("invoice in Stripe is %q; the waiver must be written there", st)
	}
	// Stripe's own retry fails later and opens a new life; the event does
	// not carry the mark (it predates it).
	rt2 := newRecoveryTest(t)
	rt2.w.invoiceState = rt.w.invoiceState
	res := rt2.run(input())
	if len(rt2.w.retries) != 0 || len(rt2.w.notices) != 0 || len(rt2.w.controls) != 0 {
		t.Fatalf("second life: %d confirms, notices %v, control %v; want nothing", len(rt2.w.retries), rt2.w.noticeTypes(), rt2.w.controlActions())
	}
	if res.Stage != workflows.StageWaived {
		t.Errorf("second life ended %s, want waived", res.Stage)
	}
}

// Rule 4: a waiver that Stripe refused to record is kept by dunning, as
// ops are told, beyond the life that waived it: the next failure of the
// intent (Stripe's own retry) opens a life that charges nothing, and
// neither suspends nor deprovisions for it.
func TestWaiverNotWrittenToStripeIsNeverChargedByALaterLife(t *testing.T) {
	refused := func(w *world) {
		w.forgiveErr = temporal.NewNonRetryableApplicationError("stripe answered 400: invoice cannot be marked uncollectible", activities.ErrStripeRejected, nil)
	}
	rt := newRecoveryTest(t, refused)
	rt.update(30*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "goodwill", Operator: "ops"}, mustAccept(t, "waive"))
	first := rt.run(input())
	if first.Stage != workflows.StageWaived || len(first.Intents) != 1 || first.Intents[0].State != workflows.IntentWaived {
		t.Fatalf("first life: %+v", first)
	}
	var promised bool
	for _, a := range rt.w.alerts {
		promised = promised || strings.Contains(a.Text, "dunning will not charge it")
	}
	if !promised {
		t.Fatalf("alerts %+v; want ops told that dunning will not charge it", rt.w.alerts)
	}
	// A day later Stripe's own retry of pi_1 fails; the event carries no
	// waiver mark (Stripe never got it). The new life reads how the last
	// one ended.
	rt2 := newRecoveryTest(t, refused, func(w *world) { w.previous = &first })
	rt2.env.SetStartTime(t0.Add(24 * time.Hour))
	res := rt2.runFrom(input(), failed("evt_stripe_retry", "pi_1", t0.Add(24*time.Hour)))
	if len(rt2.w.retries) != 0 || len(rt2.w.controls) != 0 || len(rt2.w.notices) != 0 {
		t.Fatalf("second life (%s): %d confirms of the waived pi_1, control plane %v, notices %v; want none",
			res.Stage, len(rt2.w.retries), rt2.w.controlActions(), rt2.w.noticeTypes())
	}
	if res.Stage != workflows.StageWaived {
		t.Errorf("second life ended %s, want waived", res.Stage)
	}
}

// Rule 4: what one life forgave, every later life keeps forgiven, though
// it only reads the life just before: a failure of the intent in the
// middle of another life's recovery, or opening a life two lives later,
// is never charged.
func TestForgivenIntentsStayForgivenInEveryLaterLife(t *testing.T) {
	refused := func(w *world) {
		w.forgiveErr = temporal.NewNonRetryableApplicationError("stripe answered 400: invoice cannot be marked uncollectible", activities.ErrStripeRejected, nil)
	}
	rt := newRecoveryTest(t, refused)
	rt.update(30*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "goodwill", Operator: "ops"}, mustAccept(t, "waive"))
	first := rt.run(input())
	if first.Stage != workflows.StageWaived {
		t.Fatalf("first life: stage %s", first.Stage)
	}
	// The second life is pi_2's; Stripe retries pi_1 while it runs, and
	// the customer pays pi_2 at +90m.
	day := 24 * time.Hour
	rt2 := newRecoveryTest(t, refused, func(w *world) { w.previous = &first })
	rt2.env.SetStartTime(t0.Add(day))
	rt2.signal(5*time.Minute, workflows.SignalPaymentFailed, failed("evt_stripe_retry", "pi_1", t0.Add(day+5*time.Minute)))
	rt2.at(90*time.Minute, func() { rt2.w.set(func() { rt2.w.paidIntents["pi_2"] = true }) })
	rt2.signal(90*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid2", IntentID: "pi_2", Created: t0.Add(day + 90*time.Minute), Source: "payment_intent.succeeded"})
	second := rt2.runFrom(input(), failed("evt_pi2", "pi_2", t0.Add(day)))
	for _, r := range rt2.w.retries {
		if r.IntentID == "pi_1" {
			t.Fatalf("second life confirmed the waived pi_1: %+v", rt2.w.retries)
		}
	}
	if second.Stage != workflows.StageRecovered {
		t.Fatalf("second life ended %s (%+v), want recovered: pi_2 was paid", second.Stage, second.Intents)
	}
	// The third life reads only the second one's result.
	rt3 := newRecoveryTest(t, refused, func(w *world) { w.previous = &second })
	rt3.env.SetStartTime(t0.Add(2 * day))
	res := rt3.runFrom(input(), failed("evt_stripe_retry_2", "pi_1", t0.Add(2*day)))
	if len(rt3.w.retries) != 0 || len(rt3.w.controls) != 0 || res.Stage != workflows.StageWaived {
		t.Fatalf("third life (%s): %d confirms of the waived pi_1, control plane %v; want none, ended waived",
			res.Stage, len(rt3.w.retries), rt3.w.controlActions())
	}
}

// Rule 4: a failure marked waived, and the late echo of an earlier life's
// retry, never re-open an intent.
func TestWaivedAndEchoedFailuresDoNotReopen(t *testing.T) {
	rt := newRecoveryTest(t)
	waived := failed("evt_waived", "pi_w", t0.Add(time.Minute))
	waived.Intent.Waived = true
	rt.signal(time.Minute, workflows.SignalPaymentFailed, waived)
	echo := failed("evt_echo", "pi_old", t0.Add(2*time.Minute))
	echo.RequestIdempotencyKey = workflows.RetryIdempotencyPrefix + ":recovery-" + customer + "@1:pi_old:3"
	rt.signal(2*time.Minute, workflows.SignalPaymentFailed, echo)
	rt.at(3*time.Minute, func() {
		if s := rt.status(); len(s.Intents) != 1 || s.Intents[0].ID != "pi_1" {
			t.Errorf("intents %+v, want pi_1 alone", s.Intents)
		}
	})
	rt.signal(4*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Created: t0.Add(4 * time.Minute), Source: "payment_intent.succeeded"})
	if res := rt.run(input()); res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s", res.Stage)
	}
}

// Rule 4: a waiver still waiting for its resume survives continue-as-new.
func TestWaiveWaitingForResumeSurvivesContinueAsNew(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.rejectControl["resume"] = 1 })
	rt.update(11*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "goodwill"}, mustAccept(t, "waive"))
	rt.at(12*time.Hour, func() { rt.env.SetContinueAsNewSuggested(true) })
	// Any signal wakes the paused workflow, which then continues as new.
	rt.signal(12*time.Hour+time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{EventID: "evt_card", Created: t0.Add(12 * time.Hour), Source: "payment_method.attached"})
	rt.signal(0, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, input())
	var can *workflow.ContinueAsNewError
	if err := rt.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("error %v, want continue-as-new", err)
	}
	var next workflows.RecoveryInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.State == nil || next.State.Waive == nil || next.State.Waive.Reason != "goodwill" || next.State.Stage != workflows.StageSuspended {
		t.Fatalf("continued with %+v; want the waiver still asked for", next.State)
	}
	// The next run resumes the customer once an operator lets it go on.
	rt2 := newRecoveryTest(t)
	rt2.update(time.Minute, workflows.ControlResume, workflows.OperatorRequest{}, mustAccept(t, "resume"))
	rt2.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, next)
	var res workflows.RecoveryResult
	if err := rt2.env.GetWorkflowResult(&res); err != nil || res.Stage != workflows.StageWaived {
		t.Fatalf("second run: %+v %v", res, err)
	}
	if want := []string{"resume"}; !equal(rt2.w.controlActions(), want) {
		t.Fatalf("control plane %v, want %v", rt2.w.controlActions(), want)
	}
}

// Rule 5: no answer from Stripe defers the suspension and alerts ops once.
func TestUnansweredRecheckDefersSuspensionAndAlertsOnce(t *testing.T) {
	down := false
	rt := newRecoveryTest(t, func(w *world) {
		w.owedErr = func(string) error {
			if down {
				return errors.New("stripe unreachable: connection reset")
			}
			return nil
		}
	})
	in := input()
	in.Settings.RecheckAlertAfter = 2 * time.Hour
	rt.at(9*time.Hour, func() { rt.w.set(func() { down = true }) })
	rt.at(14*time.Hour, func() {
		s := rt.status()
		if s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
			t.Errorf("at +14h stage %s control %v; nothing may be suspended without an answer", s.Stage, rt.w.controlActions())
		}
		if n := rt.w.alertsWith("critical", "unanswered"); n != 1 {
			t.Errorf("%d unanswered alerts, want exactly 1", n)
		}
		rt.w.set(func() { down = false })
	})
	rt.at(15*time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended {
			t.Errorf("at +15h stage %s, want suspended once Stripe answered", s.Stage)
		}
	})
	rt.update(16*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end the test"}, mustAccept(t, "waive"))
	if res := rt.run(in); res.Stage != workflows.StageWaived {
		t.Fatalf("stage %s", res.Stage)
	}
}

// Rule 5: Amberflo answering 4xx or something unreadable pauses for an
// operator; nothing is suspended.
func TestAmberfloRejectedAnswerPausesBeforeSuspension(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.at(9*time.Hour, func() {
		rt.w.set(func() {
			rt.w.amberfloErr = temporal.NewNonRetryableApplicationError("amberflo answered 200 OK with an unreadable body", activities.ErrAmberfloRejected, nil)
		})
	})
	rt.at(11*time.Hour, func() {
		s := rt.status()
		if !s.Paused || s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
			t.Errorf("at +11h paused %v stage %s control %v; want paused, not suspended", s.Paused, s.Stage, rt.w.controlActions())
		}
		if rt.w.alertsWith("critical", "paused") != 1 {
			t.Errorf("alerts %+v, want one critical pause alert", rt.w.alerts)
		}
	})
	rt.update(12*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end the test"}, mustAccept(t, "waive"))
	if res := rt.run(input()); res.Stage != workflows.StageWaived || len(rt.w.controls) != 0 {
		t.Fatalf("stage %s control %v", res.Stage, rt.w.controlActions())
	}
}

// Rule 7: a card change between two tries of the same charge never sends
// the key again with another payment method.
func TestCardChangeBetweenTriesOfOneChargeKeepsOneKeyOneRequest(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.retryHook = func(in activities.RetryInput) (activities.RetryResult, error, bool) {
			if len(w.retries) == 0 && w.defaultPM == "pm_1" {
				// Stripe timed out; meanwhile the customer changed the card.
				w.defaultPM = "pm_2"
				w.retries = append(w.retries, in)
				return activities.RetryResult{}, errors.New("stripe: 503 service unavailable"), true
			}
			return activities.RetryResult{}, nil, false
		}
	})
	rt.w.succeedOnAttempt = 1
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
}

// Rule 8: a customer without a default is retried with the card that
// failed, not skipped and suspended without a single retry.
func TestNoDefaultRetriesTheCardThatFailed(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.defaultPM = "" })
	first := failed("evt_first", "pi_1", t0)
	first.Intent.PaymentMethodID = "pm_failed"
	rt.signal(0, workflows.SignalPaymentFailed, first)
	rt.w.succeedOnAttempt = 1
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered || len(rt.w.retries) != 1 || rt.w.retries[0].PaymentMethodID != "pm_failed" {
		t.Fatalf("stage %s, confirms %+v; want one confirm with pm_failed", res.Stage, rt.w.retries)
	}
}

// Rule 9: a notice the mailer refuses for good reaches ops.
func TestRefusedNoticeReachesOps(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.rejectNotice["payment_failed"] = true })
	rt.w.succeedOnAttempt = 1
	if res := rt.run(input()); res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s", res.Stage)
	}
	if n := rt.w.alertsWith("critical", "notice not delivered"); n != 1 {
		t.Fatalf("%d alerts about the undelivered notice, want 1: %+v", n, rt.w.alerts)
	}
}

// Rule 11: a card update is retried within seconds; a burst is one retry.
func TestCardUpdateRetriedWithinSeconds(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.w.succeedOnAttempt = 1
	in := input()
	in.Settings.CardUpdateDebounce = time.Second
	rt.at(10*time.Minute+3*time.Second, func() {
		rt.w.mu.Lock()
		defer rt.w.mu.Unlock()
		if len(rt.w.retries) != 1 {
			t.Errorf("%d confirms 3s after the card update, want 1", len(rt.w.retries))
		}
	})
	for i, d := range []time.Duration{10 * time.Minute, 10*time.Minute + 200*time.Millisecond, 10*time.Minute + 500*time.Millisecond} {
		rt.signal(d, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{EventID: "evt_card_" + string(rune('a'+i)), Created: t0.Add(d), Source: "payment_method.attached"})
	}
	res := rt.run(in)
	if res.Stage != workflows.StageRecovered || len(rt.w.retries) != 1 {
		t.Fatalf("stage %s after %d confirms, want one", res.Stage, len(rt.w.retries))
	}
}

// Rule 6, within a recovery: a payment arriving while the customer is
// deprovisioned keeps the Amberflo account and reaches ops.
func TestPaymentDuringDeprovisioningReachesOps(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.controlDelay = 10 * time.Minute })
	// Suspended from +10h (10 minutes of control plane), deprovisioning
	// from about +30h10m, taking 10 minutes too.
	rt.signal(30*time.Hour+15*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_late", IntentID: "pi_1", Created: t0.Add(30 * time.Hour), Source: "payment_intent.succeeded"})
	res := rt.run(input())
	if res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("stage %s, want deprovisioned (the payment came during the call)", res.Stage)
	}
	if len(rt.w.deactive) != 0 {
		t.Errorf("Amberflo deactivated %v for a customer who paid", rt.w.deactive)
	}
	if n := rt.w.alertsWith("critical", "Money after the end"); n != 1 {
		t.Fatalf("%d money-after-the-end alerts, want 1: %+v", n, rt.w.alerts)
	}
	for _, a := range rt.w.alerts {
		if strings.HasPrefix(a.Title, "Deprovisioned") && (strings.Contains(a.Text, "never paid") || !strings.Contains(a.Text, "paid while the deprovisioning")) {
			t.Errorf("deprovisioned alert %q; want it to say the customer paid while the deprovisioning ran, not that they never paid", a.Text)
		}
	}
}

// Nothing silent: a payment that lands during the deprovisioning, while
// another is still in flight (processing), does not make the deprovisioned
// alert say that everything owed was paid: it names the payment still on
// its way, which may yet fail.
func TestDeprovisionedAlertNamesAPaymentStillInFlight(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.controlDelay = 10 * time.Minute; w.intentStatus["pi_2"] = "processing" })
	rt.signal(5*time.Minute, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(5*time.Minute)))
	rt.signal(30*time.Hour+15*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_late", IntentID: "pi_1", Created: t0.Add(30 * time.Hour), Source: "payment_intent.succeeded"})
	res := rt.run(input())
	if res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("stage %s, want deprovisioned (pi_1 was unpaid when it began)", res.Stage)
	}
	found := false
	for _, a := range rt.w.alerts {
		if !strings.HasPrefix(a.Title, "Deprovisioned") {
			continue
		}
		found = true
		if strings.Contains(a.Text, "Everything owed was paid") || !strings.Contains(a.Text, "pi_2") || !strings.Contains(a.Text, "in flight") {
			t.Errorf("deprovisioned alert %q; want it to name pi_2, still in flight, not that everything owed was paid", a.Text)
		}
	}
	if !found {
		t.Fatalf("no deprovisioned alert: %+v", rt.w.alerts)
	}
}

// Rule 6, at the end of a life: the signals that come in while the
// ending life still works (here, while ops are told of money after the
// deprovisioning) are applied before it ends. A failure among them opens
// the next life; nothing is left unread.
func TestFailureDuringTheLateMoneyAlertOpensTheNextLife(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.slowAlerts = map[string]time.Duration{"Deprovisioned": 10 * time.Minute, "Money after the end": 10 * time.Minute}
	})
	// Deprovisioned at +30h; its alert takes until +30h10m. The customer
	// pays pi_1 meanwhile (+30h05m); the alert of that money runs from
	// +30h10m to +30h20m, and pi_2 fails at +30h15m.
	rt.signal(30*time.Hour+5*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_late", IntentID: "pi_1", Created: t0.Add(30*time.Hour + 5*time.Minute), Source: "payment_intent.succeeded"})
	rt.signal(30*time.Hour+15*time.Minute, workflows.SignalPaymentFailed, failed("evt_pi2", "pi_2", t0.Add(30*time.Hour+15*time.Minute)))
	rt.signal(0, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, input())
	if n := rt.w.alertsWith("critical", "Money after the end"); n != 1 {
		t.Errorf("%d money-after-the-end alerts, want 1", n)
	}
	var can *workflow.ContinueAsNewError
	if err := rt.env.GetWorkflowError(); !errors.As(err, &can) {
		var res workflows.RecoveryResult
		_ = rt.env.GetWorkflowResult(&res)
		t.Fatalf("the life ended %s (error %v) with pi_2's failure unread; want continue-as-new into the next life with pi_2 pending", res.Stage, err)
	}
	var next workflows.RecoveryInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if len(next.Pending) != 1 || next.Pending[0].Intent.ID != "pi_2" {
		t.Fatalf("next life pending %+v, want pi_2", next.Pending)
	}
}

// Rule 6, at the end of a life: money that comes in while ops are told
// of earlier money after the end reaches them too.
func TestPaymentDuringTheLateMoneyAlertReachesOps(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.slowAlerts = map[string]time.Duration{"Deprovisioned": 10 * time.Minute, "Money after the end": 10 * time.Minute}
	})
	// pi_2 joins the life and is never paid; after the deprovisioning
	// (+30h), pi_1 is paid during its alert, and pi_2 during the alert of
	// pi_1's money.
	rt.signal(5*time.Minute, workflows.SignalPaymentFailed, failed("evt_pi2", "pi_2", t0.Add(5*time.Minute)))
	rt.signal(30*time.Hour+5*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_late_1", IntentID: "pi_1", Created: t0.Add(30*time.Hour + 5*time.Minute), Source: "payment_intent.succeeded"})
	rt.signal(30*time.Hour+15*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_late_2", IntentID: "pi_2", Created: t0.Add(30*time.Hour + 15*time.Minute), Source: "payment_intent.succeeded"})
	res := rt.run(input())
	if res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("stage %s, want deprovisioned", res.Stage)
	}
	if n := rt.w.alertsWith("critical", "Money after the end"); n != 2 {
		t.Fatalf("%d money-after-the-end alerts, want 2: pi_2's payment came in while pi_1's was told", n)
	}
}

// Rule 1: a waiver accepted while a charge is at Stripe says that the
// charge may still succeed; when it does, the customer is recovered, not
// "waived" of money they paid.
func TestWaiveDuringAChargeTellsTheTruth(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.chargeDelay = 10 * time.Minute })
	rt.w.succeedOnAttempt = 1
	rt.update(time.Hour+5*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "goodwill"}, func(r workflows.OperatorResult, err error) {
		if err != nil || !r.Accepted || !strings.Contains(r.Message, "may still succeed") {
			t.Errorf("waive during a charge: %+v %v; want accepted, saying the charge may still succeed", r, err)
		}
	})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered || len(rt.w.retries) != 1 {
		t.Fatalf("stage %s after %d confirms; want recovered by the charge under way", res.Stage, len(rt.w.retries))
	}
	if len(rt.w.forgiven) != 0 {
		t.Errorf("forgave %+v in Stripe after it was paid", rt.w.forgiven)
	}
}

// Card rules: an address edit, or a card added that is not the default,
// changes nothing that would be charged; twenty of them cause no confirm.
func TestCardEventsThatChangeNothingChargeNothing(t *testing.T) {
	rt := newRecoveryTest(t)
	first := failed("evt_first", "pi_1", t0)
	first.Intent.PaymentMethodID = "pm_1" // the default, which failed
	rt.signal(0, workflows.SignalPaymentFailed, first)
	for i := range 20 {
		d := 5*time.Minute + time.Duration(i)*time.Minute
		rt.signal(d, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{EventID: fmt.Sprintf("evt_addr_%d", i), Created: t0.Add(d), Source: "customer.source.updated", PaymentMethodID: "pm_1"})
	}
	rt.at(59*time.Minute, func() {
		rt.w.mu.Lock()
		defer rt.w.mu.Unlock()
		if len(rt.w.retries) != 0 {
			t.Errorf("%d confirms before the first scheduled retry; address edits must cause none", len(rt.w.retries))
		}
	})
	// A new default does: one confirm with it, at once.
	rt.at(70*time.Minute, func() { rt.w.set(func() { rt.w.defaultPM = "pm_new" }) })
	rt.signal(70*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{EventID: "evt_new_default", Created: t0.Add(70 * time.Minute), Source: "customer.updated"})
	rt.w.succeedOnAttempt = 2
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered || len(rt.w.retries) != 2 || rt.w.retries[1].PaymentMethodID != "pm_new" {
		t.Fatalf("stage %s, confirms %+v; want the scheduled one, then one with the new default", res.Stage, rt.w.retries)
	}
}

// Card rules: at most DUNNING_MAX_ATTEMPTS_PER_CARD confirms on a card in
// 30 days, across continue-as-new and into the customer's next life.
func TestCardLimitHoldsAcrossLives(t *testing.T) {
	in := input()
	in.Settings.MaxAttemptsPerCard = 2
	rt := newRecoveryTest(t)
	rt.at(150*time.Minute, func() { rt.env.SetContinueAsNewSuggested(true) })
	rt.signal(0, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, in)
	var can *workflow.ContinueAsNewError
	if err := rt.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("error %v, want continue-as-new", err)
	}
	if len(rt.w.retries) != 2 {
		t.Fatalf("%d confirms in the first run, want 2 (the limit)", len(rt.w.retries))
	}
	var next workflows.RecoveryInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	// The continued run: the third scheduled retry is held.
	rt2 := newRecoveryTest(t)
	rt2.update(4*time.Hour, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}, func(r workflows.OperatorResult, err error) {
		if err == nil || !strings.Contains(err.Error(), "card-network") {
			t.Errorf("retry_now on a card at its limit: %+v %v; want refused, saying why", r, err)
		}
	})
	rt2.env.SetStartTime(t0.Add(150 * time.Minute))
	var res workflows.RecoveryResult
	rt2.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, next)
	if err := rt2.env.GetWorkflowResult(&res); err != nil || res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("continued run: %+v %v", res, err)
	}
	if len(rt2.w.retries) != 0 {
		t.Fatalf("%d more confirms after the limit", len(rt2.w.retries))
	}
	if len(res.Cards) != 1 || len(res.Cards[0].Attempts) != 2 {
		t.Fatalf("result cards %+v, want the card with its 2 attempts", res.Cards)
	}
	// A new failure days later opens the next life: the card is still at
	// its limit for the rest of the 30 days.
	rt3 := newRecoveryTest(t, func(w *world) { w.previous = &res })
	rt3.env.SetStartTime(t0.Add(5 * 24 * time.Hour))
	if r := rt3.run(in); len(rt3.w.retries) != 0 || r.Stage != workflows.StageDeprovisioned {
		t.Fatalf("next life: %d confirms, stage %s; want none on a card at its limit", len(rt3.w.retries), r.Stage)
	}
}

// Card rules: a life that ends with a new failure come in continues as
// new into the next life, which no Completed run precedes; the card's
// attempts of the life that ended hold in the next one all the same.
func TestCardLimitHoldsWhenALifeEndsWithANewFailure(t *testing.T) {
	in := input()
	in.Settings.MaxAttemptsPerCard = 2
	rt := newRecoveryTest(t, func(w *world) { w.controlDelay = 10 * time.Minute })
	// Confirms on pm_1 at +1h and +2h (the limit); the +3h one is held.
	// Suspended at +10h10m; pi_1 paid by bank transfer at +11h; while the
	// resume runs, pi_2 fails.
	rt.at(11*time.Hour, func() { rt.w.set(func() { rt.w.paidIntents["pi_1"] = true }) })
	rt.signal(11*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Created: t0.Add(11 * time.Hour), Source: "invoice.paid"})
	rt.signal(11*time.Hour+5*time.Minute, workflows.SignalPaymentFailed, failed("evt_pi2", "pi_2", t0.Add(11*time.Hour+5*time.Minute)))
	rt.signal(0, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, in)
	var can *workflow.ContinueAsNewError
	if err := rt.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("error %v, want continue-as-new into the next life", err)
	}
	if len(rt.w.retries) != 2 {
		t.Fatalf("%d confirms in the first life, want 2 (the limit)", len(rt.w.retries))
	}
	var next workflows.RecoveryInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	// The next life, minutes later; Temporal knows no Completed run of
	// the customer's before it.
	// Stripe delivers pi_1's first failure again meanwhile.
	rt2 := newRecoveryTest(t)
	rt2.w.paidIntents["pi_1"] = true
	rt2.env.SetStartTime(t0.Add(11*time.Hour + 10*time.Minute))
	rt2.signal(time.Minute, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	res := rt2.runWith(next)
	if len(rt2.w.retries) != 0 {
		t.Fatalf("next life (%s): %d more confirms on %s within 30 days of 2 at the limit of 2",
			res.Stage, len(rt2.w.retries), rt2.w.retries[0].PaymentMethodID)
	}
	if len(res.Cards) != 1 || len(res.Cards[0].Attempts) != 2 {
		t.Fatalf("next life's cards %+v, want the card with the 2 attempts of the life before", res.Cards)
	}
	// The event the life before applied is not applied again.
	if res.Stage != workflows.StageDeprovisioned || len(res.Intents) != 1 || res.Intents[0].ID != "pi_2" {
		t.Errorf("next life ended %s with %+v, want deprovisioned for pi_2 alone", res.Stage, res.Intents)
	}
}

func offsets(ts []time.Time) []time.Duration {
	var out []time.Duration
	for _, at := range ts {
		out = append(out, at.Sub(t0).Round(time.Minute))
	}
	return out
}

// Card rules: after a stop decline the card is never confirmed again; a
// new default card gets exactly one confirm; the customer is told to use
// another card, never why the bank stopped it.
func TestStopDeclineNeverRetriesTheCard(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.declines["pm_1"] = activities.Decline{Code: "card_declined", DeclineCode: "stolen_card"}
	})
	rt.at(2*time.Hour+30*time.Minute, func() { rt.w.set(func() { rt.w.defaultPM = "pm_2" }) })
	rt.signal(2*time.Hour+30*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{EventID: "evt_new_card", Created: t0.Add(150 * time.Minute), Source: "customer.updated"})
	rt.w.succeedOnAttempt = 2
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered with the new card", res.Stage)
	}
	if len(rt.w.retries) != 2 || rt.w.retries[0].PaymentMethodID != "pm_1" || rt.w.retries[1].PaymentMethodID != "pm_2" {
		t.Fatalf("confirms %+v at %v; want pm_1 once (stopped), then pm_2 once", rt.w.retries, offsets(rt.w.retryTimes))
	}
	for _, n := range rt.w.notices {
		if r := strings.ToLower(n.Reason); strings.Contains(r, "stolen") || strings.Contains(r, "fraud") || strings.Contains(r, "lost") {
			t.Errorf("notice %s names the stop reason: %q", n.Type, n.Reason)
		}
	}
	if n := rt.w.notices[1]; n.Type != "payment_retry_failed" || !strings.Contains(strings.ToLower(n.Reason), "another card") {
		t.Errorf("notice after the stop decline %+v; want one asking for another card", n)
	}
}

// Card rules: a Mastercard advice to retry after 24 hours holds the
// schedule's retries, and the card is tried again once the wait is over.
func TestNetworkRetryAfterIsHonoured(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.declines["pm_1"] = activities.Decline{Code: "card_declined", DeclineCode: "do_not_honor", NetworkAdviceCode: "25"}
	})
	in := input()
	in.Settings.DeprovisionAfter = 40 * time.Hour
	res := rt.run(in)
	if res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("stage %s", res.Stage)
	}
	got := offsets(rt.w.retryTimes)
	if len(got) != 2 || got[0] != time.Hour || got[1] != 25*time.Hour {
		t.Fatalf("confirms at %v, want +1h and +25h (the network's 24h wait)", got)
	}
}

// Card rules: a card whose details are wrong waits for them to change; the
// network's automatic update of that card is such a change.
func TestNewDataDeclineWaitsForTheCardToChange(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.declines["pm_1"] = activities.Decline{Code: "expired_card"}
	})
	rt.at(4*time.Hour, func() {
		rt.w.mu.Lock()
		defer rt.w.mu.Unlock()
		if len(rt.w.retries) != 1 {
			t.Errorf("%d confirms by +4h, want 1: an expired card is not retried on schedule", len(rt.w.retries))
		}
		delete(rt.w.declines, "pm_1")
	})
	rt.signal(5*time.Hour, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{EventID: "evt_auto", Created: t0.Add(5 * time.Hour), PaymentMethodID: "pm_1", Source: workflows.EventPaymentMethodAutoUpd})
	rt.w.succeedOnAttempt = 2
	if res := rt.run(input()); res.Stage != workflows.StageRecovered || len(rt.w.retries) != 2 {
		t.Fatalf("stage %s after %d confirms at %v; want recovered by one retry after the automatic update", res.Stage, len(rt.w.retries), offsets(rt.w.retryTimes))
	}
}

// Card rules: the customer enters the card whose CVC was wrong again, with
// the right one. Stripe makes a new payment method with the card's
// fingerprint and makes it the default: it carries the new data the
// decline waited for, and is confirmed at once. The payment method that
// carried the wrong CVC stays held.
func TestNewDataDeclineLiftedByTheSameCardEnteredAgain(t *testing.T) {
	enteredAgain := func(t *testing.T) *recoveryTest {
		rt := newRecoveryTest(t, func(w *world) {
			w.declines["pm_1"] = activities.Decline{Code: "incorrect_cvc", DeclineCode: "incorrect_cvc"}
			w.fingerprints = map[string]string{"pm_1b": w.fingerprint("pm_1")} // the same card, entered again
		})
		// The scheduled retry at +1h declines: incorrect CVC.
		rt.at(90*time.Minute, func() { rt.w.set(func() { rt.w.defaultPM = "pm_1b" }) })
		rt.signal(90*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
			EventID: "evt_new_default", Created: t0.Add(90 * time.Minute), Source: "customer.updated"})
		rt.w.succeedOnAttempt = 2
		return rt
	}
	rt := enteredAgain(t)
	res := rt.run(input())
	var pms []string
	for _, r := range rt.w.retries {
		pms = append(pms, r.PaymentMethodID)
	}
	if res.Stage != workflows.StageRecovered || !equal(pms, []string{"pm_1", "pm_1b"}) {
		t.Fatalf("stage %s, confirms with %v; want pm_1 (incorrect CVC), then the card entered again, pm_1b, at once", res.Stage, pms)
	}
	if len(res.Cards) != 1 || res.Cards[0].Key != "fp_pm_1" || len(res.Cards[0].Attempts) != 2 || !res.Cards[0].NeedsNewData {
		t.Errorf("cards %+v; want one card, both confirms counted on it, pm_1 still held for new data", res.Cards)
	}

	t.Run("a life recorded before the change", func(t *testing.T) {
		rt := enteredAgain(t)
		rt.env.OnGetVersion("fresh-data-lifts-new-data-hold", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		if res := rt.run(input()); res.Stage != workflows.StageDeprovisioned || len(rt.w.retries) != 1 {
			t.Fatalf("stage %s, %d confirms; want the card held whatever the payment method, as such lives were", res.Stage, len(rt.w.retries))
		}
	})
}

// The same card entered again is a new payment method, but the same
// card: a stop decline holds it whatever payment method carries it.
func TestStopDeclineHoldsTheSameCardEnteredAgain(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.declines["pm_1"] = activities.Decline{Code: "card_declined", DeclineCode: "stolen_card"}
		w.fingerprints = map[string]string{"pm_1b": w.fingerprint("pm_1")}
	})
	rt.at(90*time.Minute, func() { rt.w.set(func() { rt.w.defaultPM = "pm_1b" }) })
	rt.signal(90*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
		EventID: "evt_new_default", Created: t0.Add(90 * time.Minute), Source: "customer.updated"})
	res := rt.run(input())
	if res.Stage != workflows.StageDeprovisioned || len(rt.w.retries) != 1 {
		t.Fatalf("stage %s, confirms %+v; want pm_1 once, and never the stopped card again", res.Stage, rt.w.retries)
	}
}

// Without a Stripe key nothing is charged, and the recovery says so: it
// does not take the missing answer for a missing card.
func TestStripeDryRunChargesNothingAndSaysSo(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.stripeDry = true })
	rt.update(20*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end the test"}, mustAccept(t, "waive"))
	rt.at(4*time.Hour, func() {
		s := rt.status()
		if s.NoPaymentMethod || s.DryRunActions == 0 || len(rt.w.retries) != 0 {
			t.Errorf("dry run: no payment method %v, %d dry-run actions, %d confirms; want no confirm, recorded as dry", s.NoPaymentMethod, s.DryRunActions, len(rt.w.retries))
		}
	})
	_ = rt.run(input())
}

// Rule 1: a waiver asked while the paid customer is being resumed is
// refused, truthfully: nothing is owed any more.
func TestWaiveWhileResumingAPaidCustomerIsRefused(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.controlDelay = 10 * time.Minute })
	rt.signal(11*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Created: t0.Add(11 * time.Hour), Source: "payment_intent.succeeded"})
	rt.update(11*time.Hour+5*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "too late"}, mustReject(t, "waive of a paid customer"))
	rt.update(11*time.Hour+6*time.Minute, workflows.ControlExtendGrace, workflows.ExtendGraceRequest{By: "5h"}, mustReject(t, "extend for a paid customer"))
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
	if want := []string{"suspend", "resume"}; !equal(rt.w.controlActions(), want) {
		t.Fatalf("control plane %v, want %v", rt.w.controlActions(), want)
	}
}

// Rule 1: a failure accepted while the first check ran belongs to the
// life. The first intent found paid at that check does not end the life
// as recovered while the second one, whose failure had come in meanwhile,
// is owed: it runs on from the first failure, told once, to its end.
func TestFailureDuringTheFirstCheckKeepsTheLifeOpen(t *testing.T) {
	rt := newRecoveryTest(t, slowChecks(10*time.Minute))
	// The first check of pi_1 takes Stripe 10 minutes; meanwhile pi_2
	// fails and pi_1 is paid.
	rt.signal(2*time.Minute, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(time.Minute)))
	rt.at(3*time.Minute, func() { rt.w.set(func() { rt.w.paidIntents["pi_1"] = true }) })
	rt.signal(3*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid1", Created: t0.Add(3 * time.Minute), IntentID: "pi_1", Source: "payment_intent.succeeded"})
	rt.at(time.Hour, func() {
		s := rt.status()
		if s.Stage != workflows.StagePastDue || !s.FirstFailureAt.Equal(t0) || len(s.Intents) != 2 {
			t.Errorf("at +1h: stage %s, first failure %s, %d intents; want past_due since t0 with both intents", s.Stage, s.FirstFailureAt, len(s.Intents))
		}
	})
	res := rt.run(input())
	if res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("stage %s (%s), want deprovisioned: pi_2 was never paid", res.Stage, res.Summary)
	}
	notices := strings.Join(rt.w.noticeTypes(), ",")
	if strings.Count(notices, "payment_failed") != 1 || strings.Contains(notices, "payment_recovered") {
		t.Errorf("notices %s, want one past-due notice and no recovery", notices)
	}
}

// Every change of stage is told to the customer: a waiver while past due
// with a waived notice, a waiver while suspended with the resume it
// brings; once each, beside the ops alert.
func TestWaiverIsToldToTheCustomer(t *testing.T) {
	for _, c := range []struct {
		name   string
		at     time.Duration
		notice string
	}{
		{"past due", 30 * time.Minute, "payment_waived"},
		{"suspended", 11 * time.Hour, "account_resumed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rt := newRecoveryTest(t)
			rt.update(c.at, workflows.ControlWaive, workflows.OperatorRequest{Reason: "goodwill", Operator: "ops"}, mustAccept(t, "waive"))
			res := rt.run(input())
			if res.Stage != workflows.StageWaived {
				t.Fatalf("stage %s, want waived", res.Stage)
			}
			notices := strings.Join(rt.w.noticeTypes(), ",")
			if strings.Count(notices, c.notice) != 1 || strings.Contains(notices, "payment_recovered") {
				t.Errorf("notices %s, want one %s", notices, c.notice)
			}
			if n := rt.w.alertsWith("info", "Waived"); n != 1 {
				t.Errorf("%d waived alerts, want 1", n)
			}
		})
	}
}

// An operator's waiver sent as a signal (the UI's Send Signal) that comes
// in while a retry charges another intent is taken in the middle of the
// round; it is still carried out at once, not left waiting for a wake that
// nothing else brings.
func TestWaiverSignalledDuringARetryRoundIsCarriedOut(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.chargeDelay = 10 * time.Minute })
	rt.signal(5*time.Minute, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(5*time.Minute)))
	// The first retry starts at +1h and charges pi_1 for ten minutes; the
	// waiver comes in meanwhile, and is applied before pi_2's charge.
	rt.signal(time.Hour+5*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "goodwill", Operator: "ops"})
	rt.at(2*time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StageWaived {
			t.Errorf("an hour after the waiver: stage %s, next %+v; want waived", s.Stage, s.Next)
		}
	})
	res := rt.run(input())
	if res.Stage != workflows.StageWaived {
		t.Fatalf("stage %s, want waived", res.Stage)
	}
	if len(rt.w.retries) != 1 || rt.w.retries[0].IntentID != "pi_1" {
		t.Fatalf("charges %+v, want pi_1's only: pi_2 is waived before its turn", rt.w.retries)
	}
	if got := rt.w.noticeTypes(); !slices.Contains(got, "payment_waived") {
		t.Errorf("notices %v: the customer is told of the waiver", got)
	}
}

// Forgiven is forever. Stripe answers 500 to a confirm, slowly, and
// replays that answer to its key for a day: the charge ends failed within
// its bound instead of holding the recovery, and the waiver an operator
// sent meanwhile is carried out with nothing charged after it. (Without
// the bound a real server retries for the whole day; the test
// environment stops at ten attempts, which 29 s answers put past the
// bound.)
func TestAChargeStripeKeepsAnswering500EndsWithinItsBound(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.chargeDelay = 29 * time.Second
		w.retryHook = func(in activities.RetryInput) (activities.RetryResult, error, bool) {
			if w.now().Before(t0.Add(24*time.Hour + time.Hour)) {
				return activities.RetryResult{}, errors.New("stripe answered 500 api_error (replayed)"), true
			}
			return activities.RetryResult{}, nil, false
		}
	})
	rt.update(time.Hour+time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "goodwill", Operator: "ops"}, mustAccept(t, "waive"))
	res := rt.run(input())
	// The confirm began at +1h; the life ends with the waiver once the
	// charge gives up.
	if ended := rt.env.Now().Sub(t0); res.Stage != workflows.StageWaived || ended > time.Hour+10*time.Minute+30*time.Second {
		t.Fatalf("stage %s at +%s; want waived once the charge gave up, at most 10 minutes after it began at +1h", res.Stage, ended)
	}
	if len(rt.w.retries) != 0 {
		t.Errorf("confirmed %+v after the waiver", rt.w.retries)
	}
}

// Respect the card. A confirm Stripe never answered may have reached the
// card network: it counts against the card's limit like one answered.
func TestAnUnansweredConfirmCountsAgainstTheCardsLimit(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.retryHook = func(in activities.RetryInput) (activities.RetryResult, error, bool) {
			if w.now().Before(t0.Add(90 * time.Minute)) {
				return activities.RetryResult{}, errors.New("stripe answered 500 api_error"), true
			}
			return activities.RetryResult{}, nil, false
		}
	})
	rt.at(90*time.Minute, func() {
		s := rt.status()
		var attempts int
		for _, c := range s.Cards {
			if c.PaymentMethod == "pm_1" {
				attempts = len(c.Attempts)
			}
		}
		// The first failure's event names no card; the confirm that got no
		// answer is the one attempt.
		if attempts != 1 {
			t.Errorf("pm_1 has %d attempts in the window after a confirm Stripe did not answer, want 1", attempts)
		}
		if n := rt.w.alertsWith("critical", "did not answer"); n != 1 {
			t.Errorf("%d alerts of the unanswered confirm, want 1", n)
		}
	})
	rt.update(91*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
	rt.run(input())
}
