// Package stripeevent decodes a Stripe event into the fields dunning
// needs. It reads the JSON by hand rather than with stripe-go's event
// types so that an event of any API version decodes: the signature proves
// where an event came from, not which version of the API shaped it.
package stripeevent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"dunning/activities"
	"dunning/workflows"
)

// ErrInvalid wraps every reason an event cannot be decoded.
var ErrInvalid = errors.New("invalid event")

const (
	maxIDLen   = 255
	maxTypeLen = 100
)

// envelope is the part of an event that is the same for every type.
type envelope struct {
	ID         string  `json:"id"`
	Object     string  `json:"object"`
	Type       string  `json:"type"`
	APIVersion string  `json:"api_version"`
	Created    int64   `json:"created"`
	Livemode   bool    `json:"livemode"`
	Request    request `json:"request"`
	Data       *struct {
		Object             json.RawMessage `json:"object"`
		PreviousAttributes json.RawMessage `json:"previous_attributes"`
	} `json:"data"`
}

// request is the event's request: an object with the idempotency key of
// the API call that caused the event, a bare request ID in old API
// versions, or null.
type request struct {
	IdempotencyKey string
}

func (r *request) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		var s *string // null or an ID: no key
		return json.Unmarshal(b, &s)
	}
	var o struct {
		IdempotencyKey *string `json:"idempotency_key"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	if o.IdempotencyKey != nil {
		r.IdempotencyKey = *o.IdempotencyKey
	}
	return nil
}

// ref is an expandable Stripe field: an ID string, an object with an id,
// or null.
type ref string

func (r *ref) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*r = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*r = ref(s)
		return nil
	case len(b) > 0 && b[0] == '{':
		var o struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		*r = ref(o.ID)
		return nil
	}
	// A type error, so that the decoder names the field; the value itself
	// is not repeated.
	return &json.UnmarshalTypeError{Value: "value", Type: reflect.TypeFor[string]()}
}

// lastPaymentError is a payment intent's last_payment_error: the decline
// as activities.DeclineOf reads it from any API version, and the message.
type lastPaymentError struct {
	decline activities.Decline
	message string
	// methodType is the type of the way to pay that failed, where the
	// error carries its object (payment_method, or a legacy source).
	methodType string
}

func (e *lastPaymentError) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) == 0 || b[0] != '{' {
		// Null never gets here (the pointer stays nil); anything else but
		// an object is a type error, so that the decoder names the field.
		return &json.UnmarshalTypeError{Value: "value", Type: reflect.TypeFor[lastPaymentError]()}
	}
	var m struct {
		Message       string          `json:"message"`
		PaymentMethod json.RawMessage `json:"payment_method"`
		Source        json.RawMessage `json:"source"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	d, err := activities.DeclineOf(b)
	if err != nil {
		return err
	}
	e.decline, e.message = d, m.Message
	e.methodType = typeOf(m.PaymentMethod)
	if e.methodType == "" {
		e.methodType = typeOf(m.Source)
	}
	return nil
}

// typeOf is the type of an expanded object, or empty for an ID, null, or
// anything else: the type is only ever read, never required.
func typeOf(b json.RawMessage) string {
	if b = bytes.TrimSpace(b); len(b) == 0 || b[0] != '{' {
		return ""
	}
	var o struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(b, &o) != nil {
		return ""
	}
	return o.Type
}

type card struct {
	ID       string `json:"id"`
	Brand    string `json:"brand"`
	Last4    string `json:"last4"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
}

// object holds the fields of data.object that any handled type may carry.
// Fields absent from a type stay zero.
type object struct {
	ID       string `json:"id"`
	Object   string `json:"object"`
	Customer ref    `json:"customer"`

	// payment_intent
	Amount           int64             `json:"amount"`
	AmountReceived   int64             `json:"amount_received"`
	Currency         string            `json:"currency"`
	Status           string            `json:"status"`
	Invoice          ref               `json:"invoice"`
	PaymentMethod    ref               `json:"payment_method"`
	LastPaymentError *lastPaymentError `json:"last_payment_error"`
	// The intent's charges, where the version gives them as objects:
	// charges.data before 2022-11-15, latest_charge when expanded. They
	// only add to the decline (its outcome), so a shape not understood is
	// left unread rather than failing the event.
	Charges      json.RawMessage `json:"charges"`
	LatestCharge json.RawMessage `json:"latest_charge"`
	// Metadata values are strings; any other value is left unread rather
	// than failing the event.
	Metadata map[string]json.RawMessage `json:"metadata"`

	// invoice
	PaymentIntent ref   `json:"payment_intent"`
	AmountDue     int64 `json:"amount_due"`
	AmountPaid    int64 `json:"amount_paid"`
	PaidOutOfBand bool  `json:"paid_out_of_band"`

	// card, source, payment_method
	Brand    string `json:"brand"`
	Last4    string `json:"last4"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
	Card     *card  `json:"card"`
}

// Parse decodes a verified event body. It fails, wrapping ErrInvalid, on a
// body that is not a Stripe event or whose fields have the wrong shape; the
// event it then returns holds only the envelope fields that could be read
// (see envelopeOf), so that the event can still be named.
func Parse(body []byte) (workflows.StripeEvent, error) {
	ev, err := parse(body)
	if err != nil {
		return envelopeOf(body), err
	}
	return ev, nil
}

// Read decodes a verified event body for handing on to dunning. The event
// is marked with livemode, the mode of dunning's Stripe API key (nil when
// unknown), so that its workflow can tell an event of the other mode. An
// event that does not decode but carries a usable event ID comes back with
// its envelope only, Unreadable set to the reason and a nil error: its
// workflow tells ops. The error is kept for a body whose ID is unusable.
func Read(body []byte, livemode *bool) (workflows.StripeEvent, error) {
	ev, err := Parse(body)
	ev.ExpectedLivemode = livemode
	if err != nil && ev.ID != "" {
		ev.Unreadable, err = err.Error(), nil
	}
	return ev, err
}

func parse(body []byte) (workflows.StripeEvent, error) {
	var ev workflows.StripeEvent
	if !utf8.Valid(body) {
		return ev, fmt.Errorf("%w: body is not UTF-8", ErrInvalid)
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return ev, fmt.Errorf("%w: %s", ErrInvalid, jsonReason(err))
	}
	if env.Object != "" && env.Object != "event" {
		return ev, fmt.Errorf("%w: object is not an event", ErrInvalid)
	}
	if !validEventID(env.ID) {
		return ev, fmt.Errorf("%w: id is not a Stripe event ID", ErrInvalid)
	}
	if env.Type == "" {
		return ev, fmt.Errorf("%w: type missing", ErrInvalid)
	}
	if len(env.Type) > maxTypeLen {
		return ev, fmt.Errorf("%w: type too long", ErrInvalid)
	}
	if env.Created <= 0 {
		return ev, fmt.Errorf("%w: created missing", ErrInvalid)
	}
	ev = workflows.StripeEvent{
		ID:         env.ID,
		Type:       env.Type,
		APIVersion: env.APIVersion,
		Created:    time.Unix(env.Created, 0).UTC(),
		Livemode:   env.Livemode,

		RequestIdempotencyKey: truncate(env.Request.IdempotencyKey, 255),
	}
	if _, handled := workflows.RouteOf(env.Type); !handled {
		// Nothing more is needed of a type dunning drops.
		return ev, nil
	}
	if env.Data == nil || len(env.Data.Object) == 0 || bytes.Equal(bytes.TrimSpace(env.Data.Object), []byte("null")) {
		return ev, fmt.Errorf("%w: data.object missing", ErrInvalid)
	}
	var o object
	if err := json.Unmarshal(env.Data.Object, &o); err != nil {
		return ev, fmt.Errorf("%w: data.object: %s", ErrInvalid, jsonReason(err))
	}
	if !ValidID(o.ID) {
		return ev, fmt.Errorf("%w: data.object.id is not a Stripe ID", ErrInvalid)
	}
	ev.ObjectID, ev.ObjectType = o.ID, o.Object
	ev.CustomerID = string(o.Customer)
	if o.Object == "customer" {
		ev.CustomerID = o.ID
	}
	if env.Type == workflows.EventPaymentMethodDetached {
		// The payment method after the detach belongs to no customer; the
		// one it was detached from is in the previous attributes.
		from, err := detachedFrom(env.Data.PreviousAttributes)
		if err != nil {
			return ev, fmt.Errorf("%w: data.previous_attributes: %s", ErrInvalid, jsonReason(err))
		}
		if from != "" {
			ev.CustomerID = from
		}
		if ev.CustomerID == "" {
			return ev, fmt.Errorf("%w: names no customer (data.previous_attributes.customer)", ErrInvalid)
		}
	}
	if ev.CustomerID != "" && !ValidID(ev.CustomerID) {
		return ev, fmt.Errorf("%w: customer is not a Stripe ID", ErrInvalid)
	}

	switch o.Object {
	case "payment_intent":
		pi := &workflows.PaymentIntentInfo{
			ID: o.ID, Amount: o.Amount, AmountReceived: o.AmountReceived, Currency: o.Currency, Status: o.Status,
			InvoiceID: string(o.Invoice), PaymentMethodID: string(o.PaymentMethod),
		}
		if e := o.LastPaymentError; e != nil {
			d := e.decline
			if d.IntentStatus == "" {
				d.IntentStatus = o.Status
			}
			if d.Charge != "" {
				for _, c := range o.charges() {
					if withCharge, err := d.WithCharge(c); err == nil {
						d = withCharge
					}
				}
			}
			pi.Decline = d
			pi.FailedPaymentMethodType = e.methodType
			if pi.FailedPaymentMethodType == "" {
				pi.FailedPaymentMethodType = o.chargeMethodType(d.Charge)
			}
			pi.FailureCode, pi.DeclineCode, pi.FailureMessage = d.Code, d.DeclineCode, truncate(e.message, 300)
			if pi.PaymentMethodID == "" {
				pi.PaymentMethodID = d.PaymentMethod
			}
		}
		if v, ok := o.Metadata[activities.WaivedMetadataKey]; ok {
			var reason string
			pi.Waived = json.Unmarshal(v, &reason) == nil && reason != ""
		}
		ev.PaymentIntent = pi
	case "invoice":
		ev.Invoice = &workflows.InvoiceInfo{
			ID: o.ID, PaymentIntentID: string(o.PaymentIntent), AmountDue: o.AmountDue,
			AmountPaid: o.AmountPaid, Currency: o.Currency, Status: o.Status, PaidOutOfBand: o.PaidOutOfBand,
		}
	case "card":
		ev.Card = &workflows.CardInfo{ID: o.ID, Brand: o.Brand, Last4: o.Last4, ExpMonth: o.ExpMonth, ExpYear: o.ExpYear}
	case "source", "payment_method":
		if c := o.Card; c != nil {
			ev.Card = &workflows.CardInfo{ID: o.ID, Brand: c.Brand, Last4: c.Last4, ExpMonth: c.ExpMonth, ExpYear: c.ExpYear}
		}
	case "customer":
		changed, err := defaultPaymentMethodChanged(env.Data.PreviousAttributes)
		if err != nil {
			return ev, fmt.Errorf("%w: data.previous_attributes: %s", ErrInvalid, jsonReason(err))
		}
		ev.DefaultPaymentMethodChanged = changed
	}
	return ev, nil
}

// charges returns the intent's charges that the event carries as objects.
// chargeMethodType is the payment_method_details.type of the charge with
// this ID among the intent's charges; empty when none says.
func (o *object) chargeMethodType(id string) string {
	if id == "" {
		return ""
	}
	for _, c := range o.charges() {
		var ch struct {
			ID      string `json:"id"`
			Details *struct {
				Type string `json:"type"`
			} `json:"payment_method_details"`
		}
		if json.Unmarshal(c, &ch) == nil && ch.ID == id && ch.Details != nil {
			return ch.Details.Type
		}
	}
	return ""
}

func (o *object) charges() []json.RawMessage {
	var out []json.RawMessage
	var list struct {
		Data []json.RawMessage `json:"data"`
	}
	if json.Unmarshal(o.Charges, &list) == nil {
		out = append(out, list.Data...)
	}
	if c := bytes.TrimSpace(o.LatestCharge); len(c) > 0 && c[0] == '{' {
		out = append(out, c)
	}
	return out
}

// detachedFrom reads payment_method.detached's previous attributes: the
// customer the payment method was attached to before, as an ID or an
// expanded object; empty when they do not name one.
func detachedFrom(prev json.RawMessage) (string, error) {
	if len(prev) == 0 || bytes.Equal(bytes.TrimSpace(prev), []byte("null")) {
		return "", nil
	}
	var p struct {
		Customer ref `json:"customer"`
	}
	if err := json.Unmarshal(prev, &p); err != nil {
		return "", err
	}
	return string(p.Customer), nil
}

// defaultPaymentMethodChanged reads customer.updated's previous attributes:
// the default changed when the old value of default_source or of
// invoice_settings.default_payment_method is listed there.
func defaultPaymentMethodChanged(prev json.RawMessage) (bool, error) {
	if len(prev) == 0 || bytes.Equal(bytes.TrimSpace(prev), []byte("null")) {
		return false, nil
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(prev, &p); err != nil {
		return false, err
	}
	if _, ok := p["default_source"]; ok {
		return true, nil
	}
	settings, ok := p["invoice_settings"]
	if !ok || bytes.Equal(bytes.TrimSpace(settings), []byte("null")) {
		return false, nil
	}
	var s map[string]json.RawMessage
	if err := json.Unmarshal(settings, &s); err != nil {
		return false, err
	}
	_, ok = s["default_payment_method"]
	return ok, nil
}

// envelopeOf reads what it can of the envelope of a body that does not
// decode: the top-level id, type, created, livemode and api_version, as far
// as the body is well-formed JSON, each only when it has the right type and
// passes the checks Parse makes (an ID only when it is a Stripe event ID).
// It never reads data, so nothing of the customer's comes out of it.
func envelopeOf(body []byte) workflows.StripeEvent {
	var ev workflows.StripeEvent
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ev
	}
	// Keys match as encoding/json matches them, the last of duplicates
	// winning; a value of the wrong type leaves its field unread.
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return ev
		}
		key, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return ev
		}
		switch {
		case strings.EqualFold(key, "id"):
			ev.ID = ""
			if s, ok := stringOf(v); ok && validEventID(s) {
				ev.ID = s
			}
		case strings.EqualFold(key, "type"):
			ev.Type = ""
			if s, ok := stringOf(v); ok && len(s) <= maxTypeLen {
				ev.Type = s
			}
		case strings.EqualFold(key, "api_version"):
			ev.APIVersion, _ = stringOf(v)
		case strings.EqualFold(key, "created"):
			ev.Created = time.Time{}
			var n int64
			if json.Unmarshal(v, &n) == nil && n > 0 {
				ev.Created = time.Unix(n, 0).UTC()
			}
		case strings.EqualFold(key, "livemode"):
			ev.Livemode = false
			_ = json.Unmarshal(v, &ev.Livemode)
		}
	}
	return ev
}

func stringOf(v json.RawMessage) (string, bool) {
	var s string
	err := json.Unmarshal(v, &s)
	return s, err == nil
}

func validEventID(s string) bool {
	return ValidID(s) && len(s) > len("evt_") && strings.HasPrefix(s, "evt_")
}

// ValidID reports whether s can be a Stripe object ID: 1 to 255 letters,
// digits and underscores. IDs become workflow IDs and search-attribute
// values, so nothing else is let through.
func ValidID(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// jsonReason shortens a decoding error to something safe to return: it
// names the problem, never echoes the payload.
func jsonReason(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ) && typ.Field == "":
		return "value has the wrong type"
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s has the wrong type", typ.Field)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	return "malformed JSON"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
