package devstripe_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"dunning/activities"
	"dunning/internal/devstripe"
	"dunning/workflows"
)

// call sends a request to the dev Stripe as a Stripe client would and
// decodes the JSON answer.
func (st *stack) call(t *testing.T, method, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	var body *strings.Reader
	if method == http.MethodPost {
		body = strings.NewReader(form.Encode())
	} else {
		if len(form) > 0 {
			path += "?" + form.Encode()
		}
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, st.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer sk_test_123")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var obj map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&obj); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object: %v", method, path, err)
	}
	return resp.StatusCode, obj
}

// sentTo returns the queries of the requests with that method and path.
func (st *stack) sentTo(t *testing.T, method, path string) []url.Values {
	t.Helper()
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []url.Values
	for _, s := range st.sent {
		m, uri, _ := strings.Cut(s, " ")
		p, rawQuery, _ := strings.Cut(uri, "?")
		if m != method || p != path {
			continue
		}
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			t.Fatalf("%s: unreadable query: %v", s, err)
		}
		out = append(out, q)
	}
	return out
}

func owed(t *testing.T, st *stack, customer, intent string) activities.Owed {
	t.Helper()
	o, err := st.acts.IntentOwed(context.Background(), activities.OwedInput{IntentID: intent, StripeCustomerID: customer})
	if err != nil {
		t.Fatalf("IntentOwed: %v", err)
	}
	return o
}

func forgive(t *testing.T, st *stack, intent string) activities.ForgiveResult {
	t.Helper()
	res, err := st.acts.ForgiveIntent(context.Background(), activities.ForgiveInput{
		IntentID: intent, Reason: "goodwill", Lifecycle: "life-1", IdempotencyKey: "recovery-x/life-1/waive/" + intent})
	if err != nil {
		t.Fatalf("ForgiveIntent: %v", err)
	}
	return res
}

func failedWithoutInvoice(customer, intent, pm string) workflows.StripeEvent {
	ev := failedEvent(customer, intent, pm)
	ev.PaymentIntent.InvoiceID = ""
	return ev
}

// The owed check gets the invoice the way stripe-go asks for it
// (expand[0]=invoice), with the month it bills and its page.
func TestOwedCheckReadsTheInvoiceAsStripeGoAsksForIt(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))

	got := owed(t, st, "cus_1", "pi_1")
	start, end := devstripe.BilledMonth(created)
	want := activities.Owed{Verdict: activities.OwedYes, Status: "requires_payment_method", Why: "intent requires_payment_method",
		InvoiceID: "in_1", PeriodStart: start, PeriodEnd: end, PayURL: "https://invoice.stripe.com/i/dev_in_1",
		PaymentMethod: "pm_bad", PaymentMethodSource: "customer default", Fingerprint: st.dev.Fingerprint("pm_bad")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("IntentOwed =\n %+v\nwant\n %+v", got, want)
	}
	gets := st.sentTo(t, http.MethodGet, "/v1/payment_intents/pi_1")
	if len(gets) != 1 || gets[0].Get("expand[0]") != "invoice" || gets[0].Get("expand[1]") != "invoice.subscription" {
		t.Errorf("intent reads = %v, want one with expand[0]=invoice and expand[1]=invoice.subscription", gets)
	}
	lists := st.sentTo(t, http.MethodGet, "/v1/payment_intents")
	if len(lists) != 1 || lists[0].Get("customer") != "cus_1" {
		t.Errorf("list requests = %v, want one for cus_1", lists)
	}
	if up := st.upstreamSaw(); len(up) != 0 {
		t.Errorf("upstream saw %v, want the dev Stripe to answer everything about known objects", up)
	}
}

func TestInvoiceExpandedInEitherForm(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))
	start, end := devstripe.BilledMonth(created)
	for name, q := range map[string]url.Values{
		"expand[]":  {"expand[]": {"invoice"}},
		"expand[0]": {"expand[0]": {"invoice"}},
		"nested":    {"expand[0]": {"customer"}, "expand[1]": {"invoice"}, "expand[2]": {"invoice.subscription"}},
	} {
		t.Run(name, func(t *testing.T) {
			status, pi := st.call(t, http.MethodGet, "/v1/payment_intents/pi_1", q)
			inv, _ := pi["invoice"].(map[string]any)
			if status != http.StatusOK || inv == nil || inv["id"] != "in_1" || inv["status"] != "open" {
				t.Fatalf("%d, invoice %v; want the open invoice in_1 expanded", status, pi["invoice"])
			}
			lines, _ := inv["lines"].(map[string]any)
			data, _ := lines["data"].([]any)
			if len(data) != 1 {
				t.Fatalf("invoice lines = %v, want one line", inv["lines"])
			}
			period, _ := data[0].(map[string]any)["period"].(map[string]any)
			if period["start"] != float64(start.Unix()) || period["end"] != float64(end.Unix()) {
				t.Errorf("line period = %v, want the billed month %v … %v", period, start, end)
			}
		})
	}
	if status, pi := st.call(t, http.MethodGet, "/v1/payment_intents/pi_1", nil); status != http.StatusOK || pi["invoice"] != "in_1" {
		t.Errorf("without expand: %d, invoice %v; want the ID", status, pi["invoice"])
	}
}

func TestListsTheCustomersIntents(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))
	st.dev.Observe(failedEvent("cus_2", "pi_2", "pm_other"))

	status, list := st.call(t, http.MethodGet, "/v1/payment_intents", url.Values{"customer": {"cus_1"}, "limit": {"100"}})
	data, _ := list["data"].([]any)
	if status != http.StatusOK || list["object"] != "list" || list["has_more"] != false || len(data) != 1 {
		t.Fatalf("%d %v, want a list of cus_1's one intent", status, list)
	}
	if pi := data[0].(map[string]any); pi["id"] != "pi_1" || pi["customer"] != "cus_1" || pi["invoice"] != "in_1" {
		t.Errorf("listed %v, want pi_1 of cus_1 with its invoice as an ID", pi)
	}
	st.call(t, http.MethodGet, "/v1/payment_intents", url.Values{"customer": {"cus_unseen"}})
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.upstream) != 1 || st.upstream[0] != "GET /v1/payment_intents" {
		t.Errorf("upstream saw %v, want the unknown customer's list passed on", st.upstream)
	}
}

// A waiver goes into Stripe: the metadata on the intent, the invoice
// written off; every later read sees it, and doing it again writes
// nothing.
func TestWaiverIsWrittenToStripe(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))

	if res := forgive(t, st, "pi_1"); res.Outcome != activities.ForgiveDone || !strings.Contains(res.Detail, "marked uncollectible") {
		t.Fatalf("ForgiveIntent = %+v, want the invoice marked uncollectible", res)
	}
	_, pi := st.call(t, http.MethodGet, "/v1/payment_intents/pi_1", url.Values{"expand[]": {"invoice"}})
	if md, _ := pi["metadata"].(map[string]any); md[activities.WaivedMetadataKey] != "life-1: goodwill" {
		t.Errorf("metadata = %v, want the waiver", pi["metadata"])
	}
	if inv, _ := pi["invoice"].(map[string]any); inv["status"] != "uncollectible" {
		t.Errorf("invoice = %v, want uncollectible", pi["invoice"])
	}
	if o := owed(t, st, "cus_1", "pi_1"); o.Verdict != activities.OwedForgiven {
		t.Errorf("IntentOwed after the waiver = %+v, want forgiven", o)
	}

	if res := forgive(t, st, "pi_1"); res.Outcome != activities.ForgiveDone || !strings.Contains(res.Detail, "already uncollectible") {
		t.Errorf("ForgiveIntent again = %+v, want found done", res)
	}
	if n, m := len(st.sentTo(t, http.MethodPost, "/v1/payment_intents/pi_1")), len(st.sentTo(t, http.MethodPost, "/v1/invoices/in_1/mark_uncollectible")); n != 1 || m != 1 {
		t.Errorf("metadata writes %d, marks %d after forgiving twice; want one each", n, m)
	}
}

func TestWaiverWithoutAnInvoiceCancelsTheIntent(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(failedWithoutInvoice("cus_1", "pi_1", "pm_bad"))

	if res := forgive(t, st, "pi_1"); res.Outcome != activities.ForgiveDone || res.Detail != "intent canceled" {
		t.Fatalf("ForgiveIntent = %+v, want the intent canceled", res)
	}
	if s, err := st.acts.PaymentIntentStatus(context.Background(), activities.IntentInput{IntentID: "pi_1"}); err != nil || !s.Closed {
		t.Errorf("PaymentIntentStatus = %+v, %v; want canceled", s, err)
	}
	if res := forgive(t, st, "pi_1"); res.Outcome != activities.ForgiveClosed {
		t.Errorf("ForgiveIntent again = %+v, want closed", res)
	}
	// Stripe refuses to cancel an intent twice.
	status, body := st.call(t, http.MethodPost, "/v1/payment_intents/pi_1/cancel", url.Values{"cancellation_reason": {"abandoned"}})
	if e, _ := body["error"].(map[string]any); status != http.StatusBadRequest || e["code"] != "payment_intent_unexpected_state" {
		t.Errorf("second cancel: %d %v, want 400 payment_intent_unexpected_state", status, body)
	}
}

func TestCancelRefusesAnInvoicesIntent(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))
	status, body := st.call(t, http.MethodPost, "/v1/payment_intents/pi_1/cancel", url.Values{"cancellation_reason": {"abandoned"}})
	if e, _ := body["error"].(map[string]any); status != http.StatusBadRequest || e["code"] != "payment_intent_unexpected_state" {
		t.Errorf("cancel: %d %v, want 400 payment_intent_unexpected_state", status, body)
	}
	if s, err := st.acts.PaymentIntentStatus(context.Background(), activities.IntentInput{IntentID: "pi_1"}); err != nil || s.Closed {
		t.Errorf("PaymentIntentStatus = %+v, %v; want still open", s, err)
	}
}

func TestPaidInvoiceIsNotWrittenOff(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))
	st.dev.Observe(succeededEvent("cus_1", "pi_1", "pm_bad"))

	status, body := st.call(t, http.MethodPost, "/v1/invoices/in_1/mark_uncollectible", nil)
	if e, _ := body["error"].(map[string]any); status != http.StatusBadRequest || e["code"] != "invoice_not_open" {
		t.Errorf("mark_uncollectible: %d %v, want 400 invoice_not_open", status, body)
	}
	if res := forgive(t, st, "pi_1"); res.Outcome != activities.ForgivePaid {
		t.Errorf("ForgiveIntent = %+v, want paid", res)
	}
	if o := owed(t, st, "cus_1", "pi_1"); o.Verdict != activities.OwedPaid {
		t.Errorf("IntentOwed = %+v, want paid", o)
	}
}

// Stripe unsets a metadata key posted with an empty value.
func TestMetadataUpdate(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))
	key := "metadata[" + activities.WaivedMetadataKey + "]"

	_, pi := st.call(t, http.MethodPost, "/v1/payment_intents/pi_1", url.Values{key: {"life-1: goodwill"}, "metadata[note]": {"x"}})
	if md, _ := pi["metadata"].(map[string]any); !reflect.DeepEqual(md, map[string]any{activities.WaivedMetadataKey: "life-1: goodwill", "note": "x"}) {
		t.Errorf("after setting: metadata %v", pi["metadata"])
	}
	_, pi = st.call(t, http.MethodPost, "/v1/payment_intents/pi_1", url.Values{key: {""}})
	if md, _ := pi["metadata"].(map[string]any); !reflect.DeepEqual(md, map[string]any{"note": "x"}) {
		t.Errorf("after unsetting: metadata %v, want the key gone", pi["metadata"])
	}
	_, pi = st.call(t, http.MethodGet, "/v1/payment_intents/pi_1", nil)
	if md, _ := pi["metadata"].(map[string]any); len(md) != 1 {
		t.Errorf("read back: metadata %v, want only note", pi["metadata"])
	}
}
