package worker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"dunning/workflows"
)

// TimeToRecoverBuckets run from minutes to weeks, in seconds.
var TimeToRecoverBuckets = []float64{
	60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600,
	86400, 2 * 86400, 3 * 86400, 5 * 86400, 7 * 86400, 10 * 86400, 14 * 86400, 21 * 86400, 30 * 86400, 45 * 86400,
}

// RecoveryMetrics are the dunning_* series of the recovery, registered at
// worker start so that /metrics lists each (at zero) before its first
// fact. The workflow emits them through Temporal's metrics handler; see
// MetricsHandler.
type RecoveryMetrics struct {
	Started       *prometheus.CounterVec
	Ended         *prometheus.CounterVec
	FailedAmount  *prometheus.CounterVec
	RecoveredAmt  *prometheus.CounterVec
	TimeToRecover *prometheus.HistogramVec
	Attempts      *prometheus.CounterVec
	InStage       *prometheus.GaugeVec
	byName        map[string]*family
}

// RegisterRecoveryMetrics registers every dunning_* recovery series with
// reg, outcomes and stages at zero.
func RegisterRecoveryMetrics(reg prometheus.Registerer) *RecoveryMetrics {
	m := &RecoveryMetrics{
		Started: prometheus.NewCounterVec(prometheus.CounterOpts{Name: workflows.MetricRecoveriesStarted,
			Help: "Recovery lives opened (first failure recorded), in lives that follow the money rules."}, nil),
		Ended: prometheus.NewCounterVec(prometheus.CounterOpts{Name: workflows.MetricRecoveriesEnded,
			Help: "Recovery lives ended, by outcome."}, []string{workflows.TagOutcome}),
		FailedAmount: prometheus.NewCounterVec(prometheus.CounterOpts{Name: workflows.MetricFailedAmount,
			Help: "Amount of the failed payment intents recorded, in minor units, by lower-case ISO currency."}, []string{workflows.TagCurrency}),
		RecoveredAmt: prometheus.NewCounterVec(prometheus.CounterOpts{Name: workflows.MetricRecoveredAmount,
			Help: "Amount of the intents paid when a life ended, in minor units, by lower-case ISO currency."}, []string{workflows.TagCurrency}),
		TimeToRecover: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: workflows.MetricTimeToRecover,
			Help: "Time from the first failure to the payment that recovered the life.", Buckets: TimeToRecoverBuckets}, nil),
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: workflows.MetricPaymentAttempts,
			Help: "Confirms dunning made, by result and decline class (none without a decline)."}, []string{workflows.TagResult, workflows.TagDeclineClass}),
		InStage: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: workflows.MetricRecoveriesInStage,
			Help: "Running recoveries per stage, counted from Temporal visibility."}, []string{workflows.TagStage}),
	}
	reg.MustRegister(m.Started, m.Ended, m.FailedAmount, m.RecoveredAmt, m.TimeToRecover, m.Attempts, m.InStage)
	m.Started.WithLabelValues()
	m.TimeToRecover.WithLabelValues()
	for _, o := range workflows.Outcomes {
		m.Ended.WithLabelValues(string(o))
	}
	for _, s := range Stages {
		m.InStage.WithLabelValues(string(s))
	}
	for _, r := range []string{workflows.AttemptSucceeded, workflows.AttemptDeclined, workflows.AttemptRequiresAction, workflows.AttemptProcessing, workflows.AttemptError} {
		m.Attempts.WithLabelValues(r, workflows.DeclineClassNone)
	}
	for _, c := range ListedCurrencies {
		m.FailedAmount.WithLabelValues(c)
		m.RecoveredAmt.WithLabelValues(c)
	}
	m.byName = map[string]*family{
		workflows.MetricRecoveriesStarted: {counter: m.Started},
		workflows.MetricRecoveriesEnded:   {labels: []string{workflows.TagOutcome}, counter: m.Ended},
		workflows.MetricFailedAmount:      {labels: []string{workflows.TagCurrency}, counter: m.FailedAmount},
		workflows.MetricRecoveredAmount:   {labels: []string{workflows.TagCurrency}, counter: m.RecoveredAmt},
		workflows.MetricTimeToRecover:     {hist: m.TimeToRecover},
		workflows.MetricPaymentAttempts:   {labels: []string{workflows.TagResult, workflows.TagDeclineClass}, counter: m.Attempts},
		workflows.MetricRecoveriesInStage: {labels: []string{workflows.TagStage}, gauge: m.InStage},
	}
	return m
}

// ListedCurrencies are exported at zero from the start, so that the
// amount series are listed before the first fact; others appear with
// their first amount.
var ListedCurrencies = []string{"usd"}

// Stages are the recovery stages the in-stage gauge reports.
var Stages = []workflows.Stage{workflows.StagePastDue, workflows.StageSuspended, workflows.StageRecovered, workflows.StageDeprovisioned, workflows.StageWaived}

// family is one named series and the labels it keeps, in order.
type family struct {
	labels  []string
	counter *prometheus.CounterVec
	gauge   *prometheus.GaugeVec
	hist    *prometheus.HistogramVec
}

func (f *family) values(tags map[string]string) []string {
	v := make([]string, len(f.labels))
	for i, l := range f.labels {
		v[i] = tags[l]
	}
	return v
}

// MetricsHandler is a Temporal client.MetricsHandler that records into a
// Prometheus registry. The dunning_* series keep the labels registered by
// RegisterRecoveryMetrics and drop any other tag (the SDK adds namespace,
// task queue and workflow type to a workflow's handler). The SDK's own
// temporal_* series are registered on first use, their label set fixed
// by that use: a tag missing later reads "", one added later is dropped,
// so that each name keeps one label set. Timers become histograms in
// seconds (a "_seconds" suffix is added to the SDK's names).
type MetricsHandler struct {
	shared *handlerState
	tags   map[string]string
}

type handlerState struct {
	reg      prometheus.Registerer
	recovery *RecoveryMetrics
	mu       sync.Mutex
	dynamic  map[string]*family
}

var _ client.MetricsHandler = (*MetricsHandler)(nil)

// NewMetricsHandler is a handler recording into reg and rm.
func NewMetricsHandler(reg prometheus.Registerer, rm *RecoveryMetrics) *MetricsHandler {
	return &MetricsHandler{shared: &handlerState{reg: reg, recovery: rm, dynamic: map[string]*family{}}}
}

// WithTags implements client.MetricsHandler.
func (h *MetricsHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[sanitize(k)] = v
	}
	return &MetricsHandler{shared: h.shared, tags: merged}
}

// Counter implements client.MetricsHandler.
func (h *MetricsHandler) Counter(name string) client.MetricsCounter {
	f := h.shared.family(name, h.tags, kindCounter)
	if f == nil || f.counter == nil {
		return client.MetricsNopHandler.Counter(name)
	}
	c := f.counter.WithLabelValues(f.values(h.tags)...)
	return counterFunc(func(d int64) {
		if d > 0 {
			c.Add(float64(d))
		}
	})
}

// Gauge implements client.MetricsHandler.
func (h *MetricsHandler) Gauge(name string) client.MetricsGauge {
	f := h.shared.family(name, h.tags, kindGauge)
	if f == nil || f.gauge == nil {
		return client.MetricsNopHandler.Gauge(name)
	}
	g := f.gauge.WithLabelValues(f.values(h.tags)...)
	return gaugeFunc(g.Set)
}

// Timer implements client.MetricsHandler.
func (h *MetricsHandler) Timer(name string) client.MetricsTimer {
	f := h.shared.family(name, h.tags, kindTimer)
	if f == nil || f.hist == nil {
		return client.MetricsNopHandler.Timer(name)
	}
	o := f.hist.WithLabelValues(f.values(h.tags)...)
	return timerFunc(func(d time.Duration) { o.Observe(d.Seconds()) })
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

type kind int

const (
	kindCounter kind = iota
	kindGauge
	kindTimer
)

// family finds the series of name, registering an SDK series on first
// use; nil when it cannot be registered (a name taken by another kind).
func (s *handlerState) family(name string, tags map[string]string, k kind) *family {
	if s.recovery != nil {
		if f, ok := s.recovery.byName[name]; ok {
			return f
		}
	}
	if strings.HasPrefix(name, "dunning_") {
		return nil // not a series of the recovery's: never registered on the fly
	}
	name = sanitize(name)
	if k == kindTimer && !strings.HasSuffix(name, "_seconds") {
		name += "_seconds"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.dynamic[name]; ok {
		return f
	}
	labels := make([]string, 0, len(tags))
	for l := range tags {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	f := &family{labels: labels}
	var c prometheus.Collector
	help := "Temporal SDK metric " + name + "."
	switch k {
	case kindCounter:
		f.counter = prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		c = f.counter
	case kindGauge:
		f.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		c = f.gauge
	default:
		f.hist = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help}, labels)
		c = f.hist
	}
	if err := s.reg.Register(c); err != nil {
		f = nil
	}
	s.dynamic[name] = f
	return f
}

// sanitize makes a Prometheus name of a metric or tag name.
func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == ':' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, name)
}

// WatchStages keeps the in-stage gauge current: every interval it counts
// the running recoveries in each stage from Temporal visibility, until ctx
// ends. A count that fails leaves the last value and is logged.
func WatchStages(ctx context.Context, c client.Client, rm *RecoveryMetrics, every time.Duration, log *slog.Logger) {
	for {
		for _, st := range Stages {
			n, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: fmt.Sprintf(
				"WorkflowType = '%s' AND ExecutionStatus = 'Running' AND %s = '%s'",
				workflows.PaymentRecoveryWorkflowName, workflows.RecoveryStageKey.GetName(), st)})
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("count recoveries in stage", "stage", st, "error", err)
				}
				continue
			}
			rm.InStage.WithLabelValues(string(st)).Set(float64(n.GetCount()))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
