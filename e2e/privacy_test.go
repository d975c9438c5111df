package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/internal/stripefixture"
	"dunning/workflows"
)

// TestReconciliationKeepsPersonalDataOutOfHistory: Stripe's events carry
// the customer's email, name, phone number and address (billing details,
// customer objects, receipt_email, shipping, the cardholder). A failed
// payment is delivered; three more events are only in Stripe's list, and a
// reconciliation finds them. No history of any workflow that ran, nor a
// recovery's status, holds any of the personal strings.
func TestReconciliationKeepsPersonalDataOutOfHistory(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1s,2s", "DUNNING_GRACE_PERIOD": "4s", "DUNNING_DEPROVISION_AFTER": "3s",
	}})
	delivered, missed := stripefixture.NewID("cus"), stripefixture.NewID("cus")
	// A minute ago: the reconciliation lists events created before the
	// second it starts in.
	at := time.Now().Add(-time.Minute)
	s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: delivered, Created: at})
	card := stripefixture.NewID("card")
	notDelivered := []*Event{
		s.NewEvent(workflows.EventPaymentFailed, stripefixture.Options{Customer: missed, Created: at}),
		s.NewEvent(workflows.EventSourceExpiring, stripefixture.Options{Customer: missed, ObjectID: card, Created: at}),
		s.NewEvent(workflows.EventCustomerUpdated, stripefixture.Options{Customer: missed, Created: at}),
	}
	for _, ev := range notDelivered {
		for _, p := range stripefixture.Personal {
			if !bytes.Contains(ev.Body, []byte(p)) && ev.Type != workflows.EventSourceExpiring {
				t.Fatalf("the %s event does not carry %q: nothing to keep out", ev.Type, p)
			}
		}
	}
	s.WaitStage(delivered, workflows.StagePastDue, 20*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	c := s.Client()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.ReconcileScheduleID + "-e2e", TaskQueue: TaskQueue},
		workflows.ReconcileEventsWorkflowName, workflows.ReconcileInput{Lookback: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.ReconcileResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("reconciliation: %v", err)
	}
	if res.Found != 4 || res.Started != 3 || res.AlreadyKnown != 1 || res.DryRun {
		t.Errorf("reconciliation %+v, want found 4: started 3 (never delivered), already known 1", res)
	}
	if len(s.Stripe.Requests(func(r Request) bool { return r.Kind == "list events" })) == 0 {
		t.Error("the reconciliation never listed Stripe's events")
	}
	for _, ev := range notDelivered {
		s.EventResult(ev.ID, 20*time.Second)
	}
	s.WaitStage(delivered, workflows.StageSuspended, 20*time.Second)

	// Every workflow that ran: the reconciliation, the event workflows,
	// both recoveries and the card's expiry watch.
	want := []string{run.GetID(), workflows.RecoveryWorkflowID(delivered), workflows.RecoveryWorkflowID(missed),
		workflows.CardExpiryWorkflowID(card)}
	for _, ev := range notDelivered {
		want = append(want, ev.ID)
	}
	var runs []execution
	s.Eventually("every workflow listed", 10*time.Second, func() bool {
		var err error
		if runs, err = listExecutions(ctx, c); err != nil {
			t.Fatalf("list workflows: %v", err)
		}
		listed := map[string]bool{}
		for _, e := range runs {
			listed[e.workflowID] = true
		}
		for _, id := range want {
			if !listed[id] {
				return false
			}
		}
		return true
	})
	// The stack scans every history when the test ends; this test also
	// says that every workflow type that meets a Stripe event was among
	// them and that the scan reads whole histories.
	types := map[string]bool{}
	for _, e := range runs {
		found, events, err := personalIn(ctx, c, e)
		if err != nil {
			t.Fatalf("history of %s: %v", e.workflowID, err)
		}
		if events == 0 {
			t.Errorf("history of %s is empty", e.workflowID)
		}
		for _, f := range found {
			t.Errorf("history of %s (%s): %s", e.workflowID, e.typ, f)
		}
		types[e.typ] = true
	}
	for _, typ := range []string{workflows.StripeEventWorkflowName, workflows.PaymentRecoveryWorkflowName,
		workflows.CardExpiryWorkflowName, workflows.ReconcileEventsWorkflowName} {
		if !types[typ] {
			t.Errorf("no %s among the %d histories scanned", typ, len(runs))
		}
	}
	for _, customer := range []string{delivered, missed} {
		st := s.Status(customer)
		b, _ := json.Marshal(st)
		for _, p := range stripefixture.Personal {
			if bytes.Contains(b, []byte(p)) {
				t.Errorf("status of %s's recovery holds %q", customer, p)
			}
		}
	}
}
