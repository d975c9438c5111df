// Package notify sends dunning's outbound notifications: alerts for ops to
// a Slack-compatible incoming webhook (Alerter), and notices for customers
// as signed JSON to the product's mailer (NoticeSender).
//
// Each Send makes exactly one attempt: the caller (a Temporal activity)
// retries, and the idempotency key sent with every request lets the
// receiver drop duplicates. A 2xx answer is success (and, for notices, a
// 409 too: already delivered); 408, 429, 5xx, network errors and timeouts
// are retryable; other answers are permanent. IsRetryable tells them apart.
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"dunning/internal/httpx"
)

// SignatureHeader carries the signature of every notice body. It has the
// same name and scheme as controlplane.SignatureHeader.
const SignatureHeader = "Dunning-Signature"

// IdempotencyHeader carries the alert's or notice's idempotency key.
const IdempotencyHeader = "Idempotency-Key"

// DefaultTimeout bounds one Send when the config's Timeout is zero.
const DefaultTimeout = 10 * time.Second

// MaxKeyLen is the longest idempotency key accepted, as at Stripe.
const MaxKeyLen = 255

// Ops name the two kinds of sends, in APIError.Op.
const (
	OpAlert  = "alert"
	OpNotice = "notice"
)

// APIError is a failed send: either the receiver answered with an error
// status, or (StatusCode 0) no answer came back at all.
type APIError struct {
	// Op is OpAlert or OpNotice.
	Op string
	// StatusCode is the HTTP status, or 0 when there was no response
	// (network error, timeout, cancelled context).
	StatusCode int
	// Message is a short excerpt of the response body, or what went wrong
	// on the way. It never contains a secret or the webhook URL.
	Message string
	// Retryable is true for 408, 429, 5xx and when there was no response.
	Retryable bool
	// RetryAfter is the receiver's Retry-After, when it sent a usable one.
	RetryAfter time.Duration
	// Err is the transport error when StatusCode is 0.
	Err error
}

func (e *APIError) Error() string {
	return httpx.Describe(e.Op+" receiver", e.StatusCode, e.Message, e.Retryable, e.RetryAfter)
}

func (e *APIError) Unwrap() error { return e.Err }

// IsRetryable reports whether err comes from a send that may succeed if
// made again: a retryable *APIError in its chain. Invalid alerts and
// notices and permanent answers are not retryable.
func IsRetryable(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Retryable
}

// ErrInvalid is wrapped by the errors for an alert or notice that Send
// refuses to send. They are permanent.
var ErrInvalid = errors.New("invalid notification")

// endpointURL checks that raw, the value of the variable env, is an
// absolute http or https URL. Errors never repeat the URL, which may be a
// credential (a Slack webhook URL is).
func endpointURL(env, raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%s is required", env)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid URL", env)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%s must be an absolute http or https URL, got scheme %q", env, u.Scheme)
	case u.Host == "":
		return nil, fmt.Errorf("%s has no host", env)
	case u.Fragment != "":
		return nil, fmt.Errorf("%s must not have a fragment", env)
	}
	return u, nil
}

func checkKey(what, key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%s is required", what)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%s is longer than %d bytes", what, MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return fmt.Errorf("%s must be printable ASCII", what)
		}
	}
	return nil
}

// poster sends one JSON POST and classifies the answer.
type poster struct {
	op       string
	endpoint string
	hc       *http.Client
	timeout  time.Duration
	now      func() time.Time
	redact   []string // never shown in a Message
}

func newPoster(op, endpoint string, hc *http.Client, timeout time.Duration, now func() time.Time, redact ...string) *poster {
	c := &http.Client{}
	if hc != nil {
		copied := *hc
		c = &copied
	}
	// A redirect of a signed POST is a misconfiguration; report it.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if now == nil {
		now = time.Now
	}
	return &poster{op: op, endpoint: endpoint, hc: c, timeout: timeout, now: now, redact: redact}
}

// post sends payload with headers and returns the status code of a
// successful (2xx, or 409 when conflictOK) answer, or an *APIError.
func (p *poster) post(ctx context.Context, payload []byte, header http.Header, conflictOK bool) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(payload))
	if err != nil {
		return 0, fmt.Errorf("%w: build request: %w", ErrInvalid, unwrapURLError(err))
	}
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dunning")

	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, &APIError{
			Op:        p.op,
			Message:   p.transportMessage(err),
			Retryable: true,
			Err:       unwrapURLError(err),
		}
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, excerptRead))
	// Drain a little more so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))

	code := resp.StatusCode
	if code >= 200 && code <= 299 || conflictOK && code == http.StatusConflict {
		return code, nil
	}
	retryable := code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
	e := &APIError{Op: p.op, StatusCode: code, Message: p.excerpt(excerpt), Retryable: retryable}
	if retryable {
		e.RetryAfter = httpx.RetryAfter(resp.Header.Get("Retry-After"), p.now())
	}
	return 0, e
}

const (
	excerptRead = 4 << 10
	drainLimit  = 64 << 10
	excerptMax  = 200
)

// unwrapURLError drops the *url.Error layer, whose message repeats the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (p *poster) transportMessage(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s", p.timeout)
	case errors.Is(err, context.Canceled):
		return "send cancelled"
	}
	return p.excerpt([]byte(unwrapURLError(err).Error()))
}

// excerpt returns a short single-line excerpt of b with the redacted
// strings removed.
func (p *poster) excerpt(b []byte) string {
	return httpx.Excerpt(b, excerptMax, p.redact...)
}

func rfc3339(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
