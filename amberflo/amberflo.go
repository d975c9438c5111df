// Package amberflo is a small REST client for the parts of Amberflo that
// dunning uses: reading a customer, deactivating it, moving its lifecycle
// stage forward, and reading its latest invoice with payment status.
//
// Every method makes exactly one HTTP request per step and never retries:
// the caller (a Temporal activity) owns the retry policy. Failures are
// *httpx.APIError (peer "amberflo"), classified with httpx.IsRetryable and
// httpx.IsPermanent so that policy can tell a rate limit or an outage from
// a request that will never succeed.
package amberflo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"dunning/internal/httpx"
)

// peer names Amberflo in errors.
const peer = "amberflo"

// ErrNotFound means Amberflo has no such customer, or no invoice for it.
// It matches both an empty answer and an HTTP 404 (errors.Is); it is
// httpx.ErrNotFound.
var ErrNotFound = httpx.ErrNotFound

// Defaults applied by New.
const (
	DefaultBaseURL   = "https://app.amberflo.io"
	DefaultTimeout   = 10 * time.Second
	DefaultProductID = "1"
)

// maxBody bounds how much of a successful response is read.
const maxBody = 4 << 20

// Config configures a Client. Only APIKey is required.
type Config struct {
	BaseURL string        // absolute http or https URL; DefaultBaseURL when empty
	APIKey  string        // sent as the X-API-KEY header
	Timeout time.Duration // per HTTP request; DefaultTimeout when zero
	// HTTPClient is copied, not modified. Redirects are never followed,
	// so the API key is only ever sent to BaseURL.
	HTTPClient *http.Client
	ProductID  string // DefaultProductID when empty
}

// String describes the config without secrets, so it is safe to log.
func (c Config) String() string {
	key := "unset"
	if c.APIKey != "" {
		key = "set"
	}
	base := c.BaseURL
	if u, err := url.Parse(base); err == nil {
		base = u.Redacted()
	}
	return fmt.Sprintf("amberflo.Config{BaseURL: %q, APIKey: %s, Timeout: %s, ProductID: %q}",
		base, key, c.Timeout, c.ProductID)
}

// Client calls Amberflo. It is safe for concurrent use.
type Client struct {
	base      string // no trailing slash
	apiKey    string
	timeout   time.Duration
	http      *http.Client
	productID string
}

// New validates cfg, applies defaults and returns a Client. The error
// lists everything that is wrong with cfg.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ProductID == "" {
		cfg.ProductID = DefaultProductID
	}

	var errs []error
	base, err := url.Parse(cfg.BaseURL)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("base URL: %w", err))
	case base.Scheme != "http" && base.Scheme != "https":
		errs = append(errs, fmt.Errorf("base URL %q: scheme must be http or https", base.Redacted()))
	case base.Host == "":
		errs = append(errs, fmt.Errorf("base URL %q: no host", base.Redacted()))
	case base.User != nil:
		errs = append(errs, fmt.Errorf("base URL %q: must not contain credentials", base.Redacted()))
	case base.RawQuery != "" || base.Fragment != "":
		errs = append(errs, fmt.Errorf("base URL %q: must not have a query or fragment", base.Redacted()))
	}
	switch {
	case cfg.APIKey == "":
		errs = append(errs, errors.New("API key is empty"))
	case strings.IndexFunc(cfg.APIKey, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		errs = append(errs, errors.New("API key contains whitespace or control characters"))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s is negative", cfg.Timeout))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("amberflo: invalid config: %w", errors.Join(errs...))
	}

	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	return &Client{
		base:      strings.TrimRight(base.String(), "/"),
		apiKey:    cfg.APIKey,
		timeout:   cfg.Timeout,
		http:      &hc,
		productID: cfg.ProductID,
	}, nil
}

// String describes the client without the API key.
func (c *Client) String() string { return "amberflo.Client(" + c.base + ")" }

// answer is a 2xx answer to one request.
type answer struct {
	op     string // method and escaped path, e.g. "GET /customers/acme"
	status int
	body   []byte
}

// unreadable is the permanent error for an answer whose body cannot be
// read as what was asked for.
func (c *Client) unreadable(a answer, err error) error {
	return httpx.Unreadable(peer, a.op, a.status, err, c.apiKey)
}

// do sends one request with the per-request timeout and returns the 2xx
// answer. path must already be escaped. Every failure other than the
// caller's own context ending is an *httpx.APIError.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte) (answer, error) {
	a := answer{op: method + " " + path}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(rctx, method, u, rd)
	if err != nil {
		return a, fmt.Errorf("%s: build request: %w", a.op, err)
	}
	req.Header.Set("X-API-KEY", c.apiKey)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return a, httpx.NoAnswer(ctx, peer, a.op, err, c.timeout, c.apiKey)
	}
	defer resp.Body.Close()
	a.status = resp.StatusCode

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		head, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return a, httpx.StatusError(peer, a.op, resp, head, time.Now(), c.apiKey)
	}
	if a.body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody+1)); err != nil {
		return a, httpx.NoAnswer(ctx, peer, a.op, fmt.Errorf("read answer: %w", err), c.timeout, c.apiKey)
	}
	if len(a.body) > maxBody {
		return a, c.unreadable(a, fmt.Errorf("larger than %d bytes", maxBody))
	}
	return a, nil
}

// checkID rejects IDs that cannot name a customer in a URL path.
func checkID(id string) error {
	_, err := httpx.PathSegment("customer ID", id)
	return err
}

// isNull reports whether b is an empty body or JSON null: Amberflo's way of
// saying there is nothing.
func isNull(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || string(b) == "null"
}
