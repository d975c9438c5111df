// Package sig signs and verifies HTTP bodies in Stripe's webhook signature
// scheme: a header "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">",
// with several v1 entries allowed while a secret is being rotated.
//
// dunning verifies Stripe's webhooks with it. Its own calls to the control
// plane and the customer-notice webhook are signed with the v2 request
// scheme (request.go), which also binds the kind of request, its method,
// target and idempotency key, so that a captured request cannot be
// replayed to another path or another receiver.
package sig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Scheme is Stripe's scheme, the only one Verify accepts and Header
// produces.
const Scheme = "v1"

// Verification failures. Each is short enough to be returned to the caller
// as the reason for a 400, and none of them carries the header's contents.
var (
	ErrMissing   = errors.New("missing signature header")
	ErrMalformed = errors.New("malformed signature header")
	ErrNoMatch   = errors.New("no signature matches")
	ErrStale     = errors.New("signature timestamp outside tolerance")
)

// Compute returns the hex HMAC-SHA256 of "<t>.<body>" under secret.
func Compute(secret string, t time.Time, body []byte) string {
	return hex.EncodeToString(sum(secret, t.Unix(), body))
}

func sum(secret string, unix int64, body []byte) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(strconv.AppendInt(nil, unix, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// Header returns a complete signature header for body, one v1 entry per
// secret, in the order given.
func Header(t time.Time, body []byte, secrets ...string) string {
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(strconv.FormatInt(t.Unix(), 10))
	for _, s := range secrets {
		b.WriteString(",")
		b.WriteString(Scheme)
		b.WriteString("=")
		b.WriteString(Compute(s, t, body))
	}
	return b.String()
}

// maxSignatures bounds the work one header can ask for.
const maxSignatures = 16

type parsed struct {
	t    time.Time
	sigs [][]byte
}

func parse(header string) (parsed, error) {
	var p parsed
	if header == "" {
		return p, ErrMissing
	}
	haveT := false
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return p, ErrMalformed
		}
		switch k {
		case "t":
			if haveT {
				return p, ErrMalformed
			}
			secs, err := strconv.ParseInt(v, 10, 64)
			if err != nil || secs <= 0 {
				return p, ErrMalformed
			}
			p.t = time.Unix(secs, 0)
			haveT = true
		case Scheme:
			raw, err := hex.DecodeString(v)
			if err != nil || len(raw) != sha256.Size {
				// An unreadable v1 entry cannot match; skip it as Stripe's
				// own libraries do, unless it leaves nothing to check.
				continue
			}
			if len(p.sigs) == maxSignatures {
				return p, ErrMalformed
			}
			p.sigs = append(p.sigs, raw)
		default:
			// Other schemes (v0 in test mode, future ones) are ignored.
		}
	}
	if !haveT || len(p.sigs) == 0 {
		return p, ErrMalformed
	}
	return p, nil
}

// Verify checks header against body under every secret and returns nil when
// any v1 entry matches any secret and the timestamp is at most tolerance
// older than now. The returned error is one of the Err values.
//
// As in Stripe's own libraries, only the age is bounded: a timestamp ahead
// of now means Stripe's clock is ahead of this one, and a signature only
// the holder of the secret can make is not a forgery. Refusing it would
// lose a genuine event once Stripe stops retrying.
func Verify(header string, body []byte, secrets []string, tolerance time.Duration, now time.Time) error {
	p, err := parse(header)
	if err != nil {
		return err
	}
	matched := false
	for _, secret := range secrets {
		want := sum(secret, p.t.Unix(), body)
		for _, got := range p.sigs {
			if hmac.Equal(want, got) {
				matched = true
			}
		}
	}
	if !matched {
		return ErrNoMatch
	}
	// The age is checked after the match so that a stale header is only
	// reported for a request that really came from the signer.
	if now.Sub(p.t) > tolerance {
		return ErrStale
	}
	return nil
}
