package activities_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"dunning/activities"
	"dunning/internal/testenv"
)

// ---- the pure decisions ----

func TestOwedVerdict(t *testing.T) {
	inv := func(status stripe.InvoiceStatus, due, remaining int64) *stripe.Invoice {
		return &stripe.Invoice{ID: "in_1", Status: status, AmountDue: due, AmountRemaining: remaining}
	}
	waived := map[string]string{activities.WaivedMetadataKey: "life-1: goodwill"}
	for _, tc := range []struct {
		name      string
		status    stripe.PaymentIntentStatus
		invoice   *stripe.Invoice
		metadata  map[string]string
		otherPaid string
		verdict   string
		why       string // a part of Why
	}{
		// The intent itself.
		{"intent succeeded", "succeeded", nil, nil, "", activities.OwedPaid, "intent succeeded"},
		{"intent canceled", "canceled", nil, nil, "", activities.OwedCanceled, "canceled"},
		{"intent processing", "processing", nil, nil, "", activities.OwedInFlight, "processing"},
		{"intent requires_action", "requires_action", nil, nil, "", activities.OwedActionRequired, "authenticate"},
		{"intent requires_capture", "requires_capture", nil, nil, "", activities.OwedInFlight, "capture"},
		{"intent requires_payment_method", "requires_payment_method", nil, nil, "", activities.OwedYes, "requires_payment_method"},
		{"intent requires_confirmation", "requires_confirmation", nil, nil, "", activities.OwedYes, "requires_confirmation"},
		{"status unknown to this SDK", "requires_something_new", nil, nil, "", activities.OwedYes, "requires_something_new"},
		// Waived in dunning.
		{"waived metadata", "requires_payment_method", nil, waived, "", activities.OwedForgiven, "goodwill"},
		{"waived while processing", "processing", nil, waived, "", activities.OwedForgiven, "waived"},
		{"empty waiver is no waiver", "requires_payment_method", nil, map[string]string{activities.WaivedMetadataKey: ""}, "",
			activities.OwedYes, "requires_payment_method"},
		// The invoice it pays.
		{"invoice paid", "requires_payment_method", inv("paid", 4900, 0), nil, "", activities.OwedPaid, "in_1 paid"},
		{"invoice paid out of band", "requires_payment_method",
			&stripe.Invoice{ID: "in_1", Status: "paid", PaidOutOfBand: true, AmountDue: 4900}, nil, "", activities.OwedPaid, "out of band"},
		{"invoice void", "requires_payment_method", inv("void", 4900, 4900), nil, "", activities.OwedCanceled, "void"},
		{"invoice uncollectible", "requires_payment_method", inv("uncollectible", 4900, 4900), nil, "", activities.OwedForgiven, "uncollectible"},
		{"invoice open with nothing left", "requires_payment_method", inv("open", 4900, 0), nil, "", activities.OwedPaid, "nothing left"},
		{"invoice open and unpaid", "requires_payment_method", inv("open", 4900, 4900), nil, "", activities.OwedYes, "requires_payment_method"},
		{"invoice open, partly paid", "requires_payment_method", inv("open", 4900, 900), nil, "", activities.OwedYes, "requires_payment_method"},
		// An invoice that is only an ID (not expanded) says nothing.
		{"invoice not expanded", "requires_payment_method", &stripe.Invoice{ID: "in_1"}, nil, "", activities.OwedYes, "requires_payment_method"},
		{"another intent paid the invoice", "requires_payment_method", inv("open", 4900, 4900), nil, "pi_other",
			activities.OwedPaid, "paid by pi_other"},
		// Precedence.
		{"succeeded beats metadata", "succeeded", nil, waived, "", activities.OwedPaid, "intent succeeded"},
		{"succeeded beats a void invoice", "succeeded", inv("void", 4900, 4900), nil, "", activities.OwedPaid, "intent succeeded"},
		{"invoice paid beats requires_payment_method", "requires_payment_method", inv("paid", 4900, 0), nil, "",
			activities.OwedPaid, "paid"},
		{"invoice paid beats processing", "processing", inv("paid", 4900, 0), nil, "", activities.OwedPaid, "paid"},
		{"invoice paid beats requires_action", "requires_action", inv("paid", 4900, 0), nil, "", activities.OwedPaid, "paid"},
		// Money that arrived after a waiver is money recovered, as
		// ForgiveIntent also says (ForgivePaid).
		{"invoice paid beats metadata", "requires_payment_method", inv("paid", 4900, 0), waived, "", activities.OwedPaid, "paid"},
		{"another paid intent beats metadata", "requires_payment_method", inv("open", 4900, 4900), waived, "pi_other",
			activities.OwedPaid, "pi_other"},
		{"metadata beats a void invoice", "canceled", inv("void", 4900, 4900), waived, "", activities.OwedForgiven, "waived"},
		{"void invoice beats a canceled intent", "canceled", inv("void", 4900, 4900), nil, "", activities.OwedCanceled, "void"},
		{"void invoice beats requires_payment_method", "requires_payment_method", inv("void", 4900, 4900), nil, "",
			activities.OwedCanceled, "void"},
		{"uncollectible beats requires_action", "requires_action", inv("uncollectible", 4900, 4900), nil, "",
			activities.OwedForgiven, "uncollectible"},
		{"uncollectible beats processing", "processing", inv("uncollectible", 4900, 4900), nil, "",
			activities.OwedForgiven, "uncollectible"},
		{"canceled intent of an open invoice", "canceled", inv("open", 4900, 4900), nil, "", activities.OwedCanceled, "canceled"},
		// Stripe cancels the open intent of an invoice paid out of band or
		// by another intent: paid, neither owed nor forgiven, even waived.
		{"canceled intent of an invoice paid out of band", "canceled",
			&stripe.Invoice{ID: "in_1", Status: "paid", PaidOutOfBand: true, AmountDue: 4900}, nil, "", activities.OwedPaid, "out of band"},
		{"canceled intent of an invoice paid by another", "canceled", inv("paid", 4900, 0), nil, "", activities.OwedPaid, "in_1 paid"},
		{"canceled waived intent of an invoice paid out of band", "canceled",
			&stripe.Invoice{ID: "in_1", Status: "paid", PaidOutOfBand: true, AmountDue: 4900}, waived, "", activities.OwedPaid, "out of band"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pi := &stripe.PaymentIntent{ID: intentID, Status: tc.status, Invoice: tc.invoice, Metadata: tc.metadata}
			got := activities.OwedVerdict(pi, tc.otherPaid)
			if got.Verdict != tc.verdict || got.Status != string(tc.status) || !strings.Contains(got.Why, tc.why) {
				t.Errorf("OwedVerdict = %+v, want verdict %q, status %q, why containing %q", got, tc.verdict, tc.status, tc.why)
			}
		})
	}
}

func TestChargeMethod(t *testing.T) {
	for _, tc := range []struct {
		def, failed, sub string
		want, source     string
	}{
		{"pm_default", "pm_failed", "pm_sub", "pm_default", "customer default"},
		{"pm_default", "", "", "pm_default", "customer default"},
		{"", "pm_failed", "pm_sub", "pm_failed", "the payment method that failed"},
		{"", "", "pm_sub", "pm_sub", "subscription default"},
		{"", "", "", "", ""},
	} {
		pm, source := activities.ChargeMethod(tc.def, tc.failed, tc.sub)
		if pm != tc.want || source != tc.source {
			t.Errorf("ChargeMethod(%q, %q, %q) = %q, %q; want %q, %q", tc.def, tc.failed, tc.sub, pm, source, tc.want, tc.source)
		}
	}
}

func TestActionFor(t *testing.T) {
	owed := func(verdict, pm string) activities.Owed {
		o := activities.Owed{Verdict: verdict, Status: "requires_action", Why: "w", PaymentMethod: pm}
		if pm != "" {
			o.PaymentMethodSource = "customer default"
		}
		return o
	}
	for _, tc := range []struct {
		name          string
		in            activities.Owed
		asked         string
		verdict, want string
	}{
		{"another card would be charged", owed(activities.OwedActionRequired, "pm_new"), "pm_asked", activities.OwedYes, "pm_new"},
		{"the card that asked would be charged", owed(activities.OwedActionRequired, "pm_asked"), "pm_asked", activities.OwedActionRequired, ""},
		{"nothing to charge", owed(activities.OwedActionRequired, ""), "pm_asked", activities.OwedActionRequired, ""},
		{"which card asked is unknown", owed(activities.OwedActionRequired, "pm_new"), "", activities.OwedActionRequired, ""},
		{"other verdicts stand", owed(activities.OwedYes, "pm_new"), "pm_asked", activities.OwedYes, "pm_new"},
		{"paid stands", owed(activities.OwedPaid, ""), "pm_asked", activities.OwedPaid, ""},
	} {
		got := activities.ActionFor(tc.in, tc.asked)
		if got.Verdict != tc.verdict || got.PaymentMethod != tc.want || (got.PaymentMethod == "") != (got.PaymentMethodSource == "") {
			t.Errorf("%s: ActionFor = %+v, want %s charging %q", tc.name, got, tc.verdict, tc.want)
		}
	}
}

var (
	apr1 = time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	may1 = time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	jun1 = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
)

func TestInvoicePeriod(t *testing.T) {
	line := func(start, end time.Time) *stripe.InvoiceLineItem {
		return &stripe.InvoiceLineItem{Period: &stripe.Period{Start: start.Unix(), End: end.Unix()}}
	}
	lines := func(ls ...*stripe.InvoiceLineItem) *stripe.InvoiceLineItemList {
		return &stripe.InvoiceLineItemList{Data: ls}
	}
	created := jun1.Add(time.Hour) // a one-off invoice: its own period is its creation
	for _, tc := range []struct {
		name       string
		inv        *stripe.Invoice
		start, end time.Time // zero: no period
	}{
		{"one line", &stripe.Invoice{Lines: lines(line(may1, jun1)), PeriodStart: created.Unix(), PeriodEnd: created.Unix()}, may1, jun1},
		{"lines spanning periods", &stripe.Invoice{Lines: lines(line(may1, jun1), line(apr1, may1))}, apr1, jun1},
		{"zero-length line skipped", &stripe.Invoice{Lines: lines(line(created, created), line(may1, jun1))}, may1, jun1},
		{"nil period and nil line skipped", &stripe.Invoice{Lines: lines(&stripe.InvoiceLineItem{}, nil, line(may1, jun1))}, may1, jun1},
		{"backwards line skipped", &stripe.Invoice{Lines: lines(line(jun1, may1), line(apr1, may1))}, apr1, may1},
		{"no usable line: the invoice's own period",
			&stripe.Invoice{Lines: lines(line(created, created)), PeriodStart: may1.Unix(), PeriodEnd: jun1.Unix()}, may1, jun1},
		{"lines absent: the invoice's own period", &stripe.Invoice{PeriodStart: may1.Unix(), PeriodEnd: jun1.Unix()}, may1, jun1},
		{"empty lines: the invoice's own period", &stripe.Invoice{Lines: lines(), PeriodStart: apr1.Unix(), PeriodEnd: may1.Unix()}, apr1, may1},
		{"no lines and start = end", &stripe.Invoice{PeriodStart: created.Unix(), PeriodEnd: created.Unix()}, time.Time{}, time.Time{}},
		{"zero-length lines and start = end",
			&stripe.Invoice{Lines: lines(line(created, created)), PeriodStart: created.Unix(), PeriodEnd: created.Unix()}, time.Time{}, time.Time{}},
		{"nothing at all", &stripe.Invoice{}, time.Time{}, time.Time{}},
		{"own period backwards", &stripe.Invoice{PeriodStart: jun1.Unix(), PeriodEnd: may1.Unix()}, time.Time{}, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, end := activities.InvoicePeriod(tc.inv)
			if !start.Equal(tc.start) || !end.Equal(tc.end) || start.Location() != time.UTC {
				t.Errorf("InvoicePeriod = %v … %v, want %v … %v in UTC", start, end, tc.start, tc.end)
			}
		})
	}
}

// ---- IntentOwed against a Stripe that answers as documented ----

const (
	invoiceID   = "in_1OdunningInv" // the invoice intent() pays
	pathIntents = "/v1/payment_intents"
	failedPM    = "pm_1OdunningFailed"
	subPM       = "pm_1OdunningSub"
	hostedURL   = "https://invoice.stripe.com/i/acct_1Odunning/test_YWNjdF8xT2R1bm5pbmc"
)

// invoiceObj is an Invoice as Stripe returns it expanded in an intent:
// a usage line for May, its own period the moment it was created, and a
// subscription that is an ID unless expanded.
func invoiceObj(status string, subscription any) obj {
	remaining := 4900
	if status == "paid" || status == "void" {
		remaining = 0
	}
	created := jun1.Add(time.Hour).Unix()
	return obj{
		"id": invoiceID, "object": "invoice", "status": status, "amount_due": 4900, "amount_paid": 4900 - remaining,
		"amount_remaining": remaining, "currency": "usd", "customer": customerID, "paid": status == "paid",
		"paid_out_of_band": false, "hosted_invoice_url": hostedURL, "period_start": created, "period_end": created,
		"created": created, "subscription": subscription, "payment_intent": intentID, "livemode": false, "metadata": obj{},
		"lines": obj{"object": "list", "has_more": false, "url": "/v1/invoices/" + invoiceID + "/lines", "data": []obj{{
			"id": "il_1Odunning", "object": "line_item", "amount": 4900, "currency": "usd", "type": "subscription",
			"period": obj{"start": may1.Unix(), "end": jun1.Unix()}, "proration": false, "quantity": 1,
		}}},
	}
}

// subscriptionObj is a Subscription as expand[]=invoice.subscription
// returns it; its default payment method is an ID.
func subscriptionObj(defaultPM any) obj {
	return obj{
		"id": "sub_1Odunning", "object": "subscription", "customer": customerID, "status": "past_due",
		"default_payment_method": defaultPM, "default_source": nil, "collection_method": "charge_automatically",
		"current_period_start": jun1.Unix(), "current_period_end": jun1.AddDate(0, 1, 0).Unix(), "metadata": obj{},
	}
}

// withInvoice is intent(status) with its invoice expanded.
func withInvoice(pi obj, inv obj) obj {
	pi["invoice"] = inv
	return pi
}

// afterDecline is the intent as Stripe leaves it after a declined
// off-session charge: payment_method null, the card that failed in
// last_payment_error.payment_method (always an object there).
func afterDecline(pi obj) obj {
	pi["payment_method"] = nil
	pi["last_payment_error"] = obj{
		"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
		"message": "Your card has insufficient funds.", "doc_url": "https://stripe.com/docs/error-codes/card-declined",
		"payment_method": obj{"id": failedPM, "object": "payment_method", "type": "card", "customer": customerID,
			"card": obj{"brand": "visa", "last4": "0341", "exp_month": 12, "exp_year": 2030, "fingerprint": fingerprints[failedPM]}},
	}
	return pi
}

// fingerprints are the cards behind the payment methods and legacy cards
// of the tests: two payment methods may carry the same card.
var fingerprints = map[string]string{
	defaultPM:              "fpDefaultCard0001",
	failedPM:               "fpFailedCard00001",
	subPM:                  "fpDefaultCard0001", // the default card again, saved twice
	"pm_1OdunningAttached": "fpAttachedCard001",
	"pm_reported":          "fpReportedCard001",
	"card_1OdunningOld":    "fpLegacyCard00001",
}

// paymentMethodObj is a card PaymentMethod as GET /v1/payment_methods/{id}
// returns it.
func paymentMethodObj(id string) obj {
	return obj{"id": id, "object": "payment_method", "type": "card", "customer": customerID, "livemode": false,
		"created": 1690000000, "metadata": obj{}, "allow_redisplay": "unspecified",
		"billing_details": obj{"address": nil, "email": nil, "name": nil, "phone": nil},
		"card": obj{"brand": "visa", "country": "US", "exp_month": 12, "exp_year": 2030, "funding": "credit",
			"last4": "4242", "fingerprint": fingerprints[id], "generated_from": nil, "wallet": nil,
			"checks": obj{"address_line1_check": nil, "address_postal_code_check": nil, "cvc_check": "pass"}}}
}

// legacyCardObj is a Card as GET /v1/customers/{id}/sources/{card} returns it.
func legacyCardObj(id string) obj {
	return obj{"id": id, "object": "card", "brand": "Visa", "country": "US", "customer": customerID, "cvc_check": nil,
		"exp_month": 3, "exp_year": 2029, "fingerprint": fingerprints[id], "funding": "credit", "last4": "1881", "metadata": obj{}}
}

func pathPaymentMethod(id string) string { return "/v1/payment_methods/" + id }
func pathSource(id string) string        { return pathCustomer + "/sources/" + id }

// knowsCards lets f answer reads of the tests' payment methods and legacy
// cards as Stripe does: legacy cards only under the customer's sources.
// owedStripe is a fake Stripe with the intent, no other intent for its
// invoice, the customer and every card the tests know; and the
// activities against it.
func owedStripe(t *testing.T, intent, customer obj) (*fakeStripe, *activities.Activities) {
	t.Helper()
	f := newFakeStripe(t)
	f.on(http.MethodGet, pathIntent, ok(intent))
	f.on(http.MethodGet, pathIntents, ok(intentList()))
	f.on(http.MethodGet, pathCustomer, ok(customer))
	knowsCards(f)
	return f, stripeActivities(t, fakeKey, f.URL, "")
}

func knowsCards(f *fakeStripe) {
	for id := range fingerprints {
		if strings.HasPrefix(id, "card_") {
			f.on(http.MethodGet, pathSource(id), ok(legacyCardObj(id)))
			f.on(http.MethodGet, pathPaymentMethod(id), noSuch("payment_method", id))
			continue
		}
		f.on(http.MethodGet, pathPaymentMethod(id), ok(paymentMethodObj(id)))
	}
}

// intentList is a page of the customer's intents as Stripe lists them
// (invoices as IDs).
func intentList(intents ...obj) obj {
	return obj{"object": "list", "url": pathIntents, "has_more": false, "data": intents}
}

func otherIntent(id, status, invoice string) obj {
	pi := intent(status)
	pi["id"], pi["invoice"] = id, invoice
	return pi
}

// stripeDown is Stripe's answer when it fails on its side.
func stripeDown(status int) answer {
	return answer{status, stripeError("api_error", "", "", "An unknown error occurred", nil)}
}

func rateLimited() answer {
	return answer{http.StatusTooManyRequests, stripeError("invalid_request_error", "rate_limit", "", "Request rate limit exceeded.", nil)}
}

// noSuch is Stripe's answer for an object it does not have.
func noSuch(kind, id string) answer {
	return answer{http.StatusNotFound, stripeError("invalid_request_error", "resource_missing", "", "No such "+kind+": '"+id+"'", nil)}
}

func owedInput() activities.OwedInput {
	return activities.OwedInput{IntentID: intentID, StripeCustomerID: customerID}
}

// paths lists the requests a fake saw, in order.
func paths(rs []request) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	return out
}

func TestIntentOwedReadsIntentInvoiceAndTheCustomersIntents(t *testing.T) {
	f := newFakeStripe(t)
	f.on(http.MethodGet, pathIntent, ok(afterDecline(withInvoice(intent("requires_payment_method"),
		invoiceObj("open", subscriptionObj(subPM))))))
	f.on(http.MethodGet, pathIntents, ok(intentList(
		otherIntent("pi_old", "succeeded", "in_1OdunningOlder"), // paid another invoice
		otherIntent("pi_try", "canceled", invoiceID),            // an earlier try of this one
		intent("requires_payment_method"),                       // this intent itself
	)))
	f.on(http.MethodGet, pathCustomer, ok(customer(defaultPM, "", nil)))
	knowsCards(f)
	acts := stripeActivities(t, fakeKey, f.URL, "")

	got, err := acts.IntentOwed(context.Background(), owedInput())
	if err != nil {
		t.Fatalf("IntentOwed: %v", err)
	}
	want := activities.Owed{Verdict: activities.OwedYes, Status: "requires_payment_method", Why: "intent requires_payment_method",
		InvoiceID: invoiceID, PeriodStart: may1, PeriodEnd: jun1, PayURL: hostedURL,
		PaymentMethod: defaultPM, PaymentMethodSource: "customer default", Fingerprint: fingerprints[defaultPM]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("IntentOwed =\n %+v\nwant\n %+v", got, want)
	}
	all := f.seen.list()
	if want := []string{"GET " + pathIntent, "GET " + pathIntents, "GET " + pathCustomer, "GET " + pathPaymentMethod(defaultPM)}; !reflect.DeepEqual(paths(all), want) {
		t.Fatalf("requests = %v, want %v", paths(all), want)
	}
	// stripe-go sends expand as an indexed array; Stripe reads both forms.
	wantQuery := url.Values{"expand[0]": {"invoice"}, "expand[1]": {"invoice.subscription"}, "expand[2]": {"invoice.charge"}, "expand[3]": {"latest_charge"}}
	if !reflect.DeepEqual(all[0].Query, wantQuery) {
		t.Errorf("GET %s query = %v, want %v", pathIntent, all[0].Query, wantQuery)
	}
	if q := all[1].Query; q.Get("customer") != customerID || q.Get("limit") != "100" || len(q) != 2 {
		t.Errorf("GET %s query = %v, want customer=%s and limit=100", pathIntents, q, customerID)
	}
}

func TestIntentOwedAnotherSucceededIntentPaysTheInvoice(t *testing.T) {
	f := newFakeStripe(t)
	// Stripe has not yet marked the invoice paid; the other intent says
	// the money arrived. It is on the second page of the list.
	f.on(http.MethodGet, pathIntent, ok(withInvoice(intent("requires_payment_method"), invoiceObj("open", "sub_1Odunning"))))
	page2 := intentList(otherIntent("pi_paid", "succeeded", invoiceID))
	page1 := intentList(otherIntent("pi_a", "succeeded", "in_1OdunningOlder"))
	page1["has_more"] = true
	f.on(http.MethodGet, pathIntents, ok(page1), ok(page2))
	acts := stripeActivities(t, fakeKey, f.URL, "")

	got, err := acts.IntentOwed(context.Background(), owedInput())
	if err != nil {
		t.Fatalf("IntentOwed: %v", err)
	}
	if got.Verdict != activities.OwedPaid || !strings.Contains(got.Why, "pi_paid") || got.PaymentMethod != "" {
		t.Errorf("IntentOwed = %+v, want paid by pi_paid and nothing to charge", got)
	}
	// The invoice still says amount_paid 0: the money that paid is what
	// pi_paid received, not nothing (which would count the life as
	// forgiven, with no money recovered).
	if got.AmountPaid == nil || *got.AmountPaid != 4900 {
		t.Errorf("IntentOwed amount paid %v, want 4900, what pi_paid received", got.AmountPaid)
	}
	lists := f.seen.to(http.MethodGet, pathIntents)
	if len(lists) != 2 || lists[1].Query.Get("starting_after") != "pi_a" {
		t.Errorf("list requests = %v, want a second page after pi_a", lists)
	}
	if n := len(f.seen.to(http.MethodGet, pathCustomer)); n != 0 {
		t.Errorf("read the customer %d times for a paid intent, want none", n)
	}
}

func TestIntentOwedListsIntentsOnlyForAnOpenInvoice(t *testing.T) {
	for _, tc := range []struct {
		name    string
		intent  obj
		verdict string
		list    bool
	}{
		{"succeeded with an invoice", withInvoice(intent("succeeded"), invoiceObj("paid", nil)), activities.OwedPaid, false},
		{"no invoice", func() obj { pi := intent("requires_payment_method"); pi["invoice"] = nil; return pi }(), activities.OwedYes, false},
		{"open invoice", withInvoice(intent("requires_payment_method"), invoiceObj("open", nil)), activities.OwedYes, true},
		{"invoice as an ID", intent("requires_payment_method"), activities.OwedYes, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeStripe(t)
			f.on(http.MethodGet, pathIntent, ok(tc.intent))
			f.on(http.MethodGet, pathCustomer, ok(customer(defaultPM, "", nil)))
			knowsCards(f)
			if tc.list {
				f.on(http.MethodGet, pathIntents, ok(intentList()))
			}
			acts := stripeActivities(t, fakeKey, f.URL, "")
			got, err := acts.IntentOwed(context.Background(), owedInput())
			if err != nil {
				t.Fatalf("IntentOwed: %v", err)
			}
			if got.Verdict != tc.verdict {
				t.Errorf("verdict = %q (%s), want %q", got.Verdict, got.Why, tc.verdict)
			}
			if n := len(f.seen.to(http.MethodGet, pathIntents)); (n == 1) != tc.list || n > 1 {
				t.Errorf("list requests = %d, want list read %v", n, tc.list)
			}
		})
	}
}

func TestIntentOwedPaymentMethodChoice(t *testing.T) {
	noInvoice := func(pi obj) obj { pi["invoice"] = nil; return pi }
	for _, tc := range []struct {
		name     string
		intent   obj
		customer obj
		reported string // OwedInput.FailedPaymentMethod
		want     string
		source   string
		read     string // the read of the chosen payment method, if any
	}{
		{"customer default first", afterDecline(withInvoice(intent("requires_payment_method"), invoiceObj("open", subscriptionObj(subPM)))),
			customer(defaultPM, "", nil), "", defaultPM, "customer default", "GET " + pathPaymentMethod(defaultPM)},
		{"customer's legacy default source", afterDecline(noInvoice(intent("requires_payment_method"))),
			customer("", "card_1OdunningOld", nil), "", "card_1OdunningOld", "customer default", "GET " + pathSource("card_1OdunningOld")},
		// One read: is the card that failed still the customer's?
		{"the card that failed, from last_payment_error", afterDecline(withInvoice(intent("requires_payment_method"),
			invoiceObj("open", subscriptionObj(subPM)))), customer("", "", nil), "pm_reported", failedPM, "the payment method that failed", "GET " + pathPaymentMethod(failedPM)},
		{"the intent's own payment method before confirm", func() obj {
			pi := noInvoice(intent("requires_confirmation"))
			pi["payment_method"] = "pm_1OdunningAttached"
			return pi
		}(), customer("", "", nil), "", "pm_1OdunningAttached", "the payment method that failed", "GET " + pathPaymentMethod("pm_1OdunningAttached")},
		{"the failed card the event reported", noInvoice(intent("requires_payment_method")),
			customer("", "", nil), "pm_reported", "pm_reported", "the payment method that failed", "GET " + pathPaymentMethod("pm_reported")},
		{"the subscription's default", withInvoice(intent("requires_payment_method"), invoiceObj("open", subscriptionObj(subPM))),
			customer("", "", nil), "", subPM, "subscription default", "GET " + pathPaymentMethod(subPM)},
		{"the subscription's default, expanded", withInvoice(intent("requires_payment_method"),
			invoiceObj("open", subscriptionObj(obj{"id": subPM, "object": "payment_method", "type": "card"}))),
			customer("", "", nil), "", subPM, "subscription default", "GET " + pathPaymentMethod(subPM)},
		{"subscription not expanded", withInvoice(intent("requires_payment_method"), invoiceObj("open", "sub_1Odunning")),
			customer("", "", nil), "", "", "", ""},
		{"nothing to charge", withInvoice(intent("requires_payment_method"), invoiceObj("open", subscriptionObj(nil))),
			customer("", "", nil), "", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, acts := owedStripe(t, tc.intent, tc.customer)
			in := owedInput()
			in.FailedPaymentMethod = tc.reported
			got, err := acts.IntentOwed(context.Background(), in)
			if err != nil {
				t.Fatalf("IntentOwed: %v", err)
			}
			if got.Verdict != activities.OwedYes || got.PaymentMethod != tc.want || got.PaymentMethodSource != tc.source ||
				got.Fingerprint != fingerprints[tc.want] {
				t.Errorf("IntentOwed = %+v, want owed, payment method %q from %q, fingerprint %q",
					got, tc.want, tc.source, fingerprints[tc.want])
			}
			var reads []string
			for _, r := range f.seen.list() {
				if strings.Contains(r.Path, "/payment_methods/") || strings.Contains(r.Path, "/sources/") {
					reads = append(reads, r.String())
				}
			}
			if want := []string{tc.read}; tc.read == "" && len(reads) != 0 || tc.read != "" && !reflect.DeepEqual(reads, want) {
				t.Errorf("payment method reads = %v, want %q", reads, tc.read)
			}
		})
	}
}

// A newer API version's shape (the intent without its invoice, fields this
// SDK has never seen) decodes, and the verdict comes from what is there.
func TestIntentOwedNewerAPIVersion(t *testing.T) {
	pi := intent("requires_payment_method")
	pi["invoice"] = nil
	pi["payment_details"] = obj{"customer_reference": nil, "order_reference": "ord_1"}
	pi["amount_details"] = obj{"tip": obj{}, "line_items": obj{"object": "list", "data": []obj{}}}
	pi["presentment_details"] = obj{"presentment_amount": 4900, "presentment_currency": "usd"}
	pi["excluded_payment_method_types"] = nil
	pi["next_action"] = nil
	pi["some_field_from_2030"] = []any{1, "two", obj{"three": 3.5}, nil}
	cus := customer(defaultPM, "", nil)
	cus["invoice_settings"].(obj)["rendering_options"] = obj{"amount_tax_display": nil, "template": "inrtem_1"}
	cus["customer_account"] = nil

	f := newFakeStripe(t)
	f.on(http.MethodGet, pathIntent, ok(pi))
	f.on(http.MethodGet, pathCustomer, ok(cus))
	pm := paymentMethodObj(defaultPM)
	pm["customer_account"], pm["radar_options"] = nil, obj{"session": nil}
	pm["card"].(obj)["regulated_status"], pm["card"].(obj)["display_brand"] = "unregulated", "visa"
	pm["card"].(obj)["networks"] = obj{"available": []string{"visa", "cartes_bancaires"}, "preferred": nil}
	pm["some_field_from_2030"] = obj{"nested": []any{nil, 1}}
	f.on(http.MethodGet, pathPaymentMethod(defaultPM), ok(pm))
	acts := stripeActivities(t, fakeKey, f.URL, "")
	got, err := acts.IntentOwed(context.Background(), owedInput())
	if err != nil {
		t.Fatalf("IntentOwed: %v", err)
	}
	want := activities.Owed{Verdict: activities.OwedYes, Status: "requires_payment_method", Why: "intent requires_payment_method",
		PaymentMethod: defaultPM, PaymentMethodSource: "customer default", Fingerprint: fingerprints[defaultPM]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("IntentOwed = %+v, want %+v", got, want)
	}
}

func TestOwedAndForgiveDryRun(t *testing.T) {
	srv, seen := counter(t)
	acts := liveExcept(t, srv.URL)
	acts.Stripe = nil
	got, err := acts.IntentOwed(context.Background(), owedInput())
	if err != nil || !got.DryRun || got.Verdict != activities.OwedYes {
		t.Errorf("IntentOwed = %+v, %v; want a dry run that claims nothing paid", got, err)
	}
	res, err := acts.ForgiveIntent(context.Background(), forgiveInput())
	if err != nil || !res.DryRun {
		t.Errorf("ForgiveIntent = %+v, %v; want a dry run", res, err)
	}
	if all := seen.list(); len(all) != 0 {
		t.Errorf("requests = %v, want none", all)
	}
}

// ---- ForgiveIntent ----

const forgiveKey = "recovery-" + customerID + "/life-2/waive/" + intentID

func forgiveInput() activities.ForgiveInput {
	return activities.ForgiveInput{IntentID: intentID, Reason: "goodwill after outage", Lifecycle: "life-2", IdempotencyKey: forgiveKey}
}

var (
	pathInvoice       = "/v1/invoices/" + invoiceID
	pathUncollectible = pathInvoice + "/mark_uncollectible"
	pathCancel        = pathIntent + "/cancel"
)

func waivedIntent(pi obj) obj {
	pi["metadata"] = obj{activities.WaivedMetadataKey: "life-2: goodwill after outage"}
	return pi
}

// wantWrite checks one write: its form, and its key.
func wantWrite(t *testing.T, r request, form url.Values, key string) {
	t.Helper()
	if !reflect.DeepEqual(r.Form, form) {
		t.Errorf("%s form = %v, want %v", r, r.Form, form)
	}
	if r.IdempotencyKey != key {
		t.Errorf("%s Idempotency-Key = %q, want %q", r, r.IdempotencyKey, key)
	}
}

var waiverForm = url.Values{"metadata[" + activities.WaivedMetadataKey + "]": {"life-2: goodwill after outage"}}

func TestForgiveIntentWithAnInvoice(t *testing.T) {
	f := newFakeStripe(t)
	f.on(http.MethodGet, pathIntent, ok(withInvoice(intent("requires_payment_method"), invoiceObj("open", nil))))
	f.on(http.MethodPost, pathIntent, ok(waivedIntent(intent("requires_payment_method"))))
	f.on(http.MethodPost, pathUncollectible, ok(invoiceObj("uncollectible", nil)))
	acts := stripeActivities(t, fakeKey, f.URL, "")

	got, err := acts.ForgiveIntent(context.Background(), forgiveInput())
	if err != nil {
		t.Fatalf("ForgiveIntent: %v", err)
	}
	if got.Outcome != activities.ForgiveDone || !strings.Contains(got.Detail, invoiceID) || got.DryRun {
		t.Errorf("ForgiveIntent = %+v, want forgiven with the invoice marked", got)
	}
	all := f.seen.list()
	want := []string{"GET " + pathIntent, "POST " + pathIntent, "POST " + pathUncollectible}
	if !reflect.DeepEqual(paths(all), want) {
		t.Fatalf("requests = %v, want %v", paths(all), want)
	}
	if q := all[0].Query; q.Get("expand[0]") != "invoice" {
		t.Errorf("GET %s query = %v, want the invoice expanded", pathIntent, q)
	}
	wantWrite(t, all[1], waiverForm, forgiveKey+":metadata")
	wantWrite(t, all[2], url.Values{}, forgiveKey+":uncollectible")
}

// A retried activity sends each write again under the same key with the
// same parameters, and skips what Stripe shows already done.
func TestForgiveIntentRetriedSendsTheSameKeys(t *testing.T) {
	serverError := stripeDown(http.StatusInternalServerError)
	f := newFakeStripe(t)
	f.on(http.MethodGet, pathIntent,
		ok(withInvoice(intent("requires_payment_method"), invoiceObj("open", nil))),
		ok(withInvoice(intent("requires_payment_method"), invoiceObj("open", nil))),
		ok(waivedIntent(withInvoice(intent("requires_payment_method"), invoiceObj("open", nil)))))
	f.on(http.MethodPost, pathIntent, serverError, ok(waivedIntent(intent("requires_payment_method"))))
	f.on(http.MethodPost, pathUncollectible, serverError, ok(invoiceObj("uncollectible", nil)))
	acts := stripeActivities(t, fakeKey, f.URL, "")

	for attempt := 1; attempt <= 2; attempt++ {
		_, err := acts.ForgiveIntent(context.Background(), forgiveInput())
		wantRetryable(t, err)
	}
	got, err := acts.ForgiveIntent(context.Background(), forgiveInput())
	if err != nil || got.Outcome != activities.ForgiveDone {
		t.Fatalf("third attempt: %+v, %v; want forgiven", got, err)
	}
	meta := f.seen.to(http.MethodPost, pathIntent)
	marks := f.seen.to(http.MethodPost, pathUncollectible)
	if len(meta) != 2 || len(marks) != 2 {
		t.Fatalf("requests = %v, want the metadata written twice (then seen done) and the mark twice", paths(f.seen.list()))
	}
	for _, r := range meta {
		wantWrite(t, r, waiverForm, forgiveKey+":metadata")
	}
	for _, r := range marks {
		wantWrite(t, r, url.Values{}, forgiveKey+":uncollectible")
	}
}

func TestForgiveIntentOutcomes(t *testing.T) {
	noInvoice := func(pi obj) obj { pi["invoice"] = nil; return pi }
	for _, tc := range []struct {
		name    string
		intent  obj
		outcome string
		writes  []string // the writes made, in order
		detail  string
	}{
		{"invoice already uncollectible", withInvoice(intent("requires_payment_method"), invoiceObj("uncollectible", nil)),
			activities.ForgiveDone, []string{"POST " + pathIntent}, "already uncollectible"},
		{"already waived and written off", waivedIntent(withInvoice(intent("requires_payment_method"), invoiceObj("uncollectible", nil))),
			activities.ForgiveDone, nil, "already uncollectible"},
		{"already waived, invoice still open", waivedIntent(withInvoice(intent("requires_payment_method"), invoiceObj("open", nil))),
			activities.ForgiveDone, []string{"POST " + pathUncollectible}, "marked uncollectible"},
		// Closed: nothing to forgive, and nothing written to what Stripe
		// no longer lets change.
		{"invoice void", withInvoice(intent("canceled"), invoiceObj("void", nil)),
			activities.ForgiveClosed, nil, "void"},
		{"invoice void, already waived", waivedIntent(withInvoice(intent("canceled"), invoiceObj("void", nil))),
			activities.ForgiveClosed, nil, "void"},
		{"intent succeeded", withInvoice(intent("succeeded"), invoiceObj("paid", nil)),
			activities.ForgivePaid, nil, "intent succeeded"},
		{"invoice paid by another intent", withInvoice(intent("canceled"), invoiceObj("paid", nil)),
			activities.ForgivePaid, nil, "paid"},
		{"invoice paid, waived before", waivedIntent(withInvoice(intent("requires_payment_method"), invoiceObj("paid", nil))),
			activities.ForgivePaid, nil, "paid"},
		{"no invoice", noInvoice(intent("requires_payment_method")),
			activities.ForgiveDone, []string{"POST " + pathIntent, "POST " + pathCancel}, "canceled"},
		{"no invoice, waived before", waivedIntent(noInvoice(intent("requires_payment_method"))),
			activities.ForgiveDone, []string{"POST " + pathCancel}, "canceled"},
		{"no invoice, already canceled", waivedIntent(noInvoice(intent("canceled"))),
			activities.ForgiveClosed, nil, "already canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeStripe(t)
			f.on(http.MethodGet, pathIntent, ok(tc.intent))
			f.on(http.MethodPost, pathIntent, ok(waivedIntent(intent("requires_payment_method"))))
			f.on(http.MethodPost, pathUncollectible, ok(invoiceObj("uncollectible", nil)))
			f.on(http.MethodPost, pathCancel, ok(waivedIntent(noInvoice(intent("canceled")))))
			acts := stripeActivities(t, fakeKey, f.URL, "")

			got, err := acts.ForgiveIntent(context.Background(), forgiveInput())
			if err != nil {
				t.Fatalf("ForgiveIntent: %v", err)
			}
			if got.Outcome != tc.outcome || !strings.Contains(got.Detail, tc.detail) {
				t.Errorf("ForgiveIntent = %+v, want %q with detail containing %q", got, tc.outcome, tc.detail)
			}
			var writes []request
			for _, r := range f.seen.list() {
				if r.Method == http.MethodPost {
					writes = append(writes, r)
				}
			}
			if p := paths(writes); !reflect.DeepEqual(p, tc.writes) {
				t.Fatalf("writes = %v, want %v", p, tc.writes)
			}
			for _, w := range writes {
				switch w.Path {
				case pathIntent:
					wantWrite(t, w, waiverForm, forgiveKey+":metadata")
				case pathCancel:
					wantWrite(t, w, url.Values{"cancellation_reason": {"abandoned"}}, forgiveKey+":cancel")
				case pathUncollectible:
					wantWrite(t, w, url.Values{}, forgiveKey+":uncollectible")
				}
			}
		})
	}
}

// Every failure of a read or a write is an error and no result: 4xx is
// StripeRejected for good, anything else is retried by Temporal.
func TestOwedAndForgiveErrors(t *testing.T) {
	calls := map[string]func(*activities.Activities) (any, error){
		"IntentOwed": func(a *activities.Activities) (any, error) {
			return a.IntentOwed(context.Background(), owedInput())
		},
		"ForgiveIntent": func(a *activities.Activities) (any, error) {
			return a.ForgiveIntent(context.Background(), forgiveInput())
		},
	}
	badRequest := func(code, msg string) answer {
		return answer{http.StatusBadRequest, stripeError("invalid_request_error", code, "", msg, nil)}
	}
	for _, tc := range []struct {
		call      string
		failAt    string
		answer    answer
		retryable bool
	}{
		{"IntentOwed", "GET " + pathIntent, noSuch("payment_intent", intentID), false},
		{"IntentOwed", "GET " + pathIntents, badRequest("parameter_invalid_integer", "Invalid integer: 1000"), false},
		{"IntentOwed", "GET " + pathCustomer, noSuch("customer", customerID), false},
		{"IntentOwed", "GET " + pathIntent, stripeDown(http.StatusInternalServerError), true},
		{"IntentOwed", "GET " + pathIntents, stripeDown(http.StatusServiceUnavailable), true},
		{"IntentOwed", "GET " + pathCustomer, rateLimited(), true},
		{"IntentOwed", "GET " + pathIntent, answer{http.StatusBadGateway, "<html>502 Bad Gateway</html>"}, true},
		{"ForgiveIntent", "GET " + pathIntent, noSuch("payment_intent", intentID), false},
		{"ForgiveIntent", "POST " + pathUncollectible, badRequest("invoice_not_open", "This invoice can not be marked uncollectible."), false},
		{"ForgiveIntent", "POST " + pathIntent, stripeDown(http.StatusInternalServerError), true},
		{"ForgiveIntent", "POST " + pathUncollectible, rateLimited(), true},
		{"ForgiveIntent", "POST " + pathUncollectible, answer{http.StatusConflict, stripeError("idempotency_error", "", "",
			"There is currently another in-progress request using this Idempotent Key.", nil)}, true},
	} {
		t.Run(fmt.Sprintf("%s/%s/%d", tc.call, tc.failAt, tc.answer.status), func(t *testing.T) {
			f := newFakeStripe(t)
			f.on(http.MethodGet, pathIntent, ok(withInvoice(intent("requires_payment_method"), invoiceObj("open", nil))))
			f.on(http.MethodGet, pathIntents, ok(intentList()))
			f.on(http.MethodGet, pathCustomer, ok(customer(defaultPM, "", nil)))
			f.on(http.MethodPost, pathIntent, ok(waivedIntent(intent("requires_payment_method"))))
			f.on(http.MethodPost, pathUncollectible, ok(invoiceObj("uncollectible", nil)))
			method, path, _ := strings.Cut(tc.failAt, " ")
			f.on(method, path, tc.answer)
			got, err := calls[tc.call](stripeActivities(t, fakeKey, f.URL, ""))
			if !reflect.ValueOf(got).IsZero() {
				t.Errorf("result = %+v with the error, want none: nothing is guessed", got)
			}
			if tc.retryable {
				wantRetryable(t, err)
			} else {
				wantNonRetryable(t, err, activities.ErrStripeRejected)
			}
			if n := len(f.seen.to(method, path)); n != 1 {
				t.Errorf("%s requests = %d, want 1 (Temporal retries, not the client)", tc.failAt, n)
			}
		})
	}

	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for name, call := range calls {
		t.Run(name+"/no answer", func(t *testing.T) {
			got, err := call(stripeActivities(t, fakeKey, gone.URL, ""))
			wantRetryable(t, err)
			if !reflect.ValueOf(got).IsZero() {
				t.Errorf("result = %+v with no answer, want none", got)
			}
		})
	}

	t.Run("bad input", func(t *testing.T) {
		f := newFakeStripe(t) // any request fails the test
		acts := stripeActivities(t, fakeKey, f.URL, "")
		for _, in := range []activities.OwedInput{{IntentID: intentID}, {StripeCustomerID: customerID}} {
			_, err := acts.IntentOwed(context.Background(), in)
			wantNonRetryable(t, err, activities.ErrBadInput)
		}
		for _, in := range []activities.ForgiveInput{{IntentID: intentID}, {IdempotencyKey: forgiveKey}} {
			_, err := acts.ForgiveIntent(context.Background(), in)
			wantNonRetryable(t, err, activities.ErrBadInput)
		}
	})
}

// ---- RetryPayment with the payment method the workflow chose ----

// The chosen payment method is charged on every try of one activity, even
// when the customer's default changes between tries: one key never goes
// with two payment methods.
func TestRetryPaymentChargesTheChosenPaymentMethod(t *testing.T) {
	const chosen = "pm_1OdunningChosen"
	f := newFakeStripe(t)
	f.on(http.MethodGet, pathIntent, ok(afterDecline(intent("requires_payment_method"))))
	f.on(http.MethodGet, pathCustomer, ok(customer(defaultPM, "", nil)), ok(customer("pm_1OdunningNewCard", "", nil)))
	f.on(http.MethodPost, pathConfirm,
		stripeDown(http.StatusServiceUnavailable),
		ok(intent("succeeded")))
	acts := stripeActivities(t, fakeKey, f.URL, "")
	in := retryInput()
	in.PaymentMethodID = chosen

	_, err := acts.RetryPayment(context.Background(), in)
	wantRetryable(t, err)
	got, err := acts.RetryPayment(context.Background(), in)
	if err != nil {
		t.Fatalf("second try: %v", err)
	}
	if want := (activities.RetryResult{Outcome: activities.RetrySucceeded, Status: "succeeded", PaymentMethod: chosen, AmountReceived: 4900}); got != want {
		t.Errorf("RetryPayment = %+v, want %+v", got, want)
	}
	conf := f.seen.to(http.MethodPost, pathConfirm)
	if len(conf) != 2 {
		t.Fatalf("confirms = %d, want 2", len(conf))
	}
	for _, r := range conf {
		wantConfirm(t, r, chosen, retryKey)
	}
	if n := len(f.seen.to(http.MethodGet, pathCustomer)); n != 0 {
		t.Errorf("read the customer's default %d times, want never", n)
	}
}

func TestRetryPaymentWithoutAChoiceFallsBack(t *testing.T) {
	for _, tc := range []struct {
		name     string
		customer obj
		want     string
	}{
		{"customer default", customer(defaultPM, "", nil), defaultPM},
		{"the card that failed", customer("", "", nil), failedPM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeStripe(t)
			f.on(http.MethodGet, pathIntent, ok(afterDecline(intent("requires_payment_method"))))
			f.on(http.MethodGet, pathCustomer, ok(tc.customer))
			f.on(http.MethodPost, pathConfirm, ok(intent("succeeded")))
			acts := stripeActivities(t, fakeKey, f.URL, "")
			got, err := acts.RetryPayment(context.Background(), retryInput())
			if err != nil {
				t.Fatalf("RetryPayment: %v", err)
			}
			if got.Outcome != activities.RetrySucceeded || got.PaymentMethod != tc.want {
				t.Errorf("RetryPayment = %+v, want succeeded with %s", got, tc.want)
			}
			conf := f.seen.to(http.MethodPost, pathConfirm)
			if len(conf) != 1 {
				t.Fatalf("confirms = %d, want 1", len(conf))
			}
			wantConfirm(t, conf[0], tc.want, retryKey)
		})
	}
}

// ---- against stripe-mock: the requests are valid Stripe requests ----

// viaStripeMock returns activities whose Stripe is stripe-mock behind a
// recording proxy that may patch its answers.
func viaStripeMock(t *testing.T, mock string, patch func(*http.Request, map[string]any)) (*activities.Activities, *requests) {
	t.Helper()
	base, seen := stripeMockProxy(t, mock, patch)
	return stripeActivities(t, testenv.StripeMockKey, base, ""), seen
}

// stripe-mock serves the newest API's shape, where an intent has no
// invoice; the proxy puts an expanded one back where a test needs it.
func TestOwedAndForgiveStripeMock(t *testing.T) {
	mock := testenv.StartStripeMock(t)
	ctx := context.Background()
	openInvoice := func(r *http.Request, o map[string]any) {
		if r.Method == http.MethodGet && r.URL.Path == pathIntent {
			o["invoice"] = invoiceObj("open", subscriptionObj(subPM))
		}
	}

	t.Run("IntentOwed without an invoice", func(t *testing.T) {
		acts, seen := viaStripeMock(t, mock, nil)
		got, err := acts.IntentOwed(ctx, owedInput())
		if err != nil {
			t.Fatalf("IntentOwed: %v", err)
		}
		wantAccepted(t, seen)
		if status, _ := fixture(t, mock, pathIntent)["status"].(string); got.Status != status || got.Verdict == "" {
			t.Errorf("IntentOwed = %+v, want a verdict on stripe-mock's status %q", got, status)
		}
		if p := paths(seen.list()); p[0] != "GET "+pathIntent {
			t.Errorf("requests = %v, want the intent read first", p)
		}
	})

	t.Run("IntentOwed lists the customer's intents", func(t *testing.T) {
		acts, seen := viaStripeMock(t, mock, openInvoice)
		got, err := acts.IntentOwed(ctx, owedInput())
		if err != nil {
			t.Fatalf("IntentOwed: %v", err)
		}
		wantAccepted(t, seen)
		if len(seen.to(http.MethodGet, pathIntents)) != 1 {
			t.Errorf("requests = %v, want one list of the customer's intents", paths(seen.list()))
		}
		if got.InvoiceID != invoiceID || !got.PeriodStart.Equal(may1) || got.PayURL != hostedURL {
			t.Errorf("IntentOwed = %+v, want the invoice, its period and its page", got)
		}
	})

	t.Run("ForgiveIntent with an invoice", func(t *testing.T) {
		acts, seen := viaStripeMock(t, mock, openInvoice)
		got, err := acts.ForgiveIntent(ctx, forgiveInput())
		if err != nil {
			t.Fatalf("ForgiveIntent: %v", err)
		}
		wantAccepted(t, seen)
		if got.Outcome != activities.ForgiveDone {
			t.Errorf("ForgiveIntent = %+v, want forgiven", got)
		}
		if len(seen.to(http.MethodPost, pathIntent)) != 1 || len(seen.to(http.MethodPost, pathUncollectible)) != 1 {
			t.Errorf("requests = %v, want the metadata written and the invoice marked", paths(seen.list()))
		}
	})

	t.Run("ForgiveIntent without an invoice", func(t *testing.T) {
		if status, _ := fixture(t, mock, pathIntent)["status"].(string); status == "canceled" || status == "succeeded" {
			t.Fatalf("precondition: stripe-mock's intent is %s", status)
		}
		acts, seen := viaStripeMock(t, mock, nil)
		if _, err := acts.ForgiveIntent(ctx, forgiveInput()); err != nil {
			t.Fatalf("ForgiveIntent: %v", err)
		}
		wantAccepted(t, seen)
		if len(seen.to(http.MethodPost, pathIntent)) != 1 || len(seen.to(http.MethodPost, pathCancel)) != 1 {
			t.Errorf("requests = %v, want the metadata written and the intent canceled", paths(seen.list()))
		}
	})

	t.Run("RetryPayment with the chosen payment method", func(t *testing.T) {
		acts, seen := viaStripeMock(t, mock, nil)
		in := retryInput()
		in.PaymentMethodID = "pm_card_visa"
		if _, err := acts.RetryPayment(ctx, in); err != nil {
			t.Fatalf("RetryPayment: %v", err)
		}
		wantAccepted(t, seen)
		conf := seen.to(http.MethodPost, pathConfirm)
		if len(conf) != 1 || len(seen.to(http.MethodGet, pathCustomer)) != 0 {
			t.Fatalf("requests = %v, want one confirm and no customer read", paths(seen.list()))
		}
		wantConfirm(t, conf[0], "pm_card_visa", retryKey)
	})

	withDefault := func(pm, source string) func(*http.Request, map[string]any) {
		return func(r *http.Request, o map[string]any) {
			if r.Method == http.MethodGet && r.URL.Path == pathCustomer {
				o["invoice_settings"].(map[string]any)["default_payment_method"] = pm
				o["default_source"] = source
			}
		}
	}

	t.Run("IntentOwed reads the chosen card's fingerprint", func(t *testing.T) {
		want, _ := fixture(t, mock, pathPaymentMethod("pm_card_visa"))["card"].(map[string]any)["fingerprint"].(string)
		if want == "" {
			t.Fatal("precondition: stripe-mock's payment method has no card fingerprint")
		}
		acts, seen := viaStripeMock(t, mock, withDefault("pm_card_visa", ""))
		got, err := acts.IntentOwed(ctx, owedInput())
		if err != nil {
			t.Fatalf("IntentOwed: %v", err)
		}
		wantAccepted(t, seen)
		if got.PaymentMethod != "pm_card_visa" || got.Fingerprint != want {
			t.Errorf("IntentOwed = %+v, want pm_card_visa with fingerprint %q", got, want)
		}
		if n := len(seen.to(http.MethodGet, pathPaymentMethod("pm_card_visa"))); n != 1 {
			t.Errorf("requests = %v, want one read of the payment method", paths(seen.list()))
		}
	})

	// stripe-mock answers a customer's source with the first of the
	// shapes the endpoint may return (an Account): not a card, so no
	// fingerprint, and no error.
	t.Run("IntentOwed reads a legacy card under the customer's sources", func(t *testing.T) {
		acts, seen := viaStripeMock(t, mock, withDefault("", "card_1OdunningOld"))
		got, err := acts.IntentOwed(ctx, owedInput())
		if err != nil {
			t.Fatalf("IntentOwed: %v", err)
		}
		wantAccepted(t, seen)
		if got.PaymentMethod != "card_1OdunningOld" || got.Fingerprint != "" {
			t.Errorf("IntentOwed = %+v, want card_1OdunningOld and no fingerprint from a non-card answer", got)
		}
		if n := len(seen.to(http.MethodGet, pathSource("card_1OdunningOld"))); n != 1 {
			t.Errorf("requests = %v, want one read of the customer's source", paths(seen.list()))
		}
	})

	// The confirm comes back declined with a charge: the charge is read,
	// and Stripe accepts the read.
	t.Run("RetryPayment reads the declined charge", func(t *testing.T) {
		acts, seen := viaStripeMock(t, mock, func(r *http.Request, o map[string]any) {
			if r.Method == http.MethodPost && r.URL.Path == pathConfirm {
				o["status"] = "requires_payment_method"
				o["last_payment_error"] = map[string]any{"type": "card_error", "code": "card_declined", "decline_code": "do_not_honor",
					"message": "Your card was declined.", "charge": declinedCharge, "advice_code": "try_again_later"}
			}
		})
		in := retryInput()
		in.PaymentMethodID = "pm_card_visa"
		got, err := acts.RetryPayment(ctx, in)
		if err != nil {
			t.Fatalf("RetryPayment: %v", err)
		}
		wantAccepted(t, seen)
		if n := len(seen.to(http.MethodGet, pathCharge)); n != 1 {
			t.Fatalf("requests = %v, want one read of the declined charge", paths(seen.list()))
		}
		fx := fixture(t, mock, pathCharge)
		fp, _ := fx["payment_method_details"].(map[string]any)["card"].(map[string]any)["fingerprint"].(string)
		if got.Outcome != activities.RetryDeclined || got.Decline.DeclineCode != "do_not_honor" ||
			got.Decline.AdviceCode != "try_again_later" || got.Decline.Charge != declinedCharge || got.Decline.Fingerprint != fp {
			t.Errorf("RetryPayment = %+v, want declined do_not_honor with the charge's card fingerprint %q", got, fp)
		}
	})
}

// The fingerprint read is about the card only: Stripe down is retried;
// an answer for good (no such payment method) or of another shape leaves
// the fingerprint empty and the verdict stands.
func TestIntentOwedFingerprintReads(t *testing.T) {
	sourcePath := pathSource("src_1OdunningSrc")
	for _, tc := range []struct {
		name      string
		customer  obj
		path      string
		answer    answer
		want      string
		retryable bool
	}{
		{"payment method", customer(defaultPM, "", nil), pathPaymentMethod(defaultPM), ok(paymentMethodObj(defaultPM)),
			fingerprints[defaultPM], false},
		{"Stripe down", customer(defaultPM, "", nil), pathPaymentMethod(defaultPM), stripeDown(http.StatusServiceUnavailable), "", true},
		{"rate limited", customer(defaultPM, "", nil), pathPaymentMethod(defaultPM), rateLimited(), "", true},
		{"no such payment method", customer(defaultPM, "", nil), pathPaymentMethod(defaultPM), noSuch("payment_method", defaultPM), "", false},
		{"not a card", customer(defaultPM, "", nil), pathPaymentMethod(defaultPM), ok(obj{"id": defaultPM, "object": "payment_method",
			"type": "sepa_debit", "card": nil, "sepa_debit": obj{"fingerprint": "fpSepaAccount0001", "last4": "3000"}}), "", false},
		{"an answer of another shape", customer(defaultPM, "", nil), pathPaymentMethod(defaultPM),
			ok(obj{"id": defaultPM, "card": "card_1Odunning"}), "", false},
		{"a legacy card", customer("", "card_1OdunningOld", nil), pathSource("card_1OdunningOld"), ok(legacyCardObj("card_1OdunningOld")),
			fingerprints["card_1OdunningOld"], false},
		{"a legacy card source", customer("", "src_1OdunningSrc", nil), sourcePath, ok(obj{"id": "src_1OdunningSrc", "object": "source",
			"type": "card", "status": "chargeable", "usage": "reusable", "customer": customerID,
			"card": obj{"brand": "Visa", "fingerprint": "fpSourceCard00001", "last4": "4242", "exp_month": 1, "exp_year": 2031}}),
			"fpSourceCard00001", false},
		{"a legacy card Stripe no longer has", customer("", "card_1OdunningOld", nil), pathSource("card_1OdunningOld"),
			noSuch("source", "card_1OdunningOld"), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeStripe(t)
			f.on(http.MethodGet, pathIntent, ok(noInvoiceIntent()))
			f.on(http.MethodGet, pathCustomer, ok(tc.customer))
			f.on(http.MethodGet, tc.path, tc.answer)
			acts := stripeActivities(t, fakeKey, f.URL, "")
			got, err := acts.IntentOwed(context.Background(), owedInput())
			if tc.retryable {
				wantRetryable(t, err)
				if !reflect.ValueOf(got).IsZero() {
					t.Errorf("result = %+v with the error, want none", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("IntentOwed: %v", err)
			}
			if got.Verdict != activities.OwedYes || got.PaymentMethod == "" || got.Fingerprint != tc.want {
				t.Errorf("IntentOwed = %+v, want owed with fingerprint %q", got, tc.want)
			}
			if n := len(f.seen.to(http.MethodGet, tc.path)); n != 1 {
				t.Errorf("requests = %v, want one GET %s", paths(f.seen.list()), tc.path)
			}
		})
	}
}

func noInvoiceIntent() obj {
	pi := intent("requires_payment_method")
	pi["invoice"] = nil
	return pi
}

// A check before a suspension charges nothing: it reads no customer and no
// card, so that a read only a charge needs cannot hold a suspension.
func TestIntentOwedSkipCharge(t *testing.T) {
	f := newFakeStripe(t)
	f.on(http.MethodGet, pathIntent, ok(withInvoice(intent("requires_payment_method"), invoiceObj("open", nil))))
	f.on(http.MethodGet, pathIntents, ok(intentList()))
	acts := stripeActivities(t, fakeKey, f.URL, "")
	in := owedInput()
	in.SkipCharge = true
	got, err := acts.IntentOwed(context.Background(), in)
	if err != nil {
		t.Fatalf("IntentOwed: %v", err)
	}
	if got.Verdict != activities.OwedYes || got.PaymentMethod != "" || got.Fingerprint != "" {
		t.Errorf("IntentOwed = %+v, want owed and no charge target", got)
	}
	if n := len(f.seen.to(http.MethodGet, pathCustomer)); n != 0 {
		t.Errorf("customer read %d times, want none", n)
	}
}

// awaitingAuthentication is the intent as Stripe leaves it when the bank
// asks the customer to authenticate: requires_action, its payment_method
// the card that must be authenticated (an ID unless expanded).
func awaitingAuthentication(card any) obj {
	pi := withInvoice(intent("requires_action"), invoiceObj("open", subscriptionObj(subPM)))
	pi["payment_method"] = card
	return pi
}

// The bank asked the customer to authenticate one card. A confirm with
// that card cannot succeed off-session; a confirm with another card can,
// and Stripe accepts it from requires_action: the check before a charge
// answers owed with it, and lets the card rules decide.
func TestIntentOwedAwaitingAuthentication(t *testing.T) {
	for _, tc := range []struct {
		name     string
		intent   obj
		customer obj
		verdict  string
		want     string // what a confirm would charge
	}{
		{"the customer set another card", awaitingAuthentication(failedPM), customer(defaultPM, "", nil), activities.OwedYes, defaultPM},
		{"the default is the card that asked", awaitingAuthentication(failedPM), customer(failedPM, "", nil), activities.OwedActionRequired, ""},
		{"no default: the card that asked", awaitingAuthentication(failedPM), customer("", "", nil), activities.OwedActionRequired, ""},
		{"the card that asked, expanded", awaitingAuthentication(paymentMethodObj(failedPM)), customer(failedPM, "", nil),
			activities.OwedActionRequired, ""},
		{"Stripe does not say which card asked", awaitingAuthentication(nil), customer(defaultPM, "", nil), activities.OwedActionRequired, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, acts := owedStripe(t, tc.intent, tc.customer)
			got, err := acts.IntentOwed(context.Background(), owedInput())
			if err != nil {
				t.Fatalf("IntentOwed: %v", err)
			}
			if got.Verdict != tc.verdict || got.Status != "requires_action" || got.PaymentMethod != tc.want ||
				got.Fingerprint != fingerprints[tc.want] {
				t.Errorf("IntentOwed = %+v, want %s charging %q (fingerprint %q)", got, tc.verdict, tc.want, fingerprints[tc.want])
			}
		})
	}
	// A check before a suspension charges nothing and reads no customer:
	// the intent waits for the customer either way.
	f := newFakeStripe(t)
	f.on(http.MethodGet, pathIntent, ok(awaitingAuthentication(failedPM)))
	f.on(http.MethodGet, pathIntents, ok(intentList()))
	acts := stripeActivities(t, fakeKey, f.URL, "")
	in := owedInput()
	in.SkipCharge = true
	got, err := acts.IntentOwed(context.Background(), in)
	if err != nil || got.Verdict != activities.OwedActionRequired || got.PaymentMethod != "" {
		t.Errorf("IntentOwed skipping the charge = %+v, %v; want action_required and nothing to charge", got, err)
	}
}

// The customer removed the card that failed: Stripe still names it in
// last_payment_error, but it is no longer theirs and cannot be charged;
// the subscription's default is, or nothing.
func TestIntentOwedRemovedFailedCard(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		invoice    obj
	}{
		{"falls back to the subscription's default", subPM, invoiceObj("open", subscriptionObj(subPM))},
		{"nothing left to charge", "", invoiceObj("open", subscriptionObj(nil))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeStripe(t)
			f.on(http.MethodGet, pathIntent, ok(afterDecline(withInvoice(intent("requires_payment_method"), tc.invoice))))
			f.on(http.MethodGet, pathIntents, ok(intentList()))
			f.on(http.MethodGet, pathCustomer, ok(customer("", "", nil)))
			detached := paymentMethodObj(failedPM)
			detached["customer"] = nil
			f.on(http.MethodGet, pathPaymentMethod(failedPM), ok(detached))
			f.on(http.MethodGet, pathPaymentMethod(subPM), ok(paymentMethodObj(subPM)))
			acts := stripeActivities(t, fakeKey, f.URL, "")
			got, err := acts.IntentOwed(context.Background(), owedInput())
			if err != nil {
				t.Fatalf("IntentOwed: %v", err)
			}
			if got.PaymentMethod != tc.want {
				t.Errorf("IntentOwed charges %q (%s), want %q", got.PaymentMethod, got.PaymentMethodSource, tc.want)
			}
		})
	}
}

// A paid verdict carries the money that paid: what the intent received,
// or its invoice's amount_paid, which a credit note or the customer's
// credit balance leaves short of what was due (even zero).
func TestOwedVerdictAmountPaid(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    stripe.PaymentIntentStatus
		received  int64
		invoice   *stripe.Invoice
		otherPaid string
		paid      int64
		outOfBand bool
	}{
		{"intent succeeded", "succeeded", 4900, nil, "", 4900, false},
		{"invoice paid by a charge", "requires_payment_method", 0,
			&stripe.Invoice{ID: "in_1", Status: "paid", AmountDue: 4900, AmountPaid: 4900}, "", 4900, false},
		{"invoice paid from the credit balance", "canceled", 0,
			&stripe.Invoice{ID: "in_1", Status: "paid", AmountDue: 0, AmountPaid: 0, StartingBalance: -4900}, "", 0, false},
		{"invoice fully credited by a credit note", "requires_payment_method", 0,
			&stripe.Invoice{ID: "in_1", Status: "paid", AmountDue: 4900, AmountPaid: 0, PostPaymentCreditNotesAmount: 0, PrePaymentCreditNotesAmount: 4900}, "", 0, false},
		{"open invoice credited down to nothing left", "requires_payment_method", 0,
			&stripe.Invoice{ID: "in_1", Status: "open", AmountDue: 4900, AmountRemaining: 0, AmountPaid: 1900}, "", 1900, false},
		{"invoice paid out of band", "canceled", 0,
			&stripe.Invoice{ID: "in_1", Status: "paid", PaidOutOfBand: true, AmountDue: 4900, AmountPaid: 4900}, "", 4900, true},
		{"another intent paid the invoice, which says so", "requires_payment_method", 0,
			&stripe.Invoice{ID: "in_1", Status: "open", AmountDue: 4900, AmountRemaining: 0, AmountPaid: 4900}, "pi_other", 4900, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pi := &stripe.PaymentIntent{ID: intentID, Status: tc.status, AmountReceived: tc.received, Invoice: tc.invoice}
			got := activities.OwedVerdict(pi, tc.otherPaid)
			if got.Verdict != activities.OwedPaid || got.AmountPaid == nil || *got.AmountPaid != tc.paid || got.OutOfBand != tc.outOfBand {
				t.Errorf("OwedVerdict = %+v (amount paid %v), want paid %d, out of band %v", got, got.AmountPaid, tc.paid, tc.outOfBand)
			}
		})
	}
	pi := &stripe.PaymentIntent{ID: intentID, Status: "requires_payment_method",
		Invoice: &stripe.Invoice{ID: "in_1", Status: "open", AmountDue: 4900, AmountRemaining: 4900}}
	if got := activities.OwedVerdict(pi, ""); got.AmountPaid != nil {
		t.Errorf("an owed verdict says %d was paid", *got.AmountPaid)
	}
	// An invoice Stripe has not yet marked paid by the other intent says
	// nothing of the money.
	pi.Invoice = &stripe.Invoice{ID: "in_1", Status: "open", AmountDue: 4900, AmountRemaining: 4900}
	if got := activities.OwedVerdict(pi, "pi_other"); got.Verdict != activities.OwedPaid || got.AmountPaid != nil {
		t.Errorf("OwedVerdict = %+v, want paid, amount not said by the lagging invoice", got)
	}
	// Out of band with amount_paid zero says nothing of how much.
	pi.Invoice = &stripe.Invoice{ID: "in_1", Status: "paid", PaidOutOfBand: true, AmountDue: 4900}
	if got := activities.OwedVerdict(pi, ""); got.Verdict != activities.OwedPaid || !got.OutOfBand || got.AmountPaid != nil {
		t.Errorf("OwedVerdict = %+v, want paid out of band, amount not said", got)
	}
}

// paidCharge is the charge that paid the invoice, as expand[]=…charge
// returns it, with what was refunded of it since.
func paidCharge(refunded int) obj {
	return obj{"id": "ch_3OdunningPaid", "object": "charge", "amount": 4900, "amount_captured": 4900,
		"amount_refunded": refunded, "refunded": refunded == 4900, "captured": true, "currency": "usd",
		"customer": customerID, "paid": true, "payment_intent": intentID, "status": "succeeded", "outcome": obj{"type": "authorized"}}
}

// What paid and was given back since is not money kept: a refund of
// the charge, a credit note on the paid invoice (refunded, or credited
// to the balance), each counted once when they are one and the same.
// A credit note on the open invoice took the money off before it was
// paid: amount_paid never held it.
func TestIntentOwedKeepsWhatWasNotGivenBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		pi   func() obj
		kept int64
	}{
		{"the intent succeeded, nothing given back", func() obj {
			pi := withInvoice(intent("succeeded"), invoiceObj("paid", nil))
			pi["latest_charge"] = paidCharge(0)
			pi["invoice"].(obj)["charge"] = paidCharge(0)
			return pi
		}, 4900},
		{"the intent succeeded, 900 refunded", func() obj {
			pi := withInvoice(intent("succeeded"), invoiceObj("paid", nil))
			pi["latest_charge"] = paidCharge(900)
			pi["invoice"].(obj)["charge"] = paidCharge(900)
			return pi
		}, 4000},
		{"a credit note of 1500 on the paid invoice, refunded", func() obj {
			inv := invoiceObj("paid", nil)
			inv["post_payment_credit_notes_amount"] = 1500
			inv["charge"] = paidCharge(1500)
			pi := withInvoice(intent("succeeded"), inv)
			pi["latest_charge"] = paidCharge(1500)
			return pi
		}, 3400},
		{"a credit note of 1500 on the paid invoice, credited to the balance", func() obj {
			inv := invoiceObj("paid", nil)
			inv["post_payment_credit_notes_amount"] = 1500
			inv["charge"] = paidCharge(0)
			return withInvoice(afterDecline(intent("requires_payment_method")), inv)
		}, 3400},
		{"the whole payment refunded", func() obj {
			pi := withInvoice(intent("succeeded"), invoiceObj("paid", nil))
			pi["latest_charge"] = paidCharge(4900)
			return pi
		}, 0},
		{"a credit note of 1900 on the open invoice, the rest paid", func() obj {
			inv := invoiceObj("paid", nil)
			inv["pre_payment_credit_notes_amount"], inv["amount_due"], inv["amount_paid"] = 1900, 3000, 3000
			inv["charge"] = paidCharge(0)
			return withInvoice(afterDecline(intent("requires_payment_method")), inv)
		}, 3000},
		{"charges not expanded: nothing known to be given back", func() obj {
			pi := withInvoice(intent("succeeded"), invoiceObj("paid", nil))
			pi["latest_charge"] = "ch_3OdunningPaid"
			pi["invoice"].(obj)["charge"] = "ch_3OdunningPaid"
			return pi
		}, 4900},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeStripe(t)
			f.on(http.MethodGet, pathIntent, ok(tc.pi()))
			f.on(http.MethodGet, pathIntents, ok(intentList()))
			acts := stripeActivities(t, fakeKey, f.URL, "")
			got, err := acts.IntentOwed(context.Background(), owedInput())
			if err != nil {
				t.Fatalf("IntentOwed: %v", err)
			}
			if got.Verdict != activities.OwedPaid || got.AmountPaid == nil || *got.AmountPaid != tc.kept {
				t.Errorf("IntentOwed = %+v (amount paid %v), want paid, %d kept", got, got.AmountPaid, tc.kept)
			}
		})
	}
}

// The customer removed payment methods that Stripe's reads still name a
// moment after the detach: as the customer's default, as the card that
// failed, as the subscription's default. None is chosen to charge; the
// next one named is, and those passed over are said. With only removed
// ones named, nothing is charged.
func TestIntentOwedPassesOverRemovedMethods(t *testing.T) {
	withSub := func() obj {
		return afterDecline(withInvoice(intent("requires_payment_method"), invoiceObj("open", subscriptionObj(subPM))))
	}
	for _, tc := range []struct {
		name    string
		cus     obj
		removed []string
		want    string
		source  string
		passed  []string
	}{
		{"the default removed: the card that failed", customer(defaultPM, "", nil), []string{defaultPM},
			failedPM, "the payment method that failed", []string{defaultPM}},
		{"the default and the failed card removed: the subscription's", customer(defaultPM, "", nil), []string{defaultPM, failedPM},
			subPM, "subscription default", []string{defaultPM, failedPM}},
		{"every one named removed", customer(defaultPM, "", nil), []string{defaultPM, failedPM, subPM},
			"", "", []string{defaultPM, failedPM, subPM}},
		{"another one removed: the default", customer(defaultPM, "", nil), []string{"pm_1OdunningGone"},
			defaultPM, "customer default", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, acts := owedStripe(t, withSub(), tc.cus)
			in := owedInput()
			in.Removed = tc.removed
			got, err := acts.IntentOwed(context.Background(), in)
			if err != nil {
				t.Fatalf("IntentOwed: %v", err)
			}
			if got.Verdict != activities.OwedYes || got.PaymentMethod != tc.want || got.PaymentMethodSource != tc.source ||
				!reflect.DeepEqual(got.Passed, tc.passed) {
				t.Errorf("IntentOwed = %+v, want %q from %q, %v passed over", got, tc.want, tc.source, tc.passed)
			}
			for _, r := range f.seen.list() {
				for _, pm := range tc.removed {
					if strings.HasSuffix(r.Path, "/"+pm) {
						t.Errorf("read %s: a removed payment method is not read", r.String())
					}
				}
			}
		})
	}
}
