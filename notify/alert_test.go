package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"dunning/internal/httpx"
	"dunning/notify"
)

const webhookPath = "/services/T0000/B0000/XXXXsecrettokenXXXX"

// slackMsg is an incoming-webhook message as Slack reads it.
type slackMsg struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackText struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text"`
	Fields   []slackText `json:"fields"`
	Elements []slackText `json:"elements"`
}

// checkSlack fails t unless raw is a message Slack would accept: only
// text and blocks, a non-empty one-line fallback, known block types with
// their required parts, and Block Kit's length limits.
func checkSlack(t *testing.T, raw []byte) slackMsg {
	t.Helper()
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, raw)
	}
	for k := range keys {
		if k != "text" && k != "blocks" {
			t.Errorf("unexpected top-level key %q", k)
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	var m slackMsg
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("body does not decode as a Slack message: %v: %s", err, raw)
	}
	if strings.TrimSpace(m.Text) == "" || strings.Contains(m.Text, "\n") {
		t.Errorf("fallback text %q, want one non-empty line", m.Text)
	}
	if len(m.Blocks) == 0 || len(m.Blocks) > 50 {
		t.Errorf("%d blocks, want 1 to 50", len(m.Blocks))
	}
	checkText := func(where string, x slackText, max int) {
		t.Helper()
		if x.Type != "mrkdwn" && x.Type != "plain_text" {
			t.Errorf("%s: text type %q", where, x.Type)
		}
		if n := utf8.RuneCountInString(x.Text); n == 0 || n > max {
			t.Errorf("%s: text of %d characters, want 1 to %d", where, n, max)
		}
	}
	for i, b := range m.Blocks {
		where := fmt.Sprintf("block %d (%s)", i, b.Type)
		switch b.Type {
		case "header":
			if b.Text == nil || b.Text.Type != "plain_text" {
				t.Fatalf("%s: want a plain_text text", where)
			}
			checkText(where, *b.Text, 150)
		case "section":
			if b.Text == nil && len(b.Fields) == 0 {
				t.Errorf("%s: neither text nor fields", where)
			}
			if b.Text != nil {
				checkText(where, *b.Text, 3000)
			}
			if len(b.Fields) > 10 {
				t.Errorf("%s: %d fields, Slack allows 10", where, len(b.Fields))
			}
			for _, f := range b.Fields {
				checkText(where+" field", f, 2000)
			}
		case "context":
			if len(b.Elements) == 0 {
				t.Errorf("%s: no elements", where)
			}
			for _, e := range b.Elements {
				checkText(where+" element", e, 3000)
			}
		default:
			t.Errorf("%s: unexpected block type", where)
		}
	}
	return m
}

type alertReceived struct {
	key string
	msg slackMsg
	raw string
}

// slackServer checks requests the way Slack's incoming webhook would and
// answers status with answer.
func slackServer(t *testing.T, status int, answer string, header http.Header) (*httptest.Server, <-chan alertReceived) {
	t.Helper()
	got := make(chan alertReceived, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost {
			t.Errorf("method = %s, want POST", r.Method)
		}
		if r.URL.Path != webhookPath {
			t.Errorf("path = %s, want %s", r.URL.Path, webhookPath)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q, want application/json", ct)
		}
		got <- alertReceived{key: r.Header.Get("Idempotency-Key"), msg: checkSlack(t, raw), raw: string(raw)}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func newAlerter(t *testing.T, url string, timeout time.Duration) *notify.Alerter {
	t.Helper()
	a, err := notify.NewAlerter(notify.AlertConfig{WebhookURL: url, Timeout: timeout})
	if err != nil {
		t.Fatalf("NewAlerter: %v", err)
	}
	return a
}

func alert() notify.Alert {
	return notify.Alert{
		Key:              "recovery-cus_Nx1/suspended/1/alert",
		Severity:         notify.SeverityCritical,
		Title:            "Customer suspended",
		Text:             "Invoice <in_1> unpaid for 7 days & grace period over",
		CustomerID:       "org/42",
		StripeCustomerID: "cus_Nx1",
		WorkflowID:       "recovery-cus_Nx1",
		Fields:           []notify.Field{{"Amount due", "49.99 USD"}, {"Empty", ""}, {"Attempts", "4"}},
	}
}

func TestAlertSent(t *testing.T) {
	srv, got := slackServer(t, http.StatusOK, "ok", nil)
	if err := newAlerter(t, srv.URL+webhookPath, time.Second).Send(context.Background(), alert()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := <-got
	if r.key != alert().Key {
		t.Errorf("Idempotency-Key = %q, want %q", r.key, alert().Key)
	}
	if !strings.Contains(r.msg.Text, "Customer suspended") || !strings.Contains(r.msg.Text, "CRITICAL") {
		t.Errorf("fallback text %q, want the severity and the title", r.msg.Text)
	}
	if h := r.msg.Blocks[0]; h.Type != "header" || !strings.Contains(h.Text.Text, "Customer suspended") {
		t.Errorf("first block = %+v, want a header with the title", h)
	}
	if b := r.msg.Blocks[1]; b.Type != "section" || b.Text == nil || b.Text.Type != "mrkdwn" ||
		b.Text.Text != "Invoice &lt;in_1&gt; unpaid for 7 days &amp; grace period over" {
		t.Errorf("second block = %+v, want the text as mrkdwn, escaped", b)
	}
	var fields []string
	for _, b := range r.msg.Blocks {
		for _, f := range b.Fields {
			fields = append(fields, f.Text)
		}
	}
	want := []string{"*Customer*\norg/42", "*Stripe customer*\ncus_Nx1", "*Workflow*\nrecovery-cus_Nx1", "*Amount due*\n49.99 USD", "*Attempts*\n4"}
	if strings.Join(fields, "|") != strings.Join(want, "|") {
		t.Errorf("fields = %q, want %q", fields, want)
	}
	if !strings.Contains(r.raw, alert().Key) {
		t.Errorf("message does not show the idempotency key")
	}
}

func TestAlertWithinSlackLimits(t *testing.T) {
	srv, got := slackServer(t, http.StatusOK, "ok", nil)
	a := alert()
	a.Severity = ""
	a.Title = strings.Repeat("Title & more ", 40) + "\nsecond line"
	a.Text = strings.Repeat("<&>", 2000)
	a.Fields = nil
	for i := range 55 {
		a.Fields = append(a.Fields, notify.Field{Label: fmt.Sprintf("f%d", i), Value: strings.Repeat("v&", 1500)})
	}
	if err := newAlerter(t, srv.URL+webhookPath, time.Second).Send(context.Background(), a); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := <-got // checkSlack has checked the limits
	if !strings.Contains(r.msg.Text, "INFO") {
		t.Errorf("empty severity: fallback %q, want INFO", r.msg.Text)
	}
	brokenEntity := regexp.MustCompile(`&[a-z]{0,3}…?$`)
	truncated := 0
	for _, b := range r.msg.Blocks {
		texts := append(b.Fields, b.Elements...)
		if b.Text != nil {
			texts = append(texts, *b.Text)
		}
		for _, x := range texts {
			if strings.HasSuffix(x.Text, "…") {
				truncated++
			}
			if brokenEntity.MatchString(x.Text) {
				t.Errorf("truncation left a broken entity: …%s", x.Text[max(0, len(x.Text)-12):])
			}
		}
	}
	if truncated == 0 {
		t.Errorf("nothing was truncated; the test does not test truncation")
	}
	if !strings.Contains(r.raw, "more fields not shown") {
		t.Errorf("dropped fields not mentioned")
	}
}

func TestAlertErrors(t *testing.T) {
	cases := []struct {
		status     int
		answer     string
		header     http.Header
		retryable  bool
		retryAfter time.Duration
	}{
		{status: 400, answer: "invalid_blocks"},
		{status: 403, answer: "action_prohibited"},
		{status: 404, answer: "channel_not_found"},
		{status: 410, answer: "channel_is_archived"},
		{status: 429, answer: "rate_limited", header: http.Header{"Retry-After": {"7"}}, retryable: true, retryAfter: 7 * time.Second},
		{status: 500, answer: "rollup_error", retryable: true},
		{status: 503, answer: "service unavailable", retryable: true},
	}
	for _, tc := range cases {
		t.Run(tc.answer, func(t *testing.T) {
			srv, got := slackServer(t, tc.status, tc.answer, tc.header)
			err := newAlerter(t, srv.URL+webhookPath, time.Second).Send(context.Background(), alert())
			<-got
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if httpx.IsRetryable(err) != tc.retryable || httpx.IsPermanent(err) == tc.retryable {
				t.Errorf("IsRetryable = %v, IsPermanent = %v, want retryable %v (err: %v)",
					httpx.IsRetryable(err), httpx.IsPermanent(err), tc.retryable, err)
			}
			var apiErr *httpx.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err %v is not an *httpx.APIError", err)
			}
			if apiErr.Peer != notify.PeerAlerts || apiErr.StatusCode != tc.status || apiErr.Message != tc.answer || apiErr.RetryAfter != tc.retryAfter {
				t.Errorf("APIError = %+v, want peer %s, status %d, message %q, retry after %s", apiErr, notify.PeerAlerts, tc.status, tc.answer, tc.retryAfter)
			}
			want := fmt.Sprintf("send alert %q: alert receiver answered %d %s: %s", alert().Key, tc.status, http.StatusText(tc.status), tc.answer)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\nwant it to say what was being done and what came back: %q", err, want)
			}
			if strings.Contains(err.Error(), "secrettoken") {
				t.Errorf("error contains the webhook URL: %v", err)
			}
		})
	}
}

func TestAlertEchoedURLIsRedacted(t *testing.T) {
	srv, got := slackServer(t, http.StatusBadRequest, "no such hook "+webhookPath, nil)
	err := newAlerter(t, srv.URL+webhookPath, time.Second).Send(context.Background(), alert())
	<-got
	if err == nil || strings.Contains(err.Error(), "secrettoken") {
		t.Errorf("err = %v, want an error without the webhook token", err)
	}
}

func TestAlertTimeoutIsRetryable(t *testing.T) {
	url := hangingServer(t)
	a := newAlerter(t, url+webhookPath, 100*time.Millisecond)
	// The caller's own deadline is only a safety net: the configured
	// timeout must end the call long before it.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	err := a.Send(ctx, alert())
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Send took %s, want about the 100ms timeout", elapsed)
	}
	if err == nil || (!httpx.IsRetryable(err) || httpx.IsPermanent(err)) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a retryable deadline error", err)
	}
	if strings.Contains(err.Error(), "secrettoken") {
		t.Errorf("error contains the webhook URL: %v", err)
	}
}

// The caller's own context ending is neither retryable nor permanent: the
// activity is over, and it is not for the client to decide.
func TestAlertCallerCancels(t *testing.T) {
	a := newAlerter(t, hangingServer(t)+webhookPath, 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	err := a.Send(ctx, alert())
	if !errors.Is(err, context.Canceled) || httpx.IsRetryable(err) || httpx.IsPermanent(err) {
		t.Errorf("err = %v (retryable %v, permanent %v); want the caller's cancellation, neither",
			err, httpx.IsRetryable(err), httpx.IsPermanent(err))
	}
	if strings.Contains(err.Error(), "secrettoken") {
		t.Errorf("error contains the webhook URL: %v", err)
	}
}

func TestAlertNetworkErrorIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := newAlerter(t, url+webhookPath, time.Second).Send(context.Background(), alert())
	if err == nil || (!httpx.IsRetryable(err) || httpx.IsPermanent(err)) {
		t.Errorf("err = %v, want retryable", err)
	}
	if strings.Contains(err.Error(), "secrettoken") {
		t.Errorf("error contains the webhook URL: %v", err)
	}
}

func TestInvalidAlertNotSent(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	t.Cleanup(srv.Close)
	s := newAlerter(t, srv.URL, time.Second)
	cases := map[string]func(*notify.Alert){
		"no key":       func(a *notify.Alert) { a.Key = "" },
		"key with CR":  func(a *notify.Alert) { a.Key = "k\r" },
		"bad severity": func(a *notify.Alert) { a.Severity = "panic" },
		"no title":     func(a *notify.Alert) { a.Title = "  " },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			a := alert()
			mutate(&a)
			err := s.Send(context.Background(), a)
			if !errors.Is(err, notify.ErrInvalid) || !httpx.IsPermanent(err) {
				t.Errorf("err = %v, want a permanent ErrInvalid", err)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d invalid alerts were sent", n)
	}
}

func TestNewAlerterValidates(t *testing.T) {
	cases := []struct {
		name string
		cfg  notify.AlertConfig
		want string
	}{
		{"valid", notify.AlertConfig{WebhookURL: "https://hooks.slack.com" + webhookPath}, ""},
		{"no url", notify.AlertConfig{}, "ALERT_WEBHOOK_URL is required"},
		{"relative", notify.AlertConfig{WebhookURL: webhookPath}, "absolute http or https"},
		{"no scheme", notify.AlertConfig{WebhookURL: "hooks.slack.com" + webhookPath}, "absolute http or https"},
		{"no host", notify.AlertConfig{WebhookURL: "https://" + webhookPath}, "no host"},
		{"unparsable", notify.AlertConfig{WebhookURL: "https://hooks.slack.com:x" + webhookPath}, "not a valid URL"},
		{"negative timeout", notify.AlertConfig{WebhookURL: "https://hooks.slack.com" + webhookPath, Timeout: -1}, "timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := notify.NewAlerter(tc.cfg)
			if tc.want == "" {
				if err != nil || a == nil {
					t.Fatalf("NewAlerter = %v, %v; want an alerter", a, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secrettoken") {
				t.Errorf("error contains the webhook URL: %v", err)
			}
		})
	}
}

// hangingServer returns the URL of a server that never answers.
func hangingServer(t *testing.T) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv.URL
}
