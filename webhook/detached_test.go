package webhook_test

import (
	"net/http"
	"strings"
	"testing"

	"dunning/internal/stripefixture"
	"dunning/webhook"
	"dunning/workflows"
)

// detachedLive is payment_method.detached as a live endpoint of API version
// 2024-06-20 delivers it: the payment method after the detach, customer
// null, and the customer it left in previous_attributes.
const detachedLive = `{
  "id": "evt_1PqWebhookDetach01",
  "object": "event",
  "api_version": "2024-06-20",
  "created": 1773489600,
  "data": {
    "object": {
      "id": "pm_1PqWebhookCard0001",
      "object": "payment_method",
      "allow_redisplay": "unspecified",
      "billing_details": {"address": {"city": null, "country": "US", "line1": null, "line2": null, "postal_code": "94103", "state": null},
        "email": "kim@example.com", "name": "Kim Example", "phone": null},
      "card": {"brand": "visa", "checks": {"address_line1_check": null, "address_postal_code_check": "pass", "cvc_check": "pass"},
        "country": "US", "display_brand": "visa", "exp_month": 6, "exp_year": 2028, "fingerprint": "WebhookFingerPrt",
        "funding": "credit", "generated_from": null, "last4": "4242", "networks": {"available": ["visa"], "preferred": null},
        "three_d_secure_usage": {"supported": true}, "wallet": null},
      "created": 1770000000,
      "customer": null,
      "livemode": true,
      "metadata": {},
      "type": "card"
    },
    "previous_attributes": {"customer": "cus_PqWebhookDetach1"}
  },
  "livemode": true,
  "pending_webhooks": 1,
  "request": {"id": "req_PqWebhookDetach", "idempotency_key": "9b2f5c1e-detach"},
  "type": "payment_method.detached"
}`

func TestPaymentMethodDetached(t *testing.T) {
	t.Parallel()
	const (
		eventID  = "evt_1PqWebhookDetach01"
		customer = "cus_PqWebhookDetach1"
	)
	started := func(t *testing.T, s *server, r reply, wantCustomer, wantObject string) {
		t.Helper()
		if r.code != http.StatusOK || r.Status != webhook.OutcomeStarted {
			t.Fatalf("answer %d %q (%s), want 200 %q", r.code, r.Status, r.raw, webhook.OutcomeStarted)
		}
		ev := startedEvent(t, s)
		if ev.Type != workflows.EventPaymentMethodDetached || ev.CustomerID != wantCustomer || ev.ObjectID != wantObject || ev.Unreadable != "" {
			t.Errorf("started %+v, want %s of %s for %s", ev, workflows.EventPaymentMethodDetached, wantObject, wantCustomer)
		}
		o := s.temporal.starts()[0].opts
		if v, ok := o.TypedSearchAttributes.GetKeyword(workflows.StripeCustomerIDKey); !ok || v != wantCustomer {
			t.Errorf("search attribute %s = %q (set %v), want %q", workflows.StripeCustomerIDKey.GetName(), v, ok, wantCustomer)
		}
		if v, ok := o.TypedSearchAttributes.GetKeyword(workflows.StripeEventTypeKey); !ok || v != workflows.EventPaymentMethodDetached {
			t.Errorf("search attribute %s = %q (set %v)", workflows.StripeEventTypeKey.GetName(), v, ok)
		}
		if !strings.Contains(o.StaticSummary, wantCustomer) {
			t.Errorf("StaticSummary %q does not name the customer", o.StaticSummary)
		}
	}

	t.Run("as a live endpoint delivers it", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, &fakeTemporal{}, expectLivemode(true))
		r := s.do(t, signed(t, []byte(detachedLive), secret))
		started(t, s, r, customer, "pm_1PqWebhookCard0001")
	})
	t.Run("as send-event builds it", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, &fakeTemporal{}, nil)
		body := event(t, workflows.EventPaymentMethodDetached, stripefixture.Options{Customer: "cus_PqFixtureDetach1", ObjectID: "pm_1PqFixtureCard001"})
		started(t, s, s.do(t, signed(t, body, secret)), "cus_PqFixtureDetach1", "pm_1PqFixtureCard001")
	})
	t.Run("naming no customer: started for ops", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, &fakeTemporal{}, expectLivemode(true))
		body := edited(t, []byte(detachedLive), func(ev map[string]any) {
			delete(ev["data"].(map[string]any), "previous_attributes")
		})
		r := s.do(t, signed(t, body, secret))
		if r.code != http.StatusOK || r.Status != webhook.OutcomeUnreadable {
			t.Fatalf("answer %d %q (%s), want 200 %q", r.code, r.Status, r.raw, webhook.OutcomeUnreadable)
		}
		wantUnreadable(eventID, workflows.EventPaymentMethodDetached, "names no customer")(t, s, r)
	})
}
