// Package e2e runs the real dunning binary, its worker and its webhook as
// separate processes, against a real Temporal dev server and httptest
// stand-ins for Stripe, Amberflo, the control plane, the ops alert webhook
// and the customer-notice mailer. Every test asserts what a user of dunning
// would see: final stages, and each external action applied exactly once.
package e2e

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"dunning/internal/stripeevent"
	"dunning/internal/stripefixture"
	"dunning/internal/testenv"
	"dunning/workflows"
)

// Binary is the dunning binary under test; TestMain builds it.
var Binary string

// Secrets the stack is configured with.
const (
	WebhookSecret = "whsec_e2e_dunning"
	ControlSecret = "cp_e2e_secret_0123456789abcdef012345"
	NoticeSecret  = "notice_e2e_secret_fedcba9876543210fe"
	// PortalSecret signs the one-click links; PortalReturnURL is where the
	// portal sends the customer back.
	PortalSecret    = "portal_e2e_secret_long_enough_to_sign_0001"
	PortalReturnURL = "https://app.example.com/billing"
	TaskQueue       = "dunning-e2e"
)

// Options shape a stack.
type Options struct {
	// Env overrides or adds to the processes' environment; an empty value
	// removes a variable.
	Env map[string]string
	// Persist keeps Temporal's state in a SQLite file, so that
	// StopTemporal and StartTemporal lose nothing.
	Persist bool
	// WorkerBinary is the dunning binary the first worker runs (another
	// release, say); Binary when empty.
	WorkerBinary string
	// AcceptV1Signatures has the control plane and the notice receiver
	// accept the v1 signatures of a release before v2 too, as receivers
	// do during an upgrade.
	AcceptV1Signatures bool
}

// Stack is one running dunning: Temporal, the fakes, a worker process and
// a webhook process.
type Stack struct {
	t   *testing.T
	dir string

	Stripe   *Stripe
	Control  *ControlPlane
	Amberflo *Amberflo
	Alerts   *Alerts
	Notices  *Notices

	env          []string
	webhookBase  string
	temporalAddr string
	dbFile       string
	http         *http.Client

	mu       sync.Mutex
	temporal *testenv.DevServer
	worker   *testenv.Process
	webhook  *testenv.Process
	killed   map[*testenv.Process]bool
}

// Start brings a whole stack up and waits until the webhook is ready and
// the worker polls. Everything stops when the test ends; on failure the
// processes' logs and the fakes' records are printed.
func Start(t *testing.T, o Options) *Stack {
	t.Helper()
	if Binary == "" {
		t.Fatal("the dunning binary was not built (TestMain)")
	}
	s := &Stack{t: t, dir: t.TempDir(), killed: map[*testenv.Process]bool{}}
	t.Cleanup(s.report)

	peers := NewPeers(ControlSecret, NoticeSecret)
	s.Stripe, s.Control, s.Amberflo, s.Alerts, s.Notices = peers.Stripe, peers.Control, peers.Amberflo, peers.Alerts, peers.Notices
	t.Cleanup(peers.Close)
	s.Control.acceptV1, s.Notices.acceptV1 = o.AcceptV1Signatures, o.AcceptV1Signatures

	if o.Persist {
		s.dbFile = filepath.Join(s.dir, "temporal.db")
	}
	s.StartTemporal()
	// Registered after the dev server's own stop, so it runs before it:
	// every history of the test is scanned while the server still runs.
	t.Cleanup(s.scanHistories)

	webhookAddr := testenv.FreeAddress(t)
	s.webhookBase = "http://" + webhookAddr
	s.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	t.Cleanup(s.http.CloseIdleConnections)

	env := peers.Env(s.webhookBase)
	maps.Copy(env, map[string]string{
		"TEMPORAL_ADDRESS":             s.temporalAddr,
		"TEMPORAL_NAMESPACE":           "default",
		"TEMPORAL_TASK_QUEUE":          TaskQueue,
		"HTTP_ADDR":                    webhookAddr,
		"DUNNING_RETRY_SCHEDULE":       "1s,2s",
		"DUNNING_GRACE_PERIOD":         "4s",
		"DUNNING_DEPROVISION_AFTER":    "3s",
		"DUNNING_CARD_UPDATE_DEBOUNCE": "1s",
		"RECONCILE_INTERVAL":           "0",
		"LOG_FORMAT":                   "json",
		"LOG_LEVEL":                    "info",
	})
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	// The processes read Temporal's default profile file under the user's
	// configuration folder, as the CLI does: an empty one of the test's
	// own keeps a developer's profiles out of the stack.
	env["XDG_CONFIG_HOME"] = filepath.Join(s.dir, "config")
	for k, v := range o.Env {
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		s.env = append(s.env, k+"="+env[k])
	}

	s.StartWorkerFrom(cmp.Or(o.WorkerBinary, Binary))
	s.StartWebhook()
	return s
}

func (s *Stack) peers() []*peer {
	return []*peer{s.Stripe.peer, s.Control.peer, s.Amberflo.peer, s.Alerts.peer, s.Notices.peer}
}

// Client is a Temporal client on the current server.
func (s *Stack) Client() client.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.temporal.Client
}

// StartTemporal starts the dev server: on a free address the first time,
// then again on the same one (and, with Persist, on the same database).
func (s *Stack) StartTemporal() {
	s.t.Helper()
	d := testenv.StartDevServer(s.t, s.temporalAddr, testenv.TemporalOptions{
		DBFilename: s.dbFile, LogPath: filepath.Join(s.dir, "temporal.log")})
	s.mu.Lock()
	s.temporal, s.temporalAddr = d, d.Address
	s.mu.Unlock()
}

// StopTemporal stops the dev server.
func (s *Stack) StopTemporal() {
	s.mu.Lock()
	d := s.temporal
	s.mu.Unlock()
	d.Stop()
}

// StartWorker starts a worker process and waits until it polls its task
// queue. It becomes the worker KillWorker kills; one started before keeps
// running.
func (s *Stack) StartWorker() *testenv.Process {
	s.t.Helper()
	return s.StartWorkerFrom(Binary)
}

// StartWorkerFrom starts a worker process of the dunning binary bin and
// waits until it polls its task queue.
func (s *Stack) StartWorkerFrom(bin string) *testenv.Process {
	s.t.Helper()
	p := testenv.StartProcess(s.t, "worker", filepath.Join(s.dir, "worker.log"), s.env, bin, "worker")
	s.mu.Lock()
	s.worker = p
	s.mu.Unlock()
	s.waitPolling(p, time.Minute)
	return p
}

// KillWorker kills the worker process with SIGKILL.
func (s *Stack) KillWorker() {
	s.t.Helper()
	s.mu.Lock()
	p := s.worker
	s.mu.Unlock()
	s.Kill(p)
}

// KillWorkerTarget is the worker KillWorker would kill now.
func (s *Stack) KillWorkerTarget() *testenv.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.worker
}

// Kill kills one worker process (of StartWorker) with SIGKILL.
func (s *Stack) Kill(p *testenv.Process) {
	s.t.Helper()
	s.mu.Lock()
	s.killed[p] = true
	s.mu.Unlock()
	if err := p.Kill(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("worker (pid %d) killed with SIGKILL", p.Pid())
}

// StopWorker asks the worker process to stop with SIGTERM, as Docker
// does, and returns it without waiting: the test watches it exit.
func (s *Stack) StopWorker() *testenv.Process {
	s.t.Helper()
	s.mu.Lock()
	p := s.worker
	s.killed[p] = true
	s.mu.Unlock()
	if err := p.Send(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	s.t.Logf("worker (pid %d) sent SIGTERM", p.Pid())
	return p
}

// StartWebhook starts a webhook process and waits until /readyz is 200.
func (s *Stack) StartWebhook() {
	s.t.Helper()
	p := testenv.StartProcess(s.t, "webhook", filepath.Join(s.dir, "webhook.log"), s.env, Binary, "webhook")
	s.mu.Lock()
	s.webhook = p
	s.mu.Unlock()
	s.WaitReady(time.Minute)
}

// WaitReady waits until the webhook answers GET /readyz with 200.
func (s *Stack) WaitReady(within time.Duration) {
	s.t.Helper()
	s.Eventually("webhook ready", within, func() bool {
		resp, err := s.http.Get(s.webhookBase + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func (s *Stack) waitPolling(p *testenv.Process, within time.Duration) {
	s.t.Helper()
	prefix := fmt.Sprintf("%d@", p.Pid())
	s.Eventually("worker polling "+TaskQueue, within, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
			resp, err := s.Client().DescribeTaskQueue(ctx, TaskQueue, typ)
			if err != nil {
				return false
			}
			polling := false
			for _, pi := range resp.GetPollers() {
				polling = polling || strings.HasPrefix(pi.GetIdentity(), prefix)
			}
			if !polling {
				return false
			}
		}
		return true
	})
}

// checkAlive fails the test when the worker or the webhook exited without
// the test killing it.
func (s *Stack) checkAlive() {
	s.t.Helper()
	s.mu.Lock()
	procs := []*testenv.Process{s.worker, s.webhook}
	killed := maps.Clone(s.killed)
	s.mu.Unlock()
	for _, p := range procs {
		if p != nil && !p.Running() && !killed[p] {
			s.t.Fatalf("the %s process exited on its own: %v", p.Name, p.Err())
		}
	}
}

// Eventually polls cond every 100ms until it holds, failing the test
// after within.
func (s *Stack) Eventually(what string, within time.Duration, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		s.checkAlive()
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: not so within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---- events

// Event is one Stripe event: its body, and what dunning will read of it.
type Event struct {
	ID       string
	Type     string
	Customer string
	Body     []byte
	Parsed   workflows.StripeEvent
}

// NewEvent builds a real-shaped event of typ. It has happened at Stripe:
// the fake Stripe's state follows it at once, whether or not it is ever
// delivered.
func (s *Stack) NewEvent(typ string, o stripefixture.Options) *Event {
	s.t.Helper()
	if o.ID == "" {
		o.ID = stripefixture.NewID("evt")
	}
	body, err := stripefixture.Event(typ, o)
	if err != nil {
		s.t.Fatal(err)
	}
	ev, err := stripeevent.Parse(body)
	if err != nil {
		s.t.Fatalf("the fixture's %s does not parse: %v", typ, err)
	}
	s.Stripe.Observe(ev)
	s.Stripe.Happened(body)
	return &Event{ID: ev.ID, Type: typ, Customer: ev.CustomerID, Body: body, Parsed: ev}
}

// Post delivers ev once, signed now, and returns the answer's status and
// its "status" field (started, duplicate, …).
func (s *Stack) Post(ev *Event) (int, string, error) {
	req, err := stripefixture.Request(s.webhookBase+"/webhooks/stripe", ev.Body, WebhookSecret, time.Now())
	if err != nil {
		return 0, "", err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var answer struct {
		Status string `json:"status"`
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &answer)
	return resp.StatusCode, answer.Status, nil
}

// Deliver delivers ev the way Stripe does: again, re-signed, with
// backoff, until it is answered 200 or within has passed. It returns every
// status answered (0 for no answer).
func (s *Stack) Deliver(ev *Event, within time.Duration) []int {
	var got []int
	deadline := time.Now().Add(within)
	delay := 500 * time.Millisecond
	for {
		status, _, _ := s.Post(ev)
		got = append(got, status)
		if status == http.StatusOK || time.Now().Add(delay).After(deadline) {
			return got
		}
		time.Sleep(delay)
		delay = min(2*delay, 4*time.Second)
	}
}

// Send builds an event and delivers it once; the webhook must answer 200.
func (s *Stack) Send(typ string, o stripefixture.Options) *Event {
	s.t.Helper()
	ev := s.NewEvent(typ, o)
	status, outcome, err := s.Post(ev)
	if err != nil || status != http.StatusOK {
		s.t.Fatalf("deliver %s %s: %d %s %v", typ, ev.ID, status, outcome, err)
	}
	return ev
}

// ---- workflows

// Stage is the RecoveryStage search attribute of the customer's recovery,
// whether it runs, and "" when there is none.
func (s *Stack) Stage(customer string) (workflows.Stage, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	desc, err := s.Client().DescribeWorkflow(ctx, workflows.RecoveryWorkflowID(customer), "")
	if err != nil {
		return "", false
	}
	st, _ := desc.TypedSearchAttributes.GetKeyword(workflows.RecoveryStageKey)
	return workflows.Stage(st), desc.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}

// WaitStage waits until the customer's recovery shows stage; it fails at
// once if the recovery ended in another one.
func (s *Stack) WaitStage(customer string, stage workflows.Stage, within time.Duration) {
	s.t.Helper()
	s.Eventually(fmt.Sprintf("%s in stage %s", customer, stage), within, func() bool {
		got, running := s.Stage(customer)
		if got != stage && got != "" && !running {
			s.t.Fatalf("%s's recovery ended in stage %s, want %s", customer, got, stage)
		}
		return got == stage
	})
}

// Recovery waits for the customer's recovery to end and returns how.
func (s *Stack) Recovery(customer string, within time.Duration) workflows.RecoveryResult {
	s.t.Helper()
	deadline := time.Now().Add(within)
	s.Eventually("recovery of "+customer+" started", within, func() bool {
		_, err := s.Client().DescribeWorkflow(context.Background(), workflows.RecoveryWorkflowID(customer), "")
		return err == nil
	})
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var res workflows.RecoveryResult
		err := s.Client().GetWorkflow(ctx, workflows.RecoveryWorkflowID(customer), "").Get(ctx, &res)
		cancel()
		if err == nil {
			return res
		}
		if !errors.Is(err, context.DeadlineExceeded) && !isTransient(err) {
			s.t.Fatalf("recovery of %s: %v", customer, err)
		}
		s.checkAlive()
		if time.Now().After(deadline) {
			st := s.Status(customer)
			var open []string
			for _, in := range st.Intents {
				if in.State == workflows.IntentOpen {
					open = append(open, in.ID)
				}
			}
			s.t.Fatalf("recovery of %s did not end within %s: stage %s, open intents %v, paused %v, next %q at %s",
				customer, within, st.Stage, open, st.Paused, st.Next.Kind, st.Next.At.Format(time.RFC3339))
		}
	}
}

func isTransient(err error) bool {
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	return errors.As(err, &unavailable) || errors.As(err, &deadline)
}

// Status queries the customer's recovery for its whole state.
func (s *Stack) Status(customer string) workflows.RecoveryState {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v, err := s.Client().QueryWorkflow(ctx, workflows.RecoveryWorkflowID(customer), "", workflows.StatusQuery)
	if err != nil {
		s.t.Fatalf("query status of %s: %v", customer, err)
	}
	var st workflows.RecoveryState
	if err := v.Get(&st); err != nil {
		s.t.Fatal(err)
	}
	return st
}

// EventResult waits for an event's workflow to end and returns its result.
func (s *Stack) EventResult(eventID string, within time.Duration) workflows.StripeEventResult {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var res workflows.StripeEventResult
	if err := s.Client().GetWorkflow(ctx, workflows.EventWorkflowID(eventID), "").Get(ctx, &res); err != nil {
		s.t.Fatalf("event workflow %s: %v", eventID, err)
	}
	return res
}

// ---- what the peers saw

// AnyCount in an Expect accepts any number, none included.
const AnyCount = -1

// Expect is what one customer's peers must have seen: each action applied
// exactly the number of times given (by distinct idempotency key); kinds
// not listed must not have happened at all.
type Expect struct {
	Control map[string]int // suspend, resume, deprovision
	Notices map[string]int // notice type
	Alerts  map[string]int // alert kind
	Charges map[string]int // by intent: confirms that charged the card
	// Deactivations counts the Amberflo customer disabled; each must
	// also have moved it to OFFBOARDED.
	Deactivations int
}

// Check compares what the peers saw for the customer with e.
func (s *Stack) Check(customer string, e Expect) {
	s.t.Helper()
	control := map[string]int{}
	for _, a := range s.Control.Applied(customer) {
		control[a.Action]++
	}
	s.compare(customer, "control-plane actions", control, e.Control)
	s.compare(customer, "customer notices", s.Notices.Kinds(customer), e.Notices)
	s.compare(customer, "ops alerts", s.Alerts.Kinds(customer), e.Alerts)
	for intent, want := range e.Charges {
		if got := s.Stripe.Charges(intent); got != want {
			s.t.Errorf("%s: intent %s charged %d times, want %d; confirms:\n%s", customer, intent, got, want, lines(s.Stripe.Confirms(intent)))
		}
	}
	if got := s.Amberflo.Deactivations(customer); got != e.Deactivations {
		s.t.Errorf("%s: Amberflo customer deactivated %d times, want %d", customer, got, e.Deactivations)
	}
	if got := s.Amberflo.Offboardings(customer); got != e.Deactivations {
		s.t.Errorf("%s: Amberflo customer moved to OFFBOARDED %d times, want %d (stage now %q)", customer, got, e.Deactivations, s.Amberflo.Stage(customer))
	}
}

func (s *Stack) compare(customer, what string, got, want map[string]int) {
	s.t.Helper()
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if w, ok := want[k]; !ok && got[k] != 0 {
			s.t.Errorf("%s: %s: %d %q, want none", customer, what, got[k], k)
		} else if ok && w != AnyCount && got[k] != w {
			s.t.Errorf("%s: %s: %d %q, want %d", customer, what, got[k], k, w)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if _, ok := got[k]; !ok && want[k] > 0 {
			s.t.Errorf("%s: %s: no %q, want %d", customer, what, k, want[k])
		}
	}
}

func lines[T fmt.Stringer](xs []T) string {
	var b strings.Builder
	for _, x := range xs {
		b.WriteString("    ")
		b.WriteString(x.String())
		b.WriteString("\n")
	}
	return b.String()
}

// report checks that no peer saw a request it would have rejected, and on
// failure prints the processes' logs and the peers' records.
func (s *Stack) report() {
	for _, p := range s.peers() {
		for _, pr := range p.Problems() {
			s.t.Errorf("%s rejected a request: %s", p.name, pr)
		}
	}
	if !s.t.Failed() {
		return
	}
	for _, f := range []struct {
		name  string
		lines int
	}{{"worker", 60}, {"webhook", 40}, {"temporal", 15}} {
		s.t.Logf("---- last lines of %s.log:\n%s", f.name, tail(filepath.Join(s.dir, f.name+".log"), f.lines))
	}
	for _, p := range s.peers() {
		reqs := p.Requests(nil)
		if n := len(reqs); n > 60 {
			s.t.Logf("---- %s: %d requests, the last 60:", p.name, n)
			reqs = reqs[n-60:]
		} else {
			s.t.Logf("---- %s: %d requests:", p.name, n)
		}
		s.t.Log("\n" + lines(reqs))
	}
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var ring []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if len(line) > 600 {
			line = line[:600] + "…"
		}
		ring = append(ring, line)
		if len(ring) > n {
			ring = ring[1:]
		}
	}
	return strings.Join(ring, "\n")
}
