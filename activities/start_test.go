package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"

	"dunning/activities"
)

// startTemporal answers the calls an opening start makes, as the server
// does, from a script: each start in turn refused (as a duplicate) or
// accepted, and the Describe of the latest run.
type startTemporal struct {
	client.Client
	refuse   []bool // per start, in order
	describe func() (*client.WorkflowExecutionDescription, error)

	starts     []client.StartWorkflowOptions
	started    []any // each start's input
	signalled  []any // each signal-with-start's signal
	describes  int
	signalWith int
}

func (f *startTemporal) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
	f.starts = append(f.starts, o)
	f.started = append(f.started, args[0])
	if f.refuse[len(f.starts)-1] {
		return nil, serviceerror.NewWorkflowExecutionAlreadyStarted("workflow execution already started", "", "run-0")
	}
	run := &mocks.WorkflowRun{}
	run.On("GetRunID").Return("run-new")
	return run, nil
}

func (f *startTemporal) DescribeWorkflow(context.Context, string, string) (*client.WorkflowExecutionDescription, error) {
	f.describes++
	return f.describe()
}

func (f *startTemporal) SignalWithStartWorkflow(_ context.Context, _, _ string, signal any, _ client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	f.signalWith++
	f.signalled = append(f.signalled, signal)
	run := &mocks.WorkflowRun{}
	run.On("GetRunID").Return("run-0")
	return run, nil
}

func described(status enumspb.WorkflowExecutionStatus) func() (*client.WorkflowExecutionDescription, error) {
	return func() (*client.WorkflowExecutionDescription, error) {
		return &client.WorkflowExecutionDescription{RawResponse: &workflowservice.DescribeWorkflowExecutionResponse{
			WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{Status: status}}}, nil
	}
}

// openingSpec is a start whose opening signal is a string: "unread"
// leaves the latest run to the start, which completes it as "none",
// "running", "ended <status>" or "unreadable".
func openingSpec(t *testing.T) func(activities.StartRequest) (activities.StartSpec, error) {
	return func(activities.StartRequest) (activities.StartSpec, error) {
		return activities.StartSpec{
			WorkflowType: "W", OpensWith: "opened",
			ArgsWith: func(signal json.RawMessage) (any, error) { return string(signal), nil },
			LeavesPrevious: func(signal json.RawMessage) bool {
				return string(signal) == `"unread"`
			},
			WithPrevious: func(signal json.RawMessage, latest activities.EndedRecovery, err error) (json.RawMessage, error) {
				if string(signal) != `"unread"` {
					t.Errorf("completed %s, want the unread signal", signal)
				}
				switch {
				case err != nil:
					return json.RawMessage(`"unreadable"`), nil
				case !latest.Found:
					return json.RawMessage(`"none"`), nil
				case latest.Running:
					return json.RawMessage(`"running"`), nil
				}
				return json.RawMessage(`"ended ` + latest.Status + `"`), nil
			},
		}, nil
	}
}

// The start answers for a customer with no run retained; a refused one
// reads the latest run and starts again, or signals the running one; a
// latest run that cannot be read (Temporal unavailable) is said so to the
// signal, which then opens the run without it, never with "none".
func TestOpeningStartLearnsTheLatestRun(t *testing.T) {
	cases := []struct {
		name       string
		refuse     []bool
		describe   func() (*client.WorkflowExecutionDescription, error)
		wantStarts []string // each start's input
		wantReuse  []enumspb.WorkflowIdReusePolicy
		wantSignal string // the signal-with-start's, if any
		describes  int
	}{
		{name: "no run retained", refuse: []bool{false},
			wantStarts: []string{`"none"`}, wantReuse: []enumspb.WorkflowIdReusePolicy{enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE}},
		{name: "a life ended", refuse: []bool{true, false}, describe: described(enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED),
			wantStarts: []string{`"none"`, `"ended Terminated"`},
			wantReuse:  []enumspb.WorkflowIdReusePolicy{enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, enumspb.WORKFLOW_ID_REUSE_POLICY_UNSPECIFIED},
			describes:  1},
		{name: "a life runs", refuse: []bool{true}, describe: described(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING),
			wantStarts: []string{`"none"`}, wantReuse: []enumspb.WorkflowIdReusePolicy{enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE},
			wantSignal: `"running"`, describes: 1},
		{name: "the latest run cannot be read", refuse: []bool{true, false},
			describe: func() (*client.WorkflowExecutionDescription, error) {
				return nil, serviceerror.NewUnavailable("connection refused")
			},
			wantStarts: []string{`"none"`, `"unreadable"`},
			wantReuse:  []enumspb.WorkflowIdReusePolicy{enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, enumspb.WORKFLOW_ID_REUSE_POLICY_UNSPECIFIED},
			describes:  1},
		{name: "unreadable, and a life started meanwhile", refuse: []bool{true, true},
			describe: func() (*client.WorkflowExecutionDescription, error) {
				return nil, serviceerror.NewUnavailable("connection refused")
			},
			wantStarts: []string{`"none"`, `"unreadable"`},
			wantReuse:  []enumspb.WorkflowIdReusePolicy{enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, enumspb.WORKFLOW_ID_REUSE_POLICY_UNSPECIFIED},
			wantSignal: `"unreadable"`, describes: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &startTemporal{refuse: tc.refuse, describe: tc.describe}
			a := &activities.Activities{Temporal: f, TaskQueue: "q", Starter: openingSpec(t)}
			res, err := a.Signal(context.Background(), activities.SignalInput{WorkflowID: "w", SignalName: "opened",
				Signal: json.RawMessage(`"unread"`), Start: &activities.StartRequest{Kind: "k"}})
			if err != nil || !res.Delivered {
				t.Fatalf("Signal = %+v, %v", res, err)
			}
			if len(f.starts) != len(tc.wantStarts) {
				t.Fatalf("%d starts (%v), want %v", len(f.starts), f.started, tc.wantStarts)
			}
			for i, o := range f.starts {
				if f.started[i] != tc.wantStarts[i] || o.WorkflowIDReusePolicy != tc.wantReuse[i] ||
					o.WorkflowIDConflictPolicy != enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL || !o.WorkflowExecutionErrorWhenAlreadyStarted || !o.EnableEagerStart {
					t.Errorf("start %d: input %v, options %+v; want input %s, reuse %v, conflict fail, an error when started, eager",
						i, f.started[i], o, tc.wantStarts[i], tc.wantReuse[i])
				}
			}
			if f.describes != tc.describes {
				t.Errorf("%d describes, want %d", f.describes, tc.describes)
			}
			switch {
			case tc.wantSignal == "" && f.signalWith != 0:
				t.Errorf("signalled with start %v, want none", f.signalled)
			case tc.wantSignal != "" && (f.signalWith != 1 || string(f.signalled[0].(json.RawMessage)) != tc.wantSignal):
				t.Errorf("signalled with start %v, want %s once", f.signalled, tc.wantSignal)
			}
		})
	}
}

// A start that fails otherwise than as a duplicate is an error: no read,
// no second start, no signal.
func TestOpeningStartFailureIsAnError(t *testing.T) {
	f := &failingStart{}
	a := &activities.Activities{Temporal: f, TaskQueue: "q", Starter: openingSpec(t)}
	_, err := a.Signal(context.Background(), activities.SignalInput{WorkflowID: "w", SignalName: "opened",
		Signal: json.RawMessage(`"unread"`), Start: &activities.StartRequest{Kind: "k"}})
	var unavailable *serviceerror.Unavailable
	if !errors.As(err, &unavailable) || f.calls != 1 {
		t.Fatalf("Signal = %v after %d calls, want the start's error after one", err, f.calls)
	}
}

type failingStart struct {
	client.Client
	calls int
}

func (f *failingStart) ExecuteWorkflow(context.Context, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	f.calls++
	return nil, serviceerror.NewUnavailable("connection refused")
}

// resultTemporal describes a completed run and serves results by run ID.
type resultTemporal struct {
	client.Client
	asked []string // run IDs whose result was read
}

func (f *resultTemporal) DescribeWorkflow(context.Context, string, string) (*client.WorkflowExecutionDescription, error) {
	return &client.WorkflowExecutionDescription{RawResponse: &workflowservice.DescribeWorkflowExecutionResponse{
		WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{Status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED,
			Execution: &commonpb.WorkflowExecution{WorkflowId: "w", RunId: "run-ended"}}}}, nil
}

func (f *resultTemporal) GetWorkflow(_ context.Context, _, runID string) client.WorkflowRun {
	f.asked = append(f.asked, runID)
	run := &mocks.WorkflowRun{}
	run.On("Get", mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		*args.Get(1).(*json.RawMessage) = json.RawMessage(`{"stage":"waived"}`)
	}).Return(nil)
	return run
}

// The result read is the described run's: a run started since (by the
// workflow ID alone the read would follow it) would keep the read
// waiting until it ended.
func TestEndedRecoveryReadsTheRunItDescribed(t *testing.T) {
	f := &resultTemporal{}
	a := &activities.Activities{Temporal: f}
	got, err := a.EndedRecovery(context.Background(), activities.EndedRecoveryInput{WorkflowID: "w"})
	if err != nil || !got.Found || got.Running || string(got.Result) != `{"stage":"waived"}` {
		t.Fatalf("EndedRecovery = %+v, %v", got, err)
	}
	if len(f.asked) != 1 || f.asked[0] != "run-ended" {
		t.Fatalf("results read of runs %q, want the described run-ended", f.asked)
	}
}
