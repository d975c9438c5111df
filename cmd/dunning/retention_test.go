package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"dunning/internal/testenv"
	"dunning/worker"
)

// `dunning worker` refuses to start on a namespace whose retention is
// shorter than TEMPORAL_NAMESPACE_RETENTION, saying how to raise it, and
// changes nothing; raised, the same worker starts.
func TestWorkerRefusesANamespaceWithShortRetention(t *testing.T) {
	tmp := testenv.StartTemporal(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	setRetention := func(d time.Duration) {
		t.Helper()
		_, err := tmp.Client.WorkflowService().UpdateNamespace(context.Background(), &workflowservice.UpdateNamespaceRequest{
			Namespace: tmp.Namespace,
			Config:    &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(d)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg := tmp.Config(t, map[string]string{"TEMPORAL_NAMESPACE_RETENTION": "240h", "RECONCILE_INTERVAL": "0"})

	setRetention(72 * time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := runWorker(ctx, cfg, quiet)
	var short *worker.RetentionTooShortError
	if !errors.As(err, &short) {
		t.Fatalf("worker on a 72h namespace with TEMPORAL_NAMESPACE_RETENTION=240h: %v, want a refusal", err)
	}
	if !strings.Contains(err.Error(), "temporal operator namespace update --namespace default --retention 240h") {
		t.Errorf("the refusal does not say how to raise the retention: %v", err)
	}

	// The operator's 168h (dunning's minimum) is still short of what this
	// worker is configured to need.
	setRetention(168 * time.Hour)
	if err := runWorker(ctx, cfg, quiet); !errors.As(err, &short) {
		t.Errorf("worker on a 168h namespace with TEMPORAL_NAMESPACE_RETENTION=240h: %v, want a refusal", err)
	}

	// Raised, the worker runs until it is stopped.
	setRetention(240 * time.Hour)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runWorker(runCtx, cfg, quiet) }()
	select {
	case err := <-done:
		t.Fatalf("worker on a 240h namespace returned before it was stopped: %v", err)
	case <-time.After(3 * time.Second):
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("worker stopped with %v", err)
	}
}
