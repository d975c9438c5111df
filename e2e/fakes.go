package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"dunning/activities"
	"dunning/internal/devstripe"
	"dunning/internal/sig"
	"dunning/workflows"
)

// The fakes stand in for dunning's peers. Each is an httptest server that
// checks requests the way the real peer would, records every request
// (method, path, Idempotency-Key, time, what it answered), and can be told
// to misbehave: fail the next requests with a status, answer but lose the
// answer, hang, hold a request until the test releases it, or reject
// always.

// Request is one request a fake received.
type Request struct {
	At       time.Time
	Method   string
	Path     string
	Query    string
	Key      string // Idempotency-Key
	Body     []byte
	Customer string // the Stripe customer (or product customer) it concerns, when known
	Kind     string // what it was: "confirm", "suspend", "payment_failed", …
	// Status is what the client was answered (0 when it was gone first).
	Status int
	// Handled is what the fake itself answered when it handled the
	// request (applied it); 0 when a fault answered instead.
	Handled int
	// Replayed is set when the fake answered from an earlier request with
	// the same idempotency key.
	Replayed bool
	// Fault names the injected fault that shaped the answer.
	Fault string
}

func (r Request) String() string {
	s := fmt.Sprintf("%s %s %s", r.At.Format("15:04:05.000"), r.Method, r.Path)
	if r.Query != "" {
		s += "?" + r.Query
	}
	if r.Kind != "" {
		s += " kind=" + r.Kind
	}
	if r.Key != "" {
		s += " key=" + r.Key
	}
	s += fmt.Sprintf(" -> %d", r.Status)
	if r.Handled != 0 && r.Handled != r.Status {
		s += fmt.Sprintf(" (handled %d)", r.Handled)
	}
	if r.Replayed {
		s += " replayed"
	}
	if r.Fault != "" {
		s += " fault=" + r.Fault
	}
	return s
}

// Matcher picks the requests a fault applies to.
type Matcher func(*http.Request) bool

// Any matches every request.
func Any(*http.Request) bool { return true }

// PathHas matches requests whose path contains every one of parts.
func PathHas(parts ...string) Matcher {
	return func(r *http.Request) bool {
		for _, p := range parts {
			if !strings.Contains(r.URL.Path, p) {
				return false
			}
		}
		return true
	}
}

// MethodPath matches a method and a path containing every one of parts.
func MethodPath(method string, parts ...string) Matcher {
	m := PathHas(parts...)
	return func(r *http.Request) bool { return r.Method == method && m(r) }
}

type faultKind int

const (
	faultFail faultKind = iota // answer status, do nothing
	faultLose                  // do the work, answer status instead
	faultHang                  // wait (or until the client gives up), then do the work
	faultHold                  // wait for the test's release, then do the work
)

type rule struct {
	match  Matcher
	left   int // requests still to shape; negative: all
	kind   faultKind
	status int
	hang   time.Duration
	hold   *Hold
}

func (r *rule) String() string {
	switch r.kind {
	case faultFail:
		if r.left < 0 {
			return fmt.Sprintf("always %d", r.status)
		}
		return fmt.Sprintf("fail %d", r.status)
	case faultLose:
		return fmt.Sprintf("answer lost (%d)", r.status)
	case faultHang:
		return "hang " + r.hang.String()
	}
	return "hold"
}

// Hold keeps one request waiting until the test releases it.
type Hold struct {
	arrived     chan struct{}
	release     chan struct{}
	arriveOnce  sync.Once
	releaseOnce sync.Once
}

// Arrived is closed when the held request has come in.
func (h *Hold) Arrived() <-chan struct{} { return h.arrived }

// Release lets the held request through; it is then handled normally.
func (h *Hold) Release() { h.releaseOnce.Do(func() { close(h.release) }) }

// handled is what a fake's own handler says about a request.
type handled struct {
	customer string
	kind     string
	replayed bool
}

// peer is what every fake shares: the server, the record, the faults.
type peer struct {
	name      string
	srv       *httptest.Server
	closing   chan struct{}
	errorBody func(status int) []byte

	mu       sync.Mutex
	reqs     []Request
	rules    []*rule
	problems []string
	// describe says what a request is and whom it concerns, before any
	// fault or handling; handle is the fake's own behaviour. Both are
	// called without mu held.
	describe func(r *http.Request, body []byte) handled
	handle   func(w http.ResponseWriter, r *http.Request, body []byte) handled
}

func newPeer(name string, errorBody func(int) []byte) *peer {
	p := &peer{name: name, closing: make(chan struct{}), errorBody: errorBody}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	return p
}

// URL is the fake's base URL.
func (p *peer) URL() string { return p.srv.URL }

// Close stops the fake, letting hung and held requests go first.
func (p *peer) Close() {
	close(p.closing)
	p.srv.Close()
}

func (p *peer) add(r *rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, r)
}

// FailNext answers the next n requests that match with status, doing
// nothing else. Rules apply in the order they were set.
func (p *peer) FailNext(n, status int, m Matcher) {
	p.add(&rule{match: m, left: n, kind: faultFail, status: status})
}

// LoseNext handles the next n matching requests (the action is applied)
// but answers status instead of the real answer, as when a response is
// lost on the way back.
func (p *peer) LoseNext(n, status int, m Matcher) {
	p.add(&rule{match: m, left: n, kind: faultLose, status: status})
}

// HangNext keeps the next n matching requests waiting for d, or until the
// client gives up, and then handles them (a slow peer finishes its work
// even when nobody waits for the answer any more).
func (p *peer) HangNext(n int, d time.Duration, m Matcher) {
	p.add(&rule{match: m, left: n, kind: faultHang, hang: d})
}

// Always answers every matching request with status until Heal.
func (p *peer) Always(status int, m Matcher) {
	p.add(&rule{match: m, left: -1, kind: faultFail, status: status})
}

// HoldNext keeps the next matching request until the returned Hold is
// released.
func (p *peer) HoldNext(m Matcher) *Hold {
	h := &Hold{arrived: make(chan struct{}), release: make(chan struct{})}
	p.add(&rule{match: m, left: 1, kind: faultHold, hold: h})
	return h
}

// Heal removes every fault not yet used up.
func (p *peer) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Requests returns the requests recorded so far that f accepts (all when
// f is nil), in the order they came in.
func (p *peer) Requests(f func(Request) bool) []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Request
	for _, r := range p.reqs {
		if f == nil || f(r) {
			out = append(out, r)
		}
	}
	return out
}

// Problems are requests the fake found wrong, as the real peer would have
// rejected them (bad signature, unknown path, missing key, …).
func (p *peer) Problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.problems)
}

func (p *peer) problem(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

func (p *peer) pick(r *http.Request) *rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, ru := range p.rules {
		if ru.left == 0 || !ru.match(r) {
			continue
		}
		if ru.left > 0 {
			ru.left--
			if ru.left == 0 {
				p.rules = slices.Delete(p.rules, i, i+1)
			}
		}
		return ru
	}
	return nil
}

// captureWriter records the status and headers the handler wrote.
type captureWriter struct {
	http.ResponseWriter
	status int
}

func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.ResponseWriter.Write(b)
}

func (p *peer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	rec := Request{At: time.Now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		Key: r.Header.Get("Idempotency-Key"), Body: body}
	d := p.describe(r, body)
	rec.Customer, rec.Kind = d.customer, d.kind
	ru := p.pick(r)
	run := func(w http.ResponseWriter) {
		r.Body = io.NopCloser(bytes.NewReader(body))
		cw := &captureWriter{ResponseWriter: w}
		h := p.handle(cw, r, body)
		rec.Handled, rec.Replayed = cw.status, h.replayed
	}
	switch {
	case ru == nil:
		run(w)
		rec.Status = rec.Handled
	case ru.kind == faultFail:
		rec.Fault = ru.String()
		rec.Status = ru.status
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ru.status)
		_, _ = w.Write(p.errorBody(ru.status))
	case ru.kind == faultLose:
		rec.Fault = ru.String()
		run(httptest.NewRecorder())
		rec.Status = ru.status
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ru.status)
		_, _ = w.Write(p.errorBody(ru.status))
	case ru.kind == faultHang:
		rec.Fault = ru.String()
		gone := false
		select {
		case <-time.After(ru.hang):
		case <-r.Context().Done():
			gone = true
		case <-p.closing:
			gone = true
		}
		if gone {
			rec.Fault += ", client gave up"
			run(httptest.NewRecorder())
		} else {
			run(w)
			rec.Status = rec.Handled
		}
	case ru.kind == faultHold:
		rec.Fault = ru.String()
		ru.hold.arriveOnce.Do(func() { close(ru.hold.arrived) })
		select {
		case <-ru.hold.release:
		case <-p.closing:
		}
		if r.Context().Err() != nil {
			rec.Fault += ", client gave up"
			run(httptest.NewRecorder())
		} else {
			run(w)
			rec.Status = rec.Handled
		}
	}
	p.mu.Lock()
	p.reqs = append(p.reqs, rec)
	p.mu.Unlock()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}

// ---- Stripe

// StripeKey is the secret key the fake Stripe accepts.
const StripeKey = "sk_test_123"

// Stripe is the Stripe API: the local stack's stateful dev Stripe, which
// keeps the state the events describe (the card that failed declines, a
// new card works, a repeated Idempotency-Key replays the first answer).
// The webhook runs in another process, so the test tells it of every event
// it sends (Observe).
type Stripe struct {
	*peer
	dev *devstripe.Server

	evMu   sync.Mutex
	events []json.RawMessage // every event that happened, oldest first
}

// Happened records an event that happened at Stripe, delivered or not:
// GET /v1/events lists it, as Stripe does for 30 days.
func (s *Stripe) Happened(body []byte) {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	s.events = append(s.events, json.RawMessage(slices.Clone(body)))
}

// listEvents answers GET /v1/events as Stripe does: newest first, of the
// types[] asked for, created in [created[gte], created[lt]), limit (at most
// 100) a page after starting_after, each event as it was sent. A parameter
// Stripe does not know is rejected.
func (s *Stripe) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	reject := func(msg string) {
		s.problem("GET /v1/events?%s: %s", r.URL.RawQuery, msg)
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"type": "invalid_request_error", "message": msg}})
	}
	for k := range q {
		if !slices.Contains([]string{"types[]", "created[gte]", "created[lt]", "limit", "starting_after"}, k) {
			reject("Received unknown parameter: " + k)
			return
		}
	}
	limit := 10
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			reject("Invalid integer: limit must be 1 to 100")
			return
		}
		limit = n
	}
	bound := func(k string) (int64, bool) {
		v := q.Get(k)
		if v == "" {
			return 0, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	gte, ok1 := bound("created[gte]")
	lt, ok2 := bound("created[lt]")
	if !ok1 || !ok2 {
		reject("Invalid timestamp")
		return
	}
	s.evMu.Lock()
	all := slices.Clone(s.events)
	s.evMu.Unlock()
	slices.Reverse(all)
	var match []json.RawMessage
	after := q.Get("starting_after")
	passed := after == ""
	for _, raw := range all {
		var ev struct {
			ID      string `json:"id"`
			Type    string `json:"type"`
			Created int64  `json:"created"`
		}
		_ = json.Unmarshal(raw, &ev)
		if !passed {
			passed = ev.ID == after
			continue
		}
		if (len(q["types[]"]) == 0 || slices.Contains(q["types[]"], ev.Type)) &&
			ev.Created >= gte && (lt == 0 || ev.Created < lt) {
			match = append(match, raw)
		}
	}
	if !passed {
		reject("No such event: '" + after + "'")
		return
	}
	more := len(match) > limit
	match = match[:min(limit, len(match))]
	if match == nil {
		match = []json.RawMessage{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "url": "/v1/events", "has_more": more, "data": match})
}

func newStripe() *Stripe {
	s := &Stripe{dev: devstripe.New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))}
	s.peer = newPeer("stripe", stripeError)
	s.describe, s.handle = describeStripe, s.serveStripe
	return s
}

func stripeError(status int) []byte {
	e := map[string]any{"type": "api_error", "message": "Something went wrong on Stripe's end (injected)."}
	switch {
	case status == http.StatusTooManyRequests:
		e = map[string]any{"type": "invalid_request_error", "code": "rate_limit",
			"message": "Too many requests hit the API too quickly (injected)."}
	case status < 500:
		e = map[string]any{"type": "invalid_request_error", "message": "Request rejected (injected)."}
	}
	raw, _ := json.Marshal(map[string]any{"error": e})
	return raw
}

// SetIntentStatus changes an observed intent's status in the fake Stripe.
func (s *Stripe) SetIntentStatus(intentID, status string) {
	if !s.dev.SetIntentStatus(intentID, status) {
		s.problem("SetIntentStatus: intent %s was never observed", intentID)
	}
}

// Process starts a bank debit of an observed intent that failed: it is
// processing until an event says it succeeded or failed.
func (s *Stripe) Process(intentID string) {
	if !s.dev.Process(intentID) {
		s.problem("Process: intent %s was never observed, or is not confirmable", intentID)
	}
}

// SetDecline makes a card decline as the bank would say (a zero Decline:
// the default, insufficient funds).
func (s *Stripe) SetDecline(cardID string, d activities.Decline) { s.dev.SetDecline(cardID, d) }

// Approve makes a card that declined work again (its funds are back).
func (s *Stripe) Approve(cardID string) {
	if !s.dev.Approve(cardID) {
		s.problem("Approve: card %s was never observed", cardID)
	}
}

// Observe tells the fake Stripe of an event that happened there.
func (s *Stripe) Observe(ev workflows.StripeEvent) { s.dev.Observe(ev) }

func describeStripe(r *http.Request, _ []byte) handled {
	var h handled
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 4 && parts[1] == "payment_intents" && parts[3] == "confirm":
		h.kind = "confirm"
	case len(parts) == 4 && parts[1] == "payment_intents" && parts[3] == "cancel":
		h.kind = "cancel intent"
	case len(parts) == 3 && parts[1] == "payment_intents" && r.Method == http.MethodPost:
		h.kind = "update intent"
	case len(parts) >= 3 && parts[1] == "payment_intents":
		h.kind = "read intent"
	case len(parts) == 2 && parts[1] == "payment_intents":
		h.kind = "list intents"
	case len(parts) == 4 && parts[1] == "invoices" && parts[3] == "mark_uncollectible":
		h.kind = "mark uncollectible"
	case len(parts) == 3 && parts[1] == "billing_portal" && parts[2] == "sessions":
		h.kind = "portal session"
	case len(parts) == 2 && parts[1] == "events":
		h.kind = "list events"
	case len(parts) == 3 && parts[1] == "customers":
		h.kind, h.customer = "read customer", parts[2]
	case len(parts) == 4 && parts[1] == "customers":
		h.kind, h.customer = "list "+parts[3], parts[2]
	}
	return h
}

func (s *Stripe) serveStripe(w http.ResponseWriter, r *http.Request, body []byte) handled {
	h := describeStripe(r, body)
	if r.Header.Get("Authorization") != "Bearer "+StripeKey {
		s.problem("%s %s: no valid API key", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","message":"Invalid API Key provided"}}`))
		return h
	}
	if h.kind == "confirm" && r.Header.Get("Idempotency-Key") == "" {
		s.problem("%s %s: confirm without an Idempotency-Key", r.Method, r.URL.Path)
	}
	if h.kind == "list events" && r.Method == http.MethodGet {
		s.listEvents(w, r)
		return h
	}
	key := r.Header.Get("Idempotency-Key")
	cw := &captureWriter{ResponseWriter: w}
	s.dev.ServeHTTP(cw, r)
	h.replayed = cw.Header().Get("Idempotent-Replayed") == "true"
	if cw.status == http.StatusBadRequest && key != "" {
		// A 400 to a key the dev Stripe answered otherwise before is its
		// idempotency_error: dunning broke "one key, one request".
		for _, first := range s.Requests(func(q Request) bool { return q.Key == key && q.Handled != 0 && q.Handled != http.StatusBadRequest }) {
			s.problem("%s %s: Idempotency-Key %q sent again with another request (first %s %s %q, now %q)",
				r.Method, r.URL.Path, key, first.Method, first.Path, first.Body, body)
			break
		}
	}
	if cw.status == http.StatusNotFound {
		s.problem("%s %s: no such object at the fake Stripe (an event the test did not observe?)", r.Method, r.URL.Path)
	}
	return h
}

// Confirms returns the confirm requests for an intent.
func (s *Stripe) Confirms(intentID string) []Request {
	return s.Requests(func(r Request) bool {
		return r.Kind == "confirm" && r.Path == "/v1/payment_intents/"+intentID+"/confirm"
	})
}

// Charges counts the confirms of an intent that charged the card: answered
// 200 by Stripe itself, not as a replay of an earlier request.
func (s *Stripe) Charges(intentID string) int {
	n := 0
	for _, r := range s.Confirms(intentID) {
		if r.Handled == http.StatusOK && !r.Replayed {
			n++
		}
	}
	return n
}

// ---- Control plane

// ControlPlane is the product's control plane: signed POSTs to
// /api/v1/customers/{id}/{suspend|resume|deprovision}. An action is
// applied by the first request with its idempotency key that is answered
// 2xx; a later one with the same key is answered the same, as a replay.
type ControlPlane struct {
	*peer
	secret  string
	applied map[string]*Applied // by idempotency key; under mu
	// acceptV1 lets a request with no v2 entry pass on Stripe's v1
	// scheme, as a receiver does while dunning is upgraded from a
	// release that signs v1 (docs/operations.md).
	acceptV1 bool
}

// Applied is one control-plane action as applied.
type Applied struct {
	Action   string
	Customer string
	Key      string
	At       time.Time
	// Deliveries counts the requests with this key, the first included.
	Deliveries int
}

// verifyDuringUpgrade verifies a request of kind on the v2 scheme; with
// acceptV1, a request that carries no v2 entry at all is verified on the
// v1 scheme instead, the way docs/operations.md has receivers accept the
// release before v2 during an upgrade. A request with a v2 entry that
// does not verify is never tried as v1.
func verifyDuringUpgrade(kind sig.Kind, r *http.Request, body []byte, secret string, acceptV1 bool) error {
	err := kind.VerifyHTTP(r, body, []string{secret}, 5*time.Minute, time.Now())
	if acceptV1 && errors.Is(err, sig.ErrWrongScheme) {
		return sig.Verify(r.Header.Get("Dunning-Signature"), body, []string{secret}, 5*time.Minute, time.Now())
	}
	return err
}

// ControlPlanePrefix is the path of the control plane's API root.
const ControlPlanePrefix = "/api/v1"

func newControlPlane(secret string) *ControlPlane {
	c := &ControlPlane{secret: secret, applied: map[string]*Applied{}}
	c.peer = newPeer("control plane", func(status int) []byte {
		raw, _ := json.Marshal(map[string]string{"error": http.StatusText(status) + " (injected)"})
		return raw
	})
	c.describe, c.handle = describeControl, c.serveControl
	return c
}

// describeControl reads POST /api/v1/customers/{id}/{action}.
func describeControl(r *http.Request, _ []byte) handled {
	rest, ok := strings.CutPrefix(r.URL.Path, ControlPlanePrefix+"/customers/")
	id, action, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || r.Method != http.MethodPost {
		return handled{}
	}
	if u, err := url.PathUnescape(id); err == nil {
		id = u
	}
	return handled{customer: id, kind: action}
}

func (c *ControlPlane) serveControl(w http.ResponseWriter, r *http.Request, body []byte) handled {
	h := describeControl(r, body)
	id, action := h.customer, h.kind
	if action == "" {
		c.problem("%s %s: not a control-plane call", r.Method, r.URL.Path)
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
		return h
	}
	// The v2 scheme, strictly: a control-plane signature over this
	// method, path, idempotency key and body, and nothing else.
	if err := verifyDuringUpgrade(sig.KindControlPlane, r, body, c.secret, c.acceptV1); err != nil {
		c.problem("%s %s: signature: %v", r.Method, r.URL.Path, err)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "bad signature"})
		return h
	}
	var b struct {
		CustomerID     string `json:"customer_id"`
		Action         string `json:"action"`
		IdempotencyKey string `json:"idempotency_key"`
		WorkflowID     string `json:"workflow_id"`
	}
	key := r.Header.Get("Idempotency-Key")
	if err := json.Unmarshal(body, &b); err != nil || b.CustomerID != id || b.Action != action || b.IdempotencyKey != key || key == "" {
		c.problem("%s %s: body %s does not match the path and key %q", r.Method, r.URL.Path, body, key)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad request"})
		return h
	}
	switch action {
	case "suspend", "resume", "deprovision":
	default:
		c.problem("%s %s: unknown action", r.Method, r.URL.Path)
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown action"})
		return h
	}
	c.mu.Lock()
	a := c.applied[key]
	if a == nil {
		a = &Applied{Action: action, Customer: id, Key: key, At: time.Now()}
		c.applied[key] = a
	} else {
		h.replayed = true
		if a.Action != action || a.Customer != id {
			c.problems = append(c.problems, fmt.Sprintf("key %q reused for %s %s (first %s %s)", key, action, id, a.Action, a.Customer))
		}
	}
	a.Deliveries++
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"status": "applied", "action": action, "customer_id": id})
	return h
}

// Applied returns the actions applied for a customer, in order.
func (c *ControlPlane) Applied(customer string) []Applied {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Applied
	for _, a := range c.applied {
		if a.Customer == customer {
			out = append(out, *a)
		}
	}
	slices.SortFunc(out, func(x, y Applied) int { return x.At.Compare(y.At) })
	return out
}

// Count counts the distinct actions of a kind applied for a customer.
func (c *ControlPlane) Count(customer, action string) int {
	n := 0
	for _, a := range c.Applied(customer) {
		if a.Action == action {
			n++
		}
	}
	return n
}

// ---- Amberflo

// AmberfloKey is the API key the fake Amberflo accepts.
const AmberfloKey = "amb_e2e_key"

// Amberflo serves customers (GET /customers/{id}, PUT /customers that
// replaces the whole record) and the latest invoice with a payment status
// the test can switch.
type Amberflo struct {
	*peer
	// under mu
	customers map[string]map[string]any
	status    map[string]string // invoice payment status by customer; FAILED when unset
	disabled  map[string]int    // PUTs that disabled an enabled customer
	// offboarded counts the stage PUTs that moved the customer to
	// OFFBOARDED.
	offboarded map[string]int
}

func newAmberflo() *Amberflo {
	a := &Amberflo{customers: map[string]map[string]any{}, status: map[string]string{}, disabled: map[string]int{}, offboarded: map[string]int{}}
	a.peer = newPeer("amberflo", func(status int) []byte {
		raw, _ := json.Marshal(map[string]string{"message": http.StatusText(status) + " (injected)"})
		return raw
	})
	a.describe, a.handle = describeAmberflo, a.serveAmberflo
	return a
}

// amberfloStatuses are the payment statuses Amberflo documents. Its
// TypeScript SDK sends them in lower case, so either case is Amberflo's.
var amberfloStatuses = []string{"PRE_PAYMENT", "REQUIRES_ACTION", "PENDING", "FAILED", "SETTLED", "NOT_NEEDED", "UNKNOWN"}

// SetInvoiceStatus sets the payment status of the customer's latest
// invoice, and of the month the failed payment bills in the list (FAILED
// until set). A status Amberflo does not document is a problem of the
// test: the stand-in answers only what Amberflo would.
func (a *Amberflo) SetInvoiceStatus(customer, status string) {
	if !slices.ContainsFunc(amberfloStatuses, func(s string) bool { return strings.EqualFold(s, status) }) {
		a.problem("SetInvoiceStatus(%s, %q): not a payment status Amberflo documents (%s)", customer, status, strings.Join(amberfloStatuses, ", "))
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status[customer] = status
}

// Deactivations counts the PUTs that disabled the (enabled) customer.
func (a *Amberflo) Deactivations(customer string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.disabled[customer]
}

// Offboardings counts the stage changes that moved the customer to
// OFFBOARDED.
func (a *Amberflo) Offboardings(customer string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.offboarded[customer]
}

// Stage is the customer's lifecycle stage.
func (a *Amberflo) Stage(customer string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, _ := a.record(customer)["lifecycleStage"].(string)
	return s
}

// Enabled reports whether the customer's record is enabled.
func (a *Amberflo) Enabled(customer string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.customers[customer]
	return c == nil || c["enabled"] == true
}

func (a *Amberflo) record(id string) map[string]any {
	c := a.customers[id]
	if c == nil {
		c = map[string]any{
			"customerId": id, "customerName": "Customer " + id, "customerEmail": strings.ToLower(id) + "@example.com",
			"traits": map[string]any{"region": "us-east-1"}, "enabled": true, "lifecycleStage": "ACTIVE",
			"createTime": int64(1700000000000), "updateTime": int64(1700000000000),
			"address": map[string]any{"country": "US"}, // a field dunning does not know: must be kept
		}
		a.customers[id] = c
	}
	return c
}

func describeAmberflo(r *http.Request, body []byte) handled {
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/customers/"):
		id, _ := url.PathUnescape(strings.TrimPrefix(r.URL.Path, "/customers/"))
		return handled{customer: id, kind: "read customer"}
	case r.Method == http.MethodPut && r.URL.Path == "/customers":
		var c struct {
			ID string `json:"customerId"`
		}
		_ = json.Unmarshal(body, &c)
		return handled{customer: c.ID, kind: "put customer"}
	case r.Method == http.MethodPut && r.URL.Path == "/customers/stage":
		var c struct {
			ID string `json:"customerId"`
		}
		_ = json.Unmarshal(body, &c)
		return handled{customer: c.ID, kind: "put customer stage"}
	case r.Method == http.MethodGet && r.URL.Path == "/payments/billing/customer-product-invoice":
		return handled{customer: r.URL.Query().Get("customerId"), kind: "latest invoice"}
	case r.Method == http.MethodGet && r.URL.Path == "/payments/billing/customer-product-invoice/all":
		return handled{customer: r.URL.Query().Get("customerId"), kind: "invoices"}
	}
	return handled{}
}

func (a *Amberflo) serveAmberflo(w http.ResponseWriter, r *http.Request, body []byte) handled {
	var h handled
	if r.Header.Get("X-API-KEY") != AmberfloKey {
		a.problem("%s %s: no valid X-API-KEY", r.Method, r.URL.Path)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Unauthorized"})
		return h
	}
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/customers/"):
		id, _ := url.PathUnescape(strings.TrimPrefix(r.URL.Path, "/customers/"))
		a.mu.Lock()
		c := cloneMap(a.record(id))
		a.mu.Unlock()
		writeJSON(w, http.StatusOK, c)
	case r.Method == http.MethodPut && r.URL.Path == "/customers":
		var c map[string]any
		if err := json.Unmarshal(body, &c); err != nil {
			a.problem("PUT /customers: %v", err)
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "bad body"})
			return h
		}
		id, _ := c["customerId"].(string)
		a.mu.Lock()
		old := a.record(id)
		for _, k := range []string{"customerName", "customerEmail", "traits", "lifecycleStage", "address"} {
			if fmt.Sprint(c[k]) != fmt.Sprint(old[k]) {
				a.problems = append(a.problems, fmt.Sprintf("PUT /customers for %s dropped or changed %s (PUT replaces the whole record)", id, k))
			}
		}
		if c["enabled"] != false {
			a.problems = append(a.problems, fmt.Sprintf("PUT /customers for %s without enabled:false: %s", id, body))
		}
		if old["enabled"] == true && c["enabled"] == false {
			a.disabled[id]++
		}
		c["updateTime"] = time.Now().UnixMilli()
		a.customers[id] = c
		a.mu.Unlock()
		writeJSON(w, http.StatusOK, c)
	case r.Method == http.MethodPut && r.URL.Path == "/customers/stage":
		// Amberflo documents a stage that only moves forward and a 200
		// with the whole record; it documents no answer for a move that
		// is not forward. The stand-in refuses one, the stage the customer
		// is at included, with 400 and a message, as Amberflo refuses
		// invalid requests. That is not a problem of dunning's: a hung
		// request that finishes after the client retried can move the
		// stage between the retry's read and its write.
		var req map[string]any
		if err := json.Unmarshal(body, &req); err != nil || len(req) != 2 {
			a.problem("PUT /customers/stage: body %s, want exactly customerId and lifecycleStage", body)
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "bad body"})
			return h
		}
		id, _ := req["customerId"].(string)
		to, _ := req["lifecycleStage"].(string)
		order := map[string]int{"ONBOARDING": 1, "TRIAL": 2, "TRAIL": 2, "ACTIVE": 3, "OFFBOARDED": 4}
		a.mu.Lock()
		c := a.record(id)
		from, _ := c["lifecycleStage"].(string)
		if order[to] == 0 || order[to] <= order[from] {
			a.mu.Unlock()
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "customer lifecycle stage cannot be updated from " + from + " to " + to})
			return h
		}
		if to != "OFFBOARDED" {
			a.problems = append(a.problems, fmt.Sprintf("PUT /customers/stage for %s to %s: dunning only moves customers to OFFBOARDED", id, to))
		}
		c["lifecycleStage"] = to
		c["updateTime"] = time.Now().UnixMilli()
		if to == "OFFBOARDED" {
			a.offboarded[id]++
		}
		out := cloneMap(c)
		a.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
	case r.Method == http.MethodGet && r.URL.Path == "/payments/billing/customer-product-invoice":
		q := r.URL.Query()
		id := q.Get("customerId")
		if q.Get("productId") != "1" || q.Get("latest") != "true" || q.Get("withPaymentStatus") != "true" || id == "" {
			a.problem("GET invoice with query %s", r.URL.RawQuery)
		}
		a.mu.Lock()
		st := a.status[id]
		a.mu.Unlock()
		if st == "" {
			st = "FAILED"
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"invoiceUri": "https://app.amberflo.io/invoices/" + id + "/latest",
			"invoiceKey": map[string]any{"customerId": id, "productId": "1", "year": 2025, "month": 1, "day": 1},
			"totalBill":  map[string]any{"totalPrice": 49.0}, "paymentStatus": st, "planName": "Pro",
			"invoiceStartTimeInSeconds": 1735689600, "invoiceEndTimeInSeconds": 1738368000,
		})
	case r.Method == http.MethodGet && r.URL.Path == "/payments/billing/customer-product-invoice/all":
		q := r.URL.Query()
		id := q.Get("customerId")
		if q.Get("productId") != "1" || q.Get("withPaymentStatus") != "true" || id == "" {
			a.problem("GET invoices with query %s", r.URL.RawQuery)
		}
		a.mu.Lock()
		st := a.status[id]
		a.mu.Unlock()
		if st == "" {
			st = "FAILED"
		}
		// Newest first: the month in progress (its URI a bare path, as
		// Amberflo gives some), the month the failed payment bills, and
		// an older month long settled.
		start, end := devstripe.BilledMonth(time.Now())
		invoice := func(from, to time.Time, status, uri string) map[string]any {
			return map[string]any{
				"invoiceUri": uri,
				"invoiceKey": map[string]any{"customerId": id, "productId": "1", "year": from.Year(), "month": int(from.Month()), "day": 1},
				"totalBill":  map[string]any{"totalPrice": 49.0}, "paymentStatus": status, "planName": "Pro",
				"invoiceStartTimeInSeconds": from.Unix(), "invoiceEndTimeInSeconds": to.Unix(),
			}
		}
		writeJSON(w, http.StatusOK, []any{
			invoice(end, end.AddDate(0, 1, 0), "PRE_PAYMENT", "/invoices/"+id+"/current"),
			invoice(start, end, st, "https://app.amberflo.io/invoices/"+id+"/"+start.Format("2006-01")),
			invoice(start.AddDate(0, -1, 0), start, "SETTLED", "https://app.amberflo.io/invoices/"+id+"/"+start.AddDate(0, -1, 0).Format("2006-01")),
		})
	default:
		a.problem("%s %s: not an Amberflo call dunning should make", r.Method, r.URL.Path)
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "not found"})
	}
	return h
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ---- Alerts and notices

// Message is one alert or notice as received: the first delivery of its
// key, with the number of deliveries.
type Message struct {
	Key      string
	Kind     string // notice type, or the kind of alert (past_due, suspended, paused, …)
	Customer string // Stripe customer
	Title    string
	First    time.Time
	// Deliveries counts the requests with this key; more than one is a
	// retry the receiver de-duplicates.
	Deliveries int
	// UpdateURL and PayURL are a notice's links.
	UpdateURL, PayURL string
	// Created is when dunning decided a notice (its created_at), and
	// Deadline the date it tells the customer to act by; zero when the
	// notice gives none.
	Created, Deadline time.Time
}

// inbox is what the alert and notice receivers share: messages by key.
type inbox struct {
	*peer
	msgs    map[string]*Message // under mu
	onFirst func(Message)       // under mu
}

func (b *inbox) deliver(m Message) (replayed bool) {
	b.mu.Lock()
	if have := b.msgs[m.Key]; have != nil {
		have.Deliveries++
		if have.Kind != m.Kind || have.Customer != m.Customer {
			b.problems = append(b.problems, fmt.Sprintf("key %q reused for %s/%s (first %s/%s)", m.Key, m.Kind, m.Customer, have.Kind, have.Customer))
		}
		b.mu.Unlock()
		return true
	}
	m.First, m.Deliveries = time.Now(), 1
	b.msgs[m.Key] = &m
	f := b.onFirst
	b.mu.Unlock()
	if f != nil {
		f(m)
	}
	return false
}

// OnFirst calls f with every message at its first delivery, before the
// receiver answers; a benchmark counts what is done this way instead of
// asking Temporal.
func (b *inbox) OnFirst(f func(Message)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onFirst = f
}

// Messages returns the distinct messages (one per key) for a customer, in
// the order they first came; all customers when customer is empty.
func (b *inbox) Messages(customer string) []Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Message
	for _, m := range b.msgs {
		if customer == "" || m.Customer == customer {
			out = append(out, *m)
		}
	}
	slices.SortFunc(out, func(x, y Message) int { return x.First.Compare(y.First) })
	return out
}

// Kinds counts the distinct messages (keys) of each kind for a customer.
func (b *inbox) Kinds(customer string) map[string]int {
	out := map[string]int{}
	for _, m := range b.Messages(customer) {
		out[m.Kind]++
	}
	return out
}

// Alerts is the Slack-compatible incoming webhook for ops alerts.
type Alerts struct{ inbox }

// AlertPath is the webhook path, Slack-shaped; it is a credential.
const AlertPath = "/services/T0000E2E/B0000E2E/e2eAlertToken"

func newAlerts() *Alerts {
	a := &Alerts{inbox{msgs: map[string]*Message{}}}
	a.peer = newPeer("alerts", func(status int) []byte { return []byte(`"injected failure"`) })
	a.describe, a.handle = describeAlert, a.serveAlert
	return a
}

func (a *Alerts) serveAlert(w http.ResponseWriter, r *http.Request, body []byte) handled {
	var h handled
	if r.Method != http.MethodPost || r.URL.Path != AlertPath {
		a.problem("%s %s: not the alert webhook", r.Method, r.URL.Path)
		http.Error(w, "no_service", http.StatusNotFound)
		return h
	}
	var msg slackMessage
	key := r.Header.Get("Idempotency-Key")
	if err := json.Unmarshal(body, &msg); err != nil || msg.Text == "" || len(msg.Blocks) == 0 || key == "" {
		a.problem("alert not Slack-shaped or without a key (%q): %s", key, body)
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return h
	}
	h = describeAlert(r, body)
	h.replayed = a.deliver(Message{Key: key, Kind: h.kind, Customer: h.customer, Title: msg.Text})
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok"))
	return h
}

type slackMessage struct {
	Text   string `json:"text"`
	Blocks []struct {
		Type   string `json:"type"`
		Fields []struct {
			Text string `json:"text"`
		} `json:"fields"`
	} `json:"blocks"`
}

// describeAlert reads the kind of alert from its key and the customer from
// its fields.
func describeAlert(r *http.Request, body []byte) handled {
	h := handled{kind: alertKind(r.Header.Get("Idempotency-Key"))}
	var msg slackMessage
	_ = json.Unmarshal(body, &msg)
	for _, b := range msg.Blocks {
		for _, f := range b.Fields {
			if v, ok := strings.CutPrefix(f.Text, "*Stripe customer*\n"); ok {
				h.customer = v
			}
		}
	}
	return h
}

// alertKind names an alert by its key: recovery-<cus>@<t>:<kind>:…,
// card-expiry-<card>:<kind>, evt_…:<kind>.
func alertKind(key string) string {
	_, rest, ok := strings.Cut(key, ":")
	if !ok {
		return key
	}
	kind, _, _ := strings.Cut(rest, ":")
	return kind
}

// Notices is the product's mailer: signed JSON notices for customers.
type Notices struct {
	inbox
	secret   string
	acceptV1 bool // as ControlPlane's
}

// NoticePath is where notices are posted.
const NoticePath = "/mailer/notices"

func newNotices(secret string) *Notices {
	n := &Notices{inbox: inbox{msgs: map[string]*Message{}}, secret: secret}
	n.peer = newPeer("notices", func(status int) []byte {
		raw, _ := json.Marshal(map[string]string{"error": http.StatusText(status) + " (injected)"})
		return raw
	})
	n.describe, n.handle = describeNotice, n.serveNotice
	return n
}

func describeNotice(_ *http.Request, body []byte) handled {
	var b struct {
		Type             string `json:"type"`
		StripeCustomerID string `json:"stripe_customer_id"`
	}
	_ = json.Unmarshal(body, &b)
	return handled{customer: b.StripeCustomerID, kind: b.Type}
}

func (n *Notices) serveNotice(w http.ResponseWriter, r *http.Request, body []byte) handled {
	var h handled
	if r.Method != http.MethodPost || r.URL.Path != NoticePath {
		n.problem("%s %s: not the notice endpoint", r.Method, r.URL.Path)
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
		return h
	}
	// The v2 scheme, strictly: a customer-notice signature over this
	// method, path, idempotency key and body, and nothing else.
	if err := verifyDuringUpgrade(sig.KindCustomerNotice, r, body, n.secret, n.acceptV1); err != nil {
		n.problem("notice signature: %v", err)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "bad signature"})
		return h
	}
	var b struct {
		ID               string `json:"id"`
		Type             string `json:"type"`
		StripeCustomerID string `json:"stripe_customer_id"`
		CustomerID       string `json:"customer_id"`
		UpdateURL        string `json:"update_payment_method_url"`
		PayURL           string `json:"pay_url"`
		CreatedAt        string `json:"created_at"`
		Deadline         string `json:"deadline"`
		Card             *struct {
			Last4 string `json:"last4"`
		} `json:"card"`
	}
	key := r.Header.Get("Idempotency-Key")
	if err := json.Unmarshal(body, &b); err != nil || b.ID != key || key == "" || b.Type == "" {
		n.problem("notice without matching id and key (%q): %s", key, body)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad notice"})
		return h
	}
	if b.Card != nil && len(b.Card.Last4) != 4 {
		n.problem("notice %s carries more of a card than its last 4 digits", key)
	}
	h.customer, h.kind = b.StripeCustomerID, b.Type
	m := Message{Key: key, Kind: b.Type, Customer: b.StripeCustomerID, UpdateURL: b.UpdateURL, PayURL: b.PayURL}
	for _, f := range []struct {
		name, v string
		to      *time.Time
	}{{"created_at", b.CreatedAt, &m.Created}, {"deadline", b.Deadline, &m.Deadline}} {
		if f.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, f.v)
		if err != nil {
			n.problem("notice %s: %s %q is not RFC 3339", key, f.name, f.v)
			continue
		}
		*f.to = t
	}
	h.replayed = n.deliver(m)
	writeJSON(w, http.StatusOK, map[string]string{"status": "queued", "id": key})
	return h
}

// ---- all of them

// Peers are the five stand-ins together, for a caller that runs dunning
// its own way (the benchmarks); Start makes its own.
type Peers struct {
	Stripe   *Stripe
	Control  *ControlPlane
	Amberflo *Amberflo
	Alerts   *Alerts
	Notices  *Notices
}

// NewPeers starts the stand-ins; the control plane and the mailer check
// signatures with the secrets given (ControlSecret and NoticeSecret
// where a caller has none of its own).
func NewPeers(controlSecret, noticeSecret string) *Peers {
	return &Peers{Stripe: newStripe(), Control: newControlPlane(controlSecret), Amberflo: newAmberflo(),
		Alerts: newAlerts(), Notices: newNotices(noticeSecret)}
}

func (p *Peers) all() []*peer {
	return []*peer{p.Stripe.peer, p.Control.peer, p.Amberflo.peer, p.Alerts.peer, p.Notices.peer}
}

// Close stops every stand-in.
func (p *Peers) Close() {
	for _, x := range p.all() {
		x.Close()
	}
}

// Problems are the requests any stand-in found wrong, each prefixed with
// the stand-in's name.
func (p *Peers) Problems() []string {
	var out []string
	for _, x := range p.all() {
		for _, pr := range x.Problems() {
			out = append(out, x.name+": "+pr)
		}
	}
	return out
}

// Env is the configuration that makes every integration of dunning live
// against the stand-ins, with one-click links to publicURL.
func (p *Peers) Env(publicURL string) map[string]string {
	return map[string]string{
		"STRIPE_WEBHOOK_SECRET":  WebhookSecret,
		"STRIPE_API_KEY":         StripeKey,
		"STRIPE_API_BASE_URL":    p.Stripe.URL(),
		"AMBERFLO_API_KEY":       AmberfloKey,
		"AMBERFLO_BASE_URL":      p.Amberflo.URL(),
		"CONTROL_PLANE_URL":      p.Control.URL() + ControlPlanePrefix,
		"CONTROL_PLANE_SECRET":   p.Control.secret,
		"ALERT_WEBHOOK_URL":      p.Alerts.URL() + AlertPath,
		"CUSTOMER_NOTICE_URL":    p.Notices.URL() + NoticePath,
		"CUSTOMER_NOTICE_SECRET": p.Notices.secret,
		"PUBLIC_URL":             publicURL,
		"PORTAL_LINK_SECRET":     PortalSecret,
		"PORTAL_RETURN_URL":      PortalReturnURL,
	}
}
