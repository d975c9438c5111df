package controlplane_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"dunning/controlplane"
	"dunning/internal/httpx"
	"dunning/internal/sig"
)

const secret = "cp_test_secret_0123456789abcdefghijkl"

var clock = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// An ID with a slash, a space, a question mark, a percent sign and a
// non-ASCII letter: each must survive the trip through the path.
const customerID = "org/42 ?%é"

func request(action controlplane.Action) controlplane.Request {
	return controlplane.Request{
		Action:           action,
		CustomerID:       customerID,
		StripeCustomerID: "cus_Nx1",
		IdempotencyKey:   "recovery-cus_Nx1/suspended/1",
		Reason:           "invoice unpaid after grace period",
		WorkflowID:       "recovery-cus_Nx1",
		AmountDue:        4999,
		Currency:         "usd",
		RequestedAt:      time.Date(2025, 3, 14, 15, 0, 0, 0, time.FixedZone("CET", 3600)),
	}
}

// received is what the receiver saw of one request.
type received struct {
	path string
	body map[string]any
}

// receiver is an httptest server that checks each request the way the
// control plane would, then answers with status and answer.
func receiver(t *testing.T, status int, answer string, header http.Header) (*httptest.Server, <-chan received) {
	t.Helper()
	got := make(chan received, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
		}
		if r.Method != http.MethodPost {
			t.Errorf("method = %s, want POST", r.Method)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q, want application/json", ct)
		}
		sigHeader := r.Header.Get(controlplane.SignatureHeader)
		signed := sig.RequestOf(r, raw)
		if err := sig.KindControlPlane.Verify(sigHeader, signed, []string{secret}, 5*time.Minute, clock); err != nil {
			t.Errorf("signature does not verify with the secret: %v (header %q)", err, sigHeader)
		}
		if err := sig.KindControlPlane.Verify(sigHeader, signed, []string{"some other secret of thirty-two bytes"}, 5*time.Minute, clock); !errors.Is(err, sig.ErrNoMatch) {
			t.Errorf("signature with a wrong secret: err = %v, want ErrNoMatch", err)
		}
		if err := sig.KindCustomerNotice.Verify(sigHeader, signed, []string{secret}, 5*time.Minute, clock); !errors.Is(err, sig.ErrNoMatch) {
			t.Errorf("signature verified as a customer notice: err = %v, want ErrNoMatch", err)
		}
		if err := sig.Verify(sigHeader, raw, []string{secret}, 5*time.Minute, clock); err == nil {
			t.Errorf("signature verifies in Stripe's body-only v1 scheme (header %q)", sigHeader)
		}
		tampered := signed
		tampered.Body = append([]byte(nil), raw...)
		tampered.Body[len(raw)/2] ^= 1
		if err := sig.KindControlPlane.Verify(sigHeader, tampered, []string{secret}, 5*time.Minute, clock); !errors.Is(err, sig.ErrNoMatch) {
			t.Errorf("signature over a changed body: err = %v, want ErrNoMatch", err)
		}
		otherPath := signed
		otherPath.Target = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(signed.Target, "/suspend"), "/resume"), "/deprovision") + "/other"
		if err := sig.KindControlPlane.Verify(sigHeader, otherPath, []string{secret}, 5*time.Minute, clock); !errors.Is(err, sig.ErrNoMatch) {
			t.Errorf("signature verified on path %s: err = %v, want ErrNoMatch", otherPath.Target, err)
		}
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Errorf("body is not JSON: %v: %s", err, raw)
		}
		if key := r.Header.Get("Idempotency-Key"); key == "" || key != body["idempotency_key"] {
			t.Errorf("Idempotency-Key = %q, body idempotency_key = %v; want both set and equal", key, body["idempotency_key"])
		}
		got <- received{path: r.URL.EscapedPath(), body: body}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func newClient(t *testing.T, baseURL string) *controlplane.Client {
	t.Helper()
	c, err := controlplane.New(controlplane.Config{
		BaseURL: baseURL,
		Secret:  secret,
		Timeout: 2 * time.Second,
		Now:     func() time.Time { return clock },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestDoApplied(t *testing.T) {
	for _, action := range []controlplane.Action{controlplane.Suspend, controlplane.Resume, controlplane.Deprovision} {
		t.Run(string(action), func(t *testing.T) {
			srv, got := receiver(t, http.StatusOK, `{"status":"ok"}`, nil)
			// A base path with a trailing slash must not double the slash.
			c := newClient(t, srv.URL+"/api/v1/")
			req := request(action)

			res, err := c.Do(context.Background(), req)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if res != (controlplane.Result{StatusCode: 200}) {
				t.Errorf("result = %+v, want applied with 200", res)
			}
			r := <-got
			wantPath := "/api/v1/customers/org%2F42%20%3F%25%C3%A9/" + string(action)
			if r.path != wantPath {
				t.Errorf("path = %s, want %s", r.path, wantPath)
			}
			want := map[string]any{
				"customer_id":        customerID,
				"stripe_customer_id": "cus_Nx1",
				"action":             string(action),
				"reason":             "invoice unpaid after grace period",
				"workflow_id":        "recovery-cus_Nx1",
				"amount_due":         float64(4999),
				"currency":           "usd",
				"idempotency_key":    "recovery-cus_Nx1/suspended/1",
				"requested_at":       "2025-03-14T14:00:00Z",
			}
			if !reflect.DeepEqual(r.body, want) {
				t.Errorf("body = %v\nwant   %v", r.body, want)
			}
		})
	}
}

func TestDoRequestedAtDefaultsToClock(t *testing.T) {
	srv, got := receiver(t, http.StatusNoContent, "", nil)
	req := request(controlplane.Suspend)
	req.RequestedAt = time.Time{}
	if _, err := newClient(t, srv.URL).Do(context.Background(), req); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if at := (<-got).body["requested_at"]; at != clock.Format(time.RFC3339) {
		t.Errorf("requested_at = %v, want %s", at, clock.Format(time.RFC3339))
	}
}

func TestDoConflictIsAlreadyApplied(t *testing.T) {
	srv, got := receiver(t, http.StatusConflict, `{"error":"customer already suspended"}`, nil)
	res, err := newClient(t, srv.URL).Do(context.Background(), request(controlplane.Suspend))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if !res.AlreadyApplied || res.StatusCode != http.StatusConflict {
		t.Errorf("result = %+v, want AlreadyApplied with 409", res)
	}
	<-got
}

func TestDoErrors(t *testing.T) {
	cases := []struct {
		status     int
		header     http.Header
		retryable  bool
		retryAfter time.Duration
	}{
		{status: 400},
		{status: 401},
		{status: 403},
		{status: 404},
		{status: 422},
		{status: 302, header: http.Header{"Location": {"/elsewhere"}}},
		{status: 408, retryable: true},
		{status: 429, header: http.Header{"Retry-After": {"30"}}, retryable: true, retryAfter: 30 * time.Second},
		{status: 500, retryable: true},
		{status: 502, retryable: true},
		{status: 503, header: http.Header{"Retry-After": {clock.Add(2 * time.Minute).Format(http.TimeFormat)}}, retryable: true, retryAfter: 2 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv, got := receiver(t, tc.status, `{"error":"nope"}`, tc.header)
			_, err := newClient(t, srv.URL).Do(context.Background(), request(controlplane.Deprovision))
			<-got
			if err == nil {
				t.Fatal("Do succeeded, want an error")
			}
			if httpx.IsRetryable(err) != tc.retryable || httpx.IsPermanent(err) == tc.retryable {
				t.Errorf("IsRetryable = %v, IsPermanent = %v, want retryable %v (err: %v)",
					httpx.IsRetryable(err), httpx.IsPermanent(err), tc.retryable, err)
			}
			var apiErr *httpx.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err %v is not an *httpx.APIError", err)
			}
			op := "POST /customers/" + url.PathEscape(customerID) + "/deprovision"
			if apiErr.StatusCode != tc.status || apiErr.Peer != "control plane" || apiErr.Op != op || apiErr.RetryAfter != tc.retryAfter {
				t.Errorf("APIError = %+v, want status %d, op %s, retry after %s", apiErr, tc.status, op, tc.retryAfter)
			}
			if !strings.Contains(apiErr.Message, "nope") {
				t.Errorf("Message = %q, want the body excerpt", apiErr.Message)
			}
			want := fmt.Sprintf(`deprovision customer %q: %s: control plane answered %d %s: {"error":"nope"}`,
				customerID, op, tc.status, http.StatusText(tc.status))
			if msg := err.Error(); !strings.Contains(msg, want) {
				t.Errorf("error %q\nwant it to say what was being done and what came back: %q", msg, want)
			}
		})
	}
}

func TestErrorMessageIsShortAndHasNoSecret(t *testing.T) {
	answer := "upstream failure; config dump: secret=" + secret + " " + strings.Repeat("x", 10000)
	srv, got := receiver(t, http.StatusInternalServerError, answer, nil)
	_, err := newClient(t, srv.URL).Do(context.Background(), request(controlplane.Suspend))
	<-got
	var apiErr *httpx.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err %v is not an *httpx.APIError", err)
	}
	if len(apiErr.Message) > 300 {
		t.Errorf("Message is %d bytes, want a short excerpt", len(apiErr.Message))
	}
	if !strings.HasPrefix(apiErr.Message, "upstream failure") {
		t.Errorf("Message = %q, want the start of the body", apiErr.Message)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error contains the secret: %v", err)
	}
}

func TestDoTimeoutIsRetryable(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	c, err := controlplane.New(controlplane.Config{BaseURL: srv.URL, Secret: secret, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The caller's own deadline is only a safety net: the configured
	// timeout must end the call long before it.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err = c.Do(ctx, request(controlplane.Suspend))
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Do took %s, want about the 100ms timeout", elapsed)
	}
	if err == nil {
		t.Fatal("Do succeeded against a hanging server")
	}
	if !httpx.IsRetryable(err) || httpx.IsPermanent(err) {
		t.Errorf("timeout not retryable: %v", err)
	}
	if !strings.Contains(err.Error(), "no answer within 100ms") {
		t.Errorf("err %q does not say the control plane did not answer in time", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if calls.Load() != 1 {
		t.Errorf("server saw %d calls, want exactly 1 attempt", calls.Load())
	}
}

func TestDoNetworkErrorIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more

	_, err := newClient(t, url).Do(context.Background(), request(controlplane.Resume))
	if err == nil {
		t.Fatal("Do succeeded with no server")
	}
	var apiErr *httpx.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 0 || !httpx.IsRetryable(err) || httpx.IsPermanent(err) {
		t.Errorf("err = %v, want a retryable *httpx.APIError without status", err)
	}
	if strings.Contains(err.Error(), url) {
		t.Errorf("error repeats the request URL: %v", err)
	}
}

// The caller's own context ending is neither retryable nor permanent: the
// activity is over, and it is not for the client to decide.
func TestDoCallerCancels(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)

	_, err := newClient(t, srv.URL).Do(ctx, request(controlplane.Suspend))
	if !errors.Is(err, context.Canceled) || httpx.IsRetryable(err) || httpx.IsPermanent(err) {
		t.Errorf("err = %v (retryable %v, permanent %v); want the caller's cancellation, neither",
			err, httpx.IsRetryable(err), httpx.IsPermanent(err))
	}
}

func TestDoRejectsInvalidRequestsWithoutCalling(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL)

	cases := map[string]func(*controlplane.Request){
		"no idempotency key":    func(r *controlplane.Request) { r.IdempotencyKey = "" },
		"key with a newline":    func(r *controlplane.Request) { r.IdempotencyKey = "a\nb" },
		"key too long":          func(r *controlplane.Request) { r.IdempotencyKey = strings.Repeat("k", 256) },
		"no customer":           func(r *controlplane.Request) { r.CustomerID = "" },
		"customer ..":           func(r *controlplane.Request) { r.CustomerID = ".." },
		"customer .":            func(r *controlplane.Request) { r.CustomerID = "." },
		"unknown action":        func(r *controlplane.Request) { r.Action = "delete" },
		"action with bad value": func(r *controlplane.Request) { r.Action = "Suspend" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			req := request(controlplane.Suspend)
			mutate(&req)
			_, err := c.Do(context.Background(), req)
			if !errors.Is(err, controlplane.ErrInvalidRequest) {
				t.Errorf("err = %v, want ErrInvalidRequest", err)
			}
			if httpx.IsRetryable(err) || !httpx.IsPermanent(err) {
				t.Errorf("invalid request is not permanent: %v", err)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("server saw %d calls for invalid requests, want 0", n)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	const cfgSecret = "cp_config_case_secret_0123456789abcdef"
	cases := []struct {
		name string
		cfg  controlplane.Config
		want string // part of the error; "" means valid
	}{
		{"valid", controlplane.Config{BaseURL: "https://cp.example.com/api", Secret: cfgSecret}, ""},
		{"valid http with port", controlplane.Config{BaseURL: "http://127.0.0.1:9000", Secret: cfgSecret, Timeout: time.Second}, ""},
		{"no url", controlplane.Config{Secret: cfgSecret}, "CONTROL_PLANE_URL is required"},
		{"relative url", controlplane.Config{BaseURL: "/api", Secret: cfgSecret}, "absolute http or https"},
		{"host without scheme", controlplane.Config{BaseURL: "cp.example.com", Secret: cfgSecret}, "absolute http or https"},
		{"ftp", controlplane.Config{BaseURL: "ftp://cp.example.com", Secret: cfgSecret}, `scheme "ftp"`},
		{"no host", controlplane.Config{BaseURL: "https://", Secret: cfgSecret}, "no host"},
		{"query", controlplane.Config{BaseURL: "https://cp.example.com/?token=abc", Secret: cfgSecret}, "query"},
		{"unparsable", controlplane.Config{BaseURL: "https://cp.example.com:port/", Secret: cfgSecret}, "not a valid URL"},
		{"no secret", controlplane.Config{BaseURL: "https://cp.example.com"}, "CONTROL_PLANE_SECRET is required"},
		{"short secret", controlplane.Config{BaseURL: "https://cp.example.com", Secret: cfgSecret[:31]}, "CONTROL_PLANE_SECRET is shorter than 32 bytes"},
		{"negative timeout", controlplane.Config{BaseURL: "https://cp.example.com", Secret: cfgSecret, Timeout: -time.Second}, "timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := controlplane.New(tc.cfg)
			if tc.want == "" {
				if err != nil || c == nil {
					t.Fatalf("New = %v, %v; want a client", c, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New accepted %+v", tc.cfg)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), cfgSecret) {
				t.Errorf("error contains the secret: %v", err)
			}
		})
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := controlplane.New(controlplane.Config{})
	if err == nil || !strings.Contains(err.Error(), "CONTROL_PLANE_URL") || !strings.Contains(err.Error(), "CONTROL_PLANE_SECRET") {
		t.Errorf("err = %v, want both the URL and the secret reported", err)
	}
}
