// Package stripefixture builds real-shaped Stripe events of every type
// dunning handles, and signs them the way Stripe does. `dunning
// send-event` and the tests use it to stand in for Stripe.
package stripefixture

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"dunning/internal/sig"
	"dunning/webhook"
	"dunning/workflows"
)

// APIVersion is the API version stripe-go v76 is pinned to; events of
// other versions are built with Options.APIVersion.
const APIVersion = "2023-10-16"

// Options shape an event. Zero values get realistic defaults.
type Options struct {
	ID         string    // evt_… ; random when empty
	Customer   string    // cus_… ; random when empty
	Created    time.Time // now when zero
	APIVersion string    // APIVersion when empty
	// ObjectID names data.object (pi_…, in_…, card_…, pm_…); random when empty.
	ObjectID      string
	Amount        int64  // minor units; 4900 when zero
	Currency      string // usd when empty
	Invoice       string // in_… behind a payment intent; random when empty
	PaymentIntent string // pi_… behind an invoice; random when empty
	DeclineCode   string // insufficient_funds when empty
	// PaymentMethodType is the type of the way to pay that failed, on a
	// payment_failed event: a card when empty; us_bank_account gives the
	// failure of an ACH debit, as Stripe sends it days after the payment.
	PaymentMethodType string
	ExpMonth          int // card expiry month; next month when zero
	ExpYear           int
	// Metadata is the payment intent's metadata; empty when nil.
	Metadata map[string]string
}

// NewID returns a random Stripe-style ID with the given prefix.
func NewID(prefix string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + "_" + string(b)
}

func (o *Options) defaults() {
	if o.ID == "" {
		o.ID = NewID("evt")
	}
	if o.Customer == "" {
		o.Customer = NewID("cus")
	}
	if o.Created.IsZero() {
		o.Created = time.Now()
	}
	if o.APIVersion == "" {
		o.APIVersion = APIVersion
	}
	if o.Amount == 0 {
		o.Amount = 4900
	}
	if o.Currency == "" {
		o.Currency = "usd"
	}
	if o.Invoice == "" {
		o.Invoice = NewID("in")
	}
	if o.PaymentIntent == "" {
		o.PaymentIntent = NewID("pi")
	}
	if o.DeclineCode == "" {
		o.DeclineCode = "insufficient_funds"
	}
	if o.ExpMonth == 0 {
		next := o.Created.AddDate(0, 1, 0)
		o.ExpMonth, o.ExpYear = int(next.Month()), next.Year()
	}
}

type obj = map[string]any

// The personal data every event carries where Stripe sends it: the
// customer's email, name, phone number and address, in the billing details
// of payment methods, on customer objects, cards (cardholder name and
// address), and as receipt_email and shipping of payment intents. Dunning
// must never put any of it into a workflow's history; Personal lists the
// strings a test looks for.
const (
	PersonalEmail  = "jane.doe+dunning@example.com"
	PersonalName   = "Jane Q. Doe"
	PersonalPhone  = "+15555550123"
	PersonalStreet = "510 Townsend Street"
	PersonalCity   = "Fictional Falls"
	PersonalZip    = "94103-9999"
)

// Personal are the personal strings the fixtures put into events.
var Personal = []string{PersonalEmail, PersonalName, PersonalPhone, PersonalStreet, PersonalCity, PersonalZip}

// PersonalAddress is the address Stripe objects carry, as a fresh map.
func PersonalAddress() map[string]any { return addressObject() }

// PersonalShipping is the shipping details of payment intents and
// customers, as a fresh map.
func PersonalShipping() map[string]any { return shippingObject() }

// PersonalBillingDetails is a payment method's or a charge's billing
// details, as a fresh map.
func PersonalBillingDetails() map[string]any {
	return obj{"address": addressObject(), "email": PersonalEmail, "name": PersonalName, "phone": PersonalPhone}
}

func addressObject() obj {
	return obj{"city": PersonalCity, "country": "US", "line1": PersonalStreet, "line2": "Apt 4",
		"postal_code": PersonalZip, "state": "CA"}
}

func shippingObject() obj {
	return obj{"address": addressObject(), "carrier": nil, "name": PersonalName, "phone": PersonalPhone, "tracking_number": nil}
}

// Event returns the JSON body of a Stripe event of type eventType. Types
// dunning does not handle get a plain object, as Stripe would still send.
func Event(eventType string, o Options) ([]byte, error) {
	o.defaults()
	object, previous := dataObject(eventType, &o)
	data := obj{"object": object}
	if previous != nil {
		data["previous_attributes"] = previous
	}
	return json.Marshal(obj{
		"id":               o.ID,
		"object":           "event",
		"api_version":      o.APIVersion,
		"created":          o.Created.Unix(),
		"data":             data,
		"livemode":         false,
		"pending_webhooks": 1,
		"request":          obj{"id": nil, "idempotency_key": nil},
		"type":             eventType,
	})
}

// Fingerprint is the fingerprint the fixtures give the card of a payment
// method or source: stable for the card, different between cards, as
// Stripe's is. The dev Stripe gives the same.
func Fingerprint(cardID string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	sum := sha256.Sum256([]byte("card " + cardID))
	fp := make([]byte, 16)
	for i := range fp {
		fp[i] = alphabet[int(sum[i])%len(alphabet)]
	}
	return string(fp)
}

func pick(id, prefix string) string {
	if id != "" {
		return id
	}
	return NewID(prefix)
}

func cardObject(id string, o *Options) obj {
	return obj{
		"id": id, "object": "card", "address_zip_check": "pass", "brand": "Visa", "country": "US",
		"customer": o.Customer, "cvc_check": "pass", "exp_month": o.ExpMonth, "exp_year": o.ExpYear,
		"fingerprint": Fingerprint(id), "funding": "credit", "last4": "4242", "metadata": obj{},
		"name": PersonalName, "address_line1": PersonalStreet, "address_line2": "Apt 4", "address_city": PersonalCity,
		"address_state": "CA", "address_zip": PersonalZip, "address_country": "US",
	}
}

func paymentMethodObject(id string, o *Options) obj {
	return obj{
		"id": id, "object": "payment_method", "type": "card", "customer": o.Customer, "livemode": false,
		"created": o.Created.Unix(), "metadata": obj{}, "billing_details": obj{"address": addressObject(), "email": PersonalEmail, "name": PersonalName, "phone": PersonalPhone},
		"card": obj{
			"brand": "visa", "country": "US", "exp_month": o.ExpMonth, "exp_year": o.ExpYear,
			"fingerprint": Fingerprint(id), "funding": "credit", "last4": "4242",
			"checks": obj{"cvc_check": "pass"},
		},
	}
}

func metadataObject(m map[string]string) obj {
	out := obj{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func dataObject(eventType string, o *Options) (object obj, previous obj) {
	switch eventType {
	case workflows.EventPaymentFailed, workflows.EventPaymentSucceeded, workflows.EventPaymentProcessing, workflows.EventPaymentRequiresAction:
		id := pick(o.ObjectID, "pi")
		pi := obj{
			"id": id, "object": "payment_intent", "amount": o.Amount, "amount_received": 0,
			"currency": o.Currency, "customer": o.Customer, "invoice": o.Invoice, "livemode": false,
			"created": o.Created.Unix(), "metadata": metadataObject(o.Metadata), "payment_method": nil,
			"payment_method_types": []string{"card"}, "confirmation_method": "automatic",
			"capture_method": "automatic", "description": "Subscription update",
			"last_payment_error": nil, "status": "succeeded",
			"receipt_email": PersonalEmail, "shipping": shippingObject(),
		}
		if eventType == workflows.EventPaymentFailed && o.PaymentMethodType == "us_bank_account" {
			// The debit failed: no decline code (the bank's return is on
			// the charge), the intent's payment_method null, and the bank
			// account that failed in the error.
			pm := NewID("pm")
			pi["status"] = "requires_payment_method"
			pi["payment_method_types"] = []string{"card", "us_bank_account"}
			pi["last_payment_error"] = obj{
				"type": "invalid_request_error", "code": "payment_intent_payment_attempt_failed",
				"message": "The latest payment attempt of this PaymentIntent has failed or been canceled, and the attached payment method has been removed. You can try confirming again with a new payment method.",
				"doc_url": "https://stripe.com/docs/error-codes/payment-intent-payment-attempt-failed",
				"payment_method": obj{
					"id": pm, "object": "payment_method", "type": "us_bank_account", "customer": o.Customer, "livemode": false,
					"created": o.Created.Unix(), "metadata": obj{}, "billing_details": obj{"address": addressObject(), "email": PersonalEmail, "name": PersonalName, "phone": PersonalPhone},
					"us_bank_account": obj{"account_holder_type": "company", "account_type": "checking", "bank_name": "STRIPE TEST BANK",
						"fingerprint": Fingerprint(pm), "last4": "6789", "routing_number": "110000000"},
				},
			}
		} else if eventType == workflows.EventPaymentFailed {
			pm := NewID("pm")
			pi["status"] = "requires_payment_method"
			pi["last_payment_error"] = obj{
				"type": "card_error", "code": "card_declined", "decline_code": o.DeclineCode,
				"message":        "Your card has insufficient funds.",
				"doc_url":        "https://stripe.com/docs/error-codes/card-declined",
				"payment_method": paymentMethodObject(pm, o),
			}
		} else if eventType == workflows.EventPaymentProcessing {
			// A bank debit under way: no error (cleared by the confirm),
			// nothing received yet.
			pi["status"] = "processing"
			pi["payment_method"] = NewID("pm")
			pi["payment_method_types"] = []string{"card", "us_bank_account"}
		} else if eventType == workflows.EventPaymentRequiresAction {
			// The bank asks the customer to authenticate: the payment
			// method stays on the intent, nothing was declined
			// (last_payment_error null), and next_action says what to do.
			pi["status"] = "requires_action"
			pi["payment_method"] = NewID("pm")
			pi["next_action"] = obj{"type": "use_stripe_sdk", "use_stripe_sdk": obj{"type": "three_d_secure_redirect", "stripe_js": "https://hooks.stripe.com/redirect/authenticate/src_test"}}
		} else {
			pi["amount_received"] = o.Amount
			pi["payment_method"] = NewID("pm")
		}
		return pi, nil
	case workflows.EventInvoicePaid:
		return obj{
			"id": pick(o.ObjectID, "in"), "object": "invoice", "amount_due": o.Amount, "amount_paid": o.Amount,
			"amount_remaining": 0, "attempt_count": 1, "attempted": true, "billing_reason": "subscription_cycle",
			"collection_method": "charge_automatically", "currency": o.Currency, "customer": o.Customer,
			"paid": true, "payment_intent": o.PaymentIntent, "status": "paid", "livemode": false,
			"created": o.Created.Unix(), "metadata": obj{},
			"hosted_invoice_url": "https://invoice.stripe.com/i/acct_test/test",
			"customer_email":     PersonalEmail, "customer_name": PersonalName, "customer_phone": PersonalPhone,
			"customer_address": addressObject(), "customer_shipping": shippingObject(),
		}, nil
	case workflows.EventSourceExpiring, workflows.EventSourceDeleted, workflows.EventSourceCreated:
		return cardObject(pick(o.ObjectID, "card"), o), nil
	case workflows.EventSourceUpdated:
		return cardObject(pick(o.ObjectID, "card"), o), obj{"exp_month": 1, "exp_year": o.ExpYear - 1}
	case workflows.EventPaymentMethodAttached, workflows.EventPaymentMethodAutoUpd:
		return paymentMethodObject(pick(o.ObjectID, "pm"), o), nil
	case workflows.EventPaymentMethodDetached:
		// The payment method after the detach: no customer any more; the
		// one it was detached from is a previous attribute.
		pm := paymentMethodObject(pick(o.ObjectID, "pm"), o)
		pm["customer"] = nil
		return pm, obj{"customer": o.Customer}
	case workflows.EventCustomerUpdated:
		pm := pick(o.ObjectID, "pm")
		return obj{
				"id": o.Customer, "object": "customer", "balance": 0, "created": o.Created.Unix(),
				"currency": o.Currency, "default_source": nil, "delinquent": true, "livemode": false,
				"invoice_settings": obj{"default_payment_method": pm, "custom_fields": nil, "footer": nil},
				"metadata":         obj{},
				"email":            PersonalEmail, "name": PersonalName, "phone": PersonalPhone,
				"address": addressObject(), "shipping": shippingObject(),
			}, obj{
				"invoice_settings": obj{"default_payment_method": NewID("pm")},
			}
	}
	return obj{"id": pick(o.ObjectID, "obj"), "object": "unknown", "customer": o.Customer}, nil
}

// Sign returns the Stripe-Signature header for body at time t.
func Sign(body []byte, t time.Time, secrets ...string) string {
	return sig.Header(t, body, secrets...)
}

// Request returns a signed POST of body to url, as Stripe sends it.
func Request(url string, body []byte, secret string, t time.Time) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	req.Header.Set(webhook.SignatureHeader, Sign(body, t, secret))
	return req, nil
}
