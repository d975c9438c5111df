package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"dunning/config"
	"dunning/webhook"
	"dunning/worker"
)

func clientOptions(cfg config.Config, log *slog.Logger) client.Options {
	return client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    tlog.NewStructuredLogger(log.With("component", "temporal")),
	}
}

// dialTemporal connects to Temporal, trying again until ctx ends so that a
// worker started before its server waits for it instead of failing.
func dialTemporal(ctx context.Context, cfg config.Config, log *slog.Logger) (client.Client, error) {
	delay := 500 * time.Millisecond
	for {
		c, err := client.DialContext(ctx, clientOptions(cfg, log))
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
	c, err := dialTemporal(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer c.Close()
	return worker.Run(ctx, c, cfg, log)
}

func runWebhook(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := cfg.RequireWebhookSecret(); err != nil {
		return err
	}
	// A lazy client lets the webhook start, and answer 503, while Temporal
	// is down; each request then finds out for itself.
	c, err := client.NewLazyClient(clientOptions(cfg, log))
	if err != nil {
		return fmt.Errorf("temporal client for %s: %w", cfg.TemporalAddress, err)
	}
	defer c.Close()
	return serveWebhook(ctx, c, cfg, log)
}

func serveWebhook(ctx context.Context, c client.Client, cfg config.Config, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h, err := webhook.NewHandler(c, webhook.Options{
		Secrets:      cfg.StripeWebhookSecrets,
		Tolerance:    cfg.StripeWebhookTolerance,
		MaxBody:      cfg.WebhookMaxBody,
		StartTimeout: cfg.WebhookStartTimeout,
		TaskQueue:    cfg.TemporalTaskQueue,
		Logger:       log.With("component", "webhook"),
		Registry:     reg,
	})
	if err != nil {
		return err
	}
	log.Info("webhook listening", "addr", cfg.HTTPAddr, "path", webhook.PathStripe, "secrets", len(cfg.StripeWebhookSecrets))
	return webhook.Serve(ctx, webhook.NewServer(cfg.HTTPAddr, h), 10*time.Second)
}
