package webhook_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"dunning/internal/sig"
	"dunning/internal/stripeevent"
	"dunning/internal/stripefixture"
	"dunning/webhook"
	"dunning/workflows"
)

// fuzzTolerance is the handler's signature tolerance in FuzzWebhook.
const fuzzTolerance = 5 * time.Minute

// clearStarts forgets the starts the fake has seen, between fuzz inputs.
func (f *fakeTemporal) clearStarts() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// fuzzLivemode is the mode of the Stripe key FuzzWebhook's handler has: live,
// so that the test-mode fixtures are of the other mode.
var fuzzLivemode = true

// FuzzWebhook feeds the handler arbitrary bodies and signature headers.
//
// Each input is delivered twice. The first delivery signs the fuzzed body
// correctly, at the handler's clock, so that the fuzzer gets past the
// signature check into the decoder and the routing. The second sends the
// fuzzed header as given, to fuzz the signature check itself.
//
// The answer must agree with what sig.Verify and stripeevent.Read say of
// the input: never a 5xx (the fake Temporal always accepts, so not even a
// 503), never a 4xx past a good signature (only a body over the limit,
// which cannot be verified), a start only for a verified event of a
// handled or unreadable type that names a usable event ID, with that ID as
// workflow ID and the event as read as input, nothing started on any other
// answer.
//
// `go test -run '^$' -fuzz '^FuzzWebhook$' -fuzztime 30s ./webhook` runs it.
func FuzzWebhook(f *testing.F) {
	// Real-shaped events of every handled type, each with its own signature.
	for i, typ := range workflows.HandledEventTypes() {
		body := event(f, typ, stripefixture.Options{
			ID:            fmt.Sprintf("evt_1OqFuzzSeed%08d", i),
			Customer:      "cus_PqFuzzSeed000001",
			Invoice:       "in_1OqFuzzSeed000001",
			PaymentIntent: "pi_3OqFuzzSeed000001",
		})
		f.Add(body, stripefixture.Sign(body, testNow, secret))
	}
	unhandled := event(f, "charge.refunded", stripefixture.Options{ID: "evt_1OqFuzzSeedUnhandled"})
	f.Add(unhandled, stripefixture.Sign(unhandled, testNow, secret))
	old := event(f, workflows.EventInvoicePaid, stripefixture.Options{ID: "evt_1OqFuzzSeedOldVersion", APIVersion: "2019-02-19"})
	f.Add(old, stripefixture.Sign(old, testNow, secret))

	// Broken bodies and headers.
	failed := event(f, workflows.EventPaymentFailed, stripefixture.Options{ID: "evt_1OqFuzzSeedBroken0001"})
	ts := strconv.FormatInt(testNow.Unix(), 10)
	for _, seed := range []struct {
		body   string
		header string
	}{
		{string(failed[:len(failed)/2]), ""},
		{"", "t=" + ts + ",v1=" + strings.Repeat("0", 64)},
		{"{}", "t=0,v1=00"},
		{"null", "v1=" + strings.Repeat("ab", 32)},
		{"[]", "t=" + ts + ",t=" + ts},
		{`{"id":"evt_1OqFuzz","object":"event","type":"invoice.paid","created":1,"data":{"object":null}}`, ",,,"},
		{`{"id":"evt_1OqFuzz","object":"event","type":"invoice.paid","created":"1","data":{"object":{"id":"in_1"}}}`, "t=abc"},
		{`{"id":"evt_1OqFuzz","id":"evt_2OqFuzz","object":"event","type":"payment_intent.payment_failed","created":1,"data":{"object":{"id":"pi_1","object":"payment_intent","customer":null,"amount":"4900"}}}`, "v0=" + strings.Repeat("0", 64)},
		{`{"id":"evt_1OqFuzz","object":"event","type":"customer.updated","created":1,"data":{"object":{"id":"cus_1","object":"customer"},"previous_attributes":{"invoice_settings":[]}}}`, "t=" + ts},
		{string(bytes.Replace(failed, []byte("Subscription update"), []byte("Subscription \xff update"), 1)), "t=-1,v1=zz"},
		{"\xef\xbb\xbf" + string(failed), "t=" + ts + ",v1=" + strings.Repeat("0", 64) + "," + strings.Repeat("v1=00,", 20)},
	} {
		f.Add([]byte(seed.body), seed.header)
	}

	live := event(f, workflows.EventPaymentFailed, stripefixture.Options{ID: "evt_1OqFuzzSeedLive0001"})
	live = bytes.Replace(live, []byte(`"livemode":false`), []byte(`"livemode":true`), 1)
	f.Add(live, stripefixture.Sign(live, testNow, secret))
	f.Add([]byte(`{"id":"evt_1OqFuzzNoType","created":1}`), "")
	f.Add([]byte(`{"id":"ch_1","type":"charge.refunded"}`), "")

	fake := &fakeTemporal{}
	s := newServer(f, fake, func(o *webhook.Options) {
		o.ExpectedLivemode = &fuzzLivemode
		o.Tolerance = fuzzTolerance
		// Millions of inputs would otherwise pile up in the test's log.
		o.Logger = slog.New(slog.DiscardHandler)
	})

	f.Fuzz(func(t *testing.T, body []byte, header string) {
		fake.clearStarts()
		r := s.do(t, signed(t, body, secret))
		checkFuzzAnswer(t, "correctly signed", body, stripefixture.Sign(body, testNow, secret), r, fake.starts())

		fake.clearStarts()
		req := signed(t, body, secret)
		req.Header.Set(webhook.SignatureHeader, header)
		r = s.do(t, req)
		checkFuzzAnswer(t, "with the fuzzed signature header", body, header, r, fake.starts())
	})
}

// checkFuzzAnswer checks the answer r to a delivery of body with the given
// signature header, and the starts it made, against what the handler's
// own parts say of the input.
func checkFuzzAnswer(t *testing.T, delivery string, body []byte, header string, r reply, starts []startCall) {
	t.Helper()
	if r.code >= 500 {
		t.Fatalf("%s: answer %d %s: a 5xx (a 500 is a panic caught by gin)", delivery, r.code, r.raw)
	}
	if r.code != http.StatusOK && len(starts) != 0 {
		t.Fatalf("%s: answer %d %s, yet %d workflow starts", delivery, r.code, r.raw, len(starts))
	}
	if r.code >= 400 && (r.Error == "" || len(r.Error) > 100) {
		t.Fatalf("%s: answer %d with error %q, want a short reason", delivery, r.code, r.Error)
	}

	// What the answer must be, from the signature check and the decoder.
	// Past a good signature nothing is answered 4xx.
	ev, readErr := stripeevent.Read(body, &fuzzLivemode)
	_, handled := workflows.RouteOf(ev.Type)
	want, wantStatus, wantStart := http.StatusOK, webhook.OutcomeStarted, true
	switch {
	case len(body) > maxBody:
		want, wantStatus, wantStart = http.StatusRequestEntityTooLarge, webhook.OutcomeTooLarge, false
	case sig.Verify(header, body, []string{secret}, fuzzTolerance, testNow) != nil:
		want, wantStatus, wantStart = http.StatusBadRequest, webhook.OutcomeBadSignature, false
	case !handled && ev.Type != "":
		wantStatus, wantStart = webhook.OutcomeIgnored, false
	case readErr != nil:
		wantStatus, wantStart = webhook.OutcomeUnreadableNoID, false
	case ev.Unreadable != "":
		wantStatus = webhook.OutcomeUnreadable
	case workflows.WrongMode(ev):
		wantStatus = webhook.OutcomeWrongMode
	}
	if r.code != want || r.Status != wantStatus {
		t.Fatalf("%s: answer %d %q, want %d %q; body %s", delivery, r.code, r.Status, want, wantStatus, r.raw)
	}
	if !wantStart {
		if len(starts) != 0 {
			t.Fatalf("%s: answer %q after %d workflow starts, want none", delivery, r.Status, len(starts))
		}
		return
	}
	if len(starts) != 1 {
		t.Fatalf("%s: answer %q after %d workflow starts, want 1", delivery, r.Status, len(starts))
	}
	if id := starts[0].opts.ID; id != ev.ID || id != workflows.EventWorkflowID(ev.ID) || r.EventID != ev.ID || !stripeevent.ValidID(id) {
		t.Fatalf("%s: workflow ID %q, answer event_id %q, want the event ID %q", delivery, id, r.EventID, ev.ID)
	}
	in, ok := starts[0].args[0].(workflows.StripeEventInput)
	if !ok || !reflect.DeepEqual(in.Event, ev) {
		t.Fatalf("%s: workflow input %+v, want the event read %+v", delivery, starts[0].args[0], ev)
	}
	if ev.Unreadable != "" && (ev.CustomerID != "" || ev.ObjectID != "" || ev.PaymentIntent != nil || ev.Invoice != nil || ev.Card != nil) {
		t.Fatalf("%s: unreadable event started with data.object fields: %+v", delivery, ev)
	}
}
