package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stripe/stripe-go/v76"

	"dunning/internal/testenv"
	"dunning/workflows"
)

// The version every endpoint must render events as, written out: it is
// what the webhook's fixtures and the Stripe Dashboard show.
const pinnedAPIVersion = "2023-10-16"

const endpointURL = "https://dunning.example.com/webhooks/stripe"

func TestStripeAPIVersionIsPinned(t *testing.T) {
	if stripe.APIVersion != pinnedAPIVersion {
		t.Fatalf("stripe-go is pinned to API version %s; stripe-setup and its docs say %s", stripe.APIVersion, pinnedAPIVersion)
	}
}

// --- against stripe-mock ----------------------------------------------------

func TestStripeSetupCreatesEndpointOnStripeMock(t *testing.T) {
	base, rec := recordingProxy(t, testenv.StartStripeMock(t))
	var out bytes.Buffer
	err := stripeSetup(t.Context(), stripeSetupOptions{
		Stripe: newStripeAPI(testenv.StripeMockKey, base),
		URL:    endpointURL,
	}, &out)
	if err != nil {
		t.Fatalf("stripe-setup against stripe-mock: %v\noutput:\n%s", err, out.String())
	}
	creates := rec.find(http.MethodPost, "/v1/webhook_endpoints")
	if len(creates) != 1 {
		t.Fatalf("want 1 create request, got %d; requests: %v", len(creates), rec.all())
	}
	form := creates[0].Form
	assertExactlyHandled(t, "create request's enabled_events[]", formList(form, "enabled_events"))
	if got := form.Get("api_version"); got != pinnedAPIVersion {
		t.Errorf("create request's api_version = %q, want %q", got, pinnedAPIVersion)
	}
	if got := form.Get("url"); got != endpointURL {
		t.Errorf("create request's url = %q, want %q", got, endpointURL)
	}
	if !strings.Contains(out.String(), "created webhook endpoint we_") {
		t.Errorf("output does not say it created an endpoint:\n%s", out.String())
	}
}

// A removed card reaches dunning from both kinds of account: legacy
// Card/Source accounts send customer.source.deleted, PaymentMethod-era
// accounts payment_method.detached. stripe-mock accepts the list only
// with event types Stripe knows.
func TestStripeSetupSubscribesToRemovedCardsOnStripeMock(t *testing.T) {
	base, rec := recordingProxy(t, testenv.StartStripeMock(t))
	var out bytes.Buffer
	err := stripeSetup(t.Context(), stripeSetupOptions{Stripe: newStripeAPI(testenv.StripeMockKey, base), URL: endpointURL}, &out)
	if err != nil {
		t.Fatalf("stripe-setup against stripe-mock: %v\noutput:\n%s", err, out.String())
	}
	creates := rec.find(http.MethodPost, "/v1/webhook_endpoints")
	if len(creates) != 1 {
		t.Fatalf("want 1 create request, got %d; requests: %v", len(creates), rec.all())
	}
	events := formList(creates[0].Form, "enabled_events")
	for _, want := range []string{workflows.EventSourceDeleted, workflows.EventPaymentMethodDetached} {
		if !slices.Contains(events, want) {
			t.Errorf("enabled_events %v, want %s among them", events, want)
		}
	}
}

// stripe-mock's list answers with one fixture endpoint (api_version null):
// configuring that URL goes through the update, which stripe-mock checks
// against the spec (it rejects api_version there, as Stripe does).
func TestStripeSetupUpdatesEndpointOnStripeMock(t *testing.T) {
	base, rec := recordingProxy(t, testenv.StartStripeMock(t))
	api := newStripeAPI(testenv.StripeMockKey, base)
	params := &stripe.WebhookEndpointListParams{}
	params.Context = t.Context()
	it := api.WebhookEndpoints.List(params)
	if !it.Next() {
		t.Fatalf("stripe-mock lists no webhook endpoint (err %v)", it.Err())
	}
	fixture := it.WebhookEndpoint()

	var out bytes.Buffer
	if err := stripeSetup(t.Context(), stripeSetupOptions{Stripe: api, URL: fixture.URL}, &out); err != nil {
		t.Fatalf("stripe-setup against stripe-mock: %v\noutput:\n%s", err, out.String())
	}
	if n := len(rec.find(http.MethodPost, "/v1/webhook_endpoints")); n != 0 {
		t.Errorf("created %d endpoints although one with the URL exists", n)
	}
	updates := rec.find(http.MethodPost, "/v1/webhook_endpoints/"+fixture.ID)
	if len(updates) != 1 {
		t.Fatalf("want 1 update of %s, got %d; requests: %v", fixture.ID, len(updates), rec.all())
	}
	assertExactlyHandled(t, "update request's enabled_events[]", formList(updates[0].Form, "enabled_events"))
	if !strings.Contains(out.String(), "updated webhook endpoint "+fixture.ID) {
		t.Errorf("output does not say it updated %s:\n%s", fixture.ID, out.String())
	}
}

// recordingProxy puts a reverse proxy that records every request in front
// of target and returns the proxy's URL.
func recordingProxy(t *testing.T, target string) (string, *requestLog) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	rec := &requestLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec.add(r, body)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, rec
}

// --- against a stateful fake Stripe -----------------------------------------

func TestStripeSetupCreatesThenFindsByURL(t *testing.T) {
	fake := newFakeStripe(t)

	first := fake.run(t, stripeSetupOptions{URL: endpointURL})
	if len(fake.all()) != 1 {
		t.Fatalf("first run: want 1 endpoint, have %d", len(fake.all()))
	}
	ep := fake.all()[0]
	assertExactlyHandled(t, "created endpoint's events", ep.EnabledEvents)
	if ep.APIVersion != pinnedAPIVersion || ep.URL != endpointURL {
		t.Errorf("created endpoint has api_version %q, url %q", ep.APIVersion, ep.URL)
	}
	for _, want := range []string{"created webhook endpoint " + ep.ID, "STRIPE_WEBHOOK_SECRET=" + ep.Secret, "comma-separated"} {
		if !strings.Contains(first, want) {
			t.Errorf("first run's output lacks %q:\n%s", want, first)
		}
	}
	for _, e := range workflows.HandledEventTypes() {
		if !strings.Contains(first, e) {
			t.Errorf("first run's output does not list %s", e)
		}
	}

	// Nothing to change: found by URL, reported, no write at all.
	fake.reset()
	second := fake.run(t, stripeSetupOptions{URL: endpointURL})
	if len(fake.all()) != 1 {
		t.Fatalf("second run: want still 1 endpoint, have %d", len(fake.all()))
	}
	if posts := fake.log.method(http.MethodPost); len(posts) != 0 {
		t.Errorf("second run wrote although nothing changed: %v", posts)
	}
	if !strings.Contains(second, "unchanged webhook endpoint "+ep.ID) {
		t.Errorf("second run's output does not say unchanged:\n%s", second)
	}
	if strings.Contains(second, ep.Secret) {
		t.Errorf("second run printed a secret:\n%s", second)
	}

	// A new description: found by URL and updated in place.
	fake.reset()
	third := fake.run(t, stripeSetupOptions{URL: endpointURL, Description: "dunning (prod)"})
	if len(fake.all()) != 1 {
		t.Fatalf("third run: want still 1 endpoint, have %d", len(fake.all()))
	}
	if n := len(fake.log.find(http.MethodPost, "/v1/webhook_endpoints/"+ep.ID)); n != 1 {
		t.Errorf("third run: want 1 update of %s, got %d: %v", ep.ID, n, fake.log.all())
	}
	if got := fake.all()[0].Description; got != "dunning (prod)" {
		t.Errorf("description = %q after update", got)
	}
	if !strings.Contains(third, "updated webhook endpoint "+ep.ID) || strings.Contains(third, ep.Secret) {
		t.Errorf("third run's output should say updated and show no secret:\n%s", third)
	}
}

func TestStripeSetupSetsExactlyTheHandledEvents(t *testing.T) {
	handled := workflows.HandledEventTypes()
	for name, events := range map[string][]string{
		"extra events":        append([]string{"charge.failed", "customer.created"}, handled...),
		"missing events":      handled[:3],
		"extra and missing":   {"charge.succeeded", workflows.EventPaymentFailed},
		"all events wildcard": {"*"},
	} {
		t.Run(name, func(t *testing.T) {
			fake := newFakeStripe(t)
			id := fake.seed(fakeEndpoint{URL: endpointURL, EnabledEvents: events, APIVersion: pinnedAPIVersion})
			out := fake.run(t, stripeSetupOptions{URL: endpointURL})

			updates := fake.log.find(http.MethodPost, "/v1/webhook_endpoints/"+id)
			if len(updates) != 1 {
				t.Fatalf("want 1 update of %s, got %d: %v", id, len(updates), fake.log.all())
			}
			assertExactlyHandled(t, "update request's enabled_events[]", formList(updates[0].Form, "enabled_events"))
			assertExactlyHandled(t, "endpoint's events after the update", fake.all()[0].EnabledEvents)
			if len(fake.all()) != 1 {
				t.Errorf("have %d endpoints, want 1", len(fake.all()))
			}
			if !strings.Contains(out, "updated webhook endpoint "+id) {
				t.Errorf("output does not say updated:\n%s", out)
			}
			for _, e := range events {
				if !slices.Contains(handled, e) && !strings.Contains(out, e) {
					t.Errorf("output does not name the removed event %s:\n%s", e, out)
				}
			}
		})
	}
}

func TestStripeSetupFindsEndpointOnLaterPage(t *testing.T) {
	fake := newFakeStripe(t)
	for i := range 12 { // Stripe's default page is 10
		fake.seed(fakeEndpoint{URL: fmt.Sprintf("https://other%d.example.com/hook", i), EnabledEvents: []string{"charge.failed"}, APIVersion: pinnedAPIVersion})
	}
	id := fake.seed(fakeEndpoint{URL: endpointURL, EnabledEvents: []string{"invoice.paid"}, APIVersion: pinnedAPIVersion})
	out := fake.run(t, stripeSetupOptions{URL: endpointURL})

	lists := fake.log.find(http.MethodGet, "/v1/webhook_endpoints")
	if len(lists) < 2 || lists[1].Form.Get("starting_after") == "" {
		t.Errorf("want the list read page by page with starting_after, got %v", lists)
	}
	if n := len(fake.log.find(http.MethodPost, "/v1/webhook_endpoints")); n != 0 {
		t.Errorf("created %d endpoints although %s has the URL (on page 2)", n, id)
	}
	if n := len(fake.log.find(http.MethodPost, "/v1/webhook_endpoints/"+id)); n != 1 {
		t.Errorf("want 1 update of %s, got %d: %v", id, n, fake.log.all())
	}
	assertExactlyHandled(t, "events of the endpoint on page 2", fake.byID(id).EnabledEvents)
	if !strings.Contains(out, "updated webhook endpoint "+id) {
		t.Errorf("output does not say updated %s:\n%s", id, out)
	}
}

func TestStripeSetupReenablesDisabledEndpoint(t *testing.T) {
	fake := newFakeStripe(t)
	id := fake.seed(fakeEndpoint{URL: endpointURL, EnabledEvents: workflows.HandledEventTypes(), APIVersion: pinnedAPIVersion, Status: "disabled"})
	out := fake.run(t, stripeSetupOptions{URL: endpointURL})

	updates := fake.log.find(http.MethodPost, "/v1/webhook_endpoints/"+id)
	if len(updates) != 1 || updates[0].Form.Get("disabled") != "false" {
		t.Fatalf("want 1 update of %s with disabled=false, got %v", id, fake.log.all())
	}
	if got := fake.byID(id).Status; got != "enabled" {
		t.Errorf("endpoint status = %q after the run, want enabled", got)
	}
	if !strings.Contains(out, "re-enabled") {
		t.Errorf("output does not say it re-enabled the endpoint:\n%s", out)
	}
}

func TestStripeSetupReportsOtherAPIVersion(t *testing.T) {
	for name, version := range map[string]string{"older version": "2020-08-27", "account default": ""} {
		t.Run(name, func(t *testing.T) {
			fake := newFakeStripe(t)
			id := fake.seed(fakeEndpoint{URL: endpointURL, EnabledEvents: []string{"charge.failed"}, APIVersion: version})
			out := fake.run(t, stripeSetupOptions{URL: endpointURL})

			for _, want := range []string{"API version mismatch", pinnedAPIVersion, "new endpoint is needed"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if version != "" && !strings.Contains(out, version) {
				t.Errorf("output does not name the endpoint's version %s:\n%s", version, out)
			}
			// The events are still put right on the endpoint that exists.
			assertExactlyHandled(t, "events after the run", fake.byID(id).EnabledEvents)
			if n := len(fake.log.find(http.MethodPost, "/v1/webhook_endpoints")); n != 0 {
				t.Errorf("created %d endpoints; the mismatch is reported, not acted on", n)
			}
		})
	}
}

func TestStripeSetupWarnsAboutOtherEndpointsWithTheURL(t *testing.T) {
	fake := newFakeStripe(t)
	first := fake.seed(fakeEndpoint{URL: endpointURL, EnabledEvents: []string{"charge.failed"}, APIVersion: pinnedAPIVersion})
	second := fake.seed(fakeEndpoint{URL: endpointURL, EnabledEvents: []string{"charge.failed"}, APIVersion: pinnedAPIVersion})
	out := fake.run(t, stripeSetupOptions{URL: endpointURL})

	if n := len(fake.log.find(http.MethodPost, "/v1/webhook_endpoints/"+first)); n != 1 {
		t.Errorf("want the first endpoint %s updated once, got %d", first, n)
	}
	if n := len(fake.log.find(http.MethodPost, "/v1/webhook_endpoints/"+second)); n != 0 {
		t.Errorf("the second endpoint %s was updated too", second)
	}
	if !strings.Contains(out, "WARNING") || !strings.Contains(out, second) {
		t.Errorf("output does not warn about %s:\n%s", second, out)
	}
}

func TestStripeSetupValidatesURL(t *testing.T) {
	fake := newFakeStripe(t)
	for _, bad := range []string{
		"http://example.com/webhooks/stripe",
		"example.com/webhooks/stripe",
		"/webhooks/stripe",
		"https:///webhooks/stripe",
		"ftp://example.com/webhooks/stripe",
		"https://user:pw@example.com/webhooks/stripe",
	} {
		var out bytes.Buffer
		err := runStripeSetup(t.Context(), []string{"--url", bad, "--api-key", fake.key, "--api-base", fake.srv.URL}, &out)
		if err == nil {
			t.Errorf("--url %s was accepted", bad)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "--url") ||
			!strings.Contains(msg, "https") && !strings.Contains(msg, "absolute") && !strings.Contains(msg, "user") {
			t.Errorf("--url %s: the error does not say what is wrong: %v", bad, err)
		}
	}
	if reqs := fake.log.all(); len(reqs) != 0 {
		t.Errorf("Stripe was called for an invalid URL: %v", reqs)
	}
	var out bytes.Buffer
	if err := runStripeSetup(t.Context(), []string{"--api-key", fake.key, "--api-base", fake.srv.URL}, &out); err == nil || !strings.Contains(err.Error(), "--url") {
		t.Errorf("without --url: err = %v, want one naming --url", err)
	}

	for _, ok := range []string{"http://localhost:8080/webhooks/stripe", "http://127.0.0.1:8080/webhooks/stripe", endpointURL} {
		var out bytes.Buffer
		if err := runStripeSetup(t.Context(), []string{"--url", ok, "--api-key", fake.key, "--api-base", fake.srv.URL}, &out); err != nil {
			t.Errorf("--url %s: %v", ok, err)
		}
	}
	if len(fake.all()) != 3 {
		t.Errorf("want 3 endpoints created for the 3 valid URLs, have %d", len(fake.all()))
	}
}

func TestStripeSetupNeverPrintsAPIKey(t *testing.T) {
	const key = "sk_test_51DunningNeverPrintThisKey"
	fake := newFakeStripe(t)
	fake.key = key
	t.Setenv("STRIPE_API_KEY", key)
	t.Setenv("STRIPE_API_BASE_URL", fake.srv.URL)

	var out bytes.Buffer
	check := func(step string, err error) {
		t.Helper()
		if strings.Contains(out.String(), key) || err != nil && strings.Contains(err.Error(), key) {
			t.Errorf("%s: the API key appears in the output or error (%v):\n%s", step, err, out.String())
		}
	}
	// From the environment: create, then update.
	err := runStripeSetup(t.Context(), []string{"--url", endpointURL}, &out)
	check("create", err)
	if err != nil || len(fake.all()) != 1 {
		t.Fatalf("create with STRIPE_API_KEY and STRIPE_API_BASE_URL: %v, %d endpoints", err, len(fake.all()))
	}
	err = runStripeSetup(t.Context(), []string{"--url", endpointURL, "--description", "renamed"}, &out)
	check("update", err)
	if err != nil || fake.all()[0].Description != "renamed" {
		t.Fatalf("update: %v, description %q", err, fake.all()[0].Description)
	}
	// From the flag, rejected by Stripe.
	err = runStripeSetup(t.Context(), []string{"--url", endpointURL, "--api-key", key + "x"}, &out)
	if err == nil {
		t.Fatal("a wrong key was accepted")
	}
	check("wrong key", err)
	// Usage, with the key in the environment.
	err = runStripeSetup(t.Context(), []string{"-h"}, &out)
	check("usage", err)
	if !strings.Contains(out.String(), "--api-key") && !strings.Contains(out.String(), "-api-key") {
		t.Errorf("usage does not list the flags:\n%s", out.String())
	}
}

func TestStripeSetupRequiresAPIKey(t *testing.T) {
	t.Setenv("STRIPE_API_KEY", "")
	var out bytes.Buffer
	err := runStripeSetup(t.Context(), []string{"--url", endpointURL, "--api-base", "http://127.0.0.1:1"}, &out)
	if err == nil || !strings.Contains(err.Error(), "STRIPE_API_KEY") {
		t.Errorf("without a key: err = %v, want one naming STRIPE_API_KEY", err)
	}
}

// --- helpers ------------------------------------------------------------------

func assertExactlyHandled(t *testing.T, what string, got []string) {
	t.Helper()
	want := workflows.HandledEventTypes()
	if sorted := slices.Sorted(slices.Values(got)); !slices.Equal(sorted, want) {
		t.Errorf("%s = %v\nwant exactly %v", what, sorted, want)
	}
}

// formList returns the values of a form-encoded list, in order: stripe-go
// writes enabled_events[0], enabled_events[1], …; enabled_events[] is
// accepted too.
func formList(form url.Values, name string) []string {
	var list []string
	list = append(list, form[name+"[]"]...)
	for i := 0; ; i++ {
		v, ok := form[name+"["+strconv.Itoa(i)+"]"]
		if !ok {
			return list
		}
		list = append(list, v...)
	}
}

type recordedRequest struct {
	Method, Path string
	Form         url.Values // the query of a GET, the body of a POST
}

func (r recordedRequest) String() string { return r.Method + " " + r.Path + " " + r.Form.Encode() }

type requestLog struct {
	mu   sync.Mutex
	reqs []recordedRequest
}

func (l *requestLog) add(r *http.Request, body []byte) {
	form := r.URL.Query()
	if r.Method == http.MethodPost {
		form, _ = url.ParseQuery(string(body))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, recordedRequest{Method: r.Method, Path: r.URL.Path, Form: form})
}

func (l *requestLog) all() []recordedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs)
}

func (l *requestLog) find(method, path string) []recordedRequest {
	var found []recordedRequest
	for _, r := range l.all() {
		if r.Method == method && r.Path == path {
			found = append(found, r)
		}
	}
	return found
}

func (l *requestLog) method(method string) []recordedRequest {
	var found []recordedRequest
	for _, r := range l.all() {
		if r.Method == method {
			found = append(found, r)
		}
	}
	return found
}

func (l *requestLog) clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = nil
}

// fakeStripe keeps webhook endpoints the way Stripe does and answers
// /v1/webhook_endpoints with Stripe's shapes and rules: a list page by page
// (limit, starting_after, has_more), the secret only on create, no
// api_version on update, unknown parameters rejected, the key checked.
type fakeStripe struct {
	key string
	srv *httptest.Server
	log requestLog

	mu        sync.Mutex
	endpoints []*fakeEndpoint
	nextID    int
}

type fakeEndpoint struct {
	ID            string
	URL           string
	EnabledEvents []string
	APIVersion    string // "" is null: the account's default
	Status        string
	Description   string
	Secret        string
}

func newFakeStripe(t *testing.T) *fakeStripe {
	f := &fakeStripe{key: "sk_test_fake"}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// run runs stripeSetup against the fake and returns its output.
func (f *fakeStripe) run(t *testing.T, opts stripeSetupOptions) string {
	t.Helper()
	opts.Stripe = newStripeAPI(f.key, f.srv.URL)
	var out bytes.Buffer
	if err := stripeSetup(t.Context(), opts, &out); err != nil {
		t.Fatalf("stripeSetup: %v\noutput:\n%s", err, out.String())
	}
	return out.String()
}

func (f *fakeStripe) reset() { f.log.clear() }

func (f *fakeStripe) seed(ep fakeEndpoint) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	ep.ID = fmt.Sprintf("we_fake%04d", f.nextID)
	ep.Secret = "whsec_fake_" + ep.ID
	if ep.Status == "" {
		ep.Status = "enabled"
	}
	f.endpoints = append(f.endpoints, &ep)
	return ep.ID
}

// byID returns a copy of the endpoint id, or the zero value.
func (f *fakeStripe) byID(id string) fakeEndpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ep := f.lookup(id); ep != nil {
		return *ep
	}
	return fakeEndpoint{}
}

// all returns a copy of every endpoint, in Stripe's order.
func (f *fakeStripe) all() []fakeEndpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	eps := make([]fakeEndpoint, len(f.endpoints))
	for i, ep := range f.endpoints {
		eps[i] = *ep
	}
	return eps
}

// lookup finds an endpoint; f.mu must be held.
func (f *fakeStripe) lookup(id string) *fakeEndpoint {
	for _, ep := range f.endpoints {
		if ep.ID == id {
			return ep
		}
	}
	return nil
}

func (f *fakeStripe) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.log.add(r, body)
	if r.Header.Get("Authorization") != "Bearer "+f.key {
		stripeError(w, http.StatusUnauthorized, "Invalid API Key provided: sk_test_****")
		return
	}
	form := r.URL.Query()
	if r.Method == http.MethodPost {
		form, _ = url.ParseQuery(string(body))
	}
	const prefix = "/v1/webhook_endpoints"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == prefix:
		f.list(w, form)
	case r.Method == http.MethodPost && r.URL.Path == prefix:
		f.create(w, form)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, prefix+"/"):
		f.update(w, strings.TrimPrefix(r.URL.Path, prefix+"/"), form)
	default:
		stripeError(w, http.StatusNotFound, "Unrecognized request URL ("+r.Method+": "+r.URL.Path+")")
	}
}

func (f *fakeStripe) list(w http.ResponseWriter, form url.Values) {
	limit := 10
	if s := form.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			stripeError(w, http.StatusBadRequest, "Invalid integer: "+s)
			return
		}
		limit = n
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	start := 0
	if after := form.Get("starting_after"); after != "" {
		i := slices.IndexFunc(f.endpoints, func(ep *fakeEndpoint) bool { return ep.ID == after })
		if i < 0 {
			stripeError(w, http.StatusBadRequest, "No such webhook endpoint: '"+after+"'")
			return
		}
		start = i + 1
	}
	end := min(start+limit, len(f.endpoints))
	data := []map[string]any{}
	for _, ep := range f.endpoints[start:end] {
		data = append(data, ep.json(false))
	}
	writeJSON(w, map[string]any{"object": "list", "data": data, "has_more": end < len(f.endpoints), "url": "/v1/webhook_endpoints"})
}

func (f *fakeStripe) create(w http.ResponseWriter, form url.Values) {
	if p := unknownParam(form, "url", "enabled_events", "api_version", "description", "connect", "metadata"); p != "" {
		stripeError(w, http.StatusBadRequest, "Received unknown parameter: "+p)
		return
	}
	events := formList(form, "enabled_events")
	if form.Get("url") == "" || len(events) == 0 {
		stripeError(w, http.StatusBadRequest, "Missing required param: url or enabled_events.")
		return
	}
	id := f.seed(fakeEndpoint{URL: form.Get("url"), EnabledEvents: events, APIVersion: form.Get("api_version"), Description: form.Get("description")})
	ep := f.byID(id)
	writeJSON(w, ep.json(true))
}

func (f *fakeStripe) update(w http.ResponseWriter, id string, form url.Values) {
	if p := unknownParam(form, "url", "enabled_events", "description", "disabled", "metadata"); p != "" {
		stripeError(w, http.StatusBadRequest, "Received unknown parameter: "+p)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ep := f.lookup(id)
	if ep == nil {
		stripeError(w, http.StatusNotFound, "No such webhook endpoint: '"+id+"'")
		return
	}
	if events := formList(form, "enabled_events"); len(events) > 0 {
		ep.EnabledEvents = events
	}
	if form.Has("description") {
		ep.Description = form.Get("description")
	}
	if form.Has("url") {
		ep.URL = form.Get("url")
	}
	switch form.Get("disabled") {
	case "true":
		ep.Status = "disabled"
	case "false":
		ep.Status = "enabled"
	}
	writeJSON(w, ep.json(false))
}

func (ep *fakeEndpoint) json(withSecret bool) map[string]any {
	m := map[string]any{
		"id": ep.ID, "object": "webhook_endpoint", "url": ep.URL, "enabled_events": ep.EnabledEvents,
		"api_version": nil, "status": ep.Status, "description": ep.Description, "livemode": false,
		"application": nil, "created": 1700000000, "metadata": map[string]string{},
	}
	if ep.APIVersion != "" {
		m["api_version"] = ep.APIVersion
	}
	if withSecret {
		m["secret"] = ep.Secret
	}
	return m
}

// unknownParam returns the first form key whose name (before any [) is not
// allowed.
func unknownParam(form url.Values, allowed ...string) string {
	for k := range form {
		if name, _, _ := strings.Cut(k, "["); !slices.Contains(allowed, name) {
			return k
		}
	}
	return ""
}

func stripeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"type": "invalid_request_error", "message": msg}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
