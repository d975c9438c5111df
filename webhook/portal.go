package webhook

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billingportal/session"

	"dunning/internal/portallink"
)

// routePortal serves the customer's one-click link, GET /portal/{token},
// and GET /portal/, where the portal sends the customer back by default.
const routePortal = portallink.PathPrefix + "*token"

// Portal configures GET /portal/{token}: a valid link is answered 303 to a
// new Stripe Billing Portal session, in which the customer updates their
// payment method.
type Portal struct {
	// Links checks tokens (PORTAL_LINK_SECRET).
	Links *portallink.Signer
	// Sessions creates Billing Portal sessions (stripe-go's client).
	Sessions *session.Client
	// ReturnURL is where the portal sends the customer back
	// (PORTAL_RETURN_URL).
	ReturnURL string
	// Timeout bounds the Stripe call; zero means DefaultPortalTimeout.
	Timeout time.Duration
	// PerClient and PerCustomer bound how often links are followed: from
	// one client address, and for one customer (counted once the link is
	// found valid). Zero means DefaultPerClient and DefaultPerCustomer.
	PerClient, PerCustomer Rate
}

// complete checks p and fills in its defaults.
func (p *Portal) complete() error {
	if p.Links == nil || p.Sessions == nil {
		return errors.New("webhook: portal links need a signer and a Stripe client")
	}
	if u, err := url.Parse(p.ReturnURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("webhook: the portal's return URL is not an absolute http(s) URL")
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultPortalTimeout
	}
	if !p.PerClient.valid() {
		p.PerClient = DefaultPerClient
	}
	if !p.PerCustomer.valid() {
		p.PerCustomer = DefaultPerCustomer
	}
	return nil
}

// Defaults of Portal.
var (
	DefaultPortalTimeout = 10 * time.Second
	// DefaultPerClient: 20 at once, then one every 3 s.
	DefaultPerClient = Rate{Burst: 20, Every: 3 * time.Second}
	// DefaultPerCustomer: 10 at once, then one every 30 s.
	DefaultPerCustomer = Rate{Burst: 10, Every: 30 * time.Second}
)

// maxLimiterKeys bounds the memory of each rate limiter.
const maxLimiterKeys = 100_000

// Outcomes of GET /portal/{token}, the label of dunning_portal_requests_total.
const (
	PortalRedirected    = "redirected"      // 303 to a new portal session
	PortalReturned      = "returned"        // GET /portal/: back from the portal
	PortalInvalid       = "invalid"         // 404: malformed, forged or of an unknown version
	PortalExpired       = "expired"         // 410
	PortalRateLimited   = "rate_limited"    // 429
	PortalNotConfigured = "not_configured"  // 404: no PUBLIC_URL and PORTAL_LINK_SECRET
	PortalStripeRefused = "stripe_rejected" // 502: Stripe refused the session (4xx): the portal, the key or the request
	// PortalCustomerMissing: 410, Stripe has no such customer (deleted, or
	// of the other mode): no click will ever open a session for the link.
	PortalCustomerMissing = "customer_missing"
	PortalStripeError     = "stripe_error" // 502: Stripe failed (5xx) or answered without a usable URL
	PortalStripeDown      = "stripe_unavailable"
	// PortalStripeDown: 503, no answer from Stripe in time, or its rate limit.
	PortalClientGone = "client_gone"
	// PortalClientGone: the client hung up before the session was opened
	// (a closed tab, a mail scanner that follows links and drops them):
	// nothing to say of Stripe.
)

var portalOutcomes = []string{PortalRedirected, PortalReturned, PortalInvalid, PortalExpired, PortalRateLimited,
	PortalNotConfigured, PortalStripeRefused, PortalCustomerMissing, PortalStripeError, PortalStripeDown, PortalClientGone}

// page is a short answer for a person in a browser.
type page struct{ title, text string }

var (
	pageNotConfigured = page{"Link not available", "Payment links are not configured here."}
	pageInvalid       = page{"Link not valid", "This link is not valid. Please use the link in the most recent email we sent you, or contact support."}
	pageExpired       = page{"Link expired", "This link has expired. Please use the link in the most recent email we sent you, or contact support."}
	pageLimited       = page{"Too many attempts", "Please wait a minute, then follow the link again."}
	pageUnavailable   = page{"Please try again shortly", "We could not open the payment page just now. Please follow the link again in a few minutes."}
	pageFailed        = page{"Payment page not available", "We could not open the payment page. Please try again later, or contact support."}
	// pageRefused answers a refusal that a later click meets again: it
	// promises nothing of trying again.
	pageRefused  = page{"Payment page not available", "We could not open the payment page for your account. Please contact support, who can help you update your payment details."}
	pageReturned = page{"Thank you", "You can close this page. If you updated your payment method, it will be used for your next payment."}
)

// portalHeaders go on every answer under /portal/: nothing is cached or
// passed on as a referrer, since the path holds the token.
func portalHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
}

func (h *handler) portalPage(c *gin.Context, status int, outcome string, p page) {
	h.metrics.portal.WithLabelValues(outcome).Inc()
	c.Data(status, "text/html; charset=utf-8", fmt.Appendf(nil, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex"><title>%s</title></head>
<body><h1>%s</h1><p>%s</p></body></html>
`, p.title, p.title, p.text))
}

func (h *handler) portalLimited(c *gin.Context, wait time.Duration) {
	c.Header("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	h.portalPage(c, http.StatusTooManyRequests, PortalRateLimited, pageLimited)
}

// portal answers a followed link. Nothing is logged of the token: the
// customer it names and the outcome are.
func (h *handler) portal(c *gin.Context) {
	portalHeaders(c)
	p := h.opts.Portal
	token := strings.TrimPrefix(c.Param("token"), "/")
	switch {
	case p == nil:
		h.portalPage(c, http.StatusNotFound, PortalNotConfigured, pageNotConfigured)
		return
	case token == "":
		// Back from the portal, unless PORTAL_RETURN_URL leads elsewhere.
		h.portalPage(c, http.StatusOK, PortalReturned, pageReturned)
		return
	}
	now := h.opts.Now()
	if ok, wait := h.perClient.allow(clientKey(c.ClientIP()), now); !ok {
		h.log.Warn("portal link refused: too many from one client", "remote", c.ClientIP())
		h.portalLimited(c, wait)
		return
	}
	link, err := p.Links.Verify(token, now)
	switch {
	case errors.Is(err, portallink.ErrExpired):
		h.log.Info("portal link expired", "customer", link.Customer, "expired", link.Expires.UTC())
		h.portalPage(c, http.StatusGone, PortalExpired, pageExpired)
		return
	case err != nil:
		h.log.Warn("portal link refused", "reason", err.Error(), "remote", c.ClientIP())
		h.portalPage(c, http.StatusNotFound, PortalInvalid, pageInvalid)
		return
	}
	if ok, wait := h.perCustomer.allow(link.Customer, now); !ok {
		h.log.Warn("portal link refused: followed too often", "customer", link.Customer)
		h.portalLimited(c, wait)
		return
	}

	began := time.Now()
	to, err := openPortal(c.Request.Context(), p, link.Customer)
	if err != nil && c.Request.Context().Err() != nil {
		// The call ended because the client left, not because of Stripe.
		h.log.Info("portal link: the client left before the session opened", "customer", link.Customer,
			"seconds", time.Since(began).Seconds())
		h.portalPage(c, http.StatusServiceUnavailable, PortalClientGone, pageUnavailable)
		return
	}
	if err != nil {
		status, outcome, pg := portalFailure(err)
		attrs := []any{"customer", link.Customer, "outcome", outcome, "seconds", time.Since(began).Seconds(), "error", err}
		switch outcome {
		case PortalStripeRefused:
			// Stripe will refuse every customer the same way until
			// someone looks (e.g. no portal configuration saved).
			h.log.Error("stripe refused a billing portal session", attrs...)
		case PortalCustomerMissing:
			// One customer's link, not the portal: Stripe no longer has
			// the customer it names.
			h.log.Warn("stripe has no such customer for a billing portal session", attrs...)
		default:
			h.log.Warn("no billing portal session", attrs...)
		}
		if status == http.StatusServiceUnavailable {
			c.Header("Retry-After", "30")
		}
		h.portalPage(c, status, outcome, pg)
		return
	}
	h.metrics.portal.WithLabelValues(PortalRedirected).Inc()
	h.log.Info("billing portal session opened", "customer", link.Customer, "seconds", time.Since(began).Seconds())
	c.Redirect(http.StatusSeeOther, to)
}

// errNoSessionURL: Stripe answered 2xx without a usable session URL.
var errNoSessionURL = errors.New("stripe answered without a usable session url")

// openPortal creates a Billing Portal session in which customer updates
// their payment method, and returns its URL.
func openPortal(ctx context.Context, p *Portal, customer string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	params := &stripe.BillingPortalSessionParams{
		Customer:  stripe.String(customer),
		ReturnURL: stripe.String(p.ReturnURL),
		FlowData: &stripe.BillingPortalSessionFlowDataParams{
			Type: stripe.String(string(stripe.BillingPortalSessionFlowTypePaymentMethodUpdate)),
			AfterCompletion: &stripe.BillingPortalSessionFlowDataAfterCompletionParams{
				Type:     stripe.String(string(stripe.BillingPortalSessionFlowAfterCompletionTypeRedirect)),
				Redirect: &stripe.BillingPortalSessionFlowDataAfterCompletionRedirectParams{ReturnURL: stripe.String(p.ReturnURL)},
			},
		},
	}
	params.Context = ctx
	s, err := p.Sessions.New(params)
	if err != nil {
		return "", fmt.Errorf("create billing portal session: %w", err)
	}
	if u, err := url.Parse(s.URL); err != nil || u.Scheme != "https" || u.Host == "" {
		return "", errNoSessionURL
	}
	return s.URL, nil
}

// portalFailure is the answer to a failed openPortal. The page never
// shows what Stripe said.
func portalFailure(err error) (int, string, page) {
	var se *stripe.Error
	var ne net.Error
	switch {
	case errors.As(err, &se) && se.HTTPStatusCode == http.StatusTooManyRequests:
		return http.StatusServiceUnavailable, PortalStripeDown, pageUnavailable
	case errors.As(err, &se) && se.HTTPStatusCode >= 500:
		return http.StatusBadGateway, PortalStripeError, pageFailed
	case errors.As(err, &se) && customerMissing(se):
		return http.StatusGone, PortalCustomerMissing, pageRefused
	case errors.As(err, &se) && se.HTTPStatusCode >= 400:
		return http.StatusBadGateway, PortalStripeRefused, pageRefused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.As(err, &ne):
		return http.StatusServiceUnavailable, PortalStripeDown, pageUnavailable
	}
	return http.StatusBadGateway, PortalStripeError, pageFailed
}

// customerMissing reports whether Stripe refused because it has no such
// customer: code resource_missing on the customer parameter (HTTP 400 or
// 404, as Stripe answers a missing object named in a request).
func customerMissing(se *stripe.Error) bool {
	return se.HTTPStatusCode < 500 && se.Code == stripe.ErrorCodeResourceMissing && se.Param == "customer"
}
