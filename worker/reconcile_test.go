package worker_test

// These tests run reconciliation against a real Temporal dev server: the
// event starter, the schedule, and a whole run against a fake Stripe.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"dunning/activities"
	"dunning/internal/stripeevent"
	"dunning/internal/stripefixture"
	"dunning/internal/testenv"
	"dunning/webhook"
	"dunning/worker"
	"dunning/workflows"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startLikeTheWebhook starts an event's workflow the way the webhook does,
// and returns the run ID.
func startLikeTheWebhook(t *testing.T, ctx context.Context, c client.Client, body []byte, taskQueue string) string {
	t.Helper()
	ev, err := stripeevent.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.ExecuteWorkflow(ctx, webhook.StartOptions(ev, taskQueue), workflows.StripeEventWorkflowName, workflows.StripeEventInput{Event: ev})
	if err != nil {
		t.Fatalf("start %s as the webhook would: %v", ev.ID, err)
	}
	return run.GetRunID()
}

func eventID(t *testing.T, body []byte) string {
	t.Helper()
	var ev struct{ ID string }
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" {
		t.Fatalf("fixture without an ID: %s", body)
	}
	return ev.ID
}

func TestReconciliationOnTemporal(t *testing.T) {
	tmp := testenv.StartTemporal(t)
	c := tmp.Client
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("event starter: a known event is a duplicate, a new one is started", func(t *testing.T) {
		const queue = "reconcile-starter"
		start := worker.EventStarter(c, queue, nil)

		known, _ := stripefixture.Event(workflows.EventPaymentSucceeded, stripefixture.Options{})
		knownRun := startLikeTheWebhook(t, ctx, c, known, queue)
		if outcome, err := start(ctx, known); err != nil || outcome != activities.EventDuplicate {
			t.Errorf("event the webhook took: %q, %v; want %q", outcome, err, activities.EventDuplicate)
		}
		desc, err := c.DescribeWorkflow(ctx, eventID(t, known), "")
		if err != nil {
			t.Fatal(err)
		}
		if desc.WorkflowExecution.RunID != knownRun {
			t.Errorf("known event's workflow is run %s, want the webhook's %s", desc.WorkflowExecution.RunID, knownRun)
		}

		fresh, _ := stripefixture.Event(workflows.EventInvoicePaid, stripefixture.Options{})
		if outcome, err := start(ctx, fresh); err != nil || outcome != activities.EventStarted {
			t.Fatalf("new event: %q, %v; want %q", outcome, err, activities.EventStarted)
		}
		id := eventID(t, fresh)
		desc, err = c.DescribeWorkflow(ctx, id, "")
		if err != nil {
			t.Fatalf("the new event's workflow %s: %v", id, err)
		}
		if desc.WorkflowType.Name != workflows.StripeEventWorkflowName || desc.TaskQueueName != queue {
			t.Errorf("workflow %s is a %s on %s, want a %s on %s", id, desc.WorkflowType.Name, desc.TaskQueueName, workflows.StripeEventWorkflowName, queue)
		}
		if got, _ := desc.TypedSearchAttributes.GetKeyword(workflows.StripeEventTypeKey); got != workflows.EventInvoicePaid {
			t.Errorf("StripeEventType = %q, want %q, as the webhook sets it", got, workflows.EventInvoicePaid)
		}
		if outcome, err := start(ctx, fresh); err != nil || outcome != activities.EventDuplicate {
			t.Errorf("the same event again: %q, %v; want %q", outcome, err, activities.EventDuplicate)
		}

		other, _ := stripefixture.Event("charge.refunded", stripefixture.Options{})
		if outcome, err := start(ctx, other); err != nil || outcome != activities.EventIgnored {
			t.Errorf("unhandled type: %q, %v; want %q", outcome, err, activities.EventIgnored)
		}
		var notFound *serviceerror.NotFound
		if _, err := c.DescribeWorkflow(ctx, eventID(t, other), ""); !errors.As(err, &notFound) {
			t.Errorf("an unhandled event's workflow: %v, want none", err)
		}

		if outcome, err := start(ctx, json.RawMessage(`{"id":"not an event"}`)); err == nil || outcome != activities.EventInvalid {
			t.Errorf("unreadable event: %q, %v; want %q with the reason", outcome, err, activities.EventInvalid)
		}

		// Signed by Stripe's listing, named, but not readable: started for
		// its workflow to alert ops, and still counted invalid.
		broken, _ := stripefixture.Event(workflows.EventInvoicePaid, stripefixture.Options{})
		broken = []byte(strings.Replace(string(broken), `"amount_paid":`, `"amount_paid":"x","was":`, 1))
		for i := range 2 {
			if outcome, err := start(ctx, broken); err == nil || outcome != activities.EventInvalid {
				t.Errorf("unreadable event with an ID, call %d: %q, %v; want %q with the reason", i+1, outcome, err, activities.EventInvalid)
			}
		}
		if in := startedInput(t, ctx, c, eventID(t, broken)); in.Event.Unreadable == "" || in.Event.Type != workflows.EventInvoicePaid {
			t.Errorf("unreadable event's workflow input %+v, want the envelope with Unreadable set", in.Event)
		}

		// The mode of the key is marked on every event started.
		live := true
		marked, _ := stripefixture.Event(workflows.EventInvoicePaid, stripefixture.Options{})
		if outcome, err := worker.EventStarter(c, queue, &live)(ctx, marked); err != nil || outcome != activities.EventStarted {
			t.Fatalf("event with a live key: %q, %v; want %q", outcome, err, activities.EventStarted)
		}
		if in := startedInput(t, ctx, c, eventID(t, marked)); in.Event.ExpectedLivemode == nil || !*in.Event.ExpectedLivemode || in.Event.Livemode {
			t.Errorf("test-mode event started with a live key: livemode %v, expected %v; want it marked", in.Event.Livemode, in.Event.ExpectedLivemode)
		}

		gone, stop := context.WithCancel(ctx)
		stop()
		another, _ := stripefixture.Event(workflows.EventInvoicePaid, stripefixture.Options{})
		if outcome, err := start(gone, another); err == nil || outcome == activities.EventInvalid {
			t.Errorf("Temporal not answering: %q, %v; want an error to retry", outcome, err)
		}
	})

	t.Run("schedule: created once by concurrent workers, updated, removed", func(t *testing.T) {
		cfg := tmp.Config(t, map[string]string{
			"TEMPORAL_TASK_QUEUE": "reconcile-schedule", "RECONCILE_INTERVAL": "20m", "RECONCILE_LOOKBACK": "48h",
		})
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = worker.EnsureReconcileSchedule(ctx, c, cfg, quiet())
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("worker %d: %v", i, err)
			}
		}
		wantSchedule(t, ctx, c, 20*time.Minute, 48*time.Hour, 10*time.Minute, "reconcile-schedule", false)
		if n := countSchedules(t, ctx, c); n != 1 {
			t.Errorf("%d schedules after 3 workers started, want 1", n)
		}

		if err := worker.EnsureReconcileSchedule(ctx, c, cfg, quiet()); err != nil {
			t.Fatalf("again with the same config: %v", err)
		}
		wantSchedule(t, ctx, c, 20*time.Minute, 48*time.Hour, 10*time.Minute, "reconcile-schedule", false)

		// An operator pauses it; a worker with a new config changes the
		// timings and leaves it paused.
		handle := c.ScheduleClient().GetHandle(ctx, workflows.ReconcileScheduleID)
		if err := handle.Pause(ctx, client.SchedulePauseOptions{Note: "paused by ops"}); err != nil {
			t.Fatal(err)
		}
		cfg2 := tmp.Config(t, map[string]string{
			"TEMPORAL_TASK_QUEUE": "reconcile-schedule", "RECONCILE_INTERVAL": "5m", "RECONCILE_LOOKBACK": "24h",
			"RECONCILE_OVERLAP": "20m",
		})
		if err := worker.EnsureReconcileSchedule(ctx, c, cfg2, quiet()); err != nil {
			t.Fatalf("with a new interval: %v", err)
		}
		wantSchedule(t, ctx, c, 5*time.Minute, 24*time.Hour, 20*time.Minute, "reconcile-schedule", true)

		off := tmp.Config(t, map[string]string{"TEMPORAL_TASK_QUEUE": "reconcile-schedule", "RECONCILE_INTERVAL": "0"})
		for i := range 2 {
			if err := worker.EnsureReconcileSchedule(ctx, c, off, quiet()); err != nil {
				t.Fatalf("RECONCILE_INTERVAL=0, call %d: %v", i+1, err)
			}
		}
		var notFound *serviceerror.NotFound
		if _, err := handle.Describe(ctx); !errors.As(err, &notFound) {
			t.Fatalf("schedule after RECONCILE_INTERVAL=0: %v, want it gone", err)
		}
	})

	t.Run("a run finds 3 events over 2 pages, 1 already known", func(t *testing.T) {
		const queue = "reconcile-run"
		now := time.Now()
		bodies := make([][]byte, 3)
		for i, typ := range []string{workflows.EventPaymentSucceeded, workflows.EventInvoicePaid, workflows.EventPaymentSucceeded} {
			bodies[i], _ = stripefixture.Event(typ, stripefixture.Options{Created: now.Add(-time.Duration(i+1) * time.Hour)})
		}
		old, _ := stripefixture.Event(workflows.EventInvoicePaid, stripefixture.Options{Created: now.Add(-100 * time.Hour)})
		stripe, seen := fakeStripe(t, append(slices.Clone(bodies), old), 2)

		knownRun := startLikeTheWebhook(t, ctx, c, bodies[1], queue)

		cfg := tmp.Config(t, map[string]string{
			"TEMPORAL_TASK_QUEUE": queue, "STRIPE_API_BASE_URL": stripe.URL, "STRIPE_API_KEY": fakeStripeKey,
		})
		reg := prometheus.NewRegistry()
		wctx, stopWorker := context.WithCancel(ctx)
		workerDone := make(chan error, 1)
		go func() { workerDone <- worker.Run(wctx, c, cfg, quiet(), worker.WithMetrics(worker.NewMetrics(reg))) }()
		defer func() {
			stopWorker()
			if err := <-workerDone; err != nil {
				t.Errorf("worker: %v", err)
			}
		}()

		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "reconcile-test-run", TaskQueue: queue},
			workflows.ReconcileEventsWorkflowName, workflows.ReconcileInput{Lookback: 72 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.ReconcileResult
		if err := run.Get(ctx, &res); err != nil {
			t.Fatalf("reconciliation failed: %v", err)
		}
		if res.Found != 3 || res.Started != 2 || res.AlreadyKnown != 1 || res.Pages != 2 || res.DryRun {
			t.Errorf("result %+v, want found 3, started 2, already known 1 over 2 pages", res)
		}
		if lookback := res.To.Sub(res.From); lookback != 72*time.Hour {
			t.Errorf("window %s to %s is %s long, want 72h", res.From, res.To, lookback)
		}

		for _, i := range []int{0, 2} {
			id := eventID(t, bodies[i])
			var evRes workflows.StripeEventResult
			if err := c.GetWorkflow(ctx, id, "").Get(ctx, &evRes); err != nil {
				t.Errorf("the missed event %s: %v, want its workflow run", id, err)
			} else if evRes.EventID != id {
				t.Errorf("workflow %s handled %+v", id, evRes)
			}
		}
		desc, err := c.DescribeWorkflow(ctx, eventID(t, bodies[1]), "")
		if err != nil {
			t.Fatal(err)
		}
		if desc.WorkflowExecution.RunID != knownRun {
			t.Errorf("the known event was started again: run %s, want %s", desc.WorkflowExecution.RunID, knownRun)
		}
		var notFound *serviceerror.NotFound
		if _, err := c.DescribeWorkflow(ctx, eventID(t, old), ""); !errors.As(err, &notFound) {
			t.Errorf("an event older than the look-back: %v, want it left alone", err)
		}

		reqs := seen.all()
		if len(reqs) != 2 || reqs[0].Get("starting_after") != "" || reqs[1].Get("starting_after") != eventID(t, bodies[1]) {
			t.Errorf("stripe saw %v, want 2 pages, the second after %s", reqs, eventID(t, bodies[1]))
		}

		details := metadata(t, ctx, c, "reconcile-test-run").GetCurrentDetails()
		if !strings.Contains(details, "found 3, started 2, already known 1") {
			t.Errorf("current details %q, want the counts", details)
		}

		for result, want := range map[string]float64{
			worker.ReconcileFound: 3, worker.ReconcileStarted: 2, worker.ReconcileAlreadyKnown: 1,
		} {
			if got := counter(t, reg, "dunning_reconcile_events_total", result); got != want {
				t.Errorf("dunning_reconcile_events_total{result=%q} = %v, want %v", result, got, want)
			}
		}
		if got := counter(t, reg, "dunning_reconcile_runs_total", ""); got != 1 {
			t.Errorf("dunning_reconcile_runs_total = %v, want 1", got)
		}

		// The listed events carry customers' emails, names, addresses and
		// phone numbers; no history holds any of them.
		for _, id := range []string{"reconcile-test-run", eventID(t, bodies[0]), eventID(t, bodies[2])} {
			noPersonalData(t, ctx, c, id)
		}
		if dir := os.Getenv("DUNNING_RECORD_HISTORIES"); dir != "" {
			recordHistory(t, tmp, dir, "reconcile-hist_watermark_full", "reconcile-test-run")
		}
	})
}

// noPersonalData fails if the history of workflowID holds any of the
// personal strings of the fixtures. Payloads are JSON and a history's
// protobuf encoding holds their bytes as they are, so a search of it finds
// them in inputs, results, memos, search attributes and failures alike.
func noPersonalData(t *testing.T, ctx context.Context, c client.Client, workflowID string) {
	t.Helper()
	it := c.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", workflowID, err)
		}
		n++
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
	if n == 0 {
		t.Errorf("history of %s is empty", workflowID)
	}
}

// wantSchedule fails unless the reconciliation schedule runs
// ReconcileEventsWorkflow every interval over lookback on taskQueue,
// skipping a run while one is going, paused or not.
func wantSchedule(t *testing.T, ctx context.Context, c client.Client, interval, lookback, overlap time.Duration, taskQueue string, paused bool) {
	t.Helper()
	desc, err := c.ScheduleClient().GetHandle(ctx, workflows.ReconcileScheduleID).Describe(ctx)
	if err != nil {
		t.Fatalf("describe schedule %s: %v", workflows.ReconcileScheduleID, err)
	}
	s := desc.Schedule
	if len(s.Spec.Intervals) != 1 || s.Spec.Intervals[0].Every != interval {
		t.Errorf("intervals %+v, want every %s", s.Spec.Intervals, interval)
	}
	if s.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP {
		t.Errorf("overlap %s, want skip", s.Policy.Overlap)
	}
	if s.State.Paused != paused {
		t.Errorf("paused = %v, want %v", s.State.Paused, paused)
	}
	act, ok := s.Action.(*client.ScheduleWorkflowAction)
	if !ok {
		t.Fatalf("action %T, want a workflow start", s.Action)
	}
	if act.Workflow != workflows.ReconcileEventsWorkflowName || act.TaskQueue != taskQueue || len(act.Args) != 1 {
		t.Fatalf("action starts %v on %s with %d args, want %s on %s with its input", act.Workflow, act.TaskQueue, len(act.Args),
			workflows.ReconcileEventsWorkflowName, taskQueue)
	}
	var in workflows.ReconcileInput
	if err := converter.GetDefaultDataConverter().FromPayload(act.Args[0].(*commonpb.Payload), &in); err != nil {
		t.Fatal(err)
	}
	if in.Lookback != lookback || in.Overlap != overlap {
		t.Errorf("look-back %s, overlap %s; want %s, %s", in.Lookback, in.Overlap, lookback, overlap)
	}
	if in.Retention < lookback {
		t.Errorf("retention %s, want the namespace retention, at least the look-back %s, so that catching up stays inside it", in.Retention, lookback)
	}
}

// countSchedules counts the schedules in the namespace, once the list
// (eventually consistent) shows any.
// startedInput is the input a workflow was started with.
func startedInput(t *testing.T, ctx context.Context, c client.Client, workflowID string) workflows.StripeEventInput {
	t.Helper()
	iter := c.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	first, err := iter.Next()
	if err != nil {
		t.Fatalf("history of %s: %v", workflowID, err)
	}
	var in workflows.StripeEventInput
	attrs := first.GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil || len(attrs.GetInput().GetPayloads()) != 1 {
		t.Fatalf("first event of %s is not a start with one input: %v", workflowID, first)
	}
	if err := converter.GetDefaultDataConverter().FromPayload(attrs.GetInput().GetPayloads()[0], &in); err != nil {
		t.Fatalf("input of %s: %v", workflowID, err)
	}
	return in
}

func countSchedules(t *testing.T, ctx context.Context, c client.Client) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for it.HasNext() {
			if _, err := it.Next(); err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n > 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func metadata(t *testing.T, ctx context.Context, c client.Client, workflowID string) *sdkpb.WorkflowMetadata {
	t.Helper()
	v, err := c.QueryWorkflow(ctx, workflowID, "", "__temporal_workflow_metadata")
	if err != nil {
		t.Fatalf("metadata of %s: %v", workflowID, err)
	}
	var md sdkpb.WorkflowMetadata
	if err := v.Get(&md); err != nil {
		t.Fatal(err)
	}
	return &md
}

// counter reads one counter from reg; result "" for one without labels.
func counter(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if result == "" || label(m, "result") == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{result=%q} in the registry", name, result)
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

const fakeStripeKey = "sk_test_reconcile"

// stripeRequests are the queries a fake Stripe saw, and the events it
// lists: more can be added while it runs (events Stripe writes late), and
// it can be told to reject every page after the first.
type stripeRequests struct {
	mu     sync.Mutex
	qs     []queryOf
	bodies [][]byte
	reject bool
}

type queryOf map[string][]string

func (q queryOf) Get(k string) string {
	if v := q[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (s *stripeRequests) all() []queryOf {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.qs)
}

// add has Stripe list body from now on.
func (s *stripeRequests) add(body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodies = append(s.bodies, body)
}

// rejectNextPages has Stripe answer 400 to any page after the first.
func (s *stripeRequests) rejectNextPages(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = on
}

// fakeStripe lists bodies (newest first by their created time) at GET
// /v1/events, perPage at a time whatever the limit, filtered as Stripe
// filters them.
func fakeStripe(t *testing.T, bodies [][]byte, perPage int) (*httptest.Server, *stripeRequests) {
	t.Helper()
	type event struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Created int64  `json:"created"`
		raw     json.RawMessage
	}
	seen := &stripeRequests{bodies: slices.Clone(bodies)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		seen.mu.Lock()
		seen.qs = append(seen.qs, queryOf(q))
		bodies, reject := slices.Clone(seen.bodies), seen.reject
		seen.mu.Unlock()
		if r.Method != http.MethodGet || r.URL.Path != "/v1/events" || r.Header.Get("Authorization") != "Bearer "+fakeStripeKey {
			t.Errorf("fake stripe: unexpected %s %s (authorization %q)", r.Method, r.URL.Path, r.Header.Get("Authorization"))
			http.Error(w, `{"error":{"type":"invalid_request_error"}}`, http.StatusBadRequest)
			return
		}
		if !slices.Equal(q["types[]"], workflows.HandledEventTypes()) {
			t.Errorf("fake stripe: types[] %q, want every handled type", q["types[]"])
		}
		var events []event
		for _, b := range bodies {
			var e event
			if err := json.Unmarshal(b, &e); err != nil {
				t.Error(err)
			}
			e.raw = b
			events = append(events, e)
		}
		slices.SortStableFunc(events, func(a, b event) int { return int(b.Created - a.Created) })
		var gte, lt int64
		fmt.Sscan(q.Get("created[gte]"), &gte)
		fmt.Sscan(q.Get("created[lt]"), &lt)
		var match []event
		for _, e := range events {
			if slices.Contains(q["types[]"], e.Type) && e.Created >= gte && (lt == 0 || e.Created < lt) {
				match = append(match, e)
			}
		}
		if after := q.Get("starting_after"); after != "" {
			if reject {
				http.Error(w, `{"error":{"type":"invalid_request_error","message":"rejected by the test"}}`, http.StatusBadRequest)
				return
			}
			i := slices.IndexFunc(match, func(e event) bool { return e.ID == after })
			if i < 0 {
				http.Error(w, `{"error":{"type":"invalid_request_error"}}`, http.StatusBadRequest)
				return
			}
			match = match[i+1:]
		}
		hasMore := len(match) > perPage
		match = match[:min(perPage, len(match))]
		data := []json.RawMessage{}
		for _, e := range match {
			data = append(data, e.raw)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"object": "list", "url": "/v1/events", "has_more": hasMore, "data": data})
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}
