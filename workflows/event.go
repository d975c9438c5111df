package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"
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
	res.Outcome = fmt.Sprintf("recorded for %s; no lifecycle handles it yet", route)
	log.Info("stripe event recorded", "event_id", ev.ID, "type", ev.Type, "route", route,
		"customer", ev.CustomerID, "object", ev.ObjectID, "created", ev.Created)
	return res, nil
}
