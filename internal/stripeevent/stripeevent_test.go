package stripeevent_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"dunning/activities"
	"dunning/internal/stripeevent"
	"dunning/internal/stripefixture"
	"dunning/workflows"
)

var created = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

const (
	eventID    = "evt_1OqTestEventId0001"
	customerID = "cus_PqTestCustomer01"
	invoiceID  = "in_1OqTestInvoice0001"
	intentID   = "pi_3OqTestIntent00001"
)

// options are fixed so that every field of the result can be predicted.
func options(objectID string) stripefixture.Options {
	return stripefixture.Options{
		ID: eventID, Customer: customerID, Created: created, ObjectID: objectID,
		Amount: 12345, Currency: "eur", Invoice: invoiceID, PaymentIntent: intentID,
		DeclineCode: "expired_card", ExpMonth: 3, ExpYear: 2031,
	}
}

func build(t *testing.T, eventType string, o stripefixture.Options) []byte {
	t.Helper()
	body, err := stripefixture.Event(eventType, o)
	if err != nil {
		t.Fatalf("stripefixture.Event(%s): %v", eventType, err)
	}
	return body
}

// mutate decodes body, lets edit change it, and encodes it again.
func mutate(t *testing.T, body []byte, edit func(ev map[string]any)) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("decode fixture: %v", err)
	}
	edit(ev)
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("encode fixture: %v", err)
	}
	return out
}

func dataObject(ev map[string]any) map[string]any {
	return ev["data"].(map[string]any)["object"].(map[string]any)
}

func TestParseHandledTypes(t *testing.T) {
	t.Parallel()
	card := func(id, brand string) *workflows.CardInfo {
		return &workflows.CardInfo{ID: id, Brand: brand, Last4: "4242", ExpMonth: 3, ExpYear: 2031}
	}
	// want gives, per handled type, the object ID the fixture is built
	// with and the fields expected beyond the envelope.
	want := map[string]struct {
		objectID string
		check    func(t *testing.T, ev workflows.StripeEvent)
	}{
		workflows.EventPaymentFailed: {"pi_3OqFailed000001", func(t *testing.T, ev workflows.StripeEvent) {
			pi := ev.PaymentIntent
			if pi == nil {
				t.Fatal("PaymentIntent = nil")
			}
			if !strings.HasPrefix(pi.PaymentMethodID, "pm_") {
				t.Errorf("PaymentMethodID = %q, want the declined payment method from last_payment_error", pi.PaymentMethodID)
			}
			wantPI := workflows.PaymentIntentInfo{
				ID: "pi_3OqFailed000001", Amount: 12345, Currency: "eur", Status: "requires_payment_method",
				InvoiceID: invoiceID, PaymentMethodID: pi.PaymentMethodID, FailureCode: "card_declined",
				DeclineCode: "expired_card", FailureMessage: "Your card has insufficient funds.",
				Decline: activities.Decline{Code: "card_declined", DeclineCode: "expired_card", PaymentMethod: pi.PaymentMethodID,
					Fingerprint: stripefixture.Fingerprint(pi.PaymentMethodID), IntentStatus: "requires_payment_method"},
				FailedPaymentMethodType: "card",
			}
			if *pi != wantPI {
				t.Errorf("PaymentIntent = %+v, want %+v", *pi, wantPI)
			}
			if ev.ObjectType != "payment_intent" {
				t.Errorf("ObjectType = %q", ev.ObjectType)
			}
		}},
		workflows.EventPaymentSucceeded: {"pi_3OqPaid00000001", func(t *testing.T, ev workflows.StripeEvent) {
			pi := ev.PaymentIntent
			if pi == nil {
				t.Fatal("PaymentIntent = nil")
			}
			if pi.ID != "pi_3OqPaid00000001" || pi.Amount != 12345 || pi.Currency != "eur" || pi.Status != "succeeded" ||
				pi.InvoiceID != invoiceID || !strings.HasPrefix(pi.PaymentMethodID, "pm_") ||
				pi.FailureCode != "" || pi.DeclineCode != "" || pi.FailureMessage != "" {
				t.Errorf("PaymentIntent = %+v", *pi)
			}
		}},
		workflows.EventPaymentRequiresAction: {"pi_3OqAction0000001", func(t *testing.T, ev workflows.StripeEvent) {
			pi := ev.PaymentIntent
			if pi == nil {
				t.Fatal("PaymentIntent = nil")
			}
			if pi.ID != "pi_3OqAction0000001" || pi.Amount != 12345 || pi.Status != "requires_action" || pi.InvoiceID != invoiceID ||
				pi.FailureCode != "" || pi.DeclineCode != "" || pi.Decline.Code != "" {
				t.Errorf("PaymentIntent = %+v, want the intent the bank asks to authenticate, no decline (last_payment_error null)", *pi)
			}
		}},
		workflows.EventPaymentProcessing: {"pi_3OqDebit00000001", func(t *testing.T, ev workflows.StripeEvent) {
			pi := ev.PaymentIntent
			if pi == nil {
				t.Fatal("PaymentIntent = nil")
			}
			if pi.ID != "pi_3OqDebit00000001" || pi.Amount != 12345 || pi.Status != "processing" || pi.InvoiceID != invoiceID ||
				pi.FailureCode != "" || pi.Decline.Code != "" || pi.FailedPaymentMethodType != "" {
				t.Errorf("PaymentIntent = %+v, want the intent in flight, no decline (last_payment_error null)", *pi)
			}
		}},
		workflows.EventInvoicePaid: {"in_1OqPaidInvoice01", func(t *testing.T, ev workflows.StripeEvent) {
			wantInv := workflows.InvoiceInfo{
				ID: "in_1OqPaidInvoice01", PaymentIntentID: intentID, AmountDue: 12345, AmountPaid: 12345,
				Currency: "eur", Status: "paid",
			}
			if ev.Invoice == nil || *ev.Invoice != wantInv {
				t.Errorf("Invoice = %+v, want %+v", ev.Invoice, wantInv)
			}
			if ev.ObjectType != "invoice" {
				t.Errorf("ObjectType = %q", ev.ObjectType)
			}
		}},
		workflows.EventSourceExpiring: {"card_1OqExpiring001", func(t *testing.T, ev workflows.StripeEvent) {
			if w := card("card_1OqExpiring001", "Visa"); !reflect.DeepEqual(ev.Card, w) {
				t.Errorf("Card = %+v, want %+v", ev.Card, w)
			}
		}},
		workflows.EventSourceDeleted: {"card_1OqDeleted0001", func(t *testing.T, ev workflows.StripeEvent) {
			if w := card("card_1OqDeleted0001", "Visa"); !reflect.DeepEqual(ev.Card, w) {
				t.Errorf("Card = %+v, want %+v", ev.Card, w)
			}
		}},
		workflows.EventSourceCreated: {"card_1OqCreated0001", func(t *testing.T, ev workflows.StripeEvent) {
			if w := card("card_1OqCreated0001", "Visa"); !reflect.DeepEqual(ev.Card, w) {
				t.Errorf("Card = %+v, want %+v", ev.Card, w)
			}
		}},
		workflows.EventSourceUpdated: {"card_1OqUpdated0001", func(t *testing.T, ev workflows.StripeEvent) {
			if w := card("card_1OqUpdated0001", "Visa"); !reflect.DeepEqual(ev.Card, w) {
				t.Errorf("Card = %+v, want %+v", ev.Card, w)
			}
		}},
		workflows.EventPaymentMethodAttached: {"pm_1OqAttached00001", func(t *testing.T, ev workflows.StripeEvent) {
			if w := card("pm_1OqAttached00001", "visa"); !reflect.DeepEqual(ev.Card, w) {
				t.Errorf("Card = %+v, want %+v", ev.Card, w)
			}
			if ev.ObjectType != "payment_method" {
				t.Errorf("ObjectType = %q", ev.ObjectType)
			}
		}},
		workflows.EventPaymentMethodAutoUpd: {"pm_1OqAutoUpdated01", func(t *testing.T, ev workflows.StripeEvent) {
			if w := card("pm_1OqAutoUpdated01", "visa"); !reflect.DeepEqual(ev.Card, w) {
				t.Errorf("Card = %+v, want %+v", ev.Card, w)
			}
		}},
		workflows.EventPaymentMethodDetached: {"pm_1OqDetached00001", func(t *testing.T, ev workflows.StripeEvent) {
			// The customer comes from previous_attributes: the payment
			// method itself no longer has one.
			if w := card("pm_1OqDetached00001", "visa"); !reflect.DeepEqual(ev.Card, w) {
				t.Errorf("Card = %+v, want %+v", ev.Card, w)
			}
			if ev.ObjectType != "payment_method" {
				t.Errorf("ObjectType = %q", ev.ObjectType)
			}
		}},
		workflows.EventCustomerUpdated: {"pm_1OqNewDefault001", func(t *testing.T, ev workflows.StripeEvent) {
			if !ev.DefaultPaymentMethodChanged {
				t.Error("DefaultPaymentMethodChanged = false, want true (previous_attributes lists the old default)")
			}
			if ev.ObjectType != "customer" {
				t.Errorf("ObjectType = %q", ev.ObjectType)
			}
		}},
	}

	for _, typ := range workflows.HandledEventTypes() {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			w, ok := want[typ]
			if !ok {
				t.Fatalf("handled type %s has no expectation in this test", typ)
			}
			ev, err := stripeevent.Parse(build(t, typ, options(w.objectID)))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if ev.ID != eventID || ev.Type != typ || ev.APIVersion != stripefixture.APIVersion ||
				!ev.Created.Equal(created) || ev.Created.Location() != time.UTC || ev.Livemode {
				t.Errorf("envelope = {ID:%q Type:%q APIVersion:%q Created:%v Livemode:%v}", ev.ID, ev.Type, ev.APIVersion, ev.Created, ev.Livemode)
			}
			if ev.CustomerID != customerID {
				t.Errorf("CustomerID = %q, want %q", ev.CustomerID, customerID)
			}
			wantObject := w.objectID
			if typ == workflows.EventCustomerUpdated {
				wantObject = customerID // data.object is the customer itself
			}
			if ev.ObjectID != wantObject {
				t.Errorf("ObjectID = %q, want %q", ev.ObjectID, wantObject)
			}
			// Exactly the type's own detail is filled in.
			details := 0
			for _, set := range []bool{ev.PaymentIntent != nil, ev.Invoice != nil, ev.Card != nil} {
				if set {
					details++
				}
			}
			if wantDetails := map[bool]int{true: 0, false: 1}[typ == workflows.EventCustomerUpdated]; details != wantDetails {
				t.Errorf("%d of PaymentIntent/Invoice/Card set, want %d: %+v", details, wantDetails, ev)
			}
			w.check(t, ev)
		})
	}
}

func TestParseDefaultPaymentMethodChanged(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		previous any // nil deletes previous_attributes
		want     bool
	}{
		{"invoice_settings.default_payment_method", map[string]any{"invoice_settings": map[string]any{"default_payment_method": "pm_old"}}, true},
		{"default_source", map[string]any{"default_source": "card_old"}, true},
		{"default_source was null", map[string]any{"default_source": nil}, true},
		{"only email", map[string]any{"email": "old@example.com"}, false},
		{"invoice_settings without the default", map[string]any{"invoice_settings": map[string]any{"footer": "old"}}, false},
		{"invoice_settings null", map[string]any{"invoice_settings": nil}, false},
		{"no previous_attributes", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := mutate(t, build(t, workflows.EventCustomerUpdated, options("")), func(ev map[string]any) {
				data := ev["data"].(map[string]any)
				if tc.previous == nil {
					delete(data, "previous_attributes")
				} else {
					data["previous_attributes"] = tc.previous
				}
			})
			ev, err := stripeevent.Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if ev.DefaultPaymentMethodChanged != tc.want {
				t.Errorf("DefaultPaymentMethodChanged = %v, want %v", ev.DefaultPaymentMethodChanged, tc.want)
			}
			if ev.CustomerID != customerID {
				t.Errorf("CustomerID = %q, want %q", ev.CustomerID, customerID)
			}
		})
	}
}

func TestParseOtherAPIVersion(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"2020-08-27", "2024-06-20", "2025-03-31.basil"} {
		o := options("pi_3OqOldVersion001")
		o.APIVersion = v
		ev, err := stripeevent.Parse(build(t, workflows.EventPaymentFailed, o))
		if err != nil {
			t.Fatalf("api_version %s: %v", v, err)
		}
		if ev.APIVersion != v || ev.PaymentIntent == nil || ev.PaymentIntent.Amount != 12345 {
			t.Errorf("api_version %s: got APIVersion %q, PaymentIntent %+v", v, ev.APIVersion, ev.PaymentIntent)
		}
	}
}

// An invoice marked paid out of band says so; amount_paid is what paid.
func TestParseInvoicePaidOutOfBand(t *testing.T) {
	t.Parallel()
	body := mutate(t, build(t, workflows.EventInvoicePaid, options("in_1OqOutOfBand001")), func(ev map[string]any) {
		dataObject(ev)["paid_out_of_band"] = true
		dataObject(ev)["amount_paid"] = 0
	})
	ev, err := stripeevent.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Invoice == nil || !ev.Invoice.PaidOutOfBand || ev.Invoice.AmountPaid != 0 {
		t.Errorf("Invoice = %+v, want paid out of band, nothing paid through Stripe", ev.Invoice)
	}
}

// A succeeded intent says what it took: amount_received, which a credit
// note on its invoice may have lowered below what failed.
func TestParsePaymentSucceededAmountReceived(t *testing.T) {
	t.Parallel()
	body := mutate(t, build(t, workflows.EventPaymentSucceeded, options("pi_1OqReceived0001")), func(ev map[string]any) {
		dataObject(ev)["amount"] = 3000
		dataObject(ev)["amount_received"] = 3000
	})
	ev, err := stripeevent.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if ev.PaymentIntent == nil || ev.PaymentIntent.AmountReceived != 3000 {
		t.Errorf("PaymentIntent = %+v, want 3000 received", ev.PaymentIntent)
	}
}

func TestParseCustomerShapes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		customer any
		want     string
	}{
		{"ID", "cus_PlainId00000001", "cus_PlainId00000001"},
		{"expanded object", map[string]any{"id": "cus_Expanded000001", "object": "customer", "email": "jo@example.com"}, "cus_Expanded000001"},
		{"null", nil, ""},
	}
	for _, typ := range []string{workflows.EventPaymentFailed, workflows.EventInvoicePaid, workflows.EventSourceExpiring} {
		for _, tc := range cases {
			t.Run(typ+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				body := mutate(t, build(t, typ, options("")), func(ev map[string]any) {
					dataObject(ev)["customer"] = tc.customer
				})
				ev, err := stripeevent.Parse(body)
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if ev.CustomerID != tc.want {
					t.Errorf("CustomerID = %q, want %q", ev.CustomerID, tc.want)
				}
			})
		}
	}
}

func TestParseUnhandledType(t *testing.T) {
	t.Parallel()
	for _, edit := range []struct {
		name string
		fn   func(ev map[string]any)
	}{
		{"with data", func(map[string]any) {}},
		{"without data", func(ev map[string]any) { delete(ev, "data") }},
		{"data.object null", func(ev map[string]any) { ev["data"] = map[string]any{"object": nil} }},
		{"data.object oddly shaped", func(ev map[string]any) { ev["data"] = map[string]any{"object": []any{1, "x"}} }},
	} {
		t.Run(edit.name, func(t *testing.T) {
			t.Parallel()
			body := mutate(t, build(t, "charge.refunded", options("")), edit.fn)
			ev, err := stripeevent.Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if ev.ID != eventID || ev.Type != "charge.refunded" || !ev.Created.Equal(created) {
				t.Errorf("envelope = %+v", ev)
			}
			if _, handled := workflows.RouteOf(ev.Type); handled {
				t.Fatal("charge.refunded is handled; pick another unhandled type for this test")
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	// canary stands for payload content: no error may repeat it.
	const canary = "CANARYx7q9"
	valid := build(t, workflows.EventPaymentFailed, options(""))
	set := func(key string, v any) []byte {
		return mutate(t, valid, func(ev map[string]any) { ev[key] = v })
	}
	del := func(key string) []byte {
		return mutate(t, valid, func(ev map[string]any) { delete(ev, key) })
	}
	setObj := func(key string, v any) []byte {
		return mutate(t, valid, func(ev map[string]any) { dataObject(ev)[key] = v })
	}
	nested := `{"id":"evt_1OqDeep","object":"event","type":"invoice.paid","created":1710000000,"data":{"object":` +
		strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}}`

	cases := []struct {
		name string
		body []byte
		leak string // payload content that must not appear in the error
		want string // what the reason names
	}{
		{"empty", nil, "", ""},
		{"not JSON", []byte("hello " + canary), canary, "malformed JSON"},
		{"JSON but not an object", []byte(`["` + canary + `"]`), canary, ""},
		{"JSON string", []byte(`"` + canary + `"`), canary, ""},
		{"truncated JSON", valid[:len(valid)/2], "Subscription", "JSON"},
		{"trailing garbage", append(append([]byte{}, valid...), []byte("}"+canary)...), canary, ""},
		{"deeply nested JSON in data.object", []byte(nested), "[[[", "malformed JSON"},
		{"non-UTF-8 bytes", []byte(strings.Replace(string(valid), "Subscription update", "Subscr\xff\xfe"+canary, 1)), canary, "UTF-8"},
		{"missing id", del("id"), "", "id is not a Stripe event ID"},
		{"empty id", set("id", ""), "", "id is not a Stripe event ID"},
		{"id without evt_ prefix", set("id", "ch_"+canary), canary, "id is not a Stripe event ID"},
		{"id is only the prefix", set("id", "evt_"), "", "id is not a Stripe event ID"},
		{"id with illegal characters", set("id", "evt_../x"+canary), canary, "id is not a Stripe event ID"},
		{"id with a space", set("id", "evt_1 "+canary), canary, "id is not a Stripe event ID"},
		{"id too long", set("id", "evt_"+strings.Repeat("a", 300)), strings.Repeat("a", 30), "id is not a Stripe event ID"},
		{"id as a number", set("id", 12345678901), "12345678901", "field id"},
		{"missing type", del("type"), "", "type"},
		{"empty type", set("type", ""), "", "type missing"},
		{"missing created", del("created"), "", "created"},
		{"created zero", set("created", 0), "", "created missing"},
		{"created as a string", set("created", canary), canary, "field created"},
		{"missing data for a handled type", del("data"), "", "data.object missing"},
		{"missing data.object for a handled type", set("data", map[string]any{}), "", "data.object missing"},
		{"data.object null", set("data", map[string]any{"object": nil}), "", "data.object missing"},
		{"data.object a string", set("data", map[string]any{"object": canary}), canary, ""},
		{"data.object.id missing", mutate(t, valid, func(ev map[string]any) { delete(dataObject(ev), "id") }), "", "data.object.id"},
		{"data.object.id with illegal characters", setObj("id", "pi_"+canary+"/.."), canary, "data.object.id"},
		{"amount as a string", setObj("amount", canary), canary, "field amount"},
		{"customer as a number", setObj("customer", 987654321), "987654321", "field customer"},
		{"customer as a list", setObj("customer", []any{canary}), canary, "field customer"},
		{"customer with illegal characters", setObj("customer", "cus_"+canary+"<script>"), canary, "customer"},
		{"last_payment_error as a string", setObj("last_payment_error", canary), canary, "field last_payment_error"},
		{"object is not event", set("object", canary), canary, "not an event"},
		{"object is another Stripe object", set("object", "payment_intent"), "payment_intent", "not an event"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev, err := stripeevent.Parse(tc.body)
			if err == nil {
				t.Fatalf("Parse = %+v, nil; want an error", ev)
			}
			if !errors.Is(err, stripeevent.ErrInvalid) {
				t.Errorf("error %q does not wrap ErrInvalid", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not name %q", msg, tc.want)
			}
			if tc.leak != "" && strings.Contains(msg, tc.leak) {
				t.Errorf("error %q echoes payload content %q", msg, tc.leak)
			}
			if strings.Contains(msg, canary) || len(msg) > 120 {
				t.Errorf("error %q is long or echoes the payload", msg)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		"evt_1NbW2aLkdIwHu7ix":    true,
		"cus_A":                   true,
		"a":                       true,
		strings.Repeat("a", 255):  true,
		"":                        false,
		strings.Repeat("a", 256):  false,
		"evt_../x":                false,
		"cus 1":                   false,
		"pi-1":                    false,
		"cus_é":                   false,
		"recovery-cus_1":          false,
		"evt_1\n":                 false,
		"evt_1\x00":               false,
		"evt_" + "%2e%2e%2fadmin": false,
	} {
		if got := stripeevent.ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}

// A verified event that does not decode still names itself: Parse returns
// the envelope fields it could read with the reason, and never anything of
// data.object.
func TestParseEnvelopeOnFailure(t *testing.T) {
	t.Parallel()
	const canary = "CANARYx7q9"
	valid := build(t, workflows.EventPaymentFailed, options("pi_3OqEnvelope00001"))
	edit := func(fn func(ev map[string]any)) []byte { return mutate(t, valid, fn) }
	setObj := func(key string, v any) []byte { return edit(func(ev map[string]any) { dataObject(ev)[key] = v }) }
	full := workflows.StripeEvent{ID: eventID, Type: workflows.EventPaymentFailed, APIVersion: stripefixture.APIVersion, Created: created}

	cases := []struct {
		name   string
		body   []byte
		want   workflows.StripeEvent // the envelope read
		reason string
	}{
		{"data.object missing", edit(func(ev map[string]any) { ev["data"] = map[string]any{} }), full, "data.object missing"},
		{"data missing", edit(func(ev map[string]any) { delete(ev, "data") }), full, "data.object missing"},
		{"data.object a list", edit(func(ev map[string]any) { ev["data"] = map[string]any{"object": []any{canary}} }), full, "data.object"},
		{"amount as a string", setObj("amount", canary), full, "field amount"},
		{"customer not a Stripe ID", setObj("customer", "cus_"+canary+"<x>"), full, "customer is not a Stripe ID"},
		{"customer as a number", setObj("customer", 42), full, "field customer"},
		{"data.object.id missing", edit(func(ev map[string]any) { delete(dataObject(ev), "id") }), full, "data.object.id"},
		{"created as a string", edit(func(ev map[string]any) { ev["created"] = canary }),
			workflows.StripeEvent{ID: eventID, Type: workflows.EventPaymentFailed, APIVersion: stripefixture.APIVersion}, "field created"},
		{"created missing", edit(func(ev map[string]any) { delete(ev, "created") }),
			workflows.StripeEvent{ID: eventID, Type: workflows.EventPaymentFailed, APIVersion: stripefixture.APIVersion}, "created missing"},
		{"request of the wrong shape", edit(func(ev map[string]any) { ev["request"] = 7 }), full, "request"},
		{"type missing", edit(func(ev map[string]any) { delete(ev, "type") }),
			workflows.StripeEvent{ID: eventID, APIVersion: stripefixture.APIVersion, Created: created}, "type missing"},
		{"type too long", edit(func(ev map[string]any) { ev["type"] = strings.Repeat("x", 101) }),
			workflows.StripeEvent{ID: eventID, APIVersion: stripefixture.APIVersion, Created: created}, "type too long"},
		{"livemode as a string", edit(func(ev map[string]any) { ev["livemode"] = "true" }), full, "field livemode"},
		{"live mode, data.object missing", edit(func(ev map[string]any) { ev["livemode"] = true; delete(ev, "data") }),
			workflows.StripeEvent{ID: eventID, Type: workflows.EventPaymentFailed, APIVersion: stripefixture.APIVersion, Created: created, Livemode: true},
			"data.object missing"},
		{"object is not an event", edit(func(ev map[string]any) { ev["object"] = "charge" }), full, "not an event"},
		{"id without the evt_ prefix", edit(func(ev map[string]any) { ev["id"] = "ch_1OqNotAnEvent01" }),
			workflows.StripeEvent{Type: workflows.EventPaymentFailed, APIVersion: stripefixture.APIVersion, Created: created}, "id is not a Stripe event ID"},
		{"id with path characters", edit(func(ev map[string]any) { ev["id"] = "evt_../" + canary }),
			workflows.StripeEvent{Type: workflows.EventPaymentFailed, APIVersion: stripefixture.APIVersion, Created: created}, "id is not a Stripe event ID"},
		{"id as a number", edit(func(ev map[string]any) { ev["id"] = 12345 }),
			workflows.StripeEvent{Type: workflows.EventPaymentFailed, APIVersion: stripefixture.APIVersion, Created: created}, "field id"},
		// Trailing bytes and truncation: the envelope as far as it is JSON.
		{"NUL bytes after the JSON", append(append([]byte{}, valid...), 0, 0), full, "malformed JSON"},
		// Stripe's own order: id, object, api_version, created, data, ….
		{"truncated inside data", []byte(`{"id":"` + eventID + `","object":"event","api_version":"` + stripefixture.APIVersion +
			`","created":` + strconv.FormatInt(created.Unix(), 10) + `,"data":{"object":{"id":"pi_1","amount":49`),
			workflows.StripeEvent{ID: eventID, APIVersion: stripefixture.APIVersion, Created: created}, "JSON"},
		{"not UTF-8 inside data.object", []byte(strings.Replace(string(valid), "Subscription update", "Subscr\xff"+canary, 1)), full, "UTF-8"},
		{"not UTF-8 in the ID", []byte(strings.Replace(string(valid), eventID, eventID+"\xff", 1)),
			workflows.StripeEvent{Type: workflows.EventPaymentFailed, APIVersion: stripefixture.APIVersion, Created: created}, "UTF-8"},
		{"not JSON", []byte("hello " + canary), workflows.StripeEvent{}, "malformed JSON"},
		{"a JSON list", []byte(`[{"id":"` + eventID + `"}]`), workflows.StripeEvent{}, ""},
		{"empty", nil, workflows.StripeEvent{}, ""},
		// encoding/json keeps the last of duplicate keys; so does the envelope.
		{"duplicate id keys, the last one unusable", append(append([]byte{}, valid[:len(valid)-1]...), `,"id":"evt_../x"}`...),
			workflows.StripeEvent{Type: workflows.EventPaymentFailed, APIVersion: stripefixture.APIVersion, Created: created}, "id is not a Stripe event ID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev, err := stripeevent.Parse(tc.body)
			if err == nil || !errors.Is(err, stripeevent.ErrInvalid) {
				t.Fatalf("Parse error = %v, want one wrapping ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.reason) || strings.Contains(err.Error(), canary) {
				t.Errorf("error %q, want it to name %q and not repeat the payload", err, tc.reason)
			}
			if !reflect.DeepEqual(ev, tc.want) {
				t.Errorf("envelope read\n%+v\nwant\n%+v", ev, tc.want)
			}
		})
	}
}

func TestRead(t *testing.T) {
	t.Parallel()
	live := true
	valid := build(t, workflows.EventInvoicePaid, options("in_1OqRead00000001"))

	ev, err := stripeevent.Read(valid, &live)
	if err != nil || ev.Unreadable != "" || ev.Invoice == nil || ev.ExpectedLivemode != &live || ev.Livemode {
		t.Errorf("readable event: %+v, %v; want it decoded and marked with the key's mode", ev, err)
	}
	if ev, err := stripeevent.Read(valid, nil); err != nil || ev.ExpectedLivemode != nil {
		t.Errorf("mode unknown: expected %v, %v; want nil", ev.ExpectedLivemode, err)
	}

	broken := mutate(t, valid, func(ev map[string]any) { dataObject(ev)["amount_paid"] = "many" })
	ev, err = stripeevent.Read(broken, &live)
	_, parseErr := stripeevent.Parse(broken)
	want := workflows.StripeEvent{ID: eventID, Type: workflows.EventInvoicePaid, APIVersion: stripefixture.APIVersion, Created: created,
		Unreadable: parseErr.Error(), ExpectedLivemode: &live}
	if err != nil || !reflect.DeepEqual(ev, want) {
		t.Errorf("unreadable event with its ID: %+v, %v; want %+v and no error", ev, err, want)
	}
	if !strings.Contains(ev.Unreadable, "field amount_paid") {
		t.Errorf("Unreadable = %q, want the reason", ev.Unreadable)
	}

	nameless := mutate(t, broken, func(ev map[string]any) { ev["id"] = "in_1OqNotAnEvent01" })
	ev, err = stripeevent.Read(nameless, &live)
	if err == nil || ev.ID != "" || ev.Unreadable != "" || ev.Type != workflows.EventInvoicePaid {
		t.Errorf("unreadable event without a usable ID: %+v, %v; want the error, the type and no ID", ev, err)
	}
}
