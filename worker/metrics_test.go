package worker_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"dunning/worker"
	"dunning/workflows"
)

// The names dashboards rely on (DESIGN.md) are on /metrics, at zero,
// before the first fact.
func TestRecoveryMetricsListedBeforeTheFirstFact(t *testing.T) {
	reg := prometheus.NewRegistry()
	worker.RegisterRecoveryMetrics(reg)
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, line := range []string{
		"dunning_recoveries_started_total 0",
		`dunning_recoveries_ended_total{outcome="recovered_by_retry"} 0`,
		`dunning_recoveries_ended_total{outcome="recovered_by_card_update"} 0`,
		`dunning_recoveries_ended_total{outcome="recovered_by_customer"} 0`,
		`dunning_recoveries_ended_total{outcome="waived"} 0`,
		`dunning_recoveries_ended_total{outcome="deprovisioned"} 0`,
		"dunning_time_to_recover_seconds_count 0",
		`dunning_recoveries_in_stage{stage="past_due"} 0`,
		`dunning_recoveries_in_stage{stage="suspended"} 0`,
		"# TYPE dunning_failed_amount_total counter",
		"# TYPE dunning_recovered_amount_total counter",
		"# TYPE dunning_payment_attempts_total counter",
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}

// Through the handler, a dunning series keeps its registered labels
// whatever tags the SDK adds; an SDK series keeps the label set of its
// first use.
func TestMetricsHandlerKeepsOneLabelSetPerName(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := worker.NewMetricsHandler(reg, worker.RegisterRecoveryMetrics(reg))
	wf := h.WithTags(map[string]string{"namespace": "default", "task_queue": "dunning", "workflow_type": workflows.PaymentRecoveryWorkflowName})
	wf.WithTags(map[string]string{workflows.TagOutcome: string(workflows.OutcomeWaived)}).Counter(workflows.MetricRecoveriesEnded).Inc(1)
	wf.WithTags(map[string]string{workflows.TagCurrency: "eur"}).Counter(workflows.MetricFailedAmount).Inc(1250)
	wf.Timer(workflows.MetricTimeToRecover).Record(90 * time.Minute)
	h.WithTags(map[string]string{"namespace": "default", "operation": "PollWorkflowTaskQueue"}).Counter("temporal_request").Inc(2)
	h.WithTags(map[string]string{"namespace": "default"}).Counter("temporal_request").Inc(1)
	h.WithTags(map[string]string{"namespace": "default", "operation": "X", "extra": "dropped"}).Counter("temporal_request").Inc(1)
	h.Timer("temporal_workflow_task_execution_latency").Record(time.Second)
	h.Counter("dunning_not_a_recovery_metric").Inc(1) // dropped, never registered on the fly

	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, line := range []string{
		`dunning_recoveries_ended_total{outcome="waived"} 1`,
		`dunning_failed_amount_total{currency="eur"} 1250`,
		"dunning_time_to_recover_seconds_sum 5400",
		`dunning_time_to_recover_seconds_bucket{le="3600"} 0`,
		`dunning_time_to_recover_seconds_bucket{le="10800"} 1`,
		`temporal_request{namespace="default",operation="PollWorkflowTaskQueue"} 2`,
		`temporal_request{namespace="default",operation=""} 1`,
		`temporal_request{namespace="default",operation="X"} 1`,
		"temporal_workflow_task_execution_latency_seconds_count 1",
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	if strings.Contains(body, "dunning_not_a_recovery_metric") || strings.Contains(body, "workflow_type") {
		t.Errorf("/metrics has a series or label it should not:\n%s", body)
	}
}
