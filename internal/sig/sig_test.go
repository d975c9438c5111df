package sig_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"dunning/internal/sig"
)

const (
	secretA   = "whsec_test_a_9f8e7d6c5b4a"
	secretB   = "whsec_test_b_0a1b2c3d4e5f"
	tolerance = 5 * time.Minute
)

var (
	now  = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	body = []byte(`{"id":"evt_1NbW2aLkdIwHu7ix","object":"event","type":"invoice.paid"}`)
)

// reference computes the v1 signature independently of the package, the
// way Stripe documents it: hex HMAC-SHA256 of "<unix t>.<raw body>".
func reference(secret string, t time.Time, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%d.%s", t.Unix(), body)
	return hex.EncodeToString(mac.Sum(nil))
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	h := sig.Header(now, body, secretA)
	want := "t=" + strconv.FormatInt(now.Unix(), 10) + ",v1=" + reference(secretA, now, body)
	if h != want {
		t.Fatalf("Header = %q, want %q", h, want)
	}
	if got := sig.Compute(secretA, now, body); got != reference(secretA, now, body) {
		t.Fatalf("Compute = %q, want the documented HMAC", got)
	}
	if err := sig.Verify(h, body, []string{secretA}, tolerance, now); err != nil {
		t.Fatalf("Verify of a fresh header: %v", err)
	}
}

// A header written by hand in Stripe's documented form verifies, with the
// usual spaces Stripe's examples sometimes show and a test-mode v0 entry.
func TestVerifyAcceptsStripeShapedHeader(t *testing.T) {
	t.Parallel()
	ts := strconv.FormatInt(now.Unix(), 10)
	h := "t=" + ts + ", v1=" + reference(secretA, now, body) + ", v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
	if err := sig.Verify(h, body, []string{secretA}, tolerance, now); err != nil {
		t.Fatalf("Verify(%q): %v", h, err)
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	both := sig.Header(now, body, secretA, secretB)
	if n := strings.Count(both, "v1="); n != 2 {
		t.Fatalf("header for two secrets has %d v1 entries, want 2: %q", n, both)
	}
	cases := []struct {
		name    string
		header  string
		secrets []string
	}{
		{"two entries, verifier has the old secret", both, []string{secretA}},
		{"two entries, verifier has the new secret", both, []string{secretB}},
		{"one entry by the second of two secrets", sig.Header(now, body, secretB), []string{secretA, secretB}},
		{"one entry by the first of two secrets", sig.Header(now, body, secretA), []string{secretA, secretB}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := sig.Verify(tc.header, body, tc.secrets, tolerance, now); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestNoMatch(t *testing.T) {
	t.Parallel()
	h := sig.Header(now, body, secretA)
	changed := []byte(string(body))
	changed[len(changed)/2] ^= 0x01

	cases := []struct {
		name    string
		header  string
		body    []byte
		secrets []string
	}{
		{"wrong secret", h, body, []string{secretB}},
		{"body changed by one byte", h, changed, []string{secretA}},
		{"body with a byte appended", h, append([]byte(string(body)), ' '), []string{secretA}},
		{"timestamp changed", strings.Replace(h, strconv.FormatInt(now.Unix(), 10), strconv.FormatInt(now.Unix()+1, 10), 1), body, []string{secretA}},
		{"no secrets configured", h, body, nil},
		{"well-formed but foreign signature", "t=" + strconv.FormatInt(now.Unix(), 10) + ",v1=" + strings.Repeat("ab", 32), body, []string{secretA}},
		// A stale header signed with another secret is reported as not
		// matching: age is only reported for the real signer.
		{"stale and wrong secret", sig.Header(now.Add(-time.Hour), body, secretB), body, []string{secretA}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := sig.Verify(tc.header, tc.body, tc.secrets, tolerance, now)
			if !errors.Is(err, sig.ErrNoMatch) {
				t.Fatalf("Verify = %v, want %v", err, sig.ErrNoMatch)
			}
		})
	}
}

func TestTolerance(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		signed time.Time
		want   error
	}{
		{"older than tolerance", now.Add(-tolerance - time.Second), sig.ErrStale},
		{"a day old", now.Add(-24 * time.Hour), sig.ErrStale},
		// Stripe's clock ahead of this one: accepted, as Stripe's libraries do.
		{"further in the future than tolerance", now.Add(tolerance + time.Second), nil},
		{"an hour ahead", now.Add(time.Hour), nil},
		{"exactly tolerance old", now.Add(-tolerance), nil},
		{"exactly tolerance ahead", now.Add(tolerance), nil},
		{"slightly old", now.Add(-30 * time.Second), nil},
		{"slightly ahead (clock skew)", now.Add(30 * time.Second), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := sig.Verify(sig.Header(tc.signed, body, secretA), body, []string{secretA}, tolerance, now)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMissing(t *testing.T) {
	t.Parallel()
	if err := sig.Verify("", body, []string{secretA}, tolerance, now); !errors.Is(err, sig.ErrMissing) {
		t.Fatalf("Verify(\"\") = %v, want %v", err, sig.ErrMissing)
	}
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	ts := strconv.FormatInt(now.Unix(), 10)
	good := reference(secretA, now, body)
	cases := []struct {
		name   string
		header string
	}{
		{"no t", "v1=" + good},
		{"t not a number", "t=yesterday,v1=" + good},
		{"t empty", "t=,v1=" + good},
		{"t negative", "t=-" + ts + ",v1=" + good},
		{"t zero", "t=0,v1=" + good},
		{"t with fraction", "t=" + ts + ".5,v1=" + good},
		{"duplicate t", "t=" + ts + ",t=" + ts + ",v1=" + good},
		{"no v1", "t=" + ts},
		{"only v0", "t=" + ts + ",v0=" + good},
		{"v1 not hex", "t=" + ts + ",v1=" + strings.Repeat("zz", 32)},
		{"v1 empty", "t=" + ts + ",v1="},
		{"v1 truncated", "t=" + ts + ",v1=" + good[:62]},
		{"v1 too long", "t=" + ts + ",v1=" + good + "00"},
		{"garbage", "garbage"},
		{"entry without =", "t=" + ts + ",v1=" + good + ",junk"},
		{"empty entry", "t=" + ts + ",,v1=" + good},
		{"only commas", ",,,"},
		{"json instead of header", `{"t":1,"v1":"x"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := sig.Verify(tc.header, body, []string{secretA}, tolerance, now)
			if !errors.Is(err, sig.ErrMalformed) {
				t.Fatalf("Verify(%q) = %v, want %v", tc.header, err, sig.ErrMalformed)
			}
		})
	}
}

// An unreadable v1 entry next to a good one is skipped, as Stripe's
// libraries do, rather than failing the delivery.
func TestUnreadableEntryBesideGoodOne(t *testing.T) {
	t.Parallel()
	h := "t=" + strconv.FormatInt(now.Unix(), 10) + ",v1=not-hex," + "v1=" + reference(secretA, now, body)
	if err := sig.Verify(h, body, []string{secretA}, tolerance, now); err != nil {
		t.Fatalf("Verify(%q): %v", h, err)
	}
}

func TestSignatureCountLimit(t *testing.T) {
	t.Parallel()
	ts := strconv.FormatInt(now.Unix(), 10)
	good := reference(secretA, now, body)
	header := func(n int) string {
		parts := []string{"t=" + ts}
		for i := 1; i < n; i++ {
			parts = append(parts, "v1="+reference(fmt.Sprintf("other-%d", i), now, body))
		}
		return strings.Join(append(parts, "v1="+good), ",")
	}
	if err := sig.Verify(header(16), body, []string{secretA}, tolerance, now); err != nil {
		t.Fatalf("16 v1 entries with the good one last: %v, want nil", err)
	}
	for _, n := range []int{17, 100} {
		if err := sig.Verify(header(n), body, []string{secretA}, tolerance, now); !errors.Is(err, sig.ErrMalformed) {
			t.Fatalf("%d v1 entries: %v, want %v", n, err, sig.ErrMalformed)
		}
	}
}

// The errors are returned to callers as the reason for a 400; they must not
// carry the header back.
func TestErrorsDoNotEchoHeader(t *testing.T) {
	t.Parallel()
	good := reference(secretA, now, body)
	for _, h := range []string{
		"",
		"t=notanumber,v1=" + good,
		sig.Header(now, body, secretB),
		sig.Header(now.Add(-time.Hour), body, secretA),
	} {
		err := sig.Verify(h, body, []string{secretA}, tolerance, now)
		if err == nil {
			t.Fatalf("Verify(%q) = nil, want an error", h)
		}
		msg := err.Error()
		if len(msg) > 60 || strings.Contains(msg, "notanumber") || strings.Contains(msg, good[:16]) || strings.Contains(msg, secretA) {
			t.Errorf("error %q for header %q is long or echoes the header", msg, h)
		}
	}
}
