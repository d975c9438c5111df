// Package notify sends dunning's outbound notifications: alerts for ops to
// a Slack-compatible incoming webhook (Alerter), and notices for customers
// as signed JSON to the product's mailer (NoticeSender).
//
// Each Send makes exactly one attempt: the caller (a Temporal activity)
// retries, and the idempotency key sent with every request lets the
// receiver drop duplicates. A 2xx answer is success (and, for notices, a
// 409 too: already delivered). Other answers are *httpx.APIError, with
// PeerAlerts or PeerNotices: 408, 429, 5xx, network errors and timeouts
// are retryable, other answers permanent; httpx.IsRetryable and
// httpx.IsPermanent tell them apart.
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

// SignatureHeader carries the signature of every notice: the v2 scheme of
// dunning/internal/sig, kind sig.KindCustomerNotice. It has the same name
// and scheme as controlplane.SignatureHeader, with another kind.
const SignatureHeader = "Dunning-Signature"

// IdempotencyHeader carries the alert's or notice's idempotency key.
const IdempotencyHeader = "Idempotency-Key"

// DefaultTimeout bounds one Send when the config's Timeout is zero.
const DefaultTimeout = 10 * time.Second

// MaxKeyLen is the longest idempotency key accepted, as at Stripe.
const MaxKeyLen = 255

// Peers name the receivers of the two kinds of sends, in
// httpx.APIError.Peer. Its Op stays empty: the request URL is not shown,
// since a webhook URL is a credential.
const (
	PeerAlerts  = "alert receiver"
	PeerNotices = "notice receiver"
)

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
	peer     string
	endpoint string
	hc       *http.Client
	timeout  time.Duration
	now      func() time.Time
	redact   []string // never shown in a Message
}

func newPoster(peer, endpoint string, hc *http.Client, timeout time.Duration, now func() time.Time, redact ...string) *poster {
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
	return &poster{peer: peer, endpoint: endpoint, hc: c, timeout: timeout, now: now, redact: redact}
}

// post sends payload with headers and returns the status code of a
// successful (2xx, or 409 when conflictOK) answer, or an *httpx.APIError.
// sign, when not nil, adds a signature to the request as it will be sent.
// redact adds strings of this request that its error must not repeat.
func (p *poster) post(ctx context.Context, payload []byte, header http.Header, conflictOK bool, sign func(*http.Request) error, redact ...string) (int, error) {
	redact = append(redact, p.redact...)
	rctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, p.endpoint, bytes.NewReader(payload))
	if err != nil {
		return 0, fmt.Errorf("%w: build request: %w", ErrInvalid, unwrapURLError(err))
	}
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dunning")
	if sign != nil {
		if err := sign(req); err != nil {
			return 0, fmt.Errorf("%w: sign request: %w", ErrInvalid, err)
		}
	}

	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, httpx.NoAnswer(ctx, p.peer, "", err, p.timeout, redact...)
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, excerptRead))
	// Drain a little more so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))

	code := resp.StatusCode
	if code >= 200 && code <= 299 || conflictOK && code == http.StatusConflict {
		return code, nil
	}
	return 0, httpx.StatusError(p.peer, "", resp, excerpt, p.now(), redact...)
}

const (
	excerptRead = 4 << 10
	drainLimit  = 64 << 10
)

// unwrapURLError drops the *url.Error layer, whose message repeats the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func rfc3339(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
