package worker_test

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	tlog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"dunning/worker"
)

// TestReplayRecordedHistories replays histories recorded from real runs
// (a recovered, a resumed, a deprovisioned and a waived customer, event
// workflows of each route, and of an unreadable and a wrong-mode event,
// and reconciliations that listed raw and reduced events)
// against the workflows as they are now. A change
// that would break recoveries already running fails here; such a change
// belongs behind workflow.GetVersion.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("only %d recorded histories under testdata/histories", len(files))
	}
	logger := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := sdkworker.NewWorkflowReplayer()
			worker.RegisterWorkflows(r)
			if err := r.ReplayWorkflowHistoryFromJSONFile(logger, f); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}
