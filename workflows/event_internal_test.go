package workflows

import (
	"strings"
	"testing"
)

func TestHeldBack(t *testing.T) {
	live, test := true, false
	const id = "evt_1OqHeldBack000001"
	cases := []struct {
		name     string
		ev       StripeEvent
		wantKey  string // empty: not held back
		wantText []string
	}{
		{"readable, mode unknown", StripeEvent{ID: id, Type: EventInvoicePaid, Livemode: true}, "", nil},
		{"readable, same mode (live)", StripeEvent{ID: id, Type: EventInvoicePaid, Livemode: true, ExpectedLivemode: &live}, "", nil},
		{"readable, same mode (test)", StripeEvent{ID: id, Type: EventInvoicePaid, ExpectedLivemode: &test}, "", nil},
		{"test event, live key", StripeEvent{ID: id, Type: EventInvoicePaid, ExpectedLivemode: &live}, id + ":livemode",
			[]string{id, EventInvoicePaid, "test-mode event", "live-mode key"}},
		{"live event, test key", StripeEvent{ID: id, Type: EventPaymentFailed, Livemode: true, ExpectedLivemode: &test}, id + ":livemode",
			[]string{id, EventPaymentFailed, "live-mode event", "test-mode key"}},
		{"unhandled type of the other mode", StripeEvent{ID: id, Type: "charge.refunded", ExpectedLivemode: &live}, "", nil},
		{"unreadable", StripeEvent{ID: id, Type: EventInvoicePaid, Unreadable: "invalid event: data.object missing"}, id + ":unreadable",
			[]string{id, EventInvoicePaid, "data.object missing"}},
		{"unreadable, type unknown", StripeEvent{ID: id, Unreadable: "invalid event: type missing"}, id + ":unreadable",
			[]string{id, "type unknown", "type missing"}},
		{"unreadable, unhandled type", StripeEvent{ID: id, Type: "charge.refunded", Unreadable: "invalid event: created missing"}, id + ":unreadable",
			[]string{id, "charge.refunded"}},
		{"unreadable and of the other mode", StripeEvent{ID: id, Type: EventInvoicePaid, Unreadable: "r", ExpectedLivemode: &live}, id + ":unreadable",
			[]string{id}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			alert, outcome, held := heldBack(tc.ev)
			if held != (tc.wantKey != "") {
				t.Fatalf("held = %v, want %v", held, tc.wantKey != "")
			}
			if !held {
				return
			}
			if alert.Key != tc.wantKey || alert.Severity != "critical" || alert.WorkflowID != id || outcome == "" || alert.Title == "" {
				t.Errorf("alert %+v outcome %q, want key %s, critical, workflow %s", alert, outcome, tc.wantKey, id)
			}
			for _, want := range tc.wantText {
				if !strings.Contains(alert.Text, want) {
					t.Errorf("alert text %q does not say %q", alert.Text, want)
				}
			}
		})
	}
}
