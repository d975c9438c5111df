package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"dunning/activities"
	"dunning/internal/stripefixture"
	"dunning/worker"
	"dunning/workflows"
)

// recoveryRun is what one run of a customer's recovery was started with
// and signalled, read from its history.
type recoveryRun struct {
	runID  string
	input  workflows.RecoveryInput
	failed []string // event IDs of the payment_failed signals
	// signals are those signals whole.
	signals []workflows.PaymentFailedSignal
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
			run.signals = append(run.signals, f)
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

// waive has an operator waive the running recovery id, and waits until
// it has ended waived.
func waive(t *testing.T, s *localStack, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.tmp.Client.SignalWorkflow(ctx, id, "", workflows.ControlWaive, workflows.OperatorRequest{Reason: "test", Operator: "test"}); err != nil {
		t.Fatal(err)
	}
	if res := s.result(id, time.Minute); res.Stage != workflows.StageWaived {
		t.Fatalf("stage %s, want waived", res.Stage)
	}
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
	// No run came before it: the start, made as the ID's first, said so.
	if f := run.input.Pending[0]; f.FirstBeforeStart != nil || f.First.Previous.Found || f.First.PreviousErr != "" {
		t.Fatalf("first run's reads %+v (unfinished %+v), want complete, with no previous run", f.First, f.FirstBeforeStart)
	}

	second := stripefixture.Options{ID: stripefixture.NewID("evt"), Customer: customer, ObjectID: "pi_open_b"}
	s.send(workflows.EventPaymentFailed, second)
	waitClosed(t, s, second.ID)
	again := readRecoveryRun(t, s, id)
	if again.runID != run.runID || !slices.Equal(again.failed, []string{second.ID}) {
		t.Fatalf("second failure: run %s signalled %v; want run %s signalled %s", again.runID, again.failed, run.runID, second.ID)
	}
	// Refused as a first run, the start read the run that was going.
	if f := again.signals[0]; f.FirstBeforeStart != nil || f.First == nil || !f.First.Previous.Running {
		t.Fatalf("second failure's reads %+v (unfinished %+v), want the running recovery read into them", f.First, f.FirstBeforeStart)
	}
	if got := intentIDs(t, s, id); !slices.Equal(got, []string{"pi_open_a", "pi_open_b"}) {
		t.Fatalf("intents %v, want both", got)
	}

	waive(t, s, id)
	third := stripefixture.Options{ID: stripefixture.NewID("evt"), Customer: customer, ObjectID: "pi_open_c"}
	s.send(workflows.EventPaymentFailed, third)
	waitClosed(t, s, third.ID)
	next := readRecoveryRun(t, s, id)
	if next.runID == run.runID || !next.input.Opening || len(next.input.Pending) != 1 || next.input.Pending[0].EventID != third.ID || len(next.failed) != 0 {
		t.Fatalf("after the end: run %s (first %s), opening %v, pending %+v, signalled %v; want a new run started with %s",
			next.runID, run.runID, next.input.Opening, next.input.Pending, next.failed, third.ID)
	}
	// The life before is read at the start, refused as a first run, and
	// travels with the reads: its card attempts count in the next life.
	var before workflows.RecoveryResult
	if f := next.input.Pending[0]; f.FirstBeforeStart != nil || f.First == nil || !f.First.Previous.Found || f.First.Previous.Running ||
		f.First.Previous.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED.String() || json.Unmarshal(f.First.Previous.Result, &before) != nil ||
		before.Stage != workflows.StageWaived {
		t.Fatalf("after the end: reads %+v (unfinished %+v), want the waived life before read into them", f.First, f.FirstBeforeStart)
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

// Reads taken before a life of the customer started and ended do not
// hide it from the next one. The event workflow leaves the latest run to
// the start, which is made as the workflow ID's first: refused, since
// that life is retained, it reads the life and opens the next with it,
// its card attempts included. (When the event workflow read the latest
// run itself, a life begun and ended between that read and the start
// was missed, and its cards with it.)
func TestALifeEndedAfterTheReadsIsReadAtTheStart(t *testing.T) {
	s := startLocalStack(t, nil)
	customer := stripefixture.NewID("cus")
	id := workflows.RecoveryWorkflowID(customer)
	// Reads of a failure taken while the customer had no recovery.
	now := time.Now().UTC()
	later := workflows.PaymentFailedSignal{
		EventID: stripefixture.NewID("evt"), Created: now,
		Intent: workflows.PaymentIntentInfo{ID: "pi_after", Amount: 4900, Currency: "usd", DeclineCode: "insufficient_funds"},
		FirstBeforeStart: &workflows.FirstReads{At: now, Profile: activities.CustomerProfile{CustomerID: customer},
			Owed: activities.Owed{Verdict: activities.OwedYes, Status: "requires_payment_method"}},
	}
	// A life begins and ends before those reads reach the start.
	first := stripefixture.Options{ID: stripefixture.NewID("evt"), Customer: customer, ObjectID: "pi_before"}
	s.send(workflows.EventPaymentFailed, first)
	waitClosed(t, s, first.ID)
	ended := readRecoveryRun(t, s, id)
	waive(t, s, id)

	acts, err := worker.NewActivities(s.tmp.Client, s.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(later)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := acts.Signal(ctx, activities.SignalInput{WorkflowID: id, SignalName: workflows.SignalPaymentFailed, Signal: raw,
		Start: &activities.StartRequest{Kind: activities.StartRecovery, StripeCustomerID: customer}})
	if err != nil || !res.Delivered || res.RunID == ended.runID {
		t.Fatalf("Signal = %+v, %v; want a new run started", res, err)
	}
	next := readRecoveryRun(t, s, id)
	var before workflows.RecoveryResult
	if next.runID != res.RunID || len(next.input.Pending) != 1 {
		t.Fatalf("run %s started with %+v, want run %s started with the failure", next.runID, next.input.Pending, res.RunID)
	}
	if f := next.input.Pending[0]; f.FirstBeforeStart != nil || f.First == nil || !f.First.Previous.Found ||
		json.Unmarshal(f.First.Previous.Result, &before) != nil || before.Stage != workflows.StageWaived {
		t.Fatalf("reads %+v (unfinished %+v), want the life that ended after them read into them", f.First, f.FirstBeforeStart)
	}
	if f := next.input.Pending[0].First; !f.At.Equal(later.FirstBeforeStart.At) || f.Owed.Verdict != later.FirstBeforeStart.Owed.Verdict || f.Profile != later.FirstBeforeStart.Profile {
		t.Errorf("reads %+v changed beyond the previous life, want %+v", f, later.FirstBeforeStart)
	}
}
