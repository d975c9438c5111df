package activities_test

import (
	"context"
	"net/http"
	"testing"

	"dunning/activities"
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
