package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"dunning/internal/stripefixture"
	"dunning/workflows"
)

// A customer of a PaymentMethod-era account in recovery removes the card
// that failed, their only one: Stripe sends payment_method.detached, whose
// payment method names no customer any more (it is in previous_attributes).
// The customer and ops hear that no way to pay is left, the recovery waits
// for a card, nothing is charged, and the event is found under the
// customer in the UI.
func TestDetachedLastCardLeavesNoWayToPay(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{"DUNNING_RETRY_SCHEDULE": "1h,2h", "DUNNING_GRACE_PERIOD": "3h"}})
	customer, intent := stripefixture.NewID("cus"), stripefixture.NewID("pi")
	failed := s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent})
	s.WaitStage(customer, workflows.StagePastDue, 20*time.Second)
	s.Eventually("past-due notice", 20*time.Second, func() bool { return s.Notices.Kinds(customer)["payment_failed"] == 1 })

	card := failed.Parsed.PaymentIntent.PaymentMethodID
	detached := s.Send(workflows.EventPaymentMethodDetached, stripefixture.Options{Customer: customer, ObjectID: card, APIVersion: "2025-03-31.basil"})
	if !strings.Contains(string(detached.Body), `"customer":null`) {
		t.Fatalf("the detached payment method still names its customer: %s", detached.Body)
	}
	res := s.EventResult(detached.ID, 30*time.Second)
	if res.CustomerID != customer || !strings.Contains(res.Outcome, "no payment method left") || !strings.Contains(res.Outcome, "waits for a card") {
		t.Fatalf("event result %+v, want %s told that no way to pay is left", res, customer)
	}
	s.Eventually("recovery waits for a card", 20*time.Second, func() bool { return s.Status(customer).NoPaymentMethod })
	s.Check(customer, Expect{
		Notices: map[string]int{"payment_failed": 1, "payment_method_missing": 1},
		Alerts:  map[string]int{"past_due": 1, "alert": 1},
		Charges: map[string]int{intent: 0},
	})

	query := "StripeCustomerId='" + customer + "' AND StripeEventType='" + workflows.EventPaymentMethodDetached + "'"
	s.Eventually("the event under the customer in visibility", 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := s.Client().ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		return err == nil && len(resp.GetExecutions()) == 1 && resp.GetExecutions()[0].GetExecution().GetWorkflowId() == detached.ID
	})
}

// The customer adds a second card, then removes the one that failed: a
// usable card is left, so nobody is told, but the running recovery hears
// of the removal (Stripe's detach event names no customer on the payment
// method; the route reads it from previous_attributes). It records the
// removed card as one it will not charge, retry_now says so, and the retry
// charges the card that is left, never the removed one.
func TestDetachedWithAnotherCardLeft(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1h,2h", "DUNNING_GRACE_PERIOD": "3h", "DUNNING_CARD_UPDATE_DEBOUNCE": "1h",
	}})
	customer, intent := stripefixture.NewID("cus"), stripefixture.NewID("pi")
	failed := s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent})
	s.WaitStage(customer, workflows.StagePastDue, 20*time.Second)
	s.Eventually("past-due notice", 20*time.Second, func() bool { return s.Notices.Kinds(customer)["payment_failed"] == 1 })
	removed, left := failed.Parsed.PaymentIntent.PaymentMethodID, stripefixture.NewID("pm")
	// The new card becomes the default; its round waits out the debounce.
	s.Send(workflows.EventPaymentMethodAttached, stripefixture.Options{Customer: customer, ObjectID: left})

	detached := s.Send(workflows.EventPaymentMethodDetached, stripefixture.Options{Customer: customer, ObjectID: removed, APIVersion: "2025-03-31.basil"})
	if !strings.Contains(string(detached.Body), `"customer":null`) {
		t.Fatalf("the detached payment method still names its customer: %s", detached.Body)
	}
	res := s.EventResult(detached.ID, 30*time.Second)
	if res.CustomerID != customer || !strings.Contains(res.Outcome, "a usable payment method remains") || !strings.Contains(res.Outcome, "not to charge "+removed) {
		t.Fatalf("event result %+v, want the running recovery of %s told not to charge %s", res, customer, removed)
	}
	s.Eventually("the removed card recorded", 20*time.Second, func() bool {
		st := s.Status(customer)
		return len(st.Unusable) == 1 && st.Unusable[0].PaymentMethod == removed && !st.NoPaymentMethod
	})
	out := s.operator(customer, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "e2e"})
	if !out.Accepted || !strings.Contains(out.Message, removed+" (removed by the customer") {
		t.Fatalf("retry_now: %+v, want accepted, naming %s as removed", out, removed)
	}
	if r := s.Recovery(customer, 30*time.Second); r.Stage != workflows.StageRecovered {
		t.Fatalf("recovery ended %s (%s), want recovered by %s", r.Stage, r.Summary, left)
	}
	for _, c := range s.Stripe.Confirms(intent) {
		if strings.Contains(string(c.Body), removed) {
			t.Errorf("confirm with the removed card: %s", c)
		}
	}
	s.Check(customer, Expect{
		Notices: map[string]int{"payment_failed": 1, "payment_recovered": 1},
		Alerts:  map[string]int{"past_due": 1, "recovered": 1},
		Charges: map[string]int{intent: 1},
	})
}
