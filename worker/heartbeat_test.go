package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"dunning/internal/testenv"
	"dunning/worker"
)

// slowHeartbeatTimeout is the heartbeat timeout of the test's activities;
// each runs 2.5 times as long. (Two seconds, so that a loaded machine
// still gets one beat through within each.)
const slowHeartbeatTimeout = 2 * time.Second

// slowCall stands for a slow answer of a peer: it runs for 2.5 heartbeat
// timeouts without heartbeating itself.
func slowCall(ctx context.Context) (int32, error) {
	select {
	case <-time.After(slowHeartbeatTimeout * 5 / 2):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return activity.GetInfo(ctx).Attempt, nil
}

// progressCall records its progress, then runs long and fails its first
// attempt; the second returns the progress it finds.
func progressCall(ctx context.Context) (string, error) {
	if activity.GetInfo(ctx).Attempt > 1 {
		var p string
		if !activity.HasHeartbeatDetails(ctx) {
			return "", nil
		}
		err := activity.GetHeartbeatDetails(ctx, &p)
		return p, err
	}
	activity.RecordHeartbeat(ctx, "page 7")
	select {
	case <-time.After(slowHeartbeatTimeout * 5 / 2):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return "", errors.New("first attempt fails after a while")
}

type heartbeatResult struct {
	SlowAttempt int32
	Progress    string
}

func heartbeatWorkflow(ctx workflow.Context) (heartbeatResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		HeartbeatTimeout:    slowHeartbeatTimeout,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, MaximumAttempts: 2},
	})
	var res heartbeatResult
	if err := workflow.ExecuteActivity(ctx, slowCall).Get(ctx, &res.SlowAttempt); err != nil {
		return res, err
	}
	err := workflow.ExecuteActivity(ctx, progressCall).Get(ctx, &res.Progress)
	return res, err
}

// TestHeartbeatsKeepSlowCallsAlive runs activities that last 2.5 of their
// heartbeat timeouts on a worker with the Heartbeats interceptor: a
// slow call is not cut off (its first attempt completes), and the beats in
// between keep the progress an activity recorded for its retry.
func TestHeartbeatsKeepSlowCallsAlive(t *testing.T) {
	tmp := testenv.StartTemporal(t)
	const queue = "heartbeats"
	w := sdkworker.New(tmp.Client, queue, sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{worker.Heartbeats()}})
	w.RegisterWorkflow(heartbeatWorkflow)
	w.RegisterActivity(slowCall)
	w.RegisterActivity(progressCall)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := tmp.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: queue}, heartbeatWorkflow)
	if err != nil {
		t.Fatal(err)
	}
	var res heartbeatResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("workflow: %v (a slow activity cut off by its heartbeat timeout?)", err)
	}
	if res.SlowAttempt != 1 {
		t.Errorf("the slow call completed on attempt %d, want its first", res.SlowAttempt)
	}
	if res.Progress != "page 7" {
		t.Errorf("the retry found progress %q, want the first attempt's %q", res.Progress, "page 7")
	}
}
