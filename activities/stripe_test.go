package activities_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"dunning/activities"
	"dunning/config"
	"dunning/internal/testenv"
	"dunning/worker"
)

const (
	intentID   = "pi_3OdunningRetry1"
	customerID = "cus_PdunningAcme01"
	retryKey   = "recovery-cus_PdunningAcme01/pi_3OdunningRetry1/retry-2"
	fakeKey    = "sk_test_dunning_fake"
	// metadataKey is the customer metadata key that holds the product's
	// customer ID, as CUSTOMER_ID_METADATA_KEY names it.
	metadataKey = "account_id"
)

func retryInput() activities.RetryInput {
	return activities.RetryInput{IntentID: intentID, StripeCustomerID: customerID, IdempotencyKey: retryKey}
}

// stripeActivities returns the activities with the Stripe client that the
// worker builds for a Stripe API at baseURL.
func stripeActivities(t *testing.T, apiKey, baseURL, metadataKey string) *activities.Activities {
	t.Helper()
	acts, err := worker.NewActivities(nil, config.Config{
		StripeAPIKey:          apiKey,
		StripeAPIBaseURL:      baseURL,
		CustomerIDMetadataKey: metadataKey,
	}, quietLogger())
	if err != nil {
		t.Fatalf("NewActivities: %v", err)
	}
	if acts.Stripe == nil {
		t.Fatal("NewActivities built no Stripe client")
	}
	return acts
}

// ---- against stripe-mock ----

// stripeMockProxy sits in front of stripe-mock and records every request
// with stripe-mock's answer. patch, when not nil, may change a successful
// answer's JSON object before the client sees it.
func stripeMockProxy(t *testing.T, mockURL string, patch func(r *http.Request, obj map[string]any)) (string, *requests) {
	t.Helper()
	target, err := url.Parse(mockURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	if patch != nil {
		proxy.ModifyResponse = func(resp *http.Response) error {
			if resp.StatusCode != http.StatusOK {
				return nil
			}
			raw, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			var obj map[string]any
			if err := json.Unmarshal(raw, &obj); err != nil {
				return fmt.Errorf("stripe-mock answer is not a JSON object: %w", err)
			}
			patch(resp.Request, obj)
			if raw, err = json.Marshal(obj); err != nil {
				return err
			}
			resp.Body = io.NopCloser(bytes.NewReader(raw))
			resp.ContentLength = int64(len(raw))
			resp.Header.Set("Content-Length", strconv.Itoa(len(raw)))
			return nil
		}
	}
	seen := &requests{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := read(t, r)
		r.Header.Del("Accept-Encoding") // plain JSON, so that patch can read it
		sw := &statusWriter{ResponseWriter: w}
		proxy.ServeHTTP(sw, r)
		rec.Status, rec.Answer = sw.status, sw.body.Bytes()
		seen.add(rec)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, seen
}

// wantAccepted fails unless stripe-mock accepted every request: one that
// does not match Stripe's API would not work against Stripe either.
func wantAccepted(t *testing.T, seen *requests) {
	t.Helper()
	all := seen.list()
	if len(all) == 0 {
		t.Fatal("no request reached stripe-mock")
	}
	for _, r := range all {
		if r.Status < 200 || r.Status > 299 {
			t.Errorf("stripe-mock answered %s with %d: Stripe would reject it", r, r.Status)
		}
	}
}

// fixture reads an object as stripe-mock serves it, bypassing the client.
func fixture(t *testing.T, mockURL, path string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, mockURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testenv.StripeMockKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s from stripe-mock: %v", path, err)
	}
	defer resp.Body.Close()
	var obj map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&obj); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s from stripe-mock: %d, %v", path, resp.StatusCode, err)
	}
	return obj
}

// idOf returns the ID of an expandable field: a string or an object.
func idOf(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		id, _ := v["id"].(string)
		return id
	}
	return ""
}

func TestStripeMock(t *testing.T) {
	mock := testenv.StartStripeMock(t)
	ctx := context.Background()
	customerPath := "/v1/customers/" + customerID
	intentPath := "/v1/payment_intents/" + intentID
	confirmPath := intentPath + "/confirm"

	t.Run("CustomerProfile falls back to the Stripe ID", func(t *testing.T) {
		fx := fixture(t, mock, customerPath)
		if md, _ := fx["metadata"].(map[string]any); md[metadataKey] != nil {
			t.Fatalf("precondition: stripe-mock's customer fixture has metadata %s=%v", metadataKey, md[metadataKey])
		}
		wantPM := ""
		if is, _ := fx["invoice_settings"].(map[string]any); is != nil {
			wantPM = idOf(is["default_payment_method"])
		}
		if wantPM == "" {
			wantPM = idOf(fx["default_source"])
		}

		base, seen := stripeMockProxy(t, mock, nil)
		acts := stripeActivities(t, testenv.StripeMockKey, base, metadataKey)
		got, err := acts.CustomerProfile(ctx, activities.CustomerInput{StripeCustomerID: customerID})
		if err != nil {
			t.Fatalf("CustomerProfile: %v", err)
		}
		want := activities.CustomerProfile{CustomerID: customerID, DefaultPaymentMethod: wantPM}
		if got != want {
			t.Errorf("CustomerProfile = %+v, want %+v", got, want)
		}
		wantAccepted(t, seen)
		if n := len(seen.to(http.MethodGet, customerPath)); n != 1 || len(seen.list()) != 1 {
			t.Errorf("requests = %v, want one GET %s", seen.list(), customerPath)
		}
	})

	t.Run("CustomerProfile reads the metadata key", func(t *testing.T) {
		base, seen := stripeMockProxy(t, mock, func(r *http.Request, obj map[string]any) {
			if r.Method == http.MethodGet && r.URL.Path == customerPath {
				obj["metadata"] = map[string]any{metadataKey: "acct-42", "plan": "team"}
			}
		})
		acts := stripeActivities(t, testenv.StripeMockKey, base, metadataKey)
		got, err := acts.CustomerProfile(ctx, activities.CustomerInput{StripeCustomerID: customerID})
		if err != nil {
			t.Fatalf("CustomerProfile: %v", err)
		}
		if got.CustomerID != "acct-42" || got.DryRun {
			t.Errorf("CustomerProfile = %+v, want CustomerID acct-42 from metadata", got)
		}
		wantAccepted(t, seen)
	})

	t.Run("PaymentIntentStatus", func(t *testing.T) {
		status, _ := fixture(t, mock, intentPath)["status"].(string)
		if status == "" {
			t.Fatal("precondition: stripe-mock's payment intent fixture has no status")
		}
		base, seen := stripeMockProxy(t, mock, nil)
		acts := stripeActivities(t, testenv.StripeMockKey, base, "")
		got, err := acts.PaymentIntentStatus(ctx, activities.IntentInput{IntentID: intentID})
		if err != nil {
			t.Fatalf("PaymentIntentStatus: %v", err)
		}
		want := activities.IntentStatus{Status: status, Paid: status == "succeeded", Closed: status == "canceled"}
		if got != want {
			t.Errorf("PaymentIntentStatus = %+v, want %+v", got, want)
		}
		wantAccepted(t, seen)
		if n := len(seen.to(http.MethodGet, intentPath)); n != 1 {
			t.Errorf("requests = %v, want one GET %s", seen.list(), intentPath)
		}
	})

	t.Run("RetryPayment without a payment method", func(t *testing.T) {
		intent := fixture(t, mock, intentPath)
		cus := fixture(t, mock, customerPath)
		is, _ := cus["invoice_settings"].(map[string]any)
		if intent["status"] != "requires_payment_method" || idOf(is["default_payment_method"]) != "" || idOf(cus["default_source"]) != "" {
			t.Fatalf("precondition: stripe-mock's fixtures changed: intent status %v, customer invoice_settings %v, default_source %v",
				intent["status"], is, cus["default_source"])
		}
		base, seen := stripeMockProxy(t, mock, nil)
		acts := stripeActivities(t, testenv.StripeMockKey, base, "")
		got, err := acts.RetryPayment(ctx, retryInput())
		if err != nil {
			t.Fatalf("RetryPayment: %v", err)
		}
		want := activities.RetryResult{Outcome: activities.RetryNoPaymentMethod, Status: "requires_payment_method"}
		if got != want {
			t.Errorf("RetryPayment = %+v, want %+v", got, want)
		}
		wantAccepted(t, seen)
		if c := seen.to(http.MethodPost, confirmPath); len(c) != 0 {
			t.Errorf("confirmed without a payment method: %v", c)
		}
	})

	t.Run("RetryPayment confirm is accepted", func(t *testing.T) {
		// stripe-mock's customer has no default payment method; give it
		// one, so that the confirm goes to stripe-mock to be checked.
		const pm = "pm_card_visa"
		base, seen := stripeMockProxy(t, mock, func(r *http.Request, obj map[string]any) {
			if r.Method == http.MethodGet && r.URL.Path == customerPath {
				is, _ := obj["invoice_settings"].(map[string]any)
				if is == nil {
					is = map[string]any{}
					obj["invoice_settings"] = is
				}
				is["default_payment_method"] = pm
			}
		})
		acts := stripeActivities(t, testenv.StripeMockKey, base, "")
		got, err := acts.RetryPayment(ctx, retryInput())
		if err != nil {
			t.Fatalf("RetryPayment: %v", err)
		}
		wantAccepted(t, seen)
		conf := seen.to(http.MethodPost, confirmPath)
		if len(conf) != 1 {
			t.Fatalf("requests = %v, want one POST %s", seen.list(), confirmPath)
		}
		wantConfirm(t, conf[0], pm, retryKey)
		var answered struct{ Status string }
		if err := json.Unmarshal(conf[0].Answer, &answered); err != nil || answered.Status == "" {
			t.Fatalf("stripe-mock's confirm answer has no status (%v): %s", err, conf[0].Answer)
		}
		confirmed := answered.Status
		if got.PaymentMethod != pm || got.Status != confirmed || got.Outcome == "" {
			t.Errorf("RetryPayment = %+v, want payment method %s and the confirmed intent's status %q", got, pm, confirmed)
		}
		if confirmed == "requires_payment_method" && got.Outcome != activities.RetryDeclined {
			t.Errorf("outcome = %q for a confirm that left the intent in requires_payment_method, want %q", got.Outcome, activities.RetryDeclined)
		}
	})

	t.Run("RetryPayment without a customer is permanent", func(t *testing.T) {
		base, seen := stripeMockProxy(t, mock, nil)
		acts := stripeActivities(t, testenv.StripeMockKey, base, "")
		in := retryInput()
		in.StripeCustomerID = ""
		_, err := acts.RetryPayment(ctx, in)
		if _, ok := nonRetryable(err); !ok {
			t.Fatalf("err = %v, want a non-retryable application error", err)
		}
		if c := seen.to(http.MethodPost, confirmPath); len(c) != 0 {
			t.Errorf("confirmed without a customer: %v", c)
		}
	})
}

// wantConfirm checks a confirm request: off-session, with the payment
// method, under the idempotency key, and nothing else.
func wantConfirm(t *testing.T, r request, pm, key string) {
	t.Helper()
	want := url.Values{"off_session": {"true"}, "payment_method": {pm}}
	if !reflect.DeepEqual(r.Form, want) {
		t.Errorf("confirm form = %v (body %q), want %v", r.Form, r.Body, want)
	}
	if r.IdempotencyKey != key {
		t.Errorf("confirm Idempotency-Key = %q, want %q", r.IdempotencyKey, key)
	}
}

// ---- against a fake Stripe, for answers stripe-mock never gives ----

// answer is one response of the fake Stripe: body is a JSON string, or a
// value to encode.
type answer struct {
	status int
	body   any
}

func ok(body any) answer { return answer{http.StatusOK, body} }

// fakeStripe answers like Stripe's API from a script: each route gives
// its answers in turn, the last one repeating. Requests off the script
// fail the test.
type fakeStripe struct {
	t      *testing.T
	mu     sync.Mutex
	routes map[string][]answer
	seen   requests
	URL    string
}

func newFakeStripe(t *testing.T) *fakeStripe {
	t.Helper()
	f := &fakeStripe{t: t, routes: map[string][]answer{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *fakeStripe) on(method, path string, answers ...answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[method+" "+path] = answers
}

func (f *fakeStripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := read(f.t, r)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_fake")
	if rec.IdempotencyKey != "" {
		w.Header().Set("Idempotency-Key", rec.IdempotencyKey)
	}
	a := f.next(r, rec)
	rec.Status = a.status
	f.seen.add(rec)
	w.WriteHeader(a.status)
	switch b := a.body.(type) {
	case string:
		io.WriteString(w, b)
	default:
		if err := json.NewEncoder(w).Encode(b); err != nil {
			f.t.Errorf("encode answer: %v", err)
		}
	}
}

func (f *fakeStripe) next(r *http.Request, rec request) answer {
	if got := r.Header.Get("Authorization"); got != "Bearer "+fakeKey {
		f.t.Errorf("%s: Authorization = %q, want the API key", rec, got)
		return answer{http.StatusUnauthorized, stripeError("invalid_request_error", "", "", "Invalid API Key provided.", nil)}
	}
	if r.Header.Get("Stripe-Version") == "" {
		f.t.Errorf("%s: no Stripe-Version header", rec)
	}
	if r.Method == http.MethodPost && rec.Form == nil {
		f.t.Errorf("%s: body is not form-encoded (Content-Type %q)", rec, r.Header.Get("Content-Type"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	answers := f.routes[r.Method+" "+rec.Path]
	if len(answers) == 0 {
		f.t.Errorf("unexpected request %s", rec)
		return answer{http.StatusNotFound, stripeError("invalid_request_error", "", "",
			fmt.Sprintf("Unrecognized request URL (%s: %s).", r.Method, rec.Path), nil)}
	}
	a := answers[0]
	if len(answers) > 1 {
		f.routes[r.Method+" "+rec.Path] = answers[1:]
	}
	return a
}

type obj = map[string]any

// intent is a PaymentIntent as Stripe's API returns it.
func intent(status string) obj {
	pi := obj{
		"id": intentID, "object": "payment_intent", "amount": 4900, "amount_capturable": 0,
		"amount_received": 0, "capture_method": "automatic", "client_secret": intentID + "_secret_x",
		"confirmation_method": "automatic", "created": 1700000000, "currency": "usd",
		"customer": customerID, "description": "Subscription update", "invoice": "in_1OdunningInv",
		"last_payment_error": nil, "livemode": false, "metadata": obj{}, "next_action": nil,
		"payment_method": nil, "payment_method_types": []string{"card"}, "status": status,
	}
	switch status {
	case "succeeded":
		pi["amount_received"] = 4900
		pi["payment_method"] = "pm_1OdunningCard"
	case "requires_action":
		pi["next_action"] = obj{"type": "use_stripe_sdk", "use_stripe_sdk": obj{}}
	}
	return pi
}

func declinedIntent(declineCode, message string) obj {
	pi := intent("requires_payment_method")
	pi["last_payment_error"] = obj{
		"type": "card_error", "code": "card_declined", "decline_code": declineCode, "message": message,
		"doc_url": "https://stripe.com/docs/error-codes/card-declined",
	}
	return pi
}

// customer is a Customer as Stripe's API returns it.
func customer(defaultPM, defaultSource string, metadata obj) obj {
	if metadata == nil {
		metadata = obj{}
	}
	c := obj{
		"id": customerID, "object": "customer", "balance": 0, "created": 1690000000, "currency": "usd",
		"default_source": nil, "delinquent": true, "email": "billing@acme.test", "livemode": false,
		"metadata": metadata, "name": "Acme",
		"invoice_settings": obj{"custom_fields": nil, "default_payment_method": nil, "footer": nil, "rendering_options": nil},
	}
	if defaultPM != "" {
		c["invoice_settings"].(obj)["default_payment_method"] = defaultPM
	}
	if defaultSource != "" {
		c["default_source"] = defaultSource
	}
	return c
}

// stripeError is an error body as Stripe's API returns it.
func stripeError(typ, code, declineCode, message string, pi obj) obj {
	e := obj{"type": typ, "message": message}
	if code != "" {
		e["code"] = code
		e["doc_url"] = "https://stripe.com/docs/error-codes/" + strings.ReplaceAll(code, "_", "-")
	}
	if declineCode != "" {
		e["decline_code"] = declineCode
	}
	if pi != nil {
		e["payment_intent"] = pi
	}
	return obj{"error": e}
}

const (
	defaultPM    = "pm_1OdunningCard"
	pathIntent   = "/v1/payment_intents/" + intentID
	pathConfirm  = pathIntent + "/confirm"
	pathCustomer = "/v1/customers/" + customerID
)

// retryFake is a fake Stripe with an open intent and a customer with a
// default payment method; confirm answers as given.
func retryFake(t *testing.T, confirm ...answer) (*fakeStripe, *activities.Activities) {
	t.Helper()
	f := newFakeStripe(t)
	f.on(http.MethodGet, pathIntent, ok(intent("requires_payment_method")))
	f.on(http.MethodGet, pathCustomer, ok(customer(defaultPM, "card_1OdunningOld", nil)))
	f.on(http.MethodPost, pathConfirm, confirm...)
	return f, stripeActivities(t, fakeKey, f.URL, "")
}

func TestRetryPaymentConfirmsWithDefaultPaymentMethod(t *testing.T) {
	f, acts := retryFake(t, ok(intent("succeeded")))
	got, err := acts.RetryPayment(context.Background(), retryInput())
	if err != nil {
		t.Fatalf("RetryPayment: %v", err)
	}
	want := activities.RetryResult{Outcome: activities.RetrySucceeded, Status: "succeeded", PaymentMethod: defaultPM, AmountReceived: 4900}
	if got != want {
		t.Errorf("RetryPayment = %+v, want %+v", got, want)
	}
	var order []string
	for _, r := range f.seen.list() {
		order = append(order, r.String())
	}
	wantOrder := []string{"GET " + pathIntent, "GET " + pathCustomer, "POST " + pathConfirm}
	if !reflect.DeepEqual(order, wantOrder) {
		t.Fatalf("requests = %v, want %v", order, wantOrder)
	}
	// The invoice default wins over the legacy default source.
	wantConfirm(t, f.seen.to(http.MethodPost, pathConfirm)[0], defaultPM, retryKey)
}

func TestRetryPaymentUsesDefaultSourceWithoutInvoiceDefault(t *testing.T) {
	f := newFakeStripe(t)
	f.on(http.MethodGet, pathIntent, ok(intent("requires_payment_method")))
	f.on(http.MethodGet, pathCustomer, ok(customer("", "card_1OdunningOld", nil)))
	f.on(http.MethodPost, pathConfirm, ok(intent("succeeded")))
	acts := stripeActivities(t, fakeKey, f.URL, "")
	got, err := acts.RetryPayment(context.Background(), retryInput())
	if err != nil {
		t.Fatalf("RetryPayment: %v", err)
	}
	if got.Outcome != activities.RetrySucceeded || got.PaymentMethod != "card_1OdunningOld" {
		t.Errorf("RetryPayment = %+v, want succeeded with card_1OdunningOld", got)
	}
	conf := f.seen.to(http.MethodPost, pathConfirm)
	if len(conf) != 1 {
		t.Fatalf("confirm requests = %d, want 1", len(conf))
	}
	wantConfirm(t, conf[0], "card_1OdunningOld", retryKey)
}

// declined is RetryResult of a decline of the default payment method.
func declined(declineCode, message string, d activities.Decline) activities.RetryResult {
	if d.PaymentMethod == "" {
		d.PaymentMethod = defaultPM
	}
	if d.IntentStatus == "" {
		d.IntentStatus = "requires_payment_method"
	}
	return activities.RetryResult{Outcome: activities.RetryDeclined, Status: "requires_payment_method",
		PaymentMethod: defaultPM, DeclineCode: declineCode, Message: message, Decline: d}
}

const (
	declinedCharge = "ch_3OdunningDeclined1"
	pathCharge     = "/v1/charges/" + declinedCharge
)

// cardErrorBody is a 402 card_error as the newest API versions send it:
// Stripe's and the network's advice, the charge, and the card that failed
// as an object.
func cardErrorBody(edit func(e obj)) obj {
	body := stripeError("card_error", "card_declined", "insufficient_funds", "Your card has insufficient funds.",
		afterDecline(intent("requires_payment_method")))
	e := body["error"].(obj)
	e["advice_code"], e["network_advice_code"], e["network_decline_code"] = "try_again_later", nil, "51"
	e["charge"], e["request_log_url"] = declinedCharge, "https://dashboard.stripe.com/test/logs/req_fake"
	e["payment_method"] = paymentMethodObj(defaultPM)
	if edit != nil {
		edit(e)
	}
	return body
}

// chargeObj is a failed Charge as GET /v1/charges/{id} returns it.
func chargeObj(outcomeType, reason string, edit func(outcome obj)) obj {
	outcome := obj{"type": outcomeType, "reason": reason, "network_status": "declined_by_network", "risk_level": "normal",
		"risk_score": 20, "seller_message": "The bank returned the decline code.", "rule": nil,
		"advice_code": nil, "network_advice_code": nil, "network_decline_code": nil}
	if outcomeType == "blocked" {
		outcome["network_status"] = "not_sent_to_network"
	}
	if edit != nil {
		edit(outcome)
	}
	return obj{"id": declinedCharge, "object": "charge", "amount": 4900, "captured": false, "currency": "usd",
		"customer": customerID, "failure_code": "card_declined", "failure_message": "Your card was declined.",
		"outcome": outcome, "paid": false, "payment_intent": intentID, "payment_method": defaultPM, "status": "failed",
		"payment_method_details": obj{"type": "card", "card": obj{"brand": "visa", "last4": "4242",
			"fingerprint": fingerprints[defaultPM], "network": "visa", "exp_month": 12, "exp_year": 2030}}}
}

func TestRetryPaymentDeclineIsAResult(t *testing.T) {
	fp := fingerprints[defaultPM]
	for _, tc := range []struct {
		name   string
		body   any
		charge *answer // GET /v1/charges/{id}, when the charge is to be read
		want   activities.RetryResult
	}{{
		name: "insufficient funds",
		body: `{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds.","payment_intent":{"id":"pi_1","object":"payment_intent","status":"requires_payment_method"}}}`,
		want: declined("insufficient_funds", "Your card has insufficient funds.",
			activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds"}),
	}, {
		name: "no decline code: the error code stands in",
		body: stripeError("card_error", "expired_card", "", "Your card has expired.", intent("requires_payment_method")),
		want: declined("expired_card", "Your card has expired.", activities.Decline{Code: "expired_card"}),
	}, {
		// Not a decline: the customer must authenticate; no off-session
		// retry can do it, and no "payment failed" follows.
		name: "authentication required off-session",
		body: stripeError("card_error", "authentication_required", "authentication_required",
			"Your card was declined. This transaction requires authentication.", intent("requires_payment_method")),
		want: activities.RetryResult{Outcome: activities.RetryRequiresAction, Status: "requires_payment_method",
			PaymentMethod: defaultPM, DeclineCode: "authentication_required",
			Message: "Your card was declined. This transaction requires authentication.",
			Decline: activities.Decline{Code: "authentication_required", DeclineCode: "authentication_required",
				PaymentMethod: defaultPM, IntentStatus: "requires_payment_method"}},
	}, {
		// stripe-go v76 knows none of the advice codes: they come from the
		// raw body. Mastercard says never again: the charge is not read.
		name: "newer API version: advice codes and the card's fingerprint",
		body: cardErrorBody(func(e obj) {
			e["decline_code"], e["advice_code"], e["network_advice_code"] = "do_not_honor", "do_not_try_again", "03"
		}),
		want: declined("do_not_honor", "Your card has insufficient funds.", activities.Decline{Code: "card_declined",
			DeclineCode: "do_not_honor", AdviceCode: "do_not_try_again", NetworkAdviceCode: "03", NetworkDeclineCode: "51",
			Fingerprint: fp, Charge: declinedCharge}),
	}, {
		name: "the charge's outcome completes the error",
		body: cardErrorBody(nil),
		charge: &answer{http.StatusOK, chargeObj("issuer_declined", "insufficient_funds", func(o obj) {
			o["advice_code"], o["network_advice_code"], o["network_decline_code"] = "do_not_try_again", "25", "05"
		})},
		want: declined("insufficient_funds", "Your card has insufficient funds.", activities.Decline{Code: "card_declined",
			DeclineCode: "insufficient_funds", AdviceCode: "try_again_later", NetworkAdviceCode: "25", NetworkDeclineCode: "51",
			OutcomeReason: "insufficient_funds", Fingerprint: fp, Charge: declinedCharge}),
	}, {
		// The charge says when it failed, by Stripe's clock: the workflow
		// orders the events it receives after it by that time.
		name: "the charge's created is when the decline was made",
		body: cardErrorBody(nil),
		charge: &answer{http.StatusOK, func() obj {
			c := chargeObj("issuer_declined", "insufficient_funds", nil)
			c["created"] = 1772442061
			return c
		}()},
		want: declined("insufficient_funds", "Your card has insufficient funds.", activities.Decline{Code: "card_declined",
			DeclineCode: "insufficient_funds", AdviceCode: "try_again_later", NetworkDeclineCode: "51",
			OutcomeReason: "insufficient_funds", Fingerprint: fp, Charge: declinedCharge,
			Created: time.Date(2026, 3, 2, 9, 1, 1, 0, time.UTC)}),
	}, {
		// Stripe itself blocked the charge: the issuer had asked never to
		// retry this card. Only the charge says so.
		name: "blocked by Stripe: previously declined, do not retry",
		body: cardErrorBody(func(e obj) {
			e["decline_code"], e["advice_code"], e["network_decline_code"], e["message"] = "generic_decline", nil, nil, "Your card was declined."
		}),
		charge: &answer{http.StatusOK, chargeObj("blocked", "previously_declined_do_not_retry", nil)},
		want: declined("generic_decline", "Your card was declined.", activities.Decline{Code: "card_declined",
			DeclineCode: "generic_decline", OutcomeReason: "previously_declined_do_not_retry", Fingerprint: fp, Charge: declinedCharge}),
	}, {
		name: "an older API version's error, the advice on the charge",
		body: func() obj {
			b := stripeError("card_error", "card_declined", "insufficient_funds", "Your card has insufficient funds.",
				afterDecline(intent("requires_payment_method")))
			b["error"].(obj)["charge"] = declinedCharge
			return b
		}(),
		charge: &answer{http.StatusOK, chargeObj("issuer_declined", "insufficient_funds", func(o obj) {
			o["advice_code"], o["network_advice_code"] = "try_again_later", "24"
		})},
		want: declined("insufficient_funds", "Your card has insufficient funds.", activities.Decline{Code: "card_declined",
			DeclineCode: "insufficient_funds", AdviceCode: "try_again_later", NetworkAdviceCode: "24",
			OutcomeReason: "insufficient_funds", Fingerprint: fp, Charge: declinedCharge}),
	}, {
		// The charge adds detail only: the decline stands without it, and
		// the activity does not fail (its retry would replay the confirm
		// to get the same answer).
		name:   "charge unreadable: the decline stands",
		body:   cardErrorBody(nil),
		charge: &answer{http.StatusInternalServerError, stripeError("api_error", "", "", "An unknown error occurred", nil)},
		want: declined("insufficient_funds", "Your card has insufficient funds.", activities.Decline{Code: "card_declined",
			DeclineCode: "insufficient_funds", AdviceCode: "try_again_later", NetworkDeclineCode: "51",
			Fingerprint: fp, Charge: declinedCharge}),
	}, {
		name:   "charge of an unexpected shape: the decline stands",
		body:   cardErrorBody(nil),
		charge: &answer{http.StatusOK, obj{"id": declinedCharge, "object": "charge", "outcome": "blocked"}},
		want: declined("insufficient_funds", "Your card has insufficient funds.", activities.Decline{Code: "card_declined",
			DeclineCode: "insufficient_funds", AdviceCode: "try_again_later", NetworkDeclineCode: "51",
			Fingerprint: fp, Charge: declinedCharge}),
	}, {
		// A legacy card names itself in source, not payment_method.
		name: "a legacy card in source",
		body: cardErrorBody(func(e obj) {
			delete(e, "payment_method")
			e["decline_code"], e["source"] = "stolen_card", legacyCardObj("card_1OdunningOld")
		}),
		want: declined("stolen_card", "Your card has insufficient funds.", activities.Decline{Code: "card_declined",
			DeclineCode: "stolen_card", AdviceCode: "try_again_later", NetworkDeclineCode: "51",
			PaymentMethod: "card_1OdunningOld", Fingerprint: fingerprints["card_1OdunningOld"], Charge: declinedCharge}),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f, acts := retryFake(t, answer{http.StatusPaymentRequired, tc.body})
			if tc.charge != nil {
				f.on(http.MethodGet, pathCharge, *tc.charge)
			}
			got, err := acts.RetryPayment(context.Background(), retryInput())
			if err != nil {
				t.Fatalf("RetryPayment: err = %v, want a declined result and no error", err)
			}
			if got != tc.want {
				t.Errorf("RetryPayment =\n %+v\nwant\n %+v", got, tc.want)
			}
			if n := len(f.seen.to(http.MethodPost, pathConfirm)); n != 1 {
				t.Errorf("confirm requests = %d, want 1", n)
			}
			if n, want := len(f.seen.to(http.MethodGet, pathCharge)), map[bool]int{true: 1}[tc.charge != nil]; n != want {
				t.Errorf("charge reads = %d, want %d", n, want)
			}
		})
	}
}

// A confirm answered 200 with the intent back in requires_payment_method
// is a decline too; its last_payment_error is read raw as well.
func TestRetryPaymentDeclineOnA200(t *testing.T) {
	confirmed := afterDecline(intent("requires_payment_method"))
	e := confirmed["last_payment_error"].(obj)
	e["decline_code"], e["advice_code"], e["network_advice_code"], e["network_decline_code"] = "expired_card", "confirm_card_data", "01", "54"
	e["charge"] = declinedCharge
	f, acts := retryFake(t, ok(confirmed))
	f.on(http.MethodGet, pathCharge, ok(chargeObj("issuer_declined", "expired_card", nil)))
	got, err := acts.RetryPayment(context.Background(), retryInput())
	if err != nil {
		t.Fatalf("RetryPayment: %v", err)
	}
	want := activities.RetryResult{Outcome: activities.RetryDeclined, Status: "requires_payment_method", PaymentMethod: defaultPM,
		DeclineCode: "expired_card", Message: "Your card has insufficient funds.",
		Decline: activities.Decline{Code: "card_declined", DeclineCode: "expired_card", AdviceCode: "confirm_card_data",
			NetworkAdviceCode: "01", NetworkDeclineCode: "54", OutcomeReason: "expired_card", PaymentMethod: failedPM,
			Fingerprint: fingerprints[failedPM], Charge: declinedCharge, IntentStatus: "requires_payment_method"}}
	if got != want {
		t.Errorf("RetryPayment =\n %+v\nwant\n %+v", got, want)
	}
	if v := activities.ClassifyDecline(got.Decline); v.Class != activities.DeclineNewData {
		t.Errorf("ClassifyDecline = %+v, want needs_new_data", v)
	}
}

func TestRetryPaymentConfirmOutcomes(t *testing.T) {
	for _, tc := range []struct {
		confirmed obj
		want      activities.RetryResult
	}{
		{intent("succeeded"), activities.RetryResult{Outcome: activities.RetrySucceeded, Status: "succeeded", PaymentMethod: defaultPM, AmountReceived: 4900}},
		{intent("processing"), activities.RetryResult{Outcome: activities.RetryProcessing, Status: "processing", PaymentMethod: defaultPM}},
		{intent("requires_action"), activities.RetryResult{Outcome: activities.RetryRequiresAction, Status: "requires_action", PaymentMethod: defaultPM}},
		{declinedIntent("do_not_honor", "Your card was declined."), declined("do_not_honor", "Your card was declined.",
			activities.Decline{Code: "card_declined", DeclineCode: "do_not_honor"})},
	} {
		t.Run(tc.want.Status, func(t *testing.T) {
			_, acts := retryFake(t, ok(tc.confirmed))
			got, err := acts.RetryPayment(context.Background(), retryInput())
			if err != nil {
				t.Fatalf("RetryPayment: %v", err)
			}
			if got != tc.want {
				t.Errorf("RetryPayment = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRetryPaymentSettledIntentIsNotConfirmed(t *testing.T) {
	for status, outcome := range map[string]string{
		"succeeded":  activities.RetryAlreadyPaid,
		"canceled":   activities.RetryCanceled,
		"processing": activities.RetryProcessing,
	} {
		t.Run(status, func(t *testing.T) {
			f := newFakeStripe(t)
			f.on(http.MethodGet, pathIntent, ok(intent(status)))
			acts := stripeActivities(t, fakeKey, f.URL, "")
			got, err := acts.RetryPayment(context.Background(), retryInput())
			if err != nil {
				t.Fatalf("RetryPayment: %v", err)
			}
			want := activities.RetryResult{Outcome: outcome, Status: status}
			if got != want {
				t.Errorf("RetryPayment = %+v, want %+v", got, want)
			}
			// Only the intent was read: no customer read, no confirm (the
			// fake fails the test on any other request).
			if all := f.seen.list(); len(all) != 1 {
				t.Errorf("requests = %v, want only GET %s", all, pathIntent)
			}
		})
	}
}

func TestRetryPaymentStripeErrors(t *testing.T) {
	const (
		rejected  = "rejected"
		retryable = "retryable"
	)
	for _, tc := range []struct {
		name   string
		failAt string // the route that answers with the error
		answer answer
		want   string
	}{
		{"invalid request on confirm", "POST " + pathConfirm, answer{http.StatusBadRequest,
			stripeError("invalid_request_error", "payment_intent_unexpected_state", "",
				"You cannot confirm this PaymentIntent because it has a status of succeeded.", nil)}, rejected},
		{"idempotency key reused with other parameters", "POST " + pathConfirm, answer{http.StatusBadRequest,
			stripeError("idempotency_error", "", "",
				"Keys for idempotent requests can only be used with the same parameters they were first used with.", nil)}, rejected},
		{"unknown intent", "GET " + pathIntent, answer{http.StatusNotFound,
			stripeError("invalid_request_error", "resource_missing", "", "No such payment_intent: '"+intentID+"'", nil)}, rejected},
		{"bad API key", "GET " + pathIntent, answer{http.StatusUnauthorized,
			stripeError("invalid_request_error", "", "", "Invalid API Key provided: sk_test_****fake", nil)}, rejected},
		{"rate limited on confirm", "POST " + pathConfirm, answer{http.StatusTooManyRequests,
			stripeError("invalid_request_error", "rate_limit", "", "Request rate limit exceeded.", nil)}, retryable},
		{"server error on confirm", "POST " + pathConfirm, answer{http.StatusInternalServerError,
			stripeError("api_error", "", "", "An unknown error occurred", nil)}, retryable},
		{"request in flight with the same key", "POST " + pathConfirm, answer{http.StatusConflict,
			stripeError("idempotency_error", "", "", "There is currently another in-progress request using this Idempotent Key.", nil)}, retryable},
		{"server error without an error type", "POST " + pathConfirm, answer{http.StatusInternalServerError,
			`{"error":{"message":"An unknown error occurred"}}`}, retryable},
		{"gateway error page", "POST " + pathConfirm, answer{http.StatusBadGateway, "<html>502 Bad Gateway</html>"}, retryable},
		{"server error reading the customer", "GET " + pathCustomer, answer{http.StatusServiceUnavailable,
			stripeError("api_error", "", "", "An unknown error occurred", nil)}, retryable},
		{"rate limited reading the intent", "GET " + pathIntent, answer{http.StatusTooManyRequests,
			stripeError("invalid_request_error", "rate_limit", "", "Request rate limit exceeded.", nil)}, retryable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, acts := retryFake(t, ok(intent("succeeded")))
			method, path, _ := strings.Cut(tc.failAt, " ")
			f.on(method, path, tc.answer)
			got, err := acts.RetryPayment(context.Background(), retryInput())
			if got != (activities.RetryResult{}) {
				t.Errorf("result = %+v with the error, want none", got)
			}
			switch tc.want {
			case rejected:
				wantNonRetryable(t, err, activities.ErrStripeRejected)
			case retryable:
				wantRetryable(t, err)
			}
			// Temporal retries, not the Stripe client: one request each.
			if n := len(f.seen.to(method, path)); n != 1 {
				t.Errorf("%s requests = %d, want exactly 1 (no client-side retries)", tc.failAt, n)
			}
			if method == http.MethodGet {
				if n := len(f.seen.to(http.MethodPost, pathConfirm)); n != 0 {
					t.Errorf("confirmed after a failed read")
				}
			}
			if st := stripeStatus(err); st != tc.answer.status && tc.answer.status != http.StatusBadGateway {
				t.Errorf("error %v carries Stripe status %d, want %d", err, st, tc.answer.status)
			}
		})
	}
}

// stripeStatus is the HTTP status of the Stripe error in err's chain.
func stripeStatus(err error) int {
	var se *stripe.Error
	if errors.As(err, &se) {
		return se.HTTPStatusCode
	}
	return 0
}

func TestRetryPaymentRetrySendsSameIdempotencyKey(t *testing.T) {
	f, acts := retryFake(t,
		answer{http.StatusInternalServerError, stripeError("api_error", "", "", "An unknown error occurred", nil)},
		ok(intent("succeeded")))
	in := retryInput()
	if _, err := acts.RetryPayment(context.Background(), in); err == nil {
		t.Fatal("first attempt: err = nil, want the 500")
	}
	got, err := acts.RetryPayment(context.Background(), in)
	if err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	if got.Outcome != activities.RetrySucceeded {
		t.Errorf("second attempt outcome = %q, want %q", got.Outcome, activities.RetrySucceeded)
	}
	conf := f.seen.to(http.MethodPost, pathConfirm)
	if len(conf) != 2 {
		t.Fatalf("confirm requests = %d, want 2", len(conf))
	}
	for i, r := range conf {
		if r.IdempotencyKey != in.IdempotencyKey {
			t.Errorf("attempt %d: Idempotency-Key = %q, want %q", i+1, r.IdempotencyKey, in.IdempotencyKey)
		}
	}
	if !bytes.Equal(conf[0].Body, conf[1].Body) {
		t.Errorf("attempts sent different bodies under one key: %q and %q", conf[0].Body, conf[1].Body)
	}
}

func TestRetryPaymentBadInput(t *testing.T) {
	f := newFakeStripe(t) // any request fails the test
	acts := stripeActivities(t, fakeKey, f.URL, "")
	for name, in := range map[string]activities.RetryInput{
		"no intent": {StripeCustomerID: customerID, IdempotencyKey: retryKey},
		"no key":    {IntentID: intentID, StripeCustomerID: customerID},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := acts.RetryPayment(context.Background(), in)
			wantNonRetryable(t, err, activities.ErrBadInput)
		})
	}
	if all := f.seen.list(); len(all) != 0 {
		t.Errorf("requests = %v, want none", all)
	}
}

func TestCustomerProfile(t *testing.T) {
	for _, tc := range []struct {
		name     string
		key      string
		customer obj
		want     activities.CustomerProfile
	}{{
		name:     "metadata key present",
		key:      metadataKey,
		customer: customer(defaultPM, "", obj{metadataKey: "acct-42"}),
		want:     activities.CustomerProfile{CustomerID: "acct-42", DefaultPaymentMethod: defaultPM},
	}, {
		name:     "metadata key absent",
		key:      metadataKey,
		customer: customer(defaultPM, "", obj{"plan": "team"}),
		want:     activities.CustomerProfile{CustomerID: customerID, DefaultPaymentMethod: defaultPM},
	}, {
		name:     "metadata key empty",
		key:      metadataKey,
		customer: customer(defaultPM, "", obj{metadataKey: ""}),
		want:     activities.CustomerProfile{CustomerID: customerID, DefaultPaymentMethod: defaultPM},
	}, {
		name:     "no key configured",
		customer: customer(defaultPM, "", obj{metadataKey: "acct-42"}),
		want:     activities.CustomerProfile{CustomerID: customerID, DefaultPaymentMethod: defaultPM},
	}, {
		name:     "default source only",
		customer: customer("", "card_1OdunningOld", nil),
		want:     activities.CustomerProfile{CustomerID: customerID, DefaultPaymentMethod: "card_1OdunningOld"},
	}, {
		name: "expanded default payment method",
		customer: func() obj {
			c := customer("", "", nil)
			c["invoice_settings"].(obj)["default_payment_method"] = obj{"id": defaultPM, "object": "payment_method", "type": "card"}
			return c
		}(),
		want: activities.CustomerProfile{CustomerID: customerID, DefaultPaymentMethod: defaultPM},
	}, {
		name:     "no payment method",
		customer: customer("", "", nil),
		want:     activities.CustomerProfile{CustomerID: customerID},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeStripe(t)
			f.on(http.MethodGet, pathCustomer, ok(tc.customer))
			acts := stripeActivities(t, fakeKey, f.URL, tc.key)
			got, err := acts.CustomerProfile(context.Background(), activities.CustomerInput{StripeCustomerID: customerID})
			if err != nil {
				t.Fatalf("CustomerProfile: %v", err)
			}
			if got != tc.want {
				t.Errorf("CustomerProfile = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPaymentIntentStatusPaidAndClosed(t *testing.T) {
	for _, want := range []activities.IntentStatus{
		{Status: "succeeded", Paid: true},
		{Status: "canceled", Closed: true},
		{Status: "processing"},
		{Status: "requires_payment_method"},
		{Status: "requires_action"},
	} {
		t.Run(want.Status, func(t *testing.T) {
			f := newFakeStripe(t)
			f.on(http.MethodGet, pathIntent, ok(intent(want.Status)))
			acts := stripeActivities(t, fakeKey, f.URL, "")
			got, err := acts.PaymentIntentStatus(context.Background(), activities.IntentInput{IntentID: intentID})
			if err != nil {
				t.Fatalf("PaymentIntentStatus: %v", err)
			}
			if got != want {
				t.Errorf("PaymentIntentStatus = %+v, want %+v", got, want)
			}
		})
	}
}

func TestPaymentIntentStatusErrors(t *testing.T) {
	f := newFakeStripe(t)
	f.on(http.MethodGet, pathIntent,
		answer{http.StatusNotFound, stripeError("invalid_request_error", "resource_missing", "", "No such payment_intent", nil)},
		answer{http.StatusInternalServerError, stripeError("api_error", "", "", "An unknown error occurred", nil)})
	acts := stripeActivities(t, fakeKey, f.URL, "")
	_, err := acts.PaymentIntentStatus(context.Background(), activities.IntentInput{IntentID: intentID})
	wantNonRetryable(t, err, activities.ErrStripeRejected)
	_, err = acts.PaymentIntentStatus(context.Background(), activities.IntentInput{IntentID: intentID})
	wantRetryable(t, err)
}

// liveExcept returns activities whose other integrations all point at a
// server that counts requests, so that a dry run that calls anything shows.
func liveExcept(t *testing.T, baseURL string) *activities.Activities {
	t.Helper()
	acts, err := worker.NewActivities(nil, config.Config{
		StripeAPIKey: fakeKey, StripeAPIBaseURL: baseURL,
		AmberfloAPIKey: "amberflo-key", AmberfloBaseURL: baseURL,
		ControlPlaneURL: baseURL + "/cp", ControlPlaneSecret: cpSecret,
		AlertWebhookURL:   baseURL + "/alerts",
		CustomerNoticeURL: baseURL + "/notices", CustomerNoticeSecret: noticeSecret,
	}, quietLogger())
	if err != nil {
		t.Fatalf("NewActivities: %v", err)
	}
	if acts.Stripe == nil || acts.Amberflo == nil || acts.Control == nil || acts.Alerts == nil || acts.Notices == nil {
		t.Fatal("NewActivities left an integration dry")
	}
	return acts
}

func TestStripeDryRun(t *testing.T) {
	srv, seen := counter(t)
	acts := liveExcept(t, srv.URL)
	acts.Stripe = nil
	ctx := context.Background()

	r, err := acts.RetryPayment(ctx, retryInput())
	if err != nil || r != (activities.RetryResult{Outcome: activities.RetryDryRun, DryRun: true}) {
		t.Errorf("RetryPayment = %+v, %v; want dry_run", r, err)
	}
	p, err := acts.CustomerProfile(ctx, activities.CustomerInput{StripeCustomerID: customerID})
	if err != nil || p != (activities.CustomerProfile{CustomerID: customerID, DryRun: true}) {
		t.Errorf("CustomerProfile = %+v, %v; want the Stripe ID, dry run", p, err)
	}
	s, err := acts.PaymentIntentStatus(ctx, activities.IntentInput{IntentID: intentID})
	if err != nil || !s.DryRun || s.Paid || s.Closed {
		t.Errorf("PaymentIntentStatus = %+v, %v; want a dry run, neither paid nor closed", s, err)
	}
	// A dry run still refuses what it could never do live.
	_, err = acts.RetryPayment(ctx, activities.RetryInput{IntentID: intentID, StripeCustomerID: customerID})
	wantNonRetryable(t, err, activities.ErrBadInput)

	if all := seen.list(); len(all) != 0 {
		t.Errorf("requests = %v, want none", all)
	}
}

// ChargeDecline reads the charge an event's decline only named: a stop
// that only its outcome carries comes back; a charge Stripe will not show
// is a non-retryable rejection; no answer is retried.
func TestChargeDeclineReadsWhatTheEventOnlyNamed(t *testing.T) {
	named := activities.Decline{Code: "card_declined", DeclineCode: "generic_decline", Charge: declinedCharge, PaymentMethod: defaultPM}
	for _, tc := range []struct {
		name     string
		charge   answer
		want     activities.Decline
		rejected bool
		retried  bool
	}{{
		name:   "blocked: never again",
		charge: answer{http.StatusOK, chargeObj("blocked", "previously_declined_do_not_retry", nil)},
		want: activities.Decline{Code: "card_declined", DeclineCode: "generic_decline", Charge: declinedCharge, PaymentMethod: defaultPM,
			OutcomeReason: "previously_declined_do_not_retry", Fingerprint: fingerprints[defaultPM]},
	}, {
		name:     "no such charge",
		charge:   answer{http.StatusNotFound, stripeError("invalid_request_error", "resource_missing", "", "No such charge: '"+declinedCharge+"'", nil)},
		rejected: true,
	}, {
		name:    "Stripe down",
		charge:  answer{http.StatusServiceUnavailable, stripeError("api_error", "", "", "Service unavailable", nil)},
		retried: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeStripe(t)
			f.on(http.MethodGet, pathCharge, tc.charge)
			acts := stripeActivities(t, fakeKey, f.URL, "")
			got, err := acts.ChargeDecline(context.Background(), named)
			switch {
			case tc.rejected:
				wantNonRetryable(t, err, activities.ErrStripeRejected)
			case tc.retried:
				if _, ok := nonRetryable(err); err == nil || ok {
					t.Fatalf("err = %v, want one that is retried", err)
				}
			case err != nil:
				t.Fatalf("ChargeDecline: %v", err)
			case got.OutcomeReason != tc.want.OutcomeReason || got.Charge != tc.want.Charge || got.DeclineCode != tc.want.DeclineCode:
				t.Errorf("ChargeDecline =\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
	// A decline that already carries its outcome is not read again.
	f := newFakeStripe(t) // any request fails the test
	full := named
	full.OutcomeReason = "issuer_declined"
	if got, err := stripeActivities(t, fakeKey, f.URL, "").ChargeDecline(context.Background(), full); err != nil || got != full {
		t.Errorf("ChargeDecline of a read decline = %+v, %v; want it as it was, no request", got, err)
	}
}

// A confirm after a credit note lowered the intent takes what the intent
// asks now, and says so: what failed is not what was received.
func TestRetryPaymentSaysWhatItReceived(t *testing.T) {
	confirmed := intent("succeeded")
	confirmed["amount"], confirmed["amount_received"] = 3000, 3000
	_, acts := retryFake(t, ok(confirmed))
	got, err := acts.RetryPayment(context.Background(), retryInput())
	if err != nil {
		t.Fatalf("RetryPayment: %v", err)
	}
	if got.Outcome != activities.RetrySucceeded || got.AmountReceived != 3000 {
		t.Errorf("RetryPayment = %+v, want succeeded, 3000 received", got)
	}
}
