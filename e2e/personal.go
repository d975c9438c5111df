package e2e

import (
	"bytes"
	"context"
	"strconv"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"dunning/internal/stripefixture"
)

// The stand-in Stripe serves customers, payment methods, cards, charges,
// intents and invoices with personal data where Stripe keeps it, and the
// events carry it too (stripefixture.Personal). Every test of the suite
// ends with a scan of every history of every workflow that ran on its
// server: none may hold a personal string, whatever the workflow type.

// execution names one run of a workflow.
type execution struct{ workflowID, runID, typ string }

// listExecutions returns every run the namespace holds, open and closed.
func listExecutions(ctx context.Context, c client.Client) ([]execution, error) {
	var out []execution
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 200, NextPageToken: token})
		if err != nil {
			return nil, err
		}
		for _, e := range resp.GetExecutions() {
			out = append(out, execution{e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), e.GetType().GetName()})
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return out, nil
		}
	}
}

// personalIn returns, for each event of a run's history that holds a
// personal string, a description of it. Payloads are JSON, and a
// history's protobuf encoding keeps their bytes as they are: the search
// covers inputs, results, signals, updates, queries' answers recorded as
// results, memos, search attributes and failures alike.
func personalIn(ctx context.Context, c client.Client, e execution) (found []string, events int, err error) {
	it := c.GetWorkflowHistory(ctx, e.workflowID, e.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return found, events, err
		}
		events++
		b, err := proto.Marshal(ev)
		if err != nil {
			return found, events, err
		}
		for _, p := range stripefixture.Personal {
			if bytes.Contains(b, []byte(p)) {
				found = append(found, ev.GetEventType().String()+" (event "+strconv.FormatInt(ev.GetEventId(), 10)+") holds "+p)
			}
		}
	}
	return found, events, nil
}

// scanHistories fails the test for every personal string in any history
// on the stack's server. A server the test stopped and left stopped has
// nothing to scan.
func (s *Stack) scanHistories() {
	s.mu.Lock()
	d := s.temporal
	s.mu.Unlock()
	if d == nil || d.Client == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := d.Client.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		s.t.Logf("personal-data scan skipped: Temporal is not running (%v)", err)
		return
	}
	runs, err := listExecutions(ctx, d.Client)
	if err != nil {
		s.t.Errorf("personal-data scan: list workflows: %v", err)
		return
	}
	for _, e := range runs {
		found, _, err := personalIn(ctx, d.Client, e)
		if err != nil {
			s.t.Errorf("personal-data scan: history of %s (%s): %v", e.workflowID, e.typ, err)
			continue
		}
		for _, f := range found {
			s.t.Errorf("history of %s (%s, run %s): %s", e.workflowID, e.typ, e.runID, f)
		}
	}
}
