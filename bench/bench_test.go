// Package bench measures dunning against its floor, with a real Temporal
// dev server on this machine. Run with `make bench`; each benchmark runs
// its own fixed workload once (-benchtime 1x) and reports the figures as
// metrics. See docs/benchmarks.md for the numbers and what bounds them.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/config"
	"dunning/internal/stripefixture"
	"dunning/internal/testenv"
	"dunning/webhook"
	"dunning/worker"
	"dunning/workflows"
)

const secret = "whsec_bench"

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// temporal starts a dev server on a SQLite file in WAL mode, as `make run`
// does, with its own metrics served (the persistence requests).
func temporal(b *testing.B) *testenv.DevServer {
	b.Helper()
	dir := b.TempDir()
	return testenv.StartDevServer(b, "", testenv.TemporalOptions{
		DBFilename: filepath.Join(dir, "temporal.db"), LogPath: filepath.Join(dir, "temporal.log"), Metrics: true,
	})
}

// configFor is dunning's config pointed at the dev server, with env.
func configFor(b *testing.B, tmp *testenv.DevServer, env map[string]string) config.Config {
	b.Helper()
	cfg, err := config.Load(func(k string) string {
		if k == "TEMPORAL_ADDRESS" {
			return tmp.Address
		}
		return env[k]
	})
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// run fires n jobs at the given concurrency and returns the throughput and
// the latencies, sorted.
func run(n, concurrency int, job func(i int) error) (perSec float64, lat []time.Duration, err error) {
	lat = make([]time.Duration, n)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	began := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t := time.Now()
				if err := job(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
				lat[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(began)
	slices.Sort(lat)
	if e, ok := firstErr.Load().(error); ok {
		err = e
	}
	return float64(n) / elapsed.Seconds(), lat, err
}

func pct(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[min(len(lat)-1, int(float64(len(lat))*p))]
}

// BenchmarkIngest compares N signed events through the real webhook with N
// bare StartWorkflow calls to the same dev server, at the same
// concurrency, alternating rounds so that drift hits both alike. No worker
// runs: this is the cost of taking an event in, which is what Stripe waits
// for.
func BenchmarkIngest(b *testing.B) {
	n, conc, rounds := envInt("BENCH_EVENTS", 2000), envInt("BENCH_CONCURRENCY", 32), envInt("BENCH_ROUNDS", 2)
	tmp := temporal(b)
	h, err := webhook.NewHandler(tmp.Client, webhook.Options{
		Secrets: []string{secret}, Tolerance: 5 * time.Minute, MaxBody: 512 << 10, StartTimeout: 10 * time.Second,
		TaskQueue: "bench-ingest", Logger: quiet(),
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}

	var floorRate, hookRate []float64
	var floorLat, hookLat []time.Duration
	b.ResetTimer()
	for r := range rounds {
		// The floor: what the webhook does at its core, with nothing else.
		rate, lat, err := run(n, conc, func(i int) error {
			ev := workflows.StripeEvent{ID: fmt.Sprintf("evt_floor_%d_%d", r, i), Type: workflows.EventPaymentFailed,
				CustomerID: fmt.Sprintf("cus_floor_%d", i), ObjectID: "pi_floor", Created: time.Now()}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := tmp.Client.ExecuteWorkflow(ctx, webhook.StartOptions(ev, "bench-ingest"), workflows.StripeEventWorkflowName,
				workflows.StripeEventInput{Event: ev})
			return err
		})
		if err != nil {
			b.Fatalf("floor: %v", err)
		}
		floorRate, floorLat = append(floorRate, rate), append(floorLat, lat...)

		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i], _ = stripefixture.Event(workflows.EventPaymentFailed, stripefixture.Options{
				ID: fmt.Sprintf("evt_hook_%d_%d", r, i), Customer: fmt.Sprintf("cus_hook_%d", i)})
		}
		rate, lat, err = run(n, conc, func(i int) error {
			req, _ := stripefixture.Request(srv.URL+webhook.PathStripe, bodies[i], secret, time.Now())
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("webhook answered %d", resp.StatusCode)
			}
			return nil
		})
		if err != nil {
			b.Fatalf("webhook: %v", err)
		}
		hookRate, hookLat = append(hookRate, rate), append(hookLat, lat...)
	}
	b.StopTimer()
	slices.Sort(floorLat)
	slices.Sort(hookLat)
	fr, hr := mean(floorRate), mean(hookRate)
	b.ReportMetric(fr, "floor-starts/s")
	b.ReportMetric(hr, "webhook-events/s")
	b.ReportMetric(hr/fr, "throughput-ratio")
	b.ReportMetric(ms(pct(floorLat, 0.99)), "floor-p99-ms")
	b.ReportMetric(ms(pct(hookLat, 0.99)), "webhook-p99-ms")
	b.ReportMetric(float64(pct(hookLat, 0.99))/float64(pct(floorLat, 0.99)), "p99-ratio")
	b.ReportMetric(ms(pct(hookLat, 0.5)), "webhook-p50-ms")
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkScale puts N recovery workflows in flight on one worker process
// (the real binary) and reads that process's peak RSS and CPU time. Each
// recovery is started the way StripeEventWorkflow starts one, then waits
// on its day-long retry timer.
func BenchmarkScale(b *testing.B) {
	for _, n := range []int{envInt("BENCH_SCALE_SMALL", 1000), envInt("BENCH_SCALE_LARGE", 10000)} {
		b.Run(fmt.Sprintf("recoveries=%d", n), func(b *testing.B) { scale(b, n) })
	}
}

func scale(b *testing.B, n int) {
	tmp := temporal(b)
	bin := filepath.Join(b.TempDir(), "dunning")
	if out, err := execGo("build", "-o", bin, "dunning/cmd/dunning"); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	env := append(os.Environ(), "TEMPORAL_ADDRESS="+tmp.Address, "DUNNING_RETRY_SCHEDULE=24h", "RECONCILE_INTERVAL=0", "LOG_LEVEL=warn")
	proc := testenv.StartProcess(b, "worker", filepath.Join(b.TempDir(), "worker.log"), env, bin, "worker")
	defer func() { _ = proc.Stop(30 * time.Second) }()
	cfg := configFor(b, tmp, map[string]string{"DUNNING_RETRY_SCHEDULE": "24h"})
	settings := worker.Settings(cfg)

	cpu0 := cpuSeconds(b, proc.Pid())
	b.ResetTimer()
	_, _, err := run(n, 32, func(i int) error {
		customer := fmt.Sprintf("cus_scale_%d", i)
		sig := workflows.PaymentFailedSignal{EventID: fmt.Sprintf("evt_scale_%d", i), Created: time.Now(),
			Intent: workflows.PaymentIntentInfo{ID: fmt.Sprintf("pi_scale_%d", i), Amount: 4900, Currency: "usd"}}
		raw, _ := json.Marshal(sig)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := tmp.Client.SignalWithStartWorkflow(ctx, workflows.RecoveryWorkflowID(customer), workflows.SignalPaymentFailed,
			json.RawMessage(raw), client.StartWorkflowOptions{TaskQueue: cfg.TemporalTaskQueue},
			workflows.PaymentRecoveryWorkflowName, workflows.RecoveryInput{StripeCustomerID: customer, Settings: settings})
		return err
	})
	if err != nil {
		b.Fatalf("start recoveries: %v", err)
	}
	// Wait until the worker has announced every recovery and gone idle.
	waitIdle(b, tmp.Client, proc.Pid(), fmt.Sprintf("cus_scale_%d", n-1))
	b.StopTimer()
	cpu := cpuSeconds(b, proc.Pid()) - cpu0
	rss := peakRSS(b, proc.Pid())
	b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(cpu/float64(n)*1000, "CPU-ms/recovery")
	b.ReportMetric(float64(rss)/float64(n)/1024, "KiB/recovery")
}

// execGo runs the go command with args and returns its output.
func execGo(args ...string) ([]byte, error) { return exec.Command("go", args...).CombinedOutput() }

func waitIdle(b *testing.B, c client.Client, pid int, lastCustomer string) {
	b.Helper()
	deadline := time.Now().Add(15 * time.Minute)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, err := c.QueryWorkflow(ctx, workflows.RecoveryWorkflowID(lastCustomer), "", workflows.StatusQuery)
		cancel()
		var s workflows.RecoveryState
		if err == nil && v.Get(&s) == nil && s.Announced {
			break
		}
		time.Sleep(time.Second)
	}
	// Then until the worker uses under 5% of a core for 3 seconds.
	for time.Now().Before(deadline) {
		before := cpuSeconds(b, pid)
		time.Sleep(3 * time.Second)
		if cpuSeconds(b, pid)-before < 0.15 {
			return
		}
	}
	b.Fatal("the worker did not settle within 15 minutes")
}

// cpuSeconds reads utime+stime of a process from /proc.
func cpuSeconds(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// peakRSS reads VmHWM, the process's peak resident set, in bytes.
func peakRSS(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmHWM")
	return 0
}
