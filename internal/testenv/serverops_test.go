package testenv_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/internal/testenv"
)

// The counters are the server's own: a start is at least an execution
// created and a visibility record started (the server may start its own
// system workflows meanwhile).
func TestPersistenceOpsCountAStart(t *testing.T) {
	d := testenv.StartDevServer(t, "", testenv.TemporalOptions{LogPath: filepath.Join(t.TempDir(), "temporal.log"), Metrics: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before, err := d.PersistenceOps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const starts = 5
	for i := range starts {
		if _, err := d.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "count-" + string(rune('a'+i)), TaskQueue: "nobody-polls"}, "Counted"); err != nil {
			t.Fatal(err)
		}
	}
	var got testenv.PersistenceOps
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		after, err := d.PersistenceOps(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got = after.Since(before); got["RecordWorkflowExecutionStarted"] >= starts {
			break
		}
	}
	if got["CreateWorkflowExecution"] < starts || got["RecordWorkflowExecutionStarted"] < starts {
		t.Fatalf("after %d starts: %v", starts, got)
	}
	if got.Writes() < 2*starts || got.Reads() == 0 {
		t.Errorf("writes %.0f, reads %.0f; want at least %d writes and some reads:\n%s", got.Writes(), got.Reads(), 2*starts, got.Table(1, nil, 1))
	}
	for op, write := range map[string]bool{
		"CreateWorkflowExecution": true, "UpdateWorkflowExecution": true, "UpsertWorkflowExecution": true,
		"RecordWorkflowExecutionClosed": true, "CompleteTasksLessThan": true, "RangeCompleteTimerTasks": true,
		"GetWorkflowExecution": false, "ReadHistoryBranch": false, "GetTasks": false, "ListNamespaces": false,
	} {
		if testenv.IsWrite(op) != write {
			t.Errorf("IsWrite(%s) = %v", op, !write)
		}
	}
}

func TestPersistenceOpsNeedTheServersMetrics(t *testing.T) {
	d := testenv.StartDevServer(t, "", testenv.TemporalOptions{LogPath: filepath.Join(t.TempDir(), "temporal.log")})
	if _, err := d.PersistenceOps(context.Background()); err == nil {
		t.Fatal("read counters of a server started without metrics")
	}
}
