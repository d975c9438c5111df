package workflows_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.temporal.io/sdk/testsuite"

	"dunning/activities"
	"dunning/internal/testenv"
	"dunning/worker"
	"dunning/workflows"
)

// meteredRecoveryTest is a recovery test whose workflow emits into a
// fresh Prometheus registry through the worker's metrics handler.
func meteredRecoveryTest(t *testing.T, opts ...func(*world)) (*recoveryTest, *worker.RecoveryMetrics, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	rm := worker.RegisterRecoveryMetrics(reg)
	suite := &testsuite.WorkflowTestSuite{}
	suite.SetMetricsHandler(worker.NewMetricsHandler(reg, rm))
	return newRecoveryTestIn(t, suite, opts...), rm, reg
}

// expect checks one counter's value.
func expect(t *testing.T, what string, c prometheus.Collector, want float64) {
	t.Helper()
	if v := testenv.MetricValue(c); v != want {
		t.Errorf("%s = %v, want %v", what, v, want)
	}
}

func histogram(t *testing.T, reg *prometheus.Registry, name string) *dto.Histogram {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatalf("%s not registered", name)
	return nil
}

func TestMetricsCountEachFactOnce(t *testing.T) {
	t.Run("recovered by a scheduled retry", func(t *testing.T) {
		rt, rm, reg := meteredRecoveryTest(t)
		rt.w.succeedOnAttempt = 2
		// A second failure of another intent, and the echo of the first.
		rt.signal(10*time.Minute, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(10*time.Minute)))
		rt.signal(11*time.Minute, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
		if res := rt.run(input()); res.Stage != workflows.StageRecovered {
			t.Fatalf("stage %s", res.Stage)
		}
		want := map[string]float64{
			"started":                  1,
			"failed usd":               9800,
			"recovered usd":            9800,
			"ended recovered_by_retry": 1,
			"ended other":              0,
			"declined soft":            2, // pi_1 and pi_2 at +1h
			"succeeded none":           2, // both at +2h
		}
		got := map[string]float64{
			"started":                  testenv.MetricValue(rm.Started),
			"failed usd":               testenv.MetricValue(rm.FailedAmount.WithLabelValues("usd")),
			"recovered usd":            testenv.MetricValue(rm.RecoveredAmt.WithLabelValues("usd")),
			"ended recovered_by_retry": testenv.MetricValue(rm.Ended.WithLabelValues(string(workflows.OutcomeRecoveredByRetry))),
			"ended other": testenv.MetricValue(rm.Ended.WithLabelValues(string(workflows.OutcomeRecoveredByCustomer))) +
				testenv.MetricValue(rm.Ended.WithLabelValues(string(workflows.OutcomeWaived))),
			"declined soft":  testenv.MetricValue(rm.Attempts.WithLabelValues(workflows.AttemptDeclined, string(activities.DeclineSoft))),
			"succeeded none": testenv.MetricValue(rm.Attempts.WithLabelValues(workflows.AttemptSucceeded, workflows.DeclineClassNone)),
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
		h := histogram(t, reg, workflows.MetricTimeToRecover)
		if h.GetSampleCount() != 1 || h.GetSampleSum() != (2*time.Hour).Seconds() {
			t.Errorf("time to recover: %d samples, sum %vs; want one of 7200s", h.GetSampleCount(), h.GetSampleSum())
		}
	})
	t.Run("recovered by a card update", func(t *testing.T) {
		rt, rm, _ := meteredRecoveryTest(t)
		rt.w.succeedOnAttempt = 1
		in := input()
		in.Settings.CardUpdateDebounce = time.Second
		rt.signal(10*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{EventID: "evt_card", Created: t0.Add(10 * time.Minute), Source: "payment_method.attached"})
		if res := rt.run(in); res.Stage != workflows.StageRecovered {
			t.Fatalf("stage %s", res.Stage)
		}
		expect(t, "ended by card update", rm.Ended.WithLabelValues(string(workflows.OutcomeRecoveredByCardUpdate)), 1)
		expect(t, "succeeded attempts", rm.Attempts.WithLabelValues(workflows.AttemptSucceeded, workflows.DeclineClassNone), 1)
	})
	t.Run("paid by the customer", func(t *testing.T) {
		rt, rm, _ := meteredRecoveryTest(t)
		rt.signal(30*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", Created: t0.Add(30 * time.Minute), IntentID: "pi_1", Source: "payment_intent.succeeded"})
		if res := rt.run(input()); res.Stage != workflows.StageRecovered {
			t.Fatalf("stage %s", res.Stage)
		}
		expect(t, "ended by customer", rm.Ended.WithLabelValues(string(workflows.OutcomeRecoveredByCustomer)), 1)
		expect(t, "recovered", rm.RecoveredAmt.WithLabelValues("usd"), 4900)
	})
	t.Run("one invoice, two intents, credited in full", func(t *testing.T) {
		// A second intent for the invoice of the first; then the invoice
		// is paid by a credit note: no money arrived.
		rt, rm, _ := meteredRecoveryTest(t)
		second := failed("evt_second", "pi_2", t0.Add(10*time.Minute))
		second.Intent.InvoiceID = "in_pi_1"
		rt.signal(10*time.Minute, workflows.SignalPaymentFailed, second)
		nothing := int64(0)
		rt.signal(30*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", Created: t0.Add(30 * time.Minute),
			InvoiceID: "in_pi_1", Source: "invoice.paid", AmountPaid: &nothing})
		// Its stage says what its outcome says: waived.
		if res := rt.run(input()); res.Stage != workflows.StageWaived {
			t.Fatalf("stage %s, want waived", res.Stage)
		}
		expect(t, "failed", rm.FailedAmount.WithLabelValues("usd"), 4900)
		expect(t, "recovered", rm.RecoveredAmt.WithLabelValues("usd"), 0)
		// Forgiven by a credit note, not recovered.
		expect(t, "ended waived", rm.Ended.WithLabelValues(string(workflows.OutcomeWaived)), 1)
		expect(t, "ended by customer", rm.Ended.WithLabelValues(string(workflows.OutcomeRecoveredByCustomer)), 0)
	})
	t.Run("one invoice, two intents, paid", func(t *testing.T) {
		rt, rm, _ := meteredRecoveryTest(t)
		second := failed("evt_second", "pi_2", t0.Add(10*time.Minute))
		second.Intent.InvoiceID = "in_pi_1"
		rt.signal(10*time.Minute, workflows.SignalPaymentFailed, second)
		paid := int64(4900)
		rt.signal(30*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", Created: t0.Add(30 * time.Minute),
			InvoiceID: "in_pi_1", Source: "invoice.paid", AmountPaid: &paid})
		if res := rt.run(input()); res.Stage != workflows.StageRecovered {
			t.Fatalf("stage %s", res.Stage)
		}
		expect(t, "failed", rm.FailedAmount.WithLabelValues("usd"), 4900)
		expect(t, "recovered", rm.RecoveredAmt.WithLabelValues("usd"), 4900)
	})
	t.Run("deprovisioned", func(t *testing.T) {
		rt, rm, reg := meteredRecoveryTest(t)
		if res := rt.run(input()); res.Stage != workflows.StageDeprovisioned {
			t.Fatalf("stage %s", res.Stage)
		}
		expect(t, "ended deprovisioned", rm.Ended.WithLabelValues(string(workflows.OutcomeDeprovisioned)), 1)
		expect(t, "recovered", rm.RecoveredAmt.WithLabelValues("usd"), 0)
		// Three scheduled retries, each declined.
		expect(t, "declined attempts", rm.Attempts.WithLabelValues(workflows.AttemptDeclined, string(activities.DeclineSoft)), 3)
		if h := histogram(t, reg, workflows.MetricTimeToRecover); h.GetSampleCount() != 0 {
			t.Errorf("time to recover observed %d times for a life never recovered", h.GetSampleCount())
		}
	})
}
