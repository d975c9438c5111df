package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"dunning/activities"
)

// StripeEventWorkflow handles one verified Stripe event. Its ID is the
// event ID, so a redelivered or backfilled event meets this workflow and
// does nothing twice. It routes the event by type to the lifecycle that
// owns it.
func StripeEventWorkflow(ctx workflow.Context, in StripeEventInput) (StripeEventResult, error) {
	ctx = withVersions(ctx)
	ev := in.Event
	log := workflow.GetLogger(ctx)
	route, handled := RouteOf(ev.Type)
	res := StripeEventResult{EventID: ev.ID, Type: ev.Type, CustomerID: ev.CustomerID, Route: route}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 15 * time.Second,
		HeartbeatTimeout:    heartbeatTimeout,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
	// Only inputs no earlier history has (Unreadable, ExpectedLivemode) are
	// held back, so recorded histories replay the routing below unchanged.
	if alert, outcome, held := heldBack(ev); held {
		var r activities.NotifyResult
		if err := workflow.ExecuteActivity(ctx, a.Alert, alert).Get(ctx, &r); err != nil {
			return res, err
		}
		res.Outcome = outcome
		log.Warn("stripe event not acted on; ops alerted", "event_id", ev.ID, "type", ev.Type, "outcome", outcome)
		return res, nil
	}
	if !handled {
		// The webhook drops these; one can still arrive through a manual
		// start or a backfill, and it is not an error.
		res.Outcome = "ignored: type not handled"
		log.Info("stripe event of an unhandled type", "event_id", ev.ID, "type", ev.Type)
		return res, nil
	}
	var err error
	switch route {
	case RoutePaymentFailed:
		res.Outcome, err = routePaymentFailed(ctx, ev)
	case RoutePaid:
		res.Outcome, err = routePaid(ctx, ev)
	case RouteCardUpdated:
		res.Outcome, err = routeCardUpdated(ctx, ev)
	case RouteCardExpiring:
		res.Outcome, err = routeCardExpiring(ctx, ev)
	case RouteSourceDeleted:
		res.Outcome, err = routeSourceDeleted(ctx, ev)
	case RouteActionRequired:
		res.Outcome, err = routeActionRequired(ctx, ev)
	case RoutePaymentProcessing:
		res.Outcome, err = routePaymentProcessing(ctx, ev)
	}
	if err != nil {
		// The event's workflow ID is now taken by a failed run, so neither
		// Stripe nor reconciliation runs the event again: ops must know. A
		// cancellation is an operator's own end of the run.
		if !temporal.IsCanceledError(err) && ctx.Err() == nil && version(ctx, eventFailedAlertChange, 1) == 1 {
			alertEventFailed(ctx, ev, err)
		}
		return res, err
	}
	log.Info("stripe event handled", "event_id", ev.ID, "type", ev.Type, "route", route,
		"customer", ev.CustomerID, "outcome", res.Outcome)
	return res, nil
}

// eventFailedAlertChange sends ops one alert for an event whose route
// failed; event workflows recorded before it failed silently.
const eventFailedAlertChange = "event-failed-alert"

// alertEventFailed tells ops that the route of ev failed for good with err.
// Only a permanent error comes back from the routes' activities (they retry
// everything else), so the event will not be handled unless someone does.
func alertEventFailed(ctx workflow.Context, ev StripeEvent, err error) {
	customer := ev.CustomerID
	if customer == "" {
		customer = "no customer"
	}
	var r activities.NotifyResult
	alertErr := workflow.ExecuteActivity(ctx, a.Alert, activities.AlertInput{
		Key: ev.ID + ":failed", Severity: "critical", StripeCustomerID: ev.CustomerID, WorkflowID: EventWorkflowID(ev.ID),
		Title: "Stripe event not handled: " + ev.ID,
		Text: fmt.Sprintf("Stripe event %s (%s, %s) failed: %s. dunning did not finish acting on it, and will not run it again "+
			"while its failed workflow %s is retained: Stripe's redelivery and reconciliation find the ID taken. "+
			"Check the customer in the Stripe Dashboard and do by hand what the event called for; or, once the cause is fixed, "+
			"delete the workflow (temporal workflow delete --workflow-id %s) and run a reconciliation whose look-back covers "+
			"the event (docs/operations.md, Reconciliation).",
			ev.ID, ev.Type, customer, errText(err), EventWorkflowID(ev.ID), EventWorkflowID(ev.ID)),
		Fields: []string{"Event", ev.ID, "Type", ev.Type, "Customer", customer},
	}).Get(ctx, &r)
	if alertErr != nil {
		workflow.GetLogger(ctx).Error("stripe event failed and ops could not be alerted", "event_id", ev.ID, "type", ev.Type,
			"customer", ev.CustomerID, "error", err, "alert_error", alertErr)
	}
}

// WrongMode reports whether an event comes from the other Stripe mode than
// dunning's API key: a test-mode event at a dunning with a live key, or the
// reverse. Such an event is not dunning's to act on. With the mode unknown
// (no key) no event is of the wrong mode.
func WrongMode(ev StripeEvent) bool {
	return ev.ExpectedLivemode != nil && *ev.ExpectedLivemode != ev.Livemode
}

// heldBack says whether an event is not to be acted on and, when so, the one
// ops alert that says why and the outcome to report. An event that could
// not be read is held back whatever its type; an event of the other mode
// when dunning handles its type (others are ignored anyway).
func heldBack(ev StripeEvent) (alert activities.AlertInput, outcome string, held bool) {
	typ := ev.Type
	if typ == "" {
		typ = "type unknown"
	}
	_, handled := RouteOf(ev.Type)
	switch {
	case ev.Unreadable != "":
		return activities.AlertInput{
			Key: ev.ID + ":unreadable", Severity: "critical", WorkflowID: EventWorkflowID(ev.ID),
			Title: "Stripe event dunning cannot read: " + ev.ID,
			Text: fmt.Sprintf("Stripe event %s (%s) could not be read: %s. dunning did not act on it; "+
				"look it up in the Stripe Dashboard and handle it by hand.", ev.ID, typ, ev.Unreadable),
		}, "unreadable: ops alerted, not acted on", true
	case handled && WrongMode(ev):
		return activities.AlertInput{
			Key: ev.ID + ":livemode", Severity: "critical", WorkflowID: EventWorkflowID(ev.ID),
			Title: "Stripe event of the other mode: " + ev.ID,
			Text: fmt.Sprintf("Stripe event %s (%s) is a %s event, but dunning's Stripe API key is a %s key; "+
				"dunning did not act on it. Check which Stripe endpoint delivers here (STRIPE_WEBHOOK_SECRET) "+
				"and which key is configured (STRIPE_API_KEY).", ev.ID, typ, modeName(ev.Livemode), modeName(*ev.ExpectedLivemode)),
		}, "other mode than the API key: ops alerted, not acted on", true
	}
	return activities.AlertInput{}, "", false
}

func modeName(live bool) string {
	if live {
		return "live-mode"
	}
	return "test-mode"
}

func routePaymentFailed(ctx workflow.Context, ev StripeEvent) (string, error) {
	if ev.CustomerID == "" || ev.PaymentIntent == nil {
		// Nothing to recover from without a customer; ops decide.
		var r activities.NotifyResult
		err := workflow.ExecuteActivity(ctx, a.Alert, activities.AlertInput{
			Key: ev.ID + ":unroutable", Severity: "warning",
			Title: "Failed payment without a customer",
			Text:  fmt.Sprintf("Stripe event %s (%s) names no customer or no payment intent; dunning cannot recover it.", ev.ID, ev.ObjectID),
		}).Get(ctx, &r)
		if err != nil {
			return "", err
		}
		return "no customer: ops alerted", nil
	}
	if ev.PaymentIntent.Waived {
		// Forgiven by an operator: Stripe may still report a failure of
		// its own retry, which must not open a recovery again.
		return "intent waived in dunning: nothing started", nil
	}
	sig := PaymentFailedSignal{EventID: ev.ID, Created: ev.Created, Intent: *ev.PaymentIntent,
		RequestIdempotencyKey: ev.RequestIdempotencyKey}
	start := &activities.StartRequest{Kind: activities.StartRecovery, StripeCustomerID: ev.CustomerID}
	if isOwnRetry(sig) {
		// The echo of dunning's own retry joins the recovery that made it
		// and never opens a new one.
		start = nil
	} else if version(ctx, firstReadsChange, 1) == 1 {
		if version(ctx, previousAtStartChange, 1) == 1 {
			// The previous life is left to the start, which asks Temporal
			// once for both: a customer with no run retained (most) is
			// started outright, and the others are read before theirs.
			sig.FirstBeforeStart = firstReads(ctx, ev, false)
		} else {
			sig.First = firstReads(ctx, ev, true)
		}
	}
	res, err := signal(ctx, RecoveryWorkflowID(ev.CustomerID), SignalPaymentFailed, sig, start)
	switch {
	case err != nil:
		return "", err
	case !res.Delivered:
		return "own retry's failure; no recovery running", nil
	}
	return "recovery " + RecoveryWorkflowID(ev.CustomerID) + " told", nil
}

// firstReads reads, at once and as local activities, what a life opened
// by this failure decides on. A running recovery has its own and ignores
// them; a new one finds them in its history, as the signal's, and makes
// the same decision however often its first workflow task runs.
//
// A peer's answer, a refusal included, is a read; no answer within
// firstReadsWithin is not: then there are none (nil), the recovery starts
// at once all the same and reads for itself, as it waits for nothing here.
//
// With previous false the customer's latest run is not read: the reads
// leave it to the start (PaymentFailedSignal.FirstBeforeStart).
func firstReads(ctx workflow.Context, ev StripeEvent, previous bool) *FirstReads {
	pi := ev.PaymentIntent
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    15 * time.Second,
		ScheduleToCloseTimeout: firstReadsWithin,
		HeartbeatTimeout:       heartbeatTimeout,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second},
	})
	profileCall := startQuick(ctx, actx, a.CustomerProfile, activities.CustomerInput{StripeCustomerID: ev.CustomerID})
	// The customer's latest run, read from Temporal's own record of it
	// (not from visibility, which may lag): the life before the one
	// this failure opens, or one still running, which takes the signal.
	var prevCall *quickCall
	if previous {
		prevCall = startQuick(ctx, actx, a.EndedRecovery, activities.EndedRecoveryInput{WorkflowID: RecoveryWorkflowID(ev.CustomerID)})
	}
	owedCall := startQuick(ctx, actx, a.IntentOwed, activities.OwedInput{
		IntentID: pi.ID, StripeCustomerID: ev.CustomerID, FailedPaymentMethod: pi.PaymentMethodID, SkipCharge: true,
	})
	r := FirstReads{At: workflow.Now(ctx)}
	profileErr := profileCall.Get(ctx, &r.Profile)
	var prevErr error
	if prevCall != nil {
		prevErr = prevCall.Get(ctx, &r.Previous)
	}
	owedErr := owedCall.Get(ctx, &r.Owed)
	for _, err := range []error{profileErr, prevErr, owedErr} {
		var app *temporal.ApplicationError
		if err != nil && !(errors.As(err, &app) && app.NonRetryable()) {
			workflow.GetLogger(ctx).Warn("first reads not answered; the recovery reads for itself", "error", err)
			return nil
		}
	}
	r.ProfileErr, r.PreviousErr, r.OwedErr = errString(profileErr), errString(prevErr), errString(owedErr)
	return &r
}

// firstReadsWithin bounds the first reads, retries included.
const firstReadsWithin = time.Minute

func errString(err error) string {
	if err == nil {
		return ""
	}
	return errText(err)
}

func routePaid(ctx workflow.Context, ev StripeEvent) (string, error) {
	if ev.CustomerID == "" {
		return "no customer: nothing to do", nil
	}
	sig := PaidSignal{EventID: ev.ID, Created: ev.Created, Source: ev.Type}
	switch {
	case ev.PaymentIntent != nil:
		sig.IntentID, sig.InvoiceID = ev.PaymentIntent.ID, ev.PaymentIntent.InvoiceID
		if ev.Type == EventPaymentSucceeded && ev.PaymentIntent.AmountReceived > 0 {
			// What the intent took, which a credit note may have lowered
			// below what failed.
			received := ev.PaymentIntent.AmountReceived
			sig.AmountPaid = &received
		}
	case ev.Invoice != nil:
		sig.IntentID, sig.InvoiceID = ev.Invoice.PaymentIntentID, ev.Invoice.ID
		if ev.Type == EventInvoicePaid {
			paid := ev.Invoice.AmountPaid
			sig.AmountPaid = &paid
			if ev.Invoice.PaidOutOfBand {
				// Money taken elsewhere: a zero amount_paid says nothing
				// of how much.
				sig.Source += " (out of band)"
				if paid == 0 {
					sig.AmountPaid = nil
				}
			}
		}
	}
	res, err := signal(ctx, RecoveryWorkflowID(ev.CustomerID), SignalPaid, sig, nil)
	if err == nil && res.Delivered && version(ctx, paidWhileRunningChange, 1) == 1 {
		// The running recovery takes what is its own; a payment for what
		// the life before it left unpaid it only records as unmatched.
		_, prev, err := endedRecovery(ctx, activities.EndedRecoveryInput{WorkflowID: RecoveryWorkflowID(ev.CustomerID), Previous: true})
		if err != nil {
			return "", err
		}
		if why, late := LateMoneyOfEarlierLife(prev, sig); late {
			return alertLateMoney(ctx, ev, sig, why)
		}
	}
	if err != nil || res.Delivered ||
		version(ctx, "paid-after-the-end", 1) == workflow.DefaultVersion {
		return delivered(res, err)
	}
	// No recovery runs: money after the end of one is for ops to see.
	ended, last, err := endedRecovery(ctx, activities.EndedRecoveryInput{WorkflowID: RecoveryWorkflowID(ev.CustomerID)})
	if err != nil {
		return "", err
	}
	why, late := LateMoney(ended.Found && !ended.Running, last, sig)
	if !late {
		return delivered(res, nil)
	}
	return alertLateMoney(ctx, ev, sig, why)
}

// paidWhileRunningChange has a payment that a running recovery took also
// looked up in the life before it, whose end it may come after; event
// workflows recorded before it stopped at the running recovery.
const paidWhileRunningChange = "paid-while-running"

// endedRecovery reads how a customer's recovery ended, with its result
// decoded (empty when the run did not complete).
func endedRecovery(ctx workflow.Context, in activities.EndedRecoveryInput) (activities.EndedRecovery, RecoveryResult, error) {
	var ended activities.EndedRecovery
	if err := workflow.ExecuteActivity(ctx, a.EndedRecovery, in).Get(ctx, &ended); err != nil {
		return ended, RecoveryResult{}, err
	}
	var last RecoveryResult
	if len(ended.Result) > 0 {
		// Decoding a plain struct is deterministic.
		err := json.Unmarshal(ended.Result, &last) //workflowcheck:ignore
		if err != nil {
			return ended, RecoveryResult{}, fmt.Errorf("decode the result of an ended run of %s: %w", in.WorkflowID, err)
		}
	}
	return ended, last, nil
}

// alertLateMoney tells ops of money after the end of a recovery, why says
// after what.
func alertLateMoney(ctx workflow.Context, ev StripeEvent, sig PaidSignal, why string) (string, error) {
	amount := paidAmount(ev)
	var r activities.NotifyResult
	err := workflow.ExecuteActivity(ctx, a.Alert, activities.AlertInput{
		Key: ev.ID + ":late-money", Severity: "critical", StripeCustomerID: ev.CustomerID, WorkflowID: RecoveryWorkflowID(ev.CustomerID),
		Title:  "Money after the end: " + ev.CustomerID,
		Text:   fmt.Sprintf("%s paid %s (%s, event %s) %s. dunning took no action; refund or restore by hand.", ev.CustomerID, amount, firstNonEmpty(sig.IntentID, sig.InvoiceID), ev.ID, why),
		Fields: []string{"Customer", ev.CustomerID, "Intent", sig.IntentID, "Invoice", sig.InvoiceID, "Amount", amount},
	}).Get(ctx, &r)
	if err != nil {
		return "", err
	}
	return "money after the end: " + amount + " " + why + "; ops alerted", nil
}

// LateMoney decides whether a payment that found no recovery running is
// money after the end of one: the last recovery ended deprovisioned or
// waived, or it had the paid intent waived or canceled. A payment for an
// intent the last recovery saw paid is only its echo.
func LateMoney(ended bool, last RecoveryResult, paid PaidSignal) (string, bool) {
	if !ended {
		return "", false
	}
	return lateMoney(last, paid, false)
}

// LateMoneyOfEarlierLife decides whether a payment that a running recovery
// took is money after the end of the life before it (earlier, as it
// ended): an intent that life left waived or canceled, or left unpaid as
// it ended deprovisioned or waived. Unlike LateMoney, a payment for an
// intent the earlier life did not have is the running life's own.
func LateMoneyOfEarlierLife(earlier RecoveryResult, paid PaidSignal) (string, bool) {
	return lateMoney(earlier, paid, true)
}

// lateMoney is LateMoney on a life that ended; ownOnly leaves out a
// payment for none of its intents.
func lateMoney(last RecoveryResult, paid PaidSignal, ownOnly bool) (string, bool) {
	matched := false
	for _, in := range last.Intents {
		if !paidFor(paid, in) {
			continue
		}
		switch in.State {
		case IntentPaid:
			return "", false
		case IntentWaived, IntentCanceled:
			return "after its debt was " + string(in.State), true
		}
		matched = true
	}
	if ownOnly && !matched {
		return "", false
	}
	switch last.Stage {
	case StageDeprovisioned:
		return "after the customer was deprovisioned", true
	case StageWaived:
		return "after the debt was waived", true
	}
	return "", false
}

// paidFor reports whether a payment is for an intent: the intent itself,
// or the invoice it pays.
func paidFor(paid PaidSignal, in IntentOutcome) bool {
	return (paid.IntentID != "" && in.ID == paid.IntentID) || (paid.InvoiceID != "" && in.InvoiceID == paid.InvoiceID)
}

func paidAmount(ev StripeEvent) string {
	switch {
	case ev.PaymentIntent != nil:
		return money(ev.PaymentIntent.Amount, ev.PaymentIntent.Currency)
	case ev.Invoice != nil:
		return money(ev.Invoice.AmountPaid, ev.Invoice.Currency)
	}
	return "an unknown amount"
}

func routeCardUpdated(ctx workflow.Context, ev StripeEvent) (string, error) {
	if ev.CustomerID == "" {
		return "no customer: nothing to do", nil
	}
	if ev.Type == EventCustomerUpdated && !ev.DefaultPaymentMethodChanged {
		return "default payment method unchanged: nothing to do", nil
	}
	sig := CardUpdatedSignal{EventID: ev.ID, Created: ev.Created, Source: ev.Type}
	if ev.Card != nil {
		sig.PaymentMethodID = ev.Card.ID
	}
	told := 0
	res, err := signal(ctx, RecoveryWorkflowID(ev.CustomerID), SignalCardUpdated, sig, nil)
	if err != nil {
		return "", err
	}
	if res.Delivered {
		told++
	}
	// Event workflows recorded before card-expiry watches existed told the
	// recovery alone.
	if version(ctx, "card-updated-tells-expiry-watches", 1) == workflow.DefaultVersion {
		return delivered(res, nil)
	}
	// The customer's card-expiry watches end: the card this event names
	// directly, the others through visibility.
	direct := ""
	if ev.ObjectType != "customer" && ev.ObjectID != "" {
		direct = CardExpiryWorkflowID(ev.ObjectID)
		if res, err = signal(ctx, direct, SignalCardUpdated, sig, nil); err != nil {
			return "", err
		}
		if res.Delivered {
			told++
		}
	}
	others, err := signalMatching(ctx, CustomerCardExpiryQuery(ev.CustomerID), SignalCardUpdated, sig, direct)
	if err != nil {
		return "", err
	}
	told += others
	if told == 0 {
		return "no workflow running for the customer: nothing to do", nil
	}
	return fmt.Sprintf("%d running workflow(s) told", told), nil
}

func routeCardExpiring(ctx workflow.Context, ev StripeEvent) (string, error) {
	if ev.CustomerID == "" || ev.Card == nil || ev.Card.ExpMonth == 0 || ev.Card.ExpYear == 0 {
		return "no customer or no card expiry in the event: nothing to do", nil
	}
	start := CardExpiryInput{StripeCustomerID: ev.CustomerID, Card: *ev.Card, EventID: ev.ID, Created: ev.Created}
	args, err := json.Marshal(start) //workflowcheck:ignore
	if err != nil {
		return "", fmt.Errorf("encode card expiry input: %w", err)
	}
	id := CardExpiryWorkflowID(ev.Card.ID)
	_, err = signal(ctx, id, SignalCardExpiring, CardExpiringSignal{EventID: ev.ID, Created: ev.Created, Card: *ev.Card},
		&activities.StartRequest{Kind: activities.StartCardExpiry, StripeCustomerID: ev.CustomerID, Args: args})
	if err != nil {
		return "", err
	}
	return "card expiry watched by " + id, nil
}

// sourceDeletedRefusalsChange makes a refusal on the way of a removed
// card a result: Stripe refusing the payment-methods lookup reaches ops,
// and a refused customer notice no longer keeps the ops alert and the
// running recovery's signal from going out. Event workflows recorded
// before it failed on either.
const sourceDeletedRefusalsChange = "source-deleted-refusals"

// removalReachesRecoveryChange tells a running recovery of a removed
// payment method while a usable one remains (UsableLeft), so that it never
// charges the removed one. Event workflows recorded before it told the
// recovery only when nothing usable was left.
const removalReachesRecoveryChange = "removal-reaches-recovery"

func routeSourceDeleted(ctx workflow.Context, ev StripeEvent) (string, error) {
	if ev.CustomerID == "" {
		return "no customer: nothing to do", nil
	}
	// A removed card needs no more expiry reminders.
	removed := CardUpdatedSignal{EventID: ev.ID, Created: ev.Created, PaymentMethodID: ev.ObjectID, Source: ev.Type}
	if _, err := signal(ctx, CardExpiryWorkflowID(ev.ObjectID), SignalCardUpdated, removed, nil); err != nil {
		return "", err
	}
	// Whether the customer can still pay is Stripe's to say, now. Only a
	// permanent refusal or the workflow's cancellation comes back from
	// the activities here: they retry everything else.
	var pms activities.PaymentMethods
	if err := workflow.ExecuteActivity(ctx, a.PaymentMethods, activities.CustomerInput{StripeCustomerID: ev.CustomerID}).Get(ctx, &pms); err != nil {
		if refusalIsResult(ctx, err) {
			return lookupRefused(ctx, ev, err)
		}
		return "", err
	}
	if pms.DryRun {
		return "stripe not configured: cannot tell whether a payment method remains", nil
	}
	if usable(pms, ev.ObjectID) {
		if ev.ObjectID == "" || version(ctx, removalReachesRecoveryChange, 1) == workflow.DefaultVersion {
			return "a usable payment method remains: nothing to do", nil
		}
		// Nobody needs telling, but a running recovery must never charge
		// the removed one again (Stripe's reads may lag the removal).
		res, err := signal(ctx, RecoveryWorkflowID(ev.CustomerID), SignalPaymentMethodRemoved,
			PaymentMethodRemovedSignal{EventID: ev.ID, Created: ev.Created, Source: ev.Type, PaymentMethodID: ev.ObjectID, UsableLeft: true}, nil)
		if err != nil {
			return "", err
		}
		if res.Delivered {
			return "a usable payment method remains: running recovery told not to charge " + ev.ObjectID, nil
		}
		return "a usable payment method remains: nothing to do", nil
	}
	var r activities.NotifyResult
	noticeErr := workflow.ExecuteActivity(ctx, a.Notice, activities.NoticeInput{
		Key: ev.ID + ":notice", Type: "payment_method_missing", StripeCustomerID: ev.CustomerID, CreatedAt: workflow.Now(ctx),
	}).Get(ctx, &r)
	if noticeErr != nil && !refusalIsResult(ctx, noticeErr) {
		return "", noticeErr
	}
	told := "customer and ops told"
	alert := activities.AlertInput{
		Key: ev.ID + ":alert", Severity: "warning", StripeCustomerID: ev.CustomerID,
		Title: "No way to pay left: " + ev.CustomerID,
		Text:  "The customer removed " + ev.ObjectID + " and has no usable payment method; the next charge will fail.",
	}
	if noticeErr != nil {
		// Its own key: the alert says something else than the one above.
		told = "ops told, customer notice not delivered"
		alert.Key, alert.Severity = ev.ID+":alert:undelivered", "critical"
		alert.Title = "No way to pay left, customer not told: " + ev.CustomerID
		alert.Text += fmt.Sprintf(" The payment_method_missing notice could not be sent (%s). Tell the customer by hand.", errText(noticeErr))
	}
	if err := workflow.ExecuteActivity(ctx, a.Alert, alert).Get(ctx, &r); err != nil {
		return "", err
	}
	res, err := signal(ctx, RecoveryWorkflowID(ev.CustomerID), SignalPaymentMethodRemoved,
		PaymentMethodRemovedSignal{EventID: ev.ID, Created: ev.Created, Source: ev.Type, PaymentMethodID: ev.ObjectID}, nil)
	if err != nil {
		return "", err
	}
	if res.Delivered {
		return "no payment method left: " + told + ", running recovery waits for a card", nil
	}
	return "no payment method left: " + told, nil
}

// refusalIsResult reports whether a peer's permanent refusal on the way of
// a removed card is a result, to be told, rather than the end of the
// event workflow: from sourceDeletedRefusalsChange on. A cancellation
// always ends it.
func refusalIsResult(ctx workflow.Context, err error) bool {
	return !temporal.IsCanceledError(err) && version(ctx, sourceDeletedRefusalsChange, 1) == 1
}

// lookupRefused tells ops that Stripe refused the removed card's customer's
// payment methods: no one can tell whether the customer can still pay, so
// neither the customer nor a running recovery is told anything.
func lookupRefused(ctx workflow.Context, ev StripeEvent, refusal error) (string, error) {
	var r activities.NotifyResult
	err := workflow.ExecuteActivity(ctx, a.Alert, activities.AlertInput{
		Key: ev.ID + ":payment-methods-unknown", Severity: "critical", StripeCustomerID: ev.CustomerID, WorkflowID: EventWorkflowID(ev.ID),
		Title: "Cannot tell whether " + ev.CustomerID + " can still pay",
		Text: fmt.Sprintf("The customer removed %s (event %s), and Stripe refused the list of their payment methods: %s. "+
			"dunning cannot tell whether a usable payment method remains and told neither the customer nor a running recovery; "+
			"check the customer in the Stripe Dashboard and, if nothing usable is left, tell them by hand.", ev.ObjectID, ev.ID, errText(refusal)),
	}).Get(ctx, &r)
	if err != nil {
		return "", err
	}
	return "stripe refused the payment-methods lookup: ops alerted", nil
}

// usable reports whether the customer can still pay with something other
// than the removed method: an attached card that has not expired, or a
// default that is neither the removed method nor an expired card.
func usable(pms activities.PaymentMethods, removed string) bool {
	for _, m := range pms.Methods {
		if m.ID != removed && !m.Expired {
			return true
		}
	}
	if pms.DefaultID == "" || pms.DefaultID == removed {
		return false
	}
	for _, m := range pms.Methods {
		if m.ID == pms.DefaultID {
			return !m.Expired
		}
	}
	return true // a default that is not a card (a bank account source)
}

// routeActionRequired tells the customer's running recovery that the bank
// asks the customer to authenticate a payment: one it knows as in flight
// needs their action now (action-after-inflight-told). It starts no
// recovery: a customer authenticating a payment on the page is not a
// failure.
func routeActionRequired(ctx workflow.Context, ev StripeEvent) (string, error) {
	if version(ctx, actionAfterInFlightChange, 1) == workflow.DefaultVersion {
		return "ignored: type not handled", nil
	}
	if ev.CustomerID == "" || ev.PaymentIntent == nil {
		return "no customer or payment intent: nothing to do", nil
	}
	sig := ActionRequiredSignal{EventID: ev.ID, Created: ev.Created, IntentID: ev.PaymentIntent.ID}
	return delivered(signal(ctx, RecoveryWorkflowID(ev.CustomerID), SignalActionRequired, sig, nil))
}

// routePaymentProcessing tells the customer's running recovery that a
// payment is in flight (debit-failure-told): one it knows as owed waits
// for its outcome, and a failure after it is told as a failure again.
// It starts no recovery: a payment under way is not a failure.
func routePaymentProcessing(ctx workflow.Context, ev StripeEvent) (string, error) {
	if version(ctx, debitFailureToldChange, 1) == workflow.DefaultVersion {
		return "ignored: type not handled", nil
	}
	if ev.CustomerID == "" || ev.PaymentIntent == nil {
		return "no customer or payment intent: nothing to do", nil
	}
	sig := PaymentProcessingSignal{EventID: ev.ID, Created: ev.Created, IntentID: ev.PaymentIntent.ID}
	return delivered(signal(ctx, RecoveryWorkflowID(ev.CustomerID), SignalPaymentProcessing, sig, nil))
}

func delivered(res activities.SignalResult, err error) (string, error) {
	if err != nil {
		return "", err
	}
	if !res.Delivered {
		return "no recovery running: nothing to do", nil
	}
	return "running recovery told", nil
}

// signal hands a signal to an activity, which holds the Temporal client.
func signal(ctx workflow.Context, workflowID, name string, payload any, start *activities.StartRequest) (activities.SignalResult, error) {
	// Encoding a plain struct is deterministic; workflowcheck cannot tell
	// reflection of that kind from the other.
	raw, err := json.Marshal(payload) //workflowcheck:ignore
	if err != nil {
		return activities.SignalResult{}, fmt.Errorf("encode %s signal: %w", name, err)
	}
	in := activities.SignalInput{WorkflowID: workflowID, SignalName: name, Signal: raw, Start: start}
	var res activities.SignalResult
	if version(ctx, localRoutingChange, 1) == 1 {
		// Signals are not de-duplicated by Temporal, but every receiver
		// applies an event ID once, so a local activity run again after a
		// lost worker changes nothing.
		err = startQuick(ctx, ctx, a.Signal, in).Get(ctx, &res)
		return res, err
	}
	err = workflow.ExecuteActivity(ctx, a.Signal, in).Get(ctx, &res)
	return res, err
}

func signalMatching(ctx workflow.Context, query, name string, payload any, except string) (int, error) {
	raw, err := json.Marshal(payload) //workflowcheck:ignore
	if err != nil {
		return 0, fmt.Errorf("encode %s signal: %w", name, err)
	}
	var res activities.SignalMatchingResult
	err = workflow.ExecuteActivity(ctx, a.SignalMatching, activities.SignalMatchingInput{
		Query: query, SignalName: name, Signal: raw, Except: except,
	}).Get(ctx, &res)
	return res.Signalled, err
}
