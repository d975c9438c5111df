// Package worker wires dunning's Temporal worker: it builds what the
// workflows and activities need from config, registers them and runs.
package worker

import (
	"context"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"dunning/config"
	"dunning/workflows"
)

// New returns a worker for cfg's task queue with every dunning workflow and
// activity registered.
func New(c client.Client, cfg config.Config, log *slog.Logger) (sdkworker.Worker, error) {
	w := sdkworker.New(c, cfg.TemporalTaskQueue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(workflows.StripeEventWorkflow, workflow.RegisterOptions{Name: workflows.StripeEventWorkflowName})
	log.Info("worker ready", "task_queue", cfg.TemporalTaskQueue, "namespace", cfg.TemporalNamespace, "live", cfg.Live())
	return w, nil
}

// Run runs a worker until ctx is cancelled.
func Run(ctx context.Context, c client.Client, cfg config.Config, log *slog.Logger) error {
	w, err := New(c, cfg, log)
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %s: %w", cfg.TemporalTaskQueue, err)
	}
	<-ctx.Done()
	w.Stop()
	return nil
}
