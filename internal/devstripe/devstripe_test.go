package devstripe_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"dunning/activities"
	"dunning/config"
	"dunning/internal/devstripe"
	"dunning/worker"
	"dunning/workflows"
)

var created = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// stack is a dev Stripe in front of a recording upstream, and dunning's
// activities talking to it through stripe-go.
type stack struct {
	dev      *devstripe.Server
	acts     *activities.Activities
	url      string // the dev Stripe's base URL
	mu       sync.Mutex
	upstream []string
	sent     []string // method and request URI of every request to the dev Stripe
}

func newStack(t *testing.T) *stack {
	st := &stack{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.mu.Lock()
		st.upstream = append(st.upstream, r.Method+" "+r.URL.Path)
		st.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"cus_fixture","object":"customer","invoice_settings":{"default_payment_method":null},"metadata":{}}`)
	}))
	t.Cleanup(up.Close)
	upURL, _ := url.Parse(up.URL)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st.dev = devstripe.New(upURL, log)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.mu.Lock()
		st.sent = append(st.sent, r.Method+" "+r.URL.RequestURI())
		st.mu.Unlock()
		st.dev.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	st.url = srv.URL
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"STRIPE_API_KEY": "sk_test_123", "STRIPE_API_BASE_URL": srv.URL}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.acts, err = worker.NewActivities(nil, cfg, log); err != nil {
		t.Fatal(err)
	}
	return st
}

// upstreamSaw is what reached the upstream, in order.
func (st *stack) upstreamSaw() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]string(nil), st.upstream...)
}

func failedEvent(customer, intent, pm string) workflows.StripeEvent {
	return workflows.StripeEvent{ID: "evt_f_" + intent, Type: workflows.EventPaymentFailed, Created: created, CustomerID: customer,
		ObjectID: intent, ObjectType: "payment_intent",
		PaymentIntent: &workflows.PaymentIntentInfo{ID: intent, Amount: 4900, Currency: "usd", InvoiceID: "in_1", PaymentMethodID: pm}}
}

// succeededEvent is Stripe's payment_intent.succeeded for intent, shaped
// as failedEvent shapes its failure.
func succeededEvent(customer, intent, pm string) workflows.StripeEvent {
	ev := failedEvent(customer, intent, pm)
	ev.ID, ev.Type = "evt_s_"+intent, workflows.EventPaymentSucceeded
	return ev
}

func attachedEvent(customer, pm string) workflows.StripeEvent {
	return workflows.StripeEvent{ID: "evt_a_" + pm, Type: workflows.EventPaymentMethodAttached, Created: created.Add(time.Minute),
		CustomerID: customer, ObjectID: pm, ObjectType: "payment_method",
		Card: &workflows.CardInfo{ID: pm, Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2030}}
}

func (st *stack) retry(t *testing.T, customer, intent, key string) activities.RetryResult {
	t.Helper()
	res, err := st.acts.RetryPayment(context.Background(), activities.RetryInput{IntentID: intent, StripeCustomerID: customer, IdempotencyKey: key})
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	return res
}

func TestRetryDeclinesUntilTheCardChanges(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))

	if res := st.retry(t, "cus_1", "pi_1", "k1"); res.Outcome != activities.RetryDeclined || res.DeclineCode != "insufficient_funds" {
		t.Fatalf("retry on the failing card: %+v, want declined", res)
	}
	st.dev.Observe(attachedEvent("cus_1", "pm_good"))
	profile, err := st.acts.CustomerProfile(context.Background(), activities.CustomerInput{StripeCustomerID: "cus_1"})
	if err != nil || profile.DefaultPaymentMethod != "pm_good" {
		t.Fatalf("profile %+v %v, want the new card as default", profile, err)
	}
	// The first attempt's key replays its answer to the same request, as
	// Stripe does, and refuses it with the new card.
	res, err := st.acts.RetryPayment(context.Background(), activities.RetryInput{IntentID: "pi_1", StripeCustomerID: "cus_1",
		IdempotencyKey: "k1", PaymentMethodID: "pm_bad"})
	if err != nil || res.Outcome != activities.RetryDeclined {
		t.Fatalf("replayed key: %+v %v, want the first answer again", res, err)
	}
	if _, err := st.acts.RetryPayment(context.Background(), activities.RetryInput{IntentID: "pi_1", StripeCustomerID: "cus_1",
		IdempotencyKey: "k1"}); err == nil || !strings.Contains(err.Error(), "idempotency_error") {
		t.Fatalf("the first attempt's key with the new card: %v, want Stripe's idempotency_error", err)
	}
	if res := st.retry(t, "cus_1", "pi_1", "k2"); res.Outcome != activities.RetrySucceeded || res.PaymentMethod != "pm_good" {
		t.Fatalf("retry on the new card: %+v, want succeeded", res)
	}
	status, err := st.acts.PaymentIntentStatus(context.Background(), activities.IntentInput{IntentID: "pi_1"})
	if err != nil || !status.Paid {
		t.Fatalf("status %+v %v, want paid", status, err)
	}
	if res := st.retry(t, "cus_1", "pi_1", "k3"); res.Outcome != activities.RetryAlreadyPaid {
		t.Fatalf("retry of a paid intent: %+v", res)
	}
}

// A card that declined for want of funds is charged on the same card
// once they are there; a card never seen cannot be approved.
func TestApprovedCardIsCharged(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(failedEvent("cus_3", "pi_3", "pm_short"))
	if res := st.retry(t, "cus_3", "pi_3", "k1"); res.Outcome != activities.RetryDeclined {
		t.Fatalf("retry before the funds: %+v, want declined", res)
	}
	if !st.dev.Approve("pm_short") {
		t.Fatal("Approve of the failed card: not known")
	}
	if res := st.retry(t, "cus_3", "pi_3", "k2"); res.Outcome != activities.RetrySucceeded || res.PaymentMethod != "pm_short" {
		t.Fatalf("retry after the funds: %+v, want succeeded on the same card", res)
	}
	if st.dev.Approve("pm_never_seen") {
		t.Error("Approve of a card no customer has: true")
	}
}

// invoice.paid pays the invoice through the intent it names (or, on API
// versions that name none, its own): Stripe cancels any other of its
// intents still open, and dunning reads that one as paid all the same,
// neither closed nor owed.
func TestPaymentsReportedByEvents(t *testing.T) {
	for _, tc := range []struct {
		name, payer, status string
	}{
		{"through the intent", "pi_2", "succeeded"},
		{"through another intent", "pi_other", "canceled"},
		{"no intent named", "", "succeeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStack(t)
			st.dev.Observe(failedEvent("cus_2", "pi_2", "pm_bad"))
			st.dev.Observe(workflows.StripeEvent{ID: "evt_paid", Type: workflows.EventInvoicePaid, CustomerID: "cus_2", Created: created,
				Invoice: &workflows.InvoiceInfo{ID: "in_1", PaymentIntentID: tc.payer}})
			status, err := st.acts.PaymentIntentStatus(context.Background(), activities.IntentInput{IntentID: "pi_2"})
			if err != nil || status.Status != tc.status || !status.Paid || status.Closed {
				t.Errorf("after invoice.paid: %+v %v, want %s and paid", status, err, tc.status)
			}
			if o := owed(t, st, "cus_2", "pi_2"); o.Verdict != activities.OwedPaid {
				t.Errorf("IntentOwed = %+v, want paid", o)
			}
		})
	}
}

// A legacy card deleted and a payment method detached both leave the
// customer without it.
func TestRemovedCardLeavesNoWayToPay(t *testing.T) {
	for _, typ := range []string{workflows.EventSourceDeleted, workflows.EventPaymentMethodDetached} {
		t.Run(typ, func(t *testing.T) {
			st := newStack(t)
			st.dev.Observe(failedEvent("cus_3", "pi_3", "card_1"))
			st.dev.Observe(workflows.StripeEvent{ID: "evt_del", Type: typ, CustomerID: "cus_3", ObjectID: "card_1", Created: created})
			pms, err := st.acts.PaymentMethods(context.Background(), activities.CustomerInput{StripeCustomerID: "cus_3"})
			if err != nil || pms.DefaultID != "" || len(pms.Methods) != 0 {
				t.Fatalf("payment methods %+v %v, want none", pms, err)
			}
			if res := st.retry(t, "cus_3", "pi_3", "k1"); res.Outcome != activities.RetryNoPaymentMethod {
				t.Fatalf("retry: %+v, want no payment method", res)
			}
		})
	}
}

func TestUnknownObjectsGoUpstream(t *testing.T) {
	st := newStack(t)
	if _, err := st.acts.CustomerProfile(context.Background(), activities.CustomerInput{StripeCustomerID: "cus_unseen"}); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.upstream) != 1 || st.upstream[0] != "GET /v1/customers/cus_unseen" {
		t.Fatalf("upstream saw %v", st.upstream)
	}
}

// A customer the dev Stripe knows has no subscriptions: the card-expiry
// watch reads its cards and subscriptions here, not from the upstream's
// fixtures, which describe another customer.
func TestKnownCustomerHasNoSubscriptions(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(attachedEvent("cus_4", "card_4"))
	pms, err := st.acts.PaymentMethods(context.Background(), activities.CustomerInput{StripeCustomerID: "cus_4", WithSubscriptions: true})
	if err != nil {
		t.Fatal(err)
	}
	if !pms.SubscriptionsRead || len(pms.Subscriptions) != 0 || len(pms.Methods) != 1 {
		t.Fatalf("payment methods %+v, want the card and no subscriptions", pms)
	}
	for _, u := range st.upstreamSaw() {
		if strings.Contains(u, "/v1/subscriptions") {
			t.Errorf("upstream saw %s, want the dev Stripe to answer for its own customer", u)
		}
	}
}
