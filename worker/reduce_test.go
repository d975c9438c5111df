package worker_test

import (
	"encoding/json"
	"strings"
	"testing"

	"dunning/activities"
	"dunning/internal/stripefixture"
	"dunning/worker"
	"dunning/workflows"
)

// TestEventReducerKeepsNoPersonalData: of events that carry a customer's
// email, name, phone and address wherever Stripe sends them, reconciliation
// keeps only the webhook's reduced event, with none of them.
func TestEventReducerKeepsNoPersonalData(t *testing.T) {
	reduce := worker.EventReducer(nil)
	for _, typ := range workflows.HandledEventTypes() {
		raw, err := stripefixture.Event(typ, stripefixture.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), stripefixture.PersonalName) {
			t.Errorf("%s: the fixture carries no personal data to keep out", typ)
		}
		reduced, outcome, err := reduce(raw)
		if err != nil || outcome != "" {
			t.Fatalf("%s: outcome %q, %v; want it kept", typ, outcome, err)
		}
		var ev workflows.StripeEvent
		if err := json.Unmarshal(reduced, &ev); err != nil || ev.Type != typ || ev.CustomerID == "" {
			t.Errorf("%s: reduced to %s (%v), want the webhook's event", typ, reduced, err)
		}
		for _, p := range stripefixture.Personal {
			if strings.Contains(string(reduced), p) {
				t.Errorf("%s: reduced event %s carries %q", typ, reduced, p)
			}
		}
	}
	if _, outcome, _ := reduce(json.RawMessage(`{"id":"evt_1","object":"event","type":"charge.refunded","data":{"object":{}}}`)); outcome != activities.EventIgnored {
		t.Errorf("unhandled type: outcome %q, want %q", outcome, activities.EventIgnored)
	}
	if _, outcome, err := reduce(json.RawMessage(`{"id":"not an event"}`)); outcome != activities.EventInvalid || err == nil {
		t.Errorf("unreadable event: %q, %v; want %q with the reason", outcome, err, activities.EventInvalid)
	}
}
