package httpx_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"dunning/internal/httpx"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// answered is the error for a peer's answer with status, a Retry-After of
// 30 seconds and a short body.
func answered(status int) error {
	resp := &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {"30"}}}
	return httpx.StatusError("peer", "GET /x", resp, []byte(`{"error":"nope"}`), now)
}

func TestClassification(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	syntaxErr := json.Unmarshal([]byte("<html>"), new(any))

	for _, tc := range []struct {
		name                 string
		err                  error
		retryable, permanent bool
	}{
		{"nil", nil, false, false},

		// The peer answered.
		{"200 unreadable", httpx.Unreadable("peer", "GET /x", 200, syntaxErr), false, true},
		{"201 unreadable", httpx.Unreadable("peer", "POST /x", 201, errors.New("not a customer")), false, true},
		{"301", answered(301), false, true},
		{"307", answered(307), false, true},
		{"400", answered(400), false, true},
		{"401", answered(401), false, true},
		{"403", answered(403), false, true},
		{"404", answered(404), false, true},
		{"408", answered(408), true, false},
		{"409", answered(409), false, true},
		{"410", answered(410), false, true},
		{"422", answered(422), false, true},
		{"429", answered(429), true, false},
		{"500", answered(500), true, false},
		{"502", answered(502), true, false},
		{"503", answered(503), true, false},
		{"504", answered(504), true, false},

		// It did not.
		{"connection refused", httpx.NoAnswer(context.Background(), "peer", "GET /x", refused, time.Second), true, false},
		{"per-call timeout", httpx.NoAnswer(context.Background(), "peer", "GET /x", context.DeadlineExceeded, time.Second), true, false},
		{"network error no client classified", refused, true, false},

		// The caller gave up: not the client's to decide.
		{"caller cancelled", httpx.NoAnswer(cancelled, "peer", "GET /x", context.Canceled, time.Second), false, false},
		{"context.Canceled", context.Canceled, false, false},
		{"context.DeadlineExceeded", context.DeadlineExceeded, false, false},

		// Refused before asking, or not found.
		{"invalid argument", errors.New("customer ID is empty"), false, true},
		{"not found", httpx.ErrNotFound, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for depth, err := range []error{tc.err, wrap(tc.err), wrap(wrap(tc.err))} {
				if got := httpx.IsRetryable(err); got != tc.retryable {
					t.Errorf("IsRetryable(%v) = %v, want %v (wrapped %d times)", err, got, tc.retryable, depth)
				}
				if got := httpx.IsPermanent(err); got != tc.permanent {
					t.Errorf("IsPermanent(%v) = %v, want %v (wrapped %d times)", err, got, tc.permanent, depth)
				}
			}
		})
	}
}

func wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("doing something: %w", err)
}

func TestStatusErrorMessage(t *testing.T) {
	const secret = "sk_live_secret"
	resp := &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {"30"}}}
	body := []byte("upstream down;\n\tkey " + secret + " " + strings.Repeat("x", 5000))
	err := fmt.Errorf("get customer %q: %w", "acme", httpx.StatusError("amberflo", "GET /customers/acme", resp, body, now, secret))

	want := `get customer "acme": GET /customers/acme: amberflo answered 503 Service Unavailable: upstream down; key [redacted] xxx`
	if msg := err.Error(); !strings.HasPrefix(msg, want) || !strings.HasSuffix(msg, "… (retryable, retry after 30s)") {
		t.Errorf("message %q\nwant it to start %q and end with the retry advice", msg, want)
	}
	var e *httpx.APIError
	if !errors.As(err, &e) || e.StatusCode != 503 || !e.Retryable || e.RetryAfter != 30*time.Second || len(e.Message) > 210 {
		t.Errorf("APIError = %+v, want 503, retryable after 30s, a short message", e)
	}
}

func TestRetryAfterOnlyWhenRetryable(t *testing.T) {
	for status, want := range map[int]time.Duration{429: 30 * time.Second, 503: 30 * time.Second, 400: 0, 409: 0} {
		var e *httpx.APIError
		if !errors.As(answered(status), &e) || e.RetryAfter != want {
			t.Errorf("%d: RetryAfter = %s, want %s", status, e.RetryAfter, want)
		}
		if msg := e.Error(); strings.Contains(msg, "retry after") != (want > 0) {
			t.Errorf("%d: message %q, want retry advice only when retryable", status, msg)
		}
	}
}

func TestUnreadable(t *testing.T) {
	syntaxErr := json.Unmarshal([]byte("<html>"), new(any))
	err := httpx.Unreadable("amberflo", "GET /customers/acme", 200, fmt.Errorf("decode customer: %w", syntaxErr))

	want := "GET /customers/acme: amberflo answered 200 OK: unreadable answer: decode customer: invalid character '<'"
	if msg := err.Error(); !strings.HasPrefix(msg, want) || strings.Contains(msg, "retryable") {
		t.Errorf("message %q, want it to start %q, and no retry advice", msg, want)
	}
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		t.Errorf("err %v does not unwrap to the decoder's error", err)
	}
}

func TestNoAnswer(t *testing.T) {
	const hook = "https://hooks.example/services/T0/B0/secrettoken"
	refused := &url.Error{Op: "Post", URL: hook, Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}

	t.Run("network", func(t *testing.T) {
		err := httpx.NoAnswer(context.Background(), "alert receiver", "", refused, time.Second)
		var e *httpx.APIError
		if !errors.As(err, &e) || e.StatusCode != 0 || !e.Retryable {
			t.Fatalf("err = %v, want a retryable *APIError without status", err)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "alert receiver unreachable: dial tcp: connection refused") || strings.Contains(msg, "secrettoken") {
			t.Errorf("message %q, want the network error without the URL", msg)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("err %v does not unwrap to the network error", err)
		}
	})
	t.Run("per-call timeout", func(t *testing.T) {
		timeout := &url.Error{Op: "Get", URL: hook, Err: context.DeadlineExceeded}
		err := httpx.NoAnswer(context.Background(), "amberflo", "GET /customers/acme", timeout, 50*time.Millisecond)
		want := "GET /customers/acme: amberflo unreachable: no answer within 50ms (retryable)"
		if msg := err.Error(); msg != want {
			t.Errorf("message %q, want %q", msg, want)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !httpx.IsRetryable(err) {
			t.Errorf("err %v: want a retryable deadline", err)
		}
	})
	t.Run("caller's deadline", func(t *testing.T) {
		ctx, cancel := context.WithDeadline(context.Background(), now)
		defer cancel()
		err := httpx.NoAnswer(ctx, "control plane", "POST /customers/acme/suspend", refused, time.Second)
		var e *httpx.APIError
		if errors.As(err, &e) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want the caller's deadline, not an *APIError", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "POST /customers/acme/suspend to control plane") {
			t.Errorf("message %q does not say what was abandoned", msg)
		}
	})
}

func TestNotFound(t *testing.T) {
	for status, want := range map[int]bool{404: true, 410: false, 400: false, 500: false} {
		if got := errors.Is(wrap(answered(status)), httpx.ErrNotFound); got != want {
			t.Errorf("%d: errors.Is(err, ErrNotFound) = %v, want %v", status, got, want)
		}
	}
}
