package worker_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"dunning/internal/stripefixture"
	"dunning/workflows"
)

// recoveryRun is what one run of a customer's recovery was started with
// and signalled, read from its history.
type recoveryRun struct {
	runID  string
	input  workflows.RecoveryInput
	failed []string // event IDs of the payment_failed signals
}

func readRecoveryRun(t *testing.T, s *localStack, id string) recoveryRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	desc, err := s.tmp.Client.DescribeWorkflow(ctx, id, "")
	if err != nil {
		t.Fatalf("describe %s: %v", id, err)
	}
	run := recoveryRun{runID: desc.RawResponse.GetWorkflowExecutionInfo().GetExecution().GetRunId()}
	it := s.tmp.Client.GetWorkflowHistory(ctx, id, run.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	dc := converter.GetDefaultDataConverter()
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", id, err)
		}
		if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			if err := dc.FromPayloads(a.GetInput(), &run.input); err != nil {
				t.Fatalf("input of %s: %v", id, err)
			}
		}
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil && a.GetSignalName() == workflows.SignalPaymentFailed {
			var f workflows.PaymentFailedSignal
			if err := dc.FromPayloads(a.GetInput(), &f); err != nil {
				t.Fatalf("signal of %s: %v", id, err)
			}
			run.failed = append(run.failed, f.EventID)
		}
	}
	return run
}

func intentIDs(t *testing.T, s *localStack, id string) []string {
	t.Helper()
	var ids []string
	for _, in := range stateOf(t, s, id, "").Intents {
		ids = append(ids, in.ID)
	}
	slices.Sort(ids)
	return ids
}

// stateOf is the status of a run of the recovery id (the current one
// when runID is empty).
func stateOf(t *testing.T, s *localStack, id, runID string) workflows.RecoveryState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := s.tmp.Client.QueryWorkflow(ctx, id, runID, workflows.StatusQuery)
	if err != nil {
		t.Fatalf("status of %s run %q: %v", id, runID, err)
	}
	var st workflows.RecoveryState
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// A customer with no recovery going has one started with the failure in
// its input, its first reads with it; a failure while it runs reaches it
// as a signal, never as a second start; once it has ended, the next
// failure starts the next run the same way as the first.
func TestRecoveryStartsWithItsFailureAndIsSignalledWhileItRuns(t *testing.T) {
	s := startLocalStack(t, nil)
	customer := stripefixture.NewID("cus")
	id := workflows.RecoveryWorkflowID(customer)

	first := stripefixture.Options{ID: stripefixture.NewID("evt"), Customer: customer, ObjectID: "pi_open_a"}
	s.send(workflows.EventPaymentFailed, first)
	waitClosed(t, s, first.ID)
	run := readRecoveryRun(t, s, id)
	if !run.input.Opening || len(run.input.Pending) != 1 || run.input.Pending[0].EventID != first.ID ||
		run.input.Pending[0].First == nil || len(run.failed) != 0 {
		t.Fatalf("first run: opening %v, pending %+v, signalled %v; want started with %s and its reads, no signal",
			run.input.Opening, run.input.Pending, run.failed, first.ID)
	}

	second := stripefixture.Options{ID: stripefixture.NewID("evt"), Customer: customer, ObjectID: "pi_open_b"}
	s.send(workflows.EventPaymentFailed, second)
	waitClosed(t, s, second.ID)
	again := readRecoveryRun(t, s, id)
	if again.runID != run.runID || !slices.Equal(again.failed, []string{second.ID}) {
		t.Fatalf("second failure: run %s signalled %v; want run %s signalled %s", again.runID, again.failed, run.runID, second.ID)
	}
	if got := intentIDs(t, s, id); !slices.Equal(got, []string{"pi_open_a", "pi_open_b"}) {
		t.Fatalf("intents %v, want both", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.tmp.Client.SignalWorkflow(ctx, id, "", workflows.ControlWaive, workflows.OperatorRequest{Reason: "test", Operator: "test"}); err != nil {
		t.Fatal(err)
	}
	if res := s.result(id, time.Minute); res.Stage != workflows.StageWaived {
		t.Fatalf("stage %s, want waived", res.Stage)
	}
	third := stripefixture.Options{ID: stripefixture.NewID("evt"), Customer: customer, ObjectID: "pi_open_c"}
	s.send(workflows.EventPaymentFailed, third)
	waitClosed(t, s, third.ID)
	next := readRecoveryRun(t, s, id)
	if next.runID == run.runID || !next.input.Opening || len(next.input.Pending) != 1 || next.input.Pending[0].EventID != third.ID || len(next.failed) != 0 {
		t.Fatalf("after the end: run %s (first %s), opening %v, pending %+v, signalled %v; want a new run started with %s",
			next.runID, run.runID, next.input.Opening, next.input.Pending, next.failed, third.ID)
	}
	if got := intentIDs(t, s, id); !slices.Equal(got, []string{"pi_open_c"}) {
		t.Fatalf("next life's intents %v, want pi_open_c alone", got)
	}
	// Each life is named by the run it opened in as well as its second,
	// so that two lives begun in one second never share a key.
	lives := map[string]bool{}
	for _, runID := range []string{run.runID, next.runID} {
		life := stateOf(t, s, id, runID).Lifecycle
		tag := strings.ReplaceAll(runID, "-", "")
		if !strings.HasPrefix(life, id+"@") || !strings.HasSuffix(life, "."+tag[len(tag)-8:]) {
			t.Errorf("run %s: life %q, want %s@<second>.%s", runID, life, id, tag[len(tag)-8:])
		}
		lives[life] = true
	}
	if len(lives) != 2 {
		t.Errorf("two lives named %v", lives)
	}
}

// Failures of two intents of a new customer delivered at once: one starts
// the recovery, the other finds it going and signals it. One run holds
// both.
func TestConcurrentFirstFailuresShareOneRecovery(t *testing.T) {
	s := startLocalStack(t, nil)
	for round := range 3 {
		customer := stripefixture.NewID("cus")
		id := workflows.RecoveryWorkflowID(customer)
		events := make([]stripefixture.Options, 4)
		for i := range events {
			events[i] = stripefixture.Options{ID: stripefixture.NewID("evt"), Customer: customer, ObjectID: "pi_race_" + string(rune('a'+i))}
		}
		var wg sync.WaitGroup
		errs := make([]error, len(events))
		for i, o := range events {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = s.post(workflows.EventPaymentFailed, o) }()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		for _, o := range events {
			waitClosed(t, s, o.ID)
		}
		run := readRecoveryRun(t, s, id)
		var got []string
		for _, p := range run.input.Pending {
			got = append(got, p.EventID)
		}
		got = append(got, run.failed...)
		want := []string{events[0].ID, events[1].ID, events[2].ID, events[3].ID}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: the run got %v (started with %d), want each failure once: %v", round, got, len(run.input.Pending), want)
		}
		if got := intentIDs(t, s, id); !slices.Equal(got, []string{"pi_race_a", "pi_race_b", "pi_race_c", "pi_race_d"}) {
			t.Fatalf("round %d: intents %v, want all four", round, got)
		}
	}
}
