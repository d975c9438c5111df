package devstripe_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"dunning/activities"
	"dunning/internal/devstripe"
	"dunning/workflows"
)

func cardEvent(customer, pm, brand string) workflows.StripeEvent {
	ev := attachedEvent(customer, pm)
	ev.Card.Brand = brand
	return ev
}

// The default decline is as before (insufficient_funds), in the newer
// API's shape: Stripe's advice, the network's code, the charge, and the
// card as an object with its fingerprint; on a Mastercard, its Merchant
// Advice Code.
func TestDefaultDeclineHasTheNewerShape(t *testing.T) {
	for _, tc := range []struct {
		brand string
		mac   string
	}{{"visa", ""}, {"mastercard", "02"}} {
		t.Run(tc.brand, func(t *testing.T) {
			st := newStack(t)
			st.dev.Observe(cardEvent("cus_1", "pm_card", tc.brand))
			st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_card"))

			res := st.retry(t, "cus_1", "pi_1", "k1")
			d := res.Decline
			if res.Outcome != activities.RetryDeclined || res.DeclineCode != "insufficient_funds" || res.Message != "Your card has insufficient funds." {
				t.Fatalf("retry = %+v, want declined with insufficient_funds as before", res)
			}
			want := activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", AdviceCode: "try_again_later",
				NetworkAdviceCode: tc.mac, NetworkDeclineCode: "51", OutcomeReason: "insufficient_funds", PaymentMethod: "pm_card",
				Fingerprint: st.dev.Fingerprint("pm_card"), Charge: d.Charge, IntentStatus: "requires_payment_method", Created: d.Created}
			if d != want || d.Charge == "" || d.Created.IsZero() {
				t.Errorf("Decline =\n %+v\nwant\n %+v", d, want)
			}
			if v := activities.ClassifyDecline(d); v.Class != activities.DeclineSoft {
				t.Errorf("ClassifyDecline = %+v, want soft", v)
			}
			// The charge was read from the dev Stripe, and Stripe keeps the
			// decline on the intent.
			if n := len(st.sentTo(t, http.MethodGet, "/v1/charges/"+d.Charge)); n != 1 {
				t.Errorf("charge reads = %d, want 1", n)
			}
			// The decline's time is the charge's created, Stripe's clock.
			if _, ch := st.call(t, http.MethodGet, "/v1/charges/"+d.Charge, nil); ch["created"] != float64(d.Created.Unix()) {
				t.Errorf("decline created %v, want the charge's created %v", d.Created.Unix(), ch["created"])
			}
			_, pi := st.call(t, http.MethodGet, "/v1/payment_intents/pi_1", nil)
			lpe, _ := pi["last_payment_error"].(map[string]any)
			pm, _ := lpe["payment_method"].(map[string]any)
			card, _ := pm["card"].(map[string]any)
			if lpe["decline_code"] != "insufficient_funds" || lpe["charge"] != d.Charge || card["fingerprint"] != d.Fingerprint {
				t.Errorf("last_payment_error = %v, want the decline with the card and its fingerprint", lpe)
			}
			if up := st.upstreamSaw(); len(up) != 0 {
				t.Errorf("upstream saw %v, want the dev Stripe to answer for its own charges", up)
			}
		})
	}
}

// Tests make a card decline as they need.
func TestSetDecline(t *testing.T) {
	for _, tc := range []struct {
		name    string
		decline activities.Decline
		outcome string
		want    activities.DeclineVerdict
	}{
		{"stolen, and Mastercard says never", activities.Decline{DeclineCode: "stolen_card", NetworkAdviceCode: "03"},
			activities.RetryDeclined, activities.DeclineVerdict{Class: activities.DeclineStop, Reason: "decline_code stolen_card"}},
		{"Stripe blocks a card declined before", activities.Decline{DeclineCode: "generic_decline", OutcomeReason: "previously_declined_do_not_retry"},
			activities.RetryDeclined, activities.DeclineVerdict{Class: activities.DeclineStop, Reason: "outcome_reason previously_declined_do_not_retry"}},
		{"retry after two days", activities.Decline{DeclineCode: "do_not_honor", AdviceCode: "try_again_later", NetworkAdviceCode: "26"},
			activities.RetryDeclined, activities.DeclineVerdict{Class: activities.DeclineRetryAfter, Reason: "network_advice_code 26", RetryAfter: 48 * time.Hour}},
		{"expired", activities.Decline{Code: "expired_card", DeclineCode: "expired_card"},
			activities.RetryDeclined, activities.DeclineVerdict{Class: activities.DeclineNewData, Reason: "decline_code expired_card"}},
		{"authentication", activities.Decline{Code: "authentication_required", DeclineCode: "authentication_required", IntentStatus: "requires_action"},
			activities.RetryRequiresAction, activities.DeclineVerdict{Class: activities.DeclineAuthentication, Reason: "decline_code authentication_required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStack(t)
			st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))
			st.dev.Observe(attachedEvent("cus_1", "pm_good"))
			// A working card declines as it is told.
			st.dev.SetDecline("pm_good", tc.decline)

			res := st.retry(t, "cus_1", "pi_1", "k1")
			if res.Outcome != tc.outcome || res.PaymentMethod != "pm_good" {
				t.Fatalf("retry = %+v, want %s on pm_good", res, tc.outcome)
			}
			d := res.Decline
			if d.DeclineCode != tc.decline.DeclineCode || d.NetworkAdviceCode != tc.decline.NetworkAdviceCode ||
				d.AdviceCode != tc.decline.AdviceCode || d.Fingerprint != st.dev.Fingerprint("pm_good") {
				t.Errorf("Decline = %+v, want what was set, with the card's fingerprint", d)
			}
			if tc.decline.OutcomeReason != "" && d.OutcomeReason != tc.decline.OutcomeReason {
				t.Errorf("OutcomeReason = %q, want %q from the charge", d.OutcomeReason, tc.decline.OutcomeReason)
			}
			if v := activities.ClassifyDecline(d); v != tc.want {
				t.Errorf("ClassifyDecline = %+v, want %+v", v, tc.want)
			}
			// The key replays the same answer.
			if again := st.retry(t, "cus_1", "pi_1", "k1"); again.Decline.Charge != d.Charge {
				t.Errorf("replayed key: %+v, want the first answer", again)
			}
			st.dev.SetDecline("pm_good", activities.Decline{})
			if res := st.retry(t, "cus_1", "pi_1", "k2"); res.Outcome != activities.RetrySucceeded {
				t.Errorf("after the decline was cleared: %+v, want succeeded", res)
			}
		})
	}
}

// A card renewed or replaced by an event works again.
func TestCardUpdateClearsTheDecline(t *testing.T) {
	st := newStack(t)
	st.dev.SetDecline("pm_bad", activities.Decline{DeclineCode: "expired_card", Code: "expired_card"})
	st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))
	if res := st.retry(t, "cus_1", "pi_1", "k1"); res.DeclineCode != "expired_card" {
		t.Fatalf("retry = %+v, want the decline set before the card was seen", res)
	}
	renewed := attachedEvent("cus_1", "pm_bad")
	renewed.Type = workflows.EventPaymentMethodAutoUpd
	st.dev.Observe(renewed)
	if res := st.retry(t, "cus_1", "pi_1", "k2"); res.Outcome != activities.RetrySucceeded {
		t.Fatalf("retry after the card was renewed = %+v, want succeeded", res)
	}
}

func TestFingerprints(t *testing.T) {
	a, b := devstripe.New(nil, nil), devstripe.New(nil, nil)
	if fa, fb := a.Fingerprint("pm_1"), b.Fingerprint("pm_1"); fa != fb || len(fa) != 16 {
		t.Errorf("fingerprints of pm_1: %q and %q, want one stable 16-character fingerprint", fa, fb)
	}
	if a.Fingerprint("pm_1") == a.Fingerprint("pm_2") {
		t.Error("two cards share a fingerprint")
	}
	a.SetFingerprint("pm_2", a.Fingerprint("pm_1"))
	if a.Fingerprint("pm_1") != a.Fingerprint("pm_2") {
		t.Error("SetFingerprint did not give pm_2 the fingerprint of pm_1")
	}

	st := newStack(t)
	st.dev.Observe(attachedEvent("cus_1", "pm_1"))
	legacy := attachedEvent("cus_1", "card_1")
	legacy.Type = workflows.EventSourceCreated
	st.dev.Observe(legacy)
	for path, want := range map[string]string{
		"/v1/payment_methods/pm_1":           st.dev.Fingerprint("pm_1"),
		"/v1/customers/cus_1/sources/card_1": st.dev.Fingerprint("card_1"),
	} {
		status, obj := st.call(t, http.MethodGet, path, nil)
		fp := obj["fingerprint"]
		if card, ok := obj["card"].(map[string]any); ok {
			fp = card["fingerprint"]
		}
		if status != http.StatusOK || fp != want {
			t.Errorf("GET %s: %d %v, want the card with fingerprint %s", path, status, obj, want)
		}
	}
	// The owed check reads the chosen card's fingerprint from the dev
	// Stripe, legacy cards under the customer's sources.
	st.dev.Observe(workflows.StripeEvent{ID: "evt_f", Type: workflows.EventPaymentFailed, Created: created, CustomerID: "cus_1",
		PaymentIntent: &workflows.PaymentIntentInfo{ID: "pi_1", Amount: 4900, Currency: "usd", PaymentMethodID: "card_1"}})
	o, err := st.acts.IntentOwed(context.Background(), activities.OwedInput{IntentID: "pi_1", StripeCustomerID: "cus_1"})
	if err != nil || o.PaymentMethod != "card_1" || o.Fingerprint != st.dev.Fingerprint("card_1") {
		t.Errorf("IntentOwed = %+v, %v; want card_1 with its fingerprint", o, err)
	}
	st.call(t, http.MethodGet, "/v1/payment_methods/pm_unseen", url.Values{})
	if up := st.upstreamSaw(); len(up) != 1 || up[0] != "GET /v1/payment_methods/pm_unseen" {
		t.Errorf("upstream saw %v, want only the unknown payment method", up)
	}
}
