package webhook_test

// These tests run the webhook against a real Temporal dev server and a real
// worker: what Stripe sees, and what lands in Temporal.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"dunning/internal/stripefixture"
	"dunning/internal/testenv"
	"dunning/webhook"
	"dunning/worker"
	"dunning/workflows"
)

const itSecret = "whsec_integration_test"

type answer struct {
	Status     string `json:"status"`
	WorkflowID string `json:"workflow_id"`
	Error      string `json:"error"`
}

func newWebhook(t *testing.T, c client.Client, startTimeout time.Duration) *httptest.Server {
	t.Helper()
	return newWebhookWith(t, c, webhook.Options{StartTimeout: startTimeout})
}

// newWebhookWith serves a handler with the test's secret, limits and task
// queue, and the start timeout and expected mode of o.
func newWebhookWith(t *testing.T, c client.Client, o webhook.Options) *httptest.Server {
	t.Helper()
	h, err := webhook.NewHandler(c, webhook.Options{
		Secrets:          []string{itSecret},
		Tolerance:        5 * time.Minute,
		MaxBody:          512 << 10,
		StartTimeout:     o.StartTimeout,
		TaskQueue:        workflows.DefaultTaskQueue,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		ExpectedLivemode: o.ExpectedLivemode,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func deliver(t *testing.T, url string, body []byte) (int, answer) {
	t.Helper()
	req, err := stripefixture.Request(url+webhook.PathStripe, body, itSecret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	defer resp.Body.Close()
	var a answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	return resp.StatusCode, a
}

func TestWebhookStartsOneWorkflowPerEvent(t *testing.T) {
	tmp := testenv.StartTemporal(t)
	cfg := tmp.Config(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	workerDone := make(chan error, 1)
	go func() {
		workerDone <- worker.Run(ctx, tmp.Client, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	defer func() { cancel(); <-workerDone }()
	srv := newWebhook(t, tmp.Client, 5*time.Second)

	t.Run("every handled type starts its workflow with search attributes", func(t *testing.T) {
		for _, typ := range workflows.HandledEventTypes() {
			customer := stripefixture.NewID("cus")
			body, _ := stripefixture.Event(typ, stripefixture.Options{Customer: customer})
			var ev struct{ ID string }
			_ = json.Unmarshal(body, &ev)

			code, a := deliver(t, srv.URL, body)
			if code != http.StatusOK || a.Status != webhook.OutcomeStarted || a.WorkflowID != ev.ID {
				t.Fatalf("%s: got %d %+v, want 200 started %s", typ, code, a, ev.ID)
			}
			var res workflows.StripeEventResult
			if err := tmp.Client.GetWorkflow(ctx, ev.ID, "").Get(ctx, &res); err != nil {
				t.Fatalf("%s: workflow result: %v", typ, err)
			}
			route, _ := workflows.RouteOf(typ)
			if res.EventID != ev.ID || res.Route != route || res.CustomerID != customer {
				t.Errorf("%s: result %+v", typ, res)
			}
			desc, err := tmp.Client.DescribeWorkflow(ctx, ev.ID, "")
			if err != nil {
				t.Fatal(err)
			}
			for key, want := range map[temporal.SearchAttributeKeyKeyword]string{
				workflows.StripeEventTypeKey:  typ,
				workflows.StripeCustomerIDKey: customer,
			} {
				if got, ok := desc.TypedSearchAttributes.GetKeyword(key); !ok || got != want {
					t.Errorf("%s: search attribute %s = %q (set %v), want %q", typ, key.GetName(), got, ok, want)
				}
			}
			if summary, err := desc.GetStaticSummary(); err != nil || !strings.Contains(summary, typ) {
				t.Errorf("%s: summary %q (%v) does not name the event type", typ, summary, err)
			}
		}
	})

	t.Run("20 concurrent deliveries of one event start one workflow", func(t *testing.T) {
		body, _ := stripefixture.Event(workflows.EventPaymentFailed, stripefixture.Options{})
		var ev struct{ ID string }
		_ = json.Unmarshal(body, &ev)
		var wg sync.WaitGroup
		var mu sync.Mutex
		outcomes := map[string]int{}
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, a := deliver(t, srv.URL, body)
				mu.Lock()
				defer mu.Unlock()
				if code != http.StatusOK {
					outcomes["http error"]++
					return
				}
				outcomes[a.Status]++
			}()
		}
		wg.Wait()
		if outcomes[webhook.OutcomeStarted] != 1 || outcomes[webhook.OutcomeDuplicate] != 19 {
			t.Fatalf("outcomes %v, want 1 started and 19 duplicates", outcomes)
		}
		// Delivered again after the workflow closed: still a duplicate.
		if err := tmp.Client.GetWorkflow(ctx, ev.ID, "").Get(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if code, a := deliver(t, srv.URL, body); code != http.StatusOK || a.Status != webhook.OutcomeDuplicate {
			t.Fatalf("redelivery after close: %d %+v", code, a)
		}
		// Visibility is written after the fact: wait for the record (a
		// loaded machine takes a moment), then count.
		var n int
		for deadline := time.Now().Add(30 * time.Second); ; {
			resp, err := tmp.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Query: "WorkflowId = '" + ev.ID + "'",
			})
			if err != nil {
				t.Fatal(err)
			}
			if n = len(resp.GetExecutions()); n > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if n != 1 {
			t.Fatalf("%d executions of %s, want 1", n, ev.ID)
		}
	})

	t.Run("unreadable and wrong-mode events reach ops and are not acted on", func(t *testing.T) {
		live := true
		liveSrv := newWebhookWith(t, tmp.Client, webhook.Options{StartTimeout: 5 * time.Second, ExpectedLivemode: &live})
		for _, tc := range []struct {
			name       string
			body       func(customer string) []byte
			wantStatus string
			wantType   string
		}{
			{"amount of the wrong type", func(customer string) []byte {
				b, _ := stripefixture.Event(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer})
				return []byte(strings.Replace(string(b), `"amount":4900`, `"amount":"4900"`, 1))
			}, webhook.OutcomeUnreadable, workflows.EventPaymentFailed},
			{"test-mode event at a live key", func(customer string) []byte {
				b, _ := stripefixture.Event(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer})
				return b
			}, webhook.OutcomeWrongMode, workflows.EventPaymentFailed},
		} {
			customer := stripefixture.NewID("cus")
			body := tc.body(customer)
			var ev struct{ ID string }
			_ = json.Unmarshal(body, &ev)
			code, a := deliver(t, liveSrv.URL, body)
			if code != http.StatusOK || a.Status != tc.wantStatus || a.WorkflowID != ev.ID {
				t.Fatalf("%s: got %d %+v, want 200 %s %s", tc.name, code, a, tc.wantStatus, ev.ID)
			}
			var res workflows.StripeEventResult
			if err := tmp.Client.GetWorkflow(ctx, ev.ID, "").Get(ctx, &res); err != nil {
				t.Fatalf("%s: workflow result: %v", tc.name, err)
			}
			if res.EventID != ev.ID || !strings.Contains(res.Outcome, "ops alerted, not acted on") {
				t.Errorf("%s: result %+v, want ops alerted and nothing done", tc.name, res)
			}
			desc, err := tmp.Client.DescribeWorkflow(ctx, ev.ID, "")
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := desc.TypedSearchAttributes.GetKeyword(workflows.StripeEventTypeKey); got != tc.wantType {
				t.Errorf("%s: StripeEventType = %q, want %q", tc.name, got, tc.wantType)
			}
			// The failed payment opened no recovery.
			var nf *serviceerror.NotFound
			if _, err := tmp.Client.DescribeWorkflow(ctx, workflows.RecoveryWorkflowID(customer), ""); !errors.As(err, &nf) {
				t.Errorf("%s: recovery of %s: %v, want none", tc.name, customer, err)
			}
			if code, a := deliver(t, liveSrv.URL, body); code != http.StatusOK || a.Status != webhook.OutcomeDuplicate {
				t.Errorf("%s: redelivery: %d %+v, want 200 duplicate", tc.name, code, a)
			}
		}
	})

	t.Run("rejected and ignored deliveries start nothing", func(t *testing.T) {
		ignored, _ := stripefixture.Event("charge.refunded", stripefixture.Options{})
		code, a := deliver(t, srv.URL, ignored)
		if code != http.StatusOK || a.Status != webhook.OutcomeIgnored {
			t.Fatalf("unhandled type: %d %+v", code, a)
		}
		assertNoWorkflow(t, tmp.Client, ignored)

		forged, _ := stripefixture.Event(workflows.EventPaymentFailed, stripefixture.Options{})
		req, _ := stripefixture.Request(srv.URL+webhook.PathStripe, forged, "whsec_wrong", time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("forged signature: %d", resp.StatusCode)
		}
		assertNoWorkflow(t, tmp.Client, forged)
	})
}

func assertNoWorkflow(t *testing.T, c client.Client, body []byte) {
	t.Helper()
	var ev struct{ ID string }
	_ = json.Unmarshal(body, &ev)
	_, err := c.DescribeWorkflow(context.Background(), ev.ID, "")
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		t.Fatalf("workflow %s: got %v, want not found", ev.ID, err)
	}
}

// Temporal down: 503 within the start deadline, so that Stripe retries.
// Temporal back: the same event, delivered again, is taken.
func TestWebhookTemporalDownThen503ThenRecovered(t *testing.T) {
	addr := testenv.FreeAddress(t)
	c, err := client.NewLazyClient(client.Options{HostPort: addr, Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := newWebhook(t, c, 2*time.Second)
	body, _ := stripefixture.Event(workflows.EventPaymentFailed, stripefixture.Options{})

	began := time.Now()
	code, a := deliver(t, srv.URL, body)
	if code != http.StatusServiceUnavailable || a.Status != webhook.OutcomeTemporalDown {
		t.Fatalf("temporal down: got %d %+v, want 503", code, a)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("503 took %s; the start deadline is 2s", took)
	}
	resp, err := http.Get(srv.URL + webhook.PathReadyz)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with temporal down: %d", resp.StatusCode)
	}

	tmp := testenv.StartTemporalAt(t, addr)
	var ok bool
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		// Stripe retries with backoff; the client reconnects on its own.
		if code, a = deliver(t, srv.URL, body); code == http.StatusOK {
			ok = true
			break
		}
	}
	if !ok || a.Status != webhook.OutcomeStarted {
		t.Fatalf("after restart: %d %+v, want 200 started", code, a)
	}
	var ev struct{ ID string }
	_ = json.Unmarshal(body, &ev)
	if _, err := tmp.Client.DescribeWorkflow(context.Background(), ev.ID, ""); err != nil {
		t.Fatalf("workflow of the redelivered event: %v", err)
	}
	resp, err = http.Get(srv.URL + webhook.PathReadyz)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz with temporal up: %d", resp.StatusCode)
	}
}
