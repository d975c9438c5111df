package deploy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	tlog "go.temporal.io/sdk/log"

	"dunning/config"
	"dunning/controlplane"
	"dunning/internal/devstripe"
	"dunning/internal/sig"
	"dunning/internal/stripeevent"
	"dunning/internal/stripefixture"
	"dunning/internal/testenv"
	"dunning/worker"
	"dunning/workflows"
)

// The cluster run's secrets and timings. A lifecycle takes about a minute:
// retries 1s and 2s after the failure, suspension at 30s, deprovisioning
// 10s later.
const (
	clusterTaskQueue   = "dunning"
	clusterStripeKey   = "sk_test_cluster"
	clusterSecretNew   = "whsec_cluster_new"
	clusterSecretOld   = "whsec_cluster_old"
	clusterControlKey  = "cp_cluster_secret_0123456789abcdef01"
	clusterGrace       = 30 * time.Second
	clusterDeprovision = 10 * time.Second
)

// TestCluster is the production profile for real, run by `make
// test-cluster` (deploy/cluster.sh) against a Temporal cluster on
// PostgreSQL, its frontend taking mutual TLS only, that
// deploy/setup-namespace.sh has set up: two worker and two
// webhook processes of the real binary, a set of customers driven to every
// end of the recovery lifecycle, and one worker killed (SIGKILL) midway.
// Every recovery must reach its final stage, every control-plane action and
// every charge must happen exactly once, and the customers must be found
// through PostgreSQL visibility the way the runbook finds them.
func TestCluster(t *testing.T) {
	address := os.Getenv("DUNNING_CLUSTER_ADDRESS")
	if address == "" {
		t.Skip("runs under `make test-cluster`, against a Temporal cluster on PostgreSQL (DUNNING_CLUSTER_ADDRESS)")
	}
	h := newHarness(t, address, os.Getenv("DUNNING_CLUSTER_NAMESPACE"))

	// The frontend takes mutual TLS only: dunning's certificate gets in
	// (h.client), a client without one, or with one of another CA, or
	// without TLS, does not.
	if h.cfg.TemporalSecurity() != "mtls" {
		t.Fatalf("the cluster's clients connect with %s; make test-cluster hands them a client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH)", h.cfg.TemporalSecurity())
	}
	h.refused("a client without a certificate", withoutCertificate(h.cfg.Temporal))
	strangerCert, strangerKey := strangerCertificate(t)
	h.refused("a client with a certificate of another CA", withCertificate(h.cfg.Temporal, strangerCert, strangerKey))
	h.refused("a client without TLS", withoutTLS(h.cfg.Temporal))

	// The namespace as deploy/setup-namespace.sh left it: what the code
	// needs, on a real server.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	missing, err := worker.MissingSearchAttributes(ctx, h.client, h.namespace)
	if err != nil || len(missing) > 0 {
		t.Fatalf("namespace %s lacks search attributes %v (%v)", h.namespace, missing, err)
	}
	ns, err := h.client.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: h.namespace})
	if err != nil {
		t.Fatal(err)
	}
	if r := ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(); r < config.MinRetention {
		t.Fatalf("namespace %s keeps closed workflows %s; dunning needs at least %s", h.namespace, r, config.MinRetention)
	}

	workers := []*process{h.startWorker("worker-1"), h.startWorker("worker-2")}
	webhooks := []*process{h.startWebhook("webhook-1"), h.startWebhook("webhook-2")}

	// Customers, each driven to one end of the lifecycle.
	var lives []*life
	for range 3 {
		for _, k := range []*lifeKind{paidKind, cardKind, waivedKind, resumedKind, deprovisionedKind} {
			lives = append(lives, &life{kind: k, customer: stripefixture.NewID("cus"), intent: stripefixture.NewID("pi")})
		}
	}
	began := time.Now()
	for _, l := range lives {
		h.deliver(workflows.EventPaymentFailed, stripefixture.Options{Customer: l.customer, ObjectID: l.intent})
	}
	// Midway: every recovery past due and through its scheduled retries
	// (declined: the card on file fails), with no activity in flight.
	for _, l := range lives {
		h.eventually(l.customer+" through its two retries", 90*time.Second, func() bool {
			st, ok := h.status(l.customer)
			return ok && st.Stage == workflows.StagePastDue && st.RetriesDone == 2 && !h.activityPending(l.customer)
		})
	}
	if since := time.Since(began); since > clusterGrace-12*time.Second {
		t.Fatalf("the recoveries took %s to get past their retries; too close to the %s grace period to go on", since, clusterGrace)
	}

	// Kill the worker that holds some of them, as a crash would.
	victim := workers[0]
	held := h.heldBy(lives, victim)
	if len(held) == 0 {
		victim, held = workers[1], h.heldBy(lives, workers[1])
	}
	if len(held) == 0 {
		t.Fatal("neither worker has run a recovery: the kill would test nothing")
	}
	victim.kill()
	t.Logf("killed %s (pid %d, SIGKILL), which ran %d of %d recoveries", victim.name, victim.pid(), len(held), len(lives))

	// What each customer does next, handled by the surviving worker.
	for _, l := range lives {
		switch l.kind {
		case paidKind:
			h.deliver(workflows.EventPaymentSucceeded, stripefixture.Options{Customer: l.customer, ObjectID: l.intent})
		case cardKind:
			h.deliver(workflows.EventPaymentMethodAttached, stripefixture.Options{Customer: l.customer, ObjectID: stripefixture.NewID("pm")})
		case waivedKind:
			// As the runbook does it: the temporal CLI, pointed at the
			// cluster by its environment.
			out := h.cli("workflow", "update", "execute", "--workflow-id", workflows.RecoveryWorkflowID(l.customer),
				"--name", workflows.ControlWaive, "--input", `{"reason": "goodwill credit", "operator": "test-cluster"}`)
			if !strings.Contains(out, `"accepted":true`) && !strings.Contains(out, `"accepted": true`) {
				t.Errorf("waive %s: the update was not accepted:\n%s", l.customer, out)
			}
		}
	}
	for _, l := range lives {
		if l.kind == resumedKind {
			h.eventually(l.customer+" suspended", 90*time.Second, func() bool {
				st, ok := h.status(l.customer)
				return ok && st.Stage == workflows.StageSuspended
			})
			h.deliver(workflows.EventPaymentSucceeded, stripefixture.Options{Customer: l.customer, ObjectID: l.intent})
		}
	}

	// Every recovery ends where it should, each action exactly once.
	for _, l := range lives {
		res := h.result(l.customer, 3*time.Minute)
		if res.Stage != l.kind.final {
			t.Errorf("%s (%s): recovery ended %s (%s), want %s", l.customer, l.kind.name, res.Stage, res.Summary, l.kind.final)
		}
		for _, action := range []string{"suspend", "resume", "deprovision"} {
			if got, want := h.control.count(l.customer, action), l.kind.control[action]; got != want {
				t.Errorf("%s (%s): control plane applied %s %d times, want %d", l.customer, l.kind.name, action, got, want)
			}
		}
		if got, want := h.stripe.charges(l.intent), l.kind.charges; got != want {
			t.Errorf("%s (%s): intent %s charged %d times, want %d", l.customer, l.kind.name, l.intent, got, want)
		}
	}
	for _, p := range slices.Concat(h.control.problems(), h.stripe.problems()) {
		t.Error(p)
	}

	// The runbook's query finds each customer's recovery, in its final
	// stage, and every event, in PostgreSQL visibility.
	for _, l := range lives {
		query := fmt.Sprintf("%s = '%s'", workflows.StripeCustomerIDKey.GetName(), l.customer)
		h.eventually("visibility of "+l.customer, time.Minute, func() bool {
			ids := h.list(query + fmt.Sprintf(" AND %s = '%s'", workflows.RecoveryStageKey.GetName(), l.kind.final))
			if !slices.Contains(ids, workflows.RecoveryWorkflowID(l.customer)) {
				return false
			}
			all := h.list(query)
			for _, ev := range h.events[l.customer] {
				if !slices.Contains(all, workflows.EventWorkflowID(ev)) {
					return false
				}
			}
			return true
		})
	}

	// Everything still running stops cleanly when asked.
	for _, p := range slices.Concat(workers, webhooks) {
		if p == victim {
			continue
		}
		if err := p.stop(20 * time.Second); err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d recoveries to their final stage in %s, %d deliveries", len(lives), time.Since(began).Round(time.Second), h.deliveries)
}

// ---- lifecycles

type lifeKind struct {
	name    string
	final   workflows.Stage
	control map[string]int
	charges int
}

var (
	paidKind          = &lifeKind{name: "pays", final: workflows.StageRecovered}
	cardKind          = &lifeKind{name: "new card", final: workflows.StageRecovered, charges: 1}
	waivedKind        = &lifeKind{name: "waived", final: workflows.StageWaived}
	resumedKind       = &lifeKind{name: "pays while suspended", final: workflows.StageRecovered, control: map[string]int{"suspend": 1, "resume": 1}}
	deprovisionedKind = &lifeKind{name: "never pays", final: workflows.StageDeprovisioned, control: map[string]int{"suspend": 1, "deprovision": 1}}
)

type life struct {
	kind     *lifeKind
	customer string
	intent   string
}

// ---- harness

type harness struct {
	t         *testing.T
	cfg       config.Config // the processes' configuration
	client    client.Client
	address   string
	namespace string
	bin       string
	logs      string
	env       []string
	stripe    *fakeStripe
	control   *fakeControl
	http      *http.Client
	hooks     []string // webhook base URLs
	procs     []*process

	mu         sync.Mutex
	events     map[string][]string // event IDs by customer
	deliveries int
}

func newHarness(t *testing.T, address, namespace string) *harness {
	t.Helper()
	if namespace == "" {
		namespace = "dunning"
	}
	logs := os.Getenv("DUNNING_CLUSTER_LOGS")
	if logs == "" {
		logs = t.TempDir()
	}
	h := &harness{t: t, address: address, namespace: namespace, logs: logs,
		events: map[string][]string{}, http: &http.Client{Timeout: 30 * time.Second}}
	h.bin = os.Getenv("DUNNING_BIN")
	if h.bin == "" {
		h.bin = filepath.Join(t.TempDir(), "dunning")
		if out, err := exec.Command("go", "build", "-o", h.bin, "../cmd/dunning").CombinedOutput(); err != nil {
			t.Fatalf("build dunning: %v\n%s", err, out)
		}
	}

	h.stripe = newFakeStripe(t)
	h.control = newFakeControl(t)
	env := map[string]string{
		"TEMPORAL_ADDRESS":             address,
		"TEMPORAL_NAMESPACE":           namespace,
		"TEMPORAL_TASK_QUEUE":          clusterTaskQueue,
		"TEMPORAL_NAMESPACE_RETENTION": "168h",
		"STRIPE_WEBHOOK_SECRET":        clusterSecretNew + "," + clusterSecretOld,
		"STRIPE_API_KEY":               clusterStripeKey,
		"STRIPE_API_BASE_URL":          h.stripe.srv.URL,
		"CONTROL_PLANE_URL":            h.control.srv.URL + "/api/v1",
		"CONTROL_PLANE_SECRET":         clusterControlKey,
		"DUNNING_RETRY_SCHEDULE":       "1s,2s",
		"DUNNING_GRACE_PERIOD":         clusterGrace.String(),
		"DUNNING_DEPROVISION_AFTER":    clusterDeprovision.String(),
		"DUNNING_CARD_UPDATE_DEBOUNCE": "500ms",
		"RECONCILE_INTERVAL":           "0",
		"LOG_FORMAT":                   "json",
	}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	// The connection's security (TEMPORAL_TLS_*: dunning's client
	// certificate), as cluster.sh hands it over, for every process and
	// for this test's own client, which reads it as the processes do.
	for _, k := range config.TemporalConnectionVars {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("the processes' configuration:\n%v", err)
	}
	h.cfg = cfg
	opts, err := cfg.TemporalClientOptions()
	if err != nil {
		t.Fatal(err)
	}
	opts.Logger = tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.client, err = client.Dial(opts)
	if err != nil {
		t.Fatalf("connect to the cluster at %s (%s): %v", address, cfg.TemporalSecurity(), err)
	}
	t.Cleanup(h.client.Close)
	for k, v := range env {
		h.env = append(h.env, k+"="+v)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range h.procs {
				t.Logf("---- the end of %s:\n%s", p.logPath, tail(p.logPath, 30))
			}
		}
	})
	return h
}

func (h *harness) startWorker(name string) *process {
	h.t.Helper()
	metrics := testenv.FreeAddress(h.t)
	p := h.start(name, "WORKER_METRICS_ADDR="+metrics, "worker")
	// Ready as its container health check sees it, and polling.
	h.eventually(name+" healthy", time.Minute, func() bool {
		return exec.Command(h.bin, "healthcheck", "--url", "http://"+metrics+"/metrics").Run() == nil
	})
	h.eventually(name+" polling "+clusterTaskQueue, time.Minute, func() bool { return h.polling(p) })
	return p
}

func (h *harness) startWebhook(name string) *process {
	h.t.Helper()
	addr := testenv.FreeAddress(h.t)
	p := h.start(name, "HTTP_ADDR="+addr, "webhook")
	h.eventually(name+" ready", time.Minute, func() bool {
		resp, err := h.http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	h.hooks = append(h.hooks, "http://"+addr)
	return p
}

func (h *harness) start(name, extraEnv, command string) *process {
	h.t.Helper()
	logPath := filepath.Join(h.logs, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		h.t.Fatal(err)
	}
	cmd := exec.Command(h.bin, command)
	cmd.Env = append(slices.Clone(h.env), extraEnv)
	cmd.Stdout, cmd.Stderr = f, f
	// Gone with the test, however the test ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		h.t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	h.procs = append(h.procs, p)
	h.t.Cleanup(p.kill)
	return p
}

// polling reports whether p polls the task queue for workflow and
// activity tasks. SDK identities start with the process ID.
func (h *harness) polling(p *process) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
		resp, err := h.client.DescribeTaskQueue(ctx, clusterTaskQueue, typ)
		if err != nil {
			return false
		}
		found := false
		for _, pi := range resp.GetPollers() {
			found = found || strings.HasPrefix(pi.GetIdentity(), strconv.Itoa(p.pid())+"@")
		}
		if !found {
			return false
		}
	}
	return true
}

// heldBy lists the customers whose recovery p ran the last workflow task
// of: their next task is stuck on p's sticky queue until the server gives
// up on it and hands it to the other worker, which replays the history.
func (h *harness) heldBy(lives []*life, p *process) []string {
	var held []string
	for _, l := range lives {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		iter := h.client.GetWorkflowHistory(ctx, workflows.RecoveryWorkflowID(l.customer), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		last := ""
		for iter.HasNext() {
			ev, err := iter.Next()
			if err != nil {
				break
			}
			if a := ev.GetWorkflowTaskCompletedEventAttributes(); a != nil {
				last = a.GetIdentity()
			}
		}
		cancel()
		if strings.HasPrefix(last, strconv.Itoa(p.pid())+"@") {
			held = append(held, l.customer)
		}
	}
	return held
}

func (h *harness) eventually(what string, within time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		for _, p := range h.procs {
			if !p.killed && !p.running() {
				h.t.Fatalf("%s exited on its own (%v); see %s", p.name, p.err, p.logPath)
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: not so within %s", what, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// deliver builds a real-shaped event that has happened at Stripe and
// delivers it as Stripe would: to one webhook replica, signed with one of
// the two secrets of a rotation, and then once more to the other replica,
// which must recognise the duplicate.
func (h *harness) deliver(typ string, o stripefixture.Options) {
	h.t.Helper()
	o.ID = stripefixture.NewID("evt")
	body, err := stripefixture.Event(typ, o)
	if err != nil {
		h.t.Fatal(err)
	}
	ev, err := stripeevent.Parse(body)
	if err != nil {
		h.t.Fatal(err)
	}
	h.stripe.dev.Observe(ev)
	h.mu.Lock()
	n := h.deliveries
	h.deliveries += 2
	h.events[o.Customer] = append(h.events[o.Customer], ev.ID)
	h.mu.Unlock()
	k := n / 2 // this event's number: every pairing of replica and secret comes up
	for i, want := range []string{"started", "duplicate"} {
		secret := []string{clusterSecretNew, clusterSecretOld}[(k/2+i)%2]
		url := h.hooks[(k+i)%len(h.hooks)] + "/webhooks/stripe"
		req, err := stripefixture.Request(url, body, secret, time.Now())
		if err != nil {
			h.t.Fatal(err)
		}
		resp, err := h.http.Do(req)
		if err != nil {
			h.t.Fatalf("deliver %s %s to %s: %v", typ, ev.ID, url, err)
		}
		var answer struct {
			Status string `json:"status"`
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_ = json.Unmarshal(raw, &answer)
		if resp.StatusCode != http.StatusOK || answer.Status != want {
			h.t.Fatalf("deliver %s %s to %s: %d %s, want 200 %s", typ, ev.ID, url, resp.StatusCode, raw, want)
		}
	}
}

// status queries a customer's recovery; false while it cannot be read.
func (h *harness) status(customer string) (workflows.RecoveryState, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st workflows.RecoveryState
	v, err := h.client.QueryWorkflow(ctx, workflows.RecoveryWorkflowID(customer), "", workflows.StatusQuery)
	if err != nil || v.Get(&st) != nil {
		return st, false
	}
	return st, true
}

func (h *harness) activityPending(customer string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := h.client.DescribeWorkflow(ctx, workflows.RecoveryWorkflowID(customer), "")
	return err != nil || len(d.RawResponse.GetPendingActivities()) > 0
}

// result waits for a customer's recovery to end.
func (h *harness) result(customer string, within time.Duration) workflows.RecoveryResult {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var res workflows.RecoveryResult
	if err := h.client.GetWorkflow(ctx, workflows.RecoveryWorkflowID(customer), "").Get(ctx, &res); err != nil {
		st, _ := h.status(customer)
		h.t.Fatalf("recovery of %s did not end within %s: %v (stage %s, next %s at %s)", customer, within, err, st.Stage, st.Next.Kind, st.Next.At)
	}
	return res
}

func (h *harness) list(query string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := h.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: h.namespace, Query: query})
	if err != nil {
		h.t.Fatalf("list %q: %v", query, err)
	}
	var ids []string
	for _, e := range resp.GetExecutions() {
		ids = append(ids, e.GetExecution().GetWorkflowId())
	}
	return ids
}

// cli runs the temporal CLI (TEMPORAL_CLI) against the cluster, through
// its environment variables as the runbook does, with JSON output.
func (h *harness) cli(args ...string) string {
	h.t.Helper()
	bin := os.Getenv("TEMPORAL_CLI")
	if bin == "" {
		h.t.Fatal("TEMPORAL_CLI is not set (make test-cluster sets it)")
	}
	cmd := exec.Command(bin, append(args, "--output", "json")...)
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+h.address, "TEMPORAL_NAMESPACE="+h.namespace)
	out, err := cmd.CombinedOutput()
	if err != nil {
		h.t.Fatalf("temporal %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ---- mutual TLS

// refused dials the cluster with prof and fails unless the frontend
// refuses it. prof is the processes' profile with one thing changed, and
// h.client, on that profile, is in: the refusal is that change's. (TLS 1.3
// reports a refused certificate after the handshake: the client may see
// "certificate required", a reset or a broken pipe.)
func (h *harness) refused(what string, prof envconfig.ClientConfigProfile) {
	h.t.Helper()
	opts, err := prof.ToClientOptions(envconfig.ToClientOptionsRequest{})
	if err != nil {
		h.t.Fatalf("%s: %v", what, err)
	}
	opts.Logger = tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, opts)
	if err == nil {
		// Dial checks the server's health; a namespace call must fail too.
		_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: h.namespace})
		c.Close()
	}
	if err == nil {
		h.t.Fatalf("%s was let in by the frontend at %s: mutual TLS is not on", what, h.address)
	}
	h.t.Logf("%s: refused (%v)", what, err)
}

// withoutCertificate is prof trusting the same server, with no client
// certificate.
func withoutCertificate(prof envconfig.ClientConfigProfile) envconfig.ClientConfigProfile {
	t := *prof.TLS
	t.ClientCertPath, t.ClientKeyPath, t.ClientCertData, t.ClientKeyData = "", "", nil, nil
	prof.TLS = &t
	return prof
}

func withCertificate(prof envconfig.ClientConfigProfile, certPath, keyPath string) envconfig.ClientConfigProfile {
	prof = withoutCertificate(prof)
	prof.TLS.ClientCertPath, prof.TLS.ClientKeyPath = certPath, keyPath
	return prof
}

func withoutTLS(prof envconfig.ClientConfigProfile) envconfig.ClientConfigProfile {
	prof.TLS = &envconfig.ClientConfigTLS{Disabled: true}
	return prof
}

// strangerCertificate makes a client certificate, and its key, signed by a
// CA of its own that the cluster has never seen.
func strangerCertificate(t *testing.T) (certPath, keyPath string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stranger CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "dunning"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "stranger.pem"), filepath.Join(dir, "stranger.key")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

// ---- processes

type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	killed  bool
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill ends the process with SIGKILL, as a crash or an OOM kill would.
func (p *process) kill() {
	p.killed = true
	if p.running() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// stop sends SIGTERM and fails unless the process exits cleanly in time.
func (p *process) stop(grace time.Duration) error {
	p.killed = true
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s exited with %v after SIGTERM; see %s", p.name, p.err, p.logPath)
		}
		return nil
	case <-time.After(grace):
		p.kill()
		return fmt.Errorf("%s did not stop within %s of SIGTERM", p.name, grace)
	}
}

func tail(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// ---- Stripe and the control plane

// fakeStripe is the local stack's stateful dev Stripe (the card that
// failed declines, a new card works, a repeated Idempotency-Key replays
// the first answer), counting the charges it makes.
type fakeStripe struct {
	srv *httptest.Server
	dev *devstripe.Server

	mu      sync.Mutex
	charged map[string]int // intent: confirms answered 200, not as a replay
	issues  []string
}

func newFakeStripe(t *testing.T) *fakeStripe {
	s := &fakeStripe{dev: devstripe.New(nil, slog.New(slog.NewTextHandler(io.Discard, nil))), charged: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+clusterStripeKey {
			s.problem("%s %s without the API key", r.Method, r.URL.Path)
			http.Error(w, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided"}}`, http.StatusUnauthorized)
			return
		}
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		confirm := len(parts) == 4 && parts[1] == "payment_intents" && parts[3] == "confirm"
		if confirm && r.Header.Get("Idempotency-Key") == "" {
			s.problem("%s %s without an Idempotency-Key", r.Method, r.URL.Path)
		}
		rec := httptest.NewRecorder()
		s.dev.ServeHTTP(rec, r)
		if confirm && rec.Code == http.StatusOK && rec.Header().Get("Idempotent-Replayed") != "true" {
			s.mu.Lock()
			s.charged[parts[2]]++
			s.mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *fakeStripe) problem(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issues = append(s.issues, "stripe: "+fmt.Sprintf(format, args...))
}

func (s *fakeStripe) problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issues)
}

func (s *fakeStripe) charges(intent string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.charged[intent]
}

// fakeControl is the product's control plane: signed POSTs to
// /api/v1/customers/{id}/{action}; an action is applied once per
// idempotency key, a repeat is answered as a replay.
type fakeControl struct {
	srv *httptest.Server

	mu      sync.Mutex
	applied map[string][2]string // key: customer, action
	issues  []string
}

func newFakeControl(t *testing.T) *fakeControl {
	c := &fakeControl{applied: map[string][2]string{}}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/customers/")
		customer, action, ok2 := strings.Cut(rest, "/")
		key := r.Header.Get(controlplane.IdempotencyHeader)
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case !ok || !ok2 || r.Method != http.MethodPost || !slices.Contains([]string{"suspend", "resume", "deprovision"}, action):
			c.issues = append(c.issues, fmt.Sprintf("control plane: unexpected %s %s", r.Method, r.URL.Path))
			http.NotFound(w, r)
			return
		case sig.KindControlPlane.VerifyHTTP(r, body, []string{clusterControlKey}, 5*time.Minute, time.Now()) != nil:
			c.issues = append(c.issues, fmt.Sprintf("control plane: %s %s with a bad signature", r.Method, r.URL.Path))
			http.Error(w, `{"error":"bad signature"}`, http.StatusUnauthorized)
			return
		case key == "" || !bytes.Contains(body, []byte(key)):
			c.issues = append(c.issues, fmt.Sprintf("control plane: %s %s without its idempotency key", r.Method, r.URL.Path))
		}
		if prev, seen := c.applied[key]; seen && prev != [2]string{customer, action} {
			c.issues = append(c.issues, fmt.Sprintf("control plane: key %s reused for %s %s (first %v)", key, action, customer, prev))
		}
		c.applied[key] = [2]string{customer, action}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "applied", "action": action, "customer_id": customer})
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// count counts the distinct actions of a kind applied for a customer.
func (c *fakeControl) count(customer, action string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, a := range c.applied {
		if a == [2]string{customer, action} {
			n++
		}
	}
	return n
}

func (c *fakeControl) problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.issues)
}
