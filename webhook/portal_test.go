package webhook_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	stripeclient "github.com/stripe/stripe-go/v76/client"

	"dunning/internal/portallink"
	"dunning/internal/testenv"
	"dunning/webhook"
)

const (
	portalSecret    = "portal-link-secret-for-webhook-tests-0001"
	oldPortalSecret = "portal-link-secret-old-for-webhook-tests-02"
	portalCustomer  = "cus_PortalWebhook001"
	returnURL       = "https://app.example.com/settings/billing"
	stripeTestKey   = "sk_test_portal_4eC39HqLyjWDarjtT1zdp7dc"
)

// sessionURL is what Stripe answers: a session URL on billing.stripe.com.
const sessionURL = "https://billing.stripe.com/p/session/test_YWNjdF8xTkRkSGtMeTNYWkdSR2xOLF9QcUw0ZGJzQ2E0"

// portalRequest is one request the fake Stripe received.
type portalRequest struct {
	method, path, auth, contentType string
	form                            url.Values
}

// fakeStripe answers POST /v1/billing_portal/sessions as Stripe does:
// checks the request the way Stripe's API would, records it, and answers
// with reply (a session object by default).
type fakeStripe struct {
	srv   *httptest.Server
	reply func(w http.ResponseWriter, n int)

	mu   sync.Mutex
	seen []portalRequest
}

func newFakeStripe(t *testing.T, reply func(w http.ResponseWriter, n int)) *fakeStripe {
	t.Helper()
	f := &fakeStripe{reply: reply}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, err := url.ParseQuery(string(body))
		if err != nil {
			t.Errorf("fake Stripe: body is not form-encoded: %v", err)
		}
		f.mu.Lock()
		f.seen = append(f.seen, portalRequest{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), form})
		n := len(f.seen)
		f.mu.Unlock()
		w.Header().Set("Request-Id", fmt.Sprintf("req_portal%04d", n))
		if r.Method != http.MethodPost || r.URL.Path != "/v1/billing_portal/sessions" {
			stripeError(w, http.StatusNotFound, "invalid_request_error", "Unrecognized request URL ("+r.Method+": "+r.URL.Path+").")
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+stripeTestKey {
			stripeError(w, http.StatusUnauthorized, "invalid_request_error", "Invalid API Key provided: sk_test_****")
			return
		}
		if f.reply != nil {
			f.reply(w, n)
			return
		}
		session(w, form, sessionURL)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeStripe) requests() []portalRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]portalRequest(nil), f.seen...)
}

// session writes a billing_portal.session as Stripe does (2024 API shape).
func session(w http.ResponseWriter, form url.Values, u any) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":"bps_1OqPortal0001","object":"billing_portal.session","configuration":"bpc_1OqPortal0001",
"created":1773489600,"customer":%q,"flow":{"after_completion":{"hosted_confirmation":null,"redirect":{"return_url":%q},"type":"redirect"},
"subscription_cancel":null,"subscription_update":null,"subscription_update_confirm":null,"type":"payment_method_update"},
"livemode":false,"locale":null,"on_behalf_of":null,"return_url":%q,"url":%s}`,
		form.Get("customer"), form.Get("flow_data[after_completion][redirect][return_url]"), form.Get("return_url"), jsonValue(u))
}

func jsonValue(v any) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprintf("%q", v)
}

func stripeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"message":%q,"type":%q,"request_log_url":"https://dashboard.stripe.com/test/logs/req_x"}}`, msg, typ)
}

// stripeMissing writes Stripe's answer to a request naming an object it
// does not have (a deleted customer, say): code resource_missing on the
// parameter that named it.
func stripeMissing(w http.ResponseWriter, status int, param, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{
  "error": {
    "code": "resource_missing",
    "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
    "message": %q,
    "param": %q,
    "request_log_url": "https://dashboard.stripe.com/test/logs/req_x?t=1773489600",
    "type": "invalid_request_error"
  }
}`, msg, param)
}

// clock is a settable clock for the handler.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// signer checks and makes links with secrets, portalSecret by default.
func signer(t testing.TB, secrets ...string) *portallink.Signer {
	t.Helper()
	if len(secrets) == 0 {
		secrets = []string{portalSecret}
	}
	s, err := portallink.NewSigner(secrets)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// portalOptions configures links signed with secrets and sessions from
// the Stripe at stripeURL.
func portalOptions(t testing.TB, stripeURL, key string, secrets ...string) *webhook.Portal {
	t.Helper()
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(stripeURL),
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	api := stripeclient.New(key, &stripe.Backends{API: backend, Connect: backend, Uploads: backend})
	return &webhook.Portal{Links: signer(t, secrets...), Sessions: api.BillingPortalSessions, ReturnURL: returnURL, Timeout: 2 * time.Second}
}

// portalServer is a webhook with portal links, sessions from f, at clk.
func portalServer(t *testing.T, f *fakeStripe, clk *clock, tweak func(*webhook.Options)) *server {
	t.Helper()
	return newServer(t, &fakeTemporal{}, func(o *webhook.Options) {
		o.Portal = portalOptions(t, f.srv.URL, stripeTestKey)
		o.Now = clk.now
		if tweak != nil {
			tweak(o)
		}
	})
}

// token signs a link for customer that expires at expires.
func token(t testing.TB, customer string, expires time.Time, secrets ...string) string {
	t.Helper()
	tok, err := signer(t, secrets...).Sign(customer, expires)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// follow is a browser following a link, from remote.
func follow(t *testing.T, s *server, path, remote string, header ...string) reply {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return s.do(t, req)
}

// wantPage checks a page answer: status, the headers every /portal/
// answer has, a short HTML page for a person saying want, and nothing of
// Stripe's own words.
func wantPage(t *testing.T, r reply, status int, want string) {
	t.Helper()
	if r.code != status {
		t.Fatalf("answer %d, want %d: %s", r.code, status, r.raw)
	}
	wantPortalHeaders(t, r)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q, want an HTML page", ct)
	}
	if !strings.Contains(r.raw, want) || !strings.Contains(r.raw, "<h1>") || len(r.raw) > 1000 {
		t.Errorf("page does not say %q in a short HTML page:\n%s", want, r.raw)
	}
	if r.header.Get("Location") != "" {
		t.Errorf("a page answer redirects to %q", r.header.Get("Location"))
	}
	for _, leak := range []string{"Stripe said", "req_portal", "api_error", "No such customer", "Invalid API Key", "stripe.com"} {
		if strings.Contains(r.raw, leak) {
			t.Errorf("page shows %q:\n%s", leak, r.raw)
		}
	}
}

func wantPortalHeaders(t *testing.T, r reply) {
	t.Helper()
	for k, v := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"} {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

func TestPortalRedirectsToANewSession(t *testing.T) {
	t.Parallel()
	f := newFakeStripe(t, nil)
	clk := newClock(testNow)
	s := portalServer(t, f, clk, nil)
	tok := token(t, portalCustomer, testNow.Add(720*time.Hour))

	// Followed twice, as a customer does who comes back to the email: a
	// link is good until it expires, and each click gets a fresh session.
	for i := 1; i <= 2; i++ {
		r := follow(t, s, "/portal/"+tok, "203.0.113.9:50000")
		if r.code != http.StatusSeeOther || r.header.Get("Location") != sessionURL {
			t.Fatalf("click %d: %d Location %q, want 303 to the session's URL: %s", i, r.code, r.header.Get("Location"), r.raw)
		}
		wantPortalHeaders(t, r)
	}
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("Stripe got %d requests, want one session per click (2)", len(reqs))
	}
	for _, req := range reqs {
		if req.method != http.MethodPost || req.path != "/v1/billing_portal/sessions" || req.contentType != "application/x-www-form-urlencoded" {
			t.Errorf("Stripe got %s %s (%s), want a form POST to /v1/billing_portal/sessions", req.method, req.path, req.contentType)
		}
		want := url.Values{
			"customer":                          {portalCustomer},
			"return_url":                        {returnURL},
			"flow_data[type]":                   {"payment_method_update"},
			"flow_data[after_completion][type]": {"redirect"},
			"flow_data[after_completion][redirect][return_url]": {returnURL},
		}
		if !equalForms(req.form, want) {
			t.Errorf("Stripe got the form\n%v\nwant exactly\n%v", req.form, want)
		}
	}
	logs := s.logs.String()
	if !strings.Contains(logs, portalCustomer) || !strings.Contains(logs, "billing portal session opened") {
		t.Errorf("log does not say which customer's portal was opened:\n%s", logs)
	}
	if strings.Contains(logs, tok) || strings.Contains(logs, tok[:20]) {
		t.Errorf("log contains the token:\n%s", logs)
	}
}

func equalForms(got, want url.Values) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			return false
		}
	}
	return true
}

// Against stripe-mock, which checks every request against Stripe's OpenAPI
// specification and refuses what Stripe would refuse.
func TestPortalAgainstStripeMock(t *testing.T) {
	t.Parallel()
	base := testenv.StartStripeMock(t)
	clk := newClock(testNow)
	s := newServer(t, &fakeTemporal{}, func(o *webhook.Options) {
		o.Portal = portalOptions(t, base, testenv.StripeMockKey)
		o.Now = clk.now
	})
	r := follow(t, s, "/portal/"+token(t, portalCustomer, testNow.Add(time.Hour)), "198.51.100.4:1234")
	loc, err := url.Parse(r.header.Get("Location"))
	if r.code != http.StatusSeeOther || err != nil || loc.Scheme != "https" || loc.Host == "" {
		t.Fatalf("answer %d Location %q, want 303 to stripe-mock's session URL: %s\nlog:\n%s", r.code, r.header.Get("Location"), r.raw, s.logs)
	}

	// stripe-mock refuses what Stripe refuses (here a publishable key): a
	// refusal is a 502 page, and Stripe's words stay in the log.
	bad := newServer(t, &fakeTemporal{}, func(o *webhook.Options) {
		o.Portal = portalOptions(t, base, "pk_test_not_a_secret_key")
		o.Now = clk.now
	})
	r = follow(t, bad, "/portal/"+token(t, portalCustomer, testNow.Add(time.Hour)), "198.51.100.4:1234")
	wantPage(t, r, http.StatusBadGateway, "could not open the payment page")
	if !strings.Contains(bad.logs.String(), "outcome="+webhook.PortalStripeRefused) {
		t.Errorf("log does not record Stripe's refusal:\n%s", bad.logs)
	}
}

func TestPortalRefusesBadLinksWithoutAskingStripe(t *testing.T) {
	t.Parallel()
	f := newFakeStripe(t, nil)
	clk := newClock(testNow)
	s := portalServer(t, f, clk, func(o *webhook.Options) {
		// Many refusals from one client here; the limit is tested below.
		o.Portal.PerClient = webhook.Rate{Burst: 1000, Every: time.Millisecond}
	})
	good := token(t, portalCustomer, testNow.Add(time.Hour))
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	edit := func(change func(b []byte)) string {
		b := append([]byte(nil), raw...)
		change(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	other := token(t, "cus_SomeoneElse0001", testNow.Add(time.Hour))
	otherRaw, _ := base64.RawURLEncoding.DecodeString(other)
	spliced := base64.RawURLEncoding.EncodeToString(append(append([]byte(nil), raw[:len(raw)-32]...), otherRaw[len(otherRaw)-32:]...))

	invalid := map[string]string{
		"expiry moved":         edit(func(b []byte) { b[6]++ }),
		"customer changed":     edit(func(b []byte) { b[len(b)-33] ^= 1 }),
		"MAC changed":          edit(func(b []byte) { b[len(b)-1] ^= 0x80 }),
		"unknown version":      edit(func(b []byte) { b[0] = 9 }),
		"another's MAC":        spliced,
		"wrong secret":         token(t, portalCustomer, testNow.Add(time.Hour), "another-secret-entirely-0123456789abcdef"),
		"not base64":           "this-is-not~a-token",
		"padded":               good + "==",
		"truncated":            good[:len(good)/2],
		"extra segment":        good + "/more",
		"percent-encoded char": good[:8] + "%2F" + good[8:],
		"huge":                 strings.Repeat("A", 4000),
	}
	for name, tok := range invalid {
		t.Run(name, func(t *testing.T) {
			wantPage(t, follow(t, s, "/portal/"+tok, "203.0.113.10:1"), http.StatusNotFound, "not valid")
		})
	}
	t.Run("expired", func(t *testing.T) {
		expired := token(t, portalCustomer, testNow)
		r := follow(t, s, "/portal/"+expired, "203.0.113.10:1")
		wantPage(t, r, http.StatusGone, "expired")
		if !strings.Contains(r.raw, "most recent email") || !strings.Contains(r.raw, "contact support") {
			t.Errorf("expired page does not point to the newest email or support:\n%s", r.raw)
		}
		if !strings.Contains(s.logs.String(), "portal link expired") || !strings.Contains(s.logs.String(), portalCustomer) {
			t.Errorf("log does not say whose link expired:\n%s", s.logs)
		}
	})
	if reqs := f.requests(); len(reqs) != 0 {
		t.Errorf("Stripe was asked %d times for bad links: %v", len(reqs), reqs)
	}
	logs := s.logs.String()
	for name, tok := range invalid {
		if len(tok) >= 16 && strings.Contains(logs, tok[:16]) {
			t.Errorf("log contains the %s token:\n%s", name, logs)
		}
	}

	// The good one still opens, once all that was refused.
	if r := follow(t, s, "/portal/"+good, "203.0.113.10:1"); r.code != http.StatusSeeOther {
		t.Errorf("good link after the bad ones: %d %s", r.code, r.raw)
	}
}

func TestPortalWhenStripeFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		reply      func(w http.ResponseWriter, n int)
		status     int
		outcome    string
		retryAfter bool
		// page is what the customer reads; a refusal that the next
		// click meets again sends them to support, not back.
		page string
	}{
		{"5xx", func(w http.ResponseWriter, _ int) {
			stripeError(w, http.StatusInternalServerError, "api_error", "An unknown error occurred")
		}, http.StatusBadGateway, webhook.PortalStripeError, false, "try again later"},
		{"502 from a proxy, in HTML", func(w http.ResponseWriter, _ int) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
		}, http.StatusBadGateway, webhook.PortalStripeError, false, "try again later"},
		{"customer deleted (404)", func(w http.ResponseWriter, _ int) {
			stripeMissing(w, http.StatusNotFound, "customer", "No such customer: '"+portalCustomer+"'")
		}, http.StatusGone, webhook.PortalCustomerMissing, false, "contact support"},
		{"customer deleted (400)", func(w http.ResponseWriter, _ int) {
			stripeMissing(w, http.StatusBadRequest, "customer", "No such customer: '"+portalCustomer+"'")
		}, http.StatusGone, webhook.PortalCustomerMissing, false, "contact support"},
		{"portal configuration deleted", func(w http.ResponseWriter, _ int) {
			stripeMissing(w, http.StatusBadRequest, "configuration", "No such configuration: 'bpc_1OqGone'")
		}, http.StatusBadGateway, webhook.PortalStripeRefused, false, "contact support"},
		{"no portal configuration", func(w http.ResponseWriter, _ int) {
			stripeError(w, http.StatusBadRequest, "invalid_request_error", "No configuration provided and your test mode default configuration has not been created. Provide a configuration or create your default by saving your customer portal settings in test mode at https://dashboard.stripe.com/test/settings/billing/portal.")
		}, http.StatusBadGateway, webhook.PortalStripeRefused, false, "contact support"},
		{"key without the permission", func(w http.ResponseWriter, _ int) {
			stripeError(w, http.StatusForbidden, "invalid_request_error", "The provided key 'rk_test_****' does not have the required permissions for this endpoint on account 'acct_1Oq'.")
		}, http.StatusBadGateway, webhook.PortalStripeRefused, false, "contact support"},
		{"rate limited", func(w http.ResponseWriter, _ int) {
			stripeError(w, http.StatusTooManyRequests, "invalid_request_error", "Request rate limit exceeded.")
		}, http.StatusServiceUnavailable, webhook.PortalStripeDown, true, "follow the link again in a few minutes"},
		{"too slow", func(w http.ResponseWriter, _ int) {
			time.Sleep(time.Second) // past the portal's timeout
		}, http.StatusServiceUnavailable, webhook.PortalStripeDown, true, "follow the link again in a few minutes"},
		{"session without url", func(w http.ResponseWriter, _ int) {
			session(w, url.Values{"customer": {portalCustomer}}, nil)
		}, http.StatusBadGateway, webhook.PortalStripeError, false, "try again later"},
		{"session url a path", func(w http.ResponseWriter, _ int) {
			session(w, url.Values{"customer": {portalCustomer}}, "/p/session/test_abc")
		}, http.StatusBadGateway, webhook.PortalStripeError, false, "try again later"},
		{"session url not https", func(w http.ResponseWriter, _ int) {
			session(w, url.Values{"customer": {portalCustomer}}, "javascript:alert(1)")
		}, http.StatusBadGateway, webhook.PortalStripeError, false, "try again later"},
		{"not JSON", func(w http.ResponseWriter, _ int) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"url": "https://billing.stripe.com/p/session/x"`)
		}, http.StatusBadGateway, webhook.PortalStripeError, false, "try again later"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeStripe(t, tc.reply)
			s := portalServer(t, f, newClock(testNow), func(o *webhook.Options) { o.Portal.Timeout = 300 * time.Millisecond })
			r := follow(t, s, "/portal/"+token(t, portalCustomer, testNow.Add(time.Hour)), "203.0.113.11:1")
			wantPage(t, r, tc.status, "could not open the payment page")
			if !strings.Contains(r.raw, tc.page) {
				t.Errorf("page does not say %q:\n%s", tc.page, r.raw)
			}
			if tc.page == "contact support" && strings.Contains(r.raw, "again") {
				t.Errorf("a refusal every click meets again promises a retry:\n%s", r.raw)
			}
			if got := r.header.Get("Retry-After") != ""; got != tc.retryAfter {
				t.Errorf("Retry-After %q, want one: %v", r.header.Get("Retry-After"), tc.retryAfter)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("Stripe got %d requests, want 1 (the customer clicks again; nothing retries behind them)", n)
			}
			logs := s.logs.String()
			if !strings.Contains(logs, portalCustomer) || !strings.Contains(logs, "outcome="+tc.outcome) {
				t.Errorf("log does not record the customer and outcome %s:\n%s", tc.outcome, logs)
			}
			if got := scrape(t, s)[`dunning_portal_requests_total{outcome="`+tc.outcome+`"}`]; got != 1 {
				t.Errorf("dunning_portal_requests_total{outcome=%q} = %v, want 1", tc.outcome, got)
			}
		})
	}

	t.Run("the client leaves while Stripe answers", func(t *testing.T) {
		t.Parallel()
		f := newFakeStripe(t, func(w http.ResponseWriter, _ int) { time.Sleep(500 * time.Millisecond) })
		s := portalServer(t, f, newClock(testNow), nil)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req := httptest.NewRequest(http.MethodGet, "/portal/"+token(t, portalCustomer, testNow.Add(time.Hour)), nil).WithContext(ctx)
		req.RemoteAddr = "203.0.113.13:1"
		s.do(t, req)
		got := scrape(t, s)
		if got[`dunning_portal_requests_total{outcome="client_gone"}`] != 1 || got[`dunning_portal_requests_total{outcome="stripe_unavailable"}`] != 0 {
			t.Errorf("client_gone %v, stripe_unavailable %v; want the hang-up counted as the client's, not Stripe's",
				got[`dunning_portal_requests_total{outcome="client_gone"}`], got[`dunning_portal_requests_total{outcome="stripe_unavailable"}`])
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		f := newFakeStripe(t, nil)
		f.srv.Close()
		s := portalServer(t, f, newClock(testNow), nil)
		r := follow(t, s, "/portal/"+token(t, portalCustomer, testNow.Add(time.Hour)), "203.0.113.12:1")
		wantPage(t, r, http.StatusServiceUnavailable, "could not open the payment page")
	})
}

func TestPortalRateLimits(t *testing.T) {
	t.Parallel()
	f := newFakeStripe(t, nil)
	clk := newClock(testNow)
	s := portalServer(t, f, clk, func(o *webhook.Options) {
		o.Portal.PerClient = webhook.Rate{Burst: 2, Every: 10 * time.Second}
		o.Portal.PerCustomer = webhook.Rate{Burst: 2, Every: time.Minute}
	})
	alice := "/portal/" + token(t, "cus_AliceRateLimit01", testNow.Add(time.Hour))
	bob := "/portal/" + token(t, "cus_BobRateLimit0001", testNow.Add(time.Hour))
	carol := "/portal/" + token(t, "cus_CarolRateLimit01", testNow.Add(time.Hour))
	const client, elsewhere, third = "198.51.100.20:4000", "198.51.100.21:4000", "198.51.100.22:4000"

	// Per customer: Alice's link twice, then no more for a while, from
	// wherever it is followed.
	for i, from := range []string{client, elsewhere} {
		if r := follow(t, s, alice, from); r.code != http.StatusSeeOther {
			t.Fatalf("Alice's click %d: %d", i+1, r.code)
		}
	}
	r := follow(t, s, alice, third)
	wantPage(t, r, http.StatusTooManyRequests, "wait")
	if r.header.Get("Retry-After") != "60" {
		t.Errorf("Retry-After %q, want 60", r.header.Get("Retry-After"))
	}
	// Per client: the first client has one more (2 at once); an invalid
	// link counts too, so that guessing is slow.
	if r := follow(t, s, bob, client); r.code != http.StatusSeeOther {
		t.Fatalf("Bob from the first client: %d", r.code)
	}
	wantPage(t, follow(t, s, carol, client), http.StatusTooManyRequests, "wait")
	wantPage(t, follow(t, s, "/portal/garbage", client), http.StatusTooManyRequests, "wait")
	if r := follow(t, s, carol, elsewhere); r.code != http.StatusSeeOther {
		t.Errorf("Carol from another client: %d, want the limit per client", r.code)
	}
	if n := len(f.requests()); n != 4 {
		t.Errorf("Stripe got %d requests, want 4: none for a refused click", n)
	}

	// Time refills both.
	clk.advance(time.Minute)
	for _, p := range []string{alice, carol} {
		if r := follow(t, s, p, client); r.code != http.StatusSeeOther {
			t.Errorf("a minute later: %d, want 303", r.code)
		}
	}
	if got := scrape(t, s)[`dunning_portal_requests_total{outcome="rate_limited"}`]; got != 3 {
		t.Errorf("rate_limited = %v, want 3", got)
	}
}

// Behind a proxy, the client is the one the trusted proxy names; a client
// that names itself in X-Forwarded-For, without a trusted proxy, gets
// nothing by it.
func TestPortalRateLimitsTheClientBehindTheProxy(t *testing.T) {
	t.Parallel()
	rate := webhook.Rate{Burst: 1, Every: time.Hour}
	f := newFakeStripe(t, nil)
	proxied := portalServer(t, f, newClock(testNow), func(o *webhook.Options) {
		o.Portal.PerClient = rate
		o.TrustedProxies = []string{"10.0.0.0/8"}
	})
	const proxy = "10.0.3.7:41000"
	link := func(i int) string {
		return "/portal/" + token(t, fmt.Sprintf("cus_Proxied%08d", i), testNow.Add(time.Hour))
	}
	// Two customers behind the one proxy, each once: both open.
	for i, client := range []string{"203.0.113.30", "203.0.113.31"} {
		if r := follow(t, proxied, link(i), proxy, "X-Forwarded-For", client); r.code != http.StatusSeeOther {
			t.Errorf("client %s behind the proxy: %d, want 303", client, r.code)
		}
	}
	// The first again, with a forged entry before the proxy's: limited.
	r := follow(t, proxied, link(2), proxy, "X-Forwarded-For", "192.0.2.99, 203.0.113.30")
	wantPage(t, r, http.StatusTooManyRequests, "wait")

	direct := portalServer(t, f, newClock(testNow), func(o *webhook.Options) { o.Portal.PerClient = rate })
	if r := follow(t, direct, link(3), "203.0.113.40:1", "X-Forwarded-For", "192.0.2.1"); r.code != http.StatusSeeOther {
		t.Fatalf("first click: %d", r.code)
	}
	r = follow(t, direct, link(4), "203.0.113.40:1", "X-Forwarded-For", "192.0.2.2")
	wantPage(t, r, http.StatusTooManyRequests, "wait")

	// An IPv6 client is counted by its /64.
	v6 := portalServer(t, f, newClock(testNow), func(o *webhook.Options) { o.Portal.PerClient = rate })
	if r := follow(t, v6, link(5), "[2001:db8:1:2::10]:1"); r.code != http.StatusSeeOther {
		t.Fatalf("first IPv6 click: %d", r.code)
	}
	wantPage(t, follow(t, v6, link(6), "[2001:db8:1:2:ffff::1]:1"), http.StatusTooManyRequests, "wait")
	if r := follow(t, v6, link(7), "[2001:db8:1:3::10]:1"); r.code != http.StatusSeeOther {
		t.Errorf("another /64: %d, want 303", r.code)
	}
}

func TestPortalNotConfigured(t *testing.T) {
	t.Parallel()
	s := newServer(t, &fakeTemporal{}, nil)
	for _, path := range []string{"/portal/" + token(t, portalCustomer, testNow.Add(time.Hour)), "/portal/", "/portal/x/y"} {
		wantPage(t, follow(t, s, path, "203.0.113.50:1"), http.StatusNotFound, "links are not configured here")
	}
	if got := scrape(t, s)[`dunning_portal_requests_total{outcome="not_configured"}`]; got != 3 {
		t.Errorf("not_configured = %v, want 3", got)
	}
}

// GET /portal/ is where the portal sends the customer back by default.
func TestPortalReturnPage(t *testing.T) {
	t.Parallel()
	f := newFakeStripe(t, nil)
	s := portalServer(t, f, newClock(testNow), nil)
	wantPage(t, follow(t, s, "/portal/", "203.0.113.60:1"), http.StatusOK, "close this page")
	if r := follow(t, s, "/portal", "203.0.113.60:1"); r.code/100 != 3 || r.header.Get("Location") != "/portal/" {
		t.Errorf("GET /portal: %d Location %q, want a redirect to /portal/", r.code, r.header.Get("Location"))
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("Stripe got %d requests", n)
	}
}

// Links signed with the old secret still open during a rotation.
func TestPortalSecretRotation(t *testing.T) {
	t.Parallel()
	f := newFakeStripe(t, nil)
	s := newServer(t, &fakeTemporal{}, func(o *webhook.Options) {
		o.Portal = portalOptions(t, f.srv.URL, stripeTestKey, portalSecret, oldPortalSecret)
		o.Now = newClock(testNow).now
	})
	for _, secret := range []string{portalSecret, oldPortalSecret} {
		if r := follow(t, s, "/portal/"+token(t, portalCustomer, testNow.Add(time.Hour), secret), "203.0.113.70:1"); r.code != http.StatusSeeOther {
			t.Errorf("link signed with one of the secrets: %d", r.code)
		}
	}
}

func TestPortalMetrics(t *testing.T) {
	t.Parallel()
	f := newFakeStripe(t, nil)
	s := portalServer(t, f, newClock(testNow), nil)
	before := scrape(t, s)
	for _, o := range []string{webhook.PortalRedirected, webhook.PortalReturned, webhook.PortalInvalid, webhook.PortalExpired,
		webhook.PortalRateLimited, webhook.PortalNotConfigured, webhook.PortalStripeRefused, webhook.PortalStripeError, webhook.PortalStripeDown,
		webhook.PortalClientGone} {
		key := `dunning_portal_requests_total{outcome="` + o + `"}`
		if v, ok := before[key]; !ok || v != 0 {
			t.Errorf("before any request, %s = %v (present %v), want 0", key, v, ok)
		}
	}
	follow(t, s, "/portal/"+token(t, portalCustomer, testNow.Add(time.Hour)), "203.0.113.80:1")
	follow(t, s, "/portal/"+token(t, portalCustomer, testNow), "203.0.113.80:1")
	follow(t, s, "/portal/nope", "203.0.113.80:1")
	follow(t, s, "/portal/", "203.0.113.80:1")
	got := scrape(t, s)
	for o, want := range map[string]float64{"redirected": 1, "expired": 1, "invalid": 1, "returned": 1, "stripe_error": 0} {
		if v := got[`dunning_portal_requests_total{outcome="`+o+`"}`]; v != want {
			t.Errorf("%s = %v, want %v", o, v, want)
		}
	}
	// Portal clicks are not Stripe webhook requests.
	for key, v := range got {
		if strings.HasPrefix(key, "dunning_webhook_requests_total{") && v != 0 {
			t.Errorf("%s = %v after portal clicks only", key, v)
		}
	}
}

func TestNewHandlerChecksThePortal(t *testing.T) {
	t.Parallel()
	for name, change := range map[string]func(*webhook.Portal){
		"no signer":         func(p *webhook.Portal) { p.Links = nil },
		"no Stripe":         func(p *webhook.Portal) { p.Sessions = nil },
		"no return URL":     func(p *webhook.Portal) { p.ReturnURL = "" },
		"relative return":   func(p *webhook.Portal) { p.ReturnURL = "/back" },
		"javascript return": func(p *webhook.Portal) { p.ReturnURL = "javascript:history.back()" },
	} {
		p := portalOptions(t, "http://127.0.0.1:1", stripeTestKey)
		change(p)
		_, err := webhook.NewHandler(&fakeTemporal{}, webhook.Options{
			Secrets: []string{secret}, Tolerance: time.Minute, MaxBody: maxBody, StartTimeout: time.Second, TaskQueue: taskQueue, Portal: p,
		})
		if err == nil {
			t.Errorf("%s: NewHandler accepted the portal", name)
		}
	}
}
