package worker_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"google.golang.org/grpc"

	"dunning/internal/stripefixture"
	"dunning/internal/testenv"
	"dunning/worker"
	"dunning/workflows"
)

// startCounter counts the StartWorkflowExecution requests a client sends.
type startCounter struct{ n atomic.Int64 }

func (s *startCounter) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if strings.HasSuffix(method, "/StartWorkflowExecution") {
		s.n.Add(1)
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// TestReconciliationWatermark runs reconciliations one after another
// against a real dev server and a fake Stripe: a failed run leaves no
// watermark, a complete one does, and the next lists only from it less the
// overlap, finding the events Stripe wrote late inside the overlap and the
// ones that are new, and starting only what dunning does not have.
func TestReconciliationWatermark(t *testing.T) {
	tmp := testenv.StartTemporal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const queue = "reconcile-watermark"
	const overlap = 10 * time.Minute

	var starts startCounter
	wc, err := client.Dial(client.Options{
		HostPort: tmp.Address, Namespace: tmp.Namespace, Logger: tlog.NewStructuredLogger(quiet()),
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(starts.intercept)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()

	now := time.Now()
	known, _ := stripefixture.Event(workflows.EventPaymentSucceeded, stripefixture.Options{Created: now.Add(-2 * time.Hour)})
	missed, _ := stripefixture.Event(workflows.EventInvoicePaid, stripefixture.Options{Created: now.Add(-time.Hour)})
	older, _ := stripefixture.Event(workflows.EventInvoicePaid, stripefixture.Options{Created: now.Add(-3 * time.Hour)})
	stripe, seen := fakeStripe(t, [][]byte{known, missed, older}, 1)
	startLikeTheWebhook(t, ctx, tmp.Client, known, queue)
	waitVisible(t, ctx, tmp.Client, eventID(t, known))

	cfg := tmp.Config(t, map[string]string{
		"TEMPORAL_TASK_QUEUE": queue, "STRIPE_API_BASE_URL": stripe.URL, "STRIPE_API_KEY": fakeStripeKey,
	})
	wctx, stopWorker := context.WithCancel(ctx)
	workerDone := make(chan error, 1)
	go func() { workerDone <- worker.Run(wctx, wc, cfg, quiet()) }()
	defer func() {
		stopWorker()
		if err := <-workerDone; err != nil {
			t.Errorf("worker: %v", err)
		}
	}()
	lastWatermark := worker.LastWatermark(tmp.Client)
	reconcile := func(id string) (workflows.ReconcileResult, int64, error) {
		before := starts.n.Load()
		run, err := tmp.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue},
			workflows.ReconcileEventsWorkflowName, workflows.ReconcileInput{Lookback: 72 * time.Hour, Overlap: overlap})
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.ReconcileResult
		err = run.Get(ctx, &res)
		return res, starts.n.Load() - before, err
	}

	// A run that fails on its second page (after starting the event of
	// the first) leaves nothing to go on from.
	seen.rejectNextPages(true)
	if _, _, err := reconcile("reconcile-wm-failed"); err == nil {
		t.Fatal("a run whose second page Stripe rejects completed")
	}
	if wm, err := lastWatermark(ctx); err != nil || !wm.To.IsZero() {
		t.Fatalf("watermark after a failed run: %+v, %v; want none", wm, err)
	}
	seen.rejectNextPages(false)

	waitVisible(t, ctx, tmp.Client, eventID(t, missed))

	// Without a watermark, the whole look-back; the events dunning has are
	// recognised without a start each, the missed one is started.
	first, startsFirst, err := reconcile("reconcile-wm-first")
	if err != nil {
		t.Fatalf("first complete run: %v", err)
	}
	if !first.Since.IsZero() || first.To.Sub(first.From) != 72*time.Hour || first.Found != 3 || first.Started != 1 || first.AlreadyKnown != 2 {
		t.Errorf("first run %+v, want the whole 72h, found 3, started 1, already known 2", first)
	}
	if startsFirst != 1 {
		t.Errorf("first run sent %d starts, want 1: only the missed event", startsFirst)
	}
	waitCompleted(t, ctx, tmp.Client, eventID(t, older))
	wm, err := lastWatermark(ctx)
	if err != nil || !wm.To.Equal(first.To) || !wm.CoveredFrom.Equal(first.From) {
		t.Fatalf("watermark after the first run: %+v, %v; want to %s, covered from %s", wm, err, first.To, first.From)
	}

	// Stripe writes late: an event created exactly at the watermark less
	// the overlap, one a second before the watermark, and one before the
	// overlap (out of reach by design); a new one, and one the webhook took.
	at := func(d time.Duration) stripefixture.Options {
		return stripefixture.Options{Created: first.To.Add(d)}
	}
	boundary, _ := stripefixture.Event(workflows.EventInvoicePaid, at(-overlap))
	late, _ := stripefixture.Event(workflows.EventPaymentSucceeded, at(-time.Second))
	tooLate, _ := stripefixture.Event(workflows.EventInvoicePaid, at(-overlap-time.Second))
	fresh, _ := stripefixture.Event(workflows.EventInvoicePaid, stripefixture.Options{Created: time.Now().Add(-2 * time.Second)})
	taken, _ := stripefixture.Event(workflows.EventPaymentSucceeded, at(-5*time.Minute))
	for _, b := range [][]byte{boundary, late, tooLate, fresh, taken} {
		seen.add(b)
	}
	startLikeTheWebhook(t, ctx, tmp.Client, taken, queue)
	waitVisible(t, ctx, tmp.Client, eventID(t, taken))

	listed := len(seen.all())
	second, startsSecond, err := reconcile("reconcile-wm-second")
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	wantFrom := first.To.Add(-overlap)
	if !second.Since.Equal(first.To) || !second.From.Equal(wantFrom) || !second.CoveredFrom.Equal(first.From) {
		t.Errorf("second run %+v, want it since %s, listing from %s, covered from %s", second, first.To, wantFrom, first.From)
	}
	if second.Found != 4 || second.Started != 3 || second.AlreadyKnown != 1 {
		t.Errorf("second run %+v, want found 4 (boundary, late, fresh, taken), started 3, already known 1", second)
	}
	if startsSecond != 3 {
		t.Errorf("second run sent %d starts, want 3: only the missed events", startsSecond)
	}
	for _, q := range seen.all()[listed:] {
		if q.Get("created[gte]") != strconv.FormatInt(wantFrom.Unix(), 10) {
			t.Errorf("second run listed created[gte]=%s, want %d (the watermark less the overlap)", q.Get("created[gte]"), wantFrom.Unix())
		}
	}
	for _, b := range [][]byte{boundary, late, fresh} {
		waitCompleted(t, ctx, tmp.Client, eventID(t, b))
	}
	if _, err := tmp.Client.DescribeWorkflow(ctx, eventID(t, tooLate), ""); err == nil {
		t.Errorf("an event written before the overlap was started; the window reaches back only the overlap")
	}
	if dir := os.Getenv("DUNNING_RECORD_HISTORIES"); dir != "" {
		recordHistory(t, tmp, dir, "reconcile-hist_watermark_since", "reconcile-wm-second")
	}
	wm, err = lastWatermark(ctx)
	if err != nil || !wm.To.Equal(second.To) || !wm.CoveredFrom.Equal(first.From) {
		t.Errorf("watermark after the second run: %+v, %v; want to %s, covered from %s", wm, err, second.To, first.From)
	}

	// A run that fails after a complete one leaves the watermark where the
	// complete one put it.
	seen.rejectNextPages(true)
	if _, _, err := reconcile("reconcile-wm-failed-again"); err == nil {
		t.Fatal("a run whose second page Stripe rejects completed")
	}
	if wm, err := lastWatermark(ctx); err != nil || !wm.To.Equal(second.To) {
		t.Errorf("watermark after a failed run: %+v, %v; want the second run's %s still", wm, err, second.To)
	}
}

// waitVisible waits until visibility lists the workflow, as the known-event
// query would find it.
func waitVisible(t *testing.T, ctx context.Context, c client.Client, workflowID string) {
	t.Helper()
	for {
		resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: "WorkflowId = '" + workflowID + "'"})
		if err == nil && resp.GetCount() > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never visible: %v", workflowID, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitCompleted waits for a started event's workflow to complete.
func waitCompleted(t *testing.T, ctx context.Context, c client.Client, workflowID string) {
	t.Helper()
	if err := c.GetWorkflow(ctx, workflowID, "").Get(ctx, nil); err != nil {
		t.Errorf("the missed event's workflow %s: %v", workflowID, err)
	}
}
