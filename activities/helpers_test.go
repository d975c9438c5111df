package activities_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
)

// request is what a peer saw of one request.
type request struct {
	Method         string
	Path           string // escaped
	Target         string // the request target as sent: escaped path and query
	Query          url.Values
	Header         http.Header
	IdempotencyKey string
	Body           []byte
	Form           url.Values // the body, when it is form-encoded
	Status         int        // what the peer answered
	Answer         []byte     // and the body it answered with, when recorded
}

func (r request) String() string { return r.Method + " " + r.Path }

// requests collects what a peer saw; handlers run on other goroutines.
type requests struct {
	mu  sync.Mutex
	all []request
}

func (rs *requests) add(r request) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.all = append(rs.all, r)
}

func (rs *requests) list() []request {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]request(nil), rs.all...)
}

// to returns the requests with the given method and path.
func (rs *requests) to(method, path string) []request {
	var out []request
	for _, r := range rs.list() {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// read reads r's body into a request record and puts the body back, so
// that a proxy can still send it on.
func read(t *testing.T, r *http.Request) request {
	t.Helper()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("%s %s: read body: %v", r.Method, r.URL.Path, err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := request{
		Method:         r.Method,
		Path:           r.URL.EscapedPath(),
		Target:         r.RequestURI,
		Query:          r.URL.Query(),
		Header:         r.Header.Clone(),
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		Body:           body,
	}
	if r.Header.Get("Content-Type") == "application/x-www-form-urlencoded" {
		if rec.Form, err = url.ParseQuery(string(body)); err != nil {
			t.Errorf("%s %s: body is not form-encoded: %v: %s", r.Method, r.URL.Path, err, body)
		}
	}
	return rec
}

// statusWriter remembers the status and body a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

// counter is a peer that must not be called: any request to it is counted.
func counter(t *testing.T) (*httptest.Server, *requests) {
	t.Helper()
	seen := &requests{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(read(t, r))
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// nonRetryable returns the type of err's non-retryable application error,
// and whether it has one: such an error fails the activity for good.
func nonRetryable(err error) (string, bool) {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NonRetryable() {
		return appErr.Type(), true
	}
	return "", false
}

// wantNonRetryable fails unless err is a non-retryable application error
// of type errType.
func wantNonRetryable(t *testing.T, err error, errType string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want a non-retryable %s", errType)
	}
	got, ok := nonRetryable(err)
	if !ok {
		t.Fatalf("err = %v (%T), want a non-retryable application error of type %s", err, err, errType)
	}
	if got != errType {
		t.Fatalf("error type = %q, want %q (err: %v)", got, errType, err)
	}
}

// wantRetryable fails unless err is an error Temporal will retry.
func wantRetryable(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("err = nil, want a retryable error")
	}
	if typ, ok := nonRetryable(err); ok {
		t.Fatalf("err = %v: non-retryable application error of type %s, want a retryable error", err, typ)
	}
}

// lastHeartbeat keeps the details of the last heartbeat an activity run in
// env recorded, and returns them: what Temporal hands the next attempt
// (nil when there was none).
func lastHeartbeat(t *testing.T, env *testsuite.TestActivityEnvironment) func() json.RawMessage {
	t.Helper()
	var mu sync.Mutex
	var last json.RawMessage
	env.SetOnActivityHeartbeatListener(func(_ *activity.Info, details converter.EncodedValues) {
		mu.Lock()
		defer mu.Unlock()
		if err := details.Get(&last); err != nil {
			t.Errorf("heartbeat details: %v", err)
		}
	})
	return func() json.RawMessage {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}
