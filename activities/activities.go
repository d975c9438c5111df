// Package activities holds every side effect of dunning's workflows, as
// methods on one struct with injected clients. An integration that is not
// configured (its client is nil) runs dry: the activity logs what it would
// have done and says so in its result, and the workflow records it.
package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	stripeclient "github.com/stripe/stripe-go/v76/client"

	"dunning/amberflo"
	"dunning/controlplane"
	"dunning/internal/portallink"
	"dunning/notify"
)

// Error types of non-retryable failures, for workflows to tell apart.
const (
	ErrStripeRejected       = "StripeRejected"
	ErrControlPlaneRejected = "ControlPlaneRejected"
	ErrAmberfloRejected     = "AmberfloRejected"
	ErrNotifyRejected       = "NotifyRejected"
	ErrBadInput             = "BadInput"
	// ErrAmberfloOffboardRejected: Amberflo refused to move a customer's
	// lifecycle stage to OFFBOARDED after it was deactivated.
	ErrAmberfloOffboardRejected = "AmberfloOffboardRejected"
)

// Error types of retryable failures that are answers, not faults: Amberflo
// answered, but not yet whether the money is owed.
const (
	// ErrAmberfloPending: the invoice's payment is in flight (PENDING).
	ErrAmberfloPending = "AmberfloPending"
	// ErrAmberfloUnknown: Amberflo does not know (UNKNOWN).
	ErrAmberfloUnknown = "AmberfloUnknown"
)

// Kinds of workflow a signal may start.
const (
	StartRecovery   = "recovery"
	StartCardExpiry = "card_expiry"
)

// StartSpec says how a workflow starts when a signal finds none running.
type StartSpec struct {
	WorkflowType     string
	Args             any
	SearchAttributes temporal.SearchAttributes
	Summary          string
	// ArgsWith, when set, is the input of a run that begins with a signal
	// named OpensWith itself, for a workflow that takes it from its input
	// as it would from its first signal. Signal then starts the run with
	// it (the run's first task handed to this process's worker when it
	// has room) and signals with start only when a run is already going.
	OpensWith string
	ArgsWith  func(signal json.RawMessage) (any, error)
	// LeavesPrevious, when set, reports whether an opening signal's reads
	// leave the workflow's earlier runs to the start, and WithPrevious
	// completes them with the latest run as EndedRecovery reads it (err
	// when it could not be read). Such a run is first started as the
	// workflow ID's first (reject duplicate), which answers for the
	// customer with no run retained in the start itself; any other is
	// read, completed and started, or signalled, as before.
	LeavesPrevious func(signal json.RawMessage) bool
	WithPrevious   func(signal json.RawMessage, latest EndedRecovery, err error) (json.RawMessage, error)
}

// Activities are dunning's side effects. Nil clients run dry.
type Activities struct {
	Temporal  client.Client
	TaskQueue string
	// Starter builds how a workflow of a kind starts (type, input with the
	// settings config gives it, search attributes); the worker injects it,
	// so that this package need not know the workflows.
	Starter func(StartRequest) (StartSpec, error)

	Stripe   *stripeclient.API
	Amberflo *amberflo.Client
	Control  *controlplane.Client
	Alerts   *notify.Alerter
	Notices  *notify.NoticeSender
	// PortalLinks makes the one-click link to update a payment method that
	// every notice carries; nil (no PUBLIC_URL and PORTAL_LINK_SECRET)
	// sends notices without it, saying why.
	PortalLinks *portallink.Links
	// Reconcile lists Stripe's events and hands them to dunning
	// (reconciliation); nil or without a Stripe key runs dry.
	Reconcile *Reconciler
	// CustomerIDMetadataKey names the Stripe customer metadata key with the
	// product's ID for the customer; empty means the Stripe ID is used.
	CustomerIDMetadataKey string
	Log                   *slog.Logger
	// Now is the clock of what activities decide by the time (a portal
	// link's expiry); nil means time.Now.
	Now func() time.Time
}

func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Activities) logger(ctx context.Context) *slog.Logger {
	l := a.Log
	if l == nil {
		l = slog.Default()
	}
	if activity.IsActivity(ctx) {
		info := activity.GetInfo(ctx)
		l = l.With("activity", info.ActivityType.Name, "workflow_id", info.WorkflowExecution.ID, "attempt", info.Attempt)
	}
	return l
}

// SignalInput delivers a signal to a workflow.
type SignalInput struct {
	WorkflowID string          `json:"workflow_id"`
	SignalName string          `json:"signal_name"`
	Signal     json.RawMessage `json:"signal"`
	// Start, when set, starts the workflow if none is running
	// (signal-with-start).
	Start *StartRequest `json:"start,omitempty"`
}

// StartRequest asks for a workflow of a kind to be started.
type StartRequest struct {
	Kind             string `json:"kind"`
	StripeCustomerID string `json:"stripe_customer_id"`
	// Args is the workflow's input as far as the caller knows it; the
	// Starter completes it from config.
	Args json.RawMessage `json:"args,omitempty"`
}

// SignalResult says whether a running workflow got the signal.
type SignalResult struct {
	Delivered bool   `json:"delivered"`
	RunID     string `json:"run_id,omitempty"`
}

// Signal delivers a signal, starting the customer's recovery first when
// asked to and none is running. A workflow that is not running, when no
// start was asked for, is not an error: there is nothing to tell.
func (a *Activities) Signal(ctx context.Context, in SignalInput) (SignalResult, error) {
	if in.WorkflowID == "" || in.SignalName == "" {
		return SignalResult{}, temporal.NewNonRetryableApplicationError("signal needs a workflow ID and a name", ErrBadInput, nil)
	}
	if in.Start != nil {
		if a.Starter == nil {
			return SignalResult{}, temporal.NewNonRetryableApplicationError("no starter configured", ErrBadInput, nil)
		}
		spec, err := a.Starter(*in.Start)
		if err != nil {
			return SignalResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrBadInput, err)
		}
		signal := in.Signal
		if spec.ArgsWith != nil && spec.OpensWith == in.SignalName {
			res, completed, started, err := a.startWith(ctx, in, spec)
			if started || err != nil {
				return res, err
			}
			signal = completed
		}
		run, err := a.Temporal.SignalWithStartWorkflow(ctx, in.WorkflowID, in.SignalName, signal, client.StartWorkflowOptions{
			ID:                    in.WorkflowID,
			TaskQueue:             a.TaskQueue,
			TypedSearchAttributes: spec.SearchAttributes,
			StaticSummary:         spec.Summary,
		}, spec.WorkflowType, spec.Args)
		if err != nil {
			return SignalResult{}, fmt.Errorf("signal-with-start %s: %w", in.WorkflowID, err)
		}
		return SignalResult{Delivered: true, RunID: run.GetRunID()}, nil
	}
	err := a.Temporal.SignalWorkflow(ctx, in.WorkflowID, "", in.SignalName, in.Signal)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		a.logger(ctx).Info("no running workflow to signal", "target", in.WorkflowID, "signal", in.SignalName)
		return SignalResult{}, nil
	case err != nil:
		return SignalResult{}, fmt.Errorf("signal %s to %s: %w", in.SignalName, in.WorkflowID, err)
	}
	return SignalResult{Delivered: true}, nil
}

// startWith starts in.WorkflowID with the signal in its input, when no
// run of it is going; started is false, with no error, when one is, for
// the caller to signal it with signal, the opening signal as completed.
//
// A start, unlike a signal-with-start, may be eager: when this client's
// worker has a free slot, the server hands the run's first workflow task
// back with the answer, and the worker runs it at once, without the task
// being queued, polled and recorded as started. A worker with no room
// leaves the task to the queue as before.
func (a *Activities) startWith(ctx context.Context, in SignalInput, spec StartSpec) (res SignalResult, signal json.RawMessage, started bool, err error) {
	signal = in.Signal
	if spec.LeavesPrevious != nil && spec.LeavesPrevious(signal) {
		// Started as the ID's first run, the start itself says that no
		// run came before (none retained: a Describe would find none
		// either), one call instead of a read and a start. Refused, the
		// latest run is read as the reads would have read it.
		var first json.RawMessage
		if first, err = spec.WithPrevious(signal, EndedRecovery{}, nil); err != nil {
			return res, nil, false, temporal.NewNonRetryableApplicationError(err.Error(), ErrBadInput, err)
		}
		if res, started, err = a.startOpening(ctx, in, spec, first, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE); started || err != nil {
			return res, nil, started, err
		}
		latest, readErr := a.EndedRecovery(ctx, EndedRecoveryInput{WorkflowID: in.WorkflowID})
		if signal, err = spec.WithPrevious(signal, latest, readErr); err != nil {
			return res, nil, false, temporal.NewNonRetryableApplicationError(err.Error(), ErrBadInput, err)
		}
		if readErr == nil && latest.Running {
			return res, signal, false, nil
		}
	}
	res, started, err = a.startOpening(ctx, in, spec, signal, enumspb.WORKFLOW_ID_REUSE_POLICY_UNSPECIFIED)
	return res, signal, started, err
}

// startOpening starts the run that opens with signal, under reuse (the
// server's default, allow duplicate, when unspecified); started is false,
// with no error, when the start was refused as a duplicate.
func (a *Activities) startOpening(ctx context.Context, in SignalInput, spec StartSpec, signal json.RawMessage, reuse enumspb.WorkflowIdReusePolicy) (SignalResult, bool, error) {
	args, err := spec.ArgsWith(signal)
	if err != nil {
		return SignalResult{}, false, temporal.NewNonRetryableApplicationError(err.Error(), ErrBadInput, err)
	}
	run, err := a.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    in.WorkflowID,
		TaskQueue:             a.TaskQueue,
		TypedSearchAttributes: spec.SearchAttributes,
		StaticSummary:         spec.Summary,
		EnableEagerStart:      true,
		WorkflowIDReusePolicy: reuse,
		// A run already going gets the signal instead: never a second
		// start of it, and never its handle taken for a delivery.
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, spec.WorkflowType, args)
	var going *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &going):
		return SignalResult{}, false, nil
	case err != nil:
		return SignalResult{}, false, fmt.Errorf("start %s with %s: %w", in.WorkflowID, in.SignalName, err)
	}
	return SignalResult{Delivered: true, RunID: run.GetRunID()}, true, nil
}

// SignalMatchingInput signals every running workflow a visibility query
// finds, e.g. all of a customer's card-expiry watches.
type SignalMatchingInput struct {
	Query      string          `json:"query"`
	SignalName string          `json:"signal_name"`
	Signal     json.RawMessage `json:"signal"`
	// Except skips one workflow ID, already signalled directly.
	Except string `json:"except,omitempty"`
}

// SignalMatchingResult counts the workflows signalled.
type SignalMatchingResult struct {
	Signalled int `json:"signalled"`
}

// SignalMatching signals every running workflow that matches the query.
// One that closed meanwhile is skipped.
func (a *Activities) SignalMatching(ctx context.Context, in SignalMatchingInput) (SignalMatchingResult, error) {
	var res SignalMatchingResult
	var token []byte
	for {
		page, err := a.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: in.Query, NextPageToken: token, PageSize: 100,
		})
		if err != nil {
			return res, fmt.Errorf("list workflows %q: %w", in.Query, err)
		}
		for _, ex := range page.GetExecutions() {
			id := ex.GetExecution().GetWorkflowId()
			if id == in.Except {
				continue
			}
			err := a.Temporal.SignalWorkflow(ctx, id, "", in.SignalName, in.Signal)
			var notFound *serviceerror.NotFound
			switch {
			case errors.As(err, &notFound):
			case err != nil:
				return res, fmt.Errorf("signal %s to %s: %w", in.SignalName, id, err)
			default:
				res.Signalled++
			}
		}
		if token = page.GetNextPageToken(); len(token) == 0 {
			return res, nil
		}
	}
}

// EndedRecoveryInput names a customer's recovery workflow.
type EndedRecoveryInput struct {
	WorkflowID string `json:"workflow_id"`
	// Previous asks for the newest run that ended, passing over the one
	// that runs (the caller itself, for a new life reading the last).
	Previous bool `json:"previous,omitempty"`
}

// EndedRecovery is how the customer's last recovery ended, if it did.
type EndedRecovery struct {
	// Found is false when no recovery is known (never run, or past
	// retention); Running when one runs (the signal raced its start or
	// its end).
	Found   bool `json:"found"`
	Running bool `json:"running,omitempty"`
	// Result is the workflow's result as it stored it; empty when the
	// run did not complete (terminated, failed, timed out).
	Result json.RawMessage `json:"result,omitempty"`
	Status string          `json:"status,omitempty"`
}

// EndedRecovery reads how the customer's last recovery ended, so that a
// payment arriving after the end can be told from the echo of one that
// ended it.
func (a *Activities) EndedRecovery(ctx context.Context, in EndedRecoveryInput) (EndedRecovery, error) {
	if in.WorkflowID == "" {
		return EndedRecovery{}, temporal.NewNonRetryableApplicationError("no workflow ID", ErrBadInput, nil)
	}
	if in.Previous {
		return a.previousRecovery(ctx, in.WorkflowID)
	}
	desc, err := a.Temporal.DescribeWorkflow(ctx, in.WorkflowID, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return EndedRecovery{}, nil
	case err != nil:
		return EndedRecovery{}, fmt.Errorf("describe %s: %w", in.WorkflowID, err)
	}
	st := desc.RawResponse.GetWorkflowExecutionInfo().GetStatus()
	out := EndedRecovery{Found: true, Status: st.String()}
	switch st {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		out.Running = true
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		// The result of the run described, by its run ID: without it the
		// read follows the workflow ID to a run started since, and waits
		// for that one to end.
		var raw json.RawMessage
		runID := desc.RawResponse.GetWorkflowExecutionInfo().GetExecution().GetRunId()
		if err := a.Temporal.GetWorkflow(ctx, in.WorkflowID, runID).Get(ctx, &raw); err != nil {
			return EndedRecovery{}, fmt.Errorf("read the result of %s: %w", in.WorkflowID, err)
		}
		out.Result = raw
	}
	return out, nil
}

// previousRecovery reads the result of the newest completed run of the
// workflow, found through visibility: the life before the running one.
func (a *Activities) previousRecovery(ctx context.Context, workflowID string) (EndedRecovery, error) {
	query := fmt.Sprintf("WorkflowId = '%s' AND ExecutionStatus = 'Completed'", workflowID)
	var newest *workflowpb.WorkflowExecutionInfo
	var token []byte
	for {
		page, err := a.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 100})
		if err != nil {
			return EndedRecovery{}, fmt.Errorf("list the ended runs of %s: %w", workflowID, err)
		}
		for _, ex := range page.GetExecutions() {
			if newest == nil || ex.GetCloseTime().AsTime().After(newest.GetCloseTime().AsTime()) {
				newest = ex
			}
		}
		if token = page.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	if newest == nil {
		return EndedRecovery{}, nil
	}
	var raw json.RawMessage
	if err := a.Temporal.GetWorkflow(ctx, workflowID, newest.GetExecution().GetRunId()).Get(ctx, &raw); err != nil {
		return EndedRecovery{}, fmt.Errorf("read the result of %s run %s: %w", workflowID, newest.GetExecution().GetRunId(), err)
	}
	return EndedRecovery{Found: true, Result: raw, Status: newest.GetStatus().String()}, nil
}
