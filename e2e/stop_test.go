package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"dunning/activities"
	"dunning/internal/stripefixture"
	"dunning/internal/testenv"
	"dunning/workflows"
)

// A worker stopped with SIGTERM (docker compose stop, a redeploy) lets the
// activity it runs finish within WORKER_STOP_TIMEOUT: the control plane's
// answer to a suspension in flight is recorded by the stopping worker, so
// the suspension reaches the control plane once and is not tried again
// after an activity timeout. Only then does the process exit, cleanly.
func TestWorkerStopLetsRunningActivityFinish(t *testing.T) {
	metricsAddr := testenv.FreeAddress(t)
	s := Start(t, Options{Env: map[string]string{"WORKER_STOP_TIMEOUT": "60s", "WORKER_METRICS_ADDR": metricsAddr}})
	ev, held := suspensionHeld(t, s)

	w := s.StopWorker()
	// The worker stops polling but waits for the held call: give it time
	// to (wrongly) cancel the activity and exit.
	select {
	case <-w.Exited():
		t.Fatalf("the worker exited (%v) while its activity was still running", w.Err())
	case <-time.After(2 * time.Second):
	}
	// While it drains it is still observable: its metrics (what the
	// health check reads) answer.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Errorf("worker metrics during the drain: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("worker metrics during the drain: %s", resp.Status)
		}
	}
	held.Release()
	select {
	case <-w.Exited():
	case <-time.After(60 * time.Second):
		t.Fatal("the worker did not exit after its last activity finished")
	}
	if err := w.Err(); err != nil {
		t.Errorf("the stopped worker exited with %v, want a clean exit", err)
	}

	// The stopping worker reported the suspension as done.
	if !suspendCompleted(t, s, ev.Customer) {
		t.Errorf("%s: no completed suspension in the recovery's history after the worker stopped", ev.Customer)
	}

	deprovisionedOnceByANewWorker(t, s, ev)
	// The stopping worker's answer was recorded: no second request.
	suspends := s.Control.Requests(func(r Request) bool { return r.Customer == ev.Customer && r.Kind == "suspend" })
	if len(suspends) != 1 {
		t.Errorf("%s: the suspension reached the control plane %d times, want once:\n%s", ev.Customer, len(suspends), lines(suspends))
	}
}

// deprovisionedOnceByANewWorker starts a worker and checks that the
// customer whose suspension a stopped worker held ends deprovisioned,
// each action applied once.
func deprovisionedOnceByANewWorker(t *testing.T, s *Stack, ev *Event) {
	t.Helper()
	s.StartWorker()
	if res := s.Recovery(ev.Customer, 90*time.Second); res.Stage != workflows.StageDeprovisioned {
		t.Errorf("%s: recovery ended %s, want deprovisioned", ev.Customer, res.Stage)
	}
	s.Check(ev.Customer, Expect{
		Control: map[string]int{"suspend": 1, "deprovision": 1},
		Notices: map[string]int{"payment_failed": 1, "payment_retry_failed": AnyCount, "account_suspended": 1, "account_deprovisioned": 1},
		Alerts:  map[string]int{"past_due": 1, "suspended": 1, "deprovisioned": 1},
		Charges: map[string]int{ev.Parsed.ObjectID: 0}, Deactivations: 1,
	})
}

// suspensionHeld sends a failed payment for a new customer and waits
// until the recovery's suspension reaches the control plane, which holds
// it until released.
func suspensionHeld(t *testing.T, s *Stack) (*Event, *Hold) {
	t.Helper()
	ev := s.Send(workflows.EventPaymentFailed, stripefixture.Options{
		Customer: stripefixture.NewID("cus"), ObjectID: stripefixture.NewID("pi")})
	held := s.Control.HoldNext(MethodPath(http.MethodPost, ev.Customer, "/suspend"))
	select {
	case <-held.Arrived():
	case <-time.After(90 * time.Second):
		t.Fatal("the suspension of " + ev.Customer + " never reached the control plane")
	}
	return ev, held
}

// suspendCompleted reports whether the customer's recovery history has a
// completed activity that suspended it, as the worker that ran it
// recorded it.
func suspendCompleted(t *testing.T, s *Stack, customer string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	it := s.Client().GetWorkflowHistory(ctx, workflows.RecoveryWorkflowID(customer), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	suspendScheduled := map[int64]bool{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", customer, err)
		}
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "ControlPlane" {
			for _, p := range a.GetInput().GetPayloads() {
				var in activities.ControlPlaneInput
				if json.Unmarshal(p.GetData(), &in) == nil && in.Action == "suspend" {
					suspendScheduled[e.GetEventId()] = true
				}
			}
		}
		if a := e.GetActivityTaskCompletedEventAttributes(); a != nil && suspendScheduled[a.GetScheduledEventId()] {
			return true
		}
	}
	return false
}

// A second SIGTERM (or Ctrl-C) during the drain exits at once, without
// waiting for the running activity: an operator who asks twice means it.
// The abandoned call is tried again by the next worker under the same key,
// so the suspension still reaches the control plane as one action.
func TestSecondStopSignalExitsAtOnce(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{"WORKER_STOP_TIMEOUT": "60s"}})
	ev, held := suspensionHeld(t, s)
	w := s.StopWorker()
	select {
	case <-w.Exited():
		t.Fatalf("the worker exited (%v) at the first SIGTERM while its activity was still running", w.Err())
	case <-time.After(2 * time.Second):
	}
	sent := time.Now()
	if err := w.Send(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not exit at the second SIGTERM")
	}
	t.Logf("exited %s after the second SIGTERM: %v", time.Since(sent).Round(time.Millisecond), w.Err())
	if w.Err() == nil {
		t.Error("a worker stopped before its work was done exited 0; want a failure status")
	}
	held.Release()

	deprovisionedOnceByANewWorker(t, s, ev)
}
