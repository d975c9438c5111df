package sig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The v2 scheme signs dunning's own requests: to the control plane and to
// the customer-notice webhook. Stripe's v1 scheme above signs the body
// alone, so a captured body verifies on any path and at any receiver that
// shares the secret; v2 binds the signature to the kind of request, its
// method, its request target and its idempotency key as well:
//
//	Dunning-Signature: t=<unix seconds>,v2=<hex HMAC-SHA256 of the message>
//
//	message = kind "\n" t "\n" method "\n" target "\n" idempotency key "\n" body
//
// kind is KindControlPlane or KindCustomerNotice, target the request's
// path, escaped as sent, with "?" and the query when there is one (the
// HTTP request target, http.Request.RequestURI on a Go server). No field
// but the body may contain a line break, so the message is unambiguous.
// Several v2 entries may be sent, one per secret.
//
// A v2 verifier accepts v2 entries only: a header with v1 entries and no
// v2 is ErrWrongScheme, never verified as v1.

// SchemeV2 names the entries of the request scheme.
const SchemeV2 = "v2"

// Kind separates the signatures of the peers dunning calls, so that a
// request signed for one never verifies at the other.
type Kind string

// The kinds of signed requests.
const (
	KindControlPlane   Kind = "dunning-control-plane"
	KindCustomerNotice Kind = "dunning-customer-notice"
)

// MinSecretLen is the shortest secret accepted for signing requests: 32
// bytes, as `openssl rand -hex 16` (or more) makes.
const MinSecretLen = 32

// IdempotencyHeader carries the idempotency key that v2 signs.
const IdempotencyHeader = "Idempotency-Key"

// Errors of the request scheme beside ErrMissing, ErrMalformed, ErrNoMatch
// and ErrStale.
var (
	// ErrWrongScheme: the header has no v2 entry (a sender still on v1).
	ErrWrongScheme = errors.New("no v2 signature in header")
	// ErrBadRequestLine: the method, target or idempotency key cannot be
	// part of a signed request (empty, or with a line break or control
	// character).
	ErrBadRequestLine = errors.New("request method, target or idempotency key unusable")
)

// Request is what v2 signs of one HTTP request.
type Request struct {
	Method string // e.g. POST
	// Target is the path, escaped as sent, with "?query" when there is
	// one: what url.URL.RequestURI gives on the sending side and
	// http.Request.RequestURI on a Go server.
	Target         string
	IdempotencyKey string
	Body           []byte
}

// RequestOf returns the Request of an HTTP request as a receiver sees it,
// with body the request's body already read.
func RequestOf(r *http.Request, body []byte) Request {
	target := r.RequestURI
	if !strings.HasPrefix(target, "/") {
		// Built in-process rather than read from the wire, or sent in
		// absolute form through a forward proxy.
		target = r.URL.RequestURI()
	}
	return Request{Method: r.Method, Target: target, IdempotencyKey: r.Header.Get(IdempotencyHeader), Body: body}
}

func (r Request) check() error {
	if r.Method == "" || r.IdempotencyKey == "" || !strings.HasPrefix(r.Target, "/") {
		return ErrBadRequestLine
	}
	for _, s := range []string{r.Method, r.Target, r.IdempotencyKey} {
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] == 0x7f {
				return ErrBadRequestLine
			}
		}
	}
	return nil
}

func (k Kind) sum(secret string, unix int64, r Request) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(k))
	mac.Write([]byte{'\n'})
	mac.Write(strconv.AppendInt(nil, unix, 10))
	for _, s := range []string{r.Method, r.Target, r.IdempotencyKey} {
		mac.Write([]byte{'\n'})
		mac.Write([]byte(s))
	}
	mac.Write([]byte{'\n'})
	mac.Write(r.Body)
	return mac.Sum(nil)
}

// Sign returns the signature header for r at t, one v2 entry per secret in
// the order given, or ErrBadRequestLine.
func (k Kind) Sign(t time.Time, r Request, secrets ...string) (string, error) {
	if err := r.check(); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(strconv.FormatInt(t.Unix(), 10))
	for _, s := range secrets {
		b.WriteString("," + SchemeV2 + "=")
		b.WriteString(hex.EncodeToString(k.sum(s, t.Unix(), r)))
	}
	return b.String(), nil
}

// Verify checks header against r under every secret: nil when a v2 entry
// matches a secret and the timestamp is within tolerance of now, in either
// direction. v1 entries are ignored; a header with no v2 entry is
// ErrWrongScheme. The error is one of the Err values and never carries the
// header's contents.
//
// Verify does not remember what it has seen: within the tolerance the same
// request verifies again, and the receiver's idempotency key store is what
// makes a replay harmless (docs/operations.md, Verifying dunning's
// signatures).
func (k Kind) Verify(header string, r Request, secrets []string, tolerance time.Duration, now time.Time) error {
	if header == "" {
		return ErrMissing
	}
	t, sigs, err := parseV2(header)
	if err != nil {
		return err
	}
	if err := r.check(); err != nil {
		return err
	}
	matched := false
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		want := k.sum(secret, t, r)
		for _, got := range sigs {
			if hmac.Equal(want, got) {
				matched = true
			}
		}
	}
	if !matched {
		return ErrNoMatch
	}
	if d := now.Sub(time.Unix(t, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	return nil
}

// VerifyHTTP verifies an incoming request whose body has been read: the
// Dunning-Signature header against its method, request target,
// Idempotency-Key header and body.
func (k Kind) VerifyHTTP(r *http.Request, body []byte, secrets []string, tolerance time.Duration, now time.Time) error {
	return k.Verify(r.Header.Get("Dunning-Signature"), RequestOf(r, body), secrets, tolerance, now)
}

// parseV2 reads "t=<unix>,v2=<hex>[,v2=…]". Unlike Stripe's v1, an
// unreadable v2 entry makes the whole header malformed: dunning writes
// these headers itself and never writes a bad entry.
func parseV2(header string) (int64, [][]byte, error) {
	var (
		t     int64
		haveT bool
		sigs  [][]byte
		v1    bool
	)
	for _, part := range strings.Split(header, ",") {
		key, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return 0, nil, ErrMalformed
		}
		switch key {
		case "t":
			secs, err := strconv.ParseInt(v, 10, 64)
			if haveT || err != nil || secs <= 0 {
				return 0, nil, ErrMalformed
			}
			t, haveT = secs, true
		case SchemeV2:
			raw, err := hex.DecodeString(v)
			if err != nil || len(raw) != sha256.Size || len(sigs) == maxSignatures {
				return 0, nil, ErrMalformed
			}
			sigs = append(sigs, raw)
		case Scheme:
			v1 = true
		default:
			// Later schemes are ignored.
		}
	}
	switch {
	case !haveT:
		return 0, nil, ErrMalformed
	case len(sigs) == 0 && v1:
		return 0, nil, ErrWrongScheme
	case len(sigs) == 0:
		return 0, nil, ErrMalformed
	}
	return t, sigs, nil
}
