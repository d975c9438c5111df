package stripeevent_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"dunning/internal/stripeevent"
	"dunning/workflows"
)

// payment_method.detached as three API versions shape it, written from
// Stripe's documented objects: data.object is the PaymentMethod after the
// detach, so its customer is null, and the customer it was detached from is
// in data.previous_attributes. The event is that customer's.
func TestParsePaymentMethodDetachedOfEachAPIVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file, version, customer string
		card                    workflows.CardInfo
		livemode                bool
	}{
		{"payment_method_detached_2020-08-27.json", "2020-08-27", "cus_IqOld2020Cust0001",
			workflows.CardInfo{ID: "pm_1HqOld2020Card0002", Brand: "visa", Last4: "4242", ExpMonth: 8, ExpYear: 2023}, false},
		{"payment_method_detached_2024-06-20.json", "2024-06-20", "cus_QqMid2024Cust0001",
			workflows.CardInfo{ID: "pm_1PqMid2024Card0001", Brand: "mastercard", Last4: "4444", ExpMonth: 11, ExpYear: 2027}, true},
		{"payment_method_detached_2025-03-31.basil.json", "2025-03-31.basil", "cus_SqNew2025Cust001",
			workflows.CardInfo{ID: "pm_1RqNew2025Card0002", Brand: "amex", Last4: "8431", ExpMonth: 2, ExpYear: 2030}, false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			mode := tc.livemode
			ev, err := stripeevent.Read(readFixture(t, tc.file), &mode)
			if err != nil || ev.Unreadable != "" {
				t.Fatalf("Read: %v, unreadable %q; want the event read", err, ev.Unreadable)
			}
			if ev.Type != workflows.EventPaymentMethodDetached || ev.APIVersion != tc.version || ev.Livemode != tc.livemode || workflows.WrongMode(ev) {
				t.Errorf("envelope {Type:%q APIVersion:%q Livemode:%v}", ev.Type, ev.APIVersion, ev.Livemode)
			}
			if ev.CustomerID != tc.customer {
				t.Errorf("CustomerID = %q, want %q, the customer the method was detached from", ev.CustomerID, tc.customer)
			}
			if ev.ObjectID != tc.card.ID || ev.ObjectType != "payment_method" {
				t.Errorf("object %q of %q, want the detached payment method %q", ev.ObjectID, ev.ObjectType, tc.card.ID)
			}
			if ev.Card == nil || *ev.Card != tc.card {
				t.Errorf("Card = %+v, want %+v", ev.Card, tc.card)
			}
			if route, handled := workflows.RouteOf(ev.Type); !handled || route != workflows.RouteSourceDeleted {
				t.Errorf("route %q (handled %v), want %q: a removed way to pay", route, handled, workflows.RouteSourceDeleted)
			}
		})
	}
}

// Which customer a detached payment method is attributed to, and when the
// event names none it can be read from: then it is unreadable, and its
// workflow tells ops, who can see it in the Dashboard.
func TestParsePaymentMethodDetachedCustomer(t *testing.T) {
	t.Parallel()
	const canary = "CANARYx7q9"
	base := readFixture(t, "payment_method_detached_2025-03-31.basil.json")
	previous := func(v any) func(ev map[string]any) {
		return func(ev map[string]any) { ev["data"].(map[string]any)["previous_attributes"] = v }
	}
	for _, tc := range []struct {
		name   string
		edit   func(ev map[string]any)
		want   string // the customer; empty for an unreadable event
		reason string // what the unreadable reason names
	}{
		{"as Stripe sends it", func(map[string]any) {}, "cus_SqNew2025Cust001", ""},
		{"previous customer expanded", previous(map[string]any{"customer": map[string]any{"id": "cus_SqExpanded00001", "object": "customer", "email": canary}}),
			"cus_SqExpanded00001", ""},
		{"previous attributes name more than the customer", previous(map[string]any{"customer": "cus_SqNew2025Cust001", "allow_redisplay": "unspecified"}),
			"cus_SqNew2025Cust001", ""},
		{"the customer the method was detached from wins", func(ev map[string]any) { dataObject(ev)["customer"] = "cus_SqStillNamed0001" },
			"cus_SqNew2025Cust001", ""},
		{"only the object names a customer", func(ev map[string]any) {
			dataObject(ev)["customer"] = "cus_SqOnObject00001"
			delete(ev["data"].(map[string]any), "previous_attributes")
		}, "cus_SqOnObject00001", ""},
		{"no previous attributes", func(ev map[string]any) { delete(ev["data"].(map[string]any), "previous_attributes") }, "", "names no customer"},
		{"previous attributes null", previous(nil), "", "names no customer"},
		{"previous attributes without the customer", previous(map[string]any{"metadata": map[string]any{}}), "", "names no customer"},
		{"previous customer null", previous(map[string]any{"customer": nil}), "", "names no customer"},
		{"previous customer not a Stripe ID", previous(map[string]any{"customer": "cus_" + canary + "<x>"}), "", "customer is not a Stripe ID"},
		{"previous customer a number", previous(map[string]any{"customer": 42}), "", "previous_attributes"},
		{"previous attributes a string", previous(canary), "", "previous_attributes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := mutate(t, base, tc.edit)
			ev, err := stripeevent.Read(body, nil)
			if err != nil {
				t.Fatalf("Read: %v; the event has a usable ID", err)
			}
			if tc.want != "" {
				if ev.Unreadable != "" || ev.CustomerID != tc.want || ev.ObjectID != "pm_1RqNew2025Card0002" {
					t.Errorf("customer %q of %q, unreadable %q; want %q", ev.CustomerID, ev.ObjectID, ev.Unreadable, tc.want)
				}
				return
			}
			if ev.Unreadable == "" || !strings.Contains(ev.Unreadable, tc.reason) || strings.Contains(ev.Unreadable, canary) {
				t.Errorf("unreadable %q, want a reason naming %q that does not repeat the payload", ev.Unreadable, tc.reason)
			}
			want := workflows.StripeEvent{ID: "evt_3RqNew2025Detach01", Type: workflows.EventPaymentMethodDetached, APIVersion: "2025-03-31.basil",
				Created: ev.Created, Unreadable: ev.Unreadable}
			if !reflect.DeepEqual(ev, want) || ev.Created.IsZero() {
				t.Errorf("read %+v, want the envelope only, nothing of data", ev)
			}
			if _, err := stripeevent.Parse(body); !errors.Is(err, stripeevent.ErrInvalid) {
				t.Errorf("Parse error %v, want one wrapping ErrInvalid", err)
			}
		})
	}
}
