// Package worker wires dunning's Temporal worker: it builds what the
// workflows and activities need from config, registers them and runs.
package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	stripeclient "github.com/stripe/stripe-go/v76/client"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"dunning/activities"
	"dunning/amberflo"
	"dunning/config"
	"dunning/controlplane"
	"dunning/internal/portallink"
	"dunning/notify"
	"dunning/workflows"
)

// MaxGraceExtension bounds one operator extension of a grace period.
const MaxGraceExtension = 30 * 24 * time.Hour

// Settings are the recovery timings a new recovery takes from cfg.
func Settings(cfg config.Config) workflows.RecoverySettings {
	return workflows.RecoverySettings{
		RetrySchedule:      cfg.RetrySchedule,
		GracePeriod:        cfg.GracePeriod,
		DeprovisionAfter:   cfg.DeprovisionAfter,
		CardUpdateDebounce: cfg.CardUpdateDebounce,
		MaxGraceExtension:  MaxGraceExtension,
		InFlightAlertAfter: cfg.InFlightAlertAfter,
		RecheckAlertAfter:  cfg.RecheckAlertAfter,
		MaxAttemptsPerCard: cfg.MaxAttemptsPerCard,
	}
}

// NewActivities builds the activities with a client for every configured
// integration; the others stay nil and run dry.
func NewActivities(c client.Client, cfg config.Config, log *slog.Logger) (*activities.Activities, error) {
	acts := &activities.Activities{
		Temporal:              c,
		TaskQueue:             cfg.TemporalTaskQueue,
		CustomerIDMetadataKey: cfg.CustomerIDMetadataKey,
		Log:                   log,
	}
	acts.Starter = starter(cfg)
	acts.Reconcile = newReconciler(c, cfg)
	if cfg.StripeAPIKey != "" {
		acts.Stripe = StripeClient(cfg)
	}
	var err error
	if cfg.PortalLinksConfigured() {
		if acts.PortalLinks, err = portallink.NewLinks(cfg.PublicURL, cfg.PortalLinkSecrets, cfg.PortalLinkTTL); err != nil {
			return nil, fmt.Errorf("portal links: %w", err)
		}
	}
	if cfg.AmberfloAPIKey != "" {
		if acts.Amberflo, err = amberflo.New(amberflo.Config{BaseURL: cfg.AmberfloBaseURL, APIKey: cfg.AmberfloAPIKey}); err != nil {
			return nil, fmt.Errorf("amberflo client: %w", err)
		}
	}
	if cfg.ControlPlaneURL != "" {
		if acts.Control, err = controlplane.New(controlplane.Config{BaseURL: cfg.ControlPlaneURL, Secret: cfg.ControlPlaneSecret}); err != nil {
			return nil, fmt.Errorf("control plane client: %w", err)
		}
	}
	if cfg.AlertWebhookURL != "" {
		if acts.Alerts, err = notify.NewAlerter(notify.AlertConfig{WebhookURL: cfg.AlertWebhookURL}); err != nil {
			return nil, fmt.Errorf("alert webhook: %w", err)
		}
	}
	if cfg.CustomerNoticeURL != "" {
		if acts.Notices, err = notify.NewNoticeSender(notify.NoticeConfig{URL: cfg.CustomerNoticeURL, Secret: cfg.CustomerNoticeSecret}); err != nil {
			return nil, fmt.Errorf("customer notices: %w", err)
		}
	}
	return acts, nil
}

// StripeClient is the Stripe API client for cfg's key and base URL. It
// makes one attempt per call: Temporal retries an activity with the same
// idempotency key, and a customer waiting for the portal clicks again.
func StripeClient(cfg config.Config) *stripeclient.API {
	bc := &stripe.BackendConfig{
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelError},
	}
	if cfg.StripeAPIBaseURL != "" {
		bc.URL = stripe.String(cfg.StripeAPIBaseURL)
	}
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, bc)
	return stripeclient.New(cfg.StripeAPIKey, &stripe.Backends{API: backend, Connect: backend, Uploads: backend})
}

// starter builds the start of the workflows that signals may start, with
// the settings config gives them now; lives already running keep theirs.
func starter(cfg config.Config) func(activities.StartRequest) (activities.StartSpec, error) {
	settings := Settings(cfg)
	return func(req activities.StartRequest) (activities.StartSpec, error) {
		customer := req.StripeCustomerID
		switch req.Kind {
		case activities.StartRecovery:
			return activities.StartSpec{
				WorkflowType: workflows.PaymentRecoveryWorkflowName,
				Args:         workflows.RecoveryInput{StripeCustomerID: customer, Settings: settings},
				SearchAttributes: temporal.NewSearchAttributes(
					workflows.StripeCustomerIDKey.ValueSet(customer),
					workflows.RecoveryStageKey.ValueSet(string(workflows.StagePastDue))),
				Summary:   "Payment recovery for " + customer,
				OpensWith: workflows.SignalPaymentFailed,
				ArgsWith: func(signal json.RawMessage) (any, error) {
					var f workflows.PaymentFailedSignal
					if err := json.Unmarshal(signal, &f); err != nil {
						return nil, fmt.Errorf("the failure a recovery opens with: %w", err)
					}
					return workflows.RecoveryInput{StripeCustomerID: customer, Settings: settings, Pending: []workflows.PaymentFailedSignal{f}, Opening: true}, nil
				},
				LeavesPrevious: func(signal json.RawMessage) bool {
					var f workflows.PaymentFailedSignal
					return json.Unmarshal(signal, &f) == nil && f.FirstBeforeStart != nil
				},
				WithPrevious: func(signal json.RawMessage, latest activities.EndedRecovery, err error) (json.RawMessage, error) {
					var f workflows.PaymentFailedSignal
					if err := json.Unmarshal(signal, &f); err != nil {
						return nil, fmt.Errorf("the failure a recovery opens with: %w", err)
					}
					return json.Marshal(f.WithPrevious(latest, err))
				},
			}, nil
		case activities.StartCardExpiry:
			var in workflows.CardExpiryInput
			if err := json.Unmarshal(req.Args, &in); err != nil {
				return activities.StartSpec{}, fmt.Errorf("card expiry input: %w", err)
			}
			in.StripeCustomerID, in.ReminderBefore = customer, cfg.CardReminderBefore
			return activities.StartSpec{
				WorkflowType:     workflows.CardExpiryWorkflowName,
				Args:             in,
				SearchAttributes: temporal.NewSearchAttributes(workflows.StripeCustomerIDKey.ValueSet(customer)),
				Summary:          fmt.Sprintf("Card %s ending %s expires %02d/%d (%s)", in.Card.Brand, in.Card.Last4, in.Card.ExpMonth, in.Card.ExpYear, customer),
			}, nil
		}
		return activities.StartSpec{}, fmt.Errorf("unknown workflow kind %q", req.Kind)
	}
}

// New returns a worker for cfg's task queue with every dunning workflow and
// activity registered.
func New(c client.Client, cfg config.Config, log *slog.Logger, opts ...Option) (sdkworker.Worker, error) {
	if err := RequireLive(cfg); err != nil {
		return nil, err
	}
	acts, err := NewActivities(c, cfg, log)
	if err != nil {
		return nil, err
	}
	o := applyOptions(acts, opts)
	// The cache is per process; a smaller one trades memory for replays
	// of workflows that wake after being evicted.
	sdkworker.SetStickyWorkflowCacheSize(cfg.WorkflowCacheSize)
	w := sdkworker.New(c, cfg.TemporalTaskQueue, sdkworker.Options{
		MaxConcurrentWorkflowTaskPollers: cfg.WorkflowTaskPollers,
		// On Stop (SIGTERM) running activities get WORKER_STOP_TIMEOUT to
		// finish and report; only then are their contexts cancelled.
		WorkerStopTimeout: cfg.WorkerStopTimeout,
		// Activities with a heartbeat timeout heartbeat while they run, so
		// that one on a worker that died is tried again within seconds.
		Interceptors: append([]interceptor.WorkerInterceptor{Heartbeats()}, o.interceptors...),
	})
	RegisterWorkflows(w)
	w.RegisterActivity(acts)
	var live, dry []string
	for _, name := range slices.Sorted(maps.Keys(cfg.Live())) {
		on := cfg.Live()[name]
		if on {
			live = append(live, name)
		} else {
			dry = append(dry, name)
			log.Warn("integration runs dry: what it would do is only logged and recorded", "integration", name,
				"set", strings.Join(cfg.Missing(name), ","))
		}
	}
	log.Info("worker ready", "task_queue", cfg.TemporalTaskQueue, "namespace", cfg.TemporalNamespace,
		"live", strings.Join(live, ","), "dry_run", strings.Join(dry, ","))
	return w, nil
}

// RequireLive refuses, naming DUNNING_REQUIRE_LIVE, a configuration in
// which an integration it lists would run dry: the worker uses every one.
func RequireLive(cfg config.Config) error {
	return cfg.RequireLiveFor("worker", slices.Collect(maps.Keys(cfg.Live()))...)
}

// RegisterWorkflows registers dunning's workflows on a worker or a
// replayer, under the names in workflows/api.go.
func RegisterWorkflows(w interface {
	RegisterWorkflowWithOptions(any, workflow.RegisterOptions)
}) {
	w.RegisterWorkflowWithOptions(workflows.StripeEventWorkflow, workflow.RegisterOptions{Name: workflows.StripeEventWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.PaymentRecoveryWorkflow, workflow.RegisterOptions{Name: workflows.PaymentRecoveryWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.ReconcileEventsWorkflow, workflow.RegisterOptions{Name: workflows.ReconcileEventsWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.CardExpiryWorkflow, workflow.RegisterOptions{Name: workflows.CardExpiryWorkflowName})
}

// Run runs a worker until ctx is cancelled, then stops it: it polls no
// more tasks and waits up to WORKER_STOP_TIMEOUT for the activities it
// runs to finish.
func Run(ctx context.Context, c client.Client, cfg config.Config, log *slog.Logger, opts ...Option) error {
	w, err := New(c, cfg, log, opts...)
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %s: %w", cfg.TemporalTaskQueue, err)
	}
	<-ctx.Done()
	log.Info("worker stopping: running activities may finish", "within", cfg.WorkerStopTimeout)
	w.Stop()
	log.Info("worker stopped")
	return nil
}
