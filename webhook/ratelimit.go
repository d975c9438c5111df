package webhook

import (
	"net"
	"sync"
	"time"
)

// Rate bounds how often something may happen: Burst times at once, then
// once every Every.
type Rate struct {
	Burst int
	Every time.Duration
}

func (r Rate) valid() bool { return r.Burst > 0 && r.Every > 0 }

// limiter is a token bucket per key, kept in memory (each replica counts
// for itself), as the generic cell rate algorithm: per key only the time
// at which its bucket is full again.
type limiter struct {
	rate    Rate
	maxKeys int

	mu   sync.Mutex
	full map[string]time.Time
}

func newLimiter(r Rate, maxKeys int) *limiter {
	return &limiter{rate: r, maxKeys: maxKeys, full: map[string]time.Time{}}
}

// allow takes one from key's bucket at now, or says how long until it may.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, seen := l.full[key]
	if at.Before(now) {
		at = now
	}
	if wait := at.Sub(now) - time.Duration(l.rate.Burst-1)*l.rate.Every; wait > 0 {
		return false, wait
	}
	if !seen && len(l.full) >= l.maxKeys {
		l.sweep(now)
	}
	l.full[key] = at.Add(l.rate.Every)
	return true, 0
}

// sweep forgets the keys whose buckets are full again. Should that not
// make room (a flood from more addresses than maxKeys), it forgets all of
// them: memory stays bounded, and the limit fails open rather than
// turning customers away.
func (l *limiter) sweep(now time.Time) {
	for k, at := range l.full {
		if !at.After(now) {
			delete(l.full, k)
		}
	}
	if len(l.full) >= l.maxKeys {
		clear(l.full)
	}
}

// clientKey is what one client's clicks are counted under: its IPv4
// address, or the /64 of its IPv6 address (what one host usually has).
func clientKey(ip string) string {
	a := net.ParseIP(ip)
	if a == nil || a.To4() != nil {
		return ip
	}
	return a.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
