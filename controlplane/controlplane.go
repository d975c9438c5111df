// Package controlplane is the client for the product's control plane: the
// API that suspends, resumes and deprovisions a customer's resources.
//
// Every call is one signed POST:
//
//	POST {BaseURL}/customers/{customer id, path-escaped}/{suspend|resume|deprovision}
//	Content-Type: application/json
//	Idempotency-Key: <Request.IdempotencyKey>
//	Dunning-Signature: t=<unix>,v2=<hex HMAC-SHA256, see below>
//
// The signature is the v2 request scheme of dunning/internal/sig, kind
// dunning-control-plane, keyed with CONTROL_PLANE_SECRET: it covers the
// method, the whole path as sent (BaseURL's path included), the
// idempotency key and the body, so a signed suspend verifies neither on
// another path nor at the customer-notice receiver. docs/operations.md,
// "Verifying dunning's signatures", shows the receiving side.
//
// A 2xx answer means the action was applied, a 409 that the customer was
// already in that state; both are successes. Other answers are
// *httpx.APIError (peer "control plane"): other 4xx are permanent; 408,
// 429, 5xx, network errors and timeouts are retryable (httpx.IsRetryable,
// httpx.IsPermanent). Do makes exactly one attempt: the caller (a Temporal
// activity) retries, and the idempotency key makes a retry safe.
package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"dunning/internal/httpx"
	"dunning/internal/sig"
)

// SignatureHeader carries the signature of every request body.
const SignatureHeader = "Dunning-Signature"

// IdempotencyHeader carries Request.IdempotencyKey.
const IdempotencyHeader = "Idempotency-Key"

// DefaultTimeout bounds one call when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// MaxIdempotencyKeyLen is the longest idempotency key accepted, as at Stripe.
const MaxIdempotencyKeyLen = 255

// Action is what the control plane is asked to do to a customer.
type Action string

// The actions, as they appear in the request path and body.
const (
	Suspend     Action = "suspend"
	Resume      Action = "resume"
	Deprovision Action = "deprovision"
)

// Valid reports whether a is one of the declared actions.
func (a Action) Valid() bool {
	switch a {
	case Suspend, Resume, Deprovision:
		return true
	}
	return false
}

// Config configures a Client.
type Config struct {
	// BaseURL is the control plane's API root (CONTROL_PLANE_URL), an
	// absolute http or https URL without query or fragment. A path is
	// kept: https://cp.example/api/v1 calls
	// https://cp.example/api/v1/customers/{id}/{action}.
	BaseURL string
	// Secret signs every request (CONTROL_PLANE_SECRET). Required, at
	// least sig.MinSecretLen bytes.
	Secret string
	// Timeout bounds one call, from sending to reading the answer.
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// HTTPClient sends the requests; nil means a new http.Client with the
	// default transport. The client never follows redirects: a redirect is
	// answered with a permanent error.
	HTTPClient *http.Client
	// Now is the clock for signatures and for Request.RequestedAt when it
	// is zero; nil means time.Now.
	Now func() time.Time
}

// Validate reports what is wrong with c, if anything. The secret is never
// part of the error.
func (c Config) Validate() error {
	_, err := c.baseURL()
	errs := []error{err}
	switch {
	case c.Secret == "":
		errs = append(errs, errors.New("CONTROL_PLANE_SECRET is required"))
	case len(c.Secret) < sig.MinSecretLen:
		errs = append(errs, fmt.Errorf("CONTROL_PLANE_SECRET is shorter than %d bytes", sig.MinSecretLen))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout must not be negative, got %s", c.Timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("controlplane config: %w", err)
	}
	return nil
}

func (c Config) baseURL() (*url.URL, error) {
	if c.BaseURL == "" {
		return nil, errors.New("CONTROL_PLANE_URL is required")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		// url.Error repeats the whole URL; say only what is wrong with it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("CONTROL_PLANE_URL is not a valid URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("CONTROL_PLANE_URL must be an absolute http or https URL, got scheme %q", u.Scheme)
	case u.Host == "":
		return nil, errors.New("CONTROL_PLANE_URL has no host")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, errors.New("CONTROL_PLANE_URL must not have a query")
	case u.Fragment != "":
		return nil, errors.New("CONTROL_PLANE_URL must not have a fragment")
	}
	return u, nil
}

// Client calls the control plane. It is safe for concurrent use.
type Client struct {
	base    string // BaseURL without a trailing slash
	secret  string
	timeout time.Duration
	hc      *http.Client
	now     func() time.Time
}

// New returns a Client for cfg, or the reason cfg is not usable.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, _ := cfg.baseURL()
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		copied := *cfg.HTTPClient
		hc = &copied
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{
		base:    strings.TrimRight(u.String(), "/"),
		secret:  cfg.Secret,
		timeout: cfg.Timeout,
		hc:      hc,
		now:     cfg.Now,
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Request is one action on one customer.
type Request struct {
	Action Action
	// CustomerID is the ID the product uses for the customer. Required.
	CustomerID string
	// StripeCustomerID is the customer's Stripe ID (cus_…), for the
	// control plane's records.
	StripeCustomerID string
	// IdempotencyKey is required, and must be the same on every retry of
	// the same action, e.g. derived from the workflow ID, stage and attempt.
	IdempotencyKey string
	Reason         string
	WorkflowID     string
	// AmountDue is what the customer owes, in the currency's minor units.
	AmountDue int64
	// Currency is the ISO 4217 code, as Stripe gives it (lower case).
	Currency string
	// RequestedAt is when the action was decided. Set it from the workflow
	// (workflow.Now) so that retries send the same body; zero means now.
	RequestedAt time.Time
}

// ErrInvalidRequest is wrapped by the errors Do returns for a Request it
// refuses to send. They are permanent.
var ErrInvalidRequest = errors.New("invalid control plane request")

func (r Request) validate() error {
	var errs []error
	if !r.Action.Valid() {
		errs = append(errs, fmt.Errorf("unknown action %q", r.Action))
	}
	if _, err := httpx.PathSegment("customer ID", r.CustomerID); err != nil {
		errs = append(errs, err)
	}
	switch {
	case r.IdempotencyKey == "":
		errs = append(errs, errors.New("idempotency key is required"))
	case len(r.IdempotencyKey) > MaxIdempotencyKeyLen:
		errs = append(errs, fmt.Errorf("idempotency key is longer than %d bytes", MaxIdempotencyKeyLen))
	case !printableASCII(r.IdempotencyKey):
		errs = append(errs, errors.New("idempotency key must be printable ASCII"))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidRequest, errors.Join(errs...))
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Result is the outcome of a successful call.
type Result struct {
	// StatusCode is the control plane's answer: 2xx or 409.
	StatusCode int
	// AlreadyApplied is true when the control plane answered 409: the
	// customer was already in the requested state.
	AlreadyApplied bool
}

// body is the JSON the control plane receives.
type body struct {
	CustomerID       string `json:"customer_id"`
	StripeCustomerID string `json:"stripe_customer_id"`
	Action           Action `json:"action"`
	Reason           string `json:"reason"`
	WorkflowID       string `json:"workflow_id"`
	AmountDue        int64  `json:"amount_due"`
	Currency         string `json:"currency"`
	IdempotencyKey   string `json:"idempotency_key"`
	RequestedAt      string `json:"requested_at"`
}

// Do asks the control plane to apply req, once. The error, if any, says
// what was being done; httpx.IsRetryable tells whether trying again may
// help, and errors.As with *httpx.APIError gives the details.
func (c *Client) Do(ctx context.Context, req Request) (Result, error) {
	res, err := c.do(ctx, req)
	if err != nil {
		return Result{}, fmt.Errorf("%s customer %q: %w", req.Action, req.CustomerID, err)
	}
	return res, nil
}

func (c *Client) do(ctx context.Context, req Request) (Result, error) {
	if err := req.validate(); err != nil {
		return Result{}, err
	}
	now := c.now()
	at := req.RequestedAt
	if at.IsZero() {
		at = now
	}
	payload, err := json.Marshal(body{
		CustomerID:       req.CustomerID,
		StripeCustomerID: req.StripeCustomerID,
		Action:           req.Action,
		Reason:           req.Reason,
		WorkflowID:       req.WorkflowID,
		AmountDue:        req.AmountDue,
		Currency:         req.Currency,
		IdempotencyKey:   req.IdempotencyKey,
		RequestedAt:      at.UTC().Format(time.RFC3339),
	})
	if err != nil {
		return Result{}, fmt.Errorf("encode request: %w", err)
	}

	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	segment, _ := httpx.PathSegment("customer ID", req.CustomerID) // validated above
	path := "/customers/" + segment + "/" + string(req.Action)
	op := http.MethodPost + " " + path
	hreq, err := http.NewRequestWithContext(rctx, http.MethodPost, c.base+path, bytes.NewReader(payload))
	if err != nil {
		return Result{}, fmt.Errorf("%w: build request: %w", ErrInvalidRequest, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", "dunning")
	hreq.Header.Set(IdempotencyHeader, req.IdempotencyKey)
	signature, err := sig.KindControlPlane.Sign(now, sig.Request{
		Method: hreq.Method, Target: hreq.URL.RequestURI(), IdempotencyKey: req.IdempotencyKey, Body: payload,
	}, c.secret)
	if err != nil {
		return Result{}, fmt.Errorf("%w: sign request: %w", ErrInvalidRequest, err)
	}
	hreq.Header.Set(SignatureHeader, signature)

	resp, err := c.hc.Do(hreq)
	if err != nil {
		return Result{}, httpx.NoAnswer(ctx, peer, op, err, c.timeout, c.secret)
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, excerptRead))
	// Drain a little more so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))

	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
		return Result{StatusCode: code}, nil
	case code == http.StatusConflict:
		return Result{StatusCode: code, AlreadyApplied: true}, nil
	default:
		return Result{}, httpx.StatusError(peer, op, resp, excerpt, c.now(), c.secret)
	}
}

// peer names the control plane in errors.
const peer = "control plane"

const (
	excerptRead = 4 << 10
	drainLimit  = 64 << 10
)
