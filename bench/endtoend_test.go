package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"dunning/e2e"
	"dunning/internal/stripeevent"
	"dunning/internal/stripefixture"
	"dunning/internal/testenv"
	"dunning/webhook"
	"dunning/workflows"
)

// BenchmarkEndToEnd measures the whole path of a failed payment for a new
// customer, with every integration live against the stand-ins of the
// end-to-end tests (a stateful Stripe, Amberflo, the control plane, the
// ops alert webhook and the customer mailer): the real binary's webhook
// and worker, each its own process, on one dev server.
//
// An event is done when its recovery's past-due alert reaches the alert
// webhook, the last step of the first-failure work. The stand-in counts
// those deliveries itself, so nothing polls Temporal while it is measured.
//
// In one run it reports:
//   - floor-starts/s: BENCH_E2E_EVENTS bare StartWorkflow calls to the same
//     server, BENCH_CONCURRENCY at a time, in rounds alternated with the
//     end-to-end rounds (one before the first, one after each);
//   - e2e-events/s: BENCH_E2E_EVENTS events for new customers posted by
//     BENCH_CONCURRENCY clients, counted until the last alert, in
//     BENCH_ROUNDS rounds;
//   - e2e-ratio: the mean, over the rounds, of a round's rate over the
//     mean of the floor rounds either side of it;
//   - p50-ms, p99-ms: at a steady BENCH_RATE events a second for
//     BENCH_SECONDS, from the webhook's 200 to the alert's delivery;
//   - worker-CPU-ms/recovery: the worker process's CPU time over the
//     end-to-end rounds, divided by the recoveries they made;
//   - where the machine's CPU went: the dev server's per event
//     (server-CPU-ms/event) and per bare start (floor-server-CPU-ms/start),
//     the webhook's per event (separate processes; in one, the worker's
//     figure includes it), and this process's (the clients and the
//     stand-ins) per event and per start; cpu-ratio is all of it per bare
//     start over all of it per event, the ratio the rates would have if
//     CPU alone bounded them.
func BenchmarkEndToEnd(b *testing.B) { endToEnd(b, false) }

// BenchmarkEndToEndSingleProcess is BenchmarkEndToEnd with the webhook and
// the worker in one process, `dunning dev` (on its own dev server, with
// the same stand-ins): there the webhook's starts are eager, the event
// workflow's first task handed to the worker beside it with the start.
// Its worker CPU is that whole process's, webhook included.
func BenchmarkEndToEndSingleProcess(b *testing.B) { endToEnd(b, true) }

func endToEnd(b *testing.B, single bool) {
	n, conc, rounds := envInt("BENCH_E2E_EVENTS", 600), envInt("BENCH_CONCURRENCY", 32), envInt("BENCH_ROUNDS", 2)
	rate, seconds := envInt("BENCH_RATE", 20), envInt("BENCH_SECONDS", 20)
	st := startStack(b, single)

	// Warm up: connections, caches, the server's first tasks.
	if _, _, err := st.burst("warm", 20, 8); err != nil {
		b.Fatal(err)
	}

	// Each end-to-end round is compared with the mean of the floor rounds
	// just before and just after it: the machine is shared, and its load
	// drifts within minutes.
	var floorRate, e2eRate, ratios []float64
	var cpu float64
	// What the server's persistence served, over the floor rounds and
	// over the end-to-end rounds (separate processes only: `dunning dev`
	// runs a dev server of its own).
	floorOps, e2eOps := testenv.PersistenceOps{}, testenv.PersistenceOps{}
	floorCPU, e2eCPU := map[string]float64{}, map[string]float64{}
	b.ResetTimer()
	for r := range rounds + 1 {
		ops0, cpu0 := st.ops(), st.cpus()

		fr, err := floor(st.client, fmt.Sprintf("r%d", r), n, conc)
		if err != nil {
			b.Fatalf("floor: %v", err)
		}
		st.settleServer()
		floorOps.Add(st.ops().Since(ops0))
		addCPU(floorCPU, cpu0, st.cpus())
		floorRate = append(floorRate, fr)
		if r > 0 {
			around := (floorRate[r-1] + fr) / 2
			ratios = append(ratios, e2eRate[r-1]/around)
			b.Logf("round %d: floor %.1f starts/s around it, end to end %.1f events/s (%.3f×)", r, around, e2eRate[r-1], ratios[r-1])
		}
		if r == rounds {
			break
		}
		ops0, cpu0 = st.ops(), st.cpus()
		er, used, err := st.burst(fmt.Sprintf("r%d", r), n, conc)
		if err != nil {
			b.Fatalf("end to end: %v", err)
		}
		st.settleServer()
		e2eOps.Add(st.ops().Since(ops0))
		addCPU(e2eCPU, cpu0, st.cpus())
		e2eRate, cpu = append(e2eRate, er), cpu+used
		b.Logf("round %d: worker %.1f ms CPU per recovery", r+1, used/float64(n)*1000)
	}
	lat, err := st.steady(rate, seconds)
	if err != nil {
		b.Fatalf("steady rate: %v", err)
	}
	b.StopTimer()
	if p := st.peers.Problems(); len(p) > 0 {
		b.Fatalf("the stand-ins saw requests the real peers would reject:\n%v", p)
	}
	b.ReportMetric(mean(floorRate), "floor-starts/s")
	b.ReportMetric(mean(e2eRate), "e2e-events/s")
	b.ReportMetric(mean(ratios), "e2e-ratio")
	b.ReportMetric(float64(rate), "steady-events/s")
	b.ReportMetric(ms(pct(lat, 0.5)), "p50-ms")
	b.ReportMetric(ms(pct(lat, 0.99)), "p99-ms")
	b.ReportMetric(cpu/float64(n*rounds)*1000, "worker-CPU-ms/recovery")
	starts, events := float64(n*(rounds+1)), float64(n*rounds)
	if st.serverPid != 0 {
		b.ReportMetric(e2eCPU["server"]/events*1000, "server-CPU-ms/event")
		b.ReportMetric(floorCPU["server"]/starts*1000, "floor-server-CPU-ms/start")
		if st.hook != nil {
			b.ReportMetric(e2eCPU["webhook"]/events*1000, "webhook-CPU-ms/event")
		}
		b.ReportMetric(e2eCPU["bench"]/events*1000, "bench-CPU-ms/event")
		b.ReportMetric(floorCPU["bench"]/starts*1000, "floor-bench-CPU-ms/start")
		b.ReportMetric((total(floorCPU)/starts)/(total(e2eCPU)/events), "cpu-ratio")
	}
	if st.server != nil {
		b.ReportMetric(floorOps.Writes()/starts, "floor-server-writes/start")
		b.ReportMetric(e2eOps.Writes()/events, "server-writes/event")
		b.ReportMetric(e2eOps.Reads()/events, "server-reads/event")
		// Printed, not logged: a benchmark's log is cut at ten lines.
		fmt.Printf("%s: persistence requests per event, end to end (per bare start, floor):\n%s", b.Name(), e2eOps.Table(events, floorOps, starts))
	}
	b.ReportMetric(float64(peakRSS(b, st.worker.Pid()))/(1<<20), "worker-peak-RSS-MiB")
}

// stack is dunning's webhook and worker processes on a dev server, with
// every integration live against the stand-ins.
type stack struct {
	b      *testing.B
	client client.Client
	peers  *e2e.Peers
	// server is the dev server, when the stack does not run its own
	// (separate processes).
	server *testenv.DevServer
	// serverPid is the dev server's process, its own or `dunning dev`'s
	// child, for its CPU time.
	serverPid int
	// worker is the process that runs the worker (and, single, the
	// webhook).
	worker *testenv.Process
	// hook is the webhook's process when it is not the worker's.
	hook    *testenv.Process
	webhook string // base URL
	http    *http.Client

	mu sync.Mutex
	// alerted is when each customer's past-due alert first arrived;
	// waiting, the customers whose alert a round waits for.
	alerted map[string]time.Time
	waiting map[string]chan struct{}
}

// startStack starts the stand-ins, then a dev server and dunning's worker
// and webhook processes, or, single, `dunning dev`, which runs its own dev
// server and both in one process.
func startStack(b *testing.B, single bool) *stack {
	b.Helper()
	dir := b.TempDir()
	st := &stack{b: b, peers: e2e.NewPeers(e2e.ControlSecret, e2e.NoticeSecret), alerted: map[string]time.Time{}, waiting: map[string]chan struct{}{}}
	b.Cleanup(st.peers.Close)
	st.peers.Alerts.OnFirst(st.onAlert)

	bin := filepath.Join(dir, "dunning")
	if out, err := execGo("build", "-o", bin, "dunning/cmd/dunning"); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	addr := testenv.FreeAddress(b)
	st.webhook = "http://" + addr
	vars := st.peers.Env(st.webhook)
	maps.Copy(vars, map[string]string{
		"HTTP_ADDR": addr, "TEMPORAL_NAMESPACE": "default",
		// The first failure's work, then a day's wait.
		"DUNNING_RETRY_SCHEDULE": "24h", "DUNNING_GRACE_PERIOD": "168h", "RECONCILE_INTERVAL": "0",
		"LOG_LEVEL": "warn", "PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME"),
	})
	// The worker's tuning, when the run sets it.
	for _, k := range []string{"TEMPORAL_WORKFLOW_TASK_POLLERS", "TEMPORAL_WORKFLOW_CACHE_SIZE"} {
		if v := os.Getenv(k); v != "" {
			vars[k] = v
		}
	}
	var tmp *testenv.DevServer
	if single {
		_, ui, _ := net.SplitHostPort(testenv.FreeAddress(b))
		maps.Copy(vars, map[string]string{
			"TEMPORAL_ADDRESS": testenv.FreeAddress(b), "TEMPORAL_UI_PORT": ui, "WORKER_METRICS_ADDR": testenv.FreeAddress(b),
			"TEMPORAL_CLI": testenv.Tool(b, "TEMPORAL_CLI", "temporal"), "DEV_DATA_DIR": filepath.Join(dir, "data"),
		})
	} else {
		tmp = temporal(b)
		vars["TEMPORAL_ADDRESS"] = tmp.Address
		st.client, st.server, st.serverPid = tmp.Client, tmp, tmp.Pid()
	}
	var environ []string
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		environ = append(environ, k+"="+vars[k])
	}
	hook := st.worker
	if single {
		st.worker = testenv.StartProcess(b, "dev", filepath.Join(dir, "dev.log"), environ, bin, "dev")
		b.Cleanup(func() { _ = st.worker.Stop(30 * time.Second) })
		hook = st.worker
	} else {
		st.worker = testenv.StartProcess(b, "worker", filepath.Join(dir, "worker.log"), environ, bin, "worker")
		b.Cleanup(func() { _ = st.worker.Stop(30 * time.Second) })
		hook = testenv.StartProcess(b, "webhook", filepath.Join(dir, "webhook.log"), environ, bin, "webhook")
		b.Cleanup(func() { _ = hook.Stop(10 * time.Second) })
		st.hook = hook
	}
	st.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	b.Cleanup(st.http.CloseIdleConnections)
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := st.http.Get(st.webhook + webhook.PathReadyz)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) || !hook.Running() || !st.worker.Running() {
			b.Fatalf("webhook not ready within a minute (logs in %s)", dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if single {
		// The webhook answers ready once its dev server does.
		c, err := client.Dial(client.Options{HostPort: vars["TEMPORAL_ADDRESS"], Namespace: "default", Logger: tlog.NewStructuredLogger(quiet())})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		st.client = c
		st.serverPid = childNamed(b, st.worker.Pid(), "temporal")
	}
	return st
}

// onAlert notes a recovery's past-due alert, the end of its first-failure
// work.
func (st *stack) onAlert(m e2e.Message) {
	if m.Kind != "past_due" {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.alerted[m.Customer]; ok {
		return
	}
	st.alerted[m.Customer] = m.First
	if ch := st.waiting[m.Customer]; ch != nil {
		close(ch)
		delete(st.waiting, m.Customer)
	}
}

// event builds a failed payment for a new customer; the stand-in Stripe
// knows of it from then on, as Stripe would.
func (st *stack) event(tag string, i int) (customer string, body []byte, done <-chan struct{}) {
	customer = fmt.Sprintf("cus_%s_%d", tag, i)
	body, err := stripefixture.Event(workflows.EventPaymentFailed, stripefixture.Options{
		ID: fmt.Sprintf("evt_%s_%d", tag, i), Customer: customer})
	if err != nil {
		st.b.Fatal(err)
	}
	ev, err := stripeevent.Parse(body)
	if err != nil {
		st.b.Fatal(err)
	}
	st.peers.Stripe.Observe(ev)
	ch := make(chan struct{})
	st.mu.Lock()
	st.waiting[customer] = ch
	st.mu.Unlock()
	return customer, body, ch
}

// post delivers one event, signed now, and wants a 200.
func (st *stack) post(body []byte) error {
	req, err := stripefixture.Request(st.webhook+webhook.PathStripe, body, e2e.WebhookSecret, time.Now())
	if err != nil {
		return err
	}
	resp, err := st.http.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return nil
}

// wait waits for every channel, or fails after limit.
func wait(dones []<-chan struct{}, limit time.Duration) error {
	timeout := time.After(limit)
	for i, d := range dones {
		select {
		case <-d:
		case <-timeout:
			left := 0
			for _, d := range dones[i:] {
				select {
				case <-d:
				default:
					left++
				}
			}
			return fmt.Errorf("%d of %d recoveries not announced within %s", left, len(dones), limit)
		}
	}
	return nil
}

// burst posts n events for new customers, conc at a time, and waits for
// every past-due alert. It returns the events handled per second, from
// the first post to the last alert, and the worker's CPU seconds for them,
// read once the worker has settled.
func (st *stack) burst(tag string, n, conc int) (perSec, cpu float64, err error) {
	bodies := make([][]byte, n)
	dones := make([]<-chan struct{}, n)
	for i := range n {
		_, bodies[i], dones[i] = st.event(tag, i)
	}
	cpu0 := cpuSeconds(st.b, st.worker.Pid())
	began := time.Now()
	if _, _, err := run(n, conc, func(i int) error { return st.post(bodies[i]) }); err != nil {
		return 0, 0, err
	}
	if err := wait(dones, 10*time.Minute); err != nil {
		return 0, 0, err
	}
	elapsed := time.Since(began)
	settle(st.b, st.worker.Pid())
	return float64(n) / elapsed.Seconds(), cpuSeconds(st.b, st.worker.Pid()) - cpu0, nil
}

// steady posts rate events a second for seconds, each for a new customer,
// and returns the time from each webhook answer to its alert, sorted.
func (st *stack) steady(rate, seconds int) ([]time.Duration, error) {
	n := rate * seconds
	type sent struct {
		customer string
		answered time.Time
	}
	out := make([]sent, n)
	dones := make([]<-chan struct{}, n)
	bodies := make([][]byte, n)
	for i := range n {
		out[i].customer, bodies[i], dones[i] = st.event("steady", i)
	}
	var failed atomic.Value
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := range n {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.post(bodies[i]); err != nil {
				failed.CompareAndSwap(nil, err)
				return
			}
			out[i].answered = time.Now()
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return nil, err
	}
	if err := wait(dones, 5*time.Minute); err != nil {
		return nil, err
	}
	lat := make([]time.Duration, n)
	st.mu.Lock()
	for i, s := range out {
		lat[i] = max(0, st.alerted[s.customer].Sub(s.answered))
	}
	st.mu.Unlock()
	slices.Sort(lat)
	return lat, nil
}

// floor makes n bare StartWorkflow calls, conc at a time, with the
// webhook's own options, on a task queue no worker polls: the most the
// server takes in.
func floor(c client.Client, tag string, n, conc int) (float64, error) {
	rate, _, err := run(n, conc, func(i int) error {
		ev := workflows.StripeEvent{ID: fmt.Sprintf("evt_floor_%s_%d", tag, i), Type: workflows.EventPaymentFailed,
			CustomerID: fmt.Sprintf("cus_floor_%s_%d", tag, i), ObjectID: "pi_floor", Created: time.Now()}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := c.ExecuteWorkflow(ctx, webhook.StartOptions(ev, "bench-floor"), workflows.StripeEventWorkflowName,
			workflows.StripeEventInput{Event: ev})
		return err
	})
	return rate, err
}

// cpus reads the CPU seconds used so far by each process of the run:
// the server (separate processes only), the worker, the webhook (when it
// is a process of its own) and this one, which runs the clients and the
// stand-ins.
func (st *stack) cpus() map[string]float64 {
	m := map[string]float64{"worker": cpuSeconds(st.b, st.worker.Pid()), "bench": cpuSeconds(st.b, os.Getpid())}
	if st.serverPid != 0 {
		m["server"] = cpuSeconds(st.b, st.serverPid)
	}
	if st.hook != nil {
		m["webhook"] = cpuSeconds(st.b, st.hook.Pid())
	}
	return m
}

// childNamed finds the child process of pid whose command is name.
func childNamed(b *testing.B, pid int, name string) int {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, task := range tasks {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(raw)) {
			child, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", child)); err == nil && strings.TrimSpace(string(comm)) == name {
				return child
			}
		}
	}
	b.Fatalf("no child process %q of %d", name, pid)
	return 0
}

func total(m map[string]float64) float64 {
	var t float64
	for _, v := range m {
		t += v
	}
	return t
}

// addCPU adds to sum what each process used between from and to.
func addCPU(sum, from, to map[string]float64) {
	for k, v := range to {
		sum[k] += v - from[k]
	}
}

// settle waits until the process uses under 5% of a core for a second.
// ops reads the server's persistence requests so far; nil when the
// stack's server is its own.
func (st *stack) ops() testenv.PersistenceOps {
	if st.server == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ops, err := st.server.PersistenceOps(ctx)
	if err != nil {
		st.b.Fatal(err)
	}
	return ops
}

// settleServer waits until the server's persistence has been quiet for
// a second (its visibility and timer queues catch up after a round), so
// that a round's count holds all it caused.
func (st *stack) settleServer() {
	if st.server == nil {
		return
	}
	deadline := time.Now().Add(time.Minute)
	last := st.ops()
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		now := st.ops()
		if d := now.Since(last); d.Writes() < 5 {
			return
		}
		last = now
	}
}

func settle(b *testing.B, pid int) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		before := cpuSeconds(b, pid)
		time.Sleep(time.Second)
		if cpuSeconds(b, pid)-before < 0.05 {
			return
		}
	}
}
