package webhook

import (
	"github.com/prometheus/client_golang/prometheus"

	"dunning/workflows"
)

// Outcomes of a webhook request, the label of dunning_webhook_requests_total.
const (
	OutcomeStarted          = "started"
	OutcomeDuplicate        = "duplicate"
	OutcomeIgnored          = "ignored"
	OutcomeBadSignature     = "bad_signature"
	OutcomeBadEvent         = "bad_event"
	OutcomeTooLarge         = "too_large"
	OutcomeBadContentType   = "bad_content_type"
	OutcomeTemporalDown     = "temporal_unavailable"
	OutcomeMethodNotAllowed = "method_not_allowed"
	// OutcomeUnreadable: a verified event that does not decode, started
	// with the reason so that its workflow alerts ops; answered 200, since
	// Stripe's retries would not make it readable.
	OutcomeUnreadable = "unreadable"
	// OutcomeUnreadableNoID: a verified body that does not decode and
	// names no usable event ID, so no workflow can be started for it;
	// answered 200 and logged at error level.
	OutcomeUnreadableNoID = "unreadable_no_id"
	// OutcomeWrongMode: a verified event of the other Stripe mode than the
	// API key, started so that its workflow alerts ops; not acted on.
	OutcomeWrongMode = "wrong_mode"
)

// unknownType labels an event whose type could not be read.
const unknownType = "unknown"

// Metrics are the webhook's Prometheus series.
type Metrics struct {
	requests       *prometheus.CounterVec
	verifyFailures *prometheus.CounterVec
	duplicates     prometheus.Counter
	ignored        *prometheus.CounterVec
	unreadable     *prometheus.CounterVec
	startLatency   *prometheus.HistogramVec
	portal         *prometheus.CounterVec
}

// NewMetrics registers the webhook's series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dunning_webhook_requests_total",
			Help: "Stripe webhook requests by outcome.",
		}, []string{"outcome"}),
		verifyFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dunning_webhook_verification_failures_total",
			Help: "Stripe-Signature verification failures by reason.",
		}, []string{"reason"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dunning_webhook_duplicates_total",
			Help: "Deliveries of an event whose workflow already exists.",
		}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dunning_webhook_ignored_total",
			Help: "Verified events of a type dunning does not handle, by type.",
		}, []string{"type"}),
		unreadable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dunning_webhook_unreadable_total",
			Help: "Verified deliveries of a handled or unreadable type that do not decode, by type (\"" + unknownType + "\" when unreadable).",
		}, []string{"type"}),
		startLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dunning_webhook_start_seconds",
			Help:    "Time to hand an event to Temporal, by result.",
			Buckets: []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"result"}),
		portal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dunning_portal_requests_total",
			Help: "Customers' one-click links (GET /portal/{token}) by outcome.",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.requests, m.verifyFailures, m.duplicates, m.ignored, m.unreadable, m.startLatency, m.portal)
	// Every outcome is exported from the start, so that a rate over a
	// series that has not happened yet reads 0 rather than nothing.
	for _, o := range []string{OutcomeStarted, OutcomeDuplicate, OutcomeIgnored, OutcomeBadSignature,
		OutcomeBadEvent, OutcomeTooLarge, OutcomeBadContentType, OutcomeTemporalDown, OutcomeMethodNotAllowed,
		OutcomeUnreadable, OutcomeUnreadableNoID, OutcomeWrongMode} {
		m.requests.WithLabelValues(o)
	}
	for _, typ := range append(workflows.HandledEventTypes(), unknownType) {
		m.unreadable.WithLabelValues(typ)
	}
	for _, o := range portalOutcomes {
		m.portal.WithLabelValues(o)
	}
	return m
}
