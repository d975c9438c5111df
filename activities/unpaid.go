package activities

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/stripe/stripe-go/v76"
	"go.temporal.io/sdk/temporal"
)

// unpaidListCap bounds how many of a customer's intents and open invoices
// one read walks: enough for any real customer, and an answer that keeps
// within Temporal's payload limits.
const unpaidListCap = 300

// UnpaidInput names the customer whose unpaid payments are asked for.
type UnpaidInput struct {
	StripeCustomerID string `json:"stripe_customer_id"`
}

// UnpaidPayment is one payment of the customer that failed and is still
// unpaid in Stripe, as its failure event would have brought it.
type UnpaidPayment struct {
	// IntentID is empty for an open invoice whose intent Stripe did not
	// name (newer API versions keep it under the invoice's payments).
	IntentID        string `json:"intent_id,omitempty"`
	InvoiceID       string `json:"invoice_id,omitempty"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
	Status          string `json:"status,omitempty"`
	PaymentMethodID string `json:"payment_method_id,omitempty"`
	// Decline is the intent's last_payment_error, read as the failure
	// event's is; zero when Stripe gave none.
	Decline Decline `json:"decline,omitzero"`
	// Created is when the intent (else the invoice) was created.
	Created int64 `json:"created,omitempty"`
	// Why says what makes it unpaid.
	Why string `json:"why"`
}

// Unpaid is every failed, unpaid payment Stripe holds for the customer.
type Unpaid struct {
	Payments []UnpaidPayment `json:"payments,omitempty"`
	DryRun   bool            `json:"dry_run,omitempty"`
}

// UnpaidPayments asks Stripe for the customer's payments that failed and
// are still unpaid, whether or not dunning heard of them: its
// PaymentIntents (GET /v1/payment_intents?customer=) and its open
// invoices (GET /v1/invoices?customer=&status=open), each judged by
// UnpaidVerdict. A read Stripe does not answer is an error (retried); one
// it refuses is ErrStripeRejected. Nothing is guessed.
func (a *Activities) UnpaidPayments(ctx context.Context, in UnpaidInput) (Unpaid, error) {
	if in.StripeCustomerID == "" {
		return Unpaid{}, temporal.NewNonRetryableApplicationError("unpaid payments need a customer", ErrBadInput, nil)
	}
	if a.Stripe == nil {
		a.logger(ctx).Info("dry run: stripe not configured; the customer's other payments are not known", "customer", in.StripeCustomerID)
		return Unpaid{DryRun: true}, nil
	}
	open := map[string]*stripe.Invoice{}
	var invoices []*stripe.Invoice
	ip := &stripe.InvoiceListParams{Customer: stripe.String(in.StripeCustomerID), Status: stripe.String(string(stripe.InvoiceStatusOpen))}
	ip.Context = ctx
	ip.Limit = stripe.Int64(100)
	iit := a.Stripe.Invoices.List(ip)
	for n := 0; n < unpaidListCap && iit.Next(); n++ {
		inv := iit.Invoice()
		if inv.Status != stripe.InvoiceStatusOpen {
			continue // a stand-in that ignores the filter
		}
		open[inv.ID] = inv
		invoices = append(invoices, inv)
	}
	if err := iit.Err(); err != nil {
		return Unpaid{}, classifyStripe("list open invoices of "+in.StripeCustomerID, err)
	}

	var out Unpaid
	seenInvoice := map[string]bool{}
	pp := &stripe.PaymentIntentListParams{Customer: stripe.String(in.StripeCustomerID)}
	pp.Context = ctx
	pp.Limit = stripe.Int64(100)
	pit := a.Stripe.PaymentIntents.List(pp)
	for n := 0; n < unpaidListCap && pit.Next(); n++ {
		pi := pit.PaymentIntent()
		if pi.Customer != nil && pi.Customer.ID != "" && pi.Customer.ID != in.StripeCustomerID {
			continue // a stand-in that ignores the filter
		}
		var inv *stripe.Invoice
		if pi.Invoice != nil && pi.Invoice.ID != "" {
			seenInvoice[pi.Invoice.ID] = true
			inv = open[pi.Invoice.ID]
			if inv == nil {
				// Paid, void or written off: its intents are closed or
				// forgiven; or a draft, never attempted.
				continue
			}
		}
		unpaid, why := UnpaidVerdict(pi, inv)
		if !unpaid {
			continue
		}
		p := UnpaidPayment{IntentID: pi.ID, Amount: pi.Amount, Currency: string(pi.Currency), Status: string(pi.Status), Created: pi.Created, Why: why}
		if inv != nil {
			p.InvoiceID = inv.ID
		}
		p.Decline = listedDecline(pit.PaymentIntentList(), pi)
		p.PaymentMethodID = failedMethod(pi, p.Decline.PaymentMethod)
		out.Payments = append(out.Payments, p)
	}
	if err := pit.Err(); err != nil {
		return Unpaid{}, classifyStripe("list payment intents of "+in.StripeCustomerID, err)
	}
	// An open invoice that failed, whose intent the list did not show:
	// named by the invoice (older API versions) or not at all.
	for _, inv := range invoices {
		if seenInvoice[inv.ID] || !invoiceFailed(inv) {
			continue
		}
		p := UnpaidPayment{InvoiceID: inv.ID, Amount: inv.AmountRemaining, Currency: string(inv.Currency), Created: inv.Created,
			Why: fmt.Sprintf("invoice %s open after %d failed attempt(s)", inv.ID, inv.AttemptCount)}
		if inv.PaymentIntent != nil && inv.PaymentIntent.ID != "" {
			if intentInList(out, inv.PaymentIntent.ID) {
				continue
			}
			p.IntentID = inv.PaymentIntent.ID
		}
		out.Payments = append(out.Payments, p)
	}
	return out, nil
}

func intentInList(u Unpaid, id string) bool {
	for _, p := range u.Payments {
		if p.IntentID == id {
			return true
		}
	}
	return false
}

// invoiceFailed reports whether an open invoice had an attempt that
// failed and still has money to take.
func invoiceFailed(inv *stripe.Invoice) bool {
	return inv.Status == stripe.InvoiceStatusOpen && inv.Attempted && inv.AttemptCount > 0 && inv.AmountRemaining > 0
}

// UnpaidVerdict decides whether an intent (with its invoice when that is
// open, else nil) is a payment that failed and is still unpaid: a decline
// left it waiting for a payment method, or its open invoice has had a
// failed attempt. A payment in flight (processing, or authorized and
// awaiting capture) is neither failed nor unpaid; one that succeeded or
// was canceled is settled; one waived by dunning is forgiven; one never
// attempted has not failed.
func UnpaidVerdict(pi *stripe.PaymentIntent, openInvoice *stripe.Invoice) (bool, string) {
	if r := pi.Metadata[WaivedMetadataKey]; r != "" {
		return false, "waived in dunning"
	}
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded:
		return false, "succeeded"
	case stripe.PaymentIntentStatusCanceled:
		return false, "canceled"
	case stripe.PaymentIntentStatusProcessing:
		return false, "payment processing"
	case stripe.PaymentIntentStatusRequiresCapture:
		return false, "authorized, awaiting capture"
	}
	if openInvoice != nil && openInvoice.AmountRemaining == 0 && openInvoice.AmountDue > 0 {
		return false, "invoice " + openInvoice.ID + " has nothing left to pay"
	}
	if pi.Status == stripe.PaymentIntentStatusRequiresPaymentMethod && pi.LastPaymentError != nil {
		return true, "intent " + string(pi.Status) + " after a decline (" + firstNonEmptyStr(string(pi.LastPaymentError.DeclineCode), string(pi.LastPaymentError.Code), "no code") + ")"
	}
	if openInvoice != nil && invoiceFailed(openInvoice) {
		return true, fmt.Sprintf("invoice %s open after %d failed attempt(s), intent %s", openInvoice.ID, openInvoice.AttemptCount, pi.Status)
	}
	return false, "not failed (" + string(pi.Status) + ")"
}

// listedDecline reads an intent's last_payment_error from the raw page
// it was listed on (where the advice codes stripe-go v76 does not know
// are), as the failure event's is read; what stripe-go decoded stands in
// when the page cannot be read.
func listedDecline(page *stripe.PaymentIntentList, pi *stripe.PaymentIntent) Decline {
	d := Decline{}
	if page != nil && page.LastResponse != nil {
		var body struct {
			Data []struct {
				ID               string          `json:"id"`
				LastPaymentError json.RawMessage `json:"last_payment_error"`
			} `json:"data"`
		}
		if json.Unmarshal(page.LastResponse.RawJSON, &body) == nil {
			for _, o := range body.Data {
				if o.ID == pi.ID && len(o.LastPaymentError) > 0 && string(o.LastPaymentError) != "null" {
					d, _ = DeclineOf(o.LastPaymentError)
				}
			}
		}
	}
	if d == (Decline{}) && pi.LastPaymentError != nil {
		e := pi.LastPaymentError
		d = Decline{Code: string(e.Code), DeclineCode: string(e.DeclineCode), Charge: e.ChargeID}
		if e.PaymentMethod != nil {
			d.PaymentMethod = e.PaymentMethod.ID
			if e.PaymentMethod.Card != nil {
				d.Fingerprint = e.PaymentMethod.Card.Fingerprint
			}
		}
	}
	if d != (Decline{}) {
		d.IntentStatus = string(pi.Status)
	}
	return d
}

func firstNonEmptyStr(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
