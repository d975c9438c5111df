package devstripe_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"dunning/activities"
	"dunning/workflows"
)

// failedOn is failedEvent for an intent of its own invoice, declined as
// Stripe's event says, created later than the ones before.
func failedOn(customer, intent, invoice string, after time.Duration, d activities.Decline) workflows.StripeEvent {
	ev := failedEvent(customer, intent, "pm_bad")
	ev.ID, ev.Created = "evt_f_"+intent, created.Add(after)
	ev.PaymentIntent.InvoiceID, ev.PaymentIntent.Decline = invoice, d
	ev.PaymentIntent.DeclineCode = d.DeclineCode
	return ev
}

// The customer's other unpaid payments, as the dev Stripe keeps them from
// the events: a failed intent is unpaid until it succeeds, one processing
// is neither failed nor unpaid, another customer's is not listed. Both
// lists are answered by the dev Stripe itself, newest first.
func TestUnpaidPaymentsFromTheEvents(t *testing.T) {
	st := newStack(t)
	soft := activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", AdviceCode: "try_again_later", Charge: "ch_pi_2"}
	st.dev.Observe(failedOn("cus_1", "pi_1", "in_1", 0, soft))
	st.dev.Observe(failedOn("cus_1", "pi_2", "in_2", time.Minute, soft))
	st.dev.Observe(failedOn("cus_1", "pi_3", "in_3", 2*time.Minute, soft))
	st.dev.Observe(failedOn("cus_1", "pi_4", "in_4", 3*time.Minute, soft))
	st.dev.Observe(failedOn("cus_2", "pi_9", "in_9", 0, soft))
	st.dev.Observe(succeededEvent("cus_1", "pi_1", "pm_new"))
	if !st.dev.SetIntentStatus("pi_3", "processing") {
		t.Fatal("pi_3 unknown")
	}

	got, err := st.acts.UnpaidPayments(context.Background(), activities.UnpaidInput{StripeCustomerID: "cus_1"})
	if err != nil {
		t.Fatalf("UnpaidPayments: %v", err)
	}
	var ids []string
	for _, p := range got.Payments {
		ids = append(ids, p.IntentID)
	}
	if strings.Join(ids, ",") != "pi_4,pi_2" {
		t.Fatalf("unpaid %v, want pi_4 and pi_2 (newest first): pi_1 paid, pi_3 processing, pi_9 another customer's", ids)
	}
	p := got.Payments[1]
	if p.InvoiceID != "in_2" || p.Amount != 4900 || p.Currency != "usd" || p.Status != "requires_payment_method" {
		t.Errorf("pi_2 = %+v, want its invoice, amount and status", p)
	}
	if p.Decline.DeclineCode != "insufficient_funds" || p.Decline.AdviceCode != "try_again_later" || p.Decline.Charge != "ch_pi_2" {
		t.Errorf("pi_2 decline = %+v, want last_payment_error as the event gave it, advice code and charge included", p.Decline)
	}
	if v := activities.ClassifyDecline(p.Decline); v.Class != activities.DeclineSoft && v.Class != activities.DeclineRetryAfter {
		t.Errorf("pi_2 classified %+v, want a decline that may be retried later", v)
	}
	invoices := st.sentTo(t, http.MethodGet, "/v1/invoices")
	if len(invoices) != 1 || invoices[0].Get("customer") != "cus_1" || invoices[0].Get("status") != "open" {
		t.Errorf("invoice lists %v, want one of cus_1's open invoices", invoices)
	}
	if len(st.upstream) != 0 {
		t.Errorf("passed upstream: %v, want the dev Stripe to answer both lists", st.upstream)
	}
}

// The invoice list answers as Stripe's does: filtered by customer and
// status, with what a failed attempt leaves on the invoice, and a status
// Stripe does not know refused.
func TestInvoiceListAnswersAsStripe(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(failedOn("cus_1", "pi_1", "in_1", 0, activities.Decline{}))
	st.dev.Observe(failedOn("cus_1", "pi_2", "in_2", time.Minute, activities.Decline{}))
	st.dev.Observe(succeededEvent("cus_1", "pi_2", "pm_new"))

	status, list := st.call(t, http.MethodGet, "/v1/invoices", url.Values{"customer": {"cus_1"}, "status": {"open"}})
	data, _ := list["data"].([]any)
	if status != http.StatusOK || list["object"] != "list" || len(data) != 1 {
		t.Fatalf("GET /v1/invoices = %d %v, want a list of in_1 alone", status, list)
	}
	inv := data[0].(map[string]any)
	if inv["id"] != "in_1" || inv["customer"] != "cus_1" || inv["attempted"] != true || inv["attempt_count"] != float64(1) ||
		inv["amount_remaining"] != float64(4900) || inv["payment_intent"] != "pi_1" {
		t.Errorf("in_1 = %v, want cus_1's, attempted once, 49.00 remaining, paid through pi_1", inv)
	}
	_, all := st.call(t, http.MethodGet, "/v1/invoices", url.Values{"customer": {"cus_1"}})
	if data, _ := all["data"].([]any); len(data) != 2 || data[0].(map[string]any)["id"] != "in_2" {
		t.Errorf("all invoices %v, want in_2 (paid) and in_1, newest first", all["data"])
	}
	if status, _ := st.call(t, http.MethodGet, "/v1/invoices", url.Values{"customer": {"cus_1"}, "status": {"past_due"}}); status != http.StatusBadRequest {
		t.Errorf("status=past_due answered %d, want 400 as Stripe refuses it", status)
	}
}
