package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"dunning/internal/stripefixture"
	"dunning/webhook"
	"dunning/workflows"
)

const (
	secret    = "whsec_test_4f6b1d9e2a7c51e8"
	oldSecret = "whsec_test_old_8e3a0b7d6c"
	taskQueue = "dunning-test"
	maxBody   = 16 << 10
	baseURL   = "http://dunning.test"
)

// testNow is the webhook's clock; events are signed at it.
var testNow = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// startCall is one ExecuteWorkflow call the fake received.
type startCall struct {
	opts        client.StartWorkflowOptions
	workflow    any
	args        []any
	deadline    time.Time
	hasDeadline bool
}

// fakeTemporal stands in for the Temporal client. start decides the answer
// to the n-th ExecuteWorkflow call (1-based); nil means success.
type fakeTemporal struct {
	start  func(ctx context.Context, n int, opts client.StartWorkflowOptions) error
	health error

	mu    sync.Mutex
	calls []startCall
}

type fakeRun struct {
	client.WorkflowRun // the webhook uses only the IDs
	id, runID          string
}

func (r fakeRun) GetID() string    { return r.id }
func (r fakeRun) GetRunID() string { return r.runID }

func (f *fakeTemporal) ExecuteWorkflow(ctx context.Context, opts client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	deadline, ok := ctx.Deadline()
	f.mu.Lock()
	f.calls = append(f.calls, startCall{opts: opts, workflow: wf, args: args, deadline: deadline, hasDeadline: ok})
	n := len(f.calls)
	f.mu.Unlock()
	if f.start != nil {
		if err := f.start(ctx, n, opts); err != nil {
			return nil, err
		}
	}
	return fakeRun{id: opts.ID, runID: fmt.Sprintf("run-%d", n)}, nil
}

func (f *fakeTemporal) CheckHealth(context.Context, *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	if f.health != nil {
		return nil, f.health
	}
	return &client.CheckHealthResponse{}, nil
}

func (f *fakeTemporal) starts() []startCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]startCall(nil), f.calls...)
}

// Behaviours of the fake.

func alreadyStarted(context.Context, int, client.StartWorkflowOptions) error {
	return serviceerror.NewWorkflowExecutionAlreadyStarted("workflow execution already started", "req-1", "run-1")
}

func unavailable(context.Context, int, client.StartWorkflowOptions) error {
	return serviceerror.NewUnavailable("connection refused")
}

func block(ctx context.Context, _ int, _ client.StartWorkflowOptions) error {
	<-ctx.Done()
	return ctx.Err()
}

func firstThenAlreadyStarted(ctx context.Context, n int, opts client.StartWorkflowOptions) error {
	if n == 1 {
		return nil
	}
	return alreadyStarted(ctx, n, opts)
}

// syncBuffer collects log output from concurrent requests.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type server struct {
	handler  http.Handler
	temporal *fakeTemporal
	logs     *syncBuffer
}

func newServer(t testing.TB, f *fakeTemporal, tweak func(*webhook.Options)) *server {
	t.Helper()
	logs := &syncBuffer{}
	opts := webhook.Options{
		Secrets:      []string{secret},
		Tolerance:    5 * time.Minute,
		MaxBody:      maxBody,
		StartTimeout: 2 * time.Second,
		TaskQueue:    taskQueue,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{
			Level: slog.LevelDebug,
			// Without timestamps the log holds only what the handler wrote.
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		})),
		Registry: prometheus.NewRegistry(),
		Now:      func() time.Time { return testNow },
	}
	if tweak != nil {
		tweak(&opts)
	}
	h, err := webhook.NewHandler(f, opts)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	return &server{handler: h, temporal: f, logs: logs}
}

// reply is what a caller sees of an answer.
type reply struct {
	code    int
	header  http.Header
	raw     string
	elapsed time.Duration

	Status     string `json:"status"`
	Error      string `json:"error"`
	Reason     string `json:"reason"`
	EventID    string `json:"event_id"`
	WorkflowID string `json:"workflow_id"`
}

// startedEvent is the event of the one workflow start s saw.
func startedEvent(t *testing.T, s *server) workflows.StripeEvent {
	t.Helper()
	starts := s.temporal.starts()
	if len(starts) != 1 || len(starts[0].args) != 1 {
		t.Fatalf("%d workflow starts, want 1 with one argument", len(starts))
	}
	in, ok := starts[0].args[0].(workflows.StripeEventInput)
	if !ok {
		t.Fatalf("workflow argument is %T, want workflows.StripeEventInput", starts[0].args[0])
	}
	if starts[0].opts.ID != workflows.EventWorkflowID(in.Event.ID) {
		t.Errorf("workflow ID %q, want the event ID %q", starts[0].opts.ID, in.Event.ID)
	}
	return in.Event
}

// wantUnreadable checks an answer to an event that cannot be read: its
// workflow was started under the event ID with the envelope only and the
// reason, and the answer says so.
func wantUnreadable(id, typ, reason string) func(t *testing.T, s *server, r reply) {
	return func(t *testing.T, s *server, r reply) {
		t.Helper()
		ev := startedEvent(t, s)
		if ev.ID != id || ev.Type != typ || !strings.Contains(ev.Unreadable, reason) {
			t.Errorf("started %s of type %q, unreadable %q; want %s of type %q, unreadable for %q", ev.ID, ev.Type, ev.Unreadable, id, typ, reason)
		}
		if ev.CustomerID != "" || ev.ObjectID != "" || ev.PaymentIntent != nil || ev.Invoice != nil || ev.Card != nil {
			t.Errorf("started %+v, want nothing of data.object", ev)
		}
		if r.EventID != id || r.WorkflowID != id || r.Reason != ev.Unreadable {
			t.Errorf("answer %+v, want event and workflow %s and the reason", r, id)
		}
		if v, ok := s.temporal.starts()[0].opts.TypedSearchAttributes.GetKeyword(workflows.StripeCustomerIDKey); ok {
			t.Errorf("search attribute %s = %q, want none", workflows.StripeCustomerIDKey.GetName(), v)
		}
		if logs := s.logs.String(); !strings.Contains(logs, id) || !strings.Contains(logs, "unreadable") {
			t.Errorf("log %q, want a line naming %s as unreadable", logs, id)
		}
	}
}

// expectLivemode has the handler expect events of one mode, as with a live
// or a test Stripe API key.
func expectLivemode(live bool) func(*webhook.Options) {
	return func(o *webhook.Options) { o.ExpectedLivemode = &live }
}

func (s *server) do(t testing.TB, req *http.Request) reply {
	t.Helper()
	rec := httptest.NewRecorder()
	began := time.Now()
	s.handler.ServeHTTP(rec, req)
	r := reply{code: rec.Code, header: rec.Header(), raw: rec.Body.String(), elapsed: time.Since(began)}
	if ct := rec.Header().Get("Content-Type"); strings.HasPrefix(ct, "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
			t.Fatalf("answer is not JSON: %v: %q", err, r.raw)
		}
	}
	return r
}

func event(t testing.TB, eventType string, o stripefixture.Options) []byte {
	t.Helper()
	if o.Created.IsZero() {
		o.Created = testNow
	}
	body, err := stripefixture.Event(eventType, o)
	if err != nil {
		t.Fatalf("stripefixture.Event(%s): %v", eventType, err)
	}
	return body
}

// signed returns body POSTed the way Stripe sends it, signed at testNow
// with secret.
func signed(t testing.TB, body []byte, secret string) *http.Request {
	t.Helper()
	req, err := stripefixture.Request(baseURL+webhook.PathStripe, body, secret, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// withHeader returns a signed request with its signature header replaced;
// an empty value removes it.
func withHeader(t testing.TB, body []byte, name, value string) *http.Request {
	t.Helper()
	req := signed(t, body, secret)
	if value == "" {
		req.Header.Del(name)
	} else {
		req.Header.Set(name, value)
	}
	return req
}

// chunked makes req's body of unknown length, as with chunked encoding.
func chunked(req *http.Request) *http.Request {
	req.Body = io.NopCloser(io.MultiReader(req.Body))
	req.ContentLength = -1
	req.TransferEncoding = []string{"chunked"}
	req.Header.Del("Content-Length")
	return req
}

// padded returns a signed-able event body of exactly n bytes: the JSON
// followed by whitespace, which is still valid JSON.
func padded(t testing.TB, n int) []byte {
	t.Helper()
	body := event(t, workflows.EventPaymentFailed, stripefixture.Options{})
	if len(body) > n {
		t.Fatalf("fixture is %d bytes, more than %d", len(body), n)
	}
	return append(body, bytes.Repeat([]byte(" "), n-len(body))...)
}

func TestNewHandlerRequiresOptions(t *testing.T) {
	t.Parallel()
	good := webhook.Options{Secrets: []string{secret}, Tolerance: time.Minute, MaxBody: 1024, StartTimeout: time.Second, TaskQueue: taskQueue}
	if _, err := webhook.NewHandler(&fakeTemporal{}, good); err != nil {
		t.Fatalf("NewHandler with complete options: %v", err)
	}
	for name, edit := range map[string]func(*webhook.Options){
		"no secret":        func(o *webhook.Options) { o.Secrets = nil },
		"no tolerance":     func(o *webhook.Options) { o.Tolerance = 0 },
		"no body limit":    func(o *webhook.Options) { o.MaxBody = 0 },
		"no start timeout": func(o *webhook.Options) { o.StartTimeout = 0 },
		"no task queue":    func(o *webhook.Options) { o.TaskQueue = "" },
	} {
		o := good
		edit(&o)
		if _, err := webhook.NewHandler(&fakeTemporal{}, o); err == nil {
			t.Errorf("NewHandler with %s = nil error", name)
		}
	}
}

func TestStripeWebhook(t *testing.T) {
	t.Parallel()
	const (
		eventID    = "evt_1OqWebhookTest0001"
		customerID = "cus_PqWebhookTest01"
		intentID   = "pi_3OqWebhookTest001"
	)
	failed := event(t, workflows.EventPaymentFailed, stripefixture.Options{
		ID: eventID, Customer: customerID, ObjectID: intentID, Amount: 4900, Currency: "usd", DeclineCode: "insufficient_funds",
	})
	ts := strconv.FormatInt(testNow.Unix(), 10)

	cases := []struct {
		name       string
		start      func(context.Context, int, client.StartWorkflowOptions) error
		tweak      func(*webhook.Options)
		req        func(t *testing.T) *http.Request
		wantCode   int
		wantStatus string // the answer's status, the outcome
		wantError  string // the answer's error, when one is expected
		wantStarts int    // ExecuteWorkflow calls
		check      func(t *testing.T, s *server, r reply)
	}{
		{
			name:     "valid handled event starts its workflow",
			req:      func(t *testing.T) *http.Request { return signed(t, failed, secret) },
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeStarted, wantStarts: 1,
			check: func(t *testing.T, s *server, r reply) {
				if r.EventID != eventID || r.WorkflowID != eventID {
					t.Errorf("answer event_id %q workflow_id %q, want %q", r.EventID, r.WorkflowID, eventID)
				}
				c := s.temporal.starts()[0]
				o := c.opts
				if o.ID != eventID {
					t.Errorf("workflow ID %q, want the event ID %q", o.ID, eventID)
				}
				if o.WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE {
					t.Errorf("WorkflowIDReusePolicy = %v, want REJECT_DUPLICATE", o.WorkflowIDReusePolicy)
				}
				if !o.WorkflowExecutionErrorWhenAlreadyStarted {
					t.Error("WorkflowExecutionErrorWhenAlreadyStarted = false; a duplicate would look like a first delivery")
				}
				if o.TaskQueue != taskQueue {
					t.Errorf("TaskQueue = %q, want %q", o.TaskQueue, taskQueue)
				}
				sa := o.TypedSearchAttributes
				if v, ok := sa.GetKeyword(workflows.StripeEventTypeKey); !ok || v != workflows.EventPaymentFailed {
					t.Errorf("search attribute %s = %q, %v", workflows.StripeEventTypeKey.GetName(), v, ok)
				}
				if v, ok := sa.GetKeyword(workflows.StripeCustomerIDKey); !ok || v != customerID {
					t.Errorf("search attribute %s = %q, %v", workflows.StripeCustomerIDKey.GetName(), v, ok)
				}
				if sa.Size() != 2 {
					t.Errorf("%d search attributes, want 2", sa.Size())
				}
				if o.StaticSummary == "" || !strings.Contains(o.StaticSummary, workflows.EventPaymentFailed) {
					t.Errorf("StaticSummary = %q, want a line naming the event type", o.StaticSummary)
				}
				if strings.Contains(o.StaticSummary, "4242") {
					t.Errorf("StaticSummary %q carries card data", o.StaticSummary)
				}
				if c.workflow != workflows.StripeEventWorkflowName {
					t.Errorf("workflow = %v, want %q", c.workflow, workflows.StripeEventWorkflowName)
				}
				if !c.hasDeadline || c.deadline.After(time.Now().Add(2*time.Second)) {
					t.Errorf("start context deadline %v (set %v), want within the 2s start timeout", c.deadline, c.hasDeadline)
				}
				if len(c.args) != 1 {
					t.Fatalf("%d workflow arguments, want 1", len(c.args))
				}
				in, ok := c.args[0].(workflows.StripeEventInput)
				if !ok {
					t.Fatalf("workflow argument is %T, want workflows.StripeEventInput", c.args[0])
				}
				ev := in.Event
				if ev.ID != eventID || ev.Type != workflows.EventPaymentFailed || ev.CustomerID != customerID ||
					ev.ObjectID != intentID || ev.APIVersion != stripefixture.APIVersion || !ev.Created.Equal(testNow) {
					t.Errorf("input event = %+v", ev)
				}
				if pi := ev.PaymentIntent; pi == nil || pi.Amount != 4900 || pi.Currency != "usd" || pi.DeclineCode != "insufficient_funds" {
					t.Errorf("input payment intent = %+v", pi)
				}
			},
		},
		{
			name:     "duplicate delivery",
			start:    alreadyStarted,
			req:      func(t *testing.T) *http.Request { return signed(t, failed, secret) },
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeDuplicate, wantStarts: 1,
			check: func(t *testing.T, _ *server, r reply) {
				if r.EventID != eventID {
					t.Errorf("event_id %q, want %q", r.EventID, eventID)
				}
			},
		},
		{
			name:     "temporal unavailable",
			start:    unavailable,
			req:      func(t *testing.T) *http.Request { return signed(t, failed, secret) },
			wantCode: http.StatusServiceUnavailable, wantStatus: webhook.OutcomeTemporalDown, wantStarts: 1,
			check: func(t *testing.T, _ *server, r reply) {
				if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s <= 0 {
					t.Errorf("Retry-After = %q, want a positive number of seconds", r.header.Get("Retry-After"))
				}
				if strings.Contains(r.raw, "connection refused") {
					t.Errorf("answer %q passes Temporal's error to the caller", r.raw)
				}
			},
		},
		{
			name:     "temporal does not answer within the start timeout",
			start:    block,
			tweak:    func(o *webhook.Options) { o.StartTimeout = 250 * time.Millisecond },
			req:      func(t *testing.T) *http.Request { return signed(t, failed, secret) },
			wantCode: http.StatusServiceUnavailable, wantStatus: webhook.OutcomeTemporalDown, wantStarts: 1,
			check: func(t *testing.T, _ *server, r reply) {
				if r.elapsed < 250*time.Millisecond || r.elapsed > 250*time.Millisecond+2*time.Second {
					t.Errorf("answered after %v, want about the 250ms start timeout", r.elapsed)
				}
				if r.header.Get("Retry-After") == "" {
					t.Error("no Retry-After header")
				}
			},
		},
		{
			name: "caller gone before the start; the start still completes",
			start: func(ctx context.Context, _ int, _ client.StartWorkflowOptions) error {
				return ctx.Err()
			},
			req: func(t *testing.T) *http.Request {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return signed(t, failed, secret).WithContext(ctx)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeStarted, wantStarts: 1,
		},
		{
			name: "unhandled type is ignored",
			req: func(t *testing.T) *http.Request {
				return signed(t, event(t, "charge.refunded", stripefixture.Options{ID: "evt_1OqUnhandled00001"}), secret)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeIgnored, wantStarts: 0,
			check: func(t *testing.T, _ *server, r reply) {
				if r.EventID != "evt_1OqUnhandled00001" {
					t.Errorf("event_id %q", r.EventID)
				}
			},
		},
		{
			name:     "missing signature",
			req:      func(t *testing.T) *http.Request { return withHeader(t, failed, webhook.SignatureHeader, "") },
			wantCode: http.StatusBadRequest, wantStatus: webhook.OutcomeBadSignature, wantError: "missing signature header",
		},
		{
			name:     "malformed signature",
			req:      func(t *testing.T) *http.Request { return withHeader(t, failed, webhook.SignatureHeader, "t=abc,v1=zz") },
			wantCode: http.StatusBadRequest, wantStatus: webhook.OutcomeBadSignature, wantError: "malformed signature header",
		},
		{
			name: "signature without timestamp",
			req: func(t *testing.T) *http.Request {
				return withHeader(t, failed, webhook.SignatureHeader, "v1="+strings.Repeat("ab", 32))
			},
			wantCode: http.StatusBadRequest, wantStatus: webhook.OutcomeBadSignature, wantError: "malformed signature header",
		},
		{
			name:     "signed with the wrong secret",
			req:      func(t *testing.T) *http.Request { return signed(t, failed, "whsec_someone_else") },
			wantCode: http.StatusBadRequest, wantStatus: webhook.OutcomeBadSignature, wantError: "no signature matches",
		},
		{
			name: "body changed after signing",
			req: func(t *testing.T) *http.Request {
				req := signed(t, failed, secret)
				changed := bytes.Replace(failed, []byte(`"amount":4900`), []byte(`"amount":4800`), 1)
				req.Body = io.NopCloser(bytes.NewReader(changed))
				return req
			},
			wantCode: http.StatusBadRequest, wantStatus: webhook.OutcomeBadSignature, wantError: "no signature matches",
		},
		{
			name: "stale signature",
			req: func(t *testing.T) *http.Request {
				req, err := stripefixture.Request(baseURL+webhook.PathStripe, failed, secret, testNow.Add(-10*time.Minute))
				if err != nil {
					t.Fatal(err)
				}
				return req
			},
			wantCode: http.StatusBadRequest, wantStatus: webhook.OutcomeBadSignature, wantError: "signature timestamp outside tolerance",
		},
		{
			// Stripe's clock an hour ahead of ours: the signature is
			// Stripe's all the same, and Stripe's libraries accept it.
			name: "signature from the future",
			req: func(t *testing.T) *http.Request {
				req, err := stripefixture.Request(baseURL+webhook.PathStripe, failed, secret, testNow.Add(time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				return req
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeStarted, wantStarts: 1,
		},
		{
			name:     "body over the limit with Content-Length",
			req:      func(t *testing.T) *http.Request { return signed(t, padded(t, maxBody+1), secret) },
			wantCode: http.StatusRequestEntityTooLarge, wantStatus: webhook.OutcomeTooLarge,
		},
		{
			name:     "body over the limit, chunked",
			req:      func(t *testing.T) *http.Request { return chunked(signed(t, padded(t, 4*maxBody), secret)) },
			wantCode: http.StatusRequestEntityTooLarge, wantStatus: webhook.OutcomeTooLarge,
		},
		{
			name:     "body over the limit by one byte, chunked",
			req:      func(t *testing.T) *http.Request { return chunked(signed(t, padded(t, maxBody+1), secret)) },
			wantCode: http.StatusRequestEntityTooLarge, wantStatus: webhook.OutcomeTooLarge,
		},
		{
			name:     "body at the limit",
			req:      func(t *testing.T) *http.Request { return signed(t, padded(t, maxBody), secret) },
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeStarted, wantStarts: 1,
		},
		{
			name:     "body at the limit, chunked",
			req:      func(t *testing.T) *http.Request { return chunked(signed(t, padded(t, maxBody), secret)) },
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeStarted, wantStarts: 1,
		},
		{
			name:     "wrong content type",
			req:      func(t *testing.T) *http.Request { return withHeader(t, failed, "Content-Type", "text/plain") },
			wantCode: http.StatusUnsupportedMediaType, wantStatus: webhook.OutcomeBadContentType,
		},
		{
			name: "form content type",
			req: func(t *testing.T) *http.Request {
				return withHeader(t, failed, "Content-Type", "application/x-www-form-urlencoded")
			},
			wantCode: http.StatusUnsupportedMediaType, wantStatus: webhook.OutcomeBadContentType,
		},
		{
			name:     "no content type",
			req:      func(t *testing.T) *http.Request { return withHeader(t, failed, "Content-Type", "") },
			wantCode: http.StatusUnsupportedMediaType, wantStatus: webhook.OutcomeBadContentType,
		},
		{
			name:     "plain application/json",
			req:      func(t *testing.T) *http.Request { return withHeader(t, failed, "Content-Type", "application/json") },
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeStarted, wantStarts: 1,
		},
		{
			name: "GET on the webhook path",
			req: func(t *testing.T) *http.Request {
				return httptest.NewRequest(http.MethodGet, webhook.PathStripe, nil)
			},
			wantCode: http.StatusMethodNotAllowed, wantError: "method not allowed",
		},
		{
			name: "PUT on the webhook path",
			req: func(t *testing.T) *http.Request {
				req := signed(t, failed, secret)
				req.Method = http.MethodPut
				return req
			},
			wantCode: http.StatusMethodNotAllowed, wantError: "method not allowed",
		},
		// Validly signed, so from Stripe: never 4xx, whatever the body.
		{
			name: "bad event JSON with a valid signature",
			req: func(t *testing.T) *http.Request {
				return signed(t, []byte(`{"id":"evt_1OqBad","object":"event","created":`), secret)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeUnreadable, wantStarts: 1,
			check: wantUnreadable("evt_1OqBad", "", "malformed JSON"),
		},
		{
			name: "event without type, validly signed",
			req: func(t *testing.T) *http.Request {
				return signed(t, []byte(`{"id":"evt_1OqNoType","object":"event","created":1710000000}`), secret)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeUnreadable, wantStarts: 1,
			check: wantUnreadable("evt_1OqNoType", "", "type missing"),
		},
		{
			name: "handled event without data.object, validly signed",
			req: func(t *testing.T) *http.Request {
				return signed(t, []byte(`{"id":"evt_1OqNoData","object":"event","type":"invoice.paid","created":1710000000}`), secret)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeUnreadable, wantStarts: 1,
			check: wantUnreadable("evt_1OqNoData", workflows.EventInvoicePaid, "data.object missing"),
		},
		{
			name: "handled event whose data.object is a list, validly signed",
			req: func(t *testing.T) *http.Request {
				return signed(t, edited(t, failed, func(ev map[string]any) { ev["data"] = map[string]any{"object": []any{1}} }), secret)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeUnreadable, wantStarts: 1,
			check: wantUnreadable(eventID, workflows.EventPaymentFailed, "data.object"),
		},
		{
			name: "amount of the wrong type, validly signed",
			req: func(t *testing.T) *http.Request {
				return signed(t, edited(t, failed, func(ev map[string]any) { dataObject(ev)["amount"] = "4900" }), secret)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeUnreadable, wantStarts: 1,
			check: wantUnreadable(eventID, workflows.EventPaymentFailed, "field amount has the wrong type"),
		},
		{
			name: "customer that is not a Stripe ID, validly signed",
			req: func(t *testing.T) *http.Request {
				return signed(t, edited(t, failed, func(ev map[string]any) { dataObject(ev)["customer"] = "cus_1 OR 1=1" }), secret)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeUnreadable, wantStarts: 1,
			check: wantUnreadable(eventID, workflows.EventPaymentFailed, "customer is not a Stripe ID"),
		},
		{
			name:  "unreadable event, temporal unavailable",
			start: unavailable,
			req: func(t *testing.T) *http.Request {
				return signed(t, edited(t, failed, func(ev map[string]any) { dataObject(ev)["amount"] = "4900" }), secret)
			},
			wantCode: http.StatusServiceUnavailable, wantStatus: webhook.OutcomeTemporalDown, wantStarts: 1,
			check: func(t *testing.T, s *server, r reply) {
				if r.header.Get("Retry-After") == "" {
					t.Error("no Retry-After header")
				}
				if ev := startedEvent(t, s); ev.Unreadable == "" {
					t.Errorf("start attempted with %+v, want Unreadable set", ev)
				}
			},
		},
		{
			name:  "unreadable event delivered again",
			start: alreadyStarted,
			req: func(t *testing.T) *http.Request {
				return signed(t, edited(t, failed, func(ev map[string]any) { dataObject(ev)["amount"] = "4900" }), secret)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeDuplicate, wantStarts: 1,
		},
		{
			name: "event ID that cannot be a workflow ID, validly signed",
			req: func(t *testing.T) *http.Request {
				return signed(t, event(t, workflows.EventInvoicePaid, stripefixture.Options{ID: "evt_../../x"}), secret)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeUnreadableNoID,
			check: func(t *testing.T, s *server, r reply) {
				if r.Reason != "invalid event: id is not a Stripe event ID" {
					t.Errorf("reason %q", r.Reason)
				}
				logs := s.logs.String()
				if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "type="+workflows.EventInvoicePaid) ||
					!strings.Contains(logs, "created=") || strings.Contains(logs, "evt_../../x") {
					t.Errorf("log %q, want an error naming the type and created time, not the ID", logs)
				}
			},
		},
		{
			name: "unusable ID on an event of an unhandled type, validly signed",
			req: func(t *testing.T) *http.Request {
				return signed(t, event(t, "charge.refunded", stripefixture.Options{ID: "ch_1"}), secret)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeIgnored,
		},
		{
			name:     "test-mode event at a live key",
			tweak:    expectLivemode(true),
			req:      func(t *testing.T) *http.Request { return signed(t, failed, secret) },
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeWrongMode, wantStarts: 1,
			check: func(t *testing.T, s *server, r reply) {
				ev := startedEvent(t, s)
				if ev.ID != eventID || r.WorkflowID != eventID || ev.Livemode || ev.ExpectedLivemode == nil || !*ev.ExpectedLivemode ||
					!workflows.WrongMode(ev) || ev.PaymentIntent == nil {
					t.Errorf("started %+v, answer %+v; want the whole event marked with the live key's mode", ev, r)
				}
			},
		},
		{
			name:  "live-mode event at a test key",
			tweak: expectLivemode(false),
			req: func(t *testing.T) *http.Request {
				return signed(t, edited(t, failed, func(ev map[string]any) { ev["livemode"] = true }), secret)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeWrongMode, wantStarts: 1,
			check: func(t *testing.T, s *server, _ reply) {
				if ev := startedEvent(t, s); !ev.Livemode || ev.ExpectedLivemode == nil || *ev.ExpectedLivemode {
					t.Errorf("started %+v, want a live event marked with the test key's mode", ev)
				}
			},
		},
		{
			name:     "test-mode event at a test key",
			tweak:    expectLivemode(false),
			req:      func(t *testing.T) *http.Request { return signed(t, failed, secret) },
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeStarted, wantStarts: 1,
			check: func(t *testing.T, s *server, _ reply) {
				if ev := startedEvent(t, s); ev.ExpectedLivemode == nil || *ev.ExpectedLivemode || workflows.WrongMode(ev) {
					t.Errorf("started %+v, want it marked with the test key's mode", ev)
				}
			},
		},
		{
			name:     "test-mode event, key's mode unknown",
			req:      func(t *testing.T) *http.Request { return signed(t, failed, secret) },
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeStarted, wantStarts: 1,
			check: func(t *testing.T, s *server, _ reply) {
				if ev := startedEvent(t, s); ev.ExpectedLivemode != nil {
					t.Errorf("started %+v, want no expected mode", ev)
				}
			},
		},
		{
			name:  "unreadable test-mode event at a live key",
			tweak: expectLivemode(true),
			req: func(t *testing.T) *http.Request {
				return signed(t, edited(t, failed, func(ev map[string]any) { delete(ev, "data") }), secret)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeUnreadable, wantStarts: 1,
		},
		{
			name:  "wrong-mode event of an unhandled type",
			tweak: expectLivemode(true),
			req: func(t *testing.T) *http.Request {
				return signed(t, event(t, "charge.refunded", stripefixture.Options{}), secret)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeIgnored,
		},
		{
			name: "different api_version",
			req: func(t *testing.T) *http.Request {
				return signed(t, event(t, workflows.EventInvoicePaid, stripefixture.Options{APIVersion: "2020-08-27"}), secret)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeStarted, wantStarts: 1,
			check: func(t *testing.T, s *server, _ reply) {
				ev := s.temporal.starts()[0].args[0].(workflows.StripeEventInput).Event
				if ev.APIVersion != "2020-08-27" || ev.Invoice == nil {
					t.Errorf("input event = %+v", ev)
				}
			},
		},
		{
			name: "event without a customer",
			req: func(t *testing.T) *http.Request {
				body := bytes.Replace(failed, []byte(`"customer":"`+customerID+`"`), []byte(`"customer":null`), 1)
				return signed(t, body, secret)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeStarted, wantStarts: 1,
			check: func(t *testing.T, s *server, _ reply) {
				o := s.temporal.starts()[0].opts
				if _, ok := o.TypedSearchAttributes.GetKeyword(workflows.StripeCustomerIDKey); ok || o.TypedSearchAttributes.Size() != 1 {
					t.Errorf("search attributes of a customer-less event: %d, StripeCustomerId set %v", o.TypedSearchAttributes.Size(), ok)
				}
				if o.StaticSummary == "" {
					t.Error("empty StaticSummary")
				}
			},
		},
		{
			name:     "rotation: signed with the old secret",
			tweak:    func(o *webhook.Options) { o.Secrets = []string{oldSecret, secret} },
			req:      func(t *testing.T) *http.Request { return signed(t, failed, oldSecret) },
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeStarted, wantStarts: 1,
		},
		{
			name:     "rotation: signed with the new secret",
			tweak:    func(o *webhook.Options) { o.Secrets = []string{oldSecret, secret} },
			req:      func(t *testing.T) *http.Request { return signed(t, failed, secret) },
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeStarted, wantStarts: 1,
		},
		{
			name:  "rotation: Stripe signs with both secrets",
			tweak: func(o *webhook.Options) { o.Secrets = []string{secret} },
			req: func(t *testing.T) *http.Request {
				return withHeader(t, failed, webhook.SignatureHeader, stripefixture.Sign(failed, testNow, oldSecret, secret))
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeStarted, wantStarts: 1,
		},
		{
			name:     "rotation: signed with neither secret",
			tweak:    func(o *webhook.Options) { o.Secrets = []string{oldSecret, secret} },
			req:      func(t *testing.T) *http.Request { return signed(t, failed, "whsec_third") },
			wantCode: http.StatusBadRequest, wantStatus: webhook.OutcomeBadSignature, wantError: "no signature matches",
		},
		{
			name: "Stripe's test-mode v0 entry beside v1",
			req: func(t *testing.T) *http.Request {
				h := stripefixture.Sign(failed, testNow, secret) + ",v0=" + strings.Repeat("0", 64)
				return withHeader(t, failed, webhook.SignatureHeader, h)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeStarted, wantStarts: 1,
		},
		{
			name: "duplicate timestamps",
			req: func(t *testing.T) *http.Request {
				h := "t=" + ts + "," + stripefixture.Sign(failed, testNow, secret)
				return withHeader(t, failed, webhook.SignatureHeader, h)
			},
			wantCode: http.StatusBadRequest, wantStatus: webhook.OutcomeBadSignature, wantError: "malformed signature header",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, &fakeTemporal{start: tc.start}, tc.tweak)
			req := tc.req(t)
			sentSig := req.Header.Get(webhook.SignatureHeader)
			r := s.do(t, req)
			if r.code != tc.wantCode || r.Status != tc.wantStatus {
				t.Errorf("answer %d %q, want %d %q; body %s", r.code, r.Status, tc.wantCode, tc.wantStatus, r.raw)
			}
			if tc.wantError != "" && r.Error != tc.wantError {
				t.Errorf("error %q, want %q", r.Error, tc.wantError)
			}
			if r.code >= 400 && (r.Error == "" || len(r.Error) > 100) {
				t.Errorf("error %q, want a short reason", r.Error)
			}
			if sentSig != "" && strings.Contains(r.raw, sentSig) {
				t.Errorf("answer %q repeats the signature header", r.raw)
			}
			if n := len(s.temporal.starts()); n != tc.wantStarts {
				t.Errorf("%d workflow starts, want %d", n, tc.wantStarts)
			}
			if tc.check != nil {
				tc.check(t, s, r)
			}
		})
	}
}

// Over a real connection, a body past the limit is refused whether its
// length is announced or not.
func TestBodyLimitOverTheWire(t *testing.T) {
	t.Parallel()
	s := newServer(t, &fakeTemporal{}, nil)
	srv := httptest.NewServer(s.handler)
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name     string
		size     int
		chunked  bool
		wantCode int
	}{
		{"announced, over", maxBody + 1, false, http.StatusRequestEntityTooLarge},
		{"chunked, over", 4 * maxBody, true, http.StatusRequestEntityTooLarge},
		{"announced, at the limit", maxBody, false, http.StatusOK},
		{"chunked, at the limit", maxBody, true, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := padded(t, tc.size)
			req, err := stripefixture.Request(srv.URL+webhook.PathStripe, body, secret, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if tc.chunked {
				// A reader of unknown length makes the client send chunks.
				req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body)))
				req.ContentLength = -1
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.wantCode {
				b, _ := io.ReadAll(resp.Body)
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.wantCode, b)
			}
		})
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		path     string
		health   error
		wantCode int
	}{
		{"healthz", webhook.PathHealthz, nil, http.StatusOK},
		{"healthz does not depend on Temporal", webhook.PathHealthz, serviceerror.NewUnavailable("down"), http.StatusOK},
		{"readyz with Temporal healthy", webhook.PathReadyz, nil, http.StatusOK},
		{"readyz with Temporal down", webhook.PathReadyz, serviceerror.NewUnavailable("down"), http.StatusServiceUnavailable},
		{"readyz with Temporal timing out", webhook.PathReadyz, context.DeadlineExceeded, http.StatusServiceUnavailable},
		{"unknown path", "/nope", nil, http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, &fakeTemporal{health: tc.health}, nil)
			r := s.do(t, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if r.code != tc.wantCode {
				t.Errorf("GET %s = %d, want %d: %s", tc.path, r.code, tc.wantCode, r.raw)
			}
		})
	}
}

// scrape reads /metrics as a Prometheus server would and returns every
// sample by its series, e.g. `dunning_webhook_requests_total{outcome="started"}`.
func scrape(t *testing.T, s *server) map[string]float64 {
	t.Helper()
	r := s.do(t, httptest.NewRequest(http.MethodGet, webhook.PathMetrics, nil))
	if r.code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", r.code)
	}
	samples := map[string]float64{}
	for _, line := range strings.Split(r.raw, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("metrics line %q is not a sample", line)
		}
		samples[line[:i]] = v
	}
	return samples
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	const dupID, downID, unreadableDownID = "evt_1OqMetricsDup0001", "evt_1OqMetricsDown001", "evt_1OqMetricsDown002"
	s := newServer(t, &fakeTemporal{start: func(ctx context.Context, n int, o client.StartWorkflowOptions) error {
		switch o.ID {
		case dupID:
			return alreadyStarted(ctx, n, o)
		case downID, unreadableDownID:
			return unavailable(ctx, n, o)
		}
		return nil
	}}, expectLivemode(true))

	outcomes := []string{
		webhook.OutcomeStarted, webhook.OutcomeDuplicate, webhook.OutcomeIgnored, webhook.OutcomeBadSignature,
		webhook.OutcomeBadEvent, webhook.OutcomeTooLarge, webhook.OutcomeBadContentType, webhook.OutcomeTemporalDown,
		webhook.OutcomeMethodNotAllowed, webhook.OutcomeUnreadable, webhook.OutcomeUnreadableNoID, webhook.OutcomeWrongMode,
	}
	before := scrape(t, s)
	for _, o := range outcomes {
		key := `dunning_webhook_requests_total{outcome="` + o + `"}`
		if v, ok := before[key]; !ok || v != 0 {
			t.Errorf("before any request, %s = %v (present %v), want 0", key, v, ok)
		}
	}
	for _, typ := range append(workflows.HandledEventTypes(), "unknown") {
		key := `dunning_webhook_unreadable_total{type="` + typ + `"}`
		if v, ok := before[key]; !ok || v != 0 {
			t.Errorf("before any request, %s = %v (present %v), want 0", key, v, ok)
		}
	}
	live := func(body []byte) []byte {
		return edited(t, body, func(ev map[string]any) { ev["livemode"] = true })
	}

	send := func(req *http.Request, wantCode int) {
		t.Helper()
		if r := s.do(t, req); r.code != wantCode {
			t.Fatalf("%s %s: %d, want %d: %s", req.Method, req.URL.Path, r.code, wantCode, r.raw)
		}
	}
	for _, typ := range []string{workflows.EventPaymentFailed, workflows.EventInvoicePaid, workflows.EventCustomerUpdated} {
		send(signed(t, live(event(t, typ, stripefixture.Options{})), secret), http.StatusOK)
	}
	send(signed(t, live(event(t, workflows.EventPaymentSucceeded, stripefixture.Options{ID: dupID})), secret), http.StatusOK)
	send(signed(t, live(event(t, workflows.EventPaymentSucceeded, stripefixture.Options{ID: downID})), secret), http.StatusServiceUnavailable)
	// Of the other mode: started, for ops.
	send(signed(t, event(t, workflows.EventInvoicePaid, stripefixture.Options{}), secret), http.StatusOK)
	// Unreadable: started for ops, or, without a usable ID, only counted.
	noObject := func(ev map[string]any) { delete(ev, "data") }
	send(signed(t, edited(t, event(t, workflows.EventInvoicePaid, stripefixture.Options{}), noObject), secret), http.StatusOK)
	send(signed(t, edited(t, event(t, workflows.EventInvoicePaid, stripefixture.Options{ID: unreadableDownID}), noObject), secret), http.StatusServiceUnavailable)
	send(signed(t, []byte(`{"id":"evt_1OqMetricsNoType01"}`), secret), http.StatusOK)
	send(signed(t, []byte(`{"not":"an event"}`), secret), http.StatusOK)
	send(signed(t, event(t, "charge.refunded", stripefixture.Options{}), secret), http.StatusOK)
	send(signed(t, event(t, "charge.refunded", stripefixture.Options{}), secret), http.StatusOK)
	send(signed(t, event(t, "customer.created", stripefixture.Options{}), secret), http.StatusOK)
	body := event(t, workflows.EventInvoicePaid, stripefixture.Options{})
	send(withHeader(t, body, webhook.SignatureHeader, ""), http.StatusBadRequest)
	send(signed(t, body, "whsec_wrong"), http.StatusBadRequest)
	send(signed(t, body, "whsec_wrong_again"), http.StatusBadRequest)
	stale, err := stripefixture.Request(baseURL+webhook.PathStripe, body, secret, testNow.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	send(stale, http.StatusBadRequest)
	send(signed(t, padded(t, maxBody+1), secret), http.StatusRequestEntityTooLarge)
	send(withHeader(t, body, "Content-Type", "text/plain"), http.StatusUnsupportedMediaType)
	send(httptest.NewRequest(http.MethodGet, webhook.PathStripe, nil), http.StatusMethodNotAllowed)
	// Probes and other paths are not webhook requests.
	send(httptest.NewRequest(http.MethodGet, webhook.PathHealthz, nil), http.StatusOK)
	send(httptest.NewRequest(http.MethodGet, webhook.PathReadyz, nil), http.StatusOK)
	send(httptest.NewRequest(http.MethodGet, "/nope", nil), http.StatusNotFound)

	got := scrape(t, s)
	want := map[string]float64{
		`dunning_webhook_requests_total{outcome="started"}`:                                           3,
		`dunning_webhook_requests_total{outcome="duplicate"}`:                                         1,
		`dunning_webhook_requests_total{outcome="ignored"}`:                                           3,
		`dunning_webhook_requests_total{outcome="bad_signature"}`:                                     4,
		`dunning_webhook_requests_total{outcome="bad_event"}`:                                         0,
		`dunning_webhook_requests_total{outcome="unreadable"}`:                                        2,
		`dunning_webhook_requests_total{outcome="unreadable_no_id"}`:                                  1,
		`dunning_webhook_requests_total{outcome="wrong_mode"}`:                                        1,
		`dunning_webhook_requests_total{outcome="too_large"}`:                                         1,
		`dunning_webhook_requests_total{outcome="bad_content_type"}`:                                  1,
		`dunning_webhook_requests_total{outcome="temporal_unavailable"}`:                              2,
		`dunning_webhook_unreadable_total{type="invoice.paid"}`:                                       2,
		`dunning_webhook_unreadable_total{type="unknown"}`:                                            2,
		`dunning_webhook_unreadable_total{type="payment_intent.payment_failed"}`:                      0,
		`dunning_webhook_requests_total{outcome="method_not_allowed"}`:                                1,
		`dunning_webhook_verification_failures_total{reason="missing signature header"}`:              1,
		`dunning_webhook_verification_failures_total{reason="no signature matches"}`:                  2,
		`dunning_webhook_verification_failures_total{reason="signature timestamp outside tolerance"}`: 1,
		`dunning_webhook_duplicates_total`:                                                            1,
		`dunning_webhook_ignored_total{type="charge.refunded"}`:                                       2,
		`dunning_webhook_ignored_total{type="customer.created"}`:                                      1,
		`dunning_webhook_start_seconds_count{result="started"}`:                                       6,
		`dunning_webhook_start_seconds_count{result="duplicate"}`:                                     1,
		`dunning_webhook_start_seconds_count{result="error"}`:                                         2,
		`dunning_webhook_start_seconds_bucket{result="started",le="+Inf"}`:                            6,
	}
	for key, w := range want {
		if v, ok := got[key]; !ok || v != w {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, w)
		}
	}
	var total float64
	for key, v := range got {
		if strings.HasPrefix(key, "dunning_webhook_requests_total{") {
			total += v
		}
	}
	if total != 20 {
		t.Errorf("dunning_webhook_requests_total sums to %v over all outcomes, want the 20 webhook requests sent", total)
	}
	if _, ok := got[`dunning_webhook_start_seconds_sum{result="started"}`]; !ok {
		t.Error("dunning_webhook_start_seconds has no sum for started")
	}
}

func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	const last4 = "4242" // the fixture card's last digits
	s := newServer(t, &fakeTemporal{start: func(ctx context.Context, n int, o client.StartWorkflowOptions) error {
		if n == 3 {
			return unavailable(ctx, n, o)
		}
		return nil
	}}, func(o *webhook.Options) { o.Secrets = []string{oldSecret, secret} })

	opts := func(id string) stripefixture.Options {
		return stripefixture.Options{ID: id, Customer: "cus_PqLogsTest000001", Invoice: "in_1OqLogsTest000001", PaymentIntent: "pi_3OqLogsTest000001"}
	}
	var sigs, fingerprints []string
	fingerprintRE := regexp.MustCompile(`"fingerprint":"([^"]+)"`)
	sendEvent := func(req *http.Request) {
		sigs = append(sigs, req.Header.Get(webhook.SignatureHeader))
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		for _, m := range fingerprintRE.FindAllSubmatch(body, -1) {
			fingerprints = append(fingerprints, string(m[1]))
		}
		s.do(t, req)
	}
	sendEvent(signed(t, event(t, workflows.EventPaymentFailed, opts("evt_1OqLogsTest000001")), secret))
	sendEvent(signed(t, event(t, workflows.EventPaymentMethodAttached, opts("evt_1OqLogsTest000002")), oldSecret))
	sendEvent(signed(t, event(t, workflows.EventSourceExpiring, opts("evt_1OqLogsTest000003")), secret))
	sendEvent(signed(t, event(t, "charge.refunded", opts("evt_1OqLogsTest000004")), secret))
	sendEvent(signed(t, event(t, workflows.EventSourceUpdated, opts("evt_1OqLogsTest000005")), "whsec_attacker"))
	sendEvent(signed(t, []byte(`{"id":"evt_1OqLogsTest000006","object":"event","last4":"`+last4+`"}`), secret))
	stale, err := stripefixture.Request(baseURL+webhook.PathStripe, event(t, workflows.EventSourceDeleted, opts("evt_1OqLogsTest000007")), secret, testNow.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sendEvent(stale)

	logs := s.logs.String()
	// The capture works: the started and rejected events were logged.
	for _, want := range []string{"evt_1OqLogsTest000001", "evt_1OqLogsTest000003", "no signature matches"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q; log:\n%s", want, logs)
		}
	}
	if len(fingerprints) == 0 {
		t.Fatal("the events sent carry no card fingerprint to look for")
	}
	leaks := map[string]string{
		"the signing secret":     secret,
		"the old signing secret": oldSecret,
		"the card's last 4":      last4,
	}
	for _, fp := range fingerprints {
		leaks["the card fingerprint "+fp] = fp
	}
	for name, leak := range leaks {
		if strings.Contains(logs, leak) {
			t.Errorf("log contains %s (%q):\n%s", name, leak, logs)
		}
	}
	for _, sig := range sigs {
		_, v1, _ := strings.Cut(sig, "v1=")
		if strings.Contains(logs, sig) || (len(v1) >= 64 && strings.Contains(logs, v1[:64])) {
			t.Errorf("log contains the Stripe-Signature header %q:\n%s", sig, logs)
		}
	}
}

// Stripe delivers the same event concurrently more often than one would
// think; exactly one delivery starts the workflow and all are answered 200.
func TestConcurrentDuplicateDeliveries(t *testing.T) {
	t.Parallel()
	s := newServer(t, &fakeTemporal{start: firstThenAlreadyStarted}, nil)
	const n = 50
	const id = "evt_1OqConcurrent00001"
	body := event(t, workflows.EventPaymentFailed, stripefixture.Options{ID: id})

	replies := make([]reply, n)
	var wg sync.WaitGroup
	for i := range n {
		req := signed(t, body, secret)
		wg.Go(func() {
			rec := httptest.NewRecorder()
			s.handler.ServeHTTP(rec, req)
			replies[i].code = rec.Code
			replies[i].raw = rec.Body.String()
			_ = json.Unmarshal(rec.Body.Bytes(), &replies[i])
		})
	}
	wg.Wait()

	count := map[string]int{}
	for _, r := range replies {
		if r.code != http.StatusOK {
			t.Errorf("delivery answered %d: %s", r.code, r.raw)
		}
		count[r.Status]++
	}
	if count[webhook.OutcomeStarted] != 1 || count[webhook.OutcomeDuplicate] != n-1 {
		t.Errorf("outcomes %v, want 1 started and %d duplicate", count, n-1)
	}
	calls := s.temporal.starts()
	if len(calls) != n {
		t.Errorf("%d start calls, want %d", len(calls), n)
	}
	for _, c := range calls {
		if c.opts.ID != id {
			t.Errorf("start with workflow ID %q, want %q", c.opts.ID, id)
		}
	}
}

func TestStartOptionsNeverDependOnDelivery(t *testing.T) {
	t.Parallel()
	// Two deliveries of one event produce identical start requests, so
	// that the second meets the first in Temporal.
	body := event(t, workflows.EventInvoicePaid, stripefixture.Options{ID: "evt_1OqSameTwice00001"})
	s := newServer(t, &fakeTemporal{}, nil)
	s.do(t, signed(t, body, secret))
	late, err := stripefixture.Request(baseURL+webhook.PathStripe, body, secret, testNow.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	s.do(t, late)
	calls := s.temporal.starts()
	if len(calls) != 2 {
		t.Fatalf("%d starts, want 2", len(calls))
	}
	a, b := calls[0].opts, calls[1].opts
	if a.ID != b.ID || a.StaticSummary != b.StaticSummary || a.TaskQueue != b.TaskQueue {
		t.Errorf("start options differ between deliveries:\n%+v\n%+v", a, b)
	}
}
