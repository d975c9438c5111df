package activities_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v76"

	"dunning/activities"
	"dunning/internal/testenv"
)

func TestUnpaidVerdict(t *testing.T) {
	declined := &stripe.Error{Code: stripe.ErrorCodeCardDeclined, DeclineCode: stripe.DeclineCodeInsufficientFunds}
	open := func(attempts int64, remaining int64) *stripe.Invoice {
		return &stripe.Invoice{ID: "in_1", Status: stripe.InvoiceStatusOpen, Attempted: attempts > 0, AttemptCount: attempts, AmountDue: 4900, AmountRemaining: remaining}
	}
	tests := []struct {
		name string
		pi   *stripe.PaymentIntent
		inv  *stripe.Invoice
		want bool
	}{
		{"declined, waiting for a payment method", &stripe.PaymentIntent{Status: stripe.PaymentIntentStatusRequiresPaymentMethod, LastPaymentError: declined}, nil, true},
		{"declined, its invoice open", &stripe.PaymentIntent{Status: stripe.PaymentIntentStatusRequiresPaymentMethod, LastPaymentError: declined}, open(1, 4900), true},
		{"never attempted", &stripe.PaymentIntent{Status: stripe.PaymentIntentStatusRequiresPaymentMethod}, nil, false},
		{"never attempted, its invoice a draft just finalized", &stripe.PaymentIntent{Status: stripe.PaymentIntentStatusRequiresPaymentMethod}, open(0, 4900), false},
		{"processing is in flight", &stripe.PaymentIntent{Status: stripe.PaymentIntentStatusProcessing, LastPaymentError: declined}, open(1, 4900), false},
		{"authorized, awaiting capture", &stripe.PaymentIntent{Status: stripe.PaymentIntentStatusRequiresCapture}, open(1, 4900), false},
		{"succeeded", &stripe.PaymentIntent{Status: stripe.PaymentIntentStatusSucceeded}, nil, false},
		{"canceled", &stripe.PaymentIntent{Status: stripe.PaymentIntentStatusCanceled, LastPaymentError: declined}, nil, false},
		{"waived by dunning", &stripe.PaymentIntent{Status: stripe.PaymentIntentStatusRequiresPaymentMethod, LastPaymentError: declined,
			Metadata: map[string]string{activities.WaivedMetadataKey: "life: goodwill"}}, nil, false},
		{"its open invoice has nothing left to pay", &stripe.PaymentIntent{Status: stripe.PaymentIntentStatusRequiresPaymentMethod, LastPaymentError: declined}, open(1, 0), false},
		{"the bank asks to authenticate, after failed attempts on its invoice", &stripe.PaymentIntent{Status: stripe.PaymentIntentStatusRequiresAction}, open(2, 4900), true},
		{"the bank asks to authenticate, no invoice", &stripe.PaymentIntent{Status: stripe.PaymentIntentStatusRequiresAction}, nil, false},
	}
	for _, tt := range tests {
		if got, why := activities.UnpaidVerdict(tt.pi, tt.inv); got != tt.want || why == "" {
			t.Errorf("%s: UnpaidVerdict = %v (%q), want %v with a reason", tt.name, got, why, tt.want)
		}
	}
}

// stripe-mock accepts both lists as sent; its answers are patched into
// the customer's ugly mix: a decline with the advice codes of a newer API
// version, one in flight, one never attempted, one paid, and an open
// invoice that failed whose intent the intents list did not show.
func TestUnpaidPaymentsStripeMock(t *testing.T) {
	mock := testenv.StartStripeMock(t)
	item := func(list map[string]any) map[string]any {
		data, _ := list["data"].([]any)
		if len(data) == 0 {
			t.Fatalf("stripe-mock listed nothing: %v", list)
		}
		raw, _ := json.Marshal(data[0])
		var o map[string]any
		_ = json.Unmarshal(raw, &o)
		return o
	}
	intent := func(list map[string]any, id, status string, lastError any, invoice any) map[string]any {
		o := item(list)
		o["id"], o["status"], o["customer"], o["last_payment_error"], o["invoice"] = id, status, customerID, lastError, invoice
		o["amount"], o["currency"], o["metadata"] = 4900, "usd", map[string]any{}
		return o
	}
	decline := map[string]any{"type": "card_error", "code": "card_declined", "decline_code": "do_not_honor", "advice_code": "do_not_try_again",
		"network_advice_code": "03", "charge": "ch_declined", "message": "Your card was declined.",
		"payment_method": map[string]any{"id": "pm_failed", "object": "payment_method", "card": map[string]any{"fingerprint": "fp_failed"}}}
	acts, seen := viaStripeMock(t, mock, func(r *http.Request, o map[string]any) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/payment_intents":
			o["data"] = []any{
				intent(o, "pi_declined", "requires_payment_method", decline, nil),
				intent(o, "pi_processing", "processing", nil, nil),
				intent(o, "pi_fresh", "requires_payment_method", nil, nil),
				intent(o, "pi_paid", "succeeded", nil, nil),
			}
			o["has_more"] = false
		case r.Method == http.MethodGet && r.URL.Path == "/v1/invoices":
			failed, fresh := item(o), item(o)
			failed["id"], failed["status"], failed["customer"], failed["payment_intent"] = "in_failed", "open", customerID, "pi_of_invoice"
			failed["attempted"], failed["attempt_count"], failed["amount_due"], failed["amount_remaining"], failed["currency"] = true, 2, 1500, 1500, "usd"
			fresh["id"], fresh["status"], fresh["customer"], fresh["payment_intent"] = "in_fresh", "open", customerID, nil
			fresh["attempted"], fresh["attempt_count"], fresh["amount_due"], fresh["amount_remaining"] = false, 0, 900, 900
			o["data"], o["has_more"] = []any{failed, fresh}, false
		}
	})
	got, err := acts.UnpaidPayments(context.Background(), activities.UnpaidInput{StripeCustomerID: customerID})
	if err != nil {
		t.Fatalf("UnpaidPayments: %v", err)
	}
	wantAccepted(t, seen)
	if l := seen.to(http.MethodGet, "/v1/invoices"); len(l) != 1 || l[0].Query.Get("customer") != customerID || l[0].Query.Get("status") != "open" {
		t.Errorf("invoice lists %v, want one of the customer's open invoices", l)
	}
	if l := seen.to(http.MethodGet, "/v1/payment_intents"); len(l) != 1 || l[0].Query.Get("customer") != customerID {
		t.Errorf("intent lists %v, want one of the customer's intents", l)
	}
	var ids []string
	for _, p := range got.Payments {
		ids = append(ids, p.IntentID+"/"+p.InvoiceID)
	}
	if strings.Join(ids, ",") != "pi_declined/,pi_of_invoice/in_failed" {
		t.Fatalf("unpaid %v, want the declined intent and the failed invoice's intent, nothing in flight, fresh or paid", ids)
	}
	d := got.Payments[0].Decline
	if d.AdviceCode != "do_not_try_again" || d.NetworkAdviceCode != "03" || d.Charge != "ch_declined" || d.PaymentMethod != "pm_failed" || d.Fingerprint != "fp_failed" {
		t.Errorf("decline %+v, want last_payment_error read whole, as an event's is", d)
	}
	if v := activities.ClassifyDecline(d); v.Class != activities.DeclineStop {
		t.Errorf("decline classified %+v, want stop: the card must not be tried again", v)
	}
	if p := got.Payments[0]; p.PaymentMethodID != "pm_failed" || p.Amount != 4900 {
		t.Errorf("payment %+v, want the card that failed and the amount", p)
	}
	if p := got.Payments[1]; p.Amount != 1500 || !strings.Contains(p.Why, "2 failed attempt") {
		t.Errorf("invoice payment %+v, want what is left to pay and its attempts", p)
	}
}

func TestUnpaidPaymentsErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := (&activities.Activities{}).UnpaidPayments(ctx, activities.UnpaidInput{}); err == nil {
		t.Error("no customer: want an error")
	}
	got, err := (&activities.Activities{}).UnpaidPayments(ctx, activities.UnpaidInput{StripeCustomerID: customerID})
	if err != nil || !got.DryRun || len(got.Payments) != 0 {
		t.Errorf("without Stripe: %+v %v, want a dry run that claims nothing", got, err)
	}
}

// A list Stripe does not answer is retried; one it refuses is not; either
// way nothing is claimed.
func TestUnpaidPaymentsStripeErrors(t *testing.T) {
	const pathInvoices = "/v1/invoices"
	for _, tc := range []struct {
		failAt    string
		answer    answer
		retryable bool
	}{
		{pathInvoices, stripeDown(http.StatusServiceUnavailable), true},
		{pathIntents, stripeDown(http.StatusInternalServerError), true},
		{pathIntents, rateLimited(), true},
		{pathInvoices, answer{http.StatusBadGateway, "<html>502 Bad Gateway</html>"}, true},
		{pathInvoices, answer{http.StatusBadRequest, stripeError("invalid_request_error", "parameter_invalid_string", "status", "Invalid status", nil)}, false},
		{pathIntents, answer{http.StatusForbidden, stripeError("invalid_request_error", "", "", "The provided key does not have access to payment_intents.", nil)}, false},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.failAt, tc.answer.status), func(t *testing.T) {
			f := newFakeStripe(t)
			f.on(http.MethodGet, pathInvoices, ok(obj{"object": "list", "url": pathInvoices, "has_more": false, "data": []obj{}}))
			f.on(http.MethodGet, pathIntents, ok(intentList(otherIntent("pi_other", "requires_payment_method", ""))))
			f.on(http.MethodGet, tc.failAt, tc.answer)
			got, err := stripeActivities(t, fakeKey, f.URL, "").UnpaidPayments(context.Background(), activities.UnpaidInput{StripeCustomerID: customerID})
			if len(got.Payments) != 0 || got.DryRun {
				t.Errorf("result = %+v with the error, want nothing claimed", got)
			}
			if tc.retryable {
				wantRetryable(t, err)
			} else {
				wantNonRetryable(t, err, activities.ErrStripeRejected)
			}
		})
	}
}
