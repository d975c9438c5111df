package sig_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"dunning/internal/sig"
)

const (
	cpSecret     = "cp_secret_0123456789abcdef0123456789"
	noticeSecret = "notice_secret_fedcba9876543210fedcba"
	newCPSecret  = "cp_secret_new_aaaabbbbccccddddeeeeffff"
)

var suspend = sig.Request{
	Method:         http.MethodPost,
	Target:         "/api/v1/customers/org%2F42/suspend",
	IdempotencyKey: "recovery-cus_1/suspend/1",
	Body:           []byte(`{"customer_id":"org/42","action":"suspend","idempotency_key":"recovery-cus_1/suspend/1"}`),
}

// referenceV2 computes a v2 signature independently of the package, from
// the documented message: kind, t, method, target, key, body, one per line.
func referenceV2(kind, secret string, t time.Time, r sig.Request) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%s\n%d\n%s\n%s\n%s\n%s", kind, t.Unix(), r.Method, r.Target, r.IdempotencyKey, r.Body)
	return hex.EncodeToString(mac.Sum(nil))
}

func sign(t *testing.T, k sig.Kind, at time.Time, r sig.Request, secrets ...string) string {
	t.Helper()
	h, err := k.Sign(at, r, secrets...)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return h
}

func TestRequestSignatureIsTheDocumentedOne(t *testing.T) {
	t.Parallel()
	h := sign(t, sig.KindControlPlane, now, suspend, cpSecret)
	want := "t=" + strconv.FormatInt(now.Unix(), 10) + ",v2=" + referenceV2("dunning-control-plane", cpSecret, now, suspend)
	if h != want {
		t.Fatalf("Sign = %q, want %q", h, want)
	}
	if err := sig.KindControlPlane.Verify(h, suspend, []string{cpSecret}, tolerance, now); err != nil {
		t.Fatalf("Verify of a fresh header: %v", err)
	}
	n := sign(t, sig.KindCustomerNotice, now, suspend, noticeSecret)
	if want := "t=" + strconv.FormatInt(now.Unix(), 10) + ",v2=" + referenceV2("dunning-customer-notice", noticeSecret, now, suspend); n != want {
		t.Fatalf("notice Sign = %q, want %q", n, want)
	}
}

// A signature of one kind never verifies as the other, even under the same
// secret (which the configuration refuses anyway).
func TestKindsDoNotCross(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		signed, verified sig.Kind
	}{
		{sig.KindControlPlane, sig.KindCustomerNotice},
		{sig.KindCustomerNotice, sig.KindControlPlane},
	} {
		h := sign(t, tc.signed, now, suspend, cpSecret)
		if err := tc.verified.Verify(h, suspend, []string{cpSecret}, tolerance, now); !errors.Is(err, sig.ErrNoMatch) {
			t.Errorf("%s signature verified as %s: %v, want %v", tc.signed, tc.verified, err, sig.ErrNoMatch)
		}
		if err := tc.signed.Verify(h, suspend, []string{cpSecret}, tolerance, now); err != nil {
			t.Errorf("%s signature as %s: %v", tc.signed, tc.signed, err)
		}
	}
}

func TestRequestSignatureCoversEveryPart(t *testing.T) {
	t.Parallel()
	h := sign(t, sig.KindControlPlane, now, suspend, cpSecret)
	change := func(f func(r *sig.Request)) sig.Request {
		r := suspend
		r.Body = bytes.Clone(suspend.Body)
		f(&r)
		return r
	}
	cases := []struct {
		name string
		req  sig.Request
	}{
		{"resume instead of suspend", change(func(r *sig.Request) { r.Target = "/api/v1/customers/org%2F42/resume" })},
		{"another customer", change(func(r *sig.Request) { r.Target = "/api/v1/customers/org%2F43/suspend" })},
		{"unescaped path", change(func(r *sig.Request) { r.Target = "/api/v1/customers/org/42/suspend" })},
		{"another base path", change(func(r *sig.Request) { r.Target = "/api/v2/customers/org%2F42/suspend" })},
		{"a query added", change(func(r *sig.Request) { r.Target += "?force=1" })},
		{"PUT instead of POST", change(func(r *sig.Request) { r.Method = http.MethodPut })},
		{"lower-case method", change(func(r *sig.Request) { r.Method = "post" })},
		{"another idempotency key", change(func(r *sig.Request) { r.IdempotencyKey = "recovery-cus_1/suspend/2" })},
		{"body changed by one byte", change(func(r *sig.Request) { r.Body[len(r.Body)/2] ^= 1 })},
		{"body with a byte appended", change(func(r *sig.Request) { r.Body = append(r.Body, ' ') })},
		{"empty body", change(func(r *sig.Request) { r.Body = nil })},
		// The line structure cannot be shifted: moving text between the
		// key and the body gives another message.
		{"key and body boundary moved", change(func(r *sig.Request) {
			r.IdempotencyKey += "x"
			r.Body = r.Body[1:]
		})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := sig.KindControlPlane.Verify(h, tc.req, []string{cpSecret}, tolerance, now); !errors.Is(err, sig.ErrNoMatch) {
				t.Fatalf("Verify = %v, want %v", err, sig.ErrNoMatch)
			}
		})
	}
	if err := sig.KindControlPlane.Verify(h, suspend, []string{noticeSecret}, tolerance, now); !errors.Is(err, sig.ErrNoMatch) {
		t.Errorf("Verify with another secret = %v, want %v", err, sig.ErrNoMatch)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	moved := strings.Replace(h, ts, strconv.FormatInt(now.Unix()+1, 10), 1)
	if err := sig.KindControlPlane.Verify(moved, suspend, []string{cpSecret}, tolerance, now); !errors.Is(err, sig.ErrNoMatch) {
		t.Errorf("Verify with the timestamp changed = %v, want %v", err, sig.ErrNoMatch)
	}
}

func TestRequestTolerance(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		signed time.Time
		want   error
	}{
		{"older than tolerance", now.Add(-tolerance - time.Second), sig.ErrStale},
		{"further ahead than tolerance", now.Add(tolerance + time.Second), sig.ErrStale},
		{"a day old", now.Add(-24 * time.Hour), sig.ErrStale},
		{"exactly tolerance old", now.Add(-tolerance), nil},
		{"exactly tolerance ahead", now.Add(tolerance), nil},
		{"slightly ahead (clock skew)", now.Add(20 * time.Second), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := sign(t, sig.KindCustomerNotice, tc.signed, suspend, noticeSecret)
			err := sig.KindCustomerNotice.Verify(h, suspend, []string{noticeSecret}, tolerance, now)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	// A stale header under a foreign secret is a mismatch, not stale.
	h := sign(t, sig.KindCustomerNotice, now.Add(-time.Hour), suspend, cpSecret)
	if err := sig.KindCustomerNotice.Verify(h, suspend, []string{noticeSecret}, tolerance, now); !errors.Is(err, sig.ErrNoMatch) {
		t.Errorf("stale and foreign: %v, want %v", err, sig.ErrNoMatch)
	}
}

// Rotation: the sender may sign with several secrets, the receiver may
// accept several; one common secret is enough.
func TestRequestRotation(t *testing.T) {
	t.Parallel()
	both := sign(t, sig.KindControlPlane, now, suspend, newCPSecret, cpSecret)
	if n := strings.Count(both, "v2="); n != 2 {
		t.Fatalf("header for two secrets has %d v2 entries: %q", n, both)
	}
	for _, tc := range []struct {
		name    string
		header  string
		secrets []string
	}{
		{"two entries, receiver has the old secret", both, []string{cpSecret}},
		{"two entries, receiver has the new secret", both, []string{newCPSecret}},
		{"sender on the new secret, receiver has both", sign(t, sig.KindControlPlane, now, suspend, newCPSecret), []string{cpSecret, newCPSecret}},
		{"sender on the old secret, receiver has both", sign(t, sig.KindControlPlane, now, suspend, cpSecret), []string{newCPSecret, cpSecret}},
	} {
		if err := sig.KindControlPlane.Verify(tc.header, suspend, tc.secrets, tolerance, now); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if err := sig.KindControlPlane.Verify(sign(t, sig.KindControlPlane, now, suspend, newCPSecret), suspend, []string{cpSecret}, tolerance, now); !errors.Is(err, sig.ErrNoMatch) {
		t.Errorf("new secret only, receiver has the old: %v, want %v", err, sig.ErrNoMatch)
	}
	if err := sig.KindControlPlane.Verify(both, suspend, []string{"", " "}, tolerance, now); !errors.Is(err, sig.ErrNoMatch) {
		t.Errorf("receiver with empty secrets: %v, want %v", err, sig.ErrNoMatch)
	}
}

// A v2 verifier is never downgraded to Stripe's body-only v1: a header
// with only v1 entries is refused as the wrong scheme, and a v1 entry
// beside a wrong v2 entry does not rescue it.
func TestRequestNoDowngradeToV1(t *testing.T) {
	t.Parallel()
	v1Only := sig.Header(now, suspend.Body, cpSecret)
	if err := sig.KindControlPlane.Verify(v1Only, suspend, []string{cpSecret}, tolerance, now); !errors.Is(err, sig.ErrWrongScheme) {
		t.Errorf("v1-only header: %v, want %v", err, sig.ErrWrongScheme)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	mixed := "t=" + ts + ",v1=" + sig.Compute(cpSecret, now, suspend.Body) + ",v2=" + strings.Repeat("ab", 32)
	if err := sig.KindControlPlane.Verify(mixed, suspend, []string{cpSecret}, tolerance, now); !errors.Is(err, sig.ErrNoMatch) {
		t.Errorf("good v1 beside a bad v2: %v, want %v", err, sig.ErrNoMatch)
	}
	// And the v2 header is no v1 signature for a Stripe-style verifier.
	v2 := sign(t, sig.KindControlPlane, now, suspend, cpSecret)
	if err := sig.Verify(v2, suspend.Body, []string{cpSecret}, tolerance, now); !errors.Is(err, sig.ErrMalformed) {
		t.Errorf("v1 Verify of a v2 header: %v, want %v", err, sig.ErrMalformed)
	}
}

func TestRequestMalformed(t *testing.T) {
	t.Parallel()
	ts := strconv.FormatInt(now.Unix(), 10)
	good := referenceV2("dunning-control-plane", cpSecret, now, suspend)
	cases := []struct {
		name   string
		header string
		want   error
	}{
		{"empty", "", sig.ErrMissing},
		{"no t", "v2=" + good, sig.ErrMalformed},
		{"t not a number", "t=soon,v2=" + good, sig.ErrMalformed},
		{"t zero", "t=0,v2=" + good, sig.ErrMalformed},
		{"duplicate t", "t=" + ts + ",t=" + ts + ",v2=" + good, sig.ErrMalformed},
		{"no signature", "t=" + ts, sig.ErrMalformed},
		{"v2 not hex", "t=" + ts + ",v2=" + strings.Repeat("zz", 32), sig.ErrMalformed},
		{"v2 truncated", "t=" + ts + ",v2=" + good[:62], sig.ErrMalformed},
		{"unreadable v2 beside a good one", "t=" + ts + ",v2=nothex,v2=" + good, sig.ErrMalformed},
		{"entry without =", "t=" + ts + ",v2=" + good + ",junk", sig.ErrMalformed},
		{"garbage", "garbage", sig.ErrMalformed},
		{"only v1", "t=" + ts + ",v1=" + good, sig.ErrWrongScheme},
		{"too many entries", "t=" + ts + strings.Repeat(",v2="+good, 17), sig.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := sig.KindControlPlane.Verify(tc.header, suspend, []string{cpSecret}, tolerance, now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify(%q) = %v, want %v", tc.header, err, tc.want)
			}
			if err != nil && (len(err.Error()) > 60 || strings.Contains(err.Error(), good[:16])) {
				t.Errorf("error %q is long or echoes the header", err)
			}
		})
	}
	// Sixteen entries, the good one last, are fine; unknown schemes are
	// ignored.
	h := "t=" + ts + strings.Repeat(",v2="+strings.Repeat("cd", 32), 15) + ",v3=xyz,v2=" + good
	if err := sig.KindControlPlane.Verify(h, suspend, []string{cpSecret}, tolerance, now); err != nil {
		t.Errorf("16 v2 entries and a v3: %v", err)
	}
}

// A request line that cannot be signed unambiguously is refused on both
// sides: no method, no key, a target that is not a path, or a line break.
func TestRequestLineChecked(t *testing.T) {
	t.Parallel()
	for name, r := range map[string]sig.Request{
		"no method":              {Target: "/x", IdempotencyKey: "k"},
		"no key":                 {Method: "POST", Target: "/x"},
		"absolute URL as target": {Method: "POST", Target: "https://cp.example/x", IdempotencyKey: "k"},
		"newline in key":         {Method: "POST", Target: "/x", IdempotencyKey: "k\nPOST"},
		"newline in target":      {Method: "POST", Target: "/x\n/y", IdempotencyKey: "k"},
		"newline in method":      {Method: "POST\n", Target: "/x", IdempotencyKey: "k"},
		"DEL in key":             {Method: "POST", Target: "/x", IdempotencyKey: "k\x7f"},
	} {
		if _, err := sig.KindControlPlane.Sign(now, r, cpSecret); !errors.Is(err, sig.ErrBadRequestLine) {
			t.Errorf("Sign with %s: %v, want %v", name, err, sig.ErrBadRequestLine)
		}
		h := "t=" + strconv.FormatInt(now.Unix(), 10) + ",v2=" + referenceV2("dunning-control-plane", cpSecret, now, r)
		if err := sig.KindControlPlane.Verify(h, r, []string{cpSecret}, tolerance, now); !errors.Is(err, sig.ErrBadRequestLine) {
			t.Errorf("Verify with %s: %v, want %v", name, err, sig.ErrBadRequestLine)
		}
	}
}

// VerifyHTTP reads what it verifies from the request as a Go server got
// it: method, request target with its query, Idempotency-Key and body.
func TestVerifyHTTP(t *testing.T) {
	t.Parallel()
	type seen struct {
		err error
	}
	got := make(chan seen, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := new(bytes.Buffer)
		_, _ = body.ReadFrom(r.Body)
		got <- seen{sig.KindCustomerNotice.VerifyHTTP(r, body.Bytes(), []string{noticeSecret}, tolerance, time.Now())}
	}))
	t.Cleanup(srv.Close)

	send := func(method, target, key, signedTarget string, body []byte) error {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+target, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		h := sign(t, sig.KindCustomerNotice, time.Now(), sig.Request{Method: http.MethodPost, Target: signedTarget, IdempotencyKey: "n1", Body: body}, noticeSecret)
		req.Header.Set("Dunning-Signature", h)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return (<-got).err
	}
	body := []byte(`{"id":"n1","type":"payment_failed"}`)
	const target = "/mailer/notices?tenant=acme%2Feu&x=a+b"
	if err := send(http.MethodPost, target, "n1", target, body); err != nil {
		t.Errorf("signed as sent: %v", err)
	}
	if err := send(http.MethodPost, target, "n1", "/mailer/notices", body); !errors.Is(err, sig.ErrNoMatch) {
		t.Errorf("signed without the query: %v, want %v", err, sig.ErrNoMatch)
	}
	if err := send(http.MethodPost, "/mailer/other", "n1", target, body); !errors.Is(err, sig.ErrNoMatch) {
		t.Errorf("sent to another path: %v, want %v", err, sig.ErrNoMatch)
	}
	if err := send(http.MethodPost, target, "n2", target, body); !errors.Is(err, sig.ErrNoMatch) {
		t.Errorf("sent with another Idempotency-Key: %v, want %v", err, sig.ErrNoMatch)
	}
	if err := send(http.MethodPut, target, "n1", target, body); !errors.Is(err, sig.ErrNoMatch) {
		t.Errorf("sent as PUT: %v, want %v", err, sig.ErrNoMatch)
	}
	if err := send(http.MethodPost, target, "", target, body); !errors.Is(err, sig.ErrBadRequestLine) {
		t.Errorf("sent without Idempotency-Key: %v, want %v", err, sig.ErrBadRequestLine)
	}
}
