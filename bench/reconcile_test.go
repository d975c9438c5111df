package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"google.golang.org/grpc"

	"dunning/internal/stripefixture"
	"dunning/worker"
	"dunning/workflows"
)

const benchStripeKey = "sk_test_bench_reconcile"

// listedEvent is one event of the benchmark's Stripe.
type listedEvent struct {
	id      string
	created int64
	raw     json.RawMessage
}

// eventList is a Stripe event list: GET /v1/events, newest first, with
// created[gte], created[lt], starting_after and limit as Stripe reads
// them. Events can be added while it runs (Stripe writing late).
type eventList struct {
	mu     sync.Mutex
	events []listedEvent // newest first
}

func (l *eventList) add(b *testing.B, bodies ...[]byte) {
	b.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, body := range bodies {
		var e struct {
			ID      string `json:"id"`
			Created int64  `json:"created"`
		}
		if err := json.Unmarshal(body, &e); err != nil {
			b.Fatal(err)
		}
		l.events = append(l.events, listedEvent{id: e.ID, created: e.Created, raw: body})
	}
	slices.SortStableFunc(l.events, func(a, b listedEvent) int { return int(b.created - a.created) })
}

func (l *eventList) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/events" || r.Header.Get("Authorization") != "Bearer "+benchStripeKey {
		http.Error(w, `{"error":{"type":"invalid_request_error"}}`, http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	gte, _ := strconv.ParseInt(q.Get("created[gte]"), 10, 64)
	lt, _ := strconv.ParseInt(q.Get("created[lt]"), 10, 64)
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 || limit > 100 {
		limit = 10
	}
	l.mu.Lock()
	events := l.events
	l.mu.Unlock()
	var match []listedEvent
	for _, e := range events {
		if e.created >= gte && (lt == 0 || e.created < lt) {
			match = append(match, e)
		}
	}
	if after := q.Get("starting_after"); after != "" {
		i := slices.IndexFunc(match, func(e listedEvent) bool { return e.id == after })
		if i < 0 {
			http.Error(w, `{"error":{"type":"invalid_request_error","code":"resource_missing"}}`, http.StatusBadRequest)
			return
		}
		match = match[i+1:]
	}
	hasMore := len(match) > limit
	data := []json.RawMessage{}
	for _, e := range match[:min(limit, len(match))] {
		data = append(data, e.raw)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "url": "/v1/events", "has_more": hasMore, "data": data})
}

// callCounter counts every request a client sends to the Temporal
// frontend: the starter's, and those of the worker on the client (polls,
// completions, heartbeats, visibility queries, starts).
type callCounter struct{ n atomic.Int64 }

func (c *callCounter) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	c.n.Add(1)
	return invoker(ctx, method, req, reply, cc, opts...)
}

// BenchmarkReconcile counts the Temporal calls of one reconciliation over
// a look-back holding BENCH_RECONCILE_EVENTS (10,000) events dunning
// already has, and one it missed:
//
//   - today: the whole look-back and one (rejected) start per event, as
//     before the watermark (the worker's known-event and watermark readers
//     left out);
//   - no-watermark: the first run, the whole look-back, known events
//     recognised with one visibility query per page;
//   - watermark: the next run, from the first one's watermark less the
//     overlap, finding an event Stripe wrote late inside the overlap.
//
// Each run must start the event it missed, and only that.
func BenchmarkReconcile(b *testing.B) {
	n := envInt("BENCH_RECONCILE_EVENTS", 10000)
	tmp := temporal(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The look-back's events, one every 71h/n, all known but one.
	list := &eventList{}
	stripe := httptest.NewServer(list)
	defer stripe.Close()
	now := time.Now()
	step := 71 * time.Hour / time.Duration(n)
	bodies := make([][]byte, n)
	for i := range bodies {
		typ := workflows.EventInvoicePaid
		if i%2 == 1 {
			typ = workflows.EventPaymentSucceeded
		}
		bodies[i], _ = stripefixture.Event(typ, stripefixture.Options{
			ID: fmt.Sprintf("evt_bench_known_%d", i), Created: now.Add(-time.Duration(i+1) * step),
		})
	}
	missedID := "evt_bench_missed"
	missed, _ := stripefixture.Event(workflows.EventInvoicePaid, stripefixture.Options{ID: missedID, Created: now.Add(-24 * time.Hour)})
	list.add(b, append(bodies, missed)...)
	_, _, err := run(n, 32, func(i int) error {
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		defer scancel()
		// On a task queue no worker polls: known, never run.
		_, err := tmp.Client.ExecuteWorkflow(sctx, client.StartWorkflowOptions{
			ID: fmt.Sprintf("evt_bench_known_%d", i), TaskQueue: "bench-known",
		}, workflows.StripeEventWorkflowName, workflows.StripeEventInput{})
		return err
	})
	if err != nil {
		b.Fatalf("start the known events' workflows: %v", err)
	}
	waitCount(b, tmp.Client, "TaskQueue = 'bench-known'", int64(n))

	var calls callCounter
	cc, err := client.Dial(client.Options{
		HostPort: tmp.Address, Namespace: tmp.Namespace, Logger: tlog.NewStructuredLogger(quiet()),
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(calls.intercept)}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	env := map[string]string{
		"TEMPORAL_TASK_QUEUE": "reconcile-bench", "RECONCILE_INTERVAL": "0",
		"STRIPE_API_KEY": benchStripeKey, "STRIPE_API_BASE_URL": stripe.URL, "LOG_LEVEL": "warn",
	}
	cfg := configFor(b, tmp, env)
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, cc, cfg, quiet()) }()
	defer func() { cancel(); <-done }()

	// Today's cost: the same workflow on a worker without the known-event
	// and watermark readers, which is what reconciliation did before them.
	env["TEMPORAL_TASK_QUEUE"] = "reconcile-bench-today"
	todayCfg := configFor(b, tmp, env)
	acts, err := worker.NewActivities(cc, todayCfg, quiet())
	if err != nil {
		b.Fatal(err)
	}
	acts.Reconcile.Known, acts.Reconcile.Watermark = nil, nil
	today := sdkworker.New(cc, todayCfg.TemporalTaskQueue, sdkworker.Options{
		Interceptors: []interceptor.WorkerInterceptor{worker.Heartbeats()},
	})
	worker.RegisterWorkflows(today)
	today.RegisterActivity(acts)
	if err := today.Start(); err != nil {
		b.Fatal(err)
	}
	defer today.Stop()

	reconcile := func(id, queue string) (workflows.ReconcileResult, int64, time.Duration) {
		b.Helper()
		before, began := calls.n.Load(), time.Now()
		run, err := cc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue},
			workflows.ReconcileEventsWorkflowName, workflows.ReconcileInput{Lookback: 72 * time.Hour, Overlap: 10 * time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		var res workflows.ReconcileResult
		if err := run.Get(ctx, &res); err != nil {
			b.Fatalf("%s: %v", id, err)
		}
		return res, calls.n.Load() - before, time.Since(began)
	}

	b.ResetTimer()
	first, firstCalls, firstTook := reconcile("bench-reconcile-first", cfg.TemporalTaskQueue)
	if !first.Since.IsZero() || first.Started != 1 || first.AlreadyKnown != n {
		b.Fatalf("first run %+v, want the whole look-back, the missed event started and %d known", first, n)
	}

	// Stripe writes an event late, a minute before the watermark.
	lateID := "evt_bench_late"
	late, _ := stripefixture.Event(workflows.EventPaymentSucceeded, stripefixture.Options{ID: lateID, Created: first.To.Add(-time.Minute)})
	list.add(b, late)
	next, nextCalls, nextTook := reconcile("bench-reconcile-next", cfg.TemporalTaskQueue)
	if !next.Since.Equal(first.To) || next.Started != 1 {
		b.Fatalf("next run %+v, want it from the watermark %s with the late event started", next, first.To)
	}

	old, oldCalls, oldTook := reconcile("bench-reconcile-today", todayCfg.TemporalTaskQueue)
	if !old.Since.IsZero() || old.Started != 0 || old.AlreadyKnown != n+2 {
		b.Fatalf("today's run %+v, want the whole look-back with all %d events known", old, n+2)
	}
	b.StopTimer()
	for _, id := range []string{missedID, lateID} {
		if err := cc.GetWorkflow(ctx, id, "").Get(ctx, nil); err != nil {
			b.Fatalf("the missed event %s: %v", id, err)
		}
	}

	b.ReportMetric(float64(n), "known-events")
	b.ReportMetric(float64(oldCalls), "calls/run-today")
	b.ReportMetric(float64(firstCalls), "calls/run-no-watermark")
	b.ReportMetric(float64(nextCalls), "calls/run-watermark")
	b.ReportMetric(float64(oldCalls)/float64(firstCalls), "times-fewer-no-watermark")
	b.ReportMetric(float64(oldCalls)/float64(nextCalls), "times-fewer-watermark")
	b.ReportMetric(oldTook.Seconds(), "s/run-today")
	b.ReportMetric(firstTook.Seconds(), "s/run-no-watermark")
	b.ReportMetric(nextTook.Seconds(), "s/run-watermark")
}

// waitCount waits until visibility counts want workflows for query.
func waitCount(b *testing.B, c client.Client, query string, want int64) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
		cancel()
		if err == nil && resp.GetCount() >= want {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Fatalf("visibility never counted %d workflows for %s", want, query)
}
