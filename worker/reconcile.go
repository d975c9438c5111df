package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"

	"dunning/activities"
	"dunning/config"
	"dunning/internal/stripeevent"
	"dunning/webhook"
	"dunning/workflows"
)

// eventStartTimeout bounds the start of one listed event's workflow.
const eventStartTimeout = 10 * time.Second

// EventReducer returns what reconciliation decodes each listed event with:
// it decodes the event as the webhook does, marked with livemode (the mode
// of the Stripe API key, nil when unknown), and returns the webhook's
// reduced event as JSON, so that no personal data of the raw event (emails,
// names, addresses, phone numbers) reaches workflow history. Types dunning
// does not handle are EventIgnored; an event that cannot be read and names
// no usable event ID is EventInvalid. One that names a usable ID comes back
// with Unreadable set, to be started all the same, as the webhook starts
// it, to alert ops once.
func EventReducer(livemode *bool) func(json.RawMessage) (json.RawMessage, string, error) {
	return func(raw json.RawMessage) (json.RawMessage, string, error) {
		ev, err := stripeevent.Read(raw, livemode)
		if _, handled := workflows.RouteOf(ev.Type); !handled && ev.Type != "" {
			return nil, activities.EventIgnored, nil
		}
		if err != nil {
			return nil, activities.EventInvalid, err
		}
		reduced, err := json.Marshal(ev)
		if err != nil {
			return nil, activities.EventInvalid, fmt.Errorf("encode event %s: %w", ev.ID, err)
		}
		return reduced, "", nil
	}
}

// ReducedStarter returns what reconciliation hands each reduced event (of
// EventReducer) to: it starts the event's workflow exactly as the webhook
// does, so that an event the webhook took is found as a duplicate and one
// it never saw is started. An unreadable event is started, and counted
// invalid.
func ReducedStarter(c client.Client, taskQueue string) func(context.Context, json.RawMessage) (string, error) {
	return func(ctx context.Context, reduced json.RawMessage) (string, error) {
		var ev workflows.StripeEvent
		if err := json.Unmarshal(reduced, &ev); err != nil || !stripeevent.ValidID(ev.ID) {
			return activities.EventInvalid, fmt.Errorf("not a reduced stripe event: %v", err)
		}
		ctx, cancel := context.WithTimeout(ctx, eventStartTimeout)
		defer cancel()
		duplicate, err := webhook.Start(ctx, c, ev, taskQueue)
		switch {
		case err != nil:
			return "", fmt.Errorf("start workflow of event %s: %w", ev.ID, err)
		case ev.Unreadable != "":
			return activities.EventInvalid, fmt.Errorf("%s; workflow %s alerts ops", ev.Unreadable, workflows.EventWorkflowID(ev.ID))
		case duplicate:
			return activities.EventDuplicate, nil
		}
		return activities.EventStarted, nil
	}
}

// EventStarter returns what reconciliations that listed raw events hand
// each one to: EventReducer, then ReducedStarter.
func EventStarter(c client.Client, taskQueue string, livemode *bool) func(context.Context, json.RawMessage) (string, error) {
	reduce, start := EventReducer(livemode), ReducedStarter(c, taskQueue)
	return func(ctx context.Context, raw json.RawMessage) (string, error) {
		reduced, outcome, err := reduce(raw)
		if outcome != "" {
			return outcome, err
		}
		return start(ctx, reduced)
	}
}

// KnownEvents returns what reconciliation asks which listed events dunning
// already has: one visibility query, WorkflowId IN (…), for the workflows
// of all the IDs it is given. Visibility trails a start by a moment, so an
// event just taken may be missed here; its start is then rejected as a
// duplicate, which stays the last word.
func KnownEvents(c client.Client) func(context.Context, []string) (map[string]bool, error) {
	return func(ctx context.Context, eventIDs []string) (map[string]bool, error) {
		byWorkflow := make(map[string]string, len(eventIDs))
		quoted := make([]string, 0, len(eventIDs))
		for _, id := range eventIDs {
			if !stripeevent.ValidID(id) {
				continue // never quoted into a query; StartEvents counts it
			}
			wid := workflows.EventWorkflowID(id)
			if _, dup := byWorkflow[wid]; dup {
				continue
			}
			byWorkflow[wid] = id
			quoted = append(quoted, "'"+wid+"'")
		}
		known := make(map[string]bool, len(quoted))
		if len(quoted) == 0 {
			return known, nil
		}
		req := &workflowservice.ListWorkflowExecutionsRequest{
			PageSize: int32(len(quoted)),
			Query:    "WorkflowId IN (" + strings.Join(quoted, ",") + ")",
		}
		for {
			resp, err := c.ListWorkflow(ctx, req)
			if err != nil {
				return nil, fmt.Errorf("list the workflows of %d events: %w", len(quoted), err)
			}
			for _, e := range resp.GetExecutions() {
				if id, ok := byWorkflow[e.GetExecution().GetWorkflowId()]; ok {
					known[id] = true
				}
			}
			if len(resp.GetNextPageToken()) == 0 {
				return known, nil
			}
			req.NextPageToken = resp.GetNextPageToken()
		}
	}
}

// watermarkRuns is how many of the newest complete reconciliations are
// read for the newest watermark; runs are one at a time, so the newest
// one carries it unless it was a dry run.
const watermarkRuns = 10

// LastWatermark returns what reconciliation reads the last complete run's
// watermark with: one visibility query for the newest completed
// ReconcileEventsWorkflow runs, whose memo holds the end of the window
// each listed (workflows.ReconcileWatermarkMemo). A run that failed,
// was terminated or continued as new is not Completed, so only a whole
// window counts. The newest watermark wins; none is a zero one.
func LastWatermark(c client.Client) func(context.Context) (activities.ReconcileWatermark, error) {
	dc := converter.GetDefaultDataConverter()
	return func(ctx context.Context) (activities.ReconcileWatermark, error) {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			PageSize: watermarkRuns,
			Query: fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Completed'",
				workflows.ReconcileEventsWorkflowName),
		})
		if err != nil {
			return activities.ReconcileWatermark{}, fmt.Errorf("list completed reconciliations: %w", err)
		}
		var best activities.ReconcileWatermark
		for _, e := range resp.GetExecutions() {
			fields := e.GetMemo().GetFields()
			to, from := fields[workflows.ReconcileWatermarkMemo], fields[workflows.ReconcileCoveredFromMemo]
			if to == nil || from == nil {
				continue
			}
			var wm activities.ReconcileWatermark
			if dc.FromPayload(to, &wm.To) != nil || dc.FromPayload(from, &wm.CoveredFrom) != nil || wm.To.IsZero() {
				continue
			}
			if wm.To.After(best.To) {
				best = wm
			}
		}
		return best, nil
	}
}

// newReconciler wires the reconciliation activities: Stripe's REST API as
// configured (no key: dry run), the decoder and the event starters.
func newReconciler(c client.Client, cfg config.Config) *activities.Reconciler {
	return &activities.Reconciler{
		StripeBaseURL: cfg.StripeAPIBaseURL,
		StripeAPIKey:  cfg.StripeAPIKey,
		Reduce:        EventReducer(cfg.StripeLivemode()),
		StartReduced:  ReducedStarter(c, cfg.TemporalTaskQueue),
		StartEvent:    EventStarter(c, cfg.TemporalTaskQueue, cfg.StripeLivemode()),
		Known:         KnownEvents(c),
		Watermark:     LastWatermark(c),
	}
}

// Metrics are the worker's own Prometheus series.
type Metrics struct {
	runs   prometheus.Counter
	events *prometheus.CounterVec
}

// Labels of dunning_reconcile_events_total.
const (
	ReconcileFound        = "found"
	ReconcileStarted      = "started"
	ReconcileAlreadyKnown = "already_known"
	ReconcileIgnored      = "ignored"
	ReconcileInvalid      = "invalid"
)

// NewMetrics registers the worker's series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dunning_reconcile_runs_total",
			Help: "Reconciliations of Stripe's event list that listed their first page.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dunning_reconcile_events_total",
			Help: "Events reconciliation found in Stripe's list (found), and what became of them: started now (never delivered), already known, ignored, invalid.",
		}, []string{"result"}),
	}
	reg.MustRegister(m.runs, m.events)
	// Every result is exported from the start, so that a rate over one
	// that has not happened yet reads 0 rather than nothing.
	for _, r := range []string{ReconcileFound, ReconcileStarted, ReconcileAlreadyKnown, ReconcileIgnored, ReconcileInvalid} {
		m.events.WithLabelValues(r)
	}
	return m
}

// Run counts one reconciliation.
func (m *Metrics) Run() { m.runs.Inc() }

// Event counts one listed event by its outcome.
func (m *Metrics) Event(outcome string) {
	m.events.WithLabelValues(ReconcileFound).Inc()
	switch outcome {
	case activities.EventStarted:
		m.events.WithLabelValues(ReconcileStarted).Inc()
	case activities.EventDuplicate:
		m.events.WithLabelValues(ReconcileAlreadyKnown).Inc()
	case activities.EventIgnored:
		m.events.WithLabelValues(ReconcileIgnored).Inc()
	case activities.EventInvalid:
		m.events.WithLabelValues(ReconcileInvalid).Inc()
	}
}

// Option changes what New and Run build.
type Option func(*options)

type options struct {
	metrics      *Metrics
	interceptors []interceptor.WorkerInterceptor
}

// WithMetrics has the worker's activities count into m.
func WithMetrics(m *Metrics) Option { return func(o *options) { o.metrics = m } }

// WithInterceptors adds interceptors after the worker's own; tests use it
// to fail a workflow task at a chosen point.
func WithInterceptors(i ...interceptor.WorkerInterceptor) Option {
	return func(o *options) { o.interceptors = append(o.interceptors, i...) }
}

func applyOptions(acts *activities.Activities, opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.metrics != nil && acts.Reconcile != nil {
		acts.Reconcile.Metrics = o.metrics
	}
	return o
}

// reconcileSchedule is the schedule cfg asks for.
type reconcileSchedule struct {
	interval  time.Duration
	lookback  time.Duration
	overlap   time.Duration
	retention time.Duration
	taskQueue string
}

func (s reconcileSchedule) spec() client.ScheduleSpec {
	return client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: s.interval}}}
}

func (s reconcileSchedule) action() *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		// The server appends the scheduled time to make each run's ID.
		ID:            workflows.ReconcileScheduleID,
		Workflow:      workflows.ReconcileEventsWorkflowName,
		Args:          []any{s.input()},
		TaskQueue:     s.taskQueue,
		StaticSummary: fmt.Sprintf("Reconcile Stripe events since the last run (less %s), or of the last %s", s.overlap, s.lookback),
	}
}

// matches says whether an existing schedule already does what s asks.
func (s reconcileSchedule) matches(have client.Schedule) bool {
	if have.Spec == nil || len(have.Spec.Intervals) != 1 || len(have.Spec.Calendars) > 0 || len(have.Spec.CronExpressions) > 0 ||
		have.Spec.Intervals[0] != (client.ScheduleIntervalSpec{Every: s.interval}) {
		return false
	}
	if have.Policy == nil || have.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP {
		return false
	}
	act, ok := have.Action.(*client.ScheduleWorkflowAction)
	if !ok || act.Workflow != workflows.ReconcileEventsWorkflowName || act.TaskQueue != s.taskQueue || len(act.Args) != 1 {
		return false
	}
	p, ok := act.Args[0].(*commonpb.Payload)
	if !ok {
		return false
	}
	var in workflows.ReconcileInput
	if err := converter.GetDefaultDataConverter().FromPayload(p, &in); err != nil {
		return false
	}
	return in == s.input()
}

func (s reconcileSchedule) input() workflows.ReconcileInput {
	return workflows.ReconcileInput{Lookback: s.lookback, Overlap: s.overlap, Retention: s.retention}
}

// EnsureReconcileSchedule makes the Temporal Schedule that runs
// ReconcileEventsWorkflow match cfg: it creates it, or updates an existing
// one to cfg's interval and look-back (keeping its state, so that a
// schedule an operator paused stays paused), or deletes it when
// RECONCILE_INTERVAL is 0. Every worker calls it at start; calls from
// several workers at once end with one schedule.
func EnsureReconcileSchedule(ctx context.Context, c client.Client, cfg config.Config, log *slog.Logger) error {
	sc := c.ScheduleClient()
	handle := sc.GetHandle(ctx, workflows.ReconcileScheduleID)
	if cfg.ReconcileInterval <= 0 {
		err := handle.Delete(ctx)
		var notFound *serviceerror.NotFound
		switch {
		case errors.As(err, &notFound):
			log.Info("reconciliation off (RECONCILE_INTERVAL=0)", "schedule", workflows.ReconcileScheduleID)
			return nil
		case err != nil:
			return fmt.Errorf("delete schedule %s (RECONCILE_INTERVAL=0): %w", workflows.ReconcileScheduleID, err)
		}
		log.Info("reconciliation off (RECONCILE_INTERVAL=0): schedule deleted", "schedule", workflows.ReconcileScheduleID)
		return nil
	}

	want := reconcileSchedule{interval: cfg.ReconcileInterval, lookback: cfg.ReconcileLookback, overlap: cfg.ReconcileOverlap,
		retention: cfg.NamespaceRetention, taskQueue: cfg.TemporalTaskQueue}
	logArgs := []any{"schedule", workflows.ReconcileScheduleID, "interval", want.interval, "lookback", want.lookback,
		"overlap", want.overlap, "retention", want.retention,
		"task_queue", want.taskQueue}
	// A schedule deleted between a failed create and the update is
	// created again on the next round.
	for round := 1; ; round++ {
		_, err := sc.Create(ctx, client.ScheduleOptions{
			ID:      workflows.ReconcileScheduleID,
			Spec:    want.spec(),
			Action:  want.action(),
			Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			Note:    "Created by the dunning worker from RECONCILE_INTERVAL, RECONCILE_LOOKBACK and RECONCILE_OVERLAP; every worker start sets them again.",
			Memo: map[string]any{
				"description": "Lists Stripe's events of the handled types and starts StripeEventWorkflow for any dunning does not have.",
			},
		})
		if err == nil {
			log.Info("reconciliation schedule created", logArgs...)
			return nil
		}
		var exists *serviceerror.AlreadyExists
		if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) && !errors.As(err, &exists) {
			return fmt.Errorf("create schedule %s: %w", workflows.ReconcileScheduleID, err)
		}

		changed := false
		err = handle.Update(ctx, client.ScheduleUpdateOptions{
			DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
				have := in.Description.Schedule
				if want.matches(have) {
					return nil, temporal.ErrSkipScheduleUpdate
				}
				changed = true
				spec := want.spec()
				policy := client.SchedulePolicies{}
				if have.Policy != nil {
					policy = *have.Policy
				}
				policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
				return &client.ScheduleUpdate{Schedule: &client.Schedule{
					Spec:   &spec,
					Action: want.action(),
					Policy: &policy,
					State:  have.State,
				}}, nil
			},
		})
		var notFound *serviceerror.NotFound
		switch {
		case errors.As(err, &notFound) && round < 3:
			continue
		case err != nil:
			return fmt.Errorf("update schedule %s: %w", workflows.ReconcileScheduleID, err)
		case changed:
			log.Info("reconciliation schedule updated", logArgs...)
		default:
			log.Info("reconciliation schedule up to date", logArgs...)
		}
		return nil
	}
}
