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

	// watermark is what the last complete run left; watermarkErr, when
	// set, is the answer of a visibility that cannot be read.
	watermark    activities.ReconcileWatermark
	watermarkErr error

	alerts []activities.AlertInput // sent to ops
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
	env.OnActivity(acts.LastReconcileWatermark, mock.Anything).Return(
		func(context.Context) (activities.ReconcileWatermark, error) { return f.watermark, f.watermarkErr })
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
			if in.SkipKnown {
				// As the activity does, with one question about the page.
				kept := []json.RawMessage{}
				for _, raw := range p.Events {
					var ev struct{ ID string }
					if json.Unmarshal(raw, &ev) == nil && known[ev.ID] {
						p.Known++
						continue
					}
					kept = append(kept, raw)
				}
				p.Events = kept
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
	env.OnActivity(acts.Alert, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AlertInput) (activities.NotifyResult, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.alerts = append(f.alerts, in)
			return activities.NotifyResult{}, nil
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
	if !res.From.Equal(want.From) || !res.To.Equal(want.To) || !res.CoveredFrom.Equal(want.From) {
		t.Errorf("window %s to %s covered from %s, want %s to %s (workflow start minus the look-back)", res.From, res.To, res.CoveredFrom, wantFrom, wantTo)
	}
	res.From, res.To, res.CoveredFrom, want.From, want.To = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
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
		if !in.SkipKnown {
			t.Errorf("listing after %q hands known events on; want them left out with one question per page", in.StartingAfter)
		}
	}
	if f.raw {
		t.Error("StartEvents was handed raw events; want the reduced ones")
	}
	if want := []string{"", "evt_known1", "evt_new2"}; !slices.Equal(cursors, want) {
		t.Errorf("pages listed starting after %q, want %q (each after the last ID of the page before)", cursors, want)
	}
	// Only what dunning does not have is started.
	wantStarts := [][]string{{"evt_new1"}, {"evt_new2"}, {"evt_new3"}}
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

func TestReconcileEventsWorkflowGoesOnFromTheWatermark(t *testing.T) {
	wm := activities.ReconcileWatermark{To: reconcileStart.Add(-15 * time.Minute), CoveredFrom: reconcileStart.Add(-100 * time.Hour)}
	f := &fakeStripeList{t: t, watermark: wm, pages: map[string]activities.EventPage{
		"": page(false, "evt_new1", "evt_known1"),
	}}
	env, res, err := f.run(workflows.ReconcileInput{Lookback: 72 * time.Hour, Overlap: 10 * time.Minute}, reconcileStart)
	if err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	wantFrom := wm.To.Add(-10 * time.Minute)
	if !res.From.Equal(wantFrom) || !res.To.Equal(reconcileStart) || !res.Since.Equal(wm.To) || !res.CoveredFrom.Equal(wm.CoveredFrom) {
		t.Errorf("window %s to %s since %s covered from %s; want %s to %s since the watermark %s, covered from %s",
			res.From, res.To, res.Since, res.CoveredFrom, wantFrom, reconcileStart, wm.To, wm.CoveredFrom)
	}
	if res.Found != 2 || res.Started != 1 || res.AlreadyKnown != 1 {
		t.Errorf("result %+v, want found 2, started 1, already known 1", res)
	}
	if len(f.lists) != 1 || !f.lists[0].CreatedGTE.Equal(wantFrom) {
		t.Errorf("lists %+v, want one from the watermark less the overlap, %s", f.lists, wantFrom)
	}
	if d := currentDetails(t, env); !strings.Contains(d, "from the last watermark") {
		t.Errorf("current details %q do not say the run went on from the watermark", d)
	}
}

func TestReconcileEventsWorkflowLooksBackWholeWithoutAWatermark(t *testing.T) {
	for name, f := range map[string]*fakeStripeList{
		"none":       {},
		"unreadable": {watermarkErr: temporal.NewNonRetryableApplicationError("visibility down", "test", nil)},
	} {
		t.Run(name, func(t *testing.T) {
			f.t = t
			f.pages = map[string]activities.EventPage{"": page(false, "evt_new1")}
			_, res, err := f.run(workflows.ReconcileInput{Lookback: 72 * time.Hour}, reconcileStart)
			if err != nil {
				t.Fatalf("workflow failed: %v", err)
			}
			full := reconcileStart.Add(-72 * time.Hour)
			if !res.From.Equal(full) || !res.Since.IsZero() || res.Started != 1 {
				t.Errorf("result %+v, want the whole look-back from %s and the missed event started", res, full)
			}
		})
	}
}

// Lose no event. No run completed for longer than the look-back (the
// reconciliation was down for four days): the events since the watermark
// were never handled by a complete run, and Stripe stopped redelivering
// the older of them, so the run goes on from the watermark, not from the
// look-back.
func TestReconcileEventsWorkflowCatchesUpFromAWatermarkOlderThanTheLookBack(t *testing.T) {
	wm := activities.ReconcileWatermark{To: reconcileStart.Add(-96 * time.Hour), CoveredFrom: reconcileStart.Add(-200 * time.Hour)}
	f := &fakeStripeList{t: t, watermark: wm, pages: map[string]activities.EventPage{"": page(false, "evt_new1")}}
	_, res, err := f.run(workflows.ReconcileInput{Lookback: 72 * time.Hour, Retention: 168 * time.Hour}, reconcileStart)
	if err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	if len(f.alerts) != 0 {
		t.Errorf("alerts %+v, want none: every event since the watermark was listed", f.alerts)
	}
	wantFrom := wm.To.Add(-10 * time.Minute)
	if !res.From.Equal(wantFrom) || !res.Since.Equal(wm.To) || res.Started != 1 {
		t.Errorf("result %+v, want the events from the watermark less the overlap, %s, and the missed event started", res, wantFrom)
	}
	if len(f.lists) != 1 || !f.lists[0].CreatedGTE.Equal(wantFrom) {
		t.Errorf("lists %+v, want one from %s", f.lists, wantFrom)
	}
}

// An event handled live longer ago than the namespace retention has had
// its workflow deleted: a run catching up from an older watermark would
// start it again, and a failed payment of a customer long recovered,
// waived or deprovisioned would be dunned again. The run lists no further
// back than the retention allows, and tells ops of the events it left out.
func TestReconcileEventsWorkflowCatchesUpNoFurtherThanTheRetention(t *testing.T) {
	wm := activities.ReconcileWatermark{To: reconcileStart.Add(-10 * 24 * time.Hour), CoveredFrom: reconcileStart.Add(-20 * 24 * time.Hour)}
	f := &fakeStripeList{t: t, watermark: wm, pages: map[string]activities.EventPage{"": page(false, "evt_new1")}}
	const retention = 168 * time.Hour
	_, res, err := f.run(workflows.ReconcileInput{Lookback: 72 * time.Hour, Retention: retention}, reconcileStart)
	if err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	safe := reconcileStart.Add(-retention + time.Hour)
	if len(f.lists) != 1 || !f.lists[0].CreatedGTE.Equal(safe) {
		t.Fatalf("lists %+v, want one from %s, inside the retention", f.lists, safe)
	}
	wantUnchecked := wm.To.Add(-10 * time.Minute)
	if !res.From.Equal(safe) || !res.Unchecked.Equal(wantUnchecked) || !res.CoveredFrom.Equal(safe) || res.Started != 1 {
		t.Errorf("result %+v, want from %s, covered from there, events from %s left out", res, safe, wantUnchecked)
	}
	if len(f.alerts) != 1 {
		t.Fatalf("alerts %+v, want one telling ops of the events left out", f.alerts)
	}
	al := f.alerts[0]
	for _, want := range []string{wantUnchecked.Format(time.RFC3339), safe.Format(time.RFC3339), "retention (168h0m0s)"} {
		if !strings.Contains(al.Title+al.Text, want) {
			t.Errorf("alert %+v does not say %q", al, want)
		}
	}
	if al.Severity != "critical" || strings.Contains(al.Text, "30 days") {
		t.Errorf("alert %+v, want critical, and not blaming Stripe's 30 days for events it still lists", al)
	}
}

// Beyond Stripe's 30 days nothing can be listed at all; ops hear of that
// part too, and of nothing when no event was left out.
func TestReconcileEventsWorkflowTellsOpsOfEventsStripeNoLongerLists(t *testing.T) {
	wm := activities.ReconcileWatermark{To: reconcileStart.Add(-40 * 24 * time.Hour), CoveredFrom: reconcileStart.Add(-50 * 24 * time.Hour)}
	f := &fakeStripeList{t: t, watermark: wm, pages: map[string]activities.EventPage{"": page(false, "evt_new1")}}
	_, res, err := f.run(workflows.ReconcileInput{Lookback: 72 * time.Hour, Retention: 90 * 24 * time.Hour}, reconcileStart)
	if err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	if oldest := reconcileStart.Add(-workflows.StripeEventsListedFor); !res.From.Equal(oldest) || res.Unchecked.IsZero() {
		t.Errorf("result %+v, want from %s and the events before it left out", res, oldest)
	}
	if len(f.alerts) != 1 || !strings.Contains(f.alerts[0].Text, "30 days") || strings.Contains(f.alerts[0].Text, "retention") {
		t.Errorf("alerts %+v, want one saying Stripe lists 30 days only", f.alerts)
	}
}

func TestReconcileWindow(t *testing.T) {
	to := reconcileStart
	const lookback, overlap, retention = 72 * time.Hour, 10 * time.Minute, 168 * time.Hour
	full := to.Add(-lookback)
	at := func(d time.Duration) time.Time { return to.Add(d) }
	var none time.Time
	for _, c := range []struct {
		name                          string
		retention                     time.Duration
		last                          activities.ReconcileWatermark
		from, since, cover, unchecked time.Time
	}{
		{"no watermark", retention, activities.ReconcileWatermark{}, full, none, full, none},
		{"fresh, chain covers the look-back", retention, activities.ReconcileWatermark{To: at(-15 * time.Minute), CoveredFrom: at(-80 * time.Hour)},
			at(-25 * time.Minute), at(-15 * time.Minute), at(-80 * time.Hour), none},
		{"chain starts exactly at the look-back", retention, activities.ReconcileWatermark{To: at(-15 * time.Minute), CoveredFrom: full},
			at(-25 * time.Minute), at(-15 * time.Minute), full, none},
		{"chain shorter than the look-back (a gap before it)", retention, activities.ReconcileWatermark{To: at(-15 * time.Minute), CoveredFrom: at(-2 * time.Hour)},
			full, none, full, none},
		{"watermark older than the look-back: gone on from, the events since never handled", retention, activities.ReconcileWatermark{To: at(-100 * time.Hour), CoveredFrom: at(-200 * time.Hour)},
			at(-100*time.Hour - overlap), at(-100 * time.Hour), at(-200 * time.Hour), none},
		{"watermark just inside the retention less its margin", retention, activities.ReconcileWatermark{To: at(-167*time.Hour + overlap), CoveredFrom: at(-200 * time.Hour)},
			at(-167 * time.Hour), at(-167*time.Hour + overlap), at(-200 * time.Hour), none},
		{"watermark older than the retention: no further back than it, the rest left for ops", retention, activities.ReconcileWatermark{To: at(-10 * 24 * time.Hour), CoveredFrom: at(-20 * 24 * time.Hour)},
			at(-retention + time.Hour), at(-10 * 24 * time.Hour), at(-retention + time.Hour), at(-10*24*time.Hour - overlap)},
		{"watermark older than Stripe lists events, retention longer still: as far back as Stripe lists", 60 * 24 * time.Hour, activities.ReconcileWatermark{To: at(-40 * 24 * time.Hour), CoveredFrom: at(-50 * 24 * time.Hour)},
			at(-workflows.StripeEventsListedFor), at(-40 * 24 * time.Hour), at(-workflows.StripeEventsListedFor), at(-40*24*time.Hour - overlap)},
		{"retention not given: the look-back stands in for it", 0, activities.ReconcileWatermark{To: at(-100 * time.Hour), CoveredFrom: at(-200 * time.Hour)},
			full, none, full, at(-100*time.Hour - overlap)},
		{"retention shorter than the look-back plus its margin: never less than the look-back", lookback, activities.ReconcileWatermark{To: at(-100 * time.Hour), CoveredFrom: at(-200 * time.Hour)},
			full, none, full, at(-100*time.Hour - overlap)},
		{"watermark less the overlap exactly at the look-back", retention, activities.ReconcileWatermark{To: full.Add(overlap), CoveredFrom: at(-200 * time.Hour)},
			full, none, full, none},
		{"watermark ahead of this run's clock", retention, activities.ReconcileWatermark{To: at(time.Hour), CoveredFrom: at(-80 * time.Hour)},
			at(-overlap), at(time.Hour), at(-80 * time.Hour), none},
		{"watermark without coverage", retention, activities.ReconcileWatermark{To: at(-15 * time.Minute)}, full, none, full, none},
	} {
		from, since, cover, unchecked := workflows.ReconcileWindow(to, lookback, overlap, c.retention, c.last)
		if !from.Equal(c.from) || !since.Equal(c.since) || !cover.Equal(c.cover) || !unchecked.Equal(c.unchecked) {
			t.Errorf("%s: from %s since %s covered from %s unchecked %s; want %s, %s, %s, %s", c.name, from, since, cover, unchecked, c.from, c.since, c.cover, c.unchecked)
		}
	}
}

func TestReconcileEventsWorkflowInFullIgnoresTheWatermark(t *testing.T) {
	f := &fakeStripeList{t: t, pages: map[string]activities.EventPage{"": page(false, "evt_new1")},
		watermark: activities.ReconcileWatermark{To: reconcileStart.Add(-15 * time.Minute), CoveredFrom: reconcileStart.Add(-100 * time.Hour)}}
	_, res, err := f.run(workflows.ReconcileInput{Lookback: 72 * time.Hour, Full: true}, reconcileStart)
	if err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	if full := reconcileStart.Add(-72 * time.Hour); !res.From.Equal(full) || !res.Since.IsZero() || !res.CoveredFrom.Equal(full) {
		t.Errorf("result %+v, want the whole look-back from %s, as asked", res, full)
	}
}
