package workflows_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"dunning/activities"
	"dunning/workflows"
)

// fakeStripeList is Stripe's event list as ListEvents would page it:
// pages keyed by the starting_after that asks for them.
type fakeStripeList struct {
	t     *testing.T
	pages map[string]activities.EventPage

	mu     sync.Mutex
	lists  []activities.ListEventsInput
	starts [][]string // event IDs handed to StartEvents, per call
	raw    bool       // a StartEvents call asked for raw events
}

func rawEvent(id string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"id":%q,"object":"event","type":"invoice.paid"}`, id))
}

func page(hasMore bool, ids ...string) activities.EventPage {
	p := activities.EventPage{HasMore: hasMore}
	for _, id := range ids {
		p.Events = append(p.Events, rawEvent(id))
		p.LastID = id
	}
	return p
}

// known are the events dunning already has: StartEvents reports them as
// already known, and starts the others.
var known = map[string]bool{"evt_known1": true, "evt_known2": true, "evt_known3": true}

func (f *fakeStripeList) run(in workflows.ReconcileInput, start time.Time) (*testsuite.TestWorkflowEnvironment, workflows.ReconcileResult, error) {
	f.t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(start)
	env.SetTestTimeout(10 * time.Second)
	env.RegisterActivity(acts)
	env.OnActivity(acts.ListEvents, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ListEventsInput) (activities.EventPage, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.lists = append(f.lists, in)
			p, ok := f.pages[in.StartingAfter]
			if !ok {
				return activities.EventPage{}, temporal.NewNonRetryableApplicationError(
					"no page after "+in.StartingAfter, activities.ErrStripeRejected, nil)
			}
			return p, nil
		})
	env.OnActivity(acts.StartEvents, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.StartEventsInput) (activities.StartEventsResult, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			var ids []string
			var res activities.StartEventsResult
			f.raw = f.raw || !in.Reduced
			for _, raw := range in.Events {
				var ev struct{ ID string }
				if err := json.Unmarshal(raw, &ev); err != nil {
					f.t.Errorf("StartEvents got an event that is not JSON: %s", raw)
				}
				ids = append(ids, ev.ID)
				if known[ev.ID] {
					res.AlreadyKnown++
				} else {
					res.Started++
				}
			}
			f.starts = append(f.starts, ids)
			return res, nil
		})
	env.ExecuteWorkflow(workflows.ReconcileEventsWorkflow, in)
	if !env.IsWorkflowCompleted() {
		f.t.Fatal("workflow did not complete")
	}
	var res workflows.ReconcileResult
	err := env.GetWorkflowError()
	if err == nil {
		if err := env.GetWorkflowResult(&res); err != nil {
			f.t.Fatalf("result: %v", err)
		}
	}
	return env, res, err
}

// metadataQuery is Temporal's built-in query behind the UI's summary and
// details; the SDK does not export its name.
const metadataQuery = "__temporal_workflow_metadata"

// currentDetails is the line the UI shows for the workflow.
func currentDetails(t *testing.T, env *testsuite.TestWorkflowEnvironment) string {
	t.Helper()
	v, err := env.QueryWorkflow(metadataQuery)
	if err != nil {
		t.Fatalf("metadata query: %v", err)
	}
	var md sdkpb.WorkflowMetadata
	if err := v.Get(&md); err != nil {
		t.Fatalf("decode metadata: %v", err)
	}
	return md.GetCurrentDetails()
}

var reconcileStart = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

func TestReconcileEventsWorkflowPagesThroughStripesList(t *testing.T) {
	f := &fakeStripeList{t: t, pages: map[string]activities.EventPage{
		"":           page(true, "evt_new1", "evt_known1"),
		"evt_known1": page(true, "evt_known2", "evt_new2"),
		"evt_new2":   page(false, "evt_new3", "evt_known3"),
	}}
	env, res, err := f.run(workflows.ReconcileInput{Lookback: 72 * time.Hour}, reconcileStart)
	if err != nil {
		t.Fatalf("workflow failed: %v", err)
	}

	wantFrom, wantTo := reconcileStart.Add(-72*time.Hour), reconcileStart
	want := workflows.ReconcileResult{From: wantFrom, To: wantTo, Found: 6, Started: 3, AlreadyKnown: 3, Pages: 3}
	if !res.From.Equal(want.From) || !res.To.Equal(want.To) {
		t.Errorf("window %s to %s, want %s to %s (workflow start minus the look-back)", res.From, res.To, wantFrom, wantTo)
	}
	res.From, res.To, want.From, want.To = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}

	var cursors []string
	for _, in := range f.lists {
		cursors = append(cursors, in.StartingAfter)
		if !slices.Equal(in.Types, workflows.HandledEventTypes()) {
			t.Errorf("listed types %v, want every handled type %v", in.Types, workflows.HandledEventTypes())
		}
		if !in.CreatedGTE.Equal(wantFrom) || !in.CreatedLT.Equal(wantTo) {
			t.Errorf("listed created in [%s, %s), want [%s, %s)", in.CreatedGTE, in.CreatedLT, wantFrom, wantTo)
		}
		if in.Limit <= 0 || in.Limit > 100 {
			t.Errorf("limit %d, want 1 to 100", in.Limit)
		}
		if !in.Reduce {
			t.Errorf("listing after %q asks for raw events; want them reduced in the activity, so no personal data reaches history", in.StartingAfter)
		}
	}
	if f.raw {
		t.Error("StartEvents was handed raw events; want the reduced ones")
	}
	if want := []string{"", "evt_known1", "evt_new2"}; !slices.Equal(cursors, want) {
		t.Errorf("pages listed starting after %q, want %q (each after the last ID of the page before)", cursors, want)
	}
	wantStarts := [][]string{{"evt_new1", "evt_known1"}, {"evt_known2", "evt_new2"}, {"evt_new3", "evt_known3"}}
	if !slices.EqualFunc(f.starts, wantStarts, slices.Equal) {
		t.Errorf("events handed to StartEvents %q, want %q", f.starts, wantStarts)
	}
	if d := currentDetails(t, env); !strings.Contains(d, "found 6, started 3, already known 3") {
		t.Errorf("current details %q, want the counts", d)
	}
}

func TestReconcileEventsWorkflowCarriesOnAfterContinueAsNew(t *testing.T) {
	from, to := reconcileStart.Add(-80*time.Hour), reconcileStart.Add(-8*time.Hour)
	f := &fakeStripeList{t: t, pages: map[string]activities.EventPage{
		"evt_cursor": page(true, "evt_new1"),
		"evt_new1":   page(false, "evt_known1"),
	}}
	_, res, err := f.run(workflows.ReconcileInput{
		Lookback:      72 * time.Hour,
		Progress:      &workflows.ReconcileResult{From: from, To: to, Found: 10, Started: 4, AlreadyKnown: 6, Pages: 5},
		StartingAfter: "evt_cursor",
	}, reconcileStart)
	if err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	if !res.From.Equal(from) || !res.To.Equal(to) || res.Found != 12 || res.Started != 5 || res.AlreadyKnown != 7 || res.Pages != 7 {
		t.Errorf("result %+v, want the window carried over and counts 12/5/7 over 7 pages", res)
	}
	if len(f.lists) == 0 || f.lists[0].StartingAfter != "evt_cursor" || !f.lists[0].CreatedGTE.Equal(from) || !f.lists[0].CreatedLT.Equal(to) {
		t.Errorf("first list %+v, want it after evt_cursor in the carried window", f.lists)
	}
}

func TestReconcileEventsWorkflowDryRunSaysSo(t *testing.T) {
	f := &fakeStripeList{t: t, pages: map[string]activities.EventPage{"": {DryRun: true}}}
	env, res, err := f.run(workflows.ReconcileInput{Lookback: time.Hour}, reconcileStart)
	if err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	if !res.DryRun || res.Found != 0 || res.Pages != 1 {
		t.Errorf("result %+v, want a dry run of one empty page", res)
	}
	if len(f.starts) != 0 {
		t.Errorf("StartEvents called with %v on a dry run", f.starts)
	}
	if d := currentDetails(t, env); !strings.Contains(d, "dry run") {
		t.Errorf("current details %q do not say it was a dry run", d)
	}
}

func TestReconcileEventsWorkflowFailsWhenStripeDoesNotMoveOn(t *testing.T) {
	f := &fakeStripeList{t: t, pages: map[string]activities.EventPage{
		"":         page(true, "evt_new1"),
		"evt_new1": page(true, "evt_new1"), // the same cursor again: a loop
	}}
	_, _, err := f.run(workflows.ReconcileInput{Lookback: time.Hour}, reconcileStart)
	if err == nil || !strings.Contains(err.Error(), "does not move on") {
		t.Fatalf("err = %v, want the workflow to stop on a list that does not move on", err)
	}
}

func TestReconcileEventsWorkflowFailsWhenStripeRejectsTheList(t *testing.T) {
	f := &fakeStripeList{t: t, pages: map[string]activities.EventPage{}}
	_, _, err := f.run(workflows.ReconcileInput{Lookback: time.Hour}, reconcileStart)
	if err == nil || !strings.Contains(err.Error(), "list stripe events") {
		t.Fatalf("err = %v, want the run to fail saying the list failed", err)
	}
	if len(f.lists) != 1 {
		t.Errorf("ListEvents called %d times, want 1: a rejected request is not retried", len(f.lists))
	}
}

func TestReconcileEventsWorkflowNeedsALookback(t *testing.T) {
	f := &fakeStripeList{t: t, pages: map[string]activities.EventPage{"": page(false)}}
	_, _, err := f.run(workflows.ReconcileInput{}, reconcileStart)
	if err == nil {
		t.Fatal("a reconciliation without a look-back ran")
	}
	if len(f.lists) != 0 {
		t.Errorf("ListEvents called %d times without a window", len(f.lists))
	}
}

func TestReconcileEventsWorkflowCountsEventsTheListingLeftOut(t *testing.T) {
	first := page(true, "evt_new1")
	first.Ignored, first.Invalid = 2, 1
	last := page(false)
	last.Ignored = 1
	f := &fakeStripeList{t: t, pages: map[string]activities.EventPage{"": first, "evt_new1": last}}
	_, res, err := f.run(workflows.ReconcileInput{Lookback: time.Hour}, reconcileStart)
	if err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	if res.Found != 5 || res.Started != 1 || res.Ignored != 3 || res.Invalid != 1 {
		t.Errorf("result %+v, want found 5: started 1, ignored 3, invalid 1", res)
	}
	if want := [][]string{{"evt_new1"}}; !slices.EqualFunc(f.starts, want, slices.Equal) {
		t.Errorf("events handed to StartEvents %q, want %q (an empty page starts nothing)", f.starts, want)
	}
}
