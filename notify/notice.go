package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"dunning/internal/sig"
)

// NoticeConfig configures a NoticeSender.
type NoticeConfig struct {
	// URL is the product mailer's endpoint for notices
	// (CUSTOMER_NOTICE_URL), an absolute http or https URL.
	URL string
	// Secret signs every notice (CUSTOMER_NOTICE_SECRET). Required, at
	// least sig.MinSecretLen bytes.
	Secret string
	// Timeout bounds one Send; zero means DefaultTimeout.
	Timeout time.Duration
	// HTTPClient sends the requests; nil means a new http.Client with the
	// default transport. Redirects are never followed.
	HTTPClient *http.Client
	// Now is the clock for signatures and for Notice.CreatedAt when it is
	// zero; nil means time.Now.
	Now func() time.Time
}

// Validate reports what is wrong with c, if anything. The secret is never
// part of the error.
func (c NoticeConfig) Validate() error {
	_, err := endpointURL("CUSTOMER_NOTICE_URL", c.URL)
	errs := []error{err}
	switch {
	case c.Secret == "":
		errs = append(errs, errors.New("CUSTOMER_NOTICE_SECRET is required"))
	case len(c.Secret) < sig.MinSecretLen:
		errs = append(errs, fmt.Errorf("CUSTOMER_NOTICE_SECRET is shorter than %d bytes", sig.MinSecretLen))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout must not be negative, got %s", c.Timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("customer notice config: %w", err)
	}
	return nil
}

// NoticeSender posts signed customer notices to the product's mailer,
// which writes to the customer. It is safe for concurrent use.
//
// Each notice is one POST to the configured URL with a JSON body (see
// Notice for the fields), Content-Type: application/json, Idempotency-Key:
// the notice ID, and Dunning-Signature: t=<unix>,v2=<hex>, the v2 request
// scheme of dunning/internal/sig (kind dunning-customer-notice) over the
// method, the URL's path and query, the notice ID and the raw body, keyed
// with the secret.
type NoticeSender struct {
	p      *poster
	secret string
	now    func() time.Time
}

// NewNoticeSender returns a NoticeSender for cfg, or the reason cfg is not
// usable.
func NewNoticeSender(cfg NoticeConfig) (*NoticeSender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &NoticeSender{
		p:      newPoster(PeerNotices, cfg.URL, cfg.HTTPClient, cfg.Timeout, now, cfg.Secret),
		secret: cfg.Secret,
		now:    now,
	}, nil
}

// NoticeType says which message the mailer sends.
type NoticeType string

// The notice types.
const (
	PaymentFailed        NoticeType = "payment_failed"
	PaymentRetryFailed   NoticeType = "payment_retry_failed"
	PaymentRecovered     NoticeType = "payment_recovered"
	AccountSuspended     NoticeType = "account_suspended"
	AccountResumed       NoticeType = "account_resumed"
	AccountDeprovisioned NoticeType = "account_deprovisioned"
	CardExpiring         NoticeType = "card_expiring"
	CardExpiringReminder NoticeType = "card_expiring_reminder"
	PaymentMethodMissing NoticeType = "payment_method_missing"
	// PaymentActionRequired asks the customer to complete a payment their
	// bank wants them to authenticate, at InvoiceURL when there is one.
	PaymentActionRequired NoticeType = "payment_action_required"
	// PaymentWaived tells the customer an operator forgave what they owed.
	PaymentWaived NoticeType = "payment_waived"
)

// Why a notice carries no update_payment_method_url: the values of
// links_missing_reason.
const (
	// LinksNotConfigured: the worker has no PUBLIC_URL and
	// PORTAL_LINK_SECRET, so no link can be made.
	LinksNotConfigured = "not_configured"
	// LinksNoStripeCustomer: the notice names no Stripe customer whose
	// portal a link could open.
	LinksNoStripeCustomer = "no_stripe_customer"
	// LinksExpired: the notice was decided longer than PORTAL_LINK_TTL ago;
	// its link would no longer open.
	LinksExpired = "expired"
)

func validLinksMissingReason(r string) bool {
	switch r {
	case LinksNotConfigured, LinksNoStripeCustomer, LinksExpired:
		return true
	}
	return false
}

// Valid reports whether t is one of the declared notice types.
func (t NoticeType) Valid() bool {
	switch t {
	case PaymentFailed, PaymentRetryFailed, PaymentRecovered,
		AccountSuspended, AccountResumed, AccountDeprovisioned,
		CardExpiring, CardExpiringReminder, PaymentMethodMissing, PaymentActionRequired, PaymentWaived:
		return true
	}
	return false
}

// Card is what a notice may say about a card: never its number.
type Card struct {
	Brand string // as Stripe names it: visa, mastercard, amex, …
	Last4 string // exactly four digits
	// ExpMonth is 1 to 12 (0 when unknown); ExpYear is four digits.
	ExpMonth int
	ExpYear  int
}

// Notice is one message for a customer. Its JSON body has exactly these
// fields, in snake_case: id, type, customer_id, stripe_customer_id, stage,
// amount_due, currency, invoice_url, update_payment_method_url, pay_url,
// links_missing_reason, card {brand, last4, exp_month, exp_year},
// next_action_at, deadline, reason, created_at. Times are RFC 3339 in UTC;
// card, next_action_at and deadline are left out when nil,
// links_missing_reason when empty. The URLs are "" when there is none.
type Notice struct {
	// ID identifies the notice and is its idempotency key: the same on
	// every retry, e.g. derived from the workflow ID, stage and attempt.
	// Required.
	ID   string
	Type NoticeType
	// CustomerID is the product's ID for the customer; StripeCustomerID
	// its Stripe ID (cus_…). At least one is required.
	CustomerID       string
	StripeCustomerID string
	// Stage is the recovery stage when the notice was decided.
	Stage string
	// AmountDue is in the currency's minor units; Currency is the ISO 4217
	// code as Stripe gives it.
	AmountDue  int64
	Currency   string
	InvoiceURL string
	// UpdatePaymentMethodURL is the customer's one click to a fresh Stripe
	// Billing Portal session where they update their payment method
	// (PUBLIC_URL/portal/{token}); it expires (PORTAL_LINK_TTL). PayURL is
	// where they pay the invoice themselves: Stripe's hosted invoice page.
	// Each is an absolute http(s) URL, or empty.
	UpdatePaymentMethodURL string
	PayURL                 string
	// LinksMissingReason says why UpdatePaymentMethodURL is empty, one of
	// the LinksMissing values; it is empty when the link is there. (An
	// empty PayURL needs no reason: there is no Stripe invoice to pay.)
	LinksMissingReason string
	Card               *Card
	// NextActionAt is when dunning acts next (the next retry, say);
	// Deadline is when the customer must act by (before suspension, say).
	NextActionAt *time.Time
	Deadline     *time.Time
	Reason       string
	// CreatedAt is when the notice was decided. Set it from the workflow
	// (workflow.Now) so that retries send the same body; zero means now.
	CreatedAt time.Time
}

func (n Notice) validate() error {
	var errs []error
	if err := checkKey("ID", n.ID); err != nil {
		errs = append(errs, err)
	}
	if !n.Type.Valid() {
		errs = append(errs, fmt.Errorf("unknown notice type %q", n.Type))
	}
	if n.CustomerID == "" && n.StripeCustomerID == "" {
		errs = append(errs, errors.New("customer ID or Stripe customer ID is required"))
	}
	for _, link := range []struct{ what, url string }{
		{"invoice URL", n.InvoiceURL},
		{"update payment method URL", n.UpdatePaymentMethodURL},
		{"pay URL", n.PayURL},
	} {
		if link.url != "" && !AbsoluteURL(link.url) {
			errs = append(errs, fmt.Errorf("%s must be an absolute http or https URL", link.what))
		}
	}
	switch {
	case n.UpdatePaymentMethodURL != "" && n.LinksMissingReason != "":
		errs = append(errs, errors.New("links missing reason given with an update payment method URL"))
	case n.LinksMissingReason != "" && !validLinksMissingReason(n.LinksMissingReason):
		errs = append(errs, fmt.Errorf("unknown links missing reason %q", n.LinksMissingReason))
	}
	if c := n.Card; c != nil {
		if !fourDigits(c.Last4) {
			// Not echoed: it might be a whole card number.
			errs = append(errs, errors.New("card last4 must be exactly four digits"))
		}
		if c.ExpMonth < 0 || c.ExpMonth > 12 {
			errs = append(errs, fmt.Errorf("card expiry month %d is not 1 to 12", c.ExpMonth))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
}

// AbsoluteURL reports whether s is an absolute http or https URL, as a
// notice's links must be.
func AbsoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

func fourDigits(s string) bool {
	if len(s) != 4 {
		return false
	}
	for i := 0; i < 4; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

type noticeCard struct {
	Brand    string `json:"brand"`
	Last4    string `json:"last4"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
}

type noticeBody struct {
	ID               string      `json:"id"`
	Type             NoticeType  `json:"type"`
	CustomerID       string      `json:"customer_id"`
	StripeCustomerID string      `json:"stripe_customer_id"`
	Stage            string      `json:"stage"`
	AmountDue        int64       `json:"amount_due"`
	Currency         string      `json:"currency"`
	InvoiceURL       string      `json:"invoice_url"`
	UpdatePMURL      string      `json:"update_payment_method_url"`
	PayURL           string      `json:"pay_url"`
	LinksMissing     string      `json:"links_missing_reason,omitempty"`
	Card             *noticeCard `json:"card,omitempty"`
	NextActionAt     string      `json:"next_action_at,omitempty"`
	Deadline         string      `json:"deadline,omitempty"`
	Reason           string      `json:"reason"`
	CreatedAt        string      `json:"created_at"`
}

// Send posts n, once. A 2xx answer, or 409 (already delivered), is
// success. The error, if any, says what was being done; httpx.IsRetryable
// tells whether trying again may help.
func (s *NoticeSender) Send(ctx context.Context, n Notice) error {
	if err := s.send(ctx, n); err != nil {
		return fmt.Errorf("send %s notice %q: %w", n.Type, n.ID, err)
	}
	return nil
}

func (s *NoticeSender) send(ctx context.Context, n Notice) error {
	if err := n.validate(); err != nil {
		return err
	}
	now := s.now()
	created := n.CreatedAt
	if created.IsZero() {
		created = now
	}
	b := noticeBody{
		ID:               n.ID,
		Type:             n.Type,
		CustomerID:       n.CustomerID,
		StripeCustomerID: n.StripeCustomerID,
		Stage:            n.Stage,
		AmountDue:        n.AmountDue,
		Currency:         n.Currency,
		InvoiceURL:       n.InvoiceURL,
		UpdatePMURL:      n.UpdatePaymentMethodURL,
		PayURL:           n.PayURL,
		LinksMissing:     n.LinksMissingReason,
		NextActionAt:     rfc3339(n.NextActionAt),
		Deadline:         rfc3339(n.Deadline),
		Reason:           n.Reason,
		CreatedAt:        rfc3339(&created),
	}
	if c := n.Card; c != nil {
		b.Card = &noticeCard{Brand: c.Brand, Last4: c.Last4, ExpMonth: c.ExpMonth, ExpYear: c.ExpYear}
	}
	payload, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("encode notice: %w", err)
	}
	h := http.Header{}
	h.Set(IdempotencyHeader, n.ID)
	_, err = s.p.post(ctx, payload, h, true, func(req *http.Request) error {
		v, err := sig.KindCustomerNotice.Sign(now, sig.Request{
			Method: req.Method, Target: req.URL.RequestURI(), IdempotencyKey: n.ID, Body: payload,
		}, s.secret)
		req.Header.Set(SignatureHeader, v)
		return err
	}, linkToken(n.UpdatePaymentMethodURL))
	return err
}

// linkToken is the part of a one-click link that opens the customer's
// Billing Portal, PUBLIC_URL/portal/{token}: its last path segment. A
// mailer's refusal that repeats the link must not carry it into errors,
// which reach the workflow's history and ops alerts. "" when there is no
// link.
func linkToken(link string) string {
	u, err := url.Parse(link)
	if err != nil || link == "" {
		return link
	}
	seg := u.EscapedPath()
	seg = seg[strings.LastIndex(seg, "/")+1:]
	if len(seg) < minTokenLen {
		// Not a token: redact the whole link rather than a common word.
		return link
	}
	return seg
}

// minTokenLen is shorter than any portal link token (portallink: at least
// 47 bytes, base64url).
const minTokenLen = 32
