package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	"go.temporal.io/sdk/temporal"
)

// CustomerInput names a Stripe customer.
type CustomerInput struct {
	StripeCustomerID string `json:"stripe_customer_id"`
	// WithSubscriptions has PaymentMethods list the customer's
	// subscriptions too, with the payment method each charges.
	WithSubscriptions bool `json:"with_subscriptions,omitempty"`
}

// CustomerProfile is what dunning reads of a Stripe customer.
type CustomerProfile struct {
	// CustomerID is the ID the product and Amberflo use: the configured
	// metadata key's value, or the Stripe ID.
	CustomerID string `json:"customer_id"`
	// DefaultPaymentMethod is invoice_settings.default_payment_method, or
	// else default_source; empty when the customer has neither.
	DefaultPaymentMethod string `json:"default_payment_method,omitempty"`
	DryRun               bool   `json:"dry_run,omitempty"`
}

// CustomerProfile reads the customer from Stripe.
func (a *Activities) CustomerProfile(ctx context.Context, in CustomerInput) (CustomerProfile, error) {
	if a.Stripe == nil {
		a.logger(ctx).Info("dry run: stripe not configured; using the Stripe ID", "customer", in.StripeCustomerID)
		return CustomerProfile{CustomerID: in.StripeCustomerID, DryRun: true}, nil
	}
	params := &stripe.CustomerParams{}
	params.Context = ctx
	c, err := a.Stripe.Customers.Get(in.StripeCustomerID, params)
	if err != nil {
		return CustomerProfile{}, classifyStripe(fmt.Sprintf("read customer %s", in.StripeCustomerID), err)
	}
	p := CustomerProfile{CustomerID: in.StripeCustomerID}
	if key := a.CustomerIDMetadataKey; key != "" && c.Metadata[key] != "" {
		p.CustomerID = c.Metadata[key]
	}
	switch {
	case c.InvoiceSettings != nil && c.InvoiceSettings.DefaultPaymentMethod != nil && c.InvoiceSettings.DefaultPaymentMethod.ID != "":
		p.DefaultPaymentMethod = c.InvoiceSettings.DefaultPaymentMethod.ID
	case c.DefaultSource != nil && c.DefaultSource.ID != "":
		p.DefaultPaymentMethod = c.DefaultSource.ID
	}
	return p, nil
}

// IntentInput names a PaymentIntent.
type IntentInput struct {
	IntentID string `json:"intent_id"`
}

// IntentStatus is a PaymentIntent's current status in Stripe.
type IntentStatus struct {
	Status string `json:"status"`
	// Paid is true for status succeeded, and for an intent whose invoice
	// is paid (Stripe cancels the open intent of an invoice paid out of
	// band or by another intent).
	Paid bool `json:"paid"`
	// Closed is true for status canceled, unless its invoice is paid:
	// nothing can be paid through it.
	Closed bool `json:"closed"`
	DryRun bool `json:"dry_run,omitempty"`
}

// PaymentIntentStatus asks Stripe where an intent stands now.
func (a *Activities) PaymentIntentStatus(ctx context.Context, in IntentInput) (IntentStatus, error) {
	if a.Stripe == nil {
		a.logger(ctx).Info("dry run: stripe not configured; intent status unknown", "intent", in.IntentID)
		return IntentStatus{Status: "unknown", DryRun: true}, nil
	}
	pi, err := a.readIntent(ctx, in.IntentID)
	if err != nil {
		return IntentStatus{}, err
	}
	return intentStatus(pi), nil
}

// readIntent reads an intent with its invoice.
func (a *Activities) readIntent(ctx context.Context, id string) (*stripe.PaymentIntent, error) {
	params := &stripe.PaymentIntentParams{}
	params.Context = ctx
	params.AddExpand("invoice")
	pi, err := a.Stripe.PaymentIntents.Get(id, params)
	if err != nil {
		return nil, classifyStripe(fmt.Sprintf("read payment intent %s", id), err)
	}
	return pi, nil
}

func intentStatus(pi *stripe.PaymentIntent) IntentStatus {
	paid := pi.Status == stripe.PaymentIntentStatusSucceeded || invoicePaid(pi)
	return IntentStatus{
		Status: string(pi.Status),
		Paid:   paid,
		Closed: pi.Status == stripe.PaymentIntentStatusCanceled && !paid,
	}
}

// invoicePaid reports whether the invoice an intent pays (expanded) is
// paid, through it or otherwise.
func invoicePaid(pi *stripe.PaymentIntent) bool {
	return pi.Invoice != nil && pi.Invoice.Status == stripe.InvoiceStatusPaid
}

// RetryInput asks for one retry of one intent.
type RetryInput struct {
	IntentID         string `json:"intent_id"`
	StripeCustomerID string `json:"stripe_customer_id"`
	// IdempotencyKey is derived from the workflow, the intent, the attempt
	// and the payment method, so a retried activity charges once and a key
	// never goes with two sets of parameters.
	IdempotencyKey string `json:"idempotency_key"`
	// PaymentMethodID is what to charge, chosen by the workflow before the
	// attempt (IntentOwed) so that every try of this activity sends the
	// same request. Empty (histories from before it was chosen) means the
	// activity picks as IntentOwed would.
	PaymentMethodID string `json:"payment_method_id,omitempty"`
}

// Outcomes of a retry.
const (
	RetrySucceeded       = "succeeded"
	RetryAlreadyPaid     = "already_paid"
	RetryDeclined        = "declined"
	RetryRequiresAction  = "requires_action"
	RetryProcessing      = "processing"
	RetryCanceled        = "canceled"
	RetryNoPaymentMethod = "no_payment_method"
	RetryDryRun          = "dry_run"
)

// RetryResult is what one retry came to. A decline is a result, not an
// error.
type RetryResult struct {
	Outcome       string `json:"outcome"`
	Status        string `json:"status,omitempty"`
	PaymentMethod string `json:"payment_method,omitempty"`
	DeclineCode   string `json:"decline_code,omitempty"`
	Message       string `json:"message,omitempty"`
	DryRun        bool   `json:"dry_run,omitempty"`
	// Decline is what Stripe said of a decline (ClassifyDecline says what
	// it means): read from the error's raw JSON, since stripe-go v76 does
	// not know the advice codes, and completed from the failed charge.
	// Zero unless the outcome is declined or requires_action after a 402.
	Decline Decline `json:"decline,omitzero"`
	// AmountReceived, for a confirm that succeeded, is the money it took
	// (the intent's amount_received): less than what failed when a
	// credit note took part of the debt off the invoice meanwhile, and
	// Stripe lowered the intent's amount with it. Zero when not said (a
	// confirm that succeeded took money).
	AmountReceived int64 `json:"amount_received,omitempty"`
}

// RetryPayment confirms an open intent off-session with the customer's
// current default payment method. 429, 5xx and network errors are returned
// for Temporal to retry (the idempotency key makes that safe); a request
// Stripe rejects as invalid is non-retryable.
func (a *Activities) RetryPayment(ctx context.Context, in RetryInput) (RetryResult, error) {
	if in.IntentID == "" || in.IdempotencyKey == "" || in.StripeCustomerID == "" {
		return RetryResult{}, temporal.NewNonRetryableApplicationError("retry needs an intent, a customer and an idempotency key", ErrBadInput, nil)
	}
	if a.Stripe == nil {
		a.logger(ctx).Info("dry run: stripe not configured; no charge made", "intent", in.IntentID, "idempotency_key", in.IdempotencyKey)
		return RetryResult{Outcome: RetryDryRun, DryRun: true}, nil
	}
	pi, err := a.readIntent(ctx, in.IntentID)
	if err != nil {
		return RetryResult{}, err
	}
	switch {
	case pi.Status == stripe.PaymentIntentStatusSucceeded || invoicePaid(pi):
		// A canceled intent whose invoice is paid (out of band, or by
		// another intent) is paid, not canceled.
		return RetryResult{Outcome: RetryAlreadyPaid, Status: string(pi.Status)}, nil
	}
	switch pi.Status {
	case stripe.PaymentIntentStatusCanceled:
		return RetryResult{Outcome: RetryCanceled, Status: string(pi.Status)}, nil
	case stripe.PaymentIntentStatusProcessing:
		return RetryResult{Outcome: RetryProcessing, Status: string(pi.Status)}, nil
	}
	pm := in.PaymentMethodID
	if pm == "" {
		profile, err := a.CustomerProfile(ctx, CustomerInput{StripeCustomerID: in.StripeCustomerID})
		if err != nil {
			return RetryResult{}, err
		}
		pm, _ = ChargeMethod(profile.DefaultPaymentMethod, failedMethod(pi, ""), "")
	}
	if pm == "" {
		return RetryResult{Outcome: RetryNoPaymentMethod, Status: string(pi.Status)}, nil
	}
	params := &stripe.PaymentIntentConfirmParams{
		PaymentMethod: stripe.String(pm),
		OffSession:    stripe.Bool(true),
	}
	params.SetIdempotencyKey(in.IdempotencyKey)
	params.Context = ctx
	confirmed, err := a.Stripe.PaymentIntents.Confirm(in.IntentID, params)
	var se *stripe.Error
	if errors.As(err, &se) && se.Type == stripe.ErrorTypeCard {
		r := RetryResult{Outcome: RetryDeclined, PaymentMethod: pm,
			DeclineCode: string(se.DeclineCode), Message: se.Msg}
		if r.DeclineCode == "" {
			r.DeclineCode = string(se.Code)
		}
		if se.PaymentIntent != nil {
			r.Status = string(se.PaymentIntent.Status)
		}
		if se.Code == stripe.ErrorCodeAuthenticationRequired || r.Status == string(stripe.PaymentIntentStatusRequiresAction) {
			// Not a decline: the bank wants the customer to authenticate.
			r.Outcome = RetryRequiresAction
		}
		r.Decline = a.completeDecline(ctx, cardErrorDecline(se, r.Status), pm)
		return r, nil
	}
	if err != nil {
		return RetryResult{}, classifyStripe(fmt.Sprintf("confirm payment intent %s", in.IntentID), err)
	}
	r := RetryResult{Status: string(confirmed.Status), PaymentMethod: pm}
	switch confirmed.Status {
	case stripe.PaymentIntentStatusSucceeded:
		r.Outcome = RetrySucceeded
		r.AmountReceived = confirmed.AmountReceived
	case stripe.PaymentIntentStatusProcessing:
		r.Outcome = RetryProcessing
	case stripe.PaymentIntentStatusRequiresAction:
		r.Outcome = RetryRequiresAction
	default:
		r.Outcome = RetryDeclined
		if e := confirmed.LastPaymentError; e != nil {
			r.DeclineCode, r.Message = string(e.DeclineCode), e.Msg
			r.Decline = a.completeDecline(ctx, intentDecline(confirmed), pm)
		}
	}
	return r, nil
}

// cardErrorDecline reads the decline from a 402 card_error's raw body,
// where the advice codes stripe-go v76 does not know are; what stripe-go
// decoded stands in when the body cannot be read.
func cardErrorDecline(se *stripe.Error, status string) Decline {
	var body struct {
		Error json.RawMessage `json:"error"`
	}
	if se.LastResponse != nil && json.Unmarshal(se.LastResponse.RawJSON, &body) == nil && len(body.Error) > 0 {
		if d, err := DeclineOf(body.Error); err == nil {
			if d.IntentStatus == "" {
				d.IntentStatus = status
			}
			return d
		}
	}
	d := Decline{Code: string(se.Code), DeclineCode: string(se.DeclineCode), Charge: se.ChargeID, IntentStatus: status}
	if pm := se.PaymentMethod; pm != nil {
		d.PaymentMethod = pm.ID
		if pm.Card != nil {
			d.Fingerprint = pm.Card.Fingerprint
		}
	}
	return d
}

// intentDecline reads the decline from a confirmed intent's raw
// last_payment_error.
func intentDecline(pi *stripe.PaymentIntent) Decline {
	var body struct {
		LastPaymentError json.RawMessage `json:"last_payment_error"`
	}
	d := Decline{}
	if pi.LastResponse != nil && json.Unmarshal(pi.LastResponse.RawJSON, &body) == nil && len(body.LastPaymentError) > 0 {
		d, _ = DeclineOf(body.LastPaymentError)
	}
	if d == (Decline{}) && pi.LastPaymentError != nil {
		e := pi.LastPaymentError
		d = Decline{Code: string(e.Code), DeclineCode: string(e.DeclineCode), Charge: e.ChargeID}
	}
	d.IntentStatus = string(pi.Status)
	return d
}

// completeDecline fills what the error left out: the payment method that
// was charged, and, unless the error already says stop, the failed
// charge's outcome (the reason Stripe blocked it, the advice of older API
// versions). The charge is read for its detail only: when Stripe does not
// answer, the decline is kept as the error gave it and the miss is logged,
// since failing the activity would lose the decline itself.
func (a *Activities) completeDecline(ctx context.Context, d Decline, pm string) Decline {
	if d.PaymentMethod == "" {
		d.PaymentMethod = pm
	}
	if d.Charge == "" || d.OutcomeReason != "" || ClassifyDecline(d).Class == DeclineStop {
		return d
	}
	raw, err := a.getRaw(ctx, stripe.FormatURLPath("/v1/charges/%s", d.Charge))
	if err == nil {
		var withCharge Decline
		if withCharge, err = d.WithCharge(raw); err == nil {
			return withCharge
		}
	}
	a.logger(ctx).Warn("could not read the declined charge; the decline stands as the error gave it",
		"charge", d.Charge, "error", err)
	return d
}

// ChargeDecline completes a decline that an event brought with its charge
// named but not shown (on API versions whose events do not expand
// latest_charge): the charge's outcome may say stop
// (previously_declined_do_not_retry) where the error did not. A charge
// Stripe will not show is a non-retryable ErrStripeRejected; no answer is
// retried. Without Stripe configured the decline comes back as it is.
func (a *Activities) ChargeDecline(ctx context.Context, d Decline) (Decline, error) {
	if a.Stripe == nil || d.Charge == "" || d.OutcomeReason != "" {
		return d, nil
	}
	raw, err := a.getRaw(ctx, stripe.FormatURLPath("/v1/charges/%s", d.Charge))
	if err != nil {
		return d, classifyStripe("read charge "+d.Charge, err)
	}
	withCharge, err := d.WithCharge(raw)
	if err != nil {
		return d, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("read charge %s: unreadable answer: %v", d.Charge, err), ErrStripeRejected, err)
	}
	return withCharge, nil
}

// rawObject keeps an API answer as it came, for fields stripe-go v76 does
// not know and shapes it would not decode.
type rawObject struct {
	stripe.APIResource
	raw json.RawMessage
}

func (r *rawObject) UnmarshalJSON(b []byte) error {
	r.raw = append(json.RawMessage(nil), b...)
	return nil
}

// getRaw GETs a Stripe API path and returns the answer's JSON.
func (a *Activities) getRaw(ctx context.Context, path string) (json.RawMessage, error) {
	params := &stripe.Params{Context: ctx}
	var out rawObject
	c := a.Stripe.Charges // any client: they share the backend and key
	if err := c.B.Call(http.MethodGet, path, c.Key, params, &out); err != nil {
		return nil, err
	}
	return out.raw, nil
}

// classifyStripe turns a Stripe error into a Temporal one: rate limits,
// server errors, idempotency conflicts and network errors are retried; a
// request Stripe rejects is not.
func classifyStripe(what string, err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return fmt.Errorf("%s: %w", what, err) // network: retried
	}
	if !stripeRejected(err) {
		return fmt.Errorf("%s: stripe answered %d %s: %w", what, se.HTTPStatusCode, se.Code, err)
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("%s: stripe rejected the request (%d %s %s): %s", what, se.HTTPStatusCode, se.Type, se.Code, se.Msg),
		ErrStripeRejected, err, StripeRefusal{Status: se.HTTPStatusCode, Type: string(se.Type), Code: string(se.Code), Param: se.Param})
}

// StripeRefusal is what Stripe said when it refused a request for good:
// the details of an ErrStripeRejected error, for a workflow to tell one
// refusal from another.
type StripeRefusal struct {
	Status int    `json:"status"`
	Type   string `json:"type,omitempty"`
	Code   string `json:"code,omitempty"`
	Param  string `json:"param,omitempty"`
}

// PaymentMethodRefused reports whether Stripe refused the payment method a
// confirm named: it has no such payment method (resource_missing), or the
// intent's customer does not have it (detached, or another customer's).
// Nothing was charged, and the card was not declined: the customer
// removed or replaced it after it was chosen.
func (r StripeRefusal) PaymentMethodRefused() bool {
	return r.Status == http.StatusBadRequest && r.Type == string(stripe.ErrorTypeInvalidRequest) && r.Param == "payment_method"
}

// stripeRejected reports whether Stripe answered err and the answer is for
// good: not a rate limit, a server error, an idempotency conflict or a
// network error, which a later try may get past.
func stripeRejected(err error) bool {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return false
	}
	switch {
	case se.HTTPStatusCode == http.StatusTooManyRequests,
		se.HTTPStatusCode >= 500,
		se.HTTPStatusCode == http.StatusConflict,
		se.Type == stripe.ErrorTypeAPI:
		return false
	}
	return true
}

// PaymentMethod is one of a customer's ways to pay, without its number.
type PaymentMethod struct {
	ID       string `json:"id"`
	Brand    string `json:"brand,omitempty"`
	Last4    string `json:"last4,omitempty"`
	ExpMonth int    `json:"exp_month,omitempty"`
	ExpYear  int    `json:"exp_year,omitempty"`
	// Expired is true for a card past the end of its expiry month.
	Expired bool `json:"expired"`
}

// PaymentMethods is what a customer can pay with now.
type PaymentMethods struct {
	// DefaultID is invoice_settings.default_payment_method, or else
	// default_source; empty when neither is set.
	DefaultID string          `json:"default_id,omitempty"`
	Methods   []PaymentMethod `json:"methods"`
	// Usable counts the attached cards that have not expired.
	Usable int  `json:"usable"`
	DryRun bool `json:"dry_run,omitempty"`
	// Subscriptions, when asked for (CustomerInput.WithSubscriptions) and
	// SubscriptionsRead, are the customer's subscriptions that may still
	// charge: every one not canceled or expired incomplete.
	Subscriptions     []SubscriptionPayer `json:"subscriptions,omitempty"`
	SubscriptionsRead bool                `json:"subscriptions_read,omitempty"`
	// SubscriptionsUnread says why the subscriptions asked for could not
	// be read: Stripe refused to list them.
	SubscriptionsUnread string `json:"subscriptions_unread,omitempty"`
}

// SubscriptionPayer is one subscription and the payment method it names
// for itself, which Stripe charges for its invoices before the customer's
// default.
type SubscriptionPayer struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	// PaymentMethodID is the subscription's default_payment_method, or
	// else its default_source; empty when it names neither and its
	// invoices are charged to the customer's default.
	PaymentMethodID string `json:"payment_method_id,omitempty"`
}

// PaymentMethods asks Stripe which ways to pay the customer has now: the
// default (payment method or legacy source) and every attached card, legacy
// cards included, each marked expired or not.
func (a *Activities) PaymentMethods(ctx context.Context, in CustomerInput) (PaymentMethods, error) {
	if a.Stripe == nil {
		a.logger(ctx).Info("dry run: stripe not configured; payment methods unknown", "customer", in.StripeCustomerID)
		return PaymentMethods{DryRun: true}, nil
	}
	profile, err := a.CustomerProfile(ctx, in)
	if err != nil {
		return PaymentMethods{}, err
	}
	out := PaymentMethods{DefaultID: profile.DefaultPaymentMethod}
	params := &stripe.CustomerListPaymentMethodsParams{Customer: stripe.String(in.StripeCustomerID), Type: stripe.String("card")}
	params.Context = ctx
	now := time.Now().UTC()
	it := a.Stripe.Customers.ListPaymentMethods(params)
	for it.Next() {
		pm := it.PaymentMethod()
		m := PaymentMethod{ID: pm.ID}
		if c := pm.Card; c != nil {
			m.Brand, m.Last4, m.ExpMonth, m.ExpYear = string(c.Brand), c.Last4, int(c.ExpMonth), int(c.ExpYear)
			m.Expired = CardExpired(m.ExpMonth, m.ExpYear, now)
		}
		if !m.Expired {
			out.Usable++
		}
		out.Methods = append(out.Methods, m)
	}
	if err := it.Err(); err != nil {
		return PaymentMethods{}, classifyStripe(fmt.Sprintf("list payment methods of %s", in.StripeCustomerID), err)
	}
	if in.WithSubscriptions {
		if err := a.subscriptionPayers(ctx, in.StripeCustomerID, &out); err != nil {
			return PaymentMethods{}, err
		}
	}
	return out, nil
}

// subscriptionPayers lists the customer's subscriptions into out. A
// refusal for good is kept in out as SubscriptionsUnread, for whoever
// judges the cards to know what it cannot tell; anything else is an error
// to retry.
func (a *Activities) subscriptionPayers(ctx context.Context, customerID string, out *PaymentMethods) error {
	// Without a status, Stripe lists every subscription not canceled.
	params := &stripe.SubscriptionListParams{Customer: stripe.String(customerID)}
	params.Context = ctx
	var subs []SubscriptionPayer
	it := a.Stripe.Subscriptions.List(params)
	for it.Next() {
		sub := it.Subscription()
		switch sub.Status {
		case stripe.SubscriptionStatusCanceled, stripe.SubscriptionStatusIncompleteExpired:
			continue
		}
		p := SubscriptionPayer{ID: sub.ID, Status: string(sub.Status)}
		switch {
		case sub.DefaultPaymentMethod != nil && sub.DefaultPaymentMethod.ID != "":
			p.PaymentMethodID = sub.DefaultPaymentMethod.ID
		case sub.DefaultSource != nil && sub.DefaultSource.ID != "":
			p.PaymentMethodID = sub.DefaultSource.ID
		}
		subs = append(subs, p)
	}
	if err := it.Err(); err != nil {
		rejected := stripeRejected(err)
		err = classifyStripe(fmt.Sprintf("list subscriptions of %s", customerID), err)
		if !rejected {
			return err
		}
		var app *temporal.ApplicationError
		if errors.As(err, &app) {
			out.SubscriptionsUnread = app.Message()
		}
		a.logger(ctx).Warn("subscriptions not read: stripe refused", "customer", customerID, "error", out.SubscriptionsUnread)
		return nil
	}
	out.Subscriptions, out.SubscriptionsRead = subs, true
	return nil
}

// CardExpiry is the first instant a card with that expiry no longer
// works: the start of the month after its expiry month, UTC.
func CardExpiry(month, year int) time.Time {
	return time.Date(year, time.Month(month)+1, 1, 0, 0, 0, 0, time.UTC)
}

// CardExpired reports whether a card of that expiry has expired at now. A
// card without an expiry is taken as valid.
func CardExpired(month, year int, now time.Time) bool {
	if month == 0 || year == 0 {
		return false
	}
	return !now.Before(CardExpiry(month, year))
}
