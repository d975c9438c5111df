package workflows_test

// The money figures a life reports (its stage, outcome, recovered amount,
// what the report counts) when the debt was credited, refunded, or
// settled in Amberflo.

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"dunning/activities"
	"dunning/amberflo"
	"dunning/workflows"
)

// moneyOf is what the report counts of a life's intents, as its status
// holds them at the end.
func moneyOf(t *testing.T, rt *recoveryTest) workflows.CurrencyMoney {
	t.Helper()
	var ms []workflows.IntentMoney
	for _, in := range rt.status().Intents {
		ms = append(ms, workflows.IntentMoney{Invoice: in.InvoiceID, Currency: in.Currency, Amount: in.Amount,
			Paid: in.State == workflows.IntentPaid, PaidAmount: in.PaidAmount, PaidUnknown: in.PaidAmountUnknown})
	}
	got := workflows.CountOnce(ms)
	if len(got) != 1 {
		t.Fatalf("money in %d currencies, want one: %+v", len(got), got)
	}
	return got[0]
}

// A credit note takes 1900 off the failed invoice; Stripe lowers the
// intent to 3000, and the next retry takes 3000. Recovered is 3000, and
// the 1900 credited, not recovered.
func TestACreditNoteBeforeTheRetryIsNotRecovered(t *testing.T) {
	rt, rm, _ := meteredRecoveryTest(t)
	rt.w.succeedOnAttempt = 1
	rt.at(30*time.Minute, func() { rt.w.mu.Lock(); rt.w.credits["in_pi_1"] = 1900; rt.w.mu.Unlock() })
	if res := rt.run(input()); res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered: 3000 was paid", res.Stage)
	}
	expect(t, "recovered usd", rm.RecoveredAmt.WithLabelValues("usd"), 3000)
	expect(t, "ended by retry", rm.Ended.WithLabelValues(string(workflows.OutcomeRecoveredByRetry)), 1)
	if m := moneyOf(t, rt); m.Failed != 4900 || m.Recovered != 3000 || m.Credited != 1900 || m.Unknown != 0 {
		t.Errorf("report counts %+v, want 4900 failed, 3000 recovered, 1900 credited", m)
	}
}

// The customer pays, then part of the payment is refunded before the
// re-check finds it paid: what was refunded was not recovered.
func TestARefundBeforeTheRecheckIsNotRecovered(t *testing.T) {
	rt, rm, _ := meteredRecoveryTest(t)
	rt.at(9*time.Hour, func() {
		rt.w.mu.Lock()
		defer rt.w.mu.Unlock()
		rt.w.paidIntents["pi_1"] = true
		rt.w.refunded["pi_1"] = 900
	})
	if res := rt.run(input()); res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
	expect(t, "recovered usd", rm.RecoveredAmt.WithLabelValues("usd"), 4000)
	if m := moneyOf(t, rt); m.Recovered != 4000 || m.Credited != 900 {
		t.Errorf("report counts %+v, want 4000 recovered, 900 credited", m)
	}
}

// A debt Stripe settled by credit alone (a credit note for all of it)
// was forgiven: the stage agrees with the outcome, the customer told of
// the failure is not told that a payment came in, and ops are told of a
// waiver, not a recovery.
func TestACreditedLifeIsWaivedNotRecovered(t *testing.T) {
	rt, rm, _ := meteredRecoveryTest(t)
	rt.at(30*time.Minute, func() {
		rt.w.mu.Lock()
		defer rt.w.mu.Unlock()
		rt.w.credits["in_pi_1"] = 4900
		rt.w.invoiceState["in_pi_1"] = "paid"
	})
	res := rt.run(input())
	if res.Stage != workflows.StageWaived {
		t.Errorf("stage %s, want waived", res.Stage)
	}
	if want := []string{"payment_failed", "payment_waived"}; !equal(rt.w.noticeTypes(), want) {
		t.Errorf("notices %v, want %v: the customer paid nothing", rt.w.noticeTypes(), want)
	}
	if n := rt.w.alertsWith("info", "Recovered:"); n != 0 {
		t.Errorf("%d Recovered alerts for a debt credited away", n)
	}
	if n := rt.w.alertsWith("info", "Waived:"); n != 1 {
		t.Errorf("%d Waived alerts, want 1", n)
	}
	expect(t, "ended waived", rm.Ended.WithLabelValues(string(workflows.OutcomeWaived)), 1)
	expect(t, "recovered usd", rm.RecoveredAmt.WithLabelValues("usd"), 0)
	if m := moneyOf(t, rt); m.Recovered != 0 || m.Credited != 4900 {
		t.Errorf("report counts %+v, want nothing recovered, 4900 credited", m)
	}
}

// A credit note for part of the debt, and the rest paid: money came in,
// so the life is recovered, and told so.
func TestAPartlyCreditedLifeIsRecovered(t *testing.T) {
	rt, rm, _ := meteredRecoveryTest(t)
	rt.w.succeedOnAttempt = 1
	rt.at(30*time.Minute, func() { rt.w.mu.Lock(); rt.w.credits["in_pi_1"] = 4000; rt.w.mu.Unlock() })
	if res := rt.run(input()); res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
	if want := []string{"payment_failed", "payment_recovered"}; !equal(rt.w.noticeTypes(), want) {
		t.Errorf("notices %v, want %v", rt.w.noticeTypes(), want)
	}
	expect(t, "recovered usd", rm.RecoveredAmt.WithLabelValues("usd"), 900)
}

// amberfloSettled is an Amberflo whose invoice of the 30 days before t0
// (the period every intent of the world bills) is SETTLED, with the
// totalBill member given (raw JSON; "" for none), as its list of
// invoices answers.
func amberfloSettled(t *testing.T, totalBill string) *activities.Activities {
	t.Helper()
	start, end := t0.Add(-30*24*time.Hour), t0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-API-KEY") != amberfloKey || r.URL.Path != "/payments/billing/customer-product-invoice/all" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"message":"Forbidden"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		body := `[{"invoiceUri": "payments/billing/invoices/acme/` + start.Format("2006-01") + `",
			"invoiceKey": {"customerId": "acme", "productId": "1"}, "planName": "Team",
			"invoiceStartTimeInSeconds": ` + fmt.Sprint(start.Unix()) + `, "invoiceEndTimeInSeconds": ` + fmt.Sprint(end.Unix()) + `,
			"paymentStatus": "SETTLED"`
		if totalBill != "" {
			body += `, "totalBill": ` + totalBill
		}
		io.WriteString(w, body+"}]")
	}))
	t.Cleanup(srv.Close)
	c, err := amberflo.New(amberflo.Config{BaseURL: srv.URL, APIKey: amberfloKey, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &activities.Activities{Amberflo: c, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// The debt is found settled in Amberflo: what was recovered is what
// Amberflo says settled its invoice, not what the Stripe intent asked;
// where Amberflo does not say, the amount is unknown, and counted so.
func TestAmberfloSettledCountsWhatAmberfloSays(t *testing.T) {
	for _, tc := range []struct {
		name      string
		totalBill string
		recovered float64
		paid      int64 // -1: unknown
	}{
		{"a number", `{"itemPrice": 30.5, "fixedPrice": 0, "prepaid": 0, "totalPrice": 30.5, "totalDiscount": 0}`, 3050, 3050},
		{"a string", `{"itemPrice": "30.50", "totalPrice": "30.50"}`, 3050, 3050},
		{"more than the intent asked: no more than it", `{"totalPrice": 120}`, 4900, 4900},
		{"no totalBill", "", 0, -1},
		{"a null totalBill", `null`, 0, -1},
		{"a null totalPrice", `{"itemPrice": 49, "totalPrice": null}`, 0, -1},
		{"a totalPrice that is no number", `{"totalPrice": "n/a"}`, 0, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, rm, _ := meteredRecoveryTest(t)
			rt.w.amberflo = amberfloSettled(t, tc.totalBill)
			if res := rt.run(input()); res.Stage != workflows.StageRecovered {
				t.Fatalf("stage %s, want recovered", res.Stage)
			}
			expect(t, "recovered usd", rm.RecoveredAmt.WithLabelValues("usd"), tc.recovered)
			in := rt.status().Intents[0]
			m := moneyOf(t, rt)
			switch {
			case tc.paid < 0:
				if !in.PaidAmountUnknown || in.PaidAmount != nil || m.Recovered != 0 || m.Unknown != 4900 {
					t.Errorf("intent paid %v (unknown %v), report %+v; want the amount unknown, counted apart", in.PaidAmount, in.PaidAmountUnknown, m)
				}
			default:
				if in.PaidAmountUnknown || in.PaidAmount == nil || *in.PaidAmount != tc.paid || m.Recovered != tc.paid || m.Unknown != 0 {
					t.Errorf("intent paid %v (unknown %v), report %+v; want %d recovered", in.PaidAmount, in.PaidAmountUnknown, m, tc.paid)
				}
			}
		})
	}
}

// Credited away before anyone was told of the failure: the customer hears
// nothing, ops hear of the waiver, and the stage says waived.
func TestADebtCreditedBeforeItWasToldIsWaivedQuietly(t *testing.T) {
	rt, rm, _ := meteredRecoveryTest(t, func(w *world) {
		w.credits["in_pi_1"] = 4900
		w.invoiceState["in_pi_1"] = "paid"
	})
	if res := rt.run(input()); res.Stage != workflows.StageWaived {
		t.Errorf("stage %s, want waived", res.Stage)
	}
	if len(rt.w.notices) != 0 {
		t.Errorf("notices %v, want none: the customer was never told of the failure", rt.w.noticeTypes())
	}
	if n := rt.w.alertsWith("info", "Waived:"); n != 1 {
		t.Errorf("%d Waived alerts, want 1", n)
	}
	expect(t, "ended waived", rm.Ended.WithLabelValues(string(workflows.OutcomeWaived)), 1)
}
