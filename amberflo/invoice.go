package amberflo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
)

// PaymentStatus is the payment state of an Amberflo invoice, as Amberflo
// sent it. Amberflo documents the values below in upper case; its own
// TypeScript SDK sends them in lower case, so they are compared without
// regard to case (State).
type PaymentStatus string

const (
	PaymentPrePayment     PaymentStatus = "PRE_PAYMENT"
	PaymentRequiresAction PaymentStatus = "REQUIRES_ACTION"
	PaymentPending        PaymentStatus = "PENDING"
	PaymentFailed         PaymentStatus = "FAILED"
	PaymentSettled        PaymentStatus = "SETTLED"
	PaymentNotNeeded      PaymentStatus = "NOT_NEEDED"
	PaymentUnknown        PaymentStatus = "UNKNOWN"
)

// PaymentState is what a payment status says of the invoice's money.
type PaymentState string

const (
	// StatePaid: nothing is owed (SETTLED, NOT_NEEDED).
	StatePaid PaymentState = "paid"
	// StateUnpaid: the money is owed (FAILED, REQUIRES_ACTION,
	// PRE_PAYMENT).
	StateUnpaid PaymentState = "unpaid"
	// StateInFlight: a payment is under way (PENDING); it is neither a
	// failure nor unpaid.
	StateInFlight PaymentState = "in flight"
	// StateUnknown: Amberflo says it does not know (UNKNOWN).
	StateUnknown PaymentState = "unknown"
	// StateUnreadable: no status, or one Amberflo does not document.
	StateUnreadable PaymentState = "unreadable"
)

// Normal returns the status in Amberflo's documented form: upper case,
// without surrounding spaces.
func (s PaymentStatus) Normal() PaymentStatus {
	return PaymentStatus(strings.ToUpper(strings.TrimSpace(string(s))))
}

// State says what the status means for the money. Only a documented
// status is paid or unpaid; anything else, a missing or null one
// included, is unreadable.
func (s PaymentStatus) State() PaymentState {
	switch s.Normal() {
	case PaymentSettled, PaymentNotNeeded:
		return StatePaid
	case PaymentFailed, PaymentRequiresAction, PaymentPrePayment:
		return StateUnpaid
	case PaymentPending:
		return StateInFlight
	case PaymentUnknown:
		return StateUnknown
	}
	return StateUnreadable
}

// Paid reports whether nothing is owed: SETTLED or NOT_NEEDED, in any
// case. False says nothing more: see State for unpaid.
func (s PaymentStatus) Paid() bool { return s.State() == StatePaid }

// Invoice is the part of an Amberflo invoice that dunning reads.
type Invoice struct {
	CustomerID string
	URI        string          // invoiceUri
	Key        json.RawMessage // invoiceKey, as Amberflo sent it
	TotalPrice float64         // totalBill.totalPrice, in the plan's currency
	// TotalKnown: totalBill.totalPrice was a number (or a string holding
	// one). Missing, null or anything else leaves the total unknown,
	// and TotalPrice zero says nothing.
	TotalKnown    bool
	PaymentStatus PaymentStatus
	PlanName      string
	Start, End    time.Time // billing period; zero when absent
}

// Paid reports whether nothing is owed on the invoice.
func (inv Invoice) Paid() bool { return inv.PaymentStatus.Paid() }

// State says what the invoice's payment status means for its money.
func (inv Invoice) State() PaymentState { return inv.PaymentStatus.State() }

// invoiceJSON is the wire form of Invoice. Fields not listed are ignored.
type invoiceJSON struct {
	URI string          `json:"invoiceUri"`
	Key json.RawMessage `json:"invoiceKey"`
	// TotalBill is read apart (see total): its amounts come as numbers,
	// or as strings, or not at all, and none of that makes the invoice's
	// payment status unreadable.
	TotalBill     json.RawMessage `json:"totalBill"`
	PaymentStatus PaymentStatus   `json:"paymentStatus"`
	PlanName      string          `json:"planName"`
	Start         int64           `json:"invoiceStartTimeInSeconds"`
	End           int64           `json:"invoiceEndTimeInSeconds"`
}

// LatestInvoice returns the customer's latest invoice for the configured
// product, with its payment status. No invoice (a 404, an empty body, JSON
// null or an empty object) is an error matching ErrNotFound.
func (c *Client) LatestInvoice(ctx context.Context, customerID string) (Invoice, error) {
	inv, err := c.latestInvoice(ctx, customerID)
	if err != nil {
		return Invoice{}, fmt.Errorf("amberflo: get latest invoice of customer %q: %w", customerID, err)
	}
	return inv, nil
}

func (c *Client) latestInvoice(ctx context.Context, customerID string) (Invoice, error) {
	if err := checkID(customerID); err != nil {
		return Invoice{}, err
	}
	const path = "/payments/billing/customer-product-invoice"
	q := url.Values{
		"customerId":        {customerID},
		"productId":         {c.productID},
		"latest":            {"true"},
		"withPaymentStatus": {"true"},
	}
	a, err := c.do(ctx, "GET", path, q, nil)
	if err != nil {
		return Invoice{}, err
	}
	if isNull(a.body) {
		return Invoice{}, ErrNotFound
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(a.body, &fields); err != nil {
		return Invoice{}, c.unreadable(a, fmt.Errorf("decode invoice: %w", err))
	}
	if len(fields) == 0 {
		return Invoice{}, ErrNotFound
	}
	var w invoiceJSON
	if err := json.Unmarshal(a.body, &w); err != nil {
		return Invoice{}, c.unreadable(a, fmt.Errorf("decode invoice: %w", err))
	}
	return w.invoice(customerID), nil
}

func (w *invoiceJSON) invoice(customerID string) Invoice {
	inv := Invoice{
		CustomerID:    customerID,
		URI:           w.URI,
		PaymentStatus: w.PaymentStatus,
		PlanName:      w.PlanName,
		Start:         unixSeconds(w.Start),
		End:           unixSeconds(w.End),
	}
	if !isNull(w.Key) {
		inv.Key = w.Key
	}
	inv.TotalPrice, inv.TotalKnown = total(w.TotalBill)
	return inv
}

// total reads totalBill.totalPrice: a JSON number, or a string holding a
// finite decimal number. Anything else (no totalBill, null, an object
// without totalPrice, a word) is an unknown total, reported as such.
func total(bill json.RawMessage) (float64, bool) {
	var b struct {
		TotalPrice json.RawMessage `json:"totalPrice"`
	}
	if isNull(bill) || json.Unmarshal(bill, &b) != nil || isNull(b.TotalPrice) {
		return 0, false
	}
	raw := b.TotalPrice
	var str string
	if json.Unmarshal(raw, &str) == nil {
		raw = json.RawMessage(strings.TrimSpace(str))
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

func unixSeconds(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// Invoices returns every invoice of the customer for the configured
// product, with payment statuses. No invoice at all is an empty list.
func (c *Client) Invoices(ctx context.Context, customerID string) ([]Invoice, error) {
	invs, err := c.invoices(ctx, customerID)
	if err != nil {
		return nil, fmt.Errorf("amberflo: list invoices of customer %q: %w", customerID, err)
	}
	return invs, nil
}

func (c *Client) invoices(ctx context.Context, customerID string) ([]Invoice, error) {
	if err := checkID(customerID); err != nil {
		return nil, err
	}
	const path = "/payments/billing/customer-product-invoice/all"
	q := url.Values{
		"customerId":        {customerID},
		"productId":         {c.productID},
		"withPaymentStatus": {"true"},
	}
	a, err := c.do(ctx, "GET", path, q, nil)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if isNull(a.body) {
		return nil, nil
	}
	var ws []*invoiceJSON
	if err := json.Unmarshal(a.body, &ws); err != nil {
		return nil, c.unreadable(a, fmt.Errorf("decode invoices: %w", err))
	}
	out := make([]Invoice, 0, len(ws))
	for _, w := range ws {
		if w == nil {
			continue
		}
		out = append(out, w.invoice(customerID))
	}
	return out, nil
}

// InvoiceFor returns the invoice that bills the usage period [start, end):
// the one whose own period holds the middle of it. A period of no length
// matches nothing, so an invoice is never guessed.
func InvoiceFor(invoices []Invoice, start, end time.Time) (Invoice, bool) {
	if start.IsZero() || !end.After(start) {
		return Invoice{}, false
	}
	mid := start.Add(end.Sub(start) / 2)
	for _, inv := range invoices {
		if inv.Start.IsZero() || inv.End.IsZero() {
			continue
		}
		if !mid.Before(inv.Start) && mid.Before(inv.End) {
			return inv, true
		}
	}
	return Invoice{}, false
}
