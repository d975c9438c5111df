package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"go.temporal.io/sdk/temporal"

	"dunning/internal/httpx"
)

// WaivedMetadataKey is the PaymentIntent metadata key dunning sets when an
// operator waives the intent. Every later life of the customer's recovery,
// and every later event about the intent, reads it: a waived intent is
// never charged again.
const WaivedMetadataKey = "dunning_waived"

// Verdicts of an owed check: whether confirming the intent now could take
// money that is not owed.
const (
	// OwedYes: nothing says the money arrived; a confirm may be made.
	OwedYes = "owed"
	// OwedPaid: the intent succeeded, or the invoice it pays is paid (by
	// another intent, out of band, or by credit).
	OwedPaid = "paid"
	// OwedInFlight: a payment is under way (bank debits take days); it is
	// neither a failure nor unpaid.
	OwedInFlight = "in_flight"
	// OwedActionRequired: the bank wants the customer to authenticate the
	// card a confirm would charge; an off-session confirm cannot do it.
	// Before a charge, a confirm with another card is owed (ActionFor).
	OwedActionRequired = "action_required"
	// OwedCanceled: the intent or its invoice was canceled or voided;
	// nothing can be paid through it.
	OwedCanceled = "canceled"
	// OwedForgiven: waived by an operator, or written off in Stripe
	// (invoice uncollectible).
	OwedForgiven = "forgiven"
)

// OwedInput names an intent the recovery believes open.
type OwedInput struct {
	IntentID         string `json:"intent_id"`
	StripeCustomerID string `json:"stripe_customer_id"`
	// FailedPaymentMethod is the payment method that failed, as the event
	// reported it; the fallback when the customer has no default.
	FailedPaymentMethod string `json:"failed_payment_method,omitempty"`
	// SkipCharge leaves out what a charge needs (the payment method and
	// its card), for a check before a suspension, which charges nothing:
	// a read that only a charge needs must not hold a suspension.
	SkipCharge bool `json:"skip_charge,omitempty"`
	// Removed are payment methods the customer removed: never chosen to
	// charge, whatever Stripe still names (its reads may lag a removal, and
	// a subscription's default may name one).
	Removed []string `json:"removed,omitempty"`
}

// Owed is where an intent stands in Stripe now, and what a confirm would
// charge.
type Owed struct {
	Verdict string `json:"verdict"`
	// Status is the intent's status; Why says what decided the verdict.
	Status string `json:"status"`
	Why    string `json:"why"`
	// InvoiceID is the Stripe invoice the intent pays, if any, with the
	// period it bills (zero when Stripe gives none) and its hosted page.
	InvoiceID   string    `json:"invoice_id,omitempty"`
	PeriodStart time.Time `json:"period_start,omitzero"`
	PeriodEnd   time.Time `json:"period_end,omitzero"`
	PayURL      string    `json:"pay_url,omitempty"`
	// AmountPaid, for a paid verdict, is the money that paid: the intent's
	// amount_received, or its invoice's amount_paid (less than due, even
	// zero, when a credit note or the customer's credit balance paid the
	// rest). OutOfBand: the invoice was marked paid for money taken
	// outside Stripe.
	AmountPaid *int64 `json:"amount_paid,omitempty"`
	OutOfBand  bool   `json:"out_of_band,omitempty"`
	// PaymentMethod is what a confirm would charge: the customer's default,
	// else the payment method that failed, else the subscription's default;
	// PaymentMethodSource names which. Empty when there is none.
	PaymentMethod       string `json:"payment_method,omitempty"`
	PaymentMethodSource string `json:"payment_method_source,omitempty"`
	// Fingerprint identifies the card PaymentMethod charges, across the
	// payment methods and sources that carry it, so that the per-card
	// limits hold before a charge. Empty when Stripe gives none (not a
	// card, or a payment method Stripe no longer has).
	Fingerprint string `json:"fingerprint,omitempty"`
	// Passed are the removed payment methods (OwedInput.Removed) that
	// Stripe still named as what a confirm would charge, passed over.
	Passed []string `json:"passed,omitempty"`
	DryRun bool     `json:"dry_run,omitempty"`
}

// IntentOwed asks Stripe whether an intent's money is still owed: the
// intent itself, the invoice it pays, and any other succeeded intent for
// that invoice. A read Stripe does not answer is an error (retried); no
// verdict is guessed.
func (a *Activities) IntentOwed(ctx context.Context, in OwedInput) (Owed, error) {
	if in.IntentID == "" || in.StripeCustomerID == "" {
		return Owed{}, temporal.NewNonRetryableApplicationError("owed check needs an intent and a customer", ErrBadInput, nil)
	}
	if a.Stripe == nil {
		a.logger(ctx).Info("dry run: stripe not configured; cannot tell whether the intent is owed", "intent", in.IntentID)
		return Owed{Verdict: OwedYes, Status: "unknown", Why: "stripe not configured", DryRun: true}, nil
	}
	params := &stripe.PaymentIntentParams{}
	params.Context = ctx
	params.AddExpand("invoice")
	params.AddExpand("invoice.subscription")
	// The charges say what was refunded of a payment: money given back
	// was not recovered.
	params.AddExpand("invoice.charge")
	params.AddExpand("latest_charge")
	pi, err := a.Stripe.PaymentIntents.Get(in.IntentID, params)
	if err != nil {
		return Owed{}, classifyStripe(fmt.Sprintf("read payment intent %s", in.IntentID), err)
	}
	otherPaid, otherReceived := "", int64(0)
	if inv := pi.Invoice; inv != nil && inv.ID != "" && pi.Status != stripe.PaymentIntentStatusSucceeded {
		if otherPaid, otherReceived, err = a.otherSucceededIntent(ctx, in.StripeCustomerID, inv.ID, pi.ID); err != nil {
			return Owed{}, err
		}
	}
	out := OwedVerdict(pi, otherPaid)
	if out.Verdict == OwedPaid && otherPaid != "" && out.AmountPaid == nil && otherReceived > 0 {
		// The invoice has not caught up with the intent that paid it:
		// the money is what that intent received.
		out.AmountPaid = stripe.Int64(otherReceived)
	}
	if inv := pi.Invoice; inv != nil {
		out.InvoiceID, out.PayURL = inv.ID, inv.HostedInvoiceURL
		out.PeriodStart, out.PeriodEnd = InvoicePeriod(inv)
	}
	if (out.Verdict == OwedYes || out.Verdict == OwedActionRequired) && !in.SkipCharge {
		profile, err := a.CustomerProfile(ctx, CustomerInput{StripeCustomerID: in.StripeCustomerID})
		if err != nil {
			return Owed{}, err
		}
		out.PaymentMethod, out.PaymentMethodSource, out.Passed = ChargeMethodExcept(in.Removed,
			profile.DefaultPaymentMethod, failedMethod(pi, in.FailedPaymentMethod), subscriptionMethod(pi.Invoice))
		if out = ActionFor(out, actionMethod(pi)); out.Verdict != OwedYes {
			return out, nil
		}
		if out.PaymentMethodSource == sourceFailed {
			// Stripe keeps naming the card that failed after the customer
			// removed it; a removed card cannot be charged. One read says
			// whether it is still theirs, and gives its fingerprint.
			card, err := a.readCard(ctx, in.StripeCustomerID, out.PaymentMethod)
			if err != nil {
				return Owed{}, err
			}
			if card.attached {
				out.Fingerprint = card.fingerprint
				return out, nil
			}
			a.logger(ctx).Info("the card that failed is no longer the customer's", "payment_method", out.PaymentMethod)
			var more []string
			out.PaymentMethod, out.PaymentMethodSource, more = ChargeMethodExcept(in.Removed, "", "", subscriptionMethod(pi.Invoice))
			for _, pm := range more {
				if !slices.Contains(out.Passed, pm) {
					out.Passed = append(out.Passed, pm)
				}
			}
		}
		if out.Fingerprint, err = a.fingerprint(ctx, in.StripeCustomerID, out.PaymentMethod, pi); err != nil {
			return Owed{}, err
		}
	}
	return out, nil
}

// fingerprint returns the card fingerprint of a payment method: from the
// intent's last_payment_error when it is the card that failed, else read
// from Stripe: GET /v1/payment_methods/{id}, or, for a legacy card, source
// or bank account (card_…, src_…, ba_…, which the payment methods endpoint
// does not serve), GET /v1/customers/{customer}/sources/{id}. A read Stripe
// does not answer is an error (retried); an object Stripe does not have,
// or that is not a card, has no fingerprint.
func (a *Activities) fingerprint(ctx context.Context, customer, pm string, pi *stripe.PaymentIntent) (string, error) {
	if pm == "" {
		return "", nil
	}
	if e := pi.LastPaymentError; e != nil && e.PaymentMethod != nil && e.PaymentMethod.ID == pm &&
		e.PaymentMethod.Card != nil && e.PaymentMethod.Card.Fingerprint != "" {
		return e.PaymentMethod.Card.Fingerprint, nil
	}
	card, err := a.readCard(ctx, customer, pm)
	return card.fingerprint, err
}

// otherSucceededIntent returns the ID of another succeeded intent of the
// customer that pays the same invoice, or "".
func (a *Activities) otherSucceededIntent(ctx context.Context, customer, invoiceID, intentID string) (string, int64, error) {
	lp := &stripe.PaymentIntentListParams{Customer: stripe.String(customer)}
	lp.Context = ctx
	lp.Limit = stripe.Int64(100)
	it := a.Stripe.PaymentIntents.List(lp)
	for n := 0; it.Next() && n < 300; n++ {
		o := it.PaymentIntent()
		if o.ID != intentID && o.Status == stripe.PaymentIntentStatusSucceeded && o.Invoice != nil && o.Invoice.ID == invoiceID {
			return o.ID, o.AmountReceived, nil
		}
	}
	if err := it.Err(); err != nil {
		return "", 0, classifyStripe(fmt.Sprintf("list payment intents of %s", customer), err)
	}
	return "", 0, nil
}

// OwedVerdict decides from the intent (with its invoice expanded, when it
// has one) whether its money is still owed. otherPaid names another
// succeeded intent for the same invoice, if one was found.
func OwedVerdict(pi *stripe.PaymentIntent, otherPaid string) Owed {
	o := Owed{Status: string(pi.Status)}
	set := func(v, why string) Owed { o.Verdict, o.Why = v, why; return o }
	// Money that arrived decides first, even after a waiver: it was
	// recovered, not forgiven (as ForgiveIntent answers ForgivePaid).
	if pi.Status == stripe.PaymentIntentStatusSucceeded {
		o.AmountPaid = stripe.Int64(Kept(pi.AmountReceived, pi))
		return set(OwedPaid, "intent succeeded")
	}
	inv := pi.Invoice
	if inv != nil {
		// What paid the invoice is amount_paid: a credit note or the
		// customer's credit balance pays without money.
		paid := func(why string) Owed {
			o.AmountPaid = stripe.Int64(Kept(inv.AmountPaid, pi))
			return set(OwedPaid, why)
		}
		switch {
		case inv.Status == stripe.InvoiceStatusPaid && inv.PaidOutOfBand:
			// Money taken elsewhere; an amount_paid of zero says nothing
			// of how much (the intent's amount stands for it).
			o.OutOfBand = true
			if inv.AmountPaid == 0 {
				return set(OwedPaid, "invoice "+inv.ID+" paid out of band")
			}
			return paid("invoice " + inv.ID + " paid out of band")
		case inv.Status == stripe.InvoiceStatusPaid:
			return paid("invoice " + inv.ID + " paid")
		case inv.Status == stripe.InvoiceStatusVoid || inv.Status == stripe.InvoiceStatusUncollectible:
			// Neither can have been paid by another intent.
		case otherPaid != "":
			// Stripe may not have marked the invoice paid yet: an
			// amount_paid of zero then says nothing of the money (the
			// other intent's, which IntentOwed reads, stands for it).
			if inv.AmountPaid == 0 {
				return set(OwedPaid, "invoice "+inv.ID+" paid by "+otherPaid)
			}
			return paid("invoice " + inv.ID + " paid by " + otherPaid)
		case inv.Status == stripe.InvoiceStatusOpen && inv.AmountRemaining == 0 && inv.AmountDue > 0:
			return paid("invoice " + inv.ID + " has nothing left to pay")
		}
	}
	if r := pi.Metadata[WaivedMetadataKey]; r != "" {
		return set(OwedForgiven, "waived in dunning ("+r+")")
	}
	if inv != nil {
		switch inv.Status {
		case stripe.InvoiceStatusVoid:
			return set(OwedCanceled, "invoice "+inv.ID+" void")
		case stripe.InvoiceStatusUncollectible:
			return set(OwedForgiven, "invoice "+inv.ID+" marked uncollectible")
		}
	}
	switch pi.Status {
	case stripe.PaymentIntentStatusCanceled:
		return set(OwedCanceled, "intent canceled")
	case stripe.PaymentIntentStatusProcessing:
		return set(OwedInFlight, "payment processing")
	case stripe.PaymentIntentStatusRequiresAction:
		return set(OwedActionRequired, "the bank asks the customer to authenticate")
	case stripe.PaymentIntentStatusRequiresCapture:
		// Authorized: the money is held and a capture will take it.
		return set(OwedInFlight, "authorized, awaiting capture")
	}
	return set(OwedYes, "intent "+string(pi.Status))
}

// Kept is the money kept of paid, what paid the intent or its invoice:
// what a refund or a post-payment credit note gave back is not kept.
// Stripe says it in the invoice's post_payment_credit_notes_amount (a
// credit note on a paid invoice: refunded, credited to the balance or
// out of band) and in the amount_refunded of the charges that paid (the
// invoice's charge, the intent's latest charge when it succeeded), where
// they are expanded. A refund made for a credit note shows in both, so
// the largest stands for what was given back, not their sum. A credit
// note on an open invoice (pre_payment_credit_notes_amount) took the
// money off the debt before it was paid: amount_paid never held it.
func Kept(paid int64, pi *stripe.PaymentIntent) int64 {
	var back int64
	if inv := pi.Invoice; inv != nil {
		back = max(back, inv.PostPaymentCreditNotesAmount)
		if inv.Charge != nil {
			back = max(back, inv.Charge.AmountRefunded)
		}
	}
	if pi.Status == stripe.PaymentIntentStatusSucceeded && pi.LatestCharge != nil {
		back = max(back, pi.LatestCharge.AmountRefunded)
	}
	return max(paid-back, 0)
}

// ActionFor settles an action_required verdict on what a confirm would
// charge (o.PaymentMethod). The bank asked the customer to authenticate
// the card asked (a requires_action intent's payment_method); a confirm
// with another payment method, which Stripe accepts from requires_action,
// is an off-session retry like any other. So the verdict stays
// action_required, with nothing to charge, when the confirm would charge
// asked or Stripe does not say which card asked; otherwise the money is
// owed, and the card rules decide.
func ActionFor(o Owed, asked string) Owed {
	if o.Verdict != OwedActionRequired {
		return o
	}
	if o.PaymentMethod == "" || asked == "" || o.PaymentMethod == asked {
		o.PaymentMethod, o.PaymentMethodSource = "", ""
		return o
	}
	o.Verdict = OwedYes
	o.Why = "the bank asked to authenticate " + asked + "; " + o.PaymentMethod + " is another card"
	return o
}

// actionMethod is the payment method a requires_action intent asks the
// customer to authenticate: its own payment_method.
func actionMethod(pi *stripe.PaymentIntent) string {
	if pi.Status == stripe.PaymentIntentStatusRequiresAction && pi.PaymentMethod != nil {
		return pi.PaymentMethod.ID
	}
	return ""
}

// sourceFailed names the payment method that failed, as a charge target.
const sourceFailed = "the payment method that failed"

// cardRead is what one read of a payment method or legacy source says.
type cardRead struct {
	fingerprint string
	// attached: it still belongs to the customer.
	attached bool
}

// readCard reads a payment method (GET /v1/payment_methods/{id}) or, for
// a legacy card, source or bank account (card_…, src_…, ba_…, which that
// endpoint does not serve), GET /v1/customers/{customer}/sources/{id}. A
// read Stripe does not answer is an error (retried); one it refuses (the
// method is gone) is a card neither attached nor known.
func (a *Activities) readCard(ctx context.Context, customer, pm string) (cardRead, error) {
	path := stripe.FormatURLPath("/v1/payment_methods/%s", pm)
	legacy := false
	for _, p := range []string{"card_", "src_", "ba_"} {
		if strings.HasPrefix(pm, p) {
			path, legacy = stripe.FormatURLPath("/v1/customers/%s/sources/%s", customer, pm), true
		}
	}
	raw, err := a.getRaw(ctx, path)
	switch {
	case stripeRejected(err):
		a.logger(ctx).Warn("stripe refused to read the payment method", "payment_method", pm, "error", err)
		return cardRead{}, nil
	case err != nil:
		return cardRead{}, classifyStripe("read payment method "+pm, err)
	}
	var obj struct {
		paymentMethodJSON
		Customer expandable[struct{}] `json:"customer"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		a.logger(ctx).Warn("payment method of an unexpected shape", "payment_method", pm, "error", err)
		// Found under the customer's path, a legacy source is theirs.
		return cardRead{attached: legacy}, nil
	}
	return cardRead{fingerprint: obj.fingerprint(), attached: legacy || obj.Customer.ID == customer}, nil
}

// ChargeMethod picks what a retry charges: the customer's default, else the
// payment method that failed (Stripe clears the intent's own after a
// decline), else the subscription's default.
func ChargeMethod(customerDefault, failed, subscription string) (string, string) {
	switch {
	case customerDefault != "":
		return customerDefault, "customer default"
	case failed != "":
		return failed, sourceFailed
	case subscription != "":
		return subscription, "subscription default"
	}
	return "", ""
}

// ChargeMethodExcept is ChargeMethod passing over the payment methods the
// customer removed: it also returns those it passed over.
func ChargeMethodExcept(removed []string, customerDefault, failed, subscription string) (string, string, []string) {
	var passed []string
	skip := func(pm string) string {
		if pm == "" || !slices.Contains(removed, pm) {
			return pm
		}
		if !slices.Contains(passed, pm) {
			passed = append(passed, pm)
		}
		return ""
	}
	pm, source := ChargeMethod(skip(customerDefault), skip(failed), skip(subscription))
	return pm, source, passed
}

func failedMethod(pi *stripe.PaymentIntent, reported string) string {
	switch {
	case pi.PaymentMethod != nil && pi.PaymentMethod.ID != "":
		return pi.PaymentMethod.ID
	case pi.LastPaymentError != nil && pi.LastPaymentError.PaymentMethod != nil && pi.LastPaymentError.PaymentMethod.ID != "":
		return pi.LastPaymentError.PaymentMethod.ID
	}
	return reported
}

func subscriptionMethod(inv *stripe.Invoice) string {
	if inv == nil || inv.Subscription == nil {
		return ""
	}
	s := inv.Subscription
	switch {
	case s.DefaultPaymentMethod != nil && s.DefaultPaymentMethod.ID != "":
		return s.DefaultPaymentMethod.ID
	case s.DefaultSource != nil && s.DefaultSource.ID != "":
		return s.DefaultSource.ID
	}
	return ""
}

// InvoicePeriod is the usage period an invoice bills: the span of its
// lines' periods, else the invoice's own period. Zero when Stripe gives no
// period of positive length (an invoice created at once has start = end,
// which says nothing about which usage it bills).
func InvoicePeriod(inv *stripe.Invoice) (time.Time, time.Time) {
	var start, end int64
	if inv.Lines != nil {
		for _, l := range inv.Lines.Data {
			if l == nil || l.Period == nil || l.Period.End <= l.Period.Start {
				continue
			}
			if start == 0 || l.Period.Start < start {
				start = l.Period.Start
			}
			if l.Period.End > end {
				end = l.Period.End
			}
		}
	}
	if end <= start {
		start, end = inv.PeriodStart, inv.PeriodEnd
	}
	if start <= 0 || end <= start {
		return time.Time{}, time.Time{}
	}
	return time.Unix(start, 0).UTC(), time.Unix(end, 0).UTC()
}

// ForgiveInput asks for an intent to be forgiven in Stripe.
type ForgiveInput struct {
	IntentID string `json:"intent_id"`
	// Reason is what the operator gave; Lifecycle names the recovery life
	// that waived it. Both go into the intent's metadata.
	Reason    string `json:"reason"`
	Lifecycle string `json:"lifecycle"`
	// IdempotencyKey prefixes the keys of the Stripe writes.
	IdempotencyKey string `json:"idempotency_key"`
}

// ForgiveResult says what Stripe now holds.
type ForgiveResult struct {
	// Outcome: forgiven (marked, and the invoice written off or the intent
	// canceled), paid (the money had arrived: nothing to forgive), or
	// closed (already canceled or void).
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
	DryRun  bool   `json:"dry_run,omitempty"`
}

// Outcomes of ForgiveIntent.
const (
	ForgiveDone   = "forgiven"
	ForgivePaid   = "paid"
	ForgiveClosed = "closed"
)

// ForgiveIntent makes a waiver durable in Stripe, where every later life of
// the recovery and every later event reads it: the intent gets the
// dunning_waived metadata, then its invoice is marked uncollectible (which
// also stops Stripe's own retries) or, without an invoice, the intent is
// canceled. Each step is idempotent: run again, it finds the work done.
func (a *Activities) ForgiveIntent(ctx context.Context, in ForgiveInput) (ForgiveResult, error) {
	if in.IntentID == "" || in.IdempotencyKey == "" {
		return ForgiveResult{}, temporal.NewNonRetryableApplicationError("forgive needs an intent and an idempotency key", ErrBadInput, nil)
	}
	if a.Stripe == nil {
		a.logger(ctx).Info("dry run: stripe not configured; waiver not written to stripe", "intent", in.IntentID)
		return ForgiveResult{Outcome: ForgiveDone, DryRun: true}, nil
	}
	gp := &stripe.PaymentIntentParams{}
	gp.Context = ctx
	gp.AddExpand("invoice")
	pi, err := a.Stripe.PaymentIntents.Get(in.IntentID, gp)
	if err != nil {
		return ForgiveResult{}, classifyStripe(fmt.Sprintf("read payment intent %s", in.IntentID), err)
	}
	switch {
	case pi.Status == stripe.PaymentIntentStatusSucceeded:
		return ForgiveResult{Outcome: ForgivePaid, Detail: "intent succeeded"}, nil
	case pi.Invoice != nil && pi.Invoice.Status == stripe.InvoiceStatusPaid:
		return ForgiveResult{Outcome: ForgivePaid, Detail: "invoice " + pi.Invoice.ID + " paid"}, nil
	}
	switch {
	case pi.Invoice != nil && pi.Invoice.Status == stripe.InvoiceStatusVoid:
		// Nothing can be paid through it; Stripe refuses writes to what
		// is closed, and there is nothing to forgive.
		return ForgiveResult{Outcome: ForgiveClosed, Detail: "invoice " + pi.Invoice.ID + " void"}, nil
	case pi.Invoice == nil && pi.Status == stripe.PaymentIntentStatusCanceled:
		return ForgiveResult{Outcome: ForgiveClosed, Detail: "intent already canceled"}, nil
	}
	if pi.Metadata[WaivedMetadataKey] == "" {
		up := &stripe.PaymentIntentParams{}
		up.Context = ctx
		up.AddMetadata(WaivedMetadataKey, httpx.Truncate(in.Lifecycle+": "+in.Reason, 450))
		up.SetIdempotencyKey(in.IdempotencyKey + ":metadata")
		if _, err := a.Stripe.PaymentIntents.Update(in.IntentID, up); err != nil {
			return ForgiveResult{}, classifyStripe(fmt.Sprintf("mark payment intent %s waived", in.IntentID), err)
		}
	}
	if inv := pi.Invoice; inv != nil && inv.ID != "" {
		switch inv.Status {
		case stripe.InvoiceStatusUncollectible:
			return ForgiveResult{Outcome: ForgiveDone, Detail: "invoice " + inv.ID + " already uncollectible"}, nil
		case stripe.InvoiceStatusVoid:
			return ForgiveResult{Outcome: ForgiveClosed, Detail: "invoice " + inv.ID + " void"}, nil
		}
		mp := &stripe.InvoiceMarkUncollectibleParams{}
		mp.Context = ctx
		mp.SetIdempotencyKey(in.IdempotencyKey + ":uncollectible")
		if _, err := a.Stripe.Invoices.MarkUncollectible(inv.ID, mp); err != nil {
			return ForgiveResult{}, classifyStripe(fmt.Sprintf("mark invoice %s uncollectible", inv.ID), err)
		}
		return ForgiveResult{Outcome: ForgiveDone, Detail: "invoice " + inv.ID + " marked uncollectible"}, nil
	}
	if pi.Status == stripe.PaymentIntentStatusCanceled {
		return ForgiveResult{Outcome: ForgiveClosed, Detail: "intent already canceled"}, nil
	}
	cp := &stripe.PaymentIntentCancelParams{CancellationReason: stripe.String(string(stripe.PaymentIntentCancellationReasonAbandoned))}
	cp.Context = ctx
	cp.SetIdempotencyKey(in.IdempotencyKey + ":cancel")
	if _, err := a.Stripe.PaymentIntents.Cancel(in.IntentID, cp); err != nil {
		return ForgiveResult{}, classifyStripe(fmt.Sprintf("cancel payment intent %s", in.IntentID), err)
	}
	return ForgiveResult{Outcome: ForgiveDone, Detail: "intent canceled"}, nil
}
