package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"dunning/activities"
)

// ReconcilePageSize is how many events one ListEvents asks Stripe for.
// Each page passes through the workflow's history twice, so it is kept
// well under Stripe's maximum of 100.
const ReconcilePageSize = 50

// reconcileKnownPageSize is the page size of reconciliations that leave
// known events out of their pages (reconcileWatermarkChange): only events
// dunning does not have pass through history, so a page can be Stripe's
// largest.
const reconcileKnownPageSize = 100

// reconcileWatermarkChange marks the version of ReconcileEventsWorkflow
// that starts from the last complete run's watermark, leaves the events
// dunning already has out of each page with one visibility query, and
// leaves its own watermark in its memo.
const reconcileWatermarkChange = "reconcile-watermark"

// reduceListedEventsChange marks the version of ReconcileEventsWorkflow
// that has ListEvents decode events and pass on only the reduced ones.
const reduceListedEventsChange = "reconcile-reduced-events"

// reconcileUncheckedChange marks the version of ReconcileEventsWorkflow
// that tells ops of the events a catching-up run could not list safely
// (ReconcileResult.Unchecked).
const reconcileUncheckedChange = "reconcile-unchecked-alert"

// ReconcileEventsWorkflow compares Stripe's list of the handled events of
// the last Lookback with what dunning has: it starts StripeEventWorkflow for
// every event, with the event ID as workflow ID, so that an event the
// webhook already took changes nothing and one Stripe never delivered is
// handled now. The Temporal Schedule ReconcileScheduleID runs it.
func ReconcileEventsWorkflow(ctx workflow.Context, in ReconcileInput) (ReconcileResult, error) {
	ctx = withVersions(ctx)
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
		HeartbeatTimeout:    heartbeatTimeout,
		RetryPolicy:         retry,
	})
	startCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		// StartEvents heartbeats after each event, so the retry after a
		// lost worker carries on where it stopped.
		HeartbeatTimeout: heartbeatTimeout,
		RetryPolicy:      retry,
	})

	// Events are decoded in ListEvents, and only what dunning keeps of
	// them (the webhook's reduced event) passes through history: Stripe's
	// raw events carry customers' emails, names, addresses and phone
	// numbers. Runs from before listed raw events.
	reduce := version(ctx, reduceListedEventsChange, 1) == 1

	// Runs from before the watermark listed the whole look-back and
	// started every event, known or not.
	watermark := reduce && version(ctx, reconcileWatermarkChange, 1) == 1
	pageSize := ReconcilePageSize
	if watermark {
		pageSize = reconcileKnownPageSize
	}
	if watermark && in.Progress == nil {
		var last activities.ReconcileWatermark
		var err error
		if !in.Full {
			err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				StartToCloseTimeout: 30 * time.Second,
				HeartbeatTimeout:    heartbeatTimeout,
				RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
			}), a.LastReconcileWatermark).Get(ctx, &last)
		}
		if err != nil {
			// Costly but complete: without the watermark, the whole look-back.
			log.Warn("no watermark of the last reconciliation; listing the whole look-back", "error", err)
		}
		res.From, res.Since, res.CoveredFrom, res.Unchecked = ReconcileWindow(res.To, in.Lookback, overlapOf(in), in.Retention, last)
		workflow.SetCurrentDetails(ctx, res.details(false))
	}

	// Sorted, so deterministic; workflowcheck sees only the map behind it.
	types := HandledEventTypes() //workflowcheck:ignore
	cursor := in.StartingAfter
	for {
		var page activities.EventPage
		err := workflow.ExecuteActivity(listCtx, a.ListEvents, activities.ListEventsInput{
			Types: types, CreatedGTE: res.From, CreatedLT: res.To, StartingAfter: cursor, Limit: pageSize,
			Reduce: reduce, SkipKnown: watermark,
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
		res.Found += page.Ignored + page.Invalid + page.Known
		res.AlreadyKnown += page.Known
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
				Lookback: in.Lookback, Overlap: in.Overlap, Retention: in.Retention, Full: in.Full, Progress: &res, StartingAfter: cursor,
			})
		}
	}
	// Only a complete run that listed Stripe moves the watermark on: a
	// failed run never gets here, and a dry run listed nothing.
	if watermark && !res.DryRun {
		if err := workflow.UpsertMemo(ctx, map[string]any{
			ReconcileWatermarkMemo: res.To, ReconcileCoveredFromMemo: res.CoveredFrom,
		}); err != nil {
			return res, fmt.Errorf("leave the watermark %s: %w", res.To, err)
		}
	}
	if !res.Unchecked.IsZero() && !res.DryRun && version(ctx, reconcileUncheckedChange, 1) == 1 {
		var r activities.NotifyResult
		if err := workflow.ExecuteActivity(listCtx, a.Alert, uncheckedAlert(res, in)).Get(ctx, &r); err != nil {
			return res, fmt.Errorf("tell ops of the events created from %s to %s, not listed: %w", res.Unchecked, res.From, err)
		}
	}
	workflow.SetCurrentDetails(ctx, res.details(true))
	log.Info("reconciliation done", "from", res.From, "to", res.To, "pages", res.Pages, "found", res.Found,
		"started", res.Started, "already_known", res.AlreadyKnown, "ignored", res.Ignored, "invalid", res.Invalid,
		"dry_run", res.DryRun, "since", res.Since)
	return res, nil
}

func overlapOf(in ReconcileInput) time.Duration {
	if in.Overlap > 0 {
		return in.Overlap
	}
	return DefaultReconcileOverlap
}

// StripeEventsListedFor is how long Stripe lists an event after it was
// created.
const StripeEventsListedFor = 30 * 24 * time.Hour

// retentionMargin keeps a catching-up run this far inside the namespace
// retention, for the clocks of Stripe and Temporal, which may disagree.
const retentionMargin = time.Hour

// catchUpReach is how far back from its end a run may list events safely:
// as far as Stripe lists them and every event created since, if its
// workflow ran, still meets it (the retention, less a margin; the
// look-back, which is within the retention, when the retention is not
// given), and never less than the look-back.
func catchUpReach(lookback, retention time.Duration) time.Duration {
	reach := lookback
	if retention > 0 {
		reach = retention - retentionMargin
	}
	return max(min(reach, StripeEventsListedFor), lookback)
}

// ReconcileWindow decides where a reconciliation ending at to starts
// listing, given the watermark last left by a complete run: from last.To
// minus the overlap when the chain of complete runs reaching last.To
// covers the whole look-back before it without a gap, else (no watermark,
// or a gap) from to minus the look-back. A watermark older than the
// look-back (no run completed for that long) is gone on from all the
// same: the events since were never handled by a complete run, and Stripe
// has stopped redelivering the older of them. But never further back than
// catchUpReach: Stripe lists events for 30 days only, and an event older
// than the namespace retention may have run and had its workflow deleted,
// so a start would handle it a second time. unchecked is then where the
// listing would have started: the events from it to from are left for
// ops. since is the watermark gone on from (zero for the whole look-back)
// and coveredFrom how far back the chain reaching to then goes.
func ReconcileWindow(to time.Time, lookback, overlap, retention time.Duration, last activities.ReconcileWatermark) (from, since, coveredFrom, unchecked time.Time) {
	full := to.Add(-lookback)
	if last.To.IsZero() || last.CoveredFrom.IsZero() || last.CoveredFrom.After(full) {
		return full, time.Time{}, full, time.Time{}
	}
	wm := last.To
	if wm.After(to) {
		wm = to // a clock gone back: list at least the overlap
	}
	from = wm.Add(-overlap)
	if !from.After(full) {
		if oldest := to.Add(-catchUpReach(lookback, retention)); from.Before(oldest) {
			unchecked, from = from, oldest
		}
		if !from.Before(full) {
			return full, time.Time{}, full, unchecked
		}
		if !unchecked.IsZero() {
			// The events left out are a gap: the chain starts again here.
			return from, last.To, from, unchecked
		}
	}
	return from, last.To, last.CoveredFrom, unchecked
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
	if !r.Since.IsZero() {
		line += fmt.Sprintf(" · from the last watermark %s", r.Since.Format(time.RFC3339))
	}
	if !r.Unchecked.IsZero() {
		line += fmt.Sprintf(" · events created from %s not listed (ops told)", r.Unchecked.Format(time.RFC3339))
	}
	if r.DryRun {
		line += " · dry run: Stripe not configured, nothing listed"
	}
	return line
}

// uncheckedAlert tells ops of the events a catching-up run left out, and
// why: Stripe no longer lists them, or their workflows may be deleted.
func uncheckedAlert(res ReconcileResult, in ReconcileInput) activities.AlertInput {
	from, to := res.Unchecked.Format(time.RFC3339), res.From.Format(time.RFC3339)
	var why []string
	if res.Unchecked.Before(res.To.Add(-StripeEventsListedFor)) {
		why = append(why, "Stripe lists events for 30 days only")
	}
	retention := fmt.Sprintf("the namespace retention (%s)", in.Retention)
	if in.Retention <= 0 {
		retention = fmt.Sprintf("the namespace retention (not given: the look-back (%s) stands in for it)", in.Lookback)
	}
	if res.From.After(res.To.Add(-StripeEventsListedFor)) {
		why = append(why, fmt.Sprintf("an event older than %s may have been handled and its workflow deleted, so starting it again could act on it twice", retention))
	}
	// Where the catch-up reaches no further than the look-back, the run
	// lists the whole look-back and Since stays zero; the events left out
	// begin at the last watermark less the overlap.
	last := res.Since
	if last.IsZero() {
		last = res.Unchecked.Add(overlapOf(in))
	}
	lastRun := last.Format(time.RFC3339)
	return activities.AlertInput{
		Key:      "reconcile-unchecked:" + from + "/" + to,
		Severity: "critical",
		Title:    "Reconciliation could not check events created from " + from + " to " + to,
		Text: fmt.Sprintf("No reconciliation completed between %s and %s, and the events of the handled types created from %s to %s were not listed: %s. "+
			"Check in Stripe by hand the failed payments and card changes of that time, for customers whose recovery did not run.",
			lastRun, res.To.Format(time.RFC3339), from, to, strings.Join(why, "; ")),
		Fields: []string{"Not listed from", from, "Not listed to", to, "Last complete run", lastRun},
	}
}
