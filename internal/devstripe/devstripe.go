// Package devstripe is the Stripe of the local stack: it keeps the state
// that the events sent to the local webhook describe (a customer's cards
// and default, the intents that failed or succeeded) and answers the few
// calls dunning makes about those objects the way Stripe would, so that a
// retry after a card update really succeeds. Every other request, and every
// request about an object it has not seen, goes to stripe-mock, which
// checks it against Stripe's API specification.
//
// It stands in for Stripe test mode, where `stripe trigger` changes real
// objects and Stripe then sends the events: here the events come first and
// the state follows them.
package devstripe

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"dunning/workflows"
)

type card struct {
	ID       string
	Brand    string
	Last4    string
	ExpMonth int
	ExpYear  int
	// Declines is set for the card a failed payment was charged to.
	Declines bool
}

type customer struct {
	ID        string
	DefaultPM string
	Cards     []*card
}

type intent struct {
	ID       string
	Customer string
	Amount   int64
	Currency string
	Invoice  string
	Status   string
	Created  int64
}

type reply struct {
	status int
	body   []byte
}

// Server is the stateful dev Stripe. The zero value is not usable; use New.
type Server struct {
	mu        sync.Mutex
	customers map[string]*customer
	intents   map[string]*intent
	replies   map[string]reply // by Idempotency-Key
	upstream  http.Handler
	log       *slog.Logger
	now       func() time.Time
}

// New returns a Server that sends what it does not know to upstream
// (stripe-mock); nil upstream answers 404 instead.
func New(upstream *url.URL, log *slog.Logger) *Server {
	s := &Server{
		customers: map[string]*customer{},
		intents:   map[string]*intent{},
		replies:   map[string]reply{},
		log:       log,
		now:       time.Now,
	}
	if upstream != nil {
		s.upstream = httputil.NewSingleHostReverseProxy(upstream)
	}
	return s
}

func (s *Server) customer(id string) *customer {
	c := s.customers[id]
	if c == nil {
		c = &customer{ID: id}
		s.customers[id] = c
	}
	return c
}

func (c *customer) card(id string) *card {
	for _, k := range c.Cards {
		if k.ID == id {
			return k
		}
	}
	return nil
}

// Observe brings the state in line with a verified event.
func (s *Server) Observe(ev workflows.StripeEvent) {
	if ev.CustomerID == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.customer(ev.CustomerID)
	switch ev.Type {
	case workflows.EventPaymentFailed, workflows.EventPaymentSucceeded:
		pi := ev.PaymentIntent
		if pi == nil {
			return
		}
		in := s.intents[pi.ID]
		if in == nil {
			in = &intent{ID: pi.ID, Customer: ev.CustomerID, Amount: pi.Amount, Currency: pi.Currency,
				Invoice: pi.InvoiceID, Created: ev.Created.Unix()}
			s.intents[pi.ID] = in
		}
		if ev.Type == workflows.EventPaymentSucceeded {
			in.Status = "succeeded"
			return
		}
		if in.Status != "succeeded" {
			in.Status = "requires_payment_method"
		}
		// The card that was charged declines, and is what the customer
		// has on file until they change it.
		if pm := pi.PaymentMethodID; pm != "" {
			k := c.card(pm)
			if k == nil {
				k = &card{ID: pm, Brand: "visa", Last4: "0341", ExpMonth: 12, ExpYear: ev.Created.Year() + 2}
				c.Cards = append(c.Cards, k)
			}
			k.Declines = true
			if c.DefaultPM == "" {
				c.DefaultPM = pm
			}
		}
	case workflows.EventInvoicePaid:
		if inv := ev.Invoice; inv != nil {
			for _, in := range s.intents {
				if in.ID == inv.PaymentIntentID || (in.Invoice != "" && in.Invoice == inv.ID) {
					in.Status = "succeeded"
				}
			}
		}
	case workflows.EventPaymentMethodAttached, workflows.EventPaymentMethodAutoUpd,
		workflows.EventSourceCreated, workflows.EventSourceUpdated, workflows.EventSourceExpiring:
		k := c.card(ev.ObjectID)
		if k == nil {
			k = &card{ID: ev.ObjectID}
			c.Cards = append(c.Cards, k)
		}
		if ci := ev.Card; ci != nil {
			k.Brand, k.Last4, k.ExpMonth, k.ExpYear = ci.Brand, ci.Last4, ci.ExpMonth, ci.ExpYear
		}
		if ev.Type != workflows.EventSourceExpiring {
			// A new or renewed card works, and becomes the default.
			k.Declines = false
			c.DefaultPM = k.ID
		}
	case workflows.EventCustomerUpdated:
		if ev.DefaultPaymentMethodChanged {
			id := "pm_dev_" + ev.ID
			c.Cards = append(c.Cards, &card{ID: id, Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: ev.Created.Year() + 3})
			c.DefaultPM = id
		}
	case workflows.EventSourceDeleted:
		c.Cards = slices.DeleteFunc(c.Cards, func(k *card) bool { return k.ID == ev.ObjectID })
		if c.DefaultPM == ev.ObjectID {
			c.DefaultPM = ""
		}
	}
}

// ServeHTTP answers for the objects it knows and passes the rest on.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	s.mu.Lock()
	handled := s.serveKnown(w, r, parts)
	s.mu.Unlock()
	if handled {
		return
	}
	if s.upstream == nil {
		writeError(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "No such object: "+r.URL.Path, nil)
		return
	}
	s.upstream.ServeHTTP(w, r)
}

// serveKnown answers a request about a known object; false passes it on.
func (s *Server) serveKnown(w http.ResponseWriter, r *http.Request, parts []string) bool {
	if len(parts) < 3 || parts[0] != "v1" {
		return false
	}
	switch {
	case parts[1] == "customers" && len(parts) == 3 && r.Method == http.MethodGet:
		c := s.customers[parts[2]]
		if c == nil {
			return false
		}
		writeJSON(w, http.StatusOK, customerJSON(c))
	case parts[1] == "customers" && len(parts) == 4 && parts[3] == "payment_methods" && r.Method == http.MethodGet:
		c := s.customers[parts[2]]
		if c == nil {
			return false
		}
		data := []any{}
		for _, k := range c.Cards {
			data = append(data, paymentMethodJSON(c.ID, k))
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "has_more": false, "url": r.URL.Path})
	case parts[1] == "payment_intents" && len(parts) == 3 && r.Method == http.MethodGet:
		in := s.intents[parts[2]]
		if in == nil {
			return false
		}
		writeJSON(w, http.StatusOK, intentJSON(in, nil))
	case parts[1] == "payment_intents" && len(parts) == 4 && parts[3] == "confirm" && r.Method == http.MethodPost:
		in := s.intents[parts[2]]
		if in == nil {
			return false
		}
		s.confirm(w, r, in)
	default:
		return false
	}
	return true
}

// confirm charges the payment method asked for: a card that declines, or
// none, gives Stripe's 402 card_error; a working card succeeds. A repeated
// Idempotency-Key replays the first answer, as Stripe does for 24 hours.
func (s *Server) confirm(w http.ResponseWriter, r *http.Request, in *intent) {
	key := r.Header.Get("Idempotency-Key")
	if prev, ok := s.replies[key]; ok && key != "" {
		w.Header().Set("Idempotent-Replayed", "true")
		writeRaw(w, prev.status, prev.body)
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", "unreadable form", nil)
		return
	}
	var status int
	var body any
	c := s.customer(in.Customer)
	pm := r.PostForm.Get("payment_method")
	k := c.card(pm)
	switch {
	case in.Status == "succeeded":
		status, body = http.StatusBadRequest, errorJSON("invalid_request_error", "payment_intent_unexpected_state",
			"This PaymentIntent's status is succeeded and it cannot be confirmed.", intentJSON(in, nil))
	case k == nil || k.Declines:
		in.Status = "requires_payment_method"
		failure := map[string]any{"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
			"message": "Your card has insufficient funds."}
		status, body = http.StatusPaymentRequired, errorJSON("card_error", "card_declined", "Your card has insufficient funds.", intentJSON(in, failure))
		body.(map[string]any)["error"].(map[string]any)["decline_code"] = "insufficient_funds"
	default:
		in.Status = "succeeded"
		status, body = http.StatusOK, intentJSON(in, nil)
	}
	raw, _ := json.Marshal(body)
	if key != "" {
		s.replies[key] = reply{status: status, body: raw}
	}
	s.log.Info("dev stripe: confirm", "intent", in.ID, "payment_method", pm, "status", status, "idempotency_key", key)
	writeRaw(w, status, raw)
}

func customerJSON(c *customer) map[string]any {
	var def any
	if c.DefaultPM != "" {
		def = c.DefaultPM
	}
	return map[string]any{
		"id": c.ID, "object": "customer", "livemode": false, "metadata": map[string]any{},
		"default_source": nil, "delinquent": false, "balance": 0, "created": 1700000000,
		"invoice_settings": map[string]any{"default_payment_method": def, "custom_fields": nil, "footer": nil},
	}
}

func paymentMethodJSON(customer string, k *card) map[string]any {
	return map[string]any{
		"id": k.ID, "object": "payment_method", "type": "card", "customer": customer, "livemode": false,
		"created": 1700000000, "metadata": map[string]any{},
		"card": map[string]any{"brand": k.Brand, "last4": k.Last4, "exp_month": k.ExpMonth, "exp_year": k.ExpYear},
	}
}

func intentJSON(in *intent, lastError map[string]any) map[string]any {
	var inv, le any
	if in.Invoice != "" {
		inv = in.Invoice
	}
	if lastError != nil {
		le = lastError
	}
	received := int64(0)
	if in.Status == "succeeded" {
		received = in.Amount
	}
	return map[string]any{
		"id": in.ID, "object": "payment_intent", "amount": in.Amount, "amount_received": received,
		"currency": in.Currency, "customer": in.Customer, "invoice": inv, "status": in.Status,
		"created": in.Created, "livemode": false, "metadata": map[string]any{}, "last_payment_error": le,
		"payment_method_types": []string{"card"}, "capture_method": "automatic", "confirmation_method": "automatic",
	}
}

func errorJSON(typ, code, msg string, pi map[string]any) map[string]any {
	e := map[string]any{"type": typ, "code": code, "message": msg}
	if pi != nil {
		e["payment_intent"] = pi
	}
	return map[string]any{"error": e}
}

func writeError(w http.ResponseWriter, status int, typ, code, msg string, pi map[string]any) {
	writeJSON(w, status, errorJSON(typ, code, msg, pi))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		http.Error(w, fmt.Sprint(err), http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, raw)
}

func writeRaw(w http.ResponseWriter, status int, raw []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_dev")
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}
