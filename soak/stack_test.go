//go:build soak

package soak

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"dunning/e2e"
	"dunning/internal/testenv"
)

// Secrets of the soak's stack: long enough, and distinct from each other.
const (
	webhookSecret = "whsec_soak_0123456789abcdef0123456789abcdef"
	controlSecret = "soak-control-plane-secret-0123456789abcdef"
	noticeSecret  = "soak-customer-notice-secret-0123456789abcdef"
	portalSecret  = "soak-portal-link-secret-0123456789abcdef0123"
	taskQueue     = "dunning-soak"
)

// The processes the soak runs and kills.
var (
	workers  = []string{"worker-1", "worker-2"}
	webhooks = []string{"webhook-1", "webhook-2"}
)

// stack is the running system: the dev server, the four dunning
// processes and the stand-ins. A supervisor restarts whatever is down
// and not held down by a fault, as a process manager would.
type stack struct {
	t      testing.TB
	dir    string
	bin    string
	peers  *e2e.Peers
	env    map[string]string
	dbFile string
	hooks  map[string]string // webhook name -> base URL

	mu       sync.Mutex
	temporal *testenv.DevServer
	tAddr    string
	procs    map[string]*testenv.Process
	killed   map[*testenv.Process]bool
	held     map[string]bool // down on purpose, not to be restarted yet
	exits    map[string]int  // exits nobody asked for, by process
	restarts int
}

// soft is a testing.TB whose Fatal does not end the goroutine that
// called it but panics with a value try turns into an error, so that the
// supervisor can start processes and servers again from its own
// goroutine and keep going when one attempt fails.
type soft struct{ testing.TB }

type fatal struct{ msg string }

func (s soft) Fatal(args ...any)                 { panic(fatal{fmt.Sprint(args...)}) }
func (s soft) Fatalf(format string, args ...any) { panic(fatal{fmt.Sprintf(format, args...)}) }
func (s soft) FailNow()                          { panic(fatal{"FailNow"}) }

func try(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			err = errors.New(f.msg)
		}
	}()
	f()
	return nil
}

func startStack(t *testing.T, set settings) *stack {
	s := &stack{
		t: t, dir: set.Dir, bin: set.Binary, dbFile: filepath.Join(set.Dir, "temporal.db"),
		peers: e2e.NewPeers(controlSecret, noticeSecret),
		hooks: map[string]string{}, procs: map[string]*testenv.Process{},
		killed: map[*testenv.Process]bool{}, held: map[string]bool{}, exits: map[string]int{},
	}
	t.Cleanup(s.peers.Close)
	s.startTemporal(t)

	s.env = map[string]string{
		"TEMPORAL_ADDRESS":             s.tAddr,
		"TEMPORAL_NAMESPACE":           "default",
		"TEMPORAL_TASK_QUEUE":          taskQueue,
		"STRIPE_WEBHOOK_SECRET":        webhookSecret,
		"CONTROL_PLANE_SECRET":         controlSecret,
		"CUSTOMER_NOTICE_SECRET":       noticeSecret,
		"PORTAL_LINK_SECRET":           portalSecret,
		"PORTAL_RETURN_URL":            "https://app.example.com/billing",
		"DUNNING_RETRY_SCHEDULE":       set.RetrySchedule,
		"DUNNING_GRACE_PERIOD":         set.Grace.String(),
		"DUNNING_DEPROVISION_AFTER":    set.Deprovision.String(),
		"DUNNING_CARD_UPDATE_DEBOUNCE": "1s",
		"RECONCILE_INTERVAL":           "0",
		"LOG_FORMAT":                   "json",
		"LOG_LEVEL":                    "info",
	}
	// The stand-ins' addresses; the soak's own secrets and links stay.
	for k, v := range s.peers.Env("") {
		if _, own := s.env[k]; !own {
			s.env[k] = v
		}
	}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v := os.Getenv(k); v != "" {
			s.env[k] = v
		}
	}
	for _, name := range webhooks {
		s.hooks[name] = "http://" + testenv.FreeAddress(t)
	}
	// Links in notices lead to the first webhook, as they would to the
	// load balancer in front of both.
	s.env["PUBLIC_URL"] = s.hooks[webhooks[0]]

	for _, name := range append(slices.Clone(workers), webhooks...) {
		if err := try(func() { s.start(soft{t}, name) }); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
	}
	s.waitReady(t, 2*time.Minute)
	return s
}

func (s *stack) startTemporal(tb testing.TB) {
	d := testenv.StartDevServer(tb, s.currentAddr(), testenv.TemporalOptions{
		DBFilename: s.dbFile, LogPath: filepath.Join(s.dir, "temporal.log")})
	s.mu.Lock()
	s.temporal, s.tAddr = d, d.Address
	s.mu.Unlock()
}

func (s *stack) currentAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tAddr
}

// client is a Temporal client on the server now running.
func (s *stack) client() client.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.temporal.Client
}

func (s *stack) start(tb testing.TB, name string) {
	env := maps.Clone(s.env)
	role := "worker"
	if strings.HasPrefix(name, "webhook") {
		role = "webhook"
		env["HTTP_ADDR"] = strings.TrimPrefix(s.hooks[name], "http://")
	}
	var list []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		list = append(list, k+"="+env[k])
	}
	p := testenv.StartProcess(tb, name, filepath.Join(s.dir, name+".log"), list, s.bin, role)
	s.mu.Lock()
	s.procs[name] = p
	s.mu.Unlock()
}

// waitReady waits until both webhooks answer /readyz and both workers
// poll the task queue.
func (s *stack) waitReady(t testing.TB, within time.Duration) {
	deadline := time.Now().Add(within)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		ready := true
		for _, name := range webhooks {
			resp, err := hc.Get(s.hooks[name] + "/readyz")
			if err != nil {
				ready = false
				continue
			}
			resp.Body.Close()
			ready = ready && resp.StatusCode == http.StatusOK
		}
		ready = ready && s.pollers() == len(workers)
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stack was not ready within %s; logs in %s", within, s.dir)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pollers counts the worker processes now running that poll both the
// workflow and the activity task queue.
func (s *stack) pollers() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.mu.Lock()
	pids := map[string]bool{}
	for _, name := range workers {
		if p := s.procs[name]; p != nil && p.Running() {
			pids[fmt.Sprintf("%d@", p.Pid())] = true
		}
	}
	s.mu.Unlock()
	seen := map[string]int{}
	for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
		resp, err := s.client().DescribeTaskQueue(ctx, taskQueue, typ)
		if err != nil {
			return 0
		}
		for _, pi := range resp.GetPollers() {
			for pid := range pids {
				if strings.HasPrefix(pi.GetIdentity(), pid) {
					seen[pid]++
				}
			}
		}
	}
	n := 0
	for _, c := range seen {
		if c >= 2 {
			n++
		}
	}
	return n
}

// hold keeps a process (or "temporal") down until release; false when
// it is held already.
func (s *stack) hold(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[name] {
		return false
	}
	s.held[name] = true
	return true
}

func (s *stack) release(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.held, name)
}

// heldCount counts the held names among names.
func (s *stack) heldCount(names []string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, name := range names {
		if s.held[name] {
			n++
		}
	}
	return n
}

// kill ends a process with SIGKILL.
func (s *stack) kill(name string) error {
	s.mu.Lock()
	p := s.procs[name]
	s.killed[p] = true
	s.mu.Unlock()
	return p.Kill()
}

// killTemporal ends the dev server with SIGKILL.
func (s *stack) killTemporal() error {
	s.mu.Lock()
	d := s.temporal
	s.mu.Unlock()
	return d.Kill()
}

// supervise restarts, every second, whatever is down and not held: the
// dev server on its address and database file, and any dunning process,
// counting the exits nobody asked for. It returns when ctx ends.
func (s *stack) supervise(ctx context.Context, logf func(string, ...any)) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		tDown := !s.held["temporal"] && !s.temporal.Running()
		var down []string
		for _, name := range append(slices.Clone(workers), webhooks...) {
			p := s.procs[name]
			if !s.held[name] && !p.Running() {
				if !s.killed[p] {
					s.exits[name]++
					logf("%s exited on its own: %v", name, p.Err())
				}
				down = append(down, name)
			}
		}
		s.mu.Unlock()
		if tDown {
			if err := try(func() { s.startTemporal(soft{s.t}) }); err != nil {
				logf("temporal dev server did not start again: %v", err)
				continue
			}
			s.mu.Lock()
			s.restarts++
			s.mu.Unlock()
			logf("temporal dev server running again on %s", s.currentAddr())
		}
		for _, name := range down {
			if err := try(func() { s.start(soft{s.t}, name) }); err != nil {
				logf("%s did not start again: %v", name, err)
				continue
			}
			s.mu.Lock()
			s.restarts++
			s.mu.Unlock()
		}
	}
}

// allUp reports whether the dev server and every process run.
func (s *stack) allUp() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.temporal.Running() {
		return false
	}
	for _, p := range s.procs {
		if !p.Running() {
			return false
		}
	}
	return true
}

// jitter returns a duration uniformly in [lo, hi].
func jitter(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.Int64N(int64(hi-lo)+1))
}
