package worker_test

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/activities"
	"dunning/internal/testenv"
	"dunning/workflows"
)

// figuresLife starts, on a dry worker of queue q with IntentOwed,
// RetryPayment and InvoiceForPeriod answered by the functions given
// (nil: dry), the recovery of customer cus with one failed intent of
// 4900, retried after one second and suspended after grace.
func figuresLife(t *testing.T, q, cus string, grace time.Duration,
	owed func(activities.OwedInput) activities.Owed,
	retry func(activities.RetryInput) activities.RetryResult,
	amberflo func(activities.AmberfloPeriodInput) activities.AmberfloInvoice,
) (*testenv.Temporal, string) {
	t.Helper()
	tmp, w := dryRecorder(t, q)
	if owed != nil {
		standIn(w, "IntentOwed", func(_ context.Context, in activities.OwedInput) (activities.Owed, error) { return owed(in), nil })
	}
	if retry != nil {
		standIn(w, "RetryPayment", func(_ context.Context, in activities.RetryInput) (activities.RetryResult, error) {
			return retry(in), nil
		})
	}
	if amberflo != nil {
		standIn(w, "InvoiceForPeriod", func(_ context.Context, in activities.AmberfloPeriodInput) (activities.AmberfloInvoice, error) {
			return amberflo(in), nil
		})
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	id := workflows.RecoveryWorkflowID(cus)
	f := workflows.PaymentFailedSignal{EventID: "evt_" + cus + "_failed", Created: time.Now(), Intent: workflows.PaymentIntentInfo{
		ID: "pi_" + cus, Amount: 4900, Currency: "usd", InvoiceID: "in_" + cus, DeclineCode: "insufficient_funds", PaymentMethodID: "pm_1",
		Decline: activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentMethod: "pm_1", Fingerprint: "fp_1"}}}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{time.Second}, GracePeriod: grace, DeprovisionAfter: 10 * time.Hour,
		CardUpdateDebounce: time.Second, MaxGraceExtension: 48 * time.Hour}}
	if _, err := tmp.Client.SignalWithStartWorkflow(context.Background(), id, workflows.SignalPaymentFailed, f,
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	return tmp, id
}

// owedWithPeriod answers that the intent is owed, with the period its
// invoice bills, and pm_1 to charge.
func owedWithPeriod(in activities.OwedInput) activities.Owed {
	o := owedAnswer(in, "pm_1", "customer default", "fp_1")
	o.InvoiceID, o.PeriodStart, o.PeriodEnd = "in_x", time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	return o
}

// lifeStatus reads the life's state, after its end too.
func lifeStatus(t *testing.T, tmp *testenv.Temporal, id string) workflows.RecoveryState {
	t.Helper()
	v, err := tmp.Client.QueryWorkflow(context.Background(), id, "", workflows.StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var s workflows.RecoveryState
	if err := v.Get(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRecordMoneyKeptHistories records, as TestRecordHistories does (set
// DUNNING_RECORD_HISTORIES), the paths of money-kept and
// credited-life-waived:
//   - recovery-cus_figures_retry: a credit note lowered the intent to
//     3000 and the retry takes 3000, which is kept as what paid;
//   - recovery-cus_figures_amberflo: the retry declines, and before the
//     suspension Amberflo says the invoice of the period SETTLED for
//     30.50, which is kept as what paid;
//   - recovery-cus_figures_credited: a credit note pays the invoice, no
//     money comes, and the life ends waived.
func TestRecordMoneyKeptHistories(t *testing.T) {
	dir := recordDir(t)
	t.Run("retry", func(t *testing.T) {
		tmp, id := figuresLife(t, "dunning-figures-retry", "cus_figures_retry", 10*time.Hour, owedWithPeriod,
			func(in activities.RetryInput) activities.RetryResult {
				r := retryPaid(in)
				r.AmountReceived = 3000
				return r
			}, nil)
		res := recoveryResult(t, tmp, id, time.Minute)
		s := lifeStatus(t, tmp, id)
		if res.Stage != workflows.StageRecovered || len(s.Intents) != 1 || s.Intents[0].PaidAmount == nil || *s.Intents[0].PaidAmount != 3000 {
			t.Fatalf("stage %s, intents %+v; want recovered, 3000 paid", res.Stage, s.Intents)
		}
		recordHistory(t, tmp, dir, "recovery-cus_figures_retry", id)
	})
	t.Run("amberflo", func(t *testing.T) {
		tmp, id := figuresLife(t, "dunning-figures-amberflo", "cus_figures_amberflo", 3*time.Second, owedWithPeriod,
			func(in activities.RetryInput) activities.RetryResult { return retryDeclined(in, "fp_1") },
			func(in activities.AmberfloPeriodInput) activities.AmberfloInvoice {
				return activities.AmberfloInvoice{Found: true, URI: "payments/billing/invoices/x/2026-10", Amount: 30.5, AmountKnown: true,
					PaymentStatus: "SETTLED", Paid: true}
			})
		res := recoveryResult(t, tmp, id, time.Minute)
		s := lifeStatus(t, tmp, id)
		if res.Stage != workflows.StageRecovered || len(s.Intents) != 1 || s.Intents[0].PaidAmount == nil || *s.Intents[0].PaidAmount != 3050 {
			t.Fatalf("stage %s, intents %+v; want recovered, 3050 paid", res.Stage, s.Intents)
		}
		recordHistory(t, tmp, dir, "recovery-cus_figures_amberflo", id)
	})
	t.Run("credited", func(t *testing.T) {
		tmp, id := figuresLife(t, "dunning-figures-credited", "cus_figures_credited", 10*time.Hour, nil, nil, nil)
		time.Sleep(500 * time.Millisecond)
		nothing := int64(0)
		if err := tmp.Client.SignalWorkflow(context.Background(), id, "", workflows.SignalPaid, workflows.PaidSignal{
			EventID: "evt_figures_credited_paid", Created: time.Now(), InvoiceID: "in_cus_figures_credited",
			Source: workflows.EventInvoicePaid, AmountPaid: &nothing}); err != nil {
			t.Fatal(err)
		}
		res := recoveryResult(t, tmp, id, time.Minute)
		if res.Stage != workflows.StageWaived {
			t.Fatalf("stage %s, want waived", res.Stage)
		}
		recordHistory(t, tmp, dir, "recovery-cus_figures_credited", id)
	})
}
