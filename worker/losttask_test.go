package worker_test

// A workflow task lost after its local activities ran: the worker that ran
// them dies (here: the task fails) before the task is recorded, and the
// server hands the task out again; the test fails it where the recovery
// learns that its past-due notice was sent. What the customer and ops were sent by
// the lost task must be what the recorded history says was sent.

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"

	"dunning/e2e"
	"dunning/internal/stripefixture"
	"dunning/internal/testenv"
	"dunning/webhook"
	"dunning/worker"
	"dunning/workflows"
)

// loseTask fails the first workflow task of a recovery in which the
// workflow learnt the result of the activity named activity (local or
// not), right then, once per workflow. before runs first, as the world
// moves on while the task is out.
type loseTask struct {
	interceptor.WorkerInterceptorBase
	activity string
	mu       sync.Mutex
	lost     map[string]bool
	before   map[string]func()
}

func newLoseTask(activity string) *loseTask {
	return &loseTask{activity: activity, lost: map[string]bool{}, before: map[string]func(){}}
}

// once reports whether the task of workflowID is to be lost now, and runs
// what was to happen before.
func (l *loseTask) once(workflowID string) bool {
	l.mu.Lock()
	if l.lost[workflowID] {
		l.mu.Unlock()
		return false
	}
	l.lost[workflowID] = true
	f := l.before[workflowID]
	l.mu.Unlock()
	if f != nil {
		f()
	}
	return true
}

func (l *loseTask) lostFor(workflowID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost[workflowID]
}

func (l *loseTask) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &loseInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, l: l}
}

type loseInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	l *loseTask
}

func (i *loseInbound) Init(out interceptor.WorkflowOutboundInterceptor) error {
	return i.Next.Init(&loseOutbound{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: out}, l: i.l})
}

type loseOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	l *loseTask
}

func (o *loseOutbound) ExecuteLocalActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	return o.losing(ctx, activityType, o.Next.ExecuteLocalActivity(ctx, activityType, args...))
}

func (o *loseOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	return o.losing(ctx, activityType, o.Next.ExecuteActivity(ctx, activityType, args...))
}

func (o *loseOutbound) losing(ctx workflow.Context, activityType string, f workflow.Future) workflow.Future {
	info := workflow.GetInfo(ctx)
	if info.WorkflowType.Name != workflows.PaymentRecoveryWorkflowName || !strings.HasSuffix(activityType, o.l.activity) {
		return f
	}
	return &losingFuture{Future: f, l: o.l, id: info.WorkflowExecution.ID, what: activityType}
}

type losingFuture struct {
	workflow.Future
	l        *loseTask
	id, what string
}

func (f *losingFuture) Get(ctx workflow.Context, out any) error {
	err := f.Future.Get(ctx, out)
	if !workflow.IsReplaying(ctx) && f.l.once(f.id) {
		// A panic fails the workflow task; the server gives it out again.
		panic("test: workflow task lost after " + f.what)
	}
	return err
}

type lostTaskStack struct {
	t       *testing.T
	tmp     *testenv.Temporal
	peers   *e2e.Peers
	lose    *loseTask
	webhook string
}

func startLostTaskStack(t *testing.T) *lostTaskStack {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tmp := testenv.StartTemporal(t)
	peers := e2e.NewPeers("control-secret-for-the-lost-task-test-0123456789", "notice-secret-for-the-lost-task-test-0123456789")
	t.Cleanup(peers.Close)
	env := peers.Env("http://127.0.0.1:1")
	// A retry soon after the first failure, and no suspension within the
	// test.
	env["DUNNING_RETRY_SCHEDULE"] = "3s,1h"
	env["DUNNING_GRACE_PERIOD"] = "2h"
	cfg := tmp.Config(t, env)
	lose := newLoseTask("Notice")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, tmp.Client, cfg, log, worker.WithInterceptors(lose)) }()
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
	return &lostTaskStack{t: t, tmp: tmp, peers: peers, lose: lose, webhook: srv.URL + webhook.PathStripe}
}

// fail delivers a failed payment of intent for customer.
func (s *lostTaskStack) fail(customer, intent string) {
	s.t.Helper()
	body, err := stripefixture.Event(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent})
	if err != nil {
		s.t.Fatal(err)
	}
	req, err := stripefixture.Request(s.webhook, body, e2e.WebhookSecret, time.Now())
	if err != nil {
		s.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("webhook answered %d", resp.StatusCode)
	}
}

// waitFor polls the recovery's status until ok accepts it.
func (s *lostTaskStack) waitFor(customer, what string, ok func(workflows.RecoveryState) bool) workflows.RecoveryState {
	s.t.Helper()
	id := workflows.RecoveryWorkflowID(customer)
	deadline := time.Now().Add(45 * time.Second)
	var last workflows.RecoveryState
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := s.tmp.Client.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
		if err == nil {
			var st workflows.RecoveryState
			if v.Get(&st) == nil {
				last = st
				if ok(st) {
					cancel()
					return st
				}
			}
		}
		cancel()
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("%s: never %s; last state stage %s, actions %+v", id, what, last.Stage, last.Actions)
	return last
}

func (s *lostTaskStack) result(customer string) workflows.RecoveryResult {
	s.t.Helper()
	return recoveryResult(s.t, s.tmp, workflows.RecoveryWorkflowID(customer), 45*time.Second)
}

// sameBodies fails the test when a key reached the mailer or the alert
// webhook with two different bodies: one key, one request.
func (s *lostTaskStack) sameBodies(customer string) {
	s.t.Helper()
	for name, reqs := range map[string][]e2e.Request{
		"mailer":        s.peers.Notices.Requests(func(r e2e.Request) bool { return r.Customer == customer }),
		"alert webhook": s.peers.Alerts.Requests(func(r e2e.Request) bool { return r.Customer == customer }),
	} {
		first := map[string]string{}
		for _, r := range reqs {
			if prev, ok := first[r.Key]; ok && prev != string(r.Body) {
				s.t.Errorf("%s: key %s sent with two bodies:\n%s\n%s", name, r.Key, prev, r.Body)
			}
			first[r.Key] = string(r.Body)
		}
	}
}

func recorded(st workflows.RecoveryState, kind string) int {
	n := 0
	for _, a := range st.Actions {
		if a.Kind == kind {
			n++
		}
	}
	return n
}

// The first failure's workflow task is lost after its past-due notice was
// sent (the mailer took over a second, so the task given out again runs at
// another second). The customer and ops hear of the past due once, and
// what they heard is what the history records.
func TestLostTaskAfterTheNoticeTellsOnce(t *testing.T) {
	s := startLostTaskStack(t)
	customer := stripefixture.NewID("cus")
	id := workflows.RecoveryWorkflowID(customer)
	s.peers.Notices.HangNext(1, 1200*time.Millisecond, e2e.Any)
	s.fail(customer, stripefixture.NewID("pi"))
	st := s.waitFor(customer, "told of the past due", func(st workflows.RecoveryState) bool {
		return recorded(st, "customer notice payment_failed") > 0 && recorded(st, "ops alert (warning)") > 0
	})
	if !s.lose.lostFor(id) {
		t.Fatal("no workflow task was lost: the test did not test anything")
	}
	if n := recorded(st, "customer notice payment_failed"); n != 1 {
		t.Errorf("history records %d past-due notices, want 1", n)
	}
	if got := s.peers.Notices.Kinds(customer)["payment_failed"]; got != 1 {
		t.Errorf("customer got %d distinct past-due notices, want 1: %+v", got, s.peers.Notices.Messages(customer))
	}
	if got := s.peers.Alerts.Kinds(customer)["past_due"]; got != 1 {
		t.Errorf("ops got %d distinct past-due alerts, want 1: %+v", got, s.peers.Alerts.Messages(customer))
	}
	for _, m := range s.peers.Notices.Messages(customer) {
		t.Logf("%s: %d deliveries", m.Key, m.Deliveries)
		if !strings.HasPrefix(m.Key, st.Lifecycle+":") {
			t.Errorf("notice key %s is not of the life the history records (%s)", m.Key, st.Lifecycle)
		}
	}
	s.sameBodies(customer)
	if p := s.peers.Problems(); len(p) > 0 {
		t.Errorf("stand-ins found: %v", p)
	}
}

// The same lost task, and the invoice is paid while it is out: the task
// given out again may find it paid. A customer who was told of the past
// due is told of the recovery too; one who was not told is told nothing.
func TestLostTaskWhileThePaymentLandsLeavesNobodyHalfTold(t *testing.T) {
	s := startLostTaskStack(t)
	customer, intent := stripefixture.NewID("cus"), stripefixture.NewID("pi")
	id := workflows.RecoveryWorkflowID(customer)
	s.lose.mu.Lock()
	s.lose.before[id] = func() { s.peers.Stripe.SetIntentStatus(intent, "succeeded") }
	s.lose.mu.Unlock()
	s.peers.Notices.HangNext(1, 1200*time.Millisecond, e2e.Any)
	s.fail(customer, intent)
	res := s.result(customer)
	if !s.lose.lostFor(id) {
		t.Fatal("no workflow task was lost: the test did not test anything")
	}
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
	notices, alerts := s.peers.Notices.Kinds(customer), s.peers.Alerts.Kinds(customer)
	if notices["payment_failed"] > 1 || alerts["past_due"] > 1 {
		t.Errorf("told of the past due more than once: notices %v alerts %v", notices, alerts)
	}
	if notices["payment_failed"] != notices["payment_recovered"] {
		t.Errorf("notices %v: a customer told of the past due must be told of the recovery, and only then", notices)
	}
	if alerts["past_due"] != alerts["recovered"] {
		t.Errorf("alerts %v: ops told of the past due must be told of the recovery, and only then", alerts)
	}
	s.sameBodies(customer)
	if p := s.peers.Problems(); len(p) > 0 {
		t.Errorf("stand-ins found: %v", p)
	}
}
