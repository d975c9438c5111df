package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"dunning/activities"
	"dunning/amberflo"
	"dunning/controlplane"
	"dunning/internal/httpx"
	"dunning/internal/sig"
	"dunning/notify"
)

const (
	accountID     = "acct-42" // the product's and Amberflo's ID for the customer
	amberfloKey   = "amberflo-test-key"
	cpSecret      = "cp_test_secret_0123456789abcdefghijklm"
	noticeSecret  = "notice_test_secret_9876543210zyxwvuts"
	slackHookPath = "/services/T000DUNNING/B000DUNNING/xoxoTestToken"
)

// peer is an httptest server that records every request and answers with
// the next scripted status and body (the last one repeating).
type peer struct {
	t    *testing.T
	mu   sync.Mutex
	next []answer
	seen requests
	URL  string
}

func newPeer(t *testing.T, answers ...answer) *peer {
	t.Helper()
	p := &peer{t: t, next: answers}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := read(t, r)
		p.mu.Lock()
		a := p.next[0]
		if len(p.next) > 1 {
			p.next = p.next[1:]
		}
		p.mu.Unlock()
		rec.Status = a.status
		p.seen.add(rec)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body.(string))
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// only returns the one request the peer got, failing if it got another
// number of them.
func (p *peer) only(t *testing.T) request {
	t.Helper()
	all := p.seen.list()
	if len(all) != 1 {
		t.Fatalf("requests = %v, want exactly one", all)
	}
	return all[0]
}

func jsonBody(t *testing.T, r request) map[string]any {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type = %q, want application/json", r, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("%s: body is not a JSON object: %v: %s", r, err, r.Body)
	}
	return m
}

// wantSigned checks the Dunning-Signature header the way the receiver
// would: the v2 scheme of its kind, over the method, target, idempotency
// key and body, and under no other secret or kind.
func wantSigned(t *testing.T, r request, kind sig.Kind, secret string) {
	t.Helper()
	h := r.Header.Get("Dunning-Signature")
	signed := sig.Request{Method: r.Method, Target: r.Target, IdempotencyKey: r.IdempotencyKey, Body: r.Body}
	if err := kind.Verify(h, signed, []string{secret}, 5*time.Minute, time.Now()); err != nil {
		t.Errorf("%s: Dunning-Signature %q does not verify as %s with the secret: %v", r, h, kind, err)
	}
	if err := kind.Verify(h, signed, []string{"another secret of at least 32 bytes"}, 5*time.Minute, time.Now()); !errors.Is(err, sig.ErrNoMatch) {
		t.Errorf("%s: signature verifies with another secret (err %v)", r, err)
	}
	other := sig.KindControlPlane
	if kind == other {
		other = sig.KindCustomerNotice
	}
	if err := other.Verify(h, signed, []string{secret}, 5*time.Minute, time.Now()); !errors.Is(err, sig.ErrNoMatch) {
		t.Errorf("%s: signature verifies as %s too (err %v)", r, other, err)
	}
}

// ---- control plane ----

func controlPlaneActivities(t *testing.T, baseURL string) *activities.Activities {
	t.Helper()
	c, err := controlplane.New(controlplane.Config{BaseURL: baseURL + "/api/v1", Secret: cpSecret, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("controlplane.New: %v", err)
	}
	return &activities.Activities{Control: c, Log: quietLogger()}
}

func controlPlaneInput(action string) activities.ControlPlaneInput {
	return activities.ControlPlaneInput{
		Action:           action,
		CustomerID:       accountID,
		StripeCustomerID: customerID,
		IdempotencyKey:   "recovery-" + customerID + "/" + action + "/1",
		Reason:           "invoice unpaid after grace period",
		WorkflowID:       "recovery-" + customerID,
		AmountDue:        4900,
		Currency:         "usd",
		RequestedAt:      time.Date(2025, 3, 14, 15, 0, 0, 0, time.FixedZone("CET", 3600)),
	}
}

func TestControlPlaneRequest(t *testing.T) {
	for _, action := range []string{"suspend", "resume", "deprovision"} {
		t.Run(action, func(t *testing.T) {
			p := newPeer(t, answer{http.StatusOK, `{"status":"ok"}`})
			acts := controlPlaneActivities(t, p.URL)
			in := controlPlaneInput(action)
			got, err := acts.ControlPlane(context.Background(), in)
			if err != nil {
				t.Fatalf("ControlPlane: %v", err)
			}
			if got != (activities.ControlPlaneResult{}) {
				t.Errorf("ControlPlane = %+v, want applied, not dry run", got)
			}
			r := p.only(t)
			if want := "/api/v1/customers/" + accountID + "/" + action; r.Method != http.MethodPost || r.Path != want {
				t.Errorf("request = %s, want POST %s", r, want)
			}
			if r.IdempotencyKey != in.IdempotencyKey {
				t.Errorf("Idempotency-Key = %q, want %q", r.IdempotencyKey, in.IdempotencyKey)
			}
			wantSigned(t, r, sig.KindControlPlane, cpSecret)
			want := map[string]any{
				"customer_id": accountID, "stripe_customer_id": customerID, "action": action,
				"reason": in.Reason, "workflow_id": in.WorkflowID, "amount_due": 4900.0, "currency": "usd",
				"idempotency_key": in.IdempotencyKey, "requested_at": "2025-03-14T14:00:00Z",
			}
			if body := jsonBody(t, r); !reflect.DeepEqual(body, want) {
				t.Errorf("body = %v, want %v", body, want)
			}
		})
	}
}

func TestControlPlaneAnswers(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   string // ok, applied, rejected, retryable
	}{
		{http.StatusOK, "ok"},
		{http.StatusAccepted, "ok"},
		{http.StatusNoContent, "ok"},
		{http.StatusConflict, "applied"},
		{http.StatusBadRequest, "rejected"},
		{http.StatusForbidden, "rejected"},
		{http.StatusNotFound, "rejected"},
		{http.StatusRequestTimeout, "retryable"},
		{http.StatusTooManyRequests, "retryable"},
		{http.StatusInternalServerError, "retryable"},
		{http.StatusServiceUnavailable, "retryable"},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			body := `{"error":"x"}`
			if tc.status == http.StatusNoContent {
				body = ""
			}
			p := newPeer(t, answer{tc.status, body})
			acts := controlPlaneActivities(t, p.URL)
			in := controlPlaneInput("suspend")
			got, err := acts.ControlPlane(context.Background(), in)
			switch tc.want {
			case "ok", "applied":
				if err != nil {
					t.Fatalf("ControlPlane: %v", err)
				}
				if want := (activities.ControlPlaneResult{AlreadyApplied: tc.want == "applied"}); got != want {
					t.Errorf("ControlPlane = %+v, want %+v", got, want)
				}
			case "rejected":
				wantNonRetryable(t, err, activities.ErrControlPlaneRejected)
			case "retryable":
				wantRetryable(t, err)
				var apiErr *httpx.APIError
				if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status {
					t.Errorf("err = %v, want the control plane's %d in its chain", err, tc.status)
				}
			}
			if r := p.only(t); r.IdempotencyKey != in.IdempotencyKey {
				t.Errorf("Idempotency-Key = %q, want %q", r.IdempotencyKey, in.IdempotencyKey)
			}
		})
	}
}

func TestControlPlaneInvalidRequestNotSent(t *testing.T) {
	p := newPeer(t, answer{http.StatusOK, `{}`})
	acts := controlPlaneActivities(t, p.URL)
	for name, in := range map[string]activities.ControlPlaneInput{
		"unknown action": controlPlaneInput("pause"),
		"no key": func() activities.ControlPlaneInput {
			in := controlPlaneInput("suspend")
			in.IdempotencyKey = ""
			return in
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := acts.ControlPlane(context.Background(), in)
			wantNonRetryable(t, err, activities.ErrControlPlaneRejected)
		})
	}
	if all := p.seen.list(); len(all) != 0 {
		t.Errorf("requests = %v, want none", all)
	}
}

// ---- Amberflo ----

func amberfloActivities(t *testing.T, baseURL string) *activities.Activities {
	t.Helper()
	c, err := amberflo.New(amberflo.Config{BaseURL: baseURL, APIKey: amberfloKey, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("amberflo.New: %v", err)
	}
	return &activities.Activities{Amberflo: c, Log: quietLogger()}
}

// wantAmberfloKey checks that r carries the API key as Amberflo expects.
func wantAmberfloKey(t *testing.T, r request) {
	t.Helper()
	if got := r.Header.Get("X-API-KEY"); got != amberfloKey {
		t.Errorf("%s: X-API-KEY = %q, want the API key", r, got)
	}
}

func invoiceJSON(status string) string {
	return `{
		"invoiceUri": "payments/billing/invoices/acct-42/2025-06",
		"invoiceKey": {"customerId": "acct-42", "productId": "1", "year": 2025, "month": 6},
		"invoiceStartTimeInSeconds": 1748736000,
		"invoiceEndTimeInSeconds": 1751328000,
		"planName": "Team",
		"totalBill": {"itemPrice": 45.0, "fixedPrice": 4.0, "prepaid": 0, "totalPrice": 49.0, "totalDiscount": 0},
		"paymentStatus": "` + status + `"
	}`
}

func TestLatestInvoice(t *testing.T) {
	found := func(status string, paid bool) activities.AmberfloInvoice {
		return activities.AmberfloInvoice{Found: true, URI: "payments/billing/invoices/acct-42/2025-06",
			Amount: 49, AmountKnown: true, PaymentStatus: status, Paid: paid}
	}
	for _, tc := range []struct {
		name   string
		answer answer
		want   activities.AmberfloInvoice
	}{
		{"settled", answer{http.StatusOK, invoiceJSON("SETTLED")}, found("SETTLED", true)},
		{"not needed", answer{http.StatusOK, invoiceJSON("NOT_NEEDED")}, found("NOT_NEEDED", true)},
		{"failed", answer{http.StatusOK, invoiceJSON("FAILED")}, found("FAILED", false)},
		{"settled in lower case", answer{http.StatusOK, invoiceJSON("settled")}, found("SETTLED", true)},
		{"pre-payment", answer{http.StatusOK, invoiceJSON("PRE_PAYMENT")}, found("PRE_PAYMENT", false)},
		{"requires action", answer{http.StatusOK, invoiceJSON("REQUIRES_ACTION")}, found("REQUIRES_ACTION", false)},
		{"404", answer{http.StatusNotFound, `{"message":"invoice not found"}`}, activities.AmberfloInvoice{}},
		{"null", answer{http.StatusOK, `null`}, activities.AmberfloInvoice{}},
		{"empty object", answer{http.StatusOK, `{}`}, activities.AmberfloInvoice{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, tc.answer)
			acts := amberfloActivities(t, p.URL)
			got, err := acts.LatestInvoice(context.Background(), activities.AmberfloInput{CustomerID: accountID})
			if err != nil {
				t.Fatalf("LatestInvoice: %v", err)
			}
			if got != tc.want {
				t.Errorf("LatestInvoice = %+v, want %+v", got, tc.want)
			}
			r := p.only(t)
			if r.Method != http.MethodGet || r.Path != "/payments/billing/customer-product-invoice" {
				t.Errorf("request = %s, want GET /payments/billing/customer-product-invoice", r)
			}
			wantQuery := url.Values{"customerId": {accountID}, "productId": {"1"}, "latest": {"true"}, "withPaymentStatus": {"true"}}
			if !reflect.DeepEqual(r.Query, wantQuery) {
				t.Errorf("query = %v, want %v", r.Query, wantQuery)
			}
			wantAmberfloKey(t, r)
		})
	}
}

func TestLatestInvoiceErrors(t *testing.T) {
	for _, tc := range []struct {
		status    int
		retryable bool
	}{
		{http.StatusBadRequest, false},
		{http.StatusUnauthorized, false},
		{http.StatusForbidden, false},
		{http.StatusTooManyRequests, true},
		{http.StatusInternalServerError, true},
		{http.StatusServiceUnavailable, true},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			p := newPeer(t, answer{tc.status, `{"message":"no"}`})
			acts := amberfloActivities(t, p.URL)
			got, err := acts.LatestInvoice(context.Background(), activities.AmberfloInput{CustomerID: accountID})
			if got != (activities.AmberfloInvoice{}) {
				t.Errorf("result = %+v with the error, want none", got)
			}
			if tc.retryable {
				wantRetryable(t, err)
			} else {
				wantNonRetryable(t, err, activities.ErrAmberfloRejected)
			}
			p.only(t)
		})
	}
}

// An Amberflo that answers 200 with something that is not an invoice or a
// customer is not "nothing there" and not worth retrying: it is a
// non-retryable rejection, so that the workflow tells an operator instead
// of acting on it (fail safe).
func TestAmberfloUnreadableAnswer(t *testing.T) {
	const garbage = `<html><body>Service temporarily moved</body></html>`
	for name, call := range map[string]func(*activities.Activities) error{
		"LatestInvoice": func(a *activities.Activities) error {
			_, err := a.LatestInvoice(context.Background(), activities.AmberfloInput{CustomerID: accountID})
			return err
		},
		"DeactivateCustomer": func(a *activities.Activities) error {
			_, err := a.DeactivateCustomer(context.Background(), activities.AmberfloInput{CustomerID: accountID})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			p := newPeer(t, answer{http.StatusOK, garbage})
			err := call(amberfloActivities(t, p.URL))
			wantNonRetryable(t, err, activities.ErrAmberfloRejected)
			var apiErr *httpx.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusOK {
				t.Errorf("err = %v, want Amberflo's unreadable 200 in its chain", err)
			}
			if !strings.Contains(err.Error(), "unreadable answer") {
				t.Errorf("err %q does not say the answer was unreadable", err)
			}
			p.only(t) // read once, nothing written
		})
	}
}

// Every peer is classified alike: no answer at all is retried, and so is
// the end of the activity's own context (Temporal knows why it ended).
func TestPeerErrorsClassifiedAlike(t *testing.T) {
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // nothing listens there any more
	calls := map[string]func(context.Context, *activities.Activities) error{
		"LatestInvoice": func(ctx context.Context, a *activities.Activities) error {
			_, err := a.LatestInvoice(ctx, activities.AmberfloInput{CustomerID: accountID})
			return err
		},
		"DeactivateCustomer": func(ctx context.Context, a *activities.Activities) error {
			_, err := a.DeactivateCustomer(ctx, activities.AmberfloInput{CustomerID: accountID})
			return err
		},
		"ControlPlane": func(ctx context.Context, a *activities.Activities) error {
			_, err := a.ControlPlane(ctx, controlPlaneInput("suspend"))
			return err
		},
		"Alert": func(ctx context.Context, a *activities.Activities) error {
			_, err := a.Alert(ctx, alertInput())
			return err
		},
		"Notice": func(ctx context.Context, a *activities.Activities) error {
			_, err := a.Notice(ctx, noticeInput())
			return err
		},
	}
	for name, call := range calls {
		t.Run(name+"/no answer", func(t *testing.T) {
			err := call(context.Background(), liveExcept(t, gone.URL))
			wantRetryable(t, err)
			var apiErr *httpx.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 0 || !apiErr.Retryable {
				t.Errorf("err = %v, want a retryable *httpx.APIError without status", err)
			}
		})
		t.Run(name+"/context cancelled", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := call(ctx, liveExcept(t, gone.URL))
			wantRetryable(t, err)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want the context's cancellation", err)
			}
		})
	}
}

// amberfloCustomers is a fake of Amberflo's customer API: GET
// /customers/{id} reads a record, PUT /customers replaces one, PUT
// /customers/stage moves its lifecycle stage forward (ONBOARDING, TRIAL,
// ACTIVE, OFFBOARDED) and answers with the whole record, as Amberflo
// documents. Amberflo documents no answer for a move that is not forward;
// the fake refuses one, a move to the stage the customer is at included,
// with 400 and a message, as Amberflo refuses other invalid requests.
type amberfloCustomers struct {
	t       *testing.T
	mu      sync.Mutex
	records map[string]json.RawMessage
	// fail maps "GET", "PUT" or a request ("PUT /customers/stage") to
	// the status to answer instead; a request's own entry wins.
	fail map[string]int
	seen requests
	URL  string
}

func newAmberfloCustomers(t *testing.T) *amberfloCustomers {
	f := &amberfloCustomers{t: t, records: map[string]json.RawMessage{}, fail: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *amberfloCustomers) serve(w http.ResponseWriter, r *http.Request) {
	rec := read(f.t, r)
	f.mu.Lock()
	defer f.mu.Unlock()
	status, body := f.answer(r, rec)
	rec.Status = status
	f.seen.add(rec)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

func (f *amberfloCustomers) answer(r *http.Request, rec request) (int, []byte) {
	if r.Header.Get("X-API-KEY") != amberfloKey {
		return http.StatusUnauthorized, []byte(`{"message":"Unauthorized"}`)
	}
	if st := f.fail[r.Method+" "+rec.Path]; st != 0 {
		return st, []byte(`{"message":"failed"}`)
	}
	if st := f.fail[r.Method]; st != 0 {
		return st, []byte(`{"message":"failed"}`)
	}
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(rec.Path, "/customers/"):
		id, err := url.PathUnescape(strings.TrimPrefix(rec.Path, "/customers/"))
		if err != nil || f.records[id] == nil {
			return http.StatusOK, []byte(`{}`) // Amberflo's answer for no such customer
		}
		return http.StatusOK, f.records[id]
	case r.Method == http.MethodPut && rec.Path == "/customers":
		var c struct {
			ID string `json:"customerId"`
		}
		if err := json.Unmarshal(rec.Body, &c); err != nil || c.ID == "" || f.records[c.ID] == nil {
			return http.StatusBadRequest, []byte(`{"message":"invalid customer"}`)
		}
		f.records[c.ID] = rec.Body
		return http.StatusOK, rec.Body
	case r.Method == http.MethodPut && rec.Path == "/customers/stage":
		var req struct {
			ID    string `json:"customerId"`
			Stage string `json:"lifecycleStage"`
		}
		if err := json.Unmarshal(rec.Body, &req); err != nil || req.ID == "" || req.Stage == "" {
			f.t.Errorf("PUT /customers/stage: body %s, want customerId and lifecycleStage", rec.Body)
			return http.StatusBadRequest, []byte(`{"message":"invalid request"}`)
		}
		if f.records[req.ID] == nil {
			return http.StatusNotFound, []byte(`{"message":"customer not found"}`)
		}
		var cur map[string]json.RawMessage
		if err := json.Unmarshal(f.records[req.ID], &cur); err != nil {
			f.t.Fatalf("stored record: %v", err)
		}
		var from string
		_ = json.Unmarshal(cur["lifecycleStage"], &from)
		order := map[string]int{"ONBOARDING": 1, "TRIAL": 2, "TRAIL": 2, "ACTIVE": 3, "OFFBOARDED": 4}
		if order[req.Stage] == 0 || order[req.Stage] <= order[from] {
			return http.StatusBadRequest, []byte(`{"message":"customer lifecycle stage cannot be updated from ` + from + ` to ` + req.Stage + `"}`)
		}
		cur["lifecycleStage"], _ = json.Marshal(req.Stage)
		f.records[req.ID], _ = json.Marshal(cur)
		return http.StatusOK, f.records[req.ID]
	}
	f.t.Errorf("unexpected Amberflo request %s", rec)
	return http.StatusNotFound, []byte(`{"message":"Not Found"}`)
}

const amberfloRecord = `{"customerId":"acct-42","customerName":"Acme","customerEmail":"billing@acme.test",` +
	`"traits":{"region":"eu"},"enabled":true,"lifecycleStage":"ACTIVE","createTime":1690000000000,` +
	`"updateTime":1700000000000,"test":false,"address":{"line1":"1 Main St","country":"US"}}`

func TestDeactivateCustomer(t *testing.T) {
	f := newAmberfloCustomers(t)
	f.records[accountID] = json.RawMessage(amberfloRecord)
	acts := amberfloActivities(t, f.URL)

	got, err := acts.DeactivateCustomer(context.Background(), activities.AmberfloInput{CustomerID: accountID})
	if err != nil {
		t.Fatalf("DeactivateCustomer: %v", err)
	}
	if got != (activities.DeactivateResult{Changed: true, Offboarded: true}) {
		t.Errorf("DeactivateCustomer = %+v, want changed and offboarded", got)
	}
	all := f.seen.list()
	var reqs []string
	for _, r := range all {
		wantAmberfloKey(t, r)
		reqs = append(reqs, r.String())
	}
	wantReqs := []string{"GET /customers/" + accountID, "PUT /customers", "GET /customers/" + accountID, "PUT /customers/stage"}
	if !slices.Equal(reqs, wantReqs) {
		t.Fatalf("requests = %q, want %q", reqs, wantReqs)
	}
	// The PUT replaces the whole record: everything as it was but enabled.
	var want map[string]any
	if err := json.Unmarshal([]byte(amberfloRecord), &want); err != nil {
		t.Fatal(err)
	}
	want["enabled"] = false
	if put := jsonBody(t, all[1]); !reflect.DeepEqual(put, want) {
		t.Errorf("PUT body = %v, want %v", put, want)
	}
	if stage := jsonBody(t, all[3]); !reflect.DeepEqual(stage, map[string]any{"customerId": accountID, "lifecycleStage": "OFFBOARDED"}) {
		t.Errorf("PUT /customers/stage body = %v, want the customer and OFFBOARDED", stage)
	}
	// The customer ends disabled and OFFBOARDED, every other field kept.
	want["lifecycleStage"] = "OFFBOARDED"
	var stored map[string]any
	if err := json.Unmarshal(f.records[accountID], &stored); err != nil || !reflect.DeepEqual(stored, want) {
		t.Errorf("stored record = %v (%v), want %v", stored, err, want)
	}

	// Again: already disabled and OFFBOARDED, nothing written.
	got, err = acts.DeactivateCustomer(context.Background(), activities.AmberfloInput{CustomerID: accountID})
	if err != nil {
		t.Fatalf("DeactivateCustomer again: %v", err)
	}
	if got != (activities.DeactivateResult{AlreadyOffboarded: true}) {
		t.Errorf("DeactivateCustomer again = %+v, want already inactive and already offboarded", got)
	}
	if puts := f.seen.to(http.MethodPut, "/customers"); len(puts) != 1 {
		t.Errorf("PUT /customers requests = %d after deactivating twice, want 1", len(puts))
	}
	if puts := f.seen.to(http.MethodPut, "/customers/stage"); len(puts) != 1 {
		t.Errorf("PUT /customers/stage requests = %d after deactivating twice, want 1", len(puts))
	}
}

// TestDeactivateCustomerStages: whatever the record's enabled and
// lifecycle stage, the customer ends disabled and OFFBOARDED, and the
// result says what this call did.
func TestDeactivateCustomerStages(t *testing.T) {
	for _, tc := range []struct {
		enabled, stage string // as JSON; "" leaves the field out
		want           activities.DeactivateResult
		wantPuts       []string
	}{
		{"true", `"ACTIVE"`, activities.DeactivateResult{Changed: true, Offboarded: true}, []string{"/customers", "/customers/stage"}},
		{"true", `"TRAIL"`, activities.DeactivateResult{Changed: true, Offboarded: true}, []string{"/customers", "/customers/stage"}},
		{"true", ``, activities.DeactivateResult{Changed: true, Offboarded: true}, []string{"/customers", "/customers/stage"}},
		{"false", `"ACTIVE"`, activities.DeactivateResult{Offboarded: true}, []string{"/customers/stage"}},
		{"true", `"OFFBOARDED"`, activities.DeactivateResult{Changed: true, AlreadyOffboarded: true}, []string{"/customers"}},
		{"false", `"OFFBOARDED"`, activities.DeactivateResult{AlreadyOffboarded: true}, nil},
	} {
		t.Run(tc.enabled+" "+tc.stage, func(t *testing.T) {
			rec := `{"customerId":"` + accountID + `","customerName":"Acme","enabled":` + tc.enabled
			if tc.stage != "" {
				rec += `,"lifecycleStage":` + tc.stage
			}
			f := newAmberfloCustomers(t)
			f.records[accountID] = json.RawMessage(rec + "}")
			acts := amberfloActivities(t, f.URL)

			got, err := acts.DeactivateCustomer(context.Background(), activities.AmberfloInput{CustomerID: accountID})
			if err != nil || got != tc.want {
				t.Errorf("DeactivateCustomer = %+v, %v; want %+v", got, err, tc.want)
			}
			var puts []string
			for _, r := range f.seen.list() {
				if r.Method == http.MethodPut {
					puts = append(puts, r.Path)
				}
			}
			if !slices.Equal(puts, tc.wantPuts) {
				t.Errorf("PUTs %q, want %q", puts, tc.wantPuts)
			}
			var stored struct {
				Enabled *bool  `json:"enabled"`
				Stage   string `json:"lifecycleStage"`
			}
			if err := json.Unmarshal(f.records[accountID], &stored); err != nil || stored.Enabled == nil || *stored.Enabled || stored.Stage != "OFFBOARDED" {
				t.Errorf("stored record %s, want enabled false and OFFBOARDED", f.records[accountID])
			}
		})
	}
}

// TestDeactivateCustomerRetried: the first attempt disabled the customer
// and then could not move its stage; Temporal's retry finishes the job
// without failing on what the first attempt did.
func TestDeactivateCustomerRetried(t *testing.T) {
	f := newAmberfloCustomers(t)
	f.records[accountID] = json.RawMessage(amberfloRecord)
	f.fail["PUT /customers/stage"] = http.StatusServiceUnavailable
	acts := amberfloActivities(t, f.URL)

	_, err := acts.DeactivateCustomer(context.Background(), activities.AmberfloInput{CustomerID: accountID})
	wantRetryable(t, err)

	delete(f.fail, "PUT /customers/stage")
	got, err := acts.DeactivateCustomer(context.Background(), activities.AmberfloInput{CustomerID: accountID})
	if err != nil || got != (activities.DeactivateResult{Offboarded: true}) {
		t.Errorf("retry = %+v, %v; want offboarded (already inactive), no error", got, err)
	}
	if puts := f.seen.to(http.MethodPut, "/customers"); len(puts) != 1 {
		t.Errorf("PUT /customers requests = %d, want 1", len(puts))
	}
}

// TestDeactivateCustomerOffboardRefused: Amberflo refuses the stage (4xx)
// after the customer was disabled. That is not silent: a non-retryable
// error of its own type, which says the customer was deactivated and that
// the stage was not moved.
func TestDeactivateCustomerOffboardRefused(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusForbidden} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			f := newAmberfloCustomers(t)
			f.records[accountID] = json.RawMessage(amberfloRecord)
			f.fail["PUT /customers/stage"] = status
			acts := amberfloActivities(t, f.URL)

			got, err := acts.DeactivateCustomer(context.Background(), activities.AmberfloInput{CustomerID: accountID})
			if got != (activities.DeactivateResult{}) {
				t.Errorf("result = %+v with the error, want none", got)
			}
			wantNonRetryable(t, err, activities.ErrAmberfloOffboardRejected)
			for _, part := range []string{"deactivated", "OFFBOARDED", "PUT /customers/stage", strconv.Itoa(status)} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not say %q", err, part)
				}
			}
		})
	}
}

func TestDeactivateCustomerErrors(t *testing.T) {
	for _, tc := range []struct {
		method    string
		status    int
		retryable bool
	}{
		{http.MethodGet, http.StatusForbidden, false},
		{http.MethodGet, http.StatusInternalServerError, true},
		{http.MethodPut, http.StatusBadRequest, false},
		{http.MethodPut, http.StatusServiceUnavailable, true},
		{http.MethodPut, http.StatusTooManyRequests, true},
	} {
		t.Run(tc.method+" "+strconv.Itoa(tc.status), func(t *testing.T) {
			f := newAmberfloCustomers(t)
			f.records[accountID] = json.RawMessage(amberfloRecord)
			f.fail[tc.method] = tc.status
			acts := amberfloActivities(t, f.URL)
			got, err := acts.DeactivateCustomer(context.Background(), activities.AmberfloInput{CustomerID: accountID})
			if got != (activities.DeactivateResult{}) {
				t.Errorf("result = %+v with the error, want none", got)
			}
			if tc.retryable {
				wantRetryable(t, err)
			} else {
				wantNonRetryable(t, err, activities.ErrAmberfloRejected)
			}
			if tc.method == http.MethodGet {
				if puts := f.seen.to(http.MethodPut, "/customers"); len(puts) != 0 {
					t.Errorf("wrote the customer after a failed read: %v", puts)
				}
			}
		})
	}
}

// ---- ops alerts ----

func alertActivities(t *testing.T, baseURL string) *activities.Activities {
	t.Helper()
	a, err := notify.NewAlerter(notify.AlertConfig{WebhookURL: baseURL + slackHookPath, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("notify.NewAlerter: %v", err)
	}
	return &activities.Activities{Alerts: a, Log: quietLogger()}
}

func alertInput() activities.AlertInput {
	return activities.AlertInput{
		Key:              "alert/recovery-" + customerID + "/suspend-rejected/1",
		Severity:         "critical",
		Title:            "Control plane rejected suspend",
		Text:             "The control plane answered 403; recovery is paused for an operator.",
		CustomerID:       accountID,
		StripeCustomerID: customerID,
		WorkflowID:       "recovery-" + customerID,
		Fields:           []string{"Amount due", "49.00 USD", "Attempt", "3"},
	}
}

func TestAlert(t *testing.T) {
	p := newPeer(t, answer{http.StatusOK, "ok"})
	acts := alertActivities(t, p.URL)
	in := alertInput()
	got, err := acts.Alert(context.Background(), in)
	if err != nil {
		t.Fatalf("Alert: %v", err)
	}
	if got.DryRun {
		t.Error("Alert reported a dry run with a webhook configured")
	}
	r := p.only(t)
	if r.Method != http.MethodPost || r.Path != slackHookPath {
		t.Errorf("request = %s, want POST %s", r, slackHookPath)
	}
	if r.IdempotencyKey != in.Key {
		t.Errorf("Idempotency-Key = %q, want %q", r.IdempotencyKey, in.Key)
	}
	body := jsonBody(t, r)
	if text, _ := body["text"].(string); !strings.Contains(text, in.Title) || !strings.Contains(text, "CRITICAL") {
		t.Errorf("fallback text = %q, want the severity and the title", text)
	}
	if blocks, _ := body["blocks"].([]any); len(blocks) == 0 {
		t.Errorf("body has no blocks: %s", r.Body)
	}
	for _, s := range []string{in.Text, accountID, customerID, in.WorkflowID, "Amount due", "49.00 USD", "Attempt", in.Key} {
		if !strings.Contains(string(r.Body), s) {
			t.Errorf("alert body lacks %q: %s", s, r.Body)
		}
	}
}

func TestAlertErrors(t *testing.T) {
	for _, tc := range []struct {
		status    int
		body      string
		retryable bool
	}{
		{http.StatusBadRequest, "invalid_payload", false},
		{http.StatusForbidden, "invalid_token", false},
		{http.StatusNotFound, "no_service", false},
		{http.StatusTooManyRequests, "rate_limited", true},
		{http.StatusInternalServerError, "rollup_error", true},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			p := newPeer(t, answer{tc.status, tc.body})
			acts := alertActivities(t, p.URL)
			_, err := acts.Alert(context.Background(), alertInput())
			if tc.retryable {
				wantRetryable(t, err)
			} else {
				wantNonRetryable(t, err, activities.ErrNotifyRejected)
			}
			if r := p.only(t); r.IdempotencyKey != alertInput().Key {
				t.Errorf("Idempotency-Key = %q, want %q", r.IdempotencyKey, alertInput().Key)
			}
			if strings.Contains(err.Error(), slackHookPath) {
				t.Errorf("error shows the webhook URL, a credential: %v", err)
			}
		})
	}
}

func TestAlertInvalidNotSent(t *testing.T) {
	p := newPeer(t, answer{http.StatusOK, "ok"})
	acts := alertActivities(t, p.URL)
	in := alertInput()
	in.Severity = "urgent"
	_, err := acts.Alert(context.Background(), in)
	wantNonRetryable(t, err, activities.ErrNotifyRejected)
	if all := p.seen.list(); len(all) != 0 {
		t.Errorf("requests = %v, want none", all)
	}
}

// ---- customer notices ----

func noticeActivities(t *testing.T, baseURL string) *activities.Activities {
	t.Helper()
	n, err := notify.NewNoticeSender(notify.NoticeConfig{URL: baseURL + "/mailer/notices", Secret: noticeSecret, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("notify.NewNoticeSender: %v", err)
	}
	return &activities.Activities{Notices: n, Log: quietLogger()}
}

func noticeInput() activities.NoticeInput {
	next := time.Date(2025, 3, 17, 15, 0, 0, 0, time.UTC)
	deadline := time.Date(2025, 3, 28, 15, 0, 0, 0, time.UTC)
	return activities.NoticeInput{
		Key:              "notice/recovery-" + customerID + "/payment_retry_failed/2",
		Type:             "payment_retry_failed",
		CustomerID:       accountID,
		StripeCustomerID: customerID,
		Stage:            "past_due",
		AmountDue:        4900,
		Currency:         "usd",
		InvoiceURL:       "https://invoice.stripe.com/i/acct_test/test",
		CardBrand:        "visa",
		CardLast4:        "4242",
		CardExpMonth:     4,
		CardExpYear:      2026,
		NextActionAt:     &next,
		Deadline:         &deadline,
		Reason:           "insufficient_funds",
		CreatedAt:        time.Date(2025, 3, 14, 15, 0, 0, 0, time.UTC),
	}
}

func TestNotice(t *testing.T) {
	p := newPeer(t, answer{http.StatusAccepted, `{}`})
	acts := noticeActivities(t, p.URL)
	in := noticeInput()
	got, err := acts.Notice(context.Background(), in)
	if err != nil {
		t.Fatalf("Notice: %v", err)
	}
	if got.DryRun {
		t.Error("Notice reported a dry run with a mailer configured")
	}
	r := p.only(t)
	if r.Method != http.MethodPost || r.Path != "/mailer/notices" {
		t.Errorf("request = %s, want POST /mailer/notices", r)
	}
	if r.IdempotencyKey != in.Key {
		t.Errorf("Idempotency-Key = %q, want %q", r.IdempotencyKey, in.Key)
	}
	wantSigned(t, r, sig.KindCustomerNotice, noticeSecret)
	want := map[string]any{
		"id": in.Key, "type": "payment_retry_failed", "customer_id": accountID, "stripe_customer_id": customerID,
		"stage": "past_due", "amount_due": 4900.0, "currency": "usd", "invoice_url": in.InvoiceURL,
		// A Stripe hosted invoice page is where the customer pays; no
		// PUBLIC_URL here, so no portal link, and the notice says so.
		"pay_url": in.InvoiceURL, "update_payment_method_url": "", "links_missing_reason": "not_configured",
		"card":           map[string]any{"brand": "visa", "last4": "4242", "exp_month": 4.0, "exp_year": 2026.0},
		"next_action_at": "2025-03-17T15:00:00Z", "deadline": "2025-03-28T15:00:00Z",
		"reason": "insufficient_funds", "created_at": "2025-03-14T15:00:00Z",
	}
	if body := jsonBody(t, r); !reflect.DeepEqual(body, want) {
		t.Errorf("body = %v\nwant %v", body, want)
	}
}

func TestNoticeWithoutCard(t *testing.T) {
	p := newPeer(t, answer{http.StatusOK, `{}`})
	acts := noticeActivities(t, p.URL)
	in := noticeInput()
	in.Type = "payment_method_missing"
	in.CardBrand, in.CardLast4, in.CardExpMonth, in.CardExpYear = "", "", 0, 0
	if _, err := acts.Notice(context.Background(), in); err != nil {
		t.Fatalf("Notice: %v", err)
	}
	body := jsonBody(t, p.only(t))
	if card, ok := body["card"]; ok {
		t.Errorf("card = %v for a notice without one, want it left out", card)
	}
	if body["type"] != "payment_method_missing" {
		t.Errorf("type = %v, want payment_method_missing", body["type"])
	}
}

func TestNoticeAnswers(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   string // ok, rejected, retryable
	}{
		{http.StatusOK, "ok"},
		{http.StatusConflict, "ok"}, // already delivered
		{http.StatusBadRequest, "rejected"},
		{http.StatusUnauthorized, "rejected"},
		{http.StatusUnprocessableEntity, "rejected"},
		{http.StatusTooManyRequests, "retryable"},
		{http.StatusServiceUnavailable, "retryable"},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			p := newPeer(t, answer{tc.status, `{"error":"x"}`})
			acts := noticeActivities(t, p.URL)
			in := noticeInput()
			got, err := acts.Notice(context.Background(), in)
			switch tc.want {
			case "ok":
				if err != nil || got != (activities.NotifyResult{}) {
					t.Errorf("Notice = %+v, %v; want sent", got, err)
				}
			case "rejected":
				wantNonRetryable(t, err, activities.ErrNotifyRejected)
			case "retryable":
				wantRetryable(t, err)
			}
			if r := p.only(t); r.IdempotencyKey != in.Key {
				t.Errorf("Idempotency-Key = %q, want %q", r.IdempotencyKey, in.Key)
			}
		})
	}
}

// ---- dry runs ----

// TestIntegrationDryRuns checks that each activity whose client is nil
// says it ran dry and calls nothing, while the other clients are live.
func TestIntegrationDryRuns(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func(*activities.Activities) (dryRun bool, err error)
	}{
		{"LatestInvoice", func(a *activities.Activities) (bool, error) {
			a.Amberflo = nil
			r, err := a.LatestInvoice(ctx, activities.AmberfloInput{CustomerID: accountID})
			return r.DryRun && !r.Found && !r.Paid, err
		}},
		{"DeactivateCustomer", func(a *activities.Activities) (bool, error) {
			a.Amberflo = nil
			r, err := a.DeactivateCustomer(ctx, activities.AmberfloInput{CustomerID: accountID})
			return r.DryRun && !r.Changed, err
		}},
		{"ControlPlane", func(a *activities.Activities) (bool, error) {
			a.Control = nil
			r, err := a.ControlPlane(ctx, controlPlaneInput("suspend"))
			return r.DryRun && !r.AlreadyApplied, err
		}},
		{"Alert", func(a *activities.Activities) (bool, error) {
			a.Alerts = nil
			r, err := a.Alert(ctx, alertInput())
			return r.DryRun, err
		}},
		{"Notice", func(a *activities.Activities) (bool, error) {
			a.Notices = nil
			r, err := a.Notice(ctx, noticeInput())
			return r.DryRun, err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, seen := counter(t)
			dry, err := tc.run(liveExcept(t, srv.URL))
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if !dry {
				t.Errorf("%s did not report a dry run", tc.name)
			}
			if all := seen.list(); len(all) != 0 {
				t.Errorf("requests = %v, want none", all)
			}
		})
	}
}

// TestDisableCustomer: the deactivation step alone. It replaces the whole
// record with only enabled changed, and leaves the lifecycle stage where
// it was: the move to OFFBOARDED is decided later, on fresh state.
func TestDisableCustomer(t *testing.T) {
	f := newAmberfloCustomers(t)
	f.records[accountID] = json.RawMessage(amberfloRecord)
	acts := amberfloActivities(t, f.URL)

	got, err := acts.DisableCustomer(context.Background(), activities.AmberfloInput{CustomerID: accountID})
	if err != nil || got != (activities.DisableResult{Changed: true}) {
		t.Fatalf("DisableCustomer = %+v, %v; want changed", got, err)
	}
	var reqs []string
	for _, r := range f.seen.list() {
		wantAmberfloKey(t, r)
		reqs = append(reqs, r.String())
	}
	if want := []string{"GET /customers/" + accountID, "PUT /customers"}; !slices.Equal(reqs, want) {
		t.Fatalf("requests = %q, want %q (no stage move)", reqs, want)
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(amberfloRecord), &want); err != nil {
		t.Fatal(err)
	}
	want["enabled"] = false // and lifecycleStage still ACTIVE
	var stored map[string]any
	if err := json.Unmarshal(f.records[accountID], &stored); err != nil || !reflect.DeepEqual(stored, want) {
		t.Errorf("stored record = %v (%v), want %v", stored, err, want)
	}

	// Again (Temporal's retry after a lost answer): already disabled,
	// nothing written.
	got, err = acts.DisableCustomer(context.Background(), activities.AmberfloInput{CustomerID: accountID})
	if err != nil || got != (activities.DisableResult{}) {
		t.Errorf("DisableCustomer again = %+v, %v; want already inactive", got, err)
	}
	if puts := f.seen.to(http.MethodPut, "/customers"); len(puts) != 1 {
		t.Errorf("PUT /customers requests = %d after disabling twice, want 1", len(puts))
	}
}

func TestDisableCustomerErrors(t *testing.T) {
	for _, tc := range []struct {
		method    string
		status    int
		retryable bool
	}{
		{http.MethodGet, http.StatusForbidden, false},
		{http.MethodGet, http.StatusServiceUnavailable, true},
		{http.MethodPut, http.StatusBadRequest, false},
		{http.MethodPut, http.StatusTooManyRequests, true},
	} {
		t.Run(tc.method+" "+strconv.Itoa(tc.status), func(t *testing.T) {
			f := newAmberfloCustomers(t)
			f.records[accountID] = json.RawMessage(amberfloRecord)
			f.fail[tc.method] = tc.status
			got, err := amberfloActivities(t, f.URL).DisableCustomer(context.Background(), activities.AmberfloInput{CustomerID: accountID})
			if got != (activities.DisableResult{}) {
				t.Errorf("result = %+v with the error, want none", got)
			}
			if tc.retryable {
				wantRetryable(t, err)
			} else {
				wantNonRetryable(t, err, activities.ErrAmberfloRejected)
			}
			if f.seen.to(http.MethodPut, "/customers/stage") != nil {
				t.Errorf("the stage was written by the deactivation step")
			}
		})
	}
	t.Run("no such customer", func(t *testing.T) {
		f := newAmberfloCustomers(t) // answers {} for every customer, as Amberflo does
		_, err := amberfloActivities(t, f.URL).DisableCustomer(context.Background(), activities.AmberfloInput{CustomerID: accountID})
		wantNonRetryable(t, err, activities.ErrAmberfloRejected)
	})
}

// TestOffboardCustomer: the stage move alone, forward only, whatever the
// record's enabled; already OFFBOARDED is success without a write, and
// the record's other fields are Amberflo's to keep (PUT /customers/stage
// carries the ID and the stage only).
func TestOffboardCustomer(t *testing.T) {
	for _, tc := range []struct {
		stage     string // as JSON; "" leaves the field out
		want      activities.OffboardResult
		wantWrite bool
	}{
		{`"ACTIVE"`, activities.OffboardResult{Moved: true}, true},
		{`"TRAIL"`, activities.OffboardResult{Moved: true}, true},
		{``, activities.OffboardResult{Moved: true}, true},
		{`"OFFBOARDED"`, activities.OffboardResult{}, false},
	} {
		t.Run(tc.stage, func(t *testing.T) {
			rec := `{"customerId":"` + accountID + `","customerName":"Acme","enabled":false`
			if tc.stage != "" {
				rec += `,"lifecycleStage":` + tc.stage
			}
			f := newAmberfloCustomers(t)
			f.records[accountID] = json.RawMessage(rec + "}")
			got, err := amberfloActivities(t, f.URL).OffboardCustomer(context.Background(), activities.AmberfloInput{CustomerID: accountID})
			if err != nil || got != tc.want {
				t.Fatalf("OffboardCustomer = %+v, %v; want %+v", got, err, tc.want)
			}
			puts := f.seen.to(http.MethodPut, "/customers/stage")
			if (len(puts) == 1) != tc.wantWrite || f.seen.to(http.MethodPut, "/customers") != nil {
				t.Fatalf("PUT /customers/stage %d, PUT /customers %d; want the stage written %v, the record never", len(puts), len(f.seen.to(http.MethodPut, "/customers")), tc.wantWrite)
			}
			if tc.wantWrite {
				if body := jsonBody(t, puts[0]); !reflect.DeepEqual(body, map[string]any{"customerId": accountID, "lifecycleStage": "OFFBOARDED"}) {
					t.Errorf("PUT /customers/stage body = %v, want the customer and OFFBOARDED", body)
				}
			}
			var stored struct {
				Enabled *bool  `json:"enabled"`
				Stage   string `json:"lifecycleStage"`
			}
			if err := json.Unmarshal(f.records[accountID], &stored); err != nil || stored.Stage != "OFFBOARDED" || stored.Enabled == nil || *stored.Enabled {
				t.Errorf("stored record %s, want OFFBOARDED and still disabled", f.records[accountID])
			}
		})
	}
}

// TestOffboardCustomerRefusedAndUnanswered: a refusal of the stage is not
// silent (a non-retryable error of its own type saying the stage was not
// moved); no answer is retried.
func TestOffboardCustomerRefusedAndUnanswered(t *testing.T) {
	for _, tc := range []struct {
		status    int
		retryable bool
	}{
		{http.StatusForbidden, false},
		{http.StatusUnprocessableEntity, false},
		{http.StatusServiceUnavailable, true},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			f := newAmberfloCustomers(t)
			f.records[accountID] = json.RawMessage(amberfloRecord)
			f.fail["PUT /customers/stage"] = tc.status
			got, err := amberfloActivities(t, f.URL).OffboardCustomer(context.Background(), activities.AmberfloInput{CustomerID: accountID})
			if got != (activities.OffboardResult{}) {
				t.Errorf("result = %+v with the error, want none", got)
			}
			if tc.retryable {
				wantRetryable(t, err)
				return
			}
			wantNonRetryable(t, err, activities.ErrAmberfloOffboardRejected)
			for _, part := range []string{"not moved to OFFBOARDED", "PUT /customers/stage", strconv.Itoa(tc.status)} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not say %q", err, part)
				}
			}
		})
	}
}
