package worker_test

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

	"dunning/config"
	"dunning/internal/testenv"
	"dunning/worker"
)

// setRetention sets the namespace's retention as an operator would.
func setRetention(t *testing.T, tmp *testenv.Temporal, d time.Duration) {
	t.Helper()
	_, err := tmp.Client.WorkflowService().UpdateNamespace(context.Background(), &workflowservice.UpdateNamespaceRequest{
		Namespace: tmp.Namespace,
		Config:    &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(d)},
	})
	if err != nil {
		t.Fatalf("set retention to %s: %v", d, err)
	}
}

func retentionOf(t *testing.T, tmp *testenv.Temporal) time.Duration {
	t.Helper()
	ns, err := tmp.Client.WorkflowService().DescribeNamespace(context.Background(), &workflowservice.DescribeNamespaceRequest{Namespace: tmp.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	return ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration()
}

// The worker's check refuses a namespace that forgets closed workflows
// sooner than configured, saying how to raise it; SetupNamespace raises a
// short retention and keeps a longer one an operator chose.
func TestRetentionCheckAndSetup(t *testing.T) {
	tmp := testenv.StartTemporal(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	need := config.MinRetention

	setRetention(t, tmp, 48*time.Hour)
	err := worker.CheckRetention(ctx, tmp.Client, tmp.Namespace, need)
	var short *worker.RetentionTooShortError
	if !errors.As(err, &short) {
		t.Fatalf("a 48h retention against %s: %v, want a RetentionTooShortError", need, err)
	}
	if short.Have != 48*time.Hour || short.Need != need {
		t.Errorf("error reports have %s need %s, want 48h and %s", short.Have, short.Need, need)
	}
	for _, want := range []string{
		"namespace default keeps closed workflows for 48h",
		"temporal operator namespace update --namespace default --retention 168h",
		"deploy/setup-namespace.sh", "TEMPORAL_NAMESPACE_RETENTION=168h", "docker compose up temporal-setup",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q:\n%s", want, err)
		}
	}
	if got := retentionOf(t, tmp); got != 48*time.Hour {
		t.Errorf("the check changed the retention to %s", got)
	}

	// Setup raises it; the check then passes.
	if err := worker.SetupNamespace(ctx, tmp.Client, tmp.Namespace, need, log); err != nil {
		t.Fatal(err)
	}
	if got := retentionOf(t, tmp); got != need {
		t.Errorf("after setup the retention is %s, want %s", got, need)
	}
	if err := worker.CheckRetention(ctx, tmp.Client, tmp.Namespace, need); err != nil {
		t.Errorf("a %s retention against %s: %v", need, need, err)
	}

	// A longer retention is kept by setup and accepted by the check.
	setRetention(t, tmp, 720*time.Hour)
	if err := worker.SetupNamespace(ctx, tmp.Client, tmp.Namespace, need, log); err != nil {
		t.Fatal(err)
	}
	if got := retentionOf(t, tmp); got != 720*time.Hour {
		t.Errorf("setup with %s changed an operator's 720h retention to %s", need, got)
	}
	if err := worker.CheckRetention(ctx, tmp.Client, tmp.Namespace, need); err != nil {
		t.Errorf("a 720h retention against %s: %v", need, err)
	}
	// What the worker needs is TEMPORAL_NAMESPACE_RETENTION, not only the
	// minimum.
	if err := worker.CheckRetention(ctx, tmp.Client, tmp.Namespace, 1000*time.Hour); !errors.As(err, &short) {
		t.Errorf("a 720h retention against 1000h: %v, want a RetentionTooShortError", err)
	}

	// A namespace that does not exist is refused with how to create it.
	err = worker.CheckRetention(ctx, tmp.Client, "no-such-namespace", need)
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "deploy/setup-namespace.sh") {
		t.Errorf("a missing namespace: %v", err)
	}
}
