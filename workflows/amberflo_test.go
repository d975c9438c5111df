package workflows_test

// What the recovery does with each payment status Amberflo may give the
// invoice of the period an intent bills, through the real activity and
// client against an Amberflo that answers as the documented API does.

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"dunning/activities"
	"dunning/amberflo"
	"dunning/workflows"
)

const amberfloKey = "amberflo-test-key"

// amberfloAnswering is an Amberflo whose invoice list holds the invoice
// of the period [start, end) with the paymentStatus member given (raw
// JSON; "" for an invoice without one), and the month before it settled.
// It checks the key (403 without it), the path and the query (400
// otherwise), and returns activities that read it.
func amberfloAnswering(t *testing.T, start, end time.Time, member string) *activities.Activities {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		q := r.URL.Query()
		wantQuery := url.Values{"customerId": {q.Get("customerId")}, "productId": {"1"}, "withPaymentStatus": {"true"}}
		switch {
		case r.Header.Get("X-API-KEY") != amberfloKey:
			t.Errorf("%s %s: X-API-KEY %q, want the API key", r.Method, r.URL.Path, r.Header.Get("X-API-KEY"))
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"message":"Forbidden"}`)
			return
		case r.Method != http.MethodGet || r.URL.Path != "/payments/billing/customer-product-invoice/all":
			t.Errorf("unexpected Amberflo request %s %s", r.Method, r.URL.Path)
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"Not Found"}`)
			return
		case q.Get("customerId") == "" || !reflect.DeepEqual(q, wantQuery):
			t.Errorf("GET %s: query %v, want %v", r.URL.Path, q, wantQuery)
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"message":"invalid query"}`)
			return
		}
		id := q.Get("customerId")
		invoice := func(from, to time.Time, member string) string {
			body := fmt.Sprintf(`{"invoiceUri": "payments/billing/invoices/%s/%s",
				"invoiceKey": {"customerId": %q, "productId": "1", "year": %d, "month": %d},
				"invoiceStartTimeInSeconds": %d, "invoiceEndTimeInSeconds": %d, "planName": "Team",
				"totalBill": {"itemPrice": 49.0, "fixedPrice": 0, "totalPrice": 49.0, "totalDiscount": 0}`,
				id, from.Format("2006-01"), id, from.Year(), from.Month(), from.Unix(), to.Unix())
			if member != "" {
				body += ", " + member
			}
			return body + "}"
		}
		before := start.Add(-end.Sub(start))
		io.WriteString(w, "["+invoice(start, end, member)+", "+invoice(before, start, `"paymentStatus": "SETTLED"`)+"]")
	}))
	t.Cleanup(srv.Close)
	c, err := amberflo.New(amberflo.Config{BaseURL: srv.URL, APIKey: amberfloKey, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &activities.Activities{Amberflo: c, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// withAmberflo has the world's Amberflo answer the intent's invoice (the
// 30 days before t0) with the paymentStatus member given.
func withAmberflo(t *testing.T, member string) func(*world) {
	return func(w *world) {
		start, end := w.period("pi_1")
		w.amberflo = amberfloAnswering(t, start, end, member)
	}
}

// alertTexts lists the title and text of every alert of a severity.
func (w *world) alertTexts(severity string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, a := range w.alerts {
		if a.Severity == severity {
			out = append(out, a.Title+": "+a.Text)
		}
	}
	return out
}

// A payment in flight (PENDING, in either case) is neither a failure nor
// unpaid: the retries charge nothing and the suspension waits for it.
func TestAmberfloPendingIsNeitherChargedNorSuspended(t *testing.T) {
	for _, status := range []string{"PENDING", "pending"} {
		t.Run(status, func(t *testing.T) {
			rt := newRecoveryTest(t, withAmberflo(t, `"paymentStatus": "`+status+`"`))
			// Retries at +1h, +2h, +3h; the suspension is due at +10h.
			rt.at(11*time.Hour, func() {
				s := rt.status()
				if s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
					t.Errorf("at +11h stage %s, control plane %v; want past_due and no call: the payment is in flight", s.Stage, rt.w.controlActions())
				}
				if s.Paused {
					t.Errorf("paused (%s); a payment in flight is an answer to wait on, not one for an operator", s.PausedReason)
				}
			})
			rt.update(12*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end the test"}, mustAccept(t, "waive"))
			rt.run(input())
			if n := len(rt.w.retries); n != 0 {
				t.Errorf("%d confirms while Amberflo says the payment is in flight, want none", n)
			}
		})
	}
}

// UNKNOWN (Amberflo does not know) is no answer: nothing is charged or
// suspended, the re-check is asked again, and ops are told once it has
// lasted past the bound, with what Amberflo answered.
func TestAmberfloUnknownIsNoAnswer(t *testing.T) {
	for _, status := range []string{"UNKNOWN", "unknown"} {
		t.Run(status, func(t *testing.T) {
			rt := newRecoveryTest(t, withAmberflo(t, `"paymentStatus": "`+status+`"`))
			in := input()
			in.Settings.RecheckAlertAfter = 30 * time.Minute
			rt.at(11*time.Hour, func() {
				s := rt.status()
				if s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
					t.Errorf("at +11h stage %s, control plane %v; want past_due and no call: Amberflo does not know", s.Stage, rt.w.controlActions())
				}
				alerts := rt.w.alertTexts("critical")
				if len(alerts) != 1 || !strings.Contains(alerts[0], "unanswered") || !strings.Contains(alerts[0], "payment UNKNOWN") {
					t.Errorf("critical alerts %q, want one saying the re-check is unanswered because Amberflo answered UNKNOWN", alerts)
				}
			})
			rt.update(12*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end the test"}, mustAccept(t, "waive"))
			rt.run(in)
			if n := len(rt.w.retries); n != 0 {
				t.Errorf("%d confirms while Amberflo does not know whether the invoice is paid, want none", n)
			}
		})
	}
}

// No paymentStatus, a null one, or one Amberflo does not document cannot
// be read as unpaid: the recovery pauses for an operator at the first
// charge it would have made, ops are told what Amberflo answered, and
// nothing is charged or suspended.
func TestAmberfloUnreadableStatusPausesForOperator(t *testing.T) {
	for _, tc := range []struct{ name, member, says string }{
		{"missing", ``, "no payment status"},
		{"null", `"paymentStatus": null`, "no payment status"},
		{"not documented", `"paymentStatus": "PARTIALLY_SETTLED"`, `"PARTIALLY_SETTLED"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRecoveryTest(t, withAmberflo(t, tc.member))
			rt.at(11*time.Hour, func() {
				s := rt.status()
				if !s.Paused || s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
					t.Errorf("at +11h paused %v, stage %s, control plane %v; want paused, not suspended", s.Paused, s.Stage, rt.w.controlActions())
				}
				alerts := rt.w.alertTexts("critical")
				if len(alerts) != 1 || !strings.Contains(alerts[0], "paused") || !strings.Contains(alerts[0], tc.says) {
					t.Errorf("critical alerts %q, want one pause alert that says %s", alerts, tc.says)
				}
			})
			rt.update(12*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end the test"}, mustAccept(t, "waive"))
			rt.run(input())
			if n := len(rt.w.retries); n != 0 {
				t.Errorf("%d confirms on an unreadable answer, want none", n)
			}
		})
	}
}

// Amberflo's TypeScript SDK sends statuses in lower case: "settled" is
// paid. The first retry finds it so and ends the recovery without a
// charge.
func TestAmberfloSettledInLowerCaseIsPaid(t *testing.T) {
	rt := newRecoveryTest(t, withAmberflo(t, `"paymentStatus": "settled"`))
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered: Amberflo says the invoice is settled", res.Stage)
	}
	if len(rt.w.retries) != 0 || len(rt.w.controls) != 0 {
		t.Errorf("%d confirms, control plane %v; want neither for a settled invoice", len(rt.w.retries), rt.w.controlActions())
	}
	if now := rt.env.Now(); now.Sub(t0) > 2*time.Hour {
		t.Errorf("recovered at +%s, want at the first retry (+1h)", now.Sub(t0))
	}
}
