package activities_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"dunning/activities"
	"dunning/internal/sig"
)

const pathAllInvoices = "/payments/billing/customer-product-invoice/all"

// amberfloInvoices is Amberflo's list of a customer's invoices, checking
// requests as the documented API does: the key (401 without it), the
// path, the query (400 otherwise). It answers status and body.
func amberfloInvoices(t *testing.T, status int, body string) (*httptest.Server, *requests) {
	t.Helper()
	seen := &requests{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := read(t, r)
		w.Header().Set("Content-Type", "application/json")
		wantQuery := url.Values{"customerId": {accountID}, "productId": {"1"}, "withPaymentStatus": {"true"}}
		switch {
		case r.Header.Get("X-API-KEY") != amberfloKey:
			t.Errorf("%s: X-API-KEY = %q, want the API key", rec, r.Header.Get("X-API-KEY"))
			rec.Status = http.StatusUnauthorized
		case r.Method != http.MethodGet || rec.Path != pathAllInvoices:
			t.Errorf("unexpected Amberflo request %s", rec)
			rec.Status = http.StatusNotFound
		case !reflect.DeepEqual(rec.Query, wantQuery):
			t.Errorf("%s: query %v, want %v", rec, rec.Query, wantQuery)
			rec.Status = http.StatusBadRequest
		}
		if rec.Status != 0 {
			seen.add(rec)
			w.WriteHeader(rec.Status)
			io.WriteString(w, `{"message":"rejected"}`)
			return
		}
		rec.Status = status
		seen.add(rec)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

// monthInvoice is one invoice of Amberflo's list for the month starting
// at start.
func monthInvoice(start time.Time, status string, total float64) string {
	end := start.AddDate(0, 1, 0)
	return fmt.Sprintf(`{"invoiceUri": "payments/billing/invoices/acct-42/%s",
		"invoiceKey": {"customerId": "acct-42", "productId": "1", "year": %d, "month": %d},
		"invoiceStartTimeInSeconds": %d, "invoiceEndTimeInSeconds": %d, "planName": "Team",
		"totalBill": {"itemPrice": %[6]g, "fixedPrice": 0, "prepaid": 0, "totalPrice": %[6]g, "totalDiscount": 0},
		"paymentStatus": %q}`, start.Format("2006-01"), start.Year(), start.Month(), start.Unix(), end.Unix(), total, status)
}

func periodInput(start, end time.Time) activities.AmberfloPeriodInput {
	return activities.AmberfloPeriodInput{CustomerID: accountID, PeriodStart: start, PeriodEnd: end}
}

func TestInvoiceForPeriod(t *testing.T) {
	// The current month still open and unpaid, May's invoice failed,
	// April's settled; a null among them, as Amberflo sometimes sends.
	list := "[" + strings.Join([]string{
		monthInvoice(jun1, "PRE_PAYMENT", 3.2), monthInvoice(may1, "FAILED", 49), "null", monthInvoice(apr1, "SETTLED", 45),
	}, ",") + "]"
	found := func(month, status string, amount float64, paid bool) activities.AmberfloInvoice {
		return activities.AmberfloInvoice{Found: true, URI: "payments/billing/invoices/acct-42/" + month,
			Amount: amount, AmountKnown: true, PaymentStatus: status, Paid: paid}
	}
	for _, tc := range []struct {
		name       string
		start, end time.Time
		want       activities.AmberfloInvoice
	}{
		{"an older settled month", apr1, may1, found("2025-04", "SETTLED", 45, true)},
		{"a failed month between", may1, jun1, found("2025-05", "FAILED", 49, false)},
		{"the open month", jun1, jun1.AddDate(0, 1, 0), found("2025-06", "PRE_PAYMENT", 3.2, false)},
		{"no invoice of that period", apr1.AddDate(0, -1, 0), apr1, activities.AmberfloInvoice{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, seen := amberfloInvoices(t, http.StatusOK, list)
			got, err := amberfloActivities(t, srv.URL).InvoiceForPeriod(context.Background(), periodInput(tc.start, tc.end))
			if err != nil {
				t.Fatalf("InvoiceForPeriod: %v", err)
			}
			if got != tc.want {
				t.Errorf("InvoiceForPeriod = %+v, want %+v", got, tc.want)
			}
			if n := len(seen.list()); n != 1 {
				t.Errorf("requests = %d, want 1", n)
			}
		})
	}
}

func TestInvoiceForPeriodAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string // none, rejected, retryable
	}{
		{"no invoices (404)", http.StatusNotFound, `{"message":"no invoices"}`, "none"},
		{"null", http.StatusOK, `null`, "none"},
		{"empty list", http.StatusOK, `[]`, "none"},
		{"invoices without periods", http.StatusOK, `[{"paymentStatus":"SETTLED","totalBill":{"totalPrice":49}}]`, "none"},
		{"a page, not a list", http.StatusOK, `<html><body>Service temporarily moved</body></html>`, "rejected"},
		{"an object, not a list", http.StatusOK, `{"invoices":[]}`, "rejected"},
		{"bad key", http.StatusForbidden, `{"message":"Forbidden"}`, "rejected"},
		{"unavailable", http.StatusServiceUnavailable, `{"message":"Service Unavailable"}`, "retryable"},
		{"rate limited", http.StatusTooManyRequests, `{"message":"Too Many Requests"}`, "retryable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, seen := amberfloInvoices(t, tc.status, tc.body)
			got, err := amberfloActivities(t, srv.URL).InvoiceForPeriod(context.Background(), periodInput(may1, jun1))
			switch tc.want {
			case "none":
				if err != nil || got != (activities.AmberfloInvoice{}) {
					t.Errorf("InvoiceForPeriod = %+v, %v; want not found and no error", got, err)
				}
			case "rejected":
				wantNonRetryable(t, err, activities.ErrAmberfloRejected)
			case "retryable":
				wantRetryable(t, err)
			}
			if tc.want != "none" && got != (activities.AmberfloInvoice{}) {
				t.Errorf("result = %+v with the error, want none: nothing is guessed", got)
			}
			if n := len(seen.list()); n != 1 {
				t.Errorf("requests = %d, want 1", n)
			}
		})
	}
}

func TestInvoiceForPeriodSlowAmberflo(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	acts := amberfloActivities(t, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	got, err := acts.InvoiceForPeriod(ctx, periodInput(may1, jun1))
	wantRetryable(t, err)
	if got != (activities.AmberfloInvoice{}) {
		t.Errorf("result = %+v with no answer, want none", got)
	}
}

// Amberflo's payment statuses, as the two activities that decide on them
// answer: each documented status as documented (upper case) and as
// Amberflo's TypeScript SDK sends it (lower case), none, null and one
// Amberflo does not document. Paid and unpaid are results; a payment in
// flight and UNKNOWN are retryable errors (asked again later, nothing
// charged or taken away meanwhile); anything else is a non-retryable
// ErrAmberfloRejected, for an operator.
func TestAmberfloPaymentStatusAnswers(t *testing.T) {
	type want struct {
		result  string // paid, unpaid, or "" for an error
		errType string // the error's type when there is no result
		says    string // in the error's text: what Amberflo answered
	}
	paid, unpaid := want{result: "paid"}, want{result: "unpaid"}
	pending := func(s string) want {
		return want{errType: activities.ErrAmberfloPending, says: "payment " + s + ", in flight"}
	}
	unknown := func(s string) want {
		return want{errType: activities.ErrAmberfloUnknown, says: "payment " + s + ", Amberflo does not know"}
	}
	rejected := func(says string) want { return want{errType: activities.ErrAmberfloRejected, says: says} }
	cases := []struct {
		name   string
		member string // the raw paymentStatus member; "" for none
		want   want
	}{
		{"SETTLED", `"paymentStatus": "SETTLED"`, paid},
		{"settled", `"paymentStatus": "settled"`, paid},
		{"NOT_NEEDED", `"paymentStatus": "NOT_NEEDED"`, paid},
		{"not_needed", `"paymentStatus": "not_needed"`, paid},
		{"FAILED", `"paymentStatus": "FAILED"`, unpaid},
		{"failed", `"paymentStatus": "failed"`, unpaid},
		{"REQUIRES_ACTION", `"paymentStatus": "REQUIRES_ACTION"`, unpaid},
		{"requires_action", `"paymentStatus": "requires_action"`, unpaid},
		{"PRE_PAYMENT", `"paymentStatus": "PRE_PAYMENT"`, unpaid},
		{"pre_payment", `"paymentStatus": "pre_payment"`, unpaid},
		{"PENDING", `"paymentStatus": "PENDING"`, pending("PENDING")},
		{"pending", `"paymentStatus": "pending"`, pending("PENDING")},
		{"UNKNOWN", `"paymentStatus": "UNKNOWN"`, unknown("UNKNOWN")},
		{"unknown", `"paymentStatus": "unknown"`, unknown("UNKNOWN")},
		{"missing", ``, rejected("no payment status")},
		{"null", `"paymentStatus": null`, rejected("no payment status")},
		{"empty", `"paymentStatus": ""`, rejected("no payment status")},
		{"not documented", `"paymentStatus": "PARTIALLY_SETTLED"`, rejected(`payment status "PARTIALLY_SETTLED"`)},
	}
	invoice := func(member string) string {
		body := `{"invoiceUri": "payments/billing/invoices/acct-42/2025-05",
			"invoiceKey": {"customerId": "acct-42", "productId": "1", "year": 2025, "month": 5},
			"invoiceStartTimeInSeconds": ` + fmt.Sprint(may1.Unix()) + `, "invoiceEndTimeInSeconds": ` + fmt.Sprint(jun1.Unix()) + `,
			"planName": "Team", "totalBill": {"itemPrice": 49, "fixedPrice": 0, "prepaid": 0, "totalPrice": 49, "totalDiscount": 0}`
		if member != "" {
			body += ", " + member
		}
		return body + "}"
	}
	calls := map[string]func(t *testing.T, body string) (activities.AmberfloInvoice, error){
		"InvoiceForPeriod": func(t *testing.T, body string) (activities.AmberfloInvoice, error) {
			srv, _ := amberfloInvoices(t, http.StatusOK, "["+body+"]")
			return amberfloActivities(t, srv.URL).InvoiceForPeriod(context.Background(), periodInput(may1, jun1))
		},
		"LatestInvoice": func(t *testing.T, body string) (activities.AmberfloInvoice, error) {
			p := newPeer(t, answer{http.StatusOK, body})
			return amberfloActivities(t, p.URL).LatestInvoice(context.Background(), activities.AmberfloInput{CustomerID: accountID})
		},
	}
	for name, call := range calls {
		for _, tc := range cases {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				got, err := call(t, invoice(tc.member))
				if tc.want.result != "" {
					if err != nil {
						t.Fatalf("%s: %v; want the invoice, %s", name, err, tc.want.result)
					}
					status := strings.ToUpper(strings.Trim(strings.TrimPrefix(tc.member, `"paymentStatus": `), `"`))
					wantInv := activities.AmberfloInvoice{Found: true, URI: "payments/billing/invoices/acct-42/2025-05",
						Amount: 49, AmountKnown: true, PaymentStatus: status, Paid: tc.want.result == "paid"}
					if got != wantInv {
						t.Errorf("%s = %+v, want %+v", name, got, wantInv)
					}
					return
				}
				if got != (activities.AmberfloInvoice{}) {
					t.Errorf("result = %+v with the error, want none: nothing is guessed", got)
				}
				if tc.want.errType == activities.ErrAmberfloRejected {
					wantNonRetryable(t, err, activities.ErrAmberfloRejected)
				} else {
					wantRetryable(t, err)
					var appErr *temporal.ApplicationError
					if !errors.As(err, &appErr) || appErr.Type() != tc.want.errType {
						t.Errorf("err = %v (%T), want a retryable application error of type %s", err, err, tc.want.errType)
					}
				}
				for _, s := range []string{tc.want.says, "payments/billing/invoices/acct-42/2025-05", "not charged, nothing taken away"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("err %q does not say %q", err, s)
					}
				}
			})
		}
	}
}

// ---- notices the mailer would refuse, repaired ----

func TestNoticeRepaired(t *testing.T) {
	link := noticeInput().InvoiceURL
	for _, tc := range []struct {
		name   string
		change func(*activities.NoticeInput)
		link   string // the invoice_url sent: "" when left out
		card   bool   // whether the card block is sent
	}{
		{"an invoice path", func(in *activities.NoticeInput) { in.InvoiceURL = "/invoices/x" }, "", true},
		{"Amberflo's invoice URI", func(in *activities.NoticeInput) { in.InvoiceURL = "payments/billing/invoices/acct-42/2025-06" }, "", true},
		{"no host", func(in *activities.NoticeInput) { in.InvoiceURL = "https:///i/acct_test/test" }, "", true},
		{"not http", func(in *activities.NoticeInput) { in.InvoiceURL = "javascript:alert(1)" }, "", true},
		{"ftp", func(in *activities.NoticeInput) { in.InvoiceURL = "ftp://invoice.example/x.pdf" }, "", true},
		{"unparsable", func(in *activities.NoticeInput) { in.InvoiceURL = "https://invoice.stripe.com/%zz" }, "", true},
		{"plain http kept", func(in *activities.NoticeInput) { in.InvoiceURL = "http://billing.example/inv/1" }, "http://billing.example/inv/1", true},
		{"three digits", func(in *activities.NoticeInput) { in.CardLast4 = "424" }, link, false},
		{"a whole card number", func(in *activities.NoticeInput) { in.CardLast4 = "4242424242424242" }, link, false},
		{"letters", func(in *activities.NoticeInput) { in.CardLast4 = "42a2" }, link, false},
		{"wide digits", func(in *activities.NoticeInput) { in.CardLast4 = "４２４２" }, link, false},
		{"month 13", func(in *activities.NoticeInput) { in.CardExpMonth = 13 }, link, false},
		{"both", func(in *activities.NoticeInput) { in.InvoiceURL, in.CardLast4 = "/invoices/x", "xx" }, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, answer{http.StatusAccepted, `{}`})
			in := noticeInput()
			tc.change(&in)
			got, err := noticeActivities(t, p.URL).Notice(context.Background(), in)
			if err != nil || got.DryRun {
				t.Fatalf("Notice = %+v, %v; want it delivered", got, err)
			}
			r := p.only(t)
			wantSigned(t, r, sig.KindCustomerNotice, noticeSecret)
			body := jsonBody(t, r)
			if body["invoice_url"] != tc.link {
				t.Errorf("invoice_url = %v, want %q", body["invoice_url"], tc.link)
			}
			if card, ok := body["card"]; ok != tc.card {
				t.Errorf("card = %v, want sent %v", card, tc.card)
			}
			if strings.Contains(string(r.Body), "4242424242424242") {
				t.Errorf("the notice carries what may be a card number: %s", r.Body)
			}
			// Everything else as asked.
			for k, v := range map[string]any{"id": in.Key, "type": in.Type, "customer_id": accountID, "amount_due": 4900.0,
				"deadline": "2025-03-28T15:00:00Z", "reason": in.Reason} {
				if body[k] != v {
					t.Errorf("%s = %v, want %v", k, body[k], v)
				}
			}
		})
	}
}
