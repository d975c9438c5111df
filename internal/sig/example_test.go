package sig_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"dunning/controlplane"
	"dunning/internal/sig"
	"dunning/notify"
)

// The receiving side, as docs/operations.md ("Verifying dunning's
// signatures") shows it; TestOperationsDocShowsTheExample keeps the two
// the same. It uses the standard library only, so that a receiver can take
// it as it is.

// receiving side: start

// verifyDunningSignature checks the Dunning-Signature of a request from
// dunning (scheme v2). kind is "dunning-control-plane" at the control plane
// and "dunning-customer-notice" at the mailer; secrets are the receiver's
// current secrets (two while one is being rotated); body is the raw body.
func verifyDunningSignature(r *http.Request, body []byte, kind string, secrets []string, tolerance time.Duration, now time.Time) error {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return errors.New("no Idempotency-Key")
	}
	var t string
	var sigs [][]byte
	for _, part := range strings.Split(r.Header.Get("Dunning-Signature"), ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch name {
		case "t":
			t = value
		case "v2":
			if sig, err := hex.DecodeString(value); err == nil {
				sigs = append(sigs, sig)
			}
		}
		// v1 entries (the body alone, Stripe's scheme) are never accepted.
	}
	unix, err := strconv.ParseInt(t, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errors.New("no v2 signature")
	}
	if age := now.Sub(time.Unix(unix, 0)); age > tolerance || age < -tolerance {
		return errors.New("signature outside the tolerance")
	}
	// r.RequestURI is the path and query exactly as sent. Behind a proxy
	// that rewrites paths, use the path dunning called instead.
	for _, secret := range secrets {
		mac := hmac.New(sha256.New, []byte(secret))
		fmt.Fprintf(mac, "%s\n%s\n%s\n%s\n%s\n", kind, t, r.Method, r.RequestURI, key)
		mac.Write(body)
		want := mac.Sum(nil)
		for _, sig := range sigs {
			if hmac.Equal(sig, want) { // constant time
				return nil
			}
		}
	}
	return errors.New("no signature matches")
}

// idempotencyKeys remembers each key with the request it came with and
// the answer given, for longer than the tolerance (a day here), so that a
// replayed or retried request is answered again and never applied twice.
type idempotencyKeys struct {
	mu   sync.Mutex
	keep time.Duration
	seen map[string]firstRequest
}

type firstRequest struct {
	request [sha256.Size]byte // method, target and body
	status  int
	at      time.Time
}

// controlPlane is the control plane's endpoint for dunning's calls.
func controlPlane(secrets []string, keys *idempotencyKeys, apply func(customer, action string) int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		now := time.Now()
		if err := verifyDunningSignature(r, body, "dunning-control-plane", secrets, 5*time.Minute, now); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		// Only now, with the path known to be signed, is it read.
		rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/customers/")
		customer, action, ok2 := strings.Cut(rest, "/")
		if !ok || !ok2 || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		request := sha256.Sum256([]byte(r.Method + "\n" + r.RequestURI + "\n" + string(body)))
		key := r.Header.Get("Idempotency-Key")

		keys.mu.Lock()
		defer keys.mu.Unlock()
		for k, first := range keys.seen {
			if now.Sub(first.at) > keys.keep {
				delete(keys.seen, k)
			}
		}
		if first, seen := keys.seen[key]; seen {
			if first.request != request {
				http.Error(w, "idempotency key reused for another request", http.StatusUnprocessableEntity)
				return
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(first.status) // the first answer, nothing applied again
			return
		}
		status := apply(customer, action) // 200 applied, 409 already so
		keys.seen[key] = firstRequest{request: request, status: status, at: now}
		w.WriteHeader(status)
	})
}

// receiving side: end

// Example_verifyingOnTheReceivingSide runs dunning's control-plane client
// against the receiver above: a call is applied, its retry is answered
// without being applied again, and captured requests replayed to another
// path, or a customer notice replayed to the control plane, are refused.
func Example_verifyingOnTheReceivingSide() {
	const cpSecret = "cp_secret_made_with_openssl_rand_hex_32"
	const noticeSecret = "notice_secret_made_with_openssl_rand_hex"

	var applied []string
	keys := &idempotencyKeys{keep: 24 * time.Hour, seen: map[string]firstRequest{}}
	srv := httptest.NewServer(controlPlane([]string{cpSecret}, keys, func(customer, action string) int {
		applied = append(applied, action+" "+customer)
		return http.StatusOK
	}))
	defer srv.Close()

	// Every request dunning sends passes through capture, as if someone
	// on the network kept a copy.
	var captured []*http.Request
	capture := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		body, _ := io.ReadAll(r.Body)
		kept := r.Clone(context.Background())
		kept.Body = io.NopCloser(bytes.NewReader(body))
		captured = append(captured, kept)
		r.Body = io.NopCloser(bytes.NewReader(body))
		return http.DefaultTransport.RoundTrip(r)
	})}

	cp, err := controlplane.New(controlplane.Config{BaseURL: srv.URL + "/api/v1", Secret: cpSecret, HTTPClient: capture})
	if err != nil {
		fmt.Println(err)
		return
	}
	suspend := controlplane.Request{Action: controlplane.Suspend, CustomerID: "org_42", IdempotencyKey: "recovery-cus_42/suspend/1"}
	for _, attempt := range []string{"first call", "retry"} {
		res, err := cp.Do(context.Background(), suspend)
		fmt.Println(attempt+":", res.StatusCode, err)
	}

	// The captured suspend, replayed as it was, and to the resume path.
	fmt.Println("replayed as sent:", replay(captured[0], srv.URL+"/api/v1/customers/org_42/suspend"))
	fmt.Println("replayed to resume:", replay(captured[0], srv.URL+"/api/v1/customers/org_42/resume"))

	// A customer notice, captured on its way to the mailer and replayed to
	// the control plane.
	mailer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer mailer.Close()
	notices, _ := notify.NewNoticeSender(notify.NoticeConfig{URL: mailer.URL + "/notices", Secret: noticeSecret, HTTPClient: capture})
	_ = notices.Send(context.Background(), notify.Notice{ID: "recovery-cus_42/suspend/1", Type: notify.AccountSuspended, CustomerID: "org_42"})
	fmt.Println("notice replayed to the control plane:", replay(captured[len(captured)-1], srv.URL+"/api/v1/customers/org_42/suspend"))

	fmt.Println("applied:", applied)
	// Output:
	// first call: 200 <nil>
	// retry: 200 <nil>
	// replayed as sent: 200 Idempotent-Replayed
	// replayed to resume: 401
	// notice replayed to the control plane: 401
	// applied: [suspend org_42]
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// replay sends a captured request's headers and body again, to url.
func replay(captured *http.Request, url string) string {
	body, _ := io.ReadAll(captured.Body)
	captured.Body = io.NopCloser(bytes.NewReader(body))
	req, _ := http.NewRequest(captured.Method, url, bytes.NewReader(body))
	req.Header = captured.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	resp.Body.Close()
	out := strconv.Itoa(resp.StatusCode)
	if resp.Header.Get("Idempotent-Replayed") != "" {
		out += " Idempotent-Replayed"
	}
	return out
}

// The receiver's standalone verification agrees with the package's.
func TestExampleVerifierAgreesWithPackage(t *testing.T) {
	t.Parallel()
	const secret = "cp_secret_made_with_openssl_rand_hex_32"
	signed := func(target, key string, body []byte, at time.Time, header func(string) string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		r.Header.Set("Idempotency-Key", key)
		h := sign(t, "dunning-control-plane", at, suspendAt(target, key, body), secret)
		r.Header.Set("Dunning-Signature", header(h))
		return r
	}
	same := func(h string) string { return h }
	body := []byte(`{"action":"suspend"}`)
	n := time.Now()
	cases := []struct {
		name string
		r    *http.Request
		ok   bool
	}{
		{"as signed", signed("/api/v1/customers/org_42/suspend", "k1", body, n, same), true},
		{"with a query", signed("/api/v1/customers/org_42/suspend?x=a%20b", "k1", body, n, same), true},
		{"stale", signed("/api/v1/customers/org_42/suspend", "k1", body, n.Add(-6*time.Minute), same), false},
		{"v2 renamed v1", signed("/api/v1/customers/org_42/suspend", "k1", body, n, func(h string) string { return strings.Replace(h, "v2=", "v1=", 1) }), false},
	}
	for _, tc := range cases {
		err := verifyDunningSignature(tc.r, body, "dunning-control-plane", []string{secret}, 5*time.Minute, n)
		pkg := sigKindVerify(tc.r, body, secret, n)
		if (err == nil) != tc.ok || (pkg == nil) != tc.ok {
			t.Errorf("%s: example says %v, package says %v; want ok %v", tc.name, err, pkg, tc.ok)
		}
	}
}

// The operations guide shows the receiving side exactly as it is compiled
// and run here.
func TestOperationsDocShowsTheExample(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(src), "// receiving side: start\n")
	code, _, _ := strings.Cut(rest, "// receiving side: end\n")
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	if code == "" || !strings.Contains(string(doc), "```go\n"+strings.TrimSpace(code)+"\n```") {
		t.Error(`docs/operations.md does not show the receiving side of internal/sig/example_test.go as it is; copy the code between "receiving side: start" and "end" into its go block`)
	}
}

func suspendAt(target, key string, body []byte) sig.Request {
	return sig.Request{Method: http.MethodPost, Target: target, IdempotencyKey: key, Body: body}
}

func sigKindVerify(r *http.Request, body []byte, secret string, now time.Time) error {
	return sig.KindControlPlane.VerifyHTTP(r, body, []string{secret}, 5*time.Minute, now)
}
