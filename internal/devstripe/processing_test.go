package devstripe_test

import (
	"net/http"
	"testing"
	"time"

	"dunning/activities"
)

// A failed payment paid by bank debit: while the debit processes, Stripe
// shows the intent processing with no last_payment_error and its invoice
// open, dunning's owed check finds it in flight, and a confirm is
// refused. The debit then fails (its payment_failed event): the intent
// waits for a payment method again with the new decline, and the invoice
// counts the attempt. A second debit that succeeds settles both.
func TestBankDebitProcessesThenFailsOrSucceeds(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))
	if !st.dev.Process("pi_1") {
		t.Fatal("Process refused an intent that failed")
	}
	if st.dev.Process("pi_1") {
		t.Error("Process accepted an intent already processing")
	}
	_, pi := st.call(t, http.MethodGet, "/v1/payment_intents/pi_1", nil)
	if pi["status"] != "processing" || pi["last_payment_error"] != nil {
		t.Errorf("intent while the debit processes: status %v, last_payment_error %v; want processing, null", pi["status"], pi["last_payment_error"])
	}
	_, inv := st.call(t, http.MethodGet, "/v1/invoices", map[string][]string{"customer": {"cus_1"}, "status": {"open"}})
	if data, _ := inv["data"].([]any); len(data) != 1 || data[0].(map[string]any)["attempt_count"] != float64(1) {
		t.Errorf("open invoices while processing: %v; want in_1 open, one failed attempt", inv["data"])
	}
	if o := owed(t, st, "cus_1", "pi_1"); o.Verdict != activities.OwedInFlight {
		t.Errorf("owed while processing: %+v, want in flight", o)
	}
	if status, _ := st.call(t, http.MethodPost, "/v1/payment_intents/pi_1/confirm", map[string][]string{"payment_method": {"pm_bad"}}); status != http.StatusBadRequest {
		t.Errorf("a confirm of a processing intent answered %d, want 400", status)
	}

	again := failedEvent("cus_1", "pi_1", "pm_bank")
	again.ID, again.Created = "evt_f_again", created.Add(48*time.Hour)
	again.PaymentIntent.DeclineCode = "insufficient_funds"
	st.dev.Observe(again)
	_, pi = st.call(t, http.MethodGet, "/v1/payment_intents/pi_1", nil)
	if pi["status"] != "requires_payment_method" || pi["last_payment_error"] == nil {
		t.Errorf("intent after the debit failed: status %v, last_payment_error %v; want requires_payment_method with the decline", pi["status"], pi["last_payment_error"])
	}
	_, inv = st.call(t, http.MethodGet, "/v1/invoices", map[string][]string{"customer": {"cus_1"}, "status": {"open"}})
	if data, _ := inv["data"].([]any); len(data) != 1 || data[0].(map[string]any)["attempt_count"] != float64(2) {
		t.Errorf("open invoices after the debit failed: %v; want in_1 open, two failed attempts", inv["data"])
	}
	if o := owed(t, st, "cus_1", "pi_1"); o.Verdict != activities.OwedYes {
		t.Errorf("owed after the debit failed: %+v, want owed", o)
	}

	if !st.dev.Process("pi_1") {
		t.Fatal("Process refused the second debit")
	}
	st.dev.Observe(succeededEvent("cus_1", "pi_1", "pm_bank"))
	if o := owed(t, st, "cus_1", "pi_1"); o.Verdict != activities.OwedPaid {
		t.Errorf("owed after the second debit succeeded: %+v, want paid", o)
	}
	if st.dev.Process("pi_1") {
		t.Error("Process accepted a succeeded intent")
	}
}
