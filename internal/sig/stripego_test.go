package sig_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"dunning/internal/sig"
)

// Verify accepts exactly the deliveries stripe-go's own verifier accepts
// (webhook.ValidatePayloadWithTolerance), for every header Stripe sends:
// accepting one it refuses would let a forgery through, refusing one it
// accepts loses a genuine event once Stripe stops retrying (3 days).
// stripe-go reads its own clock, so this test does too.
func TestVerifyAgreesWithStripeGo(t *testing.T) {
	t.Parallel()
	at := time.Now()
	ts := func(d time.Duration) string { return strconv.FormatInt(at.Add(d).Unix(), 10) }
	good := func(d time.Duration) string { return reference(secretA, at.Add(d), body) }
	for _, tc := range []struct{ name, header string }{
		{"as Stripe sends it", "t=" + ts(0) + ",v1=" + good(0)},
		{"with a test-mode v0 beside it", "t=" + ts(0) + ",v1=" + good(0) + ",v0=" + reference(secretB, at, body)},
		{"two v1 during a roll, ours second", "t=" + ts(0) + ",v1=" + reference(secretB, at, body) + ",v1=" + good(0)},
		{"an unknown later scheme", "t=" + ts(0) + ",v2=abc,v1=" + good(0)},
		{"a few seconds old", "t=" + ts(-30*time.Second) + ",v1=" + good(-30*time.Second)},
		{"older than the tolerance", "t=" + ts(-tolerance-time.Minute) + ",v1=" + good(-tolerance-time.Minute)},
		{"a day old", "t=" + ts(-24*time.Hour) + ",v1=" + good(-24*time.Hour)},
		// Stripe's clock ahead of this one: its libraries only bound the
		// age, and a signature only Stripe could make is not a forgery.
		{"signed 30 s ahead of this clock", "t=" + ts(30*time.Second) + ",v1=" + good(30*time.Second)},
		{"signed 10 min ahead of this clock", "t=" + ts(10*time.Minute) + ",v1=" + good(10*time.Minute)},
		{"signed an hour ahead of this clock", "t=" + ts(time.Hour) + ",v1=" + good(time.Hour)},
		{"wrong secret", "t=" + ts(0) + ",v1=" + reference(secretB, at, body)},
		{"only v0", "t=" + ts(0) + ",v0=" + good(0)},
		{"t moved, v1 kept", "t=" + ts(time.Second) + ",v1=" + good(0)},
		{"no header", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := webhook.ValidatePayloadWithTolerance(body, tc.header, secretA, tolerance)
			got := sig.Verify(tc.header, body, []string{secretA}, tolerance, time.Now())
			if (got == nil) != (want == nil) {
				t.Errorf("Verify(%q) = %v; stripe-go says %v", tc.header, got, want)
			}
		})
	}
}
