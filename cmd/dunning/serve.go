package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"golang.org/x/sync/errgroup"

	"dunning/config"
	"dunning/internal/portallink"
	"dunning/webhook"
	"dunning/worker"
	"dunning/workflows"
)

// clientOptions are the Temporal client options of every process: the
// connection as configured (address, namespace, TLS, client certificate,
// API key; config.Config.Temporal) and dunning's logger.
func clientOptions(cfg config.Config, log *slog.Logger) (client.Options, error) {
	opts, err := cfg.TemporalClientOptions()
	if err != nil {
		return client.Options{}, err
	}
	opts.Logger = tlog.NewStructuredLogger(log.With("component", "temporal"))
	return opts, nil
}

// workerMetrics is the worker's Prometheus registry, the recovery's
// series in it, and the Temporal metrics handler that records into it:
// the handler goes into the client the worker runs on, so that what the
// workflows emit reaches /metrics.
type workerMetrics struct {
	reg      *prometheus.Registry
	recovery *worker.RecoveryMetrics
	handler  client.MetricsHandler
}

func newWorkerMetrics() workerMetrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rm := worker.RegisterRecoveryMetrics(reg)
	return workerMetrics{reg: reg, recovery: rm, handler: worker.NewMetricsHandler(reg, rm)}
}

// dialTemporal connects to Temporal, trying again until ctx ends so that a
// worker started before its server waits for it instead of failing.
func dialTemporal(ctx context.Context, cfg config.Config, log *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	delay := 500 * time.Millisecond
	opts, err := clientOptions(cfg, log)
	if err != nil {
		return nil, err
	}
	opts.MetricsHandler = metrics
	log.Info("connecting to temporal", "address", cfg.TemporalAddress, "namespace", cfg.TemporalNamespace,
		"security", cfg.TemporalSecurity())
	for {
		c, err := client.DialContext(ctx, opts)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect to temporal at %s: %w", cfg.TemporalAddress, errors.Join(ctx.Err(), err))
		}
		log.Warn("temporal not reachable yet; trying again", "address", cfg.TemporalAddress, "in", delay, "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

func runWorker(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := worker.RequireLive(cfg); err != nil {
		return err
	}
	wm := newWorkerMetrics()
	c, err := dialTemporal(ctx, cfg, log, wm.handler)
	if err != nil {
		return err
	}
	defer c.Close()
	// A namespace that forgets closed workflows sooner than configured
	// would let a late redelivery start an event's work again: refuse.
	// (dunning dev raises the retention of its own namespace instead.)
	if err := worker.CheckRetention(ctx, c, cfg.TemporalNamespace, cfg.NamespaceRetention); err != nil {
		return err
	}
	return serveWorker(ctx, c, cfg, log, wm)
}

// serveWorker sets up the reconciliation schedule, then runs the worker
// until ctx ends, with its metrics served at WORKER_METRICS_ADDR when set.
func serveWorker(ctx context.Context, c client.Client, cfg config.Config, log *slog.Logger, wm workerMetrics) error {
	if err := worker.EnsureReconcileSchedule(ctx, c, cfg, log); err != nil {
		// The worker still handles every event the webhook hands over;
		// only the safety net is missing until a worker sets it up.
		log.Error("reconciliation schedule not set up: events Stripe fails to deliver are not recovered", "error", err)
	}
	reg := wm.reg
	metrics := worker.NewMetrics(reg)
	g, gctx := errgroup.WithContext(ctx)
	// The metrics outlive the worker's drain: a stopping worker answers
	// /metrics (and so its health check) until its last activity has
	// reported, and only then goes away.
	mctx, stopMetrics := context.WithCancel(context.Background())
	defer stopMetrics()
	if cfg.WorkerMetricsAddr != "" {
		g.Go(func() error { return serveMetrics(mctx, cfg.WorkerMetricsAddr, reg, log) })
		g.Go(func() error {
			worker.WatchStages(gctx, c, wm.recovery, stageCountEvery, log)
			return nil
		})
	}
	g.Go(func() error {
		defer stopMetrics()
		return worker.Run(gctx, c, cfg, log, worker.WithMetrics(metrics))
	})
	return g.Wait()
}

// stageCountEvery is how often the in-stage gauge is counted again: as
// often as Prometheus scrapes (deploy/prometheus), so that a scrape never
// reads a count older than the one before; five counts of the running
// recoveries each time, a light query however many there are.
const stageCountEvery = 15 * time.Second

// serveMetrics serves reg at GET /metrics on addr until ctx ends.
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET "+webhook.PathMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := webhook.NewServer(addr, mux)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("worker metrics on %s (WORKER_METRICS_ADDR): %w", addr, err)
	}
	log.Info("worker metrics listening", "addr", ln.Addr().String(), "path", webhook.PathMetrics)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("worker metrics server on %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down worker metrics server: %w", err)
	}
	return nil
}

func runWebhook(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	// The webhook uses Stripe (the key's mode, portal sessions) and the
	// portal links.
	if err := cfg.RequireLiveFor("webhook", config.IntegrationStripe, config.IntegrationPortalLinks); err != nil {
		return err
	}
	if err := cfg.RequireWebhookSecret(); err != nil {
		return err
	}
	// A lazy client lets the webhook start, and answer 503, while Temporal
	// is down; each request then finds out for itself.
	opts, err := clientOptions(cfg, log)
	if err != nil {
		return err
	}
	log.Info("temporal connection", "address", cfg.TemporalAddress, "namespace", cfg.TemporalNamespace,
		"security", cfg.TemporalSecurity())
	c, err := client.NewLazyClient(opts)
	if err != nil {
		return fmt.Errorf("temporal client for %s: %w", cfg.TemporalAddress, err)
	}
	defer c.Close()
	return serveWebhook(ctx, c, cfg, log, nil)
}

// serveWebhook serves the webhook until ctx ends; observe, when set, sees
// every verified event (the local stack's Stripe stand-in).
func serveWebhook(ctx context.Context, c client.Client, cfg config.Config, log *slog.Logger, observe func(workflows.StripeEvent)) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	portal, err := portalOptions(cfg)
	if err != nil {
		return err
	}
	h, err := webhook.NewHandler(c, webhook.Options{
		Secrets:      cfg.StripeWebhookSecrets,
		Tolerance:    cfg.StripeWebhookTolerance,
		MaxBody:      cfg.WebhookMaxBody,
		StartTimeout: cfg.WebhookStartTimeout,
		TaskQueue:    cfg.TemporalTaskQueue,
		Logger:       log.With("component", "webhook"),
		Registry:     reg,
		Observe:      observe,
		// The key's mode only: the key itself is neither kept nor logged.
		ExpectedLivemode: cfg.StripeLivemode(),
		Portal:           portal,
		TrustedProxies:   cfg.WebhookTrustedProxies,
	})
	if err != nil {
		return err
	}
	log.Info("webhook listening", "addr", cfg.HTTPAddr, "path", webhook.PathStripe, "secrets", len(cfg.StripeWebhookSecrets),
		"portal_links", cfg.PortalLinksConfigured())
	return webhook.Serve(ctx, webhook.NewServer(cfg.HTTPAddr, h), 10*time.Second)
}

// portalOptions configures GET /portal/{token}; nil when portal links are
// not configured, which answers every link with a "not configured" page.
func portalOptions(cfg config.Config) (*webhook.Portal, error) {
	if !cfg.PortalLinksConfigured() {
		return nil, nil
	}
	signer, err := portallink.NewSigner(cfg.PortalLinkSecrets)
	if err != nil {
		return nil, err
	}
	return &webhook.Portal{
		Links:     signer,
		Sessions:  worker.StripeClient(cfg).BillingPortalSessions,
		ReturnURL: cfg.PortalReturnURL,
	}, nil
}
