// Command dunning is the one binary of the dunning service.
//
//	dunning webhook      serve POST /webhooks/stripe and hand events to Temporal
//	dunning worker       run the Temporal worker
//	dunning dev          run everything locally (what `make run` calls)
//	dunning send-event   post a signed, real-shaped Stripe event to a webhook
//	dunning portal-link  print a customer's one-click link to update a payment method
//	dunning stripe-setup create or update the Stripe webhook endpoint
//	dunning report       how much dunning recovered, from Temporal visibility
//	dunning healthcheck  probe the local webhook's /healthz, or --url (container health)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"dunning/config"
	"dunning/webhook"
)

const usage = `usage: dunning <command> [flags]

commands:
  webhook      serve the Stripe webhook on HTTP_ADDR and hand events to Temporal
  worker       run the Temporal worker on TEMPORAL_TASK_QUEUE
  dev          run everything locally: Temporal dev server, stripe-mock, worker, webhook
  send-event   post a signed, real-shaped Stripe event to a webhook
  portal-link  print a customer's one-click link to update a payment method (PUBLIC_URL/portal/{token})
  stripe-setup create or update the Stripe webhook endpoint to send exactly the handled events
  report       how much dunning recovered: [--since 720h] [--until …] [--format text|json|csv]
  healthcheck  exit 0 when the webhook on HTTP_ADDR answers /healthz, or --url answers 200 (for containers)

Configuration comes from the environment; see README.md.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := stopContext()
	defer stop()

	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "webhook":
		err = withConfig(ctx, runWebhook)
	case "worker":
		err = withConfig(ctx, runWorker)
	case "dev":
		err = runDev(ctx, args)
	case "send-event":
		err = runSendEvent(ctx, args, os.Stdout)
	case "portal-link":
		err = runPortalLink(args, os.Stdout)
	case "stripe-setup":
		err = runStripeSetup(ctx, args, os.Stdout)
	case "report":
		err = runReport(ctx, args, os.Stdout)
	case "healthcheck":
		err = runHealthcheck(ctx, args)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "dunning: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "dunning %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func withConfig(ctx context.Context, run func(context.Context, config.Config, *slog.Logger) error) error {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	return run(ctx, cfg, newLogger(cfg))
}

func newLogger(cfg config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config.Load
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// runHealthcheck probes the webhook's /healthz on HTTP_ADDR, or the URL
// given with --url (the worker's /metrics on WORKER_METRICS_ADDR), and
// fails unless it answers 200 within 3 seconds.
func runHealthcheck(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	url := fs.String("url", "http://"+displayAddr(envOr("HTTP_ADDR", ":8080"))+webhook.PathHealthz,
		"URL to probe, e.g. http://127.0.0.1:9464/metrics for a worker")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", *url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: %s", *url, resp.Status)
	}
	return nil
}

// stopContext is cancelled by the first SIGINT or SIGTERM, which starts a
// clean stop (a worker lets its running activities finish within
// WORKER_STOP_TIMEOUT). A second one exits at once: what was running is
// tried again elsewhere, under the same idempotency keys, once its
// heartbeat stops.
func stopContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
			return
		}
		s := <-sigs
		fmt.Fprintf(os.Stderr, "dunning: %s again: exiting now, without waiting for running work\n", s)
		code := 1
		if n, ok := s.(syscall.Signal); ok {
			code = 128 + int(n)
		}
		os.Exit(code)
	}()
	return ctx, func() { signal.Stop(sigs); cancel() }
}
