package worker_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdkworker "go.temporal.io/sdk/worker"

	"dunning/internal/report"
	"dunning/internal/stripefixture"
	"dunning/internal/testenv"
	"dunning/worker"
	"dunning/workflows"
)

// dunningSeries is the text exposition of the dunning_* series in reg.
func dunningSeries(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "dunning_") {
			b.WriteString(mf.String() + "\n")
		}
	}
	return b.String()
}

func signalWhenRunning(t *testing.T, s *localStack, id, name string, arg any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if err := s.tmp.Client.SignalWorkflow(ctx, id, "", name, arg); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("signal %s to %s never delivered", name, id)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Recoveries in every outcome on a real server and worker: the report,
// computed from one visibility listing of their memos, and the metrics,
// counted once each, agree with what the test did; replaying the
// histories (a query on a closed workflow replays it whole) counts
// nothing again.
func TestReportAndMetricsOnTemporal(t *testing.T) {
	reg := prometheus.NewRegistry()
	rm := worker.RegisterRecoveryMetrics(reg)
	s := startLocalStackWith(t, map[string]string{
		"DUNNING_RETRY_SCHEDULE": "3s,6s", "DUNNING_GRACE_PERIOD": "8s", "DUNNING_DEPROVISION_AFTER": "3s",
		"DUNNING_CARD_UPDATE_DEBOUNCE": "1s",
	}, worker.NewMetricsHandler(reg, rm))
	since := time.Now().Add(-time.Minute)

	fail := func(customer, intent string, amount int64, currency string) string {
		s.send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent, Amount: amount, Currency: currency})
		return workflows.RecoveryWorkflowID(customer)
	}
	// A: a new card recovers it at once.
	a := stripefixture.NewID("cus")
	idA := fail(a, "pi_rep_a", 1000, "usd")
	s.send(workflows.EventPaymentMethodAttached, stripefixture.Options{Customer: a})
	// B: never paid: deprovisioned.
	idB := fail(stripefixture.NewID("cus"), "pi_rep_b", 2000, "usd")
	// C: waived by an operator.
	idC := fail(stripefixture.NewID("cus"), "pi_rep_c", 3000, "eur")
	signalWhenRunning(t, s, idC, workflows.ControlWaive, workflows.OperatorRequest{Reason: "goodwill", Operator: "test"})
	// D: the customer pays the invoice themselves.
	d := stripefixture.NewID("cus")
	idD := fail(d, "pi_rep_d", 4000, "usd")
	s.result(idA, time.Minute) // by then D's failure is long recorded
	s.send(workflows.EventPaymentSucceeded, stripefixture.Options{Customer: d, ObjectID: "pi_rep_d", Amount: 4000})
	// E: paused by an operator: still in progress.
	idE := fail(stripefixture.NewID("cus"), "pi_rep_e", 5000, "eur")
	signalWhenRunning(t, s, idE, workflows.ControlPause, workflows.OperatorRequest{Reason: "customer on the phone", Operator: "test"})

	stages := map[string]workflows.Stage{}
	for _, id := range []string{idA, idB, idC, idD} {
		stages[id] = s.result(id, 2*time.Minute).Stage
	}
	if stages[idA] != workflows.StageRecovered || stages[idB] != workflows.StageDeprovisioned ||
		stages[idC] != workflows.StageWaived || stages[idD] != workflows.StageRecovered {
		t.Fatalf("stages %v", stages)
	}

	// Worked out from what the test did, not from the memos.
	want := report.Report{
		Recoveries: 5, Recovered: 2, InProgress: 1, RecoveryRate: 0.4,
		Outcomes: []report.Count{{Name: "recovered_by_retry", Count: 0}, {Name: "recovered_by_card_update", Count: 1}, {Name: "recovered_by_customer", Count: 1}, {Name: "waived", Count: 1}, {Name: "deprovisioned", Count: 1}},
		Currencies: []report.CurrencyFigures{
			{Currency: "eur", FailedCustomers: 2, FailedAmount: 8000, RecoveredCustomers: 0, RecoveredAmount: 0, RecoveryRate: 0},
			{Currency: "usd", FailedCustomers: 3, FailedAmount: 7000, RecoveredCustomers: 2, RecoveredAmount: 5000, RecoveryRate: 5000.0 / 7000},
		},
	}
	var got report.Report
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Visibility catches up a moment after the workflows.
		runs, err := report.List(context.Background(), s.tmp.Client, since)
		if err != nil {
			t.Fatal(err)
		}
		got = report.Build(report.Window{Since: since, Until: time.Now().Add(time.Minute)}, runs)
		if (got.Recoveries == want.Recoveries && got.InProgress == want.InProgress) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got.WithoutFigures.Count != 0 {
		t.Errorf("%d recoveries without figures, want none: every run keeps its memo", got.WithoutFigures.Count)
	}
	if got.Recoveries != want.Recoveries || got.Recovered != want.Recovered || got.InProgress != want.InProgress || got.RecoveryRate != want.RecoveryRate {
		t.Errorf("recoveries %d recovered %d in progress %d rate %v; want %d %d %d %v",
			got.Recoveries, got.Recovered, got.InProgress, got.RecoveryRate, want.Recoveries, want.Recovered, want.InProgress, want.RecoveryRate)
	}
	for i, o := range want.Outcomes {
		if i >= len(got.Outcomes) || got.Outcomes[i] != o {
			t.Errorf("outcomes %v, want %v", got.Outcomes, want.Outcomes)
			break
		}
	}
	if len(got.Currencies) != 2 || got.Currencies[0] != want.Currencies[0] || got.Currencies[1] != want.Currencies[1] {
		t.Errorf("currencies %+v, want %+v", got.Currencies, want.Currencies)
	}
	if got.TimeToRecover.Count != 2 || got.TimeToRecover.P90S <= 0 || got.TimeToRecover.P90S > 120 {
		t.Errorf("time to recover %+v; want two recoveries within two minutes", got.TimeToRecover)
	}

	// The metrics count the same facts, once.
	counts := map[string]float64{
		"started":            testenv.MetricValue(rm.Started),
		"failed usd":         testenv.MetricValue(rm.FailedAmount.WithLabelValues("usd")),
		"failed eur":         testenv.MetricValue(rm.FailedAmount.WithLabelValues("eur")),
		"recovered usd":      testenv.MetricValue(rm.RecoveredAmt.WithLabelValues("usd")),
		"ended card update":  testenv.MetricValue(rm.Ended.WithLabelValues(string(workflows.OutcomeRecoveredByCardUpdate))),
		"ended customer":     testenv.MetricValue(rm.Ended.WithLabelValues(string(workflows.OutcomeRecoveredByCustomer))),
		"ended waived":       testenv.MetricValue(rm.Ended.WithLabelValues(string(workflows.OutcomeWaived))),
		"ended deprov":       testenv.MetricValue(rm.Ended.WithLabelValues(string(workflows.OutcomeDeprovisioned))),
		"ended retry":        testenv.MetricValue(rm.Ended.WithLabelValues(string(workflows.OutcomeRecoveredByRetry))),
		"attempts succeeded": testenv.MetricValue(rm.Attempts.WithLabelValues(workflows.AttemptSucceeded, workflows.DeclineClassNone)),
	}
	wantCounts := map[string]float64{"started": 5, "failed usd": 7000, "failed eur": 8000, "recovered usd": 5000,
		"ended card update": 1, "ended customer": 1, "ended waived": 1, "ended deprov": 1, "ended retry": 0, "attempts succeeded": 1}
	for k, v := range wantCounts {
		if counts[k] != v {
			t.Errorf("metric %s = %v, want %v", k, counts[k], v)
		}
	}

	// The in-stage gauge counts the running recoveries: E, past due.
	wctx, stop := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		worker.WatchStages(wctx, s.tmp.Client, rm, 100*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(watched)
	}()
	for deadline := time.Now().Add(30 * time.Second); testenv.MetricValue(rm.InStage.WithLabelValues(string(workflows.StagePastDue))) != 1; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("in stage past_due = %v, want 1", testenv.MetricValue(rm.InStage.WithLabelValues(string(workflows.StagePastDue))))
		}
	}
	stop()
	<-watched
	if v := testenv.MetricValue(rm.InStage.WithLabelValues(string(workflows.StageDeprovisioned))); v != 0 {
		t.Errorf("in stage deprovisioned = %v, want 0: a closed recovery is in no stage", v)
	}

	// Replaying every closed history emits nothing.
	before := dunningSeries(t, reg)
	sdkworker.PurgeStickyWorkflowCache()
	for _, id := range []string{idA, idB, idC, idD} {
		v, err := s.tmp.Client.QueryWorkflow(context.Background(), id, "", workflows.StatusQuery)
		if err != nil {
			t.Fatalf("query %s: %v", id, err)
		}
		var st workflows.RecoveryState
		if err := v.Get(&st); err != nil || st.Stage != stages[id] {
			t.Fatalf("replayed %s: stage %s (%v), want %s", id, st.Stage, err, stages[id])
		}
	}
	if after := dunningSeries(t, reg); after != before {
		t.Errorf("replay changed the metrics:\nbefore\n%s\nafter\n%s", before, after)
	}
}
