package devstripe_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"go.temporal.io/sdk/temporal"

	"dunning/activities"
	"dunning/workflows"
)

// Stripe refuses a confirm whose payment_method the intent's customer does
// not have with 400 invalid_request_error naming payment_method: one that
// never existed is resource_missing; one detached from its customer, or
// attached to another customer, cannot be used either. Nothing is charged:
// the intent keeps its status and its last error, no charge is made, and
// the refusal, a parameter that fails validation, is not kept under the
// key.
func TestConfirmWithAPaymentMethodNotTheCustomers(t *testing.T) {
	deleted := func(customer, pm string) workflows.StripeEvent {
		return workflows.StripeEvent{ID: "evt_del_" + pm, Type: workflows.EventSourceDeleted, CustomerID: customer, ObjectID: pm, Created: created}
	}
	for _, tc := range []struct {
		name  string
		setup func(st *stack)
		pm    string
		code  string
	}{
		{"never existed", func(*stack) {}, "pm_nowhere", "resource_missing"},
		{"detached from the customer", func(st *stack) {
			st.dev.Observe(attachedEvent("cus_1", "pm_gone"))
			st.dev.Observe(deleted("cus_1", "pm_gone"))
		}, "pm_gone", ""},
		{"another customer's", func(st *stack) {
			st.dev.Observe(attachedEvent("cus_2", "pm_theirs"))
		}, "pm_theirs", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStack(t)
			st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))
			// The first confirm declines, and leaves its error and charge.
			if res := st.retry(t, "cus_1", "pi_1", "k0"); res.Outcome != activities.RetryDeclined {
				t.Fatalf("first confirm: %+v, want declined", res)
			}
			_, before := st.call(t, http.MethodGet, "/v1/payment_intents/pi_1", nil)
			tc.setup(st)

			a := st.postWithKey(t, "/v1/payment_intents/pi_1/confirm", "payment_method="+tc.pm+"&off_session=true", "k1")
			typ, code, _ := a.errorOf()
			e, _ := a.obj["error"].(map[string]any)
			if a.status != http.StatusBadRequest || typ != "invalid_request_error" || e["param"] != "payment_method" {
				t.Fatalf("confirm with %s: %d %s; want 400 invalid_request_error on payment_method", tc.pm, a.status, a.raw)
			}
			if tc.code != "" && code != tc.code {
				t.Errorf("code %q, want %q", code, tc.code)
			}
			_, after := st.call(t, http.MethodGet, "/v1/payment_intents/pi_1", nil)
			for _, f := range []string{"status", "latest_charge", "payment_method"} {
				if after[f] != before[f] {
					t.Errorf("%s %v after the refused confirm, was %v", f, after[f], before[f])
				}
			}
			if le, _ := after["last_payment_error"].(map[string]any); le == nil || le["decline_code"] != "insufficient_funds" {
				t.Errorf("last_payment_error %v after the refused confirm, want the first decline's", after["last_payment_error"])
			}
			if again := st.postWithKey(t, "/v1/payment_intents/pi_1/confirm", "payment_method="+tc.pm+"&off_session=true", "k1"); again.replayed {
				t.Errorf("the refused request under its key again: replayed, want it answered afresh (nothing kept)")
			}
		})
	}
}

// After a confirm that succeeds, Stripe names the payment method charged
// and the charge on the intent; after a decline, payment_method is null
// and latest_charge is the failed charge.
func TestConfirmedIntentNamesItsPaymentMethodAndCharge(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))
	if res := st.retry(t, "cus_1", "pi_1", "k1"); res.Outcome != activities.RetryDeclined {
		t.Fatalf("confirm on the failing card: %+v, want declined", res)
	}
	_, pi := st.call(t, http.MethodGet, "/v1/payment_intents/pi_1", nil)
	failedCharge, _ := pi["latest_charge"].(string)
	if pi["payment_method"] != nil || failedCharge == "" {
		t.Errorf("after a decline: payment_method %v latest_charge %v; want null and the failed charge", pi["payment_method"], pi["latest_charge"])
	}

	st.dev.Observe(attachedEvent("cus_1", "pm_good"))
	if res := st.retry(t, "cus_1", "pi_1", "k2"); res.Outcome != activities.RetrySucceeded {
		t.Fatalf("confirm on the new card: %+v, want succeeded", res)
	}
	_, pi = st.call(t, http.MethodGet, "/v1/payment_intents/pi_1", nil)
	chargeID, _ := pi["latest_charge"].(string)
	if pi["payment_method"] != "pm_good" || chargeID == "" || chargeID == failedCharge {
		t.Fatalf("after success: payment_method %v latest_charge %v; want pm_good and a new charge", pi["payment_method"], pi["latest_charge"])
	}
	status, ch := st.call(t, http.MethodGet, "/v1/charges/"+chargeID, nil)
	if status != http.StatusOK || ch["status"] != "succeeded" || ch["paid"] != true || ch["payment_method"] != "pm_good" || ch["payment_intent"] != "pi_1" {
		t.Errorf("GET the charge: %d %v; want the succeeded charge of pi_1 on pm_good", status, ch)
	}
	// What dunning reads of a paid intent is unchanged by it.
	if o := owed(t, st, "cus_1", "pi_1"); o.Verdict != activities.OwedPaid {
		t.Errorf("IntentOwed = %+v, want paid", o)
	}
	if res := st.retry(t, "cus_1", "pi_1", "k3"); res.Outcome != activities.RetryAlreadyPaid {
		t.Errorf("retry of the paid intent: %+v, want already paid", res)
	}
}

// An invoice paid out of band (POST /v1/invoices/{id}/pay with
// paid_out_of_band=true) is paid, and Stripe cancels its open intent: it
// does not mark it succeeded (no money moved through it). dunning reads
// it as paid, neither owed nor forgiven, and confirms nothing.
func TestInvoicePaidOutOfBandCancelsItsIntent(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))
	status, inv := st.call(t, http.MethodPost, "/v1/invoices/in_1/pay", url.Values{"paid_out_of_band": {"true"}})
	if status != http.StatusOK || inv["status"] != "paid" || inv["paid_out_of_band"] != true || inv["id"] != "in_1" {
		t.Fatalf("pay out of band: %d %v; want in_1 paid out of band", status, inv)
	}
	if up := st.upstreamSaw(); len(up) != 0 {
		t.Errorf("upstream saw %v, want the dev Stripe to pay its own invoice", up)
	}
	_, pi := st.call(t, http.MethodGet, "/v1/payment_intents/pi_1", nil)
	if pi["status"] != "canceled" || pi["amount_received"] != float64(0) {
		t.Errorf("intent after the invoice was paid out of band: status %v amount_received %v; want canceled, nothing received", pi["status"], pi["amount_received"])
	}
	if o := owed(t, st, "cus_1", "pi_1"); o.Verdict != activities.OwedPaid || o.Why != "invoice in_1 paid out of band" {
		t.Errorf("IntentOwed = %+v, want paid out of band", o)
	}
	if res := forgive(t, st, "pi_1"); res.Outcome != activities.ForgivePaid {
		t.Errorf("ForgiveIntent = %+v, want paid (nothing to forgive)", res)
	}
	// The status read and a retry that finds the intent canceled read it
	// as paid too: its invoice is.
	if s, err := st.acts.PaymentIntentStatus(context.Background(), activities.IntentInput{IntentID: "pi_1"}); err != nil || !s.Paid || s.Closed {
		t.Errorf("PaymentIntentStatus = %+v, %v; want paid, not closed", s, err)
	}
	if res := st.retry(t, "cus_1", "pi_1", "k0"); res.Outcome != activities.RetryAlreadyPaid {
		t.Errorf("retry = %+v, want already paid", res)
	}
	a := st.postWithKey(t, "/v1/payment_intents/pi_1/confirm", "payment_method=pm_bad&off_session=true", "k1")
	if _, code, _ := a.errorOf(); a.status != http.StatusBadRequest || code != "payment_intent_unexpected_state" {
		t.Errorf("confirm of the canceled intent: %d %s, want 400 payment_intent_unexpected_state", a.status, a.raw)
	}
	status, body := st.call(t, http.MethodPost, "/v1/invoices/in_1/pay", url.Values{"paid_out_of_band": {"true"}})
	if e, _ := body["error"].(map[string]any); status != http.StatusBadRequest || e["type"] != "invalid_request_error" {
		t.Errorf("pay a paid invoice: %d %v, want 400", status, body)
	}
}

// An invoice paid by another of its intents is paid, and Stripe cancels
// the open one; dunning reads the canceled one as paid.
func TestInvoicePaidByAnotherIntentCancelsTheOpenOne(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))
	st.dev.Observe(succeededEvent("cus_1", "pi_2", "pm_bad"))

	_, pi := st.call(t, http.MethodGet, "/v1/payment_intents/pi_1", nil)
	if pi["status"] != "canceled" {
		t.Errorf("pi_1 after pi_2 paid its invoice: %v, want canceled", pi["status"])
	}
	if o := owed(t, st, "cus_1", "pi_1"); o.Verdict != activities.OwedPaid {
		t.Errorf("IntentOwed = %+v, want paid", o)
	}
	if s, err := st.acts.PaymentIntentStatus(context.Background(), activities.IntentInput{IntentID: "pi_2"}); err != nil || !s.Paid {
		t.Errorf("pi_2: %+v %v, want paid", s, err)
	}
}

// A confirm whose payment method the customer no longer has is not a
// decline: RetryPayment fails with Stripe's refusal, permanent, and its
// details say it was the payment method, so that the workflow can read
// again what to charge.
func TestRefusedPaymentMethodIsNotADecline(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))
	if res := st.retry(t, "cus_1", "pi_1", "k0"); res.Outcome != activities.RetryDeclined {
		t.Fatalf("first confirm: %+v, want declined", res)
	}
	st.dev.Observe(attachedEvent("cus_1", "pm_good"))
	// Chosen by the owed check, then removed before the confirm.
	if !st.dev.Detach("cus_1", "pm_good") {
		t.Fatal("Detach: the customer does not have pm_good")
	}
	res, err := st.acts.RetryPayment(context.Background(), activities.RetryInput{IntentID: "pi_1", StripeCustomerID: "cus_1",
		IdempotencyKey: "k1", PaymentMethodID: "pm_good"})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrStripeRejected || !app.NonRetryable() {
		t.Fatalf("RetryPayment = %+v, %v; want a permanent ErrStripeRejected", res, err)
	}
	var refusal activities.StripeRefusal
	if !app.HasDetails() || app.Details(&refusal) != nil || !refusal.PaymentMethodRefused() {
		t.Errorf("refusal details %+v, want the payment method refused", refusal)
	}
	if res.Outcome == activities.RetryDeclined || res.Decline != (activities.Decline{}) {
		t.Errorf("RetryPayment = %+v, want no decline", res)
	}
	if o := owed(t, st, "cus_1", "pi_1"); o.Verdict != activities.OwedYes || o.PaymentMethod != "pm_bad" {
		t.Errorf("IntentOwed read again = %+v, want owed, with the card the customer still has", o)
	}
}
