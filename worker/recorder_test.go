package worker_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	sdkworker "go.temporal.io/sdk/worker"

	"dunning/activities"
	"dunning/e2e"
	"dunning/internal/stripefixture"
	"dunning/internal/testenv"
	"dunning/webhook"
	"dunning/worker"
)

// recordDir is the folder DUNNING_RECORD_HISTORIES names for the
// recorders to write histories into; without it the recorder is skipped.
func recordDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("DUNNING_RECORD_HISTORIES")
	if dir == "" {
		t.Skip("set DUNNING_RECORD_HISTORIES to a folder to record histories into")
	}
	return dir
}

// dryRecorder starts a Temporal dev server and a worker on task queue q
// with every workflow and the activities dry (no peer configured). The
// caller registers the activities it answers itself, then starts the
// worker.
func dryRecorder(t *testing.T, q string) (*testenv.Temporal, sdkworker.Worker) {
	t.Helper()
	tmp := testenv.StartTemporal(t)
	w := sdkworker.New(tmp.Client, q, sdkworker.Options{})
	worker.RegisterWorkflows(w)
	w.RegisterActivity(&activities.Activities{Temporal: tmp.Client, TaskQueue: q, Log: slog.Default()})
	return tmp, w
}

// standIn registers fn on w as the activity name, in place of the dry
// one dryRecorder registered.
func standIn(w sdkworker.Worker, name string, fn any) {
	w.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name, DisableAlreadyRegisteredCheck: true})
}

// owedAnswer is Stripe's owed check on an intent that a decline left
// requiring a payment method: owed and, to a retry asking what it would
// charge (not SkipCharge), pm (from source, on card fp). An empty pm
// names nothing.
func owedAnswer(in activities.OwedInput, pm, source, fp string) activities.Owed {
	o := activities.Owed{Verdict: activities.OwedYes, Status: "requires_payment_method", Why: "intent requires_payment_method"}
	if !in.SkipCharge && pm != "" {
		o.PaymentMethod, o.PaymentMethodSource, o.Fingerprint = pm, source, fp
	}
	return o
}

// inFlight is Stripe's owed check on an intent it has processing (a bank
// debit under way).
var inFlight = activities.Owed{Verdict: activities.OwedInFlight, Status: "processing", Why: "intent processing"}

// owedStandIn answers Stripe's owed check on w with owedAnswer, naming pm,
// the customer's default, on card fp (an empty pm: the customer has none),
// except while removed is set (nil: never), once the customer removed it.
func owedStandIn(w sdkworker.Worker, pm, fp string, removed *atomic.Bool) {
	standIn(w, "IntentOwed", func(ctx context.Context, in activities.OwedInput) (activities.Owed, error) {
		if removed != nil && removed.Load() {
			return owedAnswer(in, "", "", ""), nil
		}
		return owedAnswer(in, pm, "customer default", fp), nil
	})
}

// retryPaid is Stripe's confirm that pays.
func retryPaid(in activities.RetryInput) activities.RetryResult {
	return activities.RetryResult{Outcome: activities.RetrySucceeded, Status: "succeeded", PaymentMethod: in.PaymentMethodID}
}

// retryDeclined is Stripe's confirm declined for insufficient funds, on
// card fp.
func retryDeclined(in activities.RetryInput, fp string) activities.RetryResult {
	d := activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentMethod: in.PaymentMethodID, Fingerprint: fp}
	return activities.RetryResult{Outcome: activities.RetryDeclined, DeclineCode: d.DeclineCode, PaymentMethod: in.PaymentMethodID, Decline: d}
}

// confirmAnswer is how the confirm stand-in answers one confirm: it takes
// took, then declines on card declineOn, or pays if declineOn is empty.
type confirmAnswer struct {
	took      time.Duration
	declineOn string
}

// pays answers a confirm at once, paid.
var pays = confirmAnswer{}

// confirmCall is one confirm the stand-in was asked: what, and when it
// began and ended.
type confirmCall struct {
	in         activities.RetryInput
	start, end time.Time
}

// confirmStandIn is Stripe's confirm of a retry's charge (RetryPayment):
// the n-th confirm is answered by answers[n-1], the last answer also
// every confirm after it. Each confirm first calls onAsk, if set before
// the worker starts (an error fails the confirm), and is kept in calls.
type confirmStandIn struct {
	answers []confirmAnswer
	onAsk   func(activities.RetryInput) error
	mu      sync.Mutex
	calls   []confirmCall
}

// newConfirmStandIn registers on w a confirm stand-in answering answers.
func newConfirmStandIn(w sdkworker.Worker, answers ...confirmAnswer) *confirmStandIn {
	c := &confirmStandIn{answers: answers}
	standIn(w, "RetryPayment", c.confirm)
	return c
}

func (c *confirmStandIn) confirm(ctx context.Context, in activities.RetryInput) (activities.RetryResult, error) {
	c.mu.Lock()
	c.calls = append(c.calls, confirmCall{in: in, start: time.Now()})
	n := len(c.calls)
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.calls[n-1].end = time.Now(); c.mu.Unlock() }()
	if c.onAsk != nil {
		if err := c.onAsk(in); err != nil {
			return activities.RetryResult{}, err
		}
	}
	a := c.answers[min(n, len(c.answers))-1]
	time.Sleep(a.took)
	if a.declineOn != "" {
		return retryDeclined(in, a.declineOn), nil
	}
	return retryPaid(in), nil
}

// asked returns the confirms asked so far.
func (c *confirmStandIn) asked() []confirmCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]confirmCall(nil), c.calls...)
}

// count is how many confirms were asked so far.
func (c *confirmStandIn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

// deprovisionRecorder starts a Temporal dev server, dunning's worker (its
// stages one or two seconds apart) and webhook, against the e2e stand-ins
// of every peer, and returns them with a function that posts a signed
// Stripe event to the webhook. name tells the stand-ins' secrets apart.
func deprovisionRecorder(t *testing.T, name string) (*testenv.Temporal, *e2e.Peers, func(string, stripefixture.Options)) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tmp := testenv.StartTemporal(t)
	peers := e2e.NewPeers("control-secret-for-the-"+name+"-record-0123456789", "notice-secret-for-the-"+name+"-record-0123456789")
	t.Cleanup(peers.Close)
	env := peers.Env("http://127.0.0.1:1")
	env["DUNNING_RETRY_SCHEDULE"], env["DUNNING_GRACE_PERIOD"], env["DUNNING_DEPROVISION_AFTER"] = "1s", "2s", "2s"
	cfg := tmp.Config(t, env)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, tmp.Client, cfg, log) }()
	t.Cleanup(func() { cancel(); <-done })
	h, err := webhook.NewHandler(tmp.Client, webhook.Options{
		Secrets: []string{e2e.WebhookSecret}, Tolerance: 5 * time.Minute, MaxBody: 512 << 10, StartTimeout: 5 * time.Second,
		TaskQueue: cfg.TemporalTaskQueue, Logger: log, Observe: peers.Stripe.Observe,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	send := func(typ string, o stripefixture.Options) {
		t.Helper()
		body, err := stripefixture.Event(typ, o)
		if err != nil {
			t.Fatal(err)
		}
		req, err := stripefixture.Request(srv.URL+webhook.PathStripe, body, e2e.WebhookSecret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("webhook answered %d to %s", resp.StatusCode, typ)
		}
	}
	return tmp, peers, send
}
