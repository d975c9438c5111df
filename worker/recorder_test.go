package worker_test

import (
	"log/slog"
	"os"
	"testing"

	sdkworker "go.temporal.io/sdk/worker"

	"dunning/activities"
	"dunning/internal/testenv"
	"dunning/worker"
)

// recordDir is the folder DUNNING_RECORD_HISTORIES names for the
// recorders to write histories into; without it the recorder is skipped.
func recordDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("DUNNING_RECORD_HISTORIES")
	if dir == "" {
		t.Skip("set DUNNING_RECORD_HISTORIES to a folder to record histories into")
	}
	return dir
}

// dryRecorder starts a Temporal dev server and a worker on task queue q
// with every workflow and the activities dry (no peer configured). The
// caller registers the activities it answers itself, then starts the
// worker.
func dryRecorder(t *testing.T, q string) (*testenv.Temporal, sdkworker.Worker) {
	t.Helper()
	tmp := testenv.StartTemporal(t)
	w := sdkworker.New(tmp.Client, q, sdkworker.Options{})
	worker.RegisterWorkflows(w)
	w.RegisterActivity(&activities.Activities{Temporal: tmp.Client, TaskQueue: q, Log: slog.Default()})
	return tmp, w
}
