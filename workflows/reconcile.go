package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"dunning/activities"
)

// ReconcilePageSize is how many events one ListEvents asks Stripe for.
// Each page passes through the workflow's history twice, so it is kept
// well under Stripe's maximum of 100.
const ReconcilePageSize = 50

// reduceListedEventsChange marks the version of ReconcileEventsWorkflow
// that has ListEvents decode events and pass on only the reduced ones.
const reduceListedEventsChange = "reconcile-reduced-events"

// ReconcileEventsWorkflow compares Stripe's list of the handled events of
// the last Lookback with what dunning has: it starts StripeEventWorkflow for
// every event, with the event ID as workflow ID, so that an event the
// webhook already took changes nothing and one Stripe never delivered is
// handled now. The Temporal Schedule ReconcileScheduleID runs it.
func ReconcileEventsWorkflow(ctx workflow.Context, in ReconcileInput) (ReconcileResult, error) {
	log := workflow.GetLogger(ctx)
	var res ReconcileResult
	if in.Progress != nil {
		res = *in.Progress
	} else {
		if in.Lookback <= 0 {
			return res, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("reconciliation needs a positive look-back, got %s", in.Lookback), activities.ErrBadInput, nil)
		}
		res.To = workflow.Now(ctx).UTC().Truncate(time.Second)
		res.From = res.To.Add(-in.Lookback)
	}
	workflow.SetCurrentDetails(ctx, res.details(false))

	retry := &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        time.Minute,
		MaximumAttempts:        8, // then this run fails and the next one tries again
		NonRetryableErrorTypes: []string{activities.ErrStripeRejected, activities.ErrBadInput},
	}
	listCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 45 * time.Second,
		RetryPolicy:         retry,
	})
	startCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		// StartEvents heartbeats after each event, so a lost worker is
		// noticed soon and the retry carries on where it stopped.
		HeartbeatTimeout: time.Minute,
		RetryPolicy:      retry,
	})

	// Events are decoded in ListEvents, and only what dunning keeps of
	// them (the webhook's reduced event) passes through history: Stripe's
	// raw events carry customers' emails, names, addresses and phone
	// numbers. Runs from before listed raw events.
	reduce := workflow.GetVersion(ctx, reduceListedEventsChange, workflow.DefaultVersion, 1) == 1

	// Sorted, so deterministic; workflowcheck sees only the map behind it.
	types := HandledEventTypes() //workflowcheck:ignore
	cursor := in.StartingAfter
	for {
		var page activities.EventPage
		err := workflow.ExecuteActivity(listCtx, a.ListEvents, activities.ListEventsInput{
			Types: types, CreatedGTE: res.From, CreatedLT: res.To, StartingAfter: cursor, Limit: ReconcilePageSize,
			Reduce: reduce,
		}).Get(ctx, &page)
		if err != nil {
			workflow.SetCurrentDetails(ctx, res.details(false)+" · listing Stripe events failed")
			return res, fmt.Errorf("list stripe events after %q: %w", cursor, err)
		}
		res.Pages++
		res.DryRun = res.DryRun || page.DryRun
		if len(page.Events) > 0 {
			var started activities.StartEventsResult
			err := workflow.ExecuteActivity(startCtx, a.StartEvents, activities.StartEventsInput{Events: page.Events, Reduced: reduce}).Get(ctx, &started)
			if err != nil {
				workflow.SetCurrentDetails(ctx, res.details(false)+" · starting events failed")
				return res, fmt.Errorf("start listed events after %q: %w", cursor, err)
			}
			res.Found += len(page.Events)
			res.Started += started.Started
			res.AlreadyKnown += started.AlreadyKnown
			res.Ignored += started.Ignored
			res.Invalid += started.Invalid
		}
		res.Found += page.Ignored + page.Invalid
		res.Ignored += page.Ignored
		res.Invalid += page.Invalid
		if !page.HasMore {
			break
		}
		if page.LastID == "" || page.LastID == cursor {
			return res, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("stripe's event list does not move on after %q", cursor), activities.ErrStripeRejected, nil)
		}
		cursor = page.LastID
		workflow.SetCurrentDetails(ctx, res.details(false))
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			log.Info("reconciliation continues as new", "pages", res.Pages, "found", res.Found, "starting_after", cursor)
			return res, workflow.NewContinueAsNewError(ctx, ReconcileEventsWorkflowName, ReconcileInput{
				Lookback: in.Lookback, Progress: &res, StartingAfter: cursor,
			})
		}
	}
	workflow.SetCurrentDetails(ctx, res.details(true))
	log.Info("reconciliation done", "from", res.From, "to", res.To, "pages", res.Pages, "found", res.Found,
		"started", res.Started, "already_known", res.AlreadyKnown, "ignored", res.Ignored, "invalid", res.Invalid,
		"dry_run", res.DryRun)
	return res, nil
}

// details is the one line the UI shows for a reconciliation.
func (r ReconcileResult) details(done bool) string {
	state := "running"
	if done {
		state = "done"
	}
	line := fmt.Sprintf("%s · found %d, started %d, already known %d", state, r.Found, r.Started, r.AlreadyKnown)
	if r.Ignored > 0 {
		line += fmt.Sprintf(", ignored %d", r.Ignored)
	}
	if r.Invalid > 0 {
		line += fmt.Sprintf(", invalid %d", r.Invalid)
	}
	line += fmt.Sprintf(" · events created %s to %s · %d pages", r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), r.Pages)
	if r.DryRun {
		line += " · dry run: Stripe not configured, nothing listed"
	}
	return line
}
