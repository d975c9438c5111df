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
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"dunning/activities"
	"dunning/internal/stripefixture"
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
	Metadata map[string]string
	// LastError is last_payment_error as Stripe keeps it after a decline,
	// until the next attempt succeeds.
	LastError map[string]any
	// PaymentMethod is the intent's payment_method: the card charged once
	// it succeeded, the card the bank asks to authenticate while it
	// requires action, else none (Stripe clears it after a decline).
	PaymentMethod string
	// LatestCharge is latest_charge: the last charge made, failed or not.
	LatestCharge string
}

// charge is an attempt, readable at GET /v1/charges/{id}: declined, or
// succeeded when Decline is zero.
type charge struct {
	ID      string
	Intent  *intent
	Card    *card
	Decline activities.Decline
	Created int64
}

type invoice struct {
	ID     string
	Status string // open, paid, uncollectible, void
	// Customer, Amount and Currency are those of the intent that pays it;
	// Intent is that intent, and Attempts counts the attempts that failed
	// (attempt_count).
	Customer, Currency string
	Amount             int64
	Intent             string
	Attempts           int
	Created            int64
	// PaidOutOfBand is set when the invoice was paid outside Stripe.
	PaidOutOfBand bool
	// PeriodStart and PeriodEnd are the usage period it bills: the
	// calendar month before the intent was created, as a usage-billed
	// SaaS invoices at the start of a month for the month before.
	PeriodStart, PeriodEnd int64
}

// BilledMonth is the usage period an invoice issued at t bills: the
// calendar month before t's, in UTC.
func BilledMonth(t time.Time) (time.Time, time.Time) {
	t = t.UTC()
	end := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return end.AddDate(0, -1, 0), end
}

func newInvoice(id string, created int64) *invoice {
	start, end := BilledMonth(time.Unix(created, 0))
	return &invoice{ID: id, Status: "open", PeriodStart: start.Unix(), PeriodEnd: end.Unix(), Created: created}
}

// reply is the first answer to a request made with an Idempotency-Key,
// kept with the request it answered: Stripe replays it only to the same
// request (method, path and parameters), for 24 hours.
type reply struct {
	method, path string
	form         url.Values
	at           time.Time
	// done is false while the first request is still being answered.
	done   bool
	status int
	header http.Header
	body   []byte
}

// keyLifetime is how long Stripe keeps an idempotency key.
const keyLifetime = 24 * time.Hour

// Server is the stateful dev Stripe. The zero value is not usable; use New.
type Server struct {
	mu        sync.Mutex
	customers map[string]*customer
	intents   map[string]*intent
	invoices  map[string]*invoice
	sessions  int // billing portal sessions made
	charges   map[string]*charge
	// nextCharge numbers the charges, for their IDs.
	nextCharge int
	replies    map[string]*reply // by Idempotency-Key
	// declines are the decline profiles tests set (SetDecline), and
	// fingerprints the fingerprints they give (SetFingerprint), by card.
	declines     map[string]activities.Decline
	fingerprints map[string]string
	// detached are the cards removed from their customer: Stripe keeps
	// the object, and refuses it for any payment.
	detached map[string]bool
	upstream http.Handler
	log      *slog.Logger
	now      func() time.Time
}

// New returns a Server that sends what it does not know to upstream
// (stripe-mock); nil upstream answers 404 instead.
func New(upstream *url.URL, log *slog.Logger) *Server {
	s := &Server{
		customers: map[string]*customer{},
		intents:   map[string]*intent{},
		invoices:  map[string]*invoice{},
		charges:   map[string]*charge{},
		replies:   map[string]*reply{},

		declines:     map[string]activities.Decline{},
		fingerprints: map[string]string{},
		detached:     map[string]bool{},
		log:          log,
		now:          time.Now,
	}
	if log == nil {
		s.log = slog.New(slog.DiscardHandler)
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

// SetDecline makes a card decline every confirm as d says: code (default
// card_declined), decline_code, advice_code, network_advice_code,
// network_decline_code, the charge's outcome_reason, and the intent's
// status after it (default requires_payment_method). It holds, for a card
// not seen yet too, until an event renews or replaces the card or d is
// zero. Without it, the card a failed payment was charged to declines
// with insufficient_funds.
func (s *Server) SetDecline(cardID string, d activities.Decline) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d == (activities.Decline{}) {
		delete(s.declines, cardID)
		return
	}
	s.declines[cardID] = d
}

// Approve makes a card that declined work again, as a card does once
// the funds it lacked are there: the next confirm on it succeeds, with no
// event (Stripe sends none when a bank starts approving). False when no
// customer has the card.
func (s *Server) Approve(cardID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, k := s.knownCard(cardID)
	if k == nil {
		return false
	}
	k.Declines = false
	delete(s.declines, cardID)
	return true
}

// SetFingerprint gives a card a fingerprint, e.g. that of another card:
// two payment methods of one physical card share it.
func (s *Server) SetFingerprint(cardID, fingerprint string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fingerprints[cardID] = fingerprint
}

// Fingerprint is a card's fingerprint: the one SetFingerprint gave, else
// one derived from its ID, the same on every run.
func (s *Server) Fingerprint(cardID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fingerprint(cardID)
}

func (s *Server) fingerprint(cardID string) string {
	if fp := s.fingerprints[cardID]; fp != "" {
		return fp
	}
	// As the fixtures that describe the events give it.
	return stripefixture.Fingerprint(cardID)
}

// knownCard finds a card any customer has.
func (s *Server) knownCard(id string) (*customer, *card) {
	for _, c := range s.customers {
		if k := c.card(id); k != nil {
			return c, k
		}
	}
	return nil, nil
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
		if in.Invoice != "" && s.invoices[in.Invoice] == nil {
			s.invoices[in.Invoice] = newInvoice(in.Invoice, in.Created)
		}
		inv := s.invoices[in.Invoice]
		if inv != nil && inv.Intent == "" {
			inv.Customer, inv.Amount, inv.Currency, inv.Intent = in.Customer, in.Amount, in.Currency, in.ID
		}
		if ev.Type == workflows.EventPaymentSucceeded {
			s.settle(in, pi.PaymentMethodID)
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
		if in.Status == "requires_payment_method" {
			// Stripe keeps the decline as last_payment_error until the
			// next attempt, and counts the attempt on the invoice.
			d := pi.Decline
			if d.Code == "" && d.DeclineCode == "" {
				d.Code, d.DeclineCode = cmp.Or(pi.FailureCode, "card_declined"), pi.DeclineCode
			}
			// The card is left out of it: the dev Stripe's retries fall
			// back on it, where Stripe's own would find the card
			// detached since and the customer's default in its place.
			in.LastError = s.lastPaymentError(nil, d, d.Charge)
			if inv != nil && inv.Status == "open" {
				inv.Attempts++
			}
		}
	case workflows.EventInvoicePaid:
		inv := ev.Invoice
		if inv == nil {
			return
		}
		known := s.invoices[inv.ID]
		if known != nil && known.Status == "paid" {
			return // paid here (a confirm, or out of band): the event reports it
		}
		if known == nil {
			known = newInvoice(inv.ID, ev.Created.Unix())
			s.invoices[inv.ID] = known
		}
		known.Status = "paid"
		if inv.PaymentIntentID == "" {
			// Newer API versions name no intent on the invoice: it was
			// paid through its own.
			for _, in := range s.intents {
				if in.Invoice == inv.ID && in.Status != "canceled" {
					in.Status, in.LastError = "succeeded", nil
				}
			}
			return
		}
		// Paid through the intent the invoice names; Stripe cancels any
		// other of its intents still open.
		if payer := s.intents[inv.PaymentIntentID]; payer != nil {
			payer.Status, payer.LastError = "succeeded", nil
		}
		s.cancelOpen(inv.ID, inv.PaymentIntentID)
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
			delete(s.declines, k.ID)
			c.DefaultPM = k.ID
		}
	case workflows.EventCustomerUpdated:
		if ev.DefaultPaymentMethodChanged {
			id := "pm_dev_" + ev.ID
			c.Cards = append(c.Cards, &card{ID: id, Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: ev.Created.Year() + 3})
			c.DefaultPM = id
		}
	case workflows.EventSourceDeleted, workflows.EventPaymentMethodDetached:
		s.detach(c, ev.ObjectID)
	}
}

// detach removes a card from its customer, as Stripe does: the default
// it was is cleared, and it can no longer pay.
func (s *Server) detach(c *customer, id string) {
	if c.card(id) == nil {
		return
	}
	c.Cards = slices.DeleteFunc(c.Cards, func(k *card) bool { return k.ID == id })
	if c.DefaultPM == id {
		c.DefaultPM = ""
	}
	s.detached[id] = true
}

// Detach removes a card from the customer with no event, as the customer
// does in the portal a moment before the event is sent; false when the
// customer does not have it.
func (s *Server) Detach(customerID, cardID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.customers[customerID]
	if c == nil || c.card(cardID) == nil {
		return false
	}
	s.detach(c, cardID)
	return true
}

// settle marks an intent succeeded with the payment method charged, and
// its invoice paid: Stripe cancels any other intent of the invoice still
// open.
func (s *Server) settle(in *intent, pm string) {
	in.Status, in.LastError = "succeeded", nil
	if pm != "" {
		in.PaymentMethod = pm
	}
	if inv := s.invoices[in.Invoice]; inv != nil {
		inv.Status = "paid"
		s.cancelOpen(inv.ID, in.ID)
	}
}

// cancelOpen cancels the intents of a paid invoice that are still open,
// but for the one that paid it: nothing can be paid through them any
// more. One in flight (processing) is left to its outcome.
func (s *Server) cancelOpen(invoiceID, payer string) {
	for _, in := range s.intents {
		if in.Invoice == invoiceID && in.ID != payer && slices.Contains(confirmable, in.Status) {
			in.Status, in.PaymentMethod = "canceled", ""
		}
	}
}

// SetIntentStatus changes a known intent's status, as a payment made
// outside dunning would (a bank debit started from the hosted invoice page
// is processing for days); false when the intent is not known.
func (s *Server) SetIntentStatus(id, status string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.intents[id]
	if in == nil {
		return false
	}
	in.Status = status
	return true
}

// Process starts a payment of a known intent that settles later, as the
// customer does who pays the open invoice by bank debit (ACH, SEPA) from
// its hosted page: Stripe confirms the intent, which goes processing and
// stays so for days, with last_payment_error cleared (Stripe clears it
// when the intent is updated) and its invoice still open. Stripe then
// sends payment_intent.processing, and in the end
// payment_intent.succeeded or payment_intent.payment_failed, which
// Observe applies as ever. False when the intent is not known or not in a
// status Stripe confirms from (succeeded, canceled, already processing).
func (s *Server) Process(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.intents[id]
	if in == nil || !slices.Contains(confirmable, in.Status) {
		return false
	}
	in.Status, in.LastError = "processing", nil
	return true
}

// ServeHTTP answers for the objects it knows and passes the rest on. A
// POST with an Idempotency-Key goes through Stripe's idempotency layer
// first (idempotent).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.Header.Get("Idempotency-Key") != "" {
		s.idempotent(w, r)
		return
	}
	_ = s.serve(w, r)
}

// serve answers a request, itself or through the upstream; own says which.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) (own bool) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	s.mu.Lock()
	handled := s.serveKnown(w, r, parts)
	s.mu.Unlock()
	if handled {
		return true
	}
	if s.upstream == nil {
		writeError(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "No such object: "+r.URL.Path, nil)
		return true
	}
	s.upstream.ServeHTTP(w, r)
	return false
}

// idempotent answers a POST made with an Idempotency-Key as Stripe does:
// the first request with a key is answered and its answer kept, whether it
// succeeded or failed; the same request again within 24 hours gets that
// answer replayed (Idempotent-Replayed: true) and changes nothing; the key
// with another method, path or parameters is refused with 400
// idempotency_error, as is a second request while the first is still
// being answered (409). Parameters are compared as a form, so their order
// does not matter. A request that stripe-mock rejects as invalid is not
// kept, as Stripe keeps nothing for a request that fails validation.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", "unreadable body", nil)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", "unreadable form", nil)
		return
	}
	for k, v := range r.URL.Query() {
		form[k] = append(form[k], v...)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))

	s.mu.Lock()
	now := s.now()
	prev := s.replies[key]
	if prev != nil && prev.done && now.Sub(prev.at) >= keyLifetime {
		prev = nil // pruned: the key makes a new request
	}
	switch {
	case prev == nil:
		s.replies[key] = &reply{method: r.Method, path: r.URL.Path, form: form, at: now}
	case prev.method != r.Method || prev.path != r.URL.Path:
		s.mu.Unlock()
		s.log.Warn("dev stripe: idempotency key reused for another endpoint", "idempotency_key", key,
			"first", prev.method+" "+prev.path, "now", r.Method+" "+r.URL.Path)
		writeError(w, http.StatusBadRequest, "idempotency_error", "",
			fmt.Sprintf("Keys for idempotent requests can only be used for the same endpoint they were first used for ('%s %s' vs '%s %s'). Try using a key other than '%s' if you meant to execute a different request.",
				prev.method, prev.path, r.Method, r.URL.Path, key), nil)
		return
	case !sameForm(prev.form, form):
		s.mu.Unlock()
		s.log.Warn("dev stripe: idempotency key reused with other parameters", "idempotency_key", key,
			"path", r.URL.Path, "first", prev.form.Encode(), "now", form.Encode())
		writeError(w, http.StatusBadRequest, "idempotency_error", "",
			"Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '"+key+"' if you meant to execute a different request.", nil)
		return
	case !prev.done:
		s.mu.Unlock()
		writeError(w, http.StatusConflict, "idempotency_error", "",
			"There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): "+key+". Please try again later.", nil)
		return
	default:
		s.mu.Unlock()
		maps.Copy(w.Header(), prev.header)
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(prev.status)
		_, _ = w.Write(prev.body)
		return
	}
	s.mu.Unlock()

	rec := httptest.NewRecorder()
	own := s.serve(rec, r)
	res := rec.Result()
	s.mu.Lock()
	if (!own && res.StatusCode >= 400 && res.StatusCode < 500) || (own && invalidParam(res.StatusCode, rec.Body.Bytes())) {
		// stripe-mock's 4xx, and a parameter the dev Stripe refuses, are
		// validation failures: nothing is kept.
		delete(s.replies, key)
	} else {
		*s.replies[key] = reply{method: r.Method, path: r.URL.Path, form: form, at: now, done: true,
			status: res.StatusCode, header: res.Header.Clone(), body: rec.Body.Bytes()}
	}
	s.mu.Unlock()
	maps.Copy(w.Header(), res.Header)
	w.WriteHeader(res.StatusCode)
	_, _ = w.Write(rec.Body.Bytes())
}

// invalidParam reports whether an answer refuses a parameter (a 400 whose
// error names it): a request that fails validation, for which Stripe
// keeps nothing under its key.
func invalidParam(status int, body []byte) bool {
	if status != http.StatusBadRequest {
		return false
	}
	var e struct {
		Error struct {
			Param string `json:"param"`
		} `json:"error"`
	}
	return json.Unmarshal(body, &e) == nil && e.Error.Param != ""
}

// sameForm says whether two requests carry the same parameters, in
// whatever order they were sent.
func sameForm(a, b url.Values) bool {
	return maps.EqualFunc(a, b, slices.Equal)
}

// serveKnown answers a request about a known object; false passes it on.
func (s *Server) serveKnown(w http.ResponseWriter, r *http.Request, parts []string) bool {
	if len(parts) < 2 || parts[0] != "v1" {
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
			data = append(data, s.paymentMethodJSON(c.ID, k))
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "has_more": false, "url": r.URL.Path})
	case parts[1] == "subscriptions" && len(parts) == 2 && r.Method == http.MethodGet:
		// The dev customers pay by invoice, outside any subscription.
		if s.customers[r.URL.Query().Get("customer")] == nil {
			return false
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []any{}, "has_more": false, "url": r.URL.Path})
	case parts[1] == "customers" && len(parts) == 5 && parts[3] == "sources" && r.Method == http.MethodGet:
		c := s.customers[parts[2]]
		if c == nil || c.card(parts[4]) == nil {
			return false
		}
		writeJSON(w, http.StatusOK, s.sourceJSON(c.ID, c.card(parts[4])))
	case parts[1] == "payment_methods" && len(parts) == 3 && r.Method == http.MethodGet:
		c, k := s.knownCard(parts[2])
		if k == nil {
			return false
		}
		writeJSON(w, http.StatusOK, s.paymentMethodJSON(c.ID, k))
	case parts[1] == "charges" && len(parts) == 3 && r.Method == http.MethodGet:
		ch := s.charges[parts[2]]
		if ch == nil {
			return false
		}
		writeJSON(w, http.StatusOK, s.chargeJSON(ch))
	case parts[1] == "payment_intents" && len(parts) == 2 && r.Method == http.MethodGet:
		cus := r.URL.Query().Get("customer")
		if s.customers[cus] == nil {
			return false
		}
		var ins []*intent
		for _, in := range s.intents {
			if in.Customer == cus {
				ins = append(ins, in)
			}
		}
		// Newest first, as Stripe lists.
		slices.SortFunc(ins, func(a, b *intent) int {
			return cmp.Or(cmp.Compare(b.Created, a.Created), strings.Compare(b.ID, a.ID))
		})
		data := []any{}
		for _, in := range ins {
			data = append(data, s.intentJSON(in, nil))
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "has_more": false, "url": r.URL.Path})
	case parts[1] == "invoices" && len(parts) == 2 && r.Method == http.MethodGet:
		q := r.URL.Query()
		cus, status := q.Get("customer"), q.Get("status")
		if s.customers[cus] == nil {
			return false
		}
		if status != "" && !slices.Contains([]string{"draft", "open", "paid", "uncollectible", "void"}, status) {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid_string",
				"Invalid status: must be one of draft, open, paid, uncollectible, or void", nil)
			return true
		}
		var invs []*invoice
		for _, inv := range s.invoices {
			if inv.Customer == cus && (status == "" || inv.Status == status) {
				invs = append(invs, inv)
			}
		}
		slices.SortFunc(invs, func(a, b *invoice) int {
			return cmp.Or(cmp.Compare(b.Created, a.Created), strings.Compare(b.ID, a.ID))
		})
		data := []any{}
		for _, inv := range invs {
			data = append(data, invoiceJSON(inv))
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "has_more": false, "url": r.URL.Path})
	case parts[1] == "payment_intents" && len(parts) == 3 && r.Method == http.MethodGet:
		in := s.intents[parts[2]]
		if in == nil {
			return false
		}
		writeJSON(w, http.StatusOK, s.intentJSON(in, expansions(r.URL.Query())))
	case parts[1] == "payment_intents" && len(parts) == 3 && r.Method == http.MethodPost:
		in := s.intents[parts[2]]
		if in == nil {
			return false
		}
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", "unreadable form", nil)
			return true
		}
		for k, v := range r.PostForm {
			name, ok := strings.CutPrefix(k, "metadata[")
			if !ok || len(v) == 0 {
				continue
			}
			name = strings.TrimSuffix(name, "]")
			if v[0] == "" {
				// Stripe unsets a key posted with an empty value.
				delete(in.Metadata, name)
				continue
			}
			if in.Metadata == nil {
				in.Metadata = map[string]string{}
			}
			in.Metadata[name] = v[0]
		}
		writeJSON(w, http.StatusOK, s.intentJSON(in, nil))
	case parts[1] == "payment_intents" && len(parts) == 4 && parts[3] == "cancel" && r.Method == http.MethodPost:
		in := s.intents[parts[2]]
		if in == nil {
			return false
		}
		// Stripe refuses a settled intent, one already canceled, and one an
		// invoice created (void the invoice instead).
		if in.Status == "succeeded" || in.Status == "canceled" || in.Invoice != "" {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "payment_intent_unexpected_state",
				"You cannot cancel this PaymentIntent because it has a status of "+in.Status+" or belongs to an invoice.", s.intentJSON(in, nil))
			return true
		}
		in.Status = "canceled"
		writeJSON(w, http.StatusOK, s.intentJSON(in, nil))
	case parts[1] == "billing_portal" && len(parts) == 3 && parts[2] == "sessions" && r.Method == http.MethodPost:
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", "unreadable form", nil)
			return true
		}
		cus := r.PostForm.Get("customer")
		if s.customers[cus] == nil {
			return false // stripe-mock answers for customers not seen here
		}
		s.sessions++
		id := fmt.Sprintf("bps_dev%08d", s.sessions)
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "object": "billing_portal.session", "customer": cus, "livemode": false,
			"created": s.now().Unix(), "return_url": r.PostForm.Get("return_url"), "locale": nil,
			"url":  "https://billing.stripe.com/p/session/test_" + id,
			"flow": map[string]any{"type": r.PostForm.Get("flow_data[type]")},
		})
	case parts[1] == "invoices" && len(parts) == 4 && parts[3] == "mark_uncollectible" && r.Method == http.MethodPost:
		inv := s.invoices[parts[2]]
		if inv == nil {
			return false
		}
		if inv.Status != "open" && inv.Status != "uncollectible" {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invoice_not_open",
				"You can only mark an open invoice uncollectible; this one is "+inv.Status+".", nil)
			return true
		}
		inv.Status = "uncollectible"
		writeJSON(w, http.StatusOK, invoiceJSON(inv))
	case parts[1] == "invoices" && len(parts) == 4 && parts[3] == "pay" && r.Method == http.MethodPost:
		inv := s.invoices[parts[2]]
		if inv == nil {
			return false
		}
		s.pay(w, r, inv)
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

// confirm charges the payment method asked for: a card that declines
// gives Stripe's 402 card_error; a working card succeeds. A payment method
// the intent's customer does not have (never existed, detached, another
// customer's) is refused with 400 invalid_request_error on payment_method,
// as is none. An intent in any status but the three Stripe confirms is
// refused with 400 payment_intent_unexpected_state, the intent in the
// error. Nothing is charged on a refusal. (A repeated Idempotency-Key
// never gets here: idempotent answers it.)
func (s *Server) confirm(w http.ResponseWriter, r *http.Request, in *intent) {
	key := r.Header.Get("Idempotency-Key")
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", "unreadable form", nil)
		return
	}
	pm := r.PostForm.Get("payment_method")
	status, body := s.charge(in, pm)
	raw, _ := json.Marshal(body)
	s.log.Info("dev stripe: confirm", "intent", in.ID, "payment_method", pm, "status", status, "idempotency_key", key)
	writeRaw(w, status, raw)
}

// charge confirms an intent with a payment method and returns Stripe's
// answer: the intent, or the error.
func (s *Server) charge(in *intent, pm string) (int, any) {
	c := s.customer(in.Customer)
	k := c.card(pm)
	profile, declines := s.declines[pm]
	switch {
	case in.Status == "succeeded":
		return http.StatusBadRequest, errorJSON("invalid_request_error", "payment_intent_unexpected_state",
			"You cannot confirm this PaymentIntent because it has already succeeded after being previously confirmed.", s.intentJSON(in, nil))
	case !slices.Contains(confirmable, in.Status):
		return http.StatusBadRequest, errorJSON("invalid_request_error", "payment_intent_unexpected_state",
			"You cannot confirm this PaymentIntent because it has a status of "+in.Status+". Only a PaymentIntent with one of the following statuses may be confirmed: "+strings.Join(confirmable, ", ")+".",
			s.intentJSON(in, nil))
	case k == nil:
		return http.StatusBadRequest, s.refusedMethod(in, pm)
	case k.Declines || declines:
		d := declineOrDefault(profile, k)
		in.Status = "requires_payment_method"
		if d.IntentStatus != "" {
			in.Status = d.IntentStatus
		}
		// The card the bank asks to authenticate stays the intent's;
		// after any other decline Stripe clears it.
		in.PaymentMethod = ""
		if in.Status == "requires_action" {
			in.PaymentMethod = k.ID
		}
		ch := s.newCharge(in, k, d)
		in.LastError = s.lastPaymentError(k, d, ch.ID)
		if inv := s.invoices[in.Invoice]; inv != nil && inv.Status == "open" {
			inv.Attempts++
		}
		e := maps.Clone(in.LastError)
		e["payment_intent"] = s.intentJSON(in, nil)
		e["request_log_url"] = "https://dashboard.stripe.com/test/logs/req_dev"
		return http.StatusPaymentRequired, map[string]any{"error": e}
	default:
		s.newCharge(in, k, activities.Decline{})
		s.settle(in, k.ID)
		return http.StatusOK, s.intentJSON(in, nil)
	}
}

// newCharge records a charge of the intent on the card (declined as d
// says, or succeeded when d is zero) as its latest.
func (s *Server) newCharge(in *intent, k *card, d activities.Decline) *charge {
	s.nextCharge++
	ch := &charge{ID: fmt.Sprintf("ch_dev_%s_%d", in.ID, s.nextCharge), Intent: in, Card: k, Decline: d, Created: s.now().Unix()}
	s.charges[ch.ID] = ch
	in.LatestCharge = ch.ID
	return ch
}

// refusedMethod is Stripe's 400 for a confirm whose payment method the
// intent's customer does not have: resource_missing for one that never
// existed; for one detached from its customer, or attached to another,
// an invalid_request_error on payment_method all the same.
func (s *Server) refusedMethod(in *intent, pm string) map[string]any {
	if pm == "" {
		return errorJSON("invalid_request_error", "payment_intent_unexpected_state",
			"You cannot confirm this PaymentIntent because it's missing a payment method. To confirm the PaymentIntent with "+in.Customer+", specify a payment method attached to this customer along with the customer ID.", s.intentJSON(in, nil))
	}
	var e map[string]any
	other, _ := s.knownCard(pm)
	switch {
	case s.detached[pm]:
		e = errorJSON("invalid_request_error", "",
			"The provided PaymentMethod was previously used with a PaymentIntent without Customer attachment, shared with a connected account without Customer attachment, or was detached from a Customer. It may not be used again. To use a PaymentMethod multiple times, you must attach it to a Customer first.", nil)
	case other != nil:
		e = errorJSON("invalid_request_error", "",
			"The provided PaymentMethod belongs to a different Customer than the one on this PaymentIntent. Attach it to "+in.Customer+" first.", nil)
	default:
		e = errorJSON("invalid_request_error", "resource_missing", "No such PaymentMethod: '"+pm+"'", nil)
		e["error"].(map[string]any)["doc_url"] = "https://stripe.com/docs/error-codes/resource-missing"
	}
	e["error"].(map[string]any)["param"] = "payment_method"
	return e
}

// pay answers POST /v1/invoices/{id}/pay. Out of band
// (paid_out_of_band=true) the invoice is marked paid and Stripe cancels
// its intents still open: no money moved through them, so none succeeds.
// Otherwise the invoice's open intent is confirmed with payment_method,
// else the customer's default, and the invoice is paid when it succeeds.
// An invoice that is not open is refused, and nothing changes.
func (s *Server) pay(w http.ResponseWriter, r *http.Request, inv *invoice) {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", "unreadable form", nil)
		return
	}
	if inv.Status != "open" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invoice_not_open",
			"Invoice is already "+inv.Status+"; only an open invoice can be paid.", nil)
		return
	}
	if r.PostForm.Get("paid_out_of_band") == "true" {
		inv.Status, inv.PaidOutOfBand = "paid", true
		s.cancelOpen(inv.ID, "")
		s.log.Info("dev stripe: invoice paid out of band", "invoice", inv.ID)
		writeJSON(w, http.StatusOK, invoiceJSON(inv))
		return
	}
	var open *intent
	for _, id := range slices.Sorted(maps.Keys(s.intents)) {
		if in := s.intents[id]; in.Invoice == inv.ID && slices.Contains(confirmable, in.Status) {
			open = in
			break
		}
	}
	if open == nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "",
			"This invoice has no payment that can be attempted now.", nil)
		return
	}
	pm := r.PostForm.Get("payment_method")
	if pm == "" {
		pm = s.customer(open.Customer).DefaultPM
	}
	status, body := s.charge(open, pm)
	if status == http.StatusOK {
		body = invoiceJSON(inv)
	}
	raw, _ := json.Marshal(body)
	s.log.Info("dev stripe: pay invoice", "invoice", inv.ID, "intent", open.ID, "payment_method", pm, "status", status)
	writeRaw(w, status, raw)
}

// confirmable are the statuses in which Stripe confirms an intent.
var confirmable = []string{"requires_payment_method", "requires_confirmation", "requires_action"}

func customerJSON(c *customer) map[string]any {
	var def any
	if c.DefaultPM != "" {
		def = c.DefaultPM
	}
	return map[string]any{
		"id": c.ID, "object": "customer", "livemode": false, "metadata": map[string]any{},
		"default_source": nil, "delinquent": false, "balance": 0, "created": 1700000000,
		"invoice_settings": map[string]any{"default_payment_method": def, "custom_fields": nil, "footer": nil},
		// A customer as Stripe keeps one: dunning must read none of it
		// into a workflow's history.
		"email": stripefixture.PersonalEmail, "name": stripefixture.PersonalName, "phone": stripefixture.PersonalPhone,
		"address": stripefixture.PersonalAddress(), "shipping": stripefixture.PersonalShipping(),
	}
}

func (s *Server) paymentMethodJSON(customer string, k *card) map[string]any {
	return map[string]any{
		"id": k.ID, "object": "payment_method", "type": "card", "customer": customer, "livemode": false,
		"created": 1700000000, "metadata": map[string]any{}, "allow_redisplay": "unspecified",
		"billing_details": stripefixture.PersonalBillingDetails(),
		"card": map[string]any{"brand": strings.ToLower(k.Brand), "last4": k.Last4, "exp_month": k.ExpMonth, "exp_year": k.ExpYear,
			"fingerprint": s.fingerprint(k.ID), "funding": "credit", "country": "US", "generated_from": nil, "wallet": nil,
			"networks": map[string]any{"available": []string{strings.ToLower(k.Brand)}, "preferred": nil}},
	}
}

// sourceJSON renders a card as GET /v1/customers/{id}/sources/{card}
// returns a legacy Card.
func (s *Server) sourceJSON(customer string, k *card) map[string]any {
	return map[string]any{
		"id": k.ID, "object": "card", "brand": k.Brand, "last4": k.Last4, "exp_month": k.ExpMonth, "exp_year": k.ExpYear,
		"fingerprint": s.fingerprint(k.ID), "funding": "credit", "country": "US", "customer": customer,
		"cvc_check": nil, "address_zip_check": "pass", "metadata": map[string]any{},
		"name": stripefixture.PersonalName, "address_line1": stripefixture.PersonalStreet, "address_line2": "Apt 4",
		"address_city": stripefixture.PersonalCity, "address_zip": stripefixture.PersonalZip, "address_state": "CA", "address_country": "US",
	}
}

func isMastercard(brand string) bool {
	return strings.EqualFold(strings.ReplaceAll(brand, " ", ""), "mastercard")
}

// declineOrDefault completes a decline as Stripe reports it: the default
// is an issuer's insufficient_funds, with Stripe's advice to try again
// later, the network's own code, and on a Mastercard its Merchant Advice
// Code 02 (cannot approve now, try again later).
func declineOrDefault(d activities.Decline, k *card) activities.Decline {
	if d.Code == "" && d.DeclineCode == "" {
		d.Code, d.DeclineCode, d.AdviceCode, d.NetworkDeclineCode = "card_declined", "insufficient_funds", "try_again_later", "51"
		if isMastercard(k.Brand) {
			d.NetworkAdviceCode = "02"
		}
	}
	if d.Code == "" {
		d.Code = "card_declined"
	}
	return d
}

// declineMessages are Stripe's messages for the codes that have their own.
var declineMessages = map[string]string{
	"insufficient_funds":      "Your card has insufficient funds.",
	"expired_card":            "Your card has expired.",
	"incorrect_cvc":           "Your card's security code is incorrect.",
	"incorrect_number":        "Your card number is incorrect.",
	"authentication_required": "Your card was declined. This transaction requires authentication.",
	"processing_error":        "An error occurred while processing your card. Try again in a little bit.",
}

// lastPaymentError renders a decline as Stripe's last_payment_error:
// fields of the newer API versions (advice codes) where the decline has
// them, the card that failed as a payment method object.
func (s *Server) lastPaymentError(k *card, d activities.Decline, chargeID string) map[string]any {
	message := declineMessages[d.DeclineCode]
	if message == "" {
		message = declineMessages[d.Code]
	}
	if message == "" {
		message = "Your card was declined."
	}
	e := map[string]any{
		"type": "card_error", "code": d.Code, "message": message, "payment_method_type": "card",
		"doc_url": "https://stripe.com/docs/error-codes/" + strings.ReplaceAll(d.Code, "_", "-"),
	}
	for field, v := range map[string]string{"decline_code": d.DeclineCode, "advice_code": d.AdviceCode,
		"network_advice_code": d.NetworkAdviceCode, "network_decline_code": d.NetworkDeclineCode, "charge": chargeID} {
		if v != "" {
			e[field] = v
		}
	}
	if k != nil {
		e["payment_method"] = s.paymentMethodJSON("", k)
	}
	return e
}

// chargeJSON renders a charge: one that succeeded, or one declined,
// blocked by Stripe for the outcome reasons Stripe blocks for, else
// declined by the issuer.
func (s *Server) chargeJSON(ch *charge) map[string]any {
	d := ch.Decline
	outcome := map[string]any{"type": "issuer_declined", "network_status": "declined_by_network",
		"reason": d.DeclineCode, "risk_level": "normal", "risk_score": 20, "rule": nil,
		"seller_message": "The bank returned the decline code `" + d.DeclineCode + "`.",
		"advice_code":    nilIfEmpty(d.AdviceCode), "network_advice_code": nilIfEmpty(d.NetworkAdviceCode),
		"network_decline_code": nilIfEmpty(d.NetworkDeclineCode)}
	switch d.OutcomeReason {
	case "previously_declined_do_not_retry", "highest_risk_level":
		outcome["type"], outcome["network_status"], outcome["reason"] = "blocked", "not_sent_to_network", d.OutcomeReason
		outcome["seller_message"] = "Stripe blocked this payment."
		if d.OutcomeReason == "highest_risk_level" {
			outcome["risk_level"], outcome["risk_score"] = "highest", 95
		}
	case "":
	default:
		outcome["reason"] = d.OutcomeReason
	}
	in, k := ch.Intent, ch.Card
	ok := d == (activities.Decline{})
	status, captured, failureCode, failureMessage := "failed", int64(0), any(d.Code), s.lastPaymentError(k, d, "")["message"]
	if ok {
		outcome = map[string]any{"type": "authorized", "network_status": "approved_by_network", "reason": nil,
			"risk_level": "normal", "risk_score": 20, "rule": nil, "seller_message": "Payment complete.",
			"advice_code": nil, "network_advice_code": nil, "network_decline_code": nil}
		status, captured, failureCode, failureMessage = "succeeded", in.Amount, nil, nil
	}
	return map[string]any{
		"id": ch.ID, "object": "charge", "amount": in.Amount, "amount_captured": captured, "amount_refunded": 0,
		"currency": in.Currency, "customer": in.Customer, "payment_intent": in.ID, "payment_method": k.ID,
		"invoice": nilIfEmpty(in.Invoice), "created": ch.Created, "livemode": false, "paid": ok, "captured": ok,
		"refunded": false, "status": status, "failure_code": failureCode, "failure_message": failureMessage,
		"outcome": outcome, "metadata": map[string]any{},
		"billing_details": stripefixture.PersonalBillingDetails(), "receipt_email": stripefixture.PersonalEmail,
		"payment_method_details": map[string]any{"type": "card", "card": map[string]any{
			"brand": strings.ToLower(k.Brand), "last4": k.Last4, "exp_month": k.ExpMonth, "exp_year": k.ExpYear,
			"fingerprint": s.fingerprint(k.ID), "network": strings.ToLower(k.Brand), "funding": "credit", "country": "US"}},
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// expansions returns the fields a request asks to expand, in either form
// Stripe accepts: expand[]=invoice, or expand[0]=invoice as stripe-go
// sends it.
func expansions(q url.Values) []string {
	var out []string
	for k, v := range q {
		if strings.HasPrefix(k, "expand[") && strings.HasSuffix(k, "]") {
			out = append(out, v...)
		}
	}
	return out
}

// intentJSON renders an intent; expand may ask for its invoice as an
// object, as Stripe's expand[]=invoice does.
func (s *Server) intentJSON(in *intent, expand []string) map[string]any {
	var inv, le any
	if in.Invoice != "" {
		inv = in.Invoice
		if i := s.invoices[in.Invoice]; i != nil && slices.Contains(expand, "invoice") {
			inv = invoiceJSON(i)
		}
	}
	if in.LastError != nil {
		le = in.LastError
	}
	received := int64(0)
	if in.Status == "succeeded" {
		received = in.Amount
	}
	return map[string]any{
		"id": in.ID, "object": "payment_intent", "amount": in.Amount, "amount_received": received,
		"currency": in.Currency, "customer": in.Customer, "invoice": inv, "status": in.Status,
		"created": in.Created, "livemode": false, "metadata": metadataJSON(in.Metadata), "last_payment_error": le,
		"payment_method": nilIfEmpty(in.PaymentMethod), "latest_charge": nilIfEmpty(in.LatestCharge),
		"payment_method_types": []string{"card"}, "capture_method": "automatic", "confirmation_method": "automatic",
		"receipt_email": stripefixture.PersonalEmail, "shipping": stripefixture.PersonalShipping(),
	}
}

func metadataJSON(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func invoiceJSON(inv *invoice) map[string]any {
	period := map[string]any{"start": inv.PeriodStart, "end": inv.PeriodEnd}
	remaining := inv.Amount
	if inv.Status != "open" {
		remaining = 0
	}
	paid := int64(0)
	if inv.Status == "paid" {
		paid = inv.Amount
	}
	return map[string]any{
		"id": inv.ID, "object": "invoice", "status": inv.Status, "livemode": false, "paid": inv.Status == "paid",
		"customer": nilIfEmpty(inv.Customer), "currency": inv.Currency, "created": inv.Created,
		"amount_due": inv.Amount, "amount_paid": paid, "amount_remaining": remaining,
		"attempted": inv.Attempts > 0, "attempt_count": inv.Attempts, "collection_method": "charge_automatically",
		"payment_intent":     nilIfEmpty(inv.Intent),
		"paid_out_of_band":   inv.PaidOutOfBand,
		"hosted_invoice_url": "https://invoice.stripe.com/i/dev_" + inv.ID, "metadata": map[string]any{},
		"customer_email": stripefixture.PersonalEmail, "customer_name": stripefixture.PersonalName,
		"customer_phone": stripefixture.PersonalPhone, "customer_address": stripefixture.PersonalAddress(),
		"customer_shipping": stripefixture.PersonalShipping(),
		// Stripe's own period_start and period_end of a one-off invoice
		// are its creation time; the lines carry the usage period.
		"period_start": inv.PeriodEnd, "period_end": inv.PeriodEnd,
		"lines": map[string]any{"object": "list", "has_more": false, "url": "/v1/invoices/" + inv.ID + "/lines",
			"data": []any{map[string]any{"id": "il_" + inv.ID, "object": "line_item", "period": period, "amount": 0}}},
	}
}

func errorJSON(typ, code, msg string, pi map[string]any) map[string]any {
	e := map[string]any{"type": typ, "message": msg}
	if code != "" {
		e["code"] = code
	}
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
