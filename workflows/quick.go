package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"dunning/activities"
)

// Short calls as local activities. A local activity runs in the worker
// that runs the workflow task, inside that task: no activity task to
// schedule, poll and complete, and no workflow task to wake the workflow
// after it. Its result is recorded only when the workflow task completes,
// so a worker lost before then runs it again: only calls that are
// read-only or idempotent by key go this way (reads of Stripe and
// Temporal, signals the receiver de-duplicates by event ID, notices and
// alerts with their idempotency key).
//
// Running again is not only running twice: the task run again decides
// anew, on reads answered anew, at another workflow.Now. A call the
// customer or ops can see therefore runs locally only in a task whose
// every input is in the history already (a new life's first task, on the
// reads its signal brought, at the run's start time), where the task run
// again sends the very same thing; anywhere else it is an activity, which
// the deciding task's completion records with its parameters before it is
// sent (a timer to end the task would do too, but Temporal fires none
// sooner than a second later).
//
// Each call is tried locally for a few seconds at most, well inside the
// workflow task's timeout, with the same growing pauses between attempts
// as the activity's. A peer's permanent answer (a non-retryable error) is
// final there as it is for the activity. Any other failure runs the call
// again, after a pause, as the activity it always was, with that
// activity's options, whose answer (or error) is then the call's.

const (
	// localRoutingChange moves the event workflow's signal and
	// signal-with-start to a local activity.
	localRoutingChange = "local-routing"
	// localFirstFailureChange makes the first failure's reads one
	// concurrent round of local activities, and its notice and alert
	// another.
	localFirstFailureChange = "local-first-failure"
	// toldAfterRecordChange sends the first failure's notice and alert as
	// activities, recorded before they are sent, instead of as local
	// activities of the task that decided them.
	toldAfterRecordChange = "told-after-record"
	// firstReadsChange has the event workflow read what opens a life and
	// pass it with the signal; a life opened on it is announced, notice
	// and alert as local activities, on that signal alone.
	firstReadsChange = "first-reads"
	// previousAtStartChange leaves the first reads' look at the customer's
	// latest run to the recovery's start, which learns it from its own
	// answer when there is none (PaymentFailedSignal.FirstBeforeStart).
	previousAtStartChange = "previous-at-start"
)

// localOptions bound a local attempt: three tries within 10 seconds, 1 s
// and 2 s apart.
var localOptions = workflow.LocalActivityOptions{
	ScheduleToCloseTimeout: 10 * time.Second,
	StartToCloseTimeout:    5 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    2 * time.Second,
		MaximumAttempts:    3,
		NonRetryableErrorTypes: []string{activities.ErrStripeRejected, activities.ErrAmberfloRejected,
			activities.ErrNotifyRejected, activities.ErrBadInput},
	},
}

// fallbackPause is the pause before the activity that follows failed local
// attempts: the next step of their backoff.
const fallbackPause = 4 * time.Second

// quickCall is a short call under way as a local activity.
type quickCall struct {
	actx   workflow.Context // the activity options of the fallback
	fn     any
	arg    any
	future workflow.Future
}

// startQuick starts fn(arg) as a local activity; actx carries the options
// of the activity it falls back to.
func startQuick(ctx, actx workflow.Context, fn, arg any) *quickCall {
	lctx := workflow.WithLocalActivityOptions(ctx, localOptions)
	return &quickCall{actx: actx, fn: fn, arg: arg, future: workflow.ExecuteLocalActivity(lctx, fn, arg)}
}

// Get waits for the call's result; when the local attempt failed, it runs
// the call as a regular activity and returns what that answers.
func (q *quickCall) Get(ctx workflow.Context, out any) error {
	err := q.future.Get(ctx, out)
	var app *temporal.ApplicationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &app) && app.NonRetryable():
		return err
	}
	workflow.GetLogger(ctx).Warn("local activity did not succeed; running it as an activity", "error", err)
	if err := workflow.Sleep(ctx, fallbackPause); err != nil {
		return err
	}
	return workflow.ExecuteActivity(q.actx, q.fn, q.arg).Get(ctx, out)
}
