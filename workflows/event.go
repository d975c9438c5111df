package workflows

import (
	"encoding/json"
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
	ev := in.Event
	log := workflow.GetLogger(ctx)
	route, handled := RouteOf(ev.Type)
	res := StripeEventResult{EventID: ev.ID, Type: ev.Type, CustomerID: ev.CustomerID, Route: route}
	if !handled {
		// The webhook drops these; one can still arrive through a manual
		// start or a backfill, and it is not an error.
		res.Outcome = "ignored: type not handled"
		log.Info("stripe event of an unhandled type", "event_id", ev.ID, "type", ev.Type)
		return res, nil
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 15 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
	var err error
	switch route {
	case RoutePaymentFailed:
		res.Outcome, err = routePaymentFailed(ctx, ev)
	case RoutePaid:
		res.Outcome, err = routePaid(ctx, ev)
	case RouteCardUpdated:
		res.Outcome, err = routeCardUpdated(ctx, ev)
	default:
		res.Outcome = fmt.Sprintf("recorded for %s", route)
	}
	if err != nil {
		return res, err
	}
	log.Info("stripe event handled", "event_id", ev.ID, "type", ev.Type, "route", route,
		"customer", ev.CustomerID, "outcome", res.Outcome)
	return res, nil
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
	sig := PaymentFailedSignal{EventID: ev.ID, Created: ev.Created, Intent: *ev.PaymentIntent,
		RequestIdempotencyKey: ev.RequestIdempotencyKey}
	startFor := ev.CustomerID
	if isOwnRetry(sig) {
		// The echo of dunning's own retry joins the recovery that made it
		// and never opens a new one.
		startFor = ""
	}
	res, err := signal(ctx, RecoveryWorkflowID(ev.CustomerID), SignalPaymentFailed, sig, startFor)
	switch {
	case err != nil:
		return "", err
	case !res.Delivered:
		return "own retry's failure; no recovery running", nil
	}
	return "recovery " + RecoveryWorkflowID(ev.CustomerID) + " told", nil
}

func routePaid(ctx workflow.Context, ev StripeEvent) (string, error) {
	if ev.CustomerID == "" {
		return "no customer: nothing to do", nil
	}
	sig := PaidSignal{EventID: ev.ID, Created: ev.Created, Source: ev.Type}
	switch {
	case ev.PaymentIntent != nil:
		sig.IntentID, sig.InvoiceID = ev.PaymentIntent.ID, ev.PaymentIntent.InvoiceID
	case ev.Invoice != nil:
		sig.IntentID, sig.InvoiceID = ev.Invoice.PaymentIntentID, ev.Invoice.ID
	}
	return delivered(signal(ctx, RecoveryWorkflowID(ev.CustomerID), SignalPaid, sig, ""))
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
	return delivered(signal(ctx, RecoveryWorkflowID(ev.CustomerID), SignalCardUpdated, sig, ""))
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
func signal(ctx workflow.Context, workflowID, name string, payload any, startRecoveryFor string) (activities.SignalResult, error) {
	// Encoding a plain struct is deterministic; workflowcheck cannot tell
	// reflection of that kind from the other.
	raw, err := json.Marshal(payload) //workflowcheck:ignore
	if err != nil {
		return activities.SignalResult{}, fmt.Errorf("encode %s signal: %w", name, err)
	}
	var res activities.SignalResult
	err = workflow.ExecuteActivity(ctx, a.Signal, activities.SignalInput{
		WorkflowID: workflowID, SignalName: name, Signal: raw, StartRecoveryFor: startRecoveryFor,
	}).Get(ctx, &res)
	return res, err
}
