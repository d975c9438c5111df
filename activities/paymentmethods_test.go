package activities_test

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"dunning/activities"
	"dunning/internal/testenv"
)

// pmListObj is a card PaymentMethod as GET /v1/customers/{id}/payment_methods
// lists it; a legacy Card comes in the same list, as a payment method with
// its card_ ID.
func pmListObj(id string, expMonth, expYear int) obj {
	pm := paymentMethodObj(id)
	card := pm["card"].(obj)
	card["exp_month"], card["exp_year"] = expMonth, expYear
	return pm
}

// What the customer can still pay with is read from the customer's
// PaymentMethods, not only from legacy sources: every card listed counts,
// an expired one as expired.
func TestPaymentMethodsListsTheCustomersPaymentMethods(t *testing.T) {
	f := newFakeStripe(t)
	f.on(http.MethodGet, pathCustomer, ok(customer(defaultPM, "", nil)))
	path := pathCustomer + "/payment_methods"
	f.on(http.MethodGet, path, ok(obj{"object": "list", "url": path, "has_more": false, "data": []obj{
		pmListObj(defaultPM, 12, 2030),
		pmListObj("pm_1OdunningExpired", 1, 2020),
		pmListObj("card_1OdunningOld", 3, 2029),
	}}))
	acts := stripeActivities(t, fakeKey, f.URL, "")
	got, err := acts.PaymentMethods(context.Background(), activities.CustomerInput{StripeCustomerID: customerID})
	if err != nil {
		t.Fatalf("PaymentMethods: %v", err)
	}
	if got.DefaultID != defaultPM || got.Usable != 2 || len(got.Methods) != 3 {
		t.Fatalf("PaymentMethods = %+v, want default %s, 3 methods, 2 usable", got, defaultPM)
	}
	expired := map[string]bool{}
	for _, m := range got.Methods {
		expired[m.ID] = m.Expired
	}
	if expired[defaultPM] || !expired["pm_1OdunningExpired"] || expired["card_1OdunningOld"] {
		t.Errorf("expired %v, want only pm_1OdunningExpired", expired)
	}
	lists := f.seen.to(http.MethodGet, path)
	if len(lists) != 1 || lists[0].Query.Get("type") != "card" {
		t.Errorf("list requests %v, want one for the customer's cards", lists)
	}
}

// After the last card is detached Stripe lists nothing and the customer
// has no default: nothing is usable.
func TestPaymentMethodsNoneLeft(t *testing.T) {
	f := newFakeStripe(t)
	f.on(http.MethodGet, pathCustomer, ok(customer("", "", nil)))
	path := pathCustomer + "/payment_methods"
	f.on(http.MethodGet, path, ok(obj{"object": "list", "url": path, "has_more": false, "data": []obj{}}))
	got, err := stripeActivities(t, fakeKey, f.URL, "").PaymentMethods(context.Background(), activities.CustomerInput{StripeCustomerID: customerID})
	if err != nil || got.DefaultID != "" || got.Usable != 0 || len(got.Methods) != 0 || got.DryRun {
		t.Fatalf("PaymentMethods = %+v, %v; want nothing usable", got, err)
	}
}

// listedSubscription is a Subscription (subscriptionObj) as GET
// /v1/subscriptions lists it: its default_payment_method and
// default_source are IDs, or null.
func listedSubscription(id, status string, defaultPM, defaultSource any) obj {
	sub := subscriptionObj(defaultPM)
	sub["id"], sub["status"], sub["default_source"] = id, status, defaultSource
	return sub
}

// Asked for, the customer's subscriptions come with the payment method each
// names for itself (default_payment_method, else default_source, else
// none: the customer's default); those that will never charge again are
// left out.
func TestPaymentMethodsListsTheSubscriptionsPayers(t *testing.T) {
	f := newFakeStripe(t)
	f.on(http.MethodGet, pathCustomer, ok(customer(defaultPM, "", nil)))
	path := pathCustomer + "/payment_methods"
	f.on(http.MethodGet, path, ok(obj{"object": "list", "url": path, "has_more": false, "data": []obj{pmListObj(defaultPM, 12, 2030)}}))
	f.on(http.MethodGet, "/v1/subscriptions", ok(obj{"object": "list", "url": "/v1/subscriptions", "has_more": false, "data": []obj{
		listedSubscription("sub_own", "active", "pm_1OdunningOwn", nil),
		listedSubscription("sub_source", "past_due", nil, "card_1OdunningOld"),
		listedSubscription("sub_fallback", "trialing", nil, nil),
		listedSubscription("sub_gone", "incomplete_expired", "pm_1OdunningOwn", nil),
		listedSubscription("sub_canceled", "canceled", "pm_1OdunningOwn", nil),
	}}))
	acts := stripeActivities(t, fakeKey, f.URL, "")
	got, err := acts.PaymentMethods(context.Background(), activities.CustomerInput{StripeCustomerID: customerID, WithSubscriptions: true})
	if err != nil {
		t.Fatalf("PaymentMethods: %v", err)
	}
	want := []activities.SubscriptionPayer{
		{ID: "sub_own", Status: "active", PaymentMethodID: "pm_1OdunningOwn"},
		{ID: "sub_source", Status: "past_due", PaymentMethodID: "card_1OdunningOld"},
		{ID: "sub_fallback", Status: "trialing"},
	}
	if !got.SubscriptionsRead || got.SubscriptionsUnread != "" || !reflect.DeepEqual(got.Subscriptions, want) {
		t.Fatalf("PaymentMethods = %+v, want subscriptions %+v", got, want)
	}
	lists := f.seen.to(http.MethodGet, "/v1/subscriptions")
	if len(lists) != 1 || lists[0].Query.Get("customer") != customerID || lists[0].Query.Has("status") {
		t.Errorf("list requests %v, want one for the customer's subscriptions not canceled (no status)", lists)
	}

	// Not asked for: not listed.
	f.seen = requests{}
	if got, err = acts.PaymentMethods(context.Background(), activities.CustomerInput{StripeCustomerID: customerID}); err != nil ||
		got.SubscriptionsRead || len(got.Subscriptions) != 0 {
		t.Fatalf("PaymentMethods = %+v, %v; want no subscriptions", got, err)
	}
	if n := len(f.seen.to(http.MethodGet, "/v1/subscriptions")); n != 0 {
		t.Errorf("%d subscription lists, want none", n)
	}
}

// A restricted key without the subscriptions permission: Stripe refuses
// the list for good. The cards are still read, and the refusal is kept
// for whoever judges them; an outage of the list is retried.
func TestPaymentMethodsSubscriptionsRefusedOrDown(t *testing.T) {
	f := newFakeStripe(t)
	f.on(http.MethodGet, pathCustomer, ok(customer(defaultPM, "", nil)))
	path := pathCustomer + "/payment_methods"
	f.on(http.MethodGet, path, ok(obj{"object": "list", "url": path, "has_more": false, "data": []obj{pmListObj(defaultPM, 12, 2030)}}))
	f.on(http.MethodGet, "/v1/subscriptions",
		answer{http.StatusForbidden, stripeError("invalid_request_error", "", "",
			"The provided key 'rk_test_***' does not have the required permissions for this endpoint on account 'acct_1'.", nil)},
		answer{http.StatusInternalServerError, stripeError("api_error", "", "", "An unknown error occurred", nil)})
	acts := stripeActivities(t, fakeKey, f.URL, "")
	in := activities.CustomerInput{StripeCustomerID: customerID, WithSubscriptions: true}
	got, err := acts.PaymentMethods(context.Background(), in)
	if err != nil {
		t.Fatalf("PaymentMethods: %v", err)
	}
	if got.SubscriptionsRead || !strings.Contains(got.SubscriptionsUnread, "403") || got.DefaultID != defaultPM || len(got.Methods) != 1 {
		t.Fatalf("PaymentMethods = %+v, want the cards and the refusal of the subscriptions", got)
	}
	_, err = acts.PaymentMethods(context.Background(), in)
	wantRetryable(t, err)
}

// stripe-mock, which checks each request against Stripe's OpenAPI spec,
// accepts the subscriptions list as PaymentMethods sends it, and its
// fixture subscription is read as Stripe serves it.
func TestPaymentMethodsWithSubscriptionsStripeMock(t *testing.T) {
	mock := testenv.StartStripeMock(t)
	fx := fixture(t, mock, "/v1/subscriptions?customer="+customerID)
	data, _ := fx["data"].([]any)
	if len(data) == 0 {
		t.Fatalf("precondition: stripe-mock lists no subscription: %v", fx)
	}
	first, _ := data[0].(map[string]any)
	base, seen := stripeMockProxy(t, mock, nil)
	acts := stripeActivities(t, testenv.StripeMockKey, base, "")
	got, err := acts.PaymentMethods(context.Background(), activities.CustomerInput{StripeCustomerID: customerID, WithSubscriptions: true})
	if err != nil {
		t.Fatalf("PaymentMethods: %v", err)
	}
	wantAccepted(t, seen)
	lists := seen.to(http.MethodGet, "/v1/subscriptions")
	if len(lists) != 1 || lists[0].Query.Get("customer") != customerID {
		t.Fatalf("requests %v, want one subscriptions list for the customer", seen.list())
	}
	if !got.SubscriptionsRead {
		t.Fatalf("PaymentMethods = %+v, want the subscriptions read", got)
	}
	status, _ := first["status"].(string)
	if status == "canceled" || status == "incomplete_expired" {
		if len(got.Subscriptions) != 0 {
			t.Errorf("subscriptions %+v, want the %s fixture left out", got.Subscriptions, status)
		}
		return
	}
	want := firstNonEmptyID(idOf(first["default_payment_method"]), idOf(first["default_source"]))
	if len(got.Subscriptions) != 1 || got.Subscriptions[0].ID != idOf(first) || got.Subscriptions[0].Status != status ||
		got.Subscriptions[0].PaymentMethodID != want {
		t.Errorf("subscriptions %+v, want %s (%s) paying with %q", got.Subscriptions, idOf(first), status, want)
	}
}

func firstNonEmptyID(ids ...string) string {
	for _, id := range ids {
		if id != "" {
			return id
		}
	}
	return ""
}
