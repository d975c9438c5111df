package worker_test

// A recovery through the real pieces: signed events into the webhook, a
// real Temporal dev server and worker, and the local stack's dev Stripe.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/config"
	"dunning/internal/devstripe"
	"dunning/internal/stripefixture"
	"dunning/internal/testenv"
	"dunning/webhook"
	"dunning/worker"
	"dunning/workflows"
)

const secret = "whsec_lifecycle_test"

type localStack struct {
	t       *testing.T
	tmp     *testenv.Temporal
	cfg     config.Config
	webhook string
	// dev is the stack's Stripe, for what Stripe knows before an event
	// about it is sent.
	dev *devstripe.Server
}

func startLocalStack(t *testing.T, env map[string]string) *localStack {
	t.Helper()
	return startLocalStackWith(t, env, nil)
}

// startLocalStackWith is startLocalStack with the worker's client
// recording its metrics into metrics, when set.
func startLocalStackWith(t *testing.T, env map[string]string, metrics client.MetricsHandler) *localStack {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tmp := testenv.StartTemporal(t)
	dev := devstripe.New(nil, log)
	stripeSrv := httptest.NewServer(dev)
	t.Cleanup(stripeSrv.Close)
	full := map[string]string{"STRIPE_API_KEY": "sk_test_123", "STRIPE_API_BASE_URL": stripeSrv.URL}
	for k, v := range env {
		full[k] = v
	}
	cfg := tmp.Config(t, full)

	wc := tmp.Client
	if metrics != nil {
		var err error
		if wc, err = client.NewClientFromExisting(tmp.Client, client.Options{Namespace: tmp.Namespace, MetricsHandler: metrics}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(wc.Close)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, wc, cfg, log) }()
	t.Cleanup(func() { cancel(); <-done })

	h, err := webhook.NewHandler(tmp.Client, webhook.Options{
		Secrets: []string{secret}, Tolerance: 5 * time.Minute, MaxBody: 512 << 10, StartTimeout: 5 * time.Second,
		TaskQueue: cfg.TemporalTaskQueue, Logger: log, Observe: dev.Observe,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &localStack{t: t, tmp: tmp, cfg: cfg, webhook: srv.URL + webhook.PathStripe, dev: dev}
}

func (s *localStack) send(typ string, o stripefixture.Options) {
	s.t.Helper()
	if err := s.post(typ, o); err != nil {
		s.t.Fatal(err)
	}
}

// post sends one event to the webhook, as s.send does, from any goroutine.
func (s *localStack) post(typ string, o stripefixture.Options) error {
	body, err := stripefixture.Event(typ, o)
	if err != nil {
		return err
	}
	req, err := stripefixture.Request(s.webhook, body, secret, time.Now())
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: webhook answered %d", typ, o.ID, resp.StatusCode)
	}
	return nil
}

func (s *localStack) result(id string, within time.Duration) workflows.RecoveryResult {
	s.t.Helper()
	return recoveryResult(s.t, s.tmp, id, within)
}

// recoveryResult waits for the recovery id to start (the event workflow
// starts it a moment after the webhook answers) and to end, and returns
// its result.
func recoveryResult(t *testing.T, tmp *testenv.Temporal, id string, within time.Duration) workflows.RecoveryResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		if _, err := tmp.Client.DescribeWorkflow(ctx, id, ""); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never started", id)
		case <-time.After(100 * time.Millisecond):
		}
	}
	var res workflows.RecoveryResult
	if err := tmp.Client.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	return res
}

// A failed payment, then a new card: the recovery retries at once and is
// recovered, long before the first scheduled retry.
func TestCardUpdateRecoversWithoutWaitingForTheSchedule(t *testing.T) {
	s := startLocalStack(t, map[string]string{"DUNNING_RETRY_SCHEDULE": "1h,2h", "DUNNING_CARD_UPDATE_DEBOUNCE": "1s"})
	customer := stripefixture.NewID("cus")
	s.send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: "pi_lc1"})
	began := time.Now()
	s.send(workflows.EventPaymentMethodAttached, stripefixture.Options{Customer: customer})
	res := s.result(workflows.RecoveryWorkflowID(customer), time.Minute)
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
	if took := time.Since(began); took > 30*time.Second {
		t.Fatalf("recovered after %s; the card update should retry at once", took)
	}
}

// Nobody pays: suspended, then deprovisioned, on a schedule of seconds;
// the stage is searchable all the way.
func TestUnpaidCustomerIsDeprovisioned(t *testing.T) {
	s := startLocalStack(t, map[string]string{"DUNNING_RETRY_SCHEDULE": "1s,2s", "DUNNING_GRACE_PERIOD": "4s", "DUNNING_DEPROVISION_AFTER": "3s"})
	customer := stripefixture.NewID("cus")
	s.send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: "pi_lc2"})
	if res := s.result(workflows.RecoveryWorkflowID(customer), 2*time.Minute); res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("stage %s, want deprovisioned", res.Stage)
	}
	desc, err := s.tmp.Client.DescribeWorkflow(context.Background(), workflows.RecoveryWorkflowID(customer), "")
	if err != nil {
		t.Fatal(err)
	}
	if stage, _ := desc.TypedSearchAttributes.GetKeyword(workflows.RecoveryStageKey); stage != string(workflows.StageDeprovisioned) {
		t.Fatalf("RecoveryStage = %q", stage)
	}
}
