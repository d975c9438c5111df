package amberflo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"dunning/internal/httpx"
)

const testKey = "af-test-key-5f2d9c"

// fake is an Amberflo that checks requests the way the documented API
// would: the X-API-KEY header, methods, paths, exact query parameters, JSON
// bodies, whole-record PUTs and forward-only stages.
type fake struct {
	t         *testing.T
	productID string

	mu        sync.Mutex
	customers map[string][]byte // raw records by customer ID
	invoices  map[string]string // raw latest invoice by customer ID; absent is 404
	all       map[string]string // raw list of all invoices by customer ID; absent is 404
	log       []string          // "METHOD escaped-path" of every request
	// fail, when set, may answer a request itself and return true.
	fail func(w http.ResponseWriter, r *http.Request) bool
}

func newFake(t *testing.T) *fake {
	return &fake{t: t, productID: "1", customers: map[string][]byte{}, invoices: map[string]string{}, all: map[string]string{}}
}

// client starts the fake and returns a client for it.
func (f *fake) client(cfg Config) *Client {
	f.t.Helper()
	srv := httptest.NewServer(f)
	f.t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL
	if cfg.APIKey == "" {
		cfg.APIKey = testKey
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	c, err := New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fake) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

func (f *fake) record(id string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return decodeNumbers(f.t, f.customers[id])
}

var stageOrder = map[string]int{"ONBOARDING": 0, "TRIAL": 1, "TRAIL": 1, "ACTIVE": 2, "OFFBOARDED": 3}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := f.t
	path := r.URL.EscapedPath()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, r.Method+" "+path)

	if got := r.Header.Get("X-API-KEY"); got != testKey {
		t.Errorf("%s %s: X-API-KEY = %q, want the configured key", r.Method, path, got)
		http.Error(w, `{"message":"Unauthorized"}`, http.StatusUnauthorized)
		return
	}
	if f.fail != nil && f.fail(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/json")

	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/customers/"):
		if r.URL.RawQuery != "" {
			t.Errorf("GET %s: unexpected query %q", path, r.URL.RawQuery)
		}
		id, err := url.PathUnescape(strings.TrimPrefix(path, "/customers/"))
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
		}
		rec, ok := f.customers[id]
		if !ok {
			http.Error(w, `{"message":"customer not found"}`, http.StatusNotFound)
			return
		}
		w.Write(rec)

	case r.Method == http.MethodPut && path == "/customers":
		body := f.jsonBody(r)
		var rec map[string]json.RawMessage
		var id string
		if err := json.Unmarshal(body, &rec); err != nil {
			t.Errorf("PUT /customers: body is not a JSON object: %v", err)
		} else if err := json.Unmarshal(rec["customerId"], &id); err != nil || id == "" {
			t.Errorf("PUT /customers: body has no customerId: %s", body)
		}
		if _, ok := f.customers[id]; !ok {
			http.Error(w, `{"message":"customer not found"}`, http.StatusNotFound)
			return
		}
		f.customers[id] = body // PUT replaces the whole record
		w.Write(body)

	case r.Method == http.MethodPut && path == "/customers/stage":
		// Amberflo documents that the stage "can only be updated to a
		// future stage and cannot be updated to a previous stage", and a
		// 200 answered with the whole customer record; it documents no
		// answer for a move that is not forward. The fake refuses one the
		// way Amberflo refuses other invalid requests, 400 with a message,
		// since that is the answer a client must survive (a silent 200
		// would be the easy one): a move backward, and a move to the stage
		// the customer is already at, which is not a future stage either.
		// Such a request is not the test's fault (another writer may move
		// the stage between the client's read and its write); the tests
		// count requests to catch a client that sends one needlessly.
		var req map[string]string
		if err := json.Unmarshal(f.jsonBody(r), &req); err != nil || len(req) != 2 || req["customerId"] == "" || req["lifecycleStage"] == "" {
			t.Errorf("PUT /customers/stage: body %v (%v), want exactly customerId and lifecycleStage", req, err)
			http.Error(w, `{"message":"invalid request"}`, http.StatusBadRequest)
			return
		}
		id := req["customerId"]
		if _, ok := f.customers[id]; !ok {
			http.Error(w, `{"message":"customer not found"}`, http.StatusNotFound)
			return
		}
		var rec map[string]json.RawMessage
		if err := json.Unmarshal(f.customers[id], &rec); err != nil {
			t.Errorf("PUT /customers/stage: stored record of %q: %v", id, err)
		}
		var cur string
		json.Unmarshal(rec["lifecycleStage"], &cur)
		from, known := stageOrder[cur]
		to, ok := stageOrder[req["lifecycleStage"]]
		switch {
		case !ok:
			http.Error(w, `{"message":"invalid lifecycleStage `+req["lifecycleStage"]+`"}`, http.StatusBadRequest)
			return
		case known && to <= from:
			http.Error(w, `{"message":"customer lifecycle stage cannot be updated from `+cur+` to `+req["lifecycleStage"]+`"}`, http.StatusBadRequest)
			return
		}
		rec["lifecycleStage"], _ = json.Marshal(req["lifecycleStage"])
		rec["updateTime"], _ = json.Marshal(time.Now().UnixMilli())
		f.customers[id], _ = json.Marshal(rec)
		w.Write(f.customers[id]) // the whole record, as documented

	case r.Method == http.MethodGet && path == "/payments/billing/customer-product-invoice":
		f.serveInvoices(w, r, f.invoices, true)

	case r.Method == http.MethodGet && path == "/payments/billing/customer-product-invoice/all":
		f.serveInvoices(w, r, f.all, false)

	default:
		t.Errorf("unexpected request %s %s", r.Method, path)
		http.Error(w, `{"message":"not found"}`, http.StatusNotFound)
	}
}

// serveInvoices answers a read of invoices from bodies by customer ID,
// 404 when absent, after checking the exact query: latest=true when
// latest, else none.
func (f *fake) serveInvoices(w http.ResponseWriter, r *http.Request, bodies map[string]string, latest bool) {
	q := r.URL.Query()
	id := q.Get("customerId")
	want := url.Values{"customerId": {id}, "productId": {f.productID}, "withPaymentStatus": {"true"}}
	if latest {
		want.Set("latest", "true")
	}
	if id == "" || !reflect.DeepEqual(q, want) {
		f.t.Errorf("GET %s: query %v, want %v", r.URL.Path, q, want)
		http.Error(w, `{"message":"invalid query"}`, http.StatusBadRequest)
		return
	}
	body, ok := bodies[id]
	if !ok {
		http.Error(w, `{"message":"no invoice"}`, http.StatusNotFound)
		return
	}
	io.WriteString(w, body)
}

func (f *fake) jsonBody(r *http.Request) []byte {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		f.t.Errorf("%s %s: Content-Type %q, want application/json", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("%s %s: read body: %v", r.Method, r.URL.Path, err)
	}
	return b
}

// decodeNumbers decodes JSON keeping numbers as written, so a comparison
// also catches precision lost on the way through the client.
func decodeNumbers(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

func TestNew(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		c, err := New(Config{APIKey: testKey})
		if err != nil {
			t.Fatal(err)
		}
		if c.base != DefaultBaseURL || c.timeout != 10*time.Second || c.productID != "1" {
			t.Errorf("got base %q timeout %s product %q, want %q 10s \"1\"", c.base, c.timeout, c.productID, DefaultBaseURL)
		}
	})
	t.Run("trailing slash and path kept", func(t *testing.T) {
		c, err := New(Config{BaseURL: "http://localhost:8080/amberflo/", APIKey: testKey, Timeout: time.Second, ProductID: "7"})
		if err != nil {
			t.Fatal(err)
		}
		if c.base != "http://localhost:8080/amberflo" || c.timeout != time.Second || c.productID != "7" {
			t.Errorf("got base %q timeout %s product %q", c.base, c.timeout, c.productID)
		}
	})

	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // substrings of the error
	}{
		{"no key", Config{}, []string{"API key is empty"}},
		{"key with newline", Config{APIKey: testKey + "\n"}, []string{"API key contains whitespace"}},
		{"relative URL", Config{BaseURL: "app.amberflo.io", APIKey: testKey}, []string{"scheme must be http or https"}},
		{"ftp", Config{BaseURL: "ftp://app.amberflo.io", APIKey: testKey}, []string{"scheme must be http or https"}},
		{"no host", Config{BaseURL: "https://", APIKey: testKey}, []string{"no host"}},
		{"unparsable", Config{BaseURL: "https://app.amberflo.io:port", APIKey: testKey}, []string{"base URL"}},
		{"query", Config{BaseURL: "https://app.amberflo.io?x=1", APIKey: testKey}, []string{"query"}},
		{"credentials", Config{BaseURL: "https://u:hunter2@app.amberflo.io", APIKey: testKey}, []string{"credentials"}},
		{"negative timeout", Config{APIKey: testKey, Timeout: -time.Second}, []string{"timeout -1s is negative"}},
		{"all at once", Config{BaseURL: "ftp://x", Timeout: -1}, []string{"scheme", "API key is empty", "negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg)
			if err == nil {
				t.Fatalf("New = %v, want an error", c)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), testKey) {
				t.Errorf("error %q leaks a secret", err)
			}
		})
	}
}

func TestConfigStringHidesKey(t *testing.T) {
	cfg := Config{APIKey: testKey, BaseURL: DefaultBaseURL}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{cfg.String(), c.String()} {
		if strings.Contains(s, testKey) {
			t.Errorf("%q contains the API key", s)
		}
	}
}

func TestLatestInvoice(t *testing.T) {
	const body = `{
		"invoiceUri": "payments/billing/invoices/acme/2025-06",
		"invoiceKey": {"customerId": "acme", "productId": "1", "year": 2025, "month": 6},
		"totalBill": {"totalPrice": 123.45, "itemsPrice": 120, "totalTaxAmount": 3.45,
			"itemPrices": [{"productItemName": "api-calls", "price": 120}]},
		"paymentStatus": %q,
		"planName": "Usage Pro",
		"invoiceStartTimeInSeconds": 1748736000,
		"invoiceEndTimeInSeconds": 1751328000,
		"currency": "USD",
		"somethingNew": {"nested": [1, 2, 3]}
	}`
	for _, tc := range []struct {
		status PaymentStatus
		paid   bool
	}{
		{PaymentSettled, true},
		{PaymentNotNeeded, true},
		{PaymentFailed, false},
		{PaymentPending, false},
		{PaymentRequiresAction, false},
		{PaymentPrePayment, false},
		{PaymentUnknown, false},
		{"SOMETHING_NEW", false},
	} {
		t.Run(string(tc.status), func(t *testing.T) {
			f := newFake(t)
			f.invoices["acme"] = strings.Replace(body, "%q", `"`+string(tc.status)+`"`, 1)
			c := f.client(Config{})

			inv, err := c.LatestInvoice(context.Background(), "acme")
			if err != nil {
				t.Fatal(err)
			}
			if inv.Paid() != tc.paid {
				t.Errorf("Paid() = %v, want %v", inv.Paid(), tc.paid)
			}
			want := Invoice{
				CustomerID:    "acme",
				URI:           "payments/billing/invoices/acme/2025-06",
				TotalPrice:    123.45,
				TotalKnown:    true,
				PaymentStatus: tc.status,
				PlanName:      "Usage Pro",
				Start:         time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),
				End:           time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC),
			}
			var key map[string]any
			if err := json.Unmarshal(inv.Key, &key); err != nil || key["customerId"] != "acme" || key["month"] != 6.0 {
				t.Errorf("Key = %s (%v), want the invoiceKey object", inv.Key, err)
			}
			inv.Key = nil
			if !reflect.DeepEqual(inv, want) {
				t.Errorf("got  %+v\nwant %+v", inv, want)
			}
		})
	}
}

func TestLatestInvoiceProductID(t *testing.T) {
	f := newFake(t)
	f.productID = "42"
	f.invoices["a&b=c d"] = `{"paymentStatus":"PENDING","totalBill":{"totalPrice":9.5}}`
	c := f.client(Config{ProductID: "42"})

	inv, err := c.LatestInvoice(context.Background(), "a&b=c d")
	if err != nil {
		t.Fatal(err)
	}
	if inv.Paid() || inv.TotalPrice != 9.5 || inv.URI != "" || !inv.Start.IsZero() {
		t.Errorf("got %+v, want an unpaid 9.5 with no URI or period", inv)
	}
}

// nothingThere is how Amberflo says there is nothing: a body, or nil for
// a 404.
var nothingThere = []struct {
	name string
	body *string // nil: 404
}{
	{"404", nil},
	{"null", ptr("null")},
	{"null with whitespace", ptr(" null\n")},
	{"empty body", ptr("")},
}

func TestLatestInvoiceNone(t *testing.T) {
	for _, tc := range append(nothingThere, struct {
		name string
		body *string
	}{"empty object", ptr("{}")}) {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			if tc.body != nil {
				f.invoices["acme"] = *tc.body
			}
			c := f.client(Config{})

			inv, err := c.LatestInvoice(context.Background(), "acme")
			if !errors.Is(err, ErrNotFound) || !errors.Is(err, httpx.ErrNotFound) {
				t.Fatalf("LatestInvoice = %+v, %v; want ErrNotFound", inv, err)
			}
			if !httpx.IsPermanent(err) || httpx.IsRetryable(err) {
				t.Errorf("no invoice: permanent %v, retryable %v; want permanent", httpx.IsPermanent(err), httpx.IsRetryable(err))
			}
		})
	}
}

// An answer that cannot be read is not "nothing there": it is a permanent
// *httpx.APIError with the status Amberflo answered, so that the workflow
// stops for an operator rather than act on it.
func TestUnreadableAnswer(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		customer string // the customer record answered, when not ""
		invoice  string // the invoice answered, when not ""
		call     func(*Client) error
		want     string // in the message
	}{
		{"invoice with a wrong type", "", `{"paymentStatus": 7}`,
			func(c *Client) error { _, err := c.LatestInvoice(ctx, "acme"); return err }, "decode invoice"},
		{"invoice not JSON", "", `<html>Gateway says hello</html>`,
			func(c *Client) error { _, err := c.LatestInvoice(ctx, "acme"); return err }, "decode invoice"},
		{"customer not JSON", `{"customerId": "acme", `, "",
			func(c *Client) error { _, err := c.Customer(ctx, "acme"); return err }, "decode customer"},
		{"customer with a wrong type", `{"customerId": "acme", "enabled": "yes"}`, "",
			func(c *Client) error { _, err := c.Customer(ctx, "acme"); return err }, "decode customer"},
		{"another customer", `{"customerId": "other", "enabled": true}`, "",
			func(c *Client) error { _, _, err := c.DeactivateCustomer(ctx, "acme"); return err }, `answered with customer "other"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			if tc.customer != "" {
				f.customers["acme"] = []byte(tc.customer)
			}
			if tc.invoice != "" {
				f.invoices["acme"] = tc.invoice
			}
			c := f.client(Config{})

			err := tc.call(c)
			var ae *httpx.APIError
			if !errors.As(err, &ae) || ae.StatusCode != http.StatusOK || ae.Peer != "amberflo" {
				t.Fatalf("err = %v, want an *httpx.APIError for Amberflo's 200", err)
			}
			if errors.Is(err, ErrNotFound) || !httpx.IsPermanent(err) || httpx.IsRetryable(err) {
				t.Errorf("err = %v: not found %v, permanent %v, retryable %v; want permanent only",
					err, errors.Is(err, ErrNotFound), httpx.IsPermanent(err), httpx.IsRetryable(err))
			}
			if msg := err.Error(); !strings.Contains(msg, "answered 200 OK: unreadable answer") || !strings.Contains(msg, tc.want) {
				t.Errorf("err %q does not say the 200 was unreadable and why (%q)", msg, tc.want)
			}
			for _, r := range f.requests() {
				if strings.HasPrefix(r, "PUT") {
					t.Errorf("wrote after an unreadable answer: %s", r)
				}
			}
		})
	}
}

func ptr(s string) *string { return &s }

// acme is a customer record with fields this client does not know about,
// a number beyond float64 precision, and characters JSON may escape.
const acme = `{
	"customerId": "acme/eu 1",
	"customerName": "Acme <EU> & Co",
	"customerEmail": "billing@acme.example",
	"description": null,
	"test": false,
	"traits": {"stripeId": "cus_123", "region": "eu"},
	"lifecycleStage": "ACTIVE",
	"createTime": 1718153645993,
	"updateTime": 1718153645994,
	"deactivateTimeStamp": 9007199254740993,
	"address": {"line1": "1 Main St", "country": "DE"},
	"futureField": [1, "two", {"three": 3.0}]
	%s
}`

func acmeWith(enabled string) []byte {
	return []byte(strings.Replace(acme, "%s", enabled, 1))
}

func TestCustomer(t *testing.T) {
	f := newFake(t)
	f.customers["acme/eu 1"] = acmeWith(`, "enabled": true`)
	c := f.client(Config{})

	got, err := c.Customer(context.Background(), "acme/eu 1")
	if err != nil {
		t.Fatal(err)
	}
	want := Customer{
		ID:             "acme/eu 1",
		Name:           "Acme <EU> & Co",
		Email:          "billing@acme.example",
		Traits:         map[string]string{"stripeId": "cus_123", "region": "eu"},
		Enabled:        true,
		LifecycleStage: StageActive,
		Created:        time.UnixMilli(1718153645993).UTC(),
		Updated:        time.UnixMilli(1718153645994).UTC(),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if log := f.requests(); !slices.Equal(log, []string{"GET /customers/acme%2Feu%201"}) {
		t.Errorf("requests %q, want the ID path-escaped", log)
	}
}

func TestCustomerNotFound(t *testing.T) {
	for _, tc := range []struct {
		name string
		body *string
	}{
		{"404", nil},
		{"empty body", ptr("")},
		{"null", ptr("null")},
		{"empty object", ptr("{}")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			if tc.body != nil {
				f.customers["ghost"] = []byte(*tc.body)
			}
			c := f.client(Config{})
			_, err := c.Customer(context.Background(), "ghost")
			if !errors.Is(err, ErrNotFound) || !httpx.IsPermanent(err) {
				t.Errorf("err = %v; want permanent ErrNotFound", err)
			}
			// Nothing to deactivate either, and nothing written.
			_, _, err = c.DeactivateCustomer(context.Background(), "ghost")
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("DeactivateCustomer: err = %v; want ErrNotFound", err)
			}
			for _, r := range f.requests() {
				if strings.HasPrefix(r, "PUT") {
					t.Errorf("unexpected %s", r)
				}
			}
		})
	}
}

func TestInvalidID(t *testing.T) {
	f := newFake(t)
	c := f.client(Config{})
	for _, id := range []string{"", ".", ".."} {
		if _, err := c.Customer(context.Background(), id); err == nil || !httpx.IsPermanent(err) {
			t.Errorf("Customer(%q): err = %v, want permanent", id, err)
		}
		if _, err := c.LatestInvoice(context.Background(), id); err == nil || !httpx.IsPermanent(err) {
			t.Errorf("LatestInvoice(%q): err = %v, want permanent", id, err)
		}
	}
	if log := f.requests(); len(log) != 0 {
		t.Errorf("requests %q, want none", log)
	}
}

func TestDeactivateCustomer(t *testing.T) {
	for _, tc := range []struct {
		name        string
		enabled     string // the record's enabled field, as JSON
		wantChanged bool
	}{
		{"enabled", `, "enabled": true`, true},
		{"no enabled field", ``, true},
		{"enabled null", `, "enabled": null`, true},
		{"already disabled", `, "enabled": false`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.customers["acme/eu 1"] = acmeWith(tc.enabled)
			c := f.client(Config{})

			cust, changed, err := c.DeactivateCustomer(context.Background(), "acme/eu 1")
			if err != nil {
				t.Fatal(err)
			}
			if changed != tc.wantChanged || cust.Enabled || cust.ID != "acme/eu 1" || cust.Name != "Acme <EU> & Co" {
				t.Errorf("got %+v changed %v; want disabled acme, changed %v", cust, changed, tc.wantChanged)
			}

			// Every field as it was, including unknown ones and exact
			// numbers; only enabled is false.
			want := decodeNumbers(t, acmeWith(tc.enabled))
			want["enabled"] = false
			if got := f.record("acme/eu 1"); !reflect.DeepEqual(got, want) {
				t.Errorf("stored record\n got  %v\n want %v", got, want)
			}
			wantLog := []string{"GET /customers/acme%2Feu%201"}
			if tc.wantChanged {
				wantLog = append(wantLog, "PUT /customers")
			}
			if log := f.requests(); !slices.Equal(log, wantLog) {
				t.Errorf("requests %q, want %q", log, wantLog)
			}

			// Again: already disabled now, so no second PUT.
			_, changed, err = c.DeactivateCustomer(context.Background(), "acme/eu 1")
			if err != nil || changed {
				t.Errorf("second call: changed %v, err %v; want false, nil", changed, err)
			}
			if n := len(f.requests()); n != len(wantLog)+1 {
				t.Errorf("second call made %d requests, want one GET", n-len(wantLog))
			}
		})
	}
}

func TestDeactivateEmptyAnswer(t *testing.T) {
	f := newFake(t)
	f.customers["acme"] = []byte(`{"customerId":"acme","customerName":"Acme","enabled":true}`)
	f.fail = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut {
			return false
		}
		w.WriteHeader(http.StatusOK) // accepted, but answers with nothing
		return true
	}
	c := f.client(Config{})

	cust, changed, err := c.DeactivateCustomer(context.Background(), "acme")
	if err != nil || !changed || cust.Enabled || cust.Name != "Acme" {
		t.Errorf("got %+v changed %v err %v; want the record as sent, disabled", cust, changed, err)
	}
}

// wantStageAnswer checks SetLifecycleStage's answer: moved or not, and an
// error, a permanent one, only when one is wanted.
func wantStageAnswer(t *testing.T, moved bool, err error, wantMoved, wantErr bool) {
	t.Helper()
	if (err != nil) != wantErr || moved != wantMoved {
		t.Fatalf("moved %v, err %v; want moved %v, error %v", moved, err, wantMoved, wantErr)
	}
	if wantErr && !httpx.IsPermanent(err) {
		t.Errorf("err %v is not permanent", err)
	}
}

func TestSetLifecycleStage(t *testing.T) {
	for _, tc := range []struct {
		from      string // the record's lifecycleStage, as JSON; "" for none
		to        LifecycleStage
		wantMoved bool
		wantErr   bool
		wantReqs  int
	}{
		{`"ACTIVE"`, StageOffboarded, true, false, 2},
		{`"ONBOARDING"`, StageTrial, true, false, 2},
		{`"TRAIL"`, StageActive, true, false, 2},
		{``, StageTrial, true, false, 2},
		{`"ACTIVE"`, StageActive, false, false, 1},
		{`"OFFBOARDED"`, StageActive, false, false, 1},
		{`"TRIAL"`, StageOnboarding, false, false, 1},
		{`"ARCHIVED"`, StageOffboarded, false, true, 1},
		{`"ACTIVE"`, "DELETED", false, true, 0},
		{`"ACTIVE"`, "TRAIL", false, true, 0},
	} {
		t.Run(tc.from+"->"+string(tc.to), func(t *testing.T) {
			f := newFake(t)
			rec := `{"customerId":"acme","enabled":true}`
			if tc.from != "" {
				rec = `{"customerId":"acme","enabled":true,"lifecycleStage":` + tc.from + `}`
			}
			f.customers["acme"] = []byte(rec)
			c := f.client(Config{})

			moved, err := c.SetLifecycleStage(context.Background(), "acme", tc.to)
			wantStageAnswer(t, moved, err, tc.wantMoved, tc.wantErr)
			if n := len(f.requests()); n != tc.wantReqs {
				t.Errorf("%d requests %q, want %d", n, f.requests(), tc.wantReqs)
			}
			if tc.wantMoved {
				if got := f.record("acme")["lifecycleStage"]; got != string(tc.to) {
					t.Errorf("stored stage %v, want %s", got, tc.to)
				}
			}
		})
	}
}

// TestSetLifecycleStageRace: another writer moves the stage between the
// client's read and its write, and Amberflo refuses the write as not
// forward. Where the customer now is at or past the stage asked for, that
// is what was asked: success, not moved. Where it is not, the refusal
// stands.
func TestSetLifecycleStageRace(t *testing.T) {
	for _, tc := range []struct {
		raced     string // the stage the other writer sets
		to        LifecycleStage
		status    int // what the PUT answers, when not the fake's own answer
		wantMoved bool
		wantErr   bool
	}{
		{"OFFBOARDED", StageOffboarded, 0, false, false},
		{"OFFBOARDED", StageActive, 0, false, false},
		{"ACTIVE", StageTrial, 0, false, false},
		{"ACTIVE", StageOffboarded, 0, true, false},                     // still behind: the write goes through
		{"ACTIVE", StageOffboarded, http.StatusBadRequest, false, true}, // refused for another reason
		{"ACTIVE", StageOffboarded, http.StatusForbidden, false, true},
	} {
		t.Run(fmt.Sprintf("%s then %s, %d", tc.raced, tc.to, tc.status), func(t *testing.T) {
			f := newFake(t)
			f.customers["acme"] = []byte(`{"customerId":"acme","enabled":true,"lifecycleStage":"ONBOARDING"}`)
			f.fail = func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodPut {
					return false
				}
				f.customers["acme"] = []byte(`{"customerId":"acme","enabled":true,"lifecycleStage":"` + tc.raced + `"}`)
				if tc.status != 0 {
					http.Error(w, `{"message":"refused"}`, tc.status)
					return true
				}
				return false
			}
			c := f.client(Config{})

			moved, err := c.SetLifecycleStage(context.Background(), "acme", tc.to)
			wantStageAnswer(t, moved, err, tc.wantMoved, tc.wantErr)
			if tc.wantErr && !strings.Contains(err.Error(), "PUT /customers/stage") {
				t.Errorf("err %q does not name the refused request", err)
			}
			if got := f.record("acme")["lifecycleStage"]; !tc.wantErr && stageOrder[got.(string)] < stageOrder[string(tc.to)] {
				t.Errorf("stored stage %v, want at least %s", got, tc.to)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	getCustomer := func(c *Client) error { _, err := c.Customer(ctx, "acme"); return err }
	getInvoice := func(c *Client) error { _, err := c.LatestInvoice(ctx, "acme"); return err }
	deactivate := func(c *Client) error { _, _, err := c.DeactivateCustomer(ctx, "acme"); return err }
	offboard := func(c *Client) error { _, err := c.SetLifecycleStage(ctx, "acme", StageOffboarded); return err }
	soon := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)

	for _, tc := range []struct {
		name       string
		call       func(*Client) error
		failMethod string // requests with this method get the status
		path       string // of the failed request, without the leading slash
		status     int
		retryAfter string
		retryable  bool
		wantAfter  time.Duration // at least; and at most 2s more
		wantReqs   int
	}{
		{"429 seconds", getInvoice, "GET", "payments/billing/customer-product-invoice", 429, "7", true, 7 * time.Second, 1},
		{"429 date", getCustomer, "GET", "customers/acme", 429, soon, true, 28 * time.Second, 1},
		{"429 without header", getCustomer, "GET", "customers/acme", 429, "", true, 0, 1},
		{"500", getInvoice, "GET", "payments/billing/customer-product-invoice", 500, "", true, 0, 1},
		{"503 on PUT", deactivate, "PUT", "customers", 503, "2", true, 2 * time.Second, 2},
		{"400", getInvoice, "GET", "payments/billing/customer-product-invoice", 400, "", false, 0, 1},
		{"401", getCustomer, "GET", "customers/acme", 401, "", false, 0, 1},
		{"403", getInvoice, "GET", "payments/billing/customer-product-invoice", 403, "", false, 0, 1},
		{"400 on PUT", deactivate, "PUT", "customers", 400, "", false, 0, 2},
		{"404 on PUT", deactivate, "PUT", "customers", 404, "", false, 0, 2},
		{"503 on stage PUT", offboard, "PUT", "customers/stage", 503, "", true, 0, 2},
		// A refusal is checked with a second read: still not offboarded.
		{"400 on stage PUT", offboard, "PUT", "customers/stage", 400, "", false, 0, 3},
		{"403 on stage PUT", offboard, "PUT", "customers/stage", 403, "", false, 0, 2},
		{"Retry-After ignored on 400", getCustomer, "GET", "customers/acme", 400, "5", false, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.customers["acme"] = []byte(`{"customerId":"acme","enabled":true}`)
			f.invoices["acme"] = `{"paymentStatus":"SETTLED"}`
			f.fail = func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != tc.failMethod {
					return false
				}
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				// A server echoing the key, and a body too long to quote.
				io.WriteString(w, `{"message":"request with key `+testKey+` failed", "detail":"`+strings.Repeat("x", 5000)+`"}`)
				return true
			}
			c := f.client(Config{})

			err := tc.call(c)
			var ae *httpx.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an *APIError", err)
			}
			if ae.StatusCode != tc.status || ae.Retryable != tc.retryable {
				t.Errorf("status %d retryable %v, want %d %v", ae.StatusCode, ae.Retryable, tc.status, tc.retryable)
			}
			if httpx.IsRetryable(err) != tc.retryable || httpx.IsPermanent(err) == tc.retryable {
				t.Errorf("IsRetryable %v IsPermanent %v, want retryable %v", httpx.IsRetryable(err), httpx.IsPermanent(err), tc.retryable)
			}
			if ae.RetryAfter < tc.wantAfter || ae.RetryAfter > tc.wantAfter+2*time.Second {
				t.Errorf("RetryAfter %s, want %s", ae.RetryAfter, tc.wantAfter)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("error leaks the API key: %v", err)
			}
			if !strings.Contains(ae.Message, "request with key [redacted] failed") || len(ae.Message) > 210 {
				t.Errorf("Message %q (%d bytes), want a short excerpt of the body", ae.Message, len(ae.Message))
			}
			// What a reader of the log sees: the request, the status and
			// the start of the answer.
			want := fmt.Sprintf(`%s /%s: amberflo answered %d %s: {"message":"request with key [redacted] failed"`,
				tc.failMethod, tc.path, tc.status, http.StatusText(tc.status))
			if msg := err.Error(); !strings.Contains(msg, want) {
				t.Errorf("error %q\nwant it to contain %q", msg, want)
			}
			if n := len(f.requests()); n != tc.wantReqs {
				t.Errorf("%d requests, want %d: the client itself does not retry", n, tc.wantReqs)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		hang func(w http.ResponseWriter)
	}{
		{"no headers", func(http.ResponseWriter) {}},
		{"body stalls", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, `{"customerId":`)
			w.(http.Flusher).Flush()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tc.hang(w)
				select {
				case <-r.Context().Done():
				case <-release:
				case <-time.After(2 * time.Second): // fail, not hang, without a timeout
				}
			}))
			defer srv.Close()
			defer close(release)
			c, err := New(Config{BaseURL: srv.URL, APIKey: testKey, Timeout: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}

			start := time.Now()
			_, err = c.Customer(context.Background(), "acme")
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("returned after %s, want about the 50ms timeout", elapsed)
			}
			var ae *httpx.APIError
			if !errors.As(err, &ae) || ae.StatusCode != 0 || !httpx.IsRetryable(err) || httpx.IsPermanent(err) {
				t.Fatalf("err = %v, want a retryable timeout", err)
			}
			if !strings.Contains(err.Error(), "no answer within 50ms") {
				t.Errorf("err %q does not say it timed out", err)
			}
		})
	}
}

func TestCallerCancels(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()

	_, err = c.LatestInvoice(ctx, "acme")
	if !errors.Is(err, context.DeadlineExceeded) || httpx.IsRetryable(err) || httpx.IsPermanent(err) {
		t.Errorf("err = %v (retryable %v, permanent %v); want the caller's deadline, neither", err, httpx.IsRetryable(err), httpx.IsPermanent(err))
	}
}

func TestNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens there now
	c, err := New(Config{BaseURL: srv.URL, APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Customer(context.Background(), "acme")
	var ae *httpx.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 0 || !httpx.IsRetryable(err) {
		t.Errorf("err = %v, want a retryable network error", err)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	var leaked sync.Map
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store("key", r.Header.Get("X-API-KEY"))
	}))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, APIKey: testKey, HTTPClient: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}

	_, err = c.Customer(context.Background(), "acme")
	var ae *httpx.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusTemporaryRedirect || !httpx.IsPermanent(err) {
		t.Errorf("err = %v, want a permanent 307", err)
	}
	if key, ok := leaked.Load("key"); ok {
		t.Errorf("redirect followed; the other host got X-API-KEY %q", key)
	}
}
