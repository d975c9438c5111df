package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

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
	var listed map[string]bool
	s.Eventually("every workflow listed", 10*time.Second, func() bool {
		listed = listWorkflows(t, ctx, c)
		for _, id := range want {
			if !listed[id] {
				return false
			}
		}
		return true
	})
	types := map[string]bool{}
	for id := range listed {
		types[historyHolds(t, ctx, c, id)] = true
	}
	for _, typ := range []string{workflows.StripeEventWorkflowName, workflows.PaymentRecoveryWorkflowName,
		workflows.CardExpiryWorkflowName, workflows.ReconcileEventsWorkflowName} {
		if !types[typ] {
			t.Errorf("no %s among the %d histories scanned", typ, len(listed))
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

// listWorkflows returns the ID of every workflow of the namespace.
func listWorkflows(t *testing.T, ctx context.Context, c client.Client) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 100, NextPageToken: token})
		if err != nil {
			t.Fatalf("list workflows: %v", err)
		}
		for _, e := range resp.GetExecutions() {
			ids[e.GetExecution().GetWorkflowId()] = true
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return ids
		}
	}
}

// historyHolds fails the test for every personal string in the history of
// the latest run of workflowID, and returns its workflow type. Payloads
// are JSON, and a history's protobuf encoding keeps their bytes as they
// are: the search covers inputs, results, signals, memos, search
// attributes and failures alike.
func historyHolds(t *testing.T, ctx context.Context, c client.Client, workflowID string) string {
	t.Helper()
	it := c.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	typ := ""
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", workflowID, err)
		}
		if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			typ = a.GetWorkflowType().GetName()
		}
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range stripefixture.Personal {
			if bytes.Contains(b, []byte(p)) {
				t.Errorf("history of %s, event %d (%s), holds %q", workflowID, ev.GetEventId(), ev.GetEventType(), p)
			}
		}
	}
	if typ == "" {
		t.Errorf("history of %s has no start", workflowID)
	}
	return typ
}
