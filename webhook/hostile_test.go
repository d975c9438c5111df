package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"dunning/internal/sig"
	"dunning/internal/stripefixture"
	"dunning/webhook"
	"dunning/workflows"
)

// hostileMaxBody is the production default body limit (config's
// WEBHOOK_MAX_BODY_BYTES), large enough for a deeply nested body to reach
// the decoder.
const hostileMaxBody = 512 << 10

// wireServer serves a new handler, with the fake Temporal accepting every
// start, over a real connection and with the production server's limits
// (header size, timeouts), so that what the transport refuses is refused
// the way it is in production.
func wireServer(t *testing.T) (*server, *httptest.Server) {
	t.Helper()
	s := newServer(t, &fakeTemporal{}, func(o *webhook.Options) { o.MaxBody = hostileMaxBody })
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = webhook.NewServer("", s.handler)
	srv.Start()
	t.Cleanup(srv.Close)
	return s, srv
}

// sendOver sends req, built for baseURL, to srv and reads the answer.
func sendOver(t *testing.T, srv *httptest.Server, req *http.Request) reply {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Scheme, req.URL.Host, req.Host = u.Scheme, u.Host, u.Host
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	r := reply{code: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("answer is not JSON: %v: %q", err, raw)
		}
	}
	return r
}

// hostileEvent is a real-shaped payment_intent.payment_failed event: the
// type that opens a recovery, so that any request built from it that got
// through would start a workflow.
func hostileEvent(t *testing.T) []byte {
	t.Helper()
	return event(t, workflows.EventPaymentFailed, stripefixture.Options{
		ID: "evt_1OqHostile0000001", Customer: "cus_PqHostile000001", ObjectID: "pi_3OqHostile0000001",
	})
}

// edited returns body with edit applied to its decoded JSON.
func edited(t *testing.T, body []byte, edit func(ev map[string]any)) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		t.Fatal(err)
	}
	edit(ev)
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dataObject is the event's data.object, for edited.
func dataObject(ev map[string]any) map[string]any {
	return ev["data"].(map[string]any)["object"].(map[string]any)
}

// signedAt returns body POSTed as Stripe sends it, signed at the given time.
func signedAt(t *testing.T, body []byte, at time.Time) *http.Request {
	t.Helper()
	req, err := stripefixture.Request(baseURL+webhook.PathStripe, body, secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// signedWith returns body signed correctly, with one change to the request.
func signedWith(t *testing.T, body []byte, change func(*http.Request)) *http.Request {
	t.Helper()
	req := signed(t, body, secret)
	change(req)
	return req
}

// nested returns a handled event whose data.object is depth nested arrays.
func nested(depth int) []byte {
	return fmt.Appendf(nil, `{"id":"evt_1OqHostileNested01","object":"event","type":%q,"created":%d,"data":{"object":%s%s}}`,
		workflows.EventPaymentFailed, testNow.Unix(), strings.Repeat("[", depth), strings.Repeat("]", depth))
}

// hex64 is a well-formed v1 signature that matches nothing.
func hex64(b byte) string { return strings.Repeat(fmt.Sprintf("%02x", b), 32) }

// TestHostileRequests sends malformed and hostile requests over a real
// connection. Each is refused with a 4xx or, for a verified event of a type
// dunning does not handle, answered 200 "ignored"; none gets a 5xx and none
// starts a workflow. Each is built from a handled event wherever it can be,
// so that a check that let it through would start one. Correctly signed
// bodies that do not decode are TestHostileSignedBodies'.
func TestHostileRequests(t *testing.T) {
	t.Parallel()
	ts := strconv.FormatInt(testNow.Unix(), 10)

	cases := []struct {
		name       string
		req        func(t *testing.T) *http.Request
		wantCode   int
		wantStatus string // the answer's status; none for answers not from the webhook handler
		wantError  string // the answer's error, when it is worth pinning
	}{
		// Bodies too large to read, and so to verify.
		{
			name:     "10 MB body",
			req:      func(t *testing.T) *http.Request { return signed(t, padded(t, 10<<20), secret) },
			wantCode: http.StatusRequestEntityTooLarge, wantStatus: webhook.OutcomeTooLarge,
		},
		{
			name:     "body of exactly the limit plus one byte",
			req:      func(t *testing.T) *http.Request { return signed(t, padded(t, hostileMaxBody+1), secret) },
			wantCode: http.StatusRequestEntityTooLarge, wantStatus: webhook.OutcomeTooLarge,
		},

		// Method and content type.
		{
			name: "GET",
			req: func(t *testing.T) *http.Request {
				req, err := http.NewRequest(http.MethodGet, baseURL+webhook.PathStripe, nil)
				if err != nil {
					t.Fatal(err)
				}
				return req
			},
			wantCode: http.StatusMethodNotAllowed, wantError: "method not allowed",
		},
		{
			name: "PUT of a signed event",
			req: func(t *testing.T) *http.Request {
				return signedWith(t, hostileEvent(t), func(r *http.Request) { r.Method = http.MethodPut })
			},
			wantCode: http.StatusMethodNotAllowed, wantError: "method not allowed",
		},
		{
			name: "DELETE of a signed event",
			req: func(t *testing.T) *http.Request {
				return signedWith(t, hostileEvent(t), func(r *http.Request) { r.Method = http.MethodDelete })
			},
			wantCode: http.StatusMethodNotAllowed, wantError: "method not allowed",
		},
		{
			name: "content type text/plain",
			req: func(t *testing.T) *http.Request {
				return signedWith(t, hostileEvent(t), func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") })
			},
			wantCode: http.StatusUnsupportedMediaType, wantStatus: webhook.OutcomeBadContentType,
		},
		{
			name: "content type missing",
			req: func(t *testing.T) *http.Request {
				return signedWith(t, hostileEvent(t), func(r *http.Request) { r.Header.Del("Content-Type") })
			},
			wantCode: http.StatusUnsupportedMediaType, wantStatus: webhook.OutcomeBadContentType,
		},
		{
			name: "multipart form carrying the event, signed",
			req: func(t *testing.T) *http.Request {
				var b bytes.Buffer
				w := multipart.NewWriter(&b)
				part, err := w.CreateFormFile("event", "event.json")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := part.Write(hostileEvent(t)); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				return signedWith(t, b.Bytes(), func(r *http.Request) { r.Header.Set("Content-Type", w.FormDataContentType()) })
			},
			wantCode: http.StatusUnsupportedMediaType, wantStatus: webhook.OutcomeBadContentType,
		},

		// Headers.
		{
			name: "1 MB header",
			req: func(t *testing.T) *http.Request {
				return signedWith(t, hostileEvent(t), func(r *http.Request) { r.Header.Set("X-Padding", strings.Repeat("a", 1<<20)) })
			},
			wantCode: http.StatusRequestHeaderFieldsTooLarge,
		},
		{
			name: "200 headers on an event of an unhandled type",
			req: func(t *testing.T) *http.Request {
				b := event(t, "charge.refunded", stripefixture.Options{ID: "evt_1OqHostileHeaders1"})
				return signedWith(t, b, func(r *http.Request) {
					for i := range 200 {
						r.Header.Set(fmt.Sprintf("X-Hostile-%03d", i), strings.Repeat("h", 64))
					}
				})
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeIgnored,
		},
		{
			// Only the first Stripe-Signature header is read.
			name: "two Stripe-Signature headers, the valid one second",
			req: func(t *testing.T) *http.Request {
				b := hostileEvent(t)
				return signedWith(t, b, func(r *http.Request) {
					r.Header[webhook.SignatureHeader] = []string{"t=" + ts + ",v1=" + hex64(1), stripefixture.Sign(b, testNow, secret)}
				})
			},
			wantCode: http.StatusBadRequest, wantStatus: webhook.OutcomeBadSignature, wantError: "no signature matches",
		},

		// Signatures.
		{
			name: "several v1 signatures, none matching",
			req: func(t *testing.T) *http.Request {
				return withHeader(t, hostileEvent(t), webhook.SignatureHeader,
					"t="+ts+",v1="+hex64(1)+",v1="+hex64(2)+",v1="+hex64(3))
			},
			wantCode: http.StatusBadRequest, wantStatus: webhook.OutcomeBadSignature, wantError: "no signature matches",
		},
		{
			name: "17 v1 signatures, the valid one last",
			req: func(t *testing.T) *http.Request {
				b := hostileEvent(t)
				h := "t=" + ts + strings.Repeat(",v1="+hex64(1), 16) + ",v1=" + sig.Compute(secret, testNow, b)
				return withHeader(t, b, webhook.SignatureHeader, h)
			},
			wantCode: http.StatusBadRequest, wantStatus: webhook.OutcomeBadSignature, wantError: "malformed signature header",
		},
		{
			name: "duplicate t=",
			req: func(t *testing.T) *http.Request {
				b := hostileEvent(t)
				return withHeader(t, b, webhook.SignatureHeader, stripefixture.Sign(b, testNow, secret)+",t="+ts)
			},
			wantCode: http.StatusBadRequest, wantStatus: webhook.OutcomeBadSignature, wantError: "malformed signature header",
		},
		{
			name:     "signed 10 minutes in the past",
			req:      func(t *testing.T) *http.Request { return signedAt(t, hostileEvent(t), testNow.Add(-10*time.Minute)) },
			wantCode: http.StatusBadRequest, wantStatus: webhook.OutcomeBadSignature, wantError: "signature timestamp outside tolerance",
		},
		{
			name: "t=0 with a v1 computed for it",
			req: func(t *testing.T) *http.Request {
				b := hostileEvent(t)
				return withHeader(t, b, webhook.SignatureHeader, stripefixture.Sign(b, time.Unix(0, 0), secret))
			},
			wantCode: http.StatusBadRequest, wantStatus: webhook.OutcomeBadSignature, wantError: "malformed signature header",
		},
		{
			name: "v1 not hex",
			req: func(t *testing.T) *http.Request {
				return withHeader(t, hostileEvent(t), webhook.SignatureHeader, "t="+ts+",v1="+strings.Repeat("zz", 32))
			},
			wantCode: http.StatusBadRequest, wantStatus: webhook.OutcomeBadSignature, wantError: "malformed signature header",
		},
		{
			name: "empty signature header",
			req: func(t *testing.T) *http.Request {
				return signedWith(t, hostileEvent(t), func(r *http.Request) { r.Header.Set(webhook.SignatureHeader, "") })
			},
			wantCode: http.StatusBadRequest, wantStatus: webhook.OutcomeBadSignature, wantError: "missing signature header",
		},
		{
			name:     "signed with another secret",
			req:      func(t *testing.T) *http.Request { return signed(t, hostileEvent(t), "whsec_attacker_0000") },
			wantCode: http.StatusBadRequest, wantStatus: webhook.OutcomeBadSignature, wantError: "no signature matches",
		},

		// Validly signed events of types dunning does not handle.
		{
			name: "unknown type",
			req: func(t *testing.T) *http.Request {
				return signed(t, event(t, "customer.subscription.paused", stripefixture.Options{ID: "evt_1OqHostileUnknown1"}), secret)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeIgnored,
		},
		{
			name: "handled type in upper case",
			req: func(t *testing.T) *http.Request {
				return signed(t, edited(t, hostileEvent(t), func(ev map[string]any) {
					ev["type"] = strings.ToUpper(workflows.EventPaymentFailed)
				}), secret)
			},
			wantCode: http.StatusOK, wantStatus: webhook.OutcomeIgnored,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, srv := wireServer(t)
			r := sendOver(t, srv, tc.req(t))
			if r.code >= 500 {
				t.Errorf("answer %d, a server error: %s", r.code, r.raw)
			}
			if !(r.code >= 400 && r.code < 500) && !(r.code == http.StatusOK && r.Status == webhook.OutcomeIgnored) {
				t.Errorf("answer %d %q, want a 4xx or 200 %q", r.code, r.Status, webhook.OutcomeIgnored)
			}
			if r.code != tc.wantCode || r.Status != tc.wantStatus {
				t.Errorf("answer %d %q, want %d %q; body %.300s", r.code, r.Status, tc.wantCode, tc.wantStatus, r.raw)
			}
			if tc.wantError != "" && r.Error != tc.wantError {
				t.Errorf("error %q, want %q", r.Error, tc.wantError)
			}
			if n := len(s.temporal.starts()); n != 0 {
				t.Errorf("%d workflow starts, want none", n)
			}
		})
	}
}

// hostileEdit returns a body maker for hostileEvent with edit applied.
func hostileEdit(edit func(ev map[string]any)) func(t *testing.T) []byte {
	return func(t *testing.T) []byte { return edited(t, hostileEvent(t), edit) }
}

// TestHostileSignedBodies sends correctly signed bodies that are not usable
// events over a real connection. The signature says Stripe sent them, so
// none is answered 4xx, which would have Stripe retry for days and then
// disable the endpoint. One whose event ID can be read is started under
// that ID, with its envelope only and the reason it cannot be read, for its
// workflow to alert ops; one without a usable ID is answered 200, counted
// and logged at error level, and starts nothing.
func TestHostileSignedBodies(t *testing.T) {
	t.Parallel()
	const eventID = "evt_1OqHostile0000001"
	cases := []struct {
		name       string
		body       func(t *testing.T) []byte
		wantID     string // the workflow started; none when empty
		wantType   string // of the event started
		wantReason string // the answer's reason, or part of it
	}{
		// Bodies. The fixture's keys are sorted: "id" comes after "data".
		{
			name:       "truncated JSON",
			body:       func(t *testing.T) []byte { b := hostileEvent(t); return b[:len(b)/2] },
			wantReason: "JSON",
		},
		{
			name:   "100k nested arrays in data.object",
			body:   func(t *testing.T) []byte { return nested(100_000) },
			wantID: "evt_1OqHostileNested01", wantType: workflows.EventPaymentFailed, wantReason: "malformed JSON",
		},
		{
			name: "non-UTF-8 bytes",
			body: func(t *testing.T) []byte {
				return bytes.Replace(hostileEvent(t), []byte("Subscription update"), []byte("Subscription \xff\xfe update"), 1)
			},
			wantID: eventID, wantType: workflows.EventPaymentFailed, wantReason: "invalid event: body is not UTF-8",
		},
		{
			name:       "byte order mark before the JSON",
			body:       func(t *testing.T) []byte { return append([]byte("\xef\xbb\xbf"), hostileEvent(t)...) },
			wantReason: "malformed JSON",
		},
		{
			name: "NUL byte inside a string before the ID",
			body: func(t *testing.T) []byte {
				return bytes.Replace(hostileEvent(t), []byte("Subscription update"), []byte("Subscription\x00update"), 1)
			},
			wantReason: "malformed JSON",
		},
		{
			name:   "NUL bytes after the JSON",
			body:   func(t *testing.T) []byte { return append(hostileEvent(t), 0, 0, 0, 0) },
			wantID: eventID, wantType: workflows.EventPaymentFailed, wantReason: "malformed JSON",
		},
		{
			name:       "JSON array at top level",
			body:       func(t *testing.T) []byte { return append(append([]byte("["), hostileEvent(t)...), ']') },
			wantReason: "wrong type",
		},

		// Events of a handled type that do not decode.
		{
			name:   "handled type without data.object",
			body:   hostileEdit(func(ev map[string]any) { ev["data"] = map[string]any{} }),
			wantID: eventID, wantType: workflows.EventPaymentFailed, wantReason: "invalid event: data.object missing",
		},
		{
			name:   "data.object null",
			body:   hostileEdit(func(ev map[string]any) { ev["data"] = map[string]any{"object": nil} }),
			wantID: eventID, wantType: workflows.EventPaymentFailed, wantReason: "invalid event: data.object missing",
		},
		{
			name:   "amount as a string",
			body:   hostileEdit(func(ev map[string]any) { dataObject(ev)["amount"] = "4900" }),
			wantID: eventID, wantType: workflows.EventPaymentFailed, wantReason: "field amount has the wrong type",
		},
		{
			name:   "customer as a number",
			body:   hostileEdit(func(ev map[string]any) { dataObject(ev)["customer"] = 42 }),
			wantID: eventID, wantType: workflows.EventPaymentFailed, wantReason: "field customer has the wrong type",
		},
		{
			name:   "customer not a Stripe ID",
			body:   hostileEdit(func(ev map[string]any) { dataObject(ev)["customer"] = "cus_../../admin" }),
			wantID: eventID, wantType: workflows.EventPaymentFailed, wantReason: "invalid event: customer is not a Stripe ID",
		},
		{
			name:   "created as a string",
			body:   hostileEdit(func(ev map[string]any) { ev["created"] = strconv.FormatInt(testNow.Unix(), 10) }),
			wantID: eventID, wantType: workflows.EventPaymentFailed, wantReason: "field created has the wrong type",
		},
		{
			name:   "top-level object is a charge, not an event",
			body:   hostileEdit(func(ev map[string]any) { ev["object"] = "charge" }),
			wantID: eventID, wantType: workflows.EventPaymentFailed, wantReason: "invalid event: object is not an event",
		},
		{
			// Too long to be a type dunning handles, so read as unknown.
			name: "type longer than 100 bytes",
			body: hostileEdit(func(ev map[string]any) {
				ev["type"] = workflows.EventPaymentFailed + strings.Repeat("x", 100)
			}),
			wantID: eventID, wantType: "", wantReason: "invalid event: type too long",
		},

		// Event IDs that cannot be workflow IDs.
		{
			name:       "id as a number",
			body:       hostileEdit(func(ev map[string]any) { ev["id"] = 12345 }),
			wantReason: "field id has the wrong type",
		},
		{
			name:       "id without the evt_ prefix",
			body:       hostileEdit(func(ev map[string]any) { ev["id"] = "ch_1OqHostile0000001" }),
			wantReason: "invalid event: id is not a Stripe event ID",
		},
		{
			name:       "id with path characters",
			body:       hostileEdit(func(ev map[string]any) { ev["id"] = "evt_../../x" }),
			wantReason: "invalid event: id is not a Stripe event ID",
		},
		{
			// encoding/json keeps the last of duplicate keys.
			name: "duplicate id keys, the last one invalid",
			body: func(t *testing.T) []byte {
				b := hostileEvent(t)
				return append(b[:len(b)-1], `,"id":"evt_../../x"}`...)
			},
			wantReason: "invalid event: id is not a Stripe event ID",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, srv := wireServer(t)
			r := sendOver(t, srv, signed(t, tc.body(t), secret))
			wantStatus := webhook.OutcomeUnreadable
			if tc.wantID == "" {
				wantStatus = webhook.OutcomeUnreadableNoID
			}
			if r.code != http.StatusOK || r.Status != wantStatus || r.EventID != tc.wantID || !strings.Contains(r.Reason, tc.wantReason) {
				t.Errorf("answer %d %q event_id %q reason %q, want 200 %q %q reason %q; body %.300s",
					r.code, r.Status, r.EventID, r.Reason, wantStatus, tc.wantID, tc.wantReason, r.raw)
			}
			if len(r.Reason) > 120 || strings.Contains(r.Reason, "..") {
				t.Errorf("reason %q, want a short one that repeats nothing of the body", r.Reason)
			}
			starts := s.temporal.starts()
			if tc.wantID == "" {
				if len(starts) != 0 {
					t.Errorf("%d workflow starts, want none without a usable event ID", len(starts))
				}
				if !strings.Contains(s.logs.String(), "level=ERROR") {
					t.Errorf("log %q, want an error", s.logs.String())
				}
				return
			}
			if len(starts) != 1 || starts[0].opts.ID != tc.wantID {
				t.Fatalf("workflow starts %+v, want one under %s", starts, tc.wantID)
			}
			ev := starts[0].args[0].(workflows.StripeEventInput).Event
			if ev.ID != tc.wantID || ev.Type != tc.wantType || ev.Unreadable != r.Reason {
				t.Errorf("started %s of type %q unreadable %q; want %s of type %q unreadable as answered (%q)",
					ev.ID, ev.Type, ev.Unreadable, tc.wantID, tc.wantType, r.Reason)
			}
			if ev.CustomerID != "" || ev.ObjectID != "" || ev.PaymentIntent != nil {
				t.Errorf("started %+v, want nothing of data.object", ev)
			}
		})
	}
}

// TestHostileButValidEvents covers odd requests that are nonetheless
// verified events of a handled type: dunning starts them, and the event
// workflow decides what they mean. The webhook holds no business logic.
func TestHostileButValidEvents(t *testing.T) {
	t.Parallel()
	const (
		eventID  = "evt_1OqHostile0000001"
		customer = "cus_PqHostile000001"
		intent   = "pi_3OqHostile0000001"
	)
	cases := []struct {
		name   string
		body   func(t *testing.T) []byte
		wantID string
		check  func(t *testing.T, ev workflows.StripeEvent)
	}{
		{
			// The event workflow alerts ops: no customer, nothing to recover.
			name: "null customer on payment_intent.payment_failed",
			body: func(t *testing.T) []byte {
				return edited(t, hostileEvent(t), func(ev map[string]any) { dataObject(ev)["customer"] = nil })
			},
			wantID: eventID,
			check: func(t *testing.T, ev workflows.StripeEvent) {
				if ev.CustomerID != "" || ev.PaymentIntent == nil || ev.PaymentIntent.ID != intent {
					t.Errorf("event customer %q, payment intent %+v; want no customer and intent %s", ev.CustomerID, ev.PaymentIntent, intent)
				}
			},
		},
		{
			// The event workflow alerts ops: no payment intent to recover.
			name: "payment_intent.payment_failed whose data.object is a charge",
			body: func(t *testing.T) []byte {
				return edited(t, hostileEvent(t), func(ev map[string]any) {
					ev["data"] = map[string]any{"object": map[string]any{
						"id": "ch_3OqHostile0000001", "object": "charge", "amount": 4900, "currency": "usd",
						"customer": customer, "payment_intent": intent, "status": "failed",
					}}
				})
			},
			wantID: eventID,
			check: func(t *testing.T, ev workflows.StripeEvent) {
				if ev.ObjectType != "charge" || ev.ObjectID != "ch_3OqHostile0000001" || ev.CustomerID != customer ||
					ev.PaymentIntent != nil || ev.Invoice != nil || ev.Card != nil {
					t.Errorf("event %+v, want a charge of %s and no payment intent, invoice or card", ev, customer)
				}
			},
		},
		{
			// encoding/json keeps the last of duplicate keys. The signature
			// covers the bytes, so both IDs come from the signer.
			name: "duplicate id keys, both valid",
			body: func(t *testing.T) []byte {
				b := hostileEvent(t)
				return append([]byte(`{"id":"evt_1OqHostileFirstId01",`), b[1:]...)
			},
			wantID: eventID,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, srv := wireServer(t)
			r := sendOver(t, srv, signed(t, tc.body(t), secret))
			if r.code != http.StatusOK || r.Status != webhook.OutcomeStarted || r.EventID != tc.wantID {
				t.Errorf("answer %d %q event_id %q, want 200 %q %s; body %s", r.code, r.Status, r.EventID, webhook.OutcomeStarted, tc.wantID, r.raw)
			}
			starts := s.temporal.starts()
			if len(starts) != 1 {
				t.Fatalf("%d workflow starts, want 1", len(starts))
			}
			if starts[0].opts.ID != tc.wantID {
				t.Errorf("workflow ID %q, want %q", starts[0].opts.ID, tc.wantID)
			}
			in, ok := starts[0].args[0].(workflows.StripeEventInput)
			if !ok {
				t.Fatalf("workflow argument is %T, want workflows.StripeEventInput", starts[0].args[0])
			}
			if in.Event.ID != tc.wantID || in.Event.Type != workflows.EventPaymentFailed {
				t.Errorf("workflow input event %s of type %s, want %s of type %s", in.Event.ID, in.Event.Type, tc.wantID, workflows.EventPaymentFailed)
			}
			if tc.check != nil {
				tc.check(t, in.Event)
			}
		})
	}
}
