//go:build soak

package soak

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"dunning/e2e"
)

// faulty is what the soak does to a stand-in.
type faulty interface {
	Always(status int, m e2e.Matcher)
	HangNext(n int, d time.Duration, m e2e.Matcher)
	Heal()
}

// Kinds of fault, as the summary names them.
const (
	faultKillWorker   = "kill_worker"
	faultKillWebhook  = "kill_webhook"
	faultKillTemporal = "kill_temporal"
	faultPeer5xx      = "peer_5xx"
	faultPeerHang     = "peer_hang"
)

var faultKinds = []string{faultKillWorker, faultKillWebhook, faultKillTemporal, faultPeer5xx, faultPeerHang}

// faults injects one fault every 20 to 60 seconds, each lasting a few
// seconds (a process or the dev server killed with SIGKILL and started
// again by the supervisor) or 10 to 30 seconds (a peer answering 5xx, or
// hanging); they overlap when one outlasts the gap to the next. At most
// one of the two workers, and one of the two webhooks, is down at once:
// the system runs replicas so that one may die.
type faults struct {
	st   *stack
	r    *lockedRand
	logf func(string, ...any)
	wg   sync.WaitGroup

	mu       sync.Mutex
	injected map[string]int
	busy     map[string]bool // peers with a fault on
}

func (f *faults) peers() map[string]faulty {
	p := f.st.peers
	return map[string]faulty{"stripe": p.Stripe, "control_plane": p.Control, "amberflo": p.Amberflo, "alerts": p.Alerts, "notices": p.Notices}
}

// run injects faults until ctx ends, then waits for those under way to
// be over: every peer healed, every process released to the supervisor.
func (f *faults) run(ctx context.Context) {
	defer f.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(f.r.between(20*time.Second, 60*time.Second)):
		}
		if ctx.Err() != nil {
			return
		}
		// A kind whose target is busy gives way to another.
		start := f.r.intN(len(faultKinds))
		for i := range faultKinds {
			if f.inject(faultKinds[(start+i)%len(faultKinds)]) {
				break
			}
		}
	}
}

func (f *faults) count(kind string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.injected[kind]++
}

func (f *faults) inject(kind string) bool {
	switch kind {
	case faultKillWorker, faultKillWebhook:
		names := workers
		if kind == faultKillWebhook {
			names = webhooks
		}
		if f.st.heldCount(names) > 0 {
			return false
		}
		name := names[f.r.intN(len(names))]
		if !f.st.hold(name) {
			return false
		}
		down := f.r.between(2*time.Second, 6*time.Second)
		if err := f.st.kill(name); err != nil {
			f.logf("fault: kill %s: %v", name, err)
			f.st.release(name)
			return false
		}
		f.count(kind)
		f.logf("fault: %s killed with SIGKILL, down for %s", name, down.Round(time.Millisecond))
		f.later(down, func() { f.st.release(name) })
	case faultKillTemporal:
		if !f.st.hold("temporal") {
			return false
		}
		down := f.r.between(2*time.Second, 6*time.Second)
		if err := f.st.killTemporal(); err != nil {
			f.logf("fault: kill the dev server: %v", err)
			f.st.release("temporal")
			return false
		}
		f.count(kind)
		f.logf("fault: temporal dev server killed with SIGKILL, down for %s", down.Round(time.Millisecond))
		f.later(down, func() { f.st.release("temporal") })
	case faultPeer5xx, faultPeerHang:
		names := []string{"stripe", "control_plane", "amberflo", "alerts", "notices"}
		name := names[f.r.intN(len(names))]
		f.mu.Lock()
		if f.busy[name] {
			f.mu.Unlock()
			return false
		}
		f.busy[name] = true
		f.mu.Unlock()
		p := f.peers()[name]
		lasts := f.r.between(10*time.Second, 30*time.Second)
		if kind == faultPeer5xx {
			status := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[f.r.intN(3)]
			p.Always(status, e2e.Any)
			f.logf("fault: %s answers %d for %s", name, status, lasts.Round(time.Millisecond))
		} else {
			p.HangNext(1<<30, lasts, e2e.Any)
			f.logf("fault: %s hangs every request for %s", name, lasts.Round(time.Millisecond))
		}
		f.count(kind)
		f.later(lasts, func() {
			p.Heal()
			f.mu.Lock()
			delete(f.busy, name)
			f.mu.Unlock()
		})
	default:
		panic(fmt.Sprintf("unknown fault %q", kind))
	}
	return true
}

// later runs end after d, and run waits for it.
func (f *faults) later(d time.Duration, end func()) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		time.Sleep(d)
		end()
	}()
}
