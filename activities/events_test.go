package activities_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"dunning/activities"
	"dunning/internal/testenv"
	"dunning/workflows"
)

const eventsKey = "sk_test_dunning_events"

// stripeEvent is one event of the fake Stripe's list.
type stripeEvent struct {
	ID      string
	Type    string
	Created int64
	Extra   string // padding, to make an event large
}

func (e stripeEvent) json() map[string]any {
	obj := map[string]any{"id": "in_" + e.ID[4:], "object": "invoice", "customer": "cus_Events01"}
	if e.Extra != "" {
		obj["description"] = e.Extra
	}
	return map[string]any{
		"id": e.ID, "object": "event", "api_version": "2023-10-16", "created": e.Created,
		"type": e.Type, "livemode": false, "data": map[string]any{"object": obj},
	}
}

// fakeEvents serves GET /v1/events as Stripe does: newest first, filtered
// by types[] and created[gte] / created[lt], limit events a page after
// starting_after, pretty-printed. It fails the test on a request Stripe
// would answer differently.
func fakeEvents(t *testing.T, events []stripeEvent) (*httptest.Server, *requests) {
	t.Helper()
	seen := &requests{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := read(t, r)
		seen.add(req)
		fail := func(status int, msg string) {
			t.Errorf("%s %s?%s: %s", r.Method, r.URL.Path, r.URL.RawQuery, msg)
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":{"type":"invalid_request_error","message":%q}}`, msg)
		}
		if r.Method != http.MethodGet || r.URL.Path != "/v1/events" {
			fail(http.StatusNotFound, "unrecognised request URL")
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+eventsKey {
			fail(http.StatusUnauthorized, "invalid API key")
			return
		}
		q := r.URL.Query()
		for k := range q {
			if !slices.Contains([]string{"types[]", "created[gte]", "created[lt]", "limit", "starting_after"}, k) {
				fail(http.StatusBadRequest, "received unknown parameter: "+k)
				return
			}
		}
		types := q["types[]"]
		if len(types) == 0 || len(types) > 20 {
			fail(http.StatusBadRequest, "types[] must list 1 to 20 types")
			return
		}
		limit, err := strconv.Atoi(q.Get("limit"))
		if err != nil || limit < 1 || limit > 100 {
			fail(http.StatusBadRequest, "limit must be 1 to 100")
			return
		}
		gte, _ := strconv.ParseInt(q.Get("created[gte]"), 10, 64)
		lt, _ := strconv.ParseInt(q.Get("created[lt]"), 10, 64)
		var match []stripeEvent
		for _, e := range events {
			if slices.Contains(types, e.Type) && e.Created >= gte && (lt == 0 || e.Created < lt) {
				match = append(match, e)
			}
		}
		if after := q.Get("starting_after"); after != "" {
			i := slices.IndexFunc(match, func(e stripeEvent) bool { return e.ID == after })
			if i < 0 {
				fail(http.StatusBadRequest, "no such event: "+after)
				return
			}
			match = match[i+1:]
		}
		hasMore := len(match) > limit
		match = match[:min(limit, len(match))]
		data := []map[string]any{}
		for _, e := range match {
			data = append(data, e.json())
		}
		body, _ := json.MarshalIndent(map[string]any{"object": "list", "url": "/v1/events", "has_more": hasMore, "data": data}, "", "  ")
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func eventsActivities(baseURL string) *activities.Activities {
	return &activities.Activities{
		Reconcile: &activities.Reconciler{StripeBaseURL: baseURL, StripeAPIKey: eventsKey},
		Log:       quietLogger(),
	}
}

var listFrom = time.Date(2026, 3, 11, 12, 0, 0, 0, time.UTC)

func TestListEventsPagesThroughStripesList(t *testing.T) {
	from, to := listFrom, listFrom.Add(72*time.Hour)
	at := func(d time.Duration) int64 { return from.Add(d).Unix() }
	// Newest first, as Stripe lists them.
	all := []stripeEvent{
		{ID: "evt_tooNew", Type: workflows.EventInvoicePaid, Created: at(72 * time.Hour)},
		{ID: "evt_5", Type: workflows.EventInvoicePaid, Created: at(70 * time.Hour)},
		{ID: "evt_4", Type: workflows.EventPaymentFailed, Created: at(50 * time.Hour)},
		{ID: "evt_notHandled", Type: "charge.refunded", Created: at(40 * time.Hour)},
		{ID: "evt_3", Type: workflows.EventSourceExpiring, Created: at(30 * time.Hour)},
		{ID: "evt_2", Type: workflows.EventCustomerUpdated, Created: at(10 * time.Hour)},
		{ID: "evt_1", Type: workflows.EventPaymentSucceeded, Created: at(0)},
		{ID: "evt_tooOld", Type: workflows.EventInvoicePaid, Created: at(-time.Second)},
	}
	srv, seen := fakeEvents(t, all)
	acts := eventsActivities(srv.URL)

	var got []string
	cursor := ""
	for range 10 {
		page, err := acts.ListEvents(context.Background(), activities.ListEventsInput{
			Types: workflows.HandledEventTypes(), CreatedGTE: from, CreatedLT: to, StartingAfter: cursor, Limit: 2,
		})
		if err != nil {
			t.Fatalf("ListEvents after %q: %v", cursor, err)
		}
		for _, raw := range page.Events {
			if !json.Valid(raw) || bytes.ContainsAny(raw, "\n") {
				t.Errorf("event is not compact JSON: %s", raw)
			}
			var ev struct{ ID, Type string }
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			got = append(got, ev.ID)
		}
		if !page.HasMore {
			break
		}
		if page.LastID != got[len(got)-1] {
			t.Errorf("LastID %q, want the last event of the page %q", page.LastID, got[len(got)-1])
		}
		cursor = page.LastID
	}
	if want := []string{"evt_5", "evt_4", "evt_3", "evt_2", "evt_1"}; !slices.Equal(got, want) {
		t.Errorf("events listed %q, want %q", got, want)
	}

	reqs := seen.to(http.MethodGet, "/v1/events")
	if len(reqs) != 3 {
		t.Fatalf("%d requests to /v1/events, want 3 pages", len(reqs))
	}
	for i, r := range reqs {
		if !slices.Equal(r.Query["types[]"], workflows.HandledEventTypes()) {
			t.Errorf("request %d: types[] = %q, want each handled type once", i, r.Query["types[]"])
		}
		if r.Query.Get("created[gte]") != strconv.FormatInt(from.Unix(), 10) || r.Query.Get("created[lt]") != strconv.FormatInt(to.Unix(), 10) {
			t.Errorf("request %d: created[gte]=%s created[lt]=%s, want %d and %d", i,
				r.Query.Get("created[gte]"), r.Query.Get("created[lt]"), from.Unix(), to.Unix())
		}
		if r.Query.Get("limit") != "2" {
			t.Errorf("request %d: limit=%s, want 2", i, r.Query.Get("limit"))
		}
	}
	if after := []string{reqs[0].Query.Get("starting_after"), reqs[1].Query.Get("starting_after"), reqs[2].Query.Get("starting_after")}; !slices.Equal(after, []string{"", "evt_4", "evt_2"}) {
		t.Errorf("starting_after %q, want none, then the last ID of each page", after)
	}
	if _, ok := reqs[0].Query["starting_after"]; ok {
		t.Error("the first page sends starting_after; Stripe rejects an empty one")
	}
}

func TestListEventsCapsThePageSize(t *testing.T) {
	srv, seen := fakeEvents(t, nil)
	acts := eventsActivities(srv.URL)
	for _, limit := range []int{0, 500} {
		if _, err := acts.ListEvents(context.Background(), activities.ListEventsInput{Types: []string{workflows.EventInvoicePaid}, Limit: limit}); err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		}
	}
	for _, r := range seen.list() {
		if r.Query.Get("limit") != "100" {
			t.Errorf("limit=%s, want Stripe's maximum 100", r.Query.Get("limit"))
		}
	}
}

func TestListEventsCutsAPageOfLargeEvents(t *testing.T) {
	big := strings.Repeat("x", 300<<10)
	var all []stripeEvent
	for i := 5; i >= 1; i-- {
		all = append(all, stripeEvent{ID: fmt.Sprintf("evt_big%d", i), Type: workflows.EventInvoicePaid, Created: listFrom.Unix() + int64(i), Extra: big})
	}
	srv, _ := fakeEvents(t, all)
	page, err := eventsActivities(srv.URL).ListEvents(context.Background(), activities.ListEventsInput{
		Types: []string{workflows.EventInvoicePaid}, CreatedGTE: listFrom,
	})
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	for _, raw := range page.Events {
		size += len(raw)
	}
	if len(page.Events) == 0 || len(page.Events) == 5 || size > 1<<20 {
		t.Fatalf("%d events of %d bytes in all, want the page cut below 1 MiB", len(page.Events), size)
	}
	if !page.HasMore || page.LastID != fmt.Sprintf("evt_big%d", 5-len(page.Events)+1) {
		t.Errorf("HasMore %v, LastID %q: want more, after the last event kept", page.HasMore, page.LastID)
	}
}

func TestListEventsClassifiesStripeErrors(t *testing.T) {
	for _, tc := range []struct {
		status    int
		retryable bool
	}{
		{http.StatusTooManyRequests, true},
		{http.StatusInternalServerError, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusBadRequest, false},
		{http.StatusUnauthorized, false},
		{http.StatusNotFound, false},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				fmt.Fprint(w, `{"error":{"type":"invalid_request_error","code":"some_code","message":"Stripe says no"}}`)
			}))
			defer srv.Close()
			_, err := eventsActivities(srv.URL).ListEvents(context.Background(), activities.ListEventsInput{Types: []string{workflows.EventInvoicePaid}})
			if tc.retryable {
				wantRetryable(t, err)
			} else {
				wantNonRetryable(t, err, activities.ErrStripeRejected)
			}
			if !strings.Contains(err.Error(), strconv.Itoa(tc.status)) || !strings.Contains(err.Error(), "Stripe says no") {
				t.Errorf("error %q does not say what Stripe answered", err)
			}
		})
	}
	t.Run("network", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		_, err := eventsActivities(srv.URL).ListEvents(context.Background(), activities.ListEventsInput{Types: []string{workflows.EventInvoicePaid}})
		wantRetryable(t, err)
	})
}

func TestListEventsWithoutAKeyRunsDry(t *testing.T) {
	srv, seen := counter(t)
	acts := eventsActivities(srv.URL)
	acts.Reconcile.StripeAPIKey = ""
	page, err := acts.ListEvents(context.Background(), activities.ListEventsInput{Types: workflows.HandledEventTypes()})
	if err != nil {
		t.Fatal(err)
	}
	if !page.DryRun || len(page.Events) != 0 || page.HasMore {
		t.Errorf("page %+v, want an empty dry run", page)
	}
	if n := len(seen.list()); n != 0 {
		t.Errorf("%d requests made without a key", n)
	}
}

func TestListEventsNeedsTypes(t *testing.T) {
	srv, seen := counter(t)
	_, err := eventsActivities(srv.URL).ListEvents(context.Background(), activities.ListEventsInput{})
	wantNonRetryable(t, err, activities.ErrBadInput)
	if n := len(seen.list()); n != 0 {
		t.Errorf("%d requests made for every type", n)
	}
}

// stripe-mock checks the request against Stripe's API specification, so
// this is what Stripe itself would say to the query ListEvents sends.
func TestListEventsAgainstStripeMock(t *testing.T) {
	base := testenv.StartStripeMock(t)
	acts := eventsActivities(base)
	acts.Reconcile.StripeAPIKey = testenv.StripeMockKey
	page, err := acts.ListEvents(context.Background(), activities.ListEventsInput{
		Types: workflows.HandledEventTypes(), CreatedGTE: time.Now().Add(-72 * time.Hour), CreatedLT: time.Now(),
		StartingAfter: "evt_1OdunningCursor", Limit: 50,
	})
	if err != nil {
		t.Fatalf("stripe-mock rejected the list request: %v", err)
	}
	for _, raw := range page.Events {
		var ev struct{ ID, Object string }
		if err := json.Unmarshal(raw, &ev); err != nil || ev.Object != "event" || ev.ID == "" {
			t.Errorf("listed item is not an event: %s", raw)
		}
	}
}

// startRecorder stands in for the worker's event starter: outcomes by
// event ID, and an error for one event while failOn is set.
type startRecorder struct {
	mu       sync.Mutex
	outcomes map[string]string
	failOn   string
	calls    []string
}

func (s *startRecorder) start(_ context.Context, raw json.RawMessage) (string, error) {
	var ev struct{ ID string }
	if err := json.Unmarshal(raw, &ev); err != nil || ev.ID == "" {
		return activities.EventInvalid, errors.New("not an event")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, ev.ID)
	if ev.ID == s.failOn {
		return "", errors.New("temporal unavailable")
	}
	return s.outcomes[ev.ID], nil
}

// countingMetrics records what the activities count.
type countingMetrics struct {
	mu     sync.Mutex
	runs   int
	events map[string]int
}

func (m *countingMetrics) Run() { m.mu.Lock(); m.runs++; m.mu.Unlock() }
func (m *countingMetrics) Event(outcome string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.events == nil {
		m.events = map[string]int{}
	}
	m.events[outcome]++
}

func rawEvents(ids ...string) []json.RawMessage {
	var out []json.RawMessage
	for _, id := range ids {
		if id == "" {
			out = append(out, json.RawMessage(`{"object":"event"}`))
			continue
		}
		out = append(out, json.RawMessage(fmt.Sprintf(`{"id":%q,"object":"event","type":"invoice.paid"}`, id)))
	}
	return out
}

func startEvents(t *testing.T, acts *activities.Activities, env *testsuite.TestActivityEnvironment, events []json.RawMessage) (activities.StartEventsResult, error) {
	t.Helper()
	env.RegisterActivity(acts)
	v, err := env.ExecuteActivity(acts.StartEvents, activities.StartEventsInput{Events: events})
	var res activities.StartEventsResult
	if err == nil {
		if err := v.Get(&res); err != nil {
			t.Fatal(err)
		}
	}
	return res, err
}

func TestStartEventsCountsEachOutcome(t *testing.T) {
	rec := &startRecorder{outcomes: map[string]string{
		"evt_new1": activities.EventStarted, "evt_new2": activities.EventStarted,
		"evt_old1": activities.EventDuplicate, "evt_other": activities.EventIgnored,
	}}
	metrics := &countingMetrics{}
	acts := &activities.Activities{Log: quietLogger(), Reconcile: &activities.Reconciler{StartEvent: rec.start, Metrics: metrics}}
	var suite testsuite.WorkflowTestSuite
	res, err := startEvents(t, acts, suite.NewTestActivityEnvironment(), rawEvents("evt_new1", "evt_old1", "", "evt_other", "evt_new2"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (activities.StartEventsResult{Started: 2, AlreadyKnown: 1, Ignored: 1, Invalid: 1}); res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
	if want := []string{"evt_new1", "evt_old1", "evt_other", "evt_new2"}; !slices.Equal(rec.calls, want) {
		t.Errorf("started %q, want %q in order", rec.calls, want)
	}
	want := map[string]int{activities.EventStarted: 2, activities.EventDuplicate: 1, activities.EventIgnored: 1, activities.EventInvalid: 1}
	if fmt.Sprint(metrics.events) != fmt.Sprint(want) {
		t.Errorf("metrics counted %v, want %v", metrics.events, want)
	}
}

func TestStartEventsRetryCarriesOnWhereItStopped(t *testing.T) {
	rec := &startRecorder{failOn: "evt_3", outcomes: map[string]string{
		"evt_1": activities.EventStarted, "evt_2": activities.EventDuplicate,
		"evt_3": activities.EventStarted, "evt_4": activities.EventStarted,
	}}
	acts := &activities.Activities{Log: quietLogger(), Reconcile: &activities.Reconciler{StartEvent: rec.start}}
	events := rawEvents("evt_1", "evt_2", "evt_3", "evt_4")

	var suite testsuite.WorkflowTestSuite
	first := suite.NewTestActivityEnvironment()
	heartbeat := lastHeartbeat(t, first)
	_, err := startEvents(t, acts, first, events)
	wantRetryable(t, err)
	details := heartbeat()
	if details == nil {
		t.Fatal("no progress recorded before the failure")
	}

	// Temporal hands the last heartbeat to the next attempt.
	rec.failOn, rec.calls = "", nil
	second := suite.NewTestActivityEnvironment()
	second.SetHeartbeatDetails(details)
	res, err := startEvents(t, acts, second, events)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"evt_3", "evt_4"}; !slices.Equal(rec.calls, want) {
		t.Errorf("retry started %q, want only %q", rec.calls, want)
	}
	if want := (activities.StartEventsResult{Started: 3, AlreadyKnown: 1}); res != want {
		t.Errorf("result %+v, want %+v: each event counted once across attempts", res, want)
	}
}

func TestStartEventsWithoutAStarterFails(t *testing.T) {
	acts := &activities.Activities{Log: quietLogger()}
	_, err := acts.StartEvents(context.Background(), activities.StartEventsInput{Events: rawEvents("evt_1")})
	wantNonRetryable(t, err, activities.ErrBadInput)
}

func TestListEventsReducesEachEventAndCountsTheOnesLeftOut(t *testing.T) {
	all := []stripeEvent{
		{ID: "evt_keep2", Type: workflows.EventInvoicePaid, Created: listFrom.Unix() + 4, Extra: "jane@example.com"},
		{ID: "evt_other", Type: workflows.EventInvoicePaid, Created: listFrom.Unix() + 3},
		{ID: "evt_broken", Type: workflows.EventInvoicePaid, Created: listFrom.Unix() + 2},
		{ID: "evt_keep1", Type: workflows.EventInvoicePaid, Created: listFrom.Unix() + 1, Extra: "jane@example.com"},
	}
	srv, _ := fakeEvents(t, all)
	acts := eventsActivities(srv.URL)
	acts.Reconcile.Reduce = func(raw json.RawMessage) (json.RawMessage, string, error) {
		var ev struct{ ID string }
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("reducer got %s: %v", raw, err)
		}
		switch ev.ID {
		case "evt_other":
			return nil, activities.EventIgnored, nil
		case "evt_broken":
			return nil, activities.EventInvalid, errors.New("bad shape")
		}
		return json.RawMessage(fmt.Sprintf(`{"id":%q}`, ev.ID)), "", nil
	}
	page, err := acts.ListEvents(context.Background(), activities.ListEventsInput{
		Types: []string{workflows.EventInvoicePaid}, CreatedGTE: listFrom, Limit: 10, Reduce: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range page.Events {
		got = append(got, string(ev))
		if bytes.Contains(ev, []byte("jane@example.com")) {
			t.Errorf("event %s of the page carries Stripe's raw data", ev)
		}
	}
	if want := []string{`{"id":"evt_keep2"}`, `{"id":"evt_keep1"}`}; !slices.Equal(got, want) {
		t.Errorf("events %q, want the reduced ones %q", got, want)
	}
	if page.Ignored != 1 || page.Invalid != 1 || page.LastID != "evt_keep1" || page.HasMore {
		t.Errorf("ignored %d, invalid %d, last %q, more %v; want 1, 1, evt_keep1, false", page.Ignored, page.Invalid, page.LastID, page.HasMore)
	}

	acts.Reconcile.Reduce = nil
	_, err = acts.ListEvents(context.Background(), activities.ListEventsInput{Types: []string{workflows.EventInvoicePaid}, Reduce: true})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() {
		t.Errorf("reduce without a reducer: %v, want a non-retryable error", err)
	}
}

func TestListEventsLeavesOutTheEventsDunningHas(t *testing.T) {
	all := []stripeEvent{
		{ID: "evt_new2", Type: workflows.EventInvoicePaid, Created: listFrom.Unix() + 4},
		{ID: "evt_had2", Type: workflows.EventInvoicePaid, Created: listFrom.Unix() + 3},
		{ID: "evt_new1", Type: workflows.EventInvoicePaid, Created: listFrom.Unix() + 2},
		{ID: "evt_had1", Type: workflows.EventInvoicePaid, Created: listFrom.Unix() + 1},
	}
	srv, _ := fakeEvents(t, all)
	acts := eventsActivities(srv.URL)
	metrics := &countingMetrics{}
	acts.Reconcile.Metrics = metrics
	acts.Reconcile.Reduce = func(raw json.RawMessage) (json.RawMessage, string, error) {
		var ev struct{ ID string }
		_ = json.Unmarshal(raw, &ev)
		return json.RawMessage(fmt.Sprintf(`{"id":%q}`, ev.ID)), "", nil
	}
	var asked [][]string
	var down error
	acts.Reconcile.Known = func(_ context.Context, ids []string) (map[string]bool, error) {
		asked = append(asked, slices.Clone(ids))
		if down != nil {
			return nil, down
		}
		return map[string]bool{"evt_had1": true, "evt_had2": true, "evt_elsewhere": true}, nil
	}
	list := func(skip bool) activities.EventPage {
		t.Helper()
		page, err := acts.ListEvents(context.Background(), activities.ListEventsInput{
			Types: []string{workflows.EventInvoicePaid}, CreatedGTE: listFrom, Limit: 10, Reduce: true, SkipKnown: skip,
		})
		if err != nil {
			t.Fatal(err)
		}
		return page
	}
	ids := func(p activities.EventPage) (out []string) {
		for _, ev := range p.Events {
			out = append(out, string(ev))
		}
		return out
	}

	page := list(true)
	if want := []string{`{"id":"evt_new2"}`, `{"id":"evt_new1"}`}; !slices.Equal(ids(page), want) || page.Known != 2 || page.LastID != "evt_had1" {
		t.Errorf("page %q, known %d, last %q; want %q, 2 known, last evt_had1 (the list moves on past them)", ids(page), page.Known, page.LastID, want)
	}
	if len(asked) != 1 || !slices.Equal(asked[0], []string{"evt_new2", "evt_had2", "evt_new1", "evt_had1"}) {
		t.Errorf("asked %q, want one question with the page's 4 events", asked)
	}
	if metrics.events[activities.EventDuplicate] != 2 {
		t.Errorf("counted %v, want the 2 known events counted as duplicates", metrics.events)
	}

	if page := list(false); len(page.Events) != 4 || page.Known != 0 || len(asked) != 1 {
		t.Errorf("without SkipKnown: %d events, %d known, %d questions; want all 4 handed on, none asked", len(page.Events), page.Known, len(asked))
	}

	// Visibility not answering: every event goes on to be started, whose
	// start tells the known ones apart.
	down = errors.New("visibility unavailable")
	if page := list(true); len(page.Events) != 4 || page.Known != 0 {
		t.Errorf("with Known failing: %d events, %d known; want all 4 handed on", len(page.Events), page.Known)
	}
}
