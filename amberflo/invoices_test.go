package amberflo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"dunning/internal/httpx"
)

var (
	apr1 = time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	may1 = time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	jun1 = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	jul1 = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
)

// monthJSON is one invoice of the /all list as Amberflo sends it.
func monthJSON(start, end time.Time, status PaymentStatus, total float64) string {
	return fmt.Sprintf(`{
		"invoiceUri": "payments/billing/invoices/acme/%s",
		"invoiceKey": {"customerId": "acme", "productId": "1", "year": %d, "month": %d},
		"invoiceStartTimeInSeconds": %d,
		"invoiceEndTimeInSeconds": %d,
		"planName": "Usage Pro",
		"totalBill": {"itemsPrice": %[6]g, "fixedPrice": 0, "totalPrice": %[6]g, "totalDiscount": 0},
		"paymentStatus": %q,
		"currency": "USD",
		"somethingNew": {"nested": [1, null]}
	}`, start.Format("2006-01"), start.Year(), start.Month(), start.Unix(), end.Unix(), total, status)
}

func TestInvoices(t *testing.T) {
	f := newFake(t)
	// Newest first, as Amberflo lists them: the open current month, a
	// null entry, the last two months settled, and an invoice without a
	// period.
	f.all["acme"] = "[" + strings.Join([]string{
		monthJSON(jun1, jul1, PaymentPending, 12.5),
		"null",
		monthJSON(may1, jun1, PaymentSettled, 49),
		monthJSON(apr1, may1, PaymentNotNeeded, 0),
		`{"invoiceUri": "payments/billing/invoices/acme/draft", "paymentStatus": "UNKNOWN", "totalBill": null}`,
	}, ",") + "]"
	c := f.client(Config{})

	got, err := c.Invoices(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := []Invoice{
		{CustomerID: "acme", URI: "payments/billing/invoices/acme/2025-06", TotalPrice: 12.5, TotalKnown: true, PaymentStatus: PaymentPending,
			PlanName: "Usage Pro", Start: jun1, End: jul1},
		{CustomerID: "acme", URI: "payments/billing/invoices/acme/2025-05", TotalPrice: 49, TotalKnown: true, PaymentStatus: PaymentSettled,
			PlanName: "Usage Pro", Start: may1, End: jun1},
		{CustomerID: "acme", URI: "payments/billing/invoices/acme/2025-04", TotalKnown: true, PaymentStatus: PaymentNotNeeded,
			PlanName: "Usage Pro", Start: apr1, End: may1},
		{CustomerID: "acme", URI: "payments/billing/invoices/acme/draft", PaymentStatus: PaymentUnknown},
	}
	for i := range got {
		if i < 3 && !strings.Contains(string(got[i].Key), `"customerId": "acme"`) {
			t.Errorf("invoice %d Key = %s, want the invoiceKey as sent", i, got[i].Key)
		}
		got[i].Key = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Invoices =\n %+v\nwant\n %+v", got, want)
	}
	if got[1].Paid() != true || got[0].Paid() || !got[2].Paid() {
		t.Errorf("Paid: %v %v %v, want pending unpaid, settled and not needed paid", got[0].Paid(), got[1].Paid(), got[2].Paid())
	}
	if log := f.requests(); !slices.Equal(log, []string{"GET /payments/billing/customer-product-invoice/all"}) {
		t.Errorf("requests %q, want one GET of the list", log)
	}
}

func TestInvoicesProductID(t *testing.T) {
	f := newFake(t)
	f.productID = "42"
	f.all["a&b=c d"] = "[" + monthJSON(may1, jun1, PaymentFailed, 9.5) + "]"
	c := f.client(Config{ProductID: "42"})
	got, err := c.Invoices(context.Background(), "a&b=c d")
	if err != nil || len(got) != 1 || got[0].CustomerID != "a&b=c d" || got[0].PaymentStatus != PaymentFailed {
		t.Errorf("Invoices = %+v, %v; want the one failed invoice", got, err)
	}
}

func TestInvoicesNone(t *testing.T) {
	for _, tc := range append(nothingThere, []struct {
		name string
		body *string
	}{{"empty array", ptr("[]")}, {"only nulls", ptr("[null, null]")}}...) {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			if tc.body != nil {
				f.all["acme"] = *tc.body
			}
			got, err := f.client(Config{}).Invoices(context.Background(), "acme")
			if err != nil || len(got) != 0 {
				t.Errorf("Invoices = %+v, %v; want an empty list and no error", got, err)
			}
		})
	}
}

// An answer that is not a list of invoices is not "no invoices": it is a
// permanent error, so that the workflow stops for an operator.
func TestInvoicesUnreadable(t *testing.T) {
	for _, body := range []string{
		`{}`,
		`{"invoices": []}`,
		`<html>Gateway says hello</html>`,
		`[{"paymentStatus": 7}]`,
		`[1, 2]`,
		`[{"invoiceStartTimeInSeconds": "2025-05-01"}]`,
	} {
		t.Run(body, func(t *testing.T) {
			f := newFake(t)
			f.all["acme"] = body
			got, err := f.client(Config{}).Invoices(context.Background(), "acme")
			var ae *httpx.APIError
			if !errors.As(err, &ae) || ae.StatusCode != http.StatusOK || got != nil {
				t.Fatalf("Invoices = %+v, %v; want Amberflo's unreadable 200", got, err)
			}
			if errors.Is(err, ErrNotFound) || !httpx.IsPermanent(err) || httpx.IsRetryable(err) {
				t.Errorf("err = %v: want permanent only", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "unreadable answer") || !strings.Contains(msg, "decode invoices") {
				t.Errorf("err %q does not say the list was unreadable", msg)
			}
		})
	}
}

func TestInvoicesErrors(t *testing.T) {
	for _, tc := range []struct {
		status    int
		retryable bool
	}{
		{http.StatusServiceUnavailable, true},
		{http.StatusTooManyRequests, true},
		{http.StatusInternalServerError, true},
		{http.StatusUnauthorized, false},
		{http.StatusBadRequest, false},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			f := newFake(t)
			f.fail = func(w http.ResponseWriter, r *http.Request) bool {
				w.WriteHeader(tc.status)
				io.WriteString(w, `{"message":"no"}`)
				return true
			}
			_, err := f.client(Config{}).Invoices(context.Background(), "acme")
			var ae *httpx.APIError
			if !errors.As(err, &ae) || ae.StatusCode != tc.status || httpx.IsRetryable(err) != tc.retryable || httpx.IsPermanent(err) == tc.retryable {
				t.Errorf("err = %v, want status %d retryable %v", err, tc.status, tc.retryable)
			}
			if !strings.Contains(err.Error(), `list invoices of customer "acme"`) {
				t.Errorf("err %q does not say what was being done", err)
			}
		})
	}
}

func TestInvoicesInvalidID(t *testing.T) {
	f := newFake(t)
	c := f.client(Config{})
	for _, id := range []string{"", ".", ".."} {
		if _, err := c.Invoices(context.Background(), id); err == nil || !httpx.IsPermanent(err) {
			t.Errorf("Invoices(%q): err = %v, want permanent", id, err)
		}
	}
	if log := f.requests(); len(log) != 0 {
		t.Errorf("requests %q, want none", log)
	}
}

func TestInvoiceFor(t *testing.T) {
	inv := func(start, end time.Time, s PaymentStatus) Invoice {
		return Invoice{URI: start.Format("2006-01") + "/" + end.Format("01-02"), PaymentStatus: s, Start: start, End: end}
	}
	apr := inv(apr1, may1, PaymentSettled)
	may := inv(may1, jun1, PaymentSettled)
	jun := inv(jun1, jul1, PaymentFailed) // newer, unpaid
	noEnd := Invoice{URI: "no end", Start: jul1}
	noStart := Invoice{URI: "no start", End: jul1.AddDate(0, 1, 0)}
	all := []Invoice{jun, noEnd, noStart, may, apr}
	early := inv(may1, jun1.Add(-time.Second), PaymentPending) // an inclusive end
	la := time.FixedZone("PDT", -7*3600)

	for _, tc := range []struct {
		name       string
		invoices   []Invoice
		start, end time.Time
		want       *Invoice
	}{
		{"the asked month", all, may1, jun1, &may},
		{"an older month", all, apr1, may1, &apr},
		{"the newest month", all, jun1, jul1, &jun},
		{"a month in another time zone", all, time.Date(2025, 5, 1, 0, 0, 0, 0, la), time.Date(2025, 6, 1, 0, 0, 0, 0, la), &may},
		{"Amberflo's end one second early", []Invoice{early}, may1, jun1, &early},
		{"one day", all, may1.AddDate(0, 0, 9), may1.AddDate(0, 0, 10), &may},
		{"middle on a boundary goes to the later", all, time.Date(2025, 4, 16, 0, 0, 0, 0, time.UTC), time.Date(2025, 5, 16, 0, 0, 0, 0, time.UTC), &may},
		{"oldest first", []Invoice{apr, may, jun}, may1, jun1, &may},
		{"only invoices without a period", all, jul1, jul1.AddDate(0, 1, 0), nil},
		{"no invoice of that month", all, apr1.AddDate(0, -1, 0), apr1, nil},
		{"zero-length period", all, may1.AddDate(0, 0, 14), may1.AddDate(0, 0, 14), nil},
		{"period backwards", all, jun1, may1, nil},
		{"no start", all, time.Time{}, jun1, nil},
		{"no period", all, time.Time{}, time.Time{}, nil},
		{"no invoices", nil, may1, jun1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := InvoiceFor(tc.invoices, tc.start, tc.end)
			switch {
			case tc.want == nil && (ok || !reflect.DeepEqual(got, Invoice{})):
				t.Errorf("InvoiceFor = %+v, %v; want none", got, ok)
			case tc.want != nil && (!ok || !reflect.DeepEqual(got, *tc.want)):
				t.Errorf("InvoiceFor = %+v, %v; want %+v", got, ok, *tc.want)
			}
		})
	}
}

// What a payment status says of the money, for every status Amberflo
// documents, as documented (upper case) and as its TypeScript SDK sends
// it (lower case); anything else is unreadable, never unpaid.
func TestPaymentStatusState(t *testing.T) {
	for _, tc := range []struct {
		status PaymentStatus
		want   PaymentState
	}{
		{"SETTLED", StatePaid},
		{"settled", StatePaid},
		{"NOT_NEEDED", StatePaid},
		{"not_needed", StatePaid},
		{" Settled\n", StatePaid},
		{"FAILED", StateUnpaid},
		{"failed", StateUnpaid},
		{"REQUIRES_ACTION", StateUnpaid},
		{"requires_action", StateUnpaid},
		{"PRE_PAYMENT", StateUnpaid},
		{"pre_payment", StateUnpaid},
		{"PENDING", StateInFlight},
		{"pending", StateInFlight},
		{"UNKNOWN", StateUnknown},
		{"unknown", StateUnknown},
		{"", StateUnreadable},
		{"  ", StateUnreadable},
		{"PARTIALLY_SETTLED", StateUnreadable},
		{"PAID", StateUnreadable},
		{"NOT NEEDED", StateUnreadable},
		{"null", StateUnreadable},
	} {
		t.Run(string(tc.status), func(t *testing.T) {
			if got := tc.status.State(); got != tc.want {
				t.Errorf("State() = %q, want %q", got, tc.want)
			}
			if got := tc.status.Paid(); got != (tc.want == StatePaid) {
				t.Errorf("Paid() = %v, want %v", got, tc.want == StatePaid)
			}
		})
	}
}

// sentInvoice has Amberflo send customer acme's invoice of May 2025,
// with the raw JSON members given ("" ones left out), as its latest
// invoice and as the only one in its list, and returns what the client
// reads each way ("latest", "list").
func sentInvoice(t *testing.T, members ...string) map[string]Invoice {
	t.Helper()
	body := `{"invoiceUri": "payments/billing/invoices/acme/2025-05",
		"invoiceStartTimeInSeconds": 1746057600, "invoiceEndTimeInSeconds": 1748736000`
	for _, m := range members {
		if m != "" {
			body += ", " + m
		}
	}
	body += "}"
	f := newFake(t)
	f.invoices["acme"] = body
	f.all["acme"] = "[" + body + "]"
	c := f.client(Config{})
	latest, err := c.LatestInvoice(context.Background(), "acme")
	if err != nil {
		t.Fatalf("LatestInvoice: %v", err)
	}
	list, err := c.Invoices(context.Background(), "acme")
	if err != nil || len(list) != 1 {
		t.Fatalf("Invoices = %+v, %v; want the one invoice", list, err)
	}
	return map[string]Invoice{"latest": latest, "list": list[0]}
}

// The client hands the status on as Amberflo sent it; a missing or null
// paymentStatus reads as unreadable, in the latest invoice and in the
// list alike.
func TestInvoicePaymentStatusAsSent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		member string // the raw paymentStatus member, or "" for none
		status PaymentStatus
		want   PaymentState
	}{
		{"lower-case settled", `"paymentStatus": "settled"`, "settled", StatePaid},
		{"lower-case pending", `"paymentStatus": "pending"`, "pending", StateInFlight},
		{"missing", ``, "", StateUnreadable},
		{"null", `"paymentStatus": null`, "", StateUnreadable},
		{"not documented", `"paymentStatus": "PARTIALLY_SETTLED"`, "PARTIALLY_SETTLED", StateUnreadable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for what, inv := range sentInvoice(t, `"totalBill": {"totalPrice": 49}`, tc.member) {
				if inv.PaymentStatus != tc.status || inv.State() != tc.want {
					t.Errorf("%s: status %q, state %q; want %q, %q", what, inv.PaymentStatus, inv.State(), tc.status, tc.want)
				}
			}
		})
	}
}

// The invoice's total comes as Amberflo sends it: a number, a string
// holding one, or nothing usable. None of these makes the invoice (its
// payment status) unreadable; a total that is not a number is unknown,
// never zero.
func TestInvoiceTotalAsSent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bill  string // the raw totalBill member, or "" for none
		total float64
		known bool
	}{
		{"a number", `"totalBill": {"itemsPrice": 45, "fixedPrice": 4, "totalPrice": 49.5, "totalDiscount": 0}`, 49.5, true},
		{"an integer", `"totalBill": {"totalPrice": 49}`, 49, true},
		{"zero", `"totalBill": {"totalPrice": 0}`, 0, true},
		{"a string", `"totalBill": {"totalPrice": "49.50"}`, 49.5, true},
		{"a string with spaces", `"totalBill": {"totalPrice": " 12 "}`, 12, true},
		{"an empty string", `"totalBill": {"totalPrice": ""}`, 0, false},
		{"a word", `"totalBill": {"totalPrice": "pending"}`, 0, false},
		{"null", `"totalBill": {"totalPrice": null}`, 0, false},
		{"no totalPrice", `"totalBill": {"itemsPrice": 49}`, 0, false},
		{"a null totalBill", `"totalBill": null`, 0, false},
		{"a totalBill that is a number", `"totalBill": 49`, 0, false},
		{"no totalBill", ``, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for what, inv := range sentInvoice(t, `"paymentStatus": "SETTLED"`, tc.bill) {
				if inv.TotalPrice != tc.total || inv.TotalKnown != tc.known || inv.State() != StatePaid {
					t.Errorf("%s: total %v (known %v), state %q; want %v (known %v), paid", what, inv.TotalPrice, inv.TotalKnown, inv.State(), tc.total, tc.known)
				}
			}
		})
	}
}
