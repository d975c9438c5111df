// Package workflows holds dunning's Temporal workflows. This file is the
// contract other parts and outside tools rely on: task queue, workflow IDs,
// names of workflows, queries and signals, stage values, search-attribute
// keys, and the structs that cross the workflow boundary. No string literal
// for any of these appears anywhere else.
package workflows

import (
	"maps"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
)

// DefaultTaskQueue is the task queue when TEMPORAL_TASK_QUEUE is not set.
const DefaultTaskQueue = "dunning"

// Workflow type names.
const (
	StripeEventWorkflowName     = "StripeEventWorkflow"
	PaymentRecoveryWorkflowName = "PaymentRecoveryWorkflow"
	CardExpiryWorkflowName      = "CardExpiryWorkflow"
)

// StatusQuery returns a workflow's whole state.
const StatusQuery = "status"

// Search attributes (all Keyword). Every workflow that concerns a customer
// carries StripeCustomerId, so one query finds all of a customer's work.
var (
	StripeCustomerIDKey = temporal.NewSearchAttributeKeyKeyword("StripeCustomerId")
	StripeEventTypeKey  = temporal.NewSearchAttributeKeyKeyword("StripeEventType")
	RecoveryStageKey    = temporal.NewSearchAttributeKeyKeyword("RecoveryStage")
)

// SearchAttributeKeys lists the custom search attributes a namespace must
// have registered before dunning can run on it.
var SearchAttributeKeys = []temporal.SearchAttributeKey{
	StripeCustomerIDKey, StripeEventTypeKey, RecoveryStageKey,
}

// Stage is a customer's place in the recovery lifecycle, kept in the
// RecoveryStage search attribute.
type Stage string

// Stages of a recovery.
const (
	StagePastDue       Stage = "past_due"
	StageSuspended     Stage = "suspended"
	StageRecovered     Stage = "recovered"
	StageDeprovisioned Stage = "deprovisioned"
	StageWaived        Stage = "waived"
)

// Stripe event types dunning handles.
const (
	EventPaymentFailed         = "payment_intent.payment_failed"
	EventPaymentSucceeded      = "payment_intent.succeeded"
	EventInvoicePaid           = "invoice.paid"
	EventSourceExpiring        = "customer.source.expiring"
	EventSourceDeleted         = "customer.source.deleted"
	EventSourceCreated         = "customer.source.created"
	EventSourceUpdated         = "customer.source.updated"
	EventPaymentMethodAttached = "payment_method.attached"
	EventPaymentMethodAutoUpd  = "payment_method.automatically_updated"
	EventCustomerUpdated       = "customer.updated"
)

// Route says which part of dunning an event type goes to.
type Route string

// Routes of handled events.
const (
	// RoutePaymentFailed signal-with-starts the customer's recovery.
	RoutePaymentFailed Route = "payment_failed"
	// RoutePaid tells the customer's recovery that an intent or invoice is paid.
	RoutePaid Route = "paid"
	// RouteCardExpiring starts the card's expiry workflow.
	RouteCardExpiring Route = "card_expiring"
	// RouteSourceDeleted checks whether the customer can still pay.
	RouteSourceDeleted Route = "source_deleted"
	// RouteCardUpdated tells the customer's running workflows that the way
	// to pay changed.
	RouteCardUpdated Route = "card_updated"
)

var routes = map[string]Route{
	EventPaymentFailed:         RoutePaymentFailed,
	EventPaymentSucceeded:      RoutePaid,
	EventInvoicePaid:           RoutePaid,
	EventSourceExpiring:        RouteCardExpiring,
	EventSourceDeleted:         RouteSourceDeleted,
	EventSourceCreated:         RouteCardUpdated,
	EventSourceUpdated:         RouteCardUpdated,
	EventPaymentMethodAttached: RouteCardUpdated,
	EventPaymentMethodAutoUpd:  RouteCardUpdated,
	EventCustomerUpdated:       RouteCardUpdated,
}

// RouteOf returns the route of a Stripe event type and whether dunning
// handles that type at all.
func RouteOf(eventType string) (Route, bool) {
	r, ok := routes[eventType]
	return r, ok
}

// HandledEventTypes returns every handled Stripe event type, sorted; it is
// what the Stripe endpoint is configured to send.
func HandledEventTypes() []string {
	return slices.Sorted(maps.Keys(routes))
}

// EventWorkflowID is the ID of the workflow that handles a Stripe event:
// the event ID as is, so that a redelivery cannot start a second one.
func EventWorkflowID(eventID string) string { return eventID }

// RecoveryWorkflowID is the ID of a customer's recovery workflow.
func RecoveryWorkflowID(stripeCustomerID string) string {
	return "recovery-" + stripeCustomerID
}

// StripeEvent is what dunning keeps of a verified Stripe event: the
// envelope and the few fields of data.object that its decisions need.
// Personal data and card numbers are not kept.
type StripeEvent struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	APIVersion string    `json:"api_version,omitempty"`
	Created    time.Time `json:"created"`
	Livemode   bool      `json:"livemode"`
	// CustomerID is the Stripe customer the event concerns, if any.
	CustomerID string `json:"customer_id,omitempty"`
	// ObjectID and ObjectType name data.object.
	ObjectID   string `json:"object_id,omitempty"`
	ObjectType string `json:"object_type,omitempty"`

	PaymentIntent *PaymentIntentInfo `json:"payment_intent,omitempty"`
	Invoice       *InvoiceInfo       `json:"invoice,omitempty"`
	Card          *CardInfo          `json:"card,omitempty"`
	// DefaultPaymentMethodChanged is set on customer.updated when the
	// previous attributes show the default payment method or source moved.
	DefaultPaymentMethodChanged bool `json:"default_payment_method_changed,omitempty"`
}

// PaymentIntentInfo is the part of a PaymentIntent that recovery needs.
type PaymentIntentInfo struct {
	ID              string `json:"id"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
	Status          string `json:"status,omitempty"`
	InvoiceID       string `json:"invoice_id,omitempty"`
	PaymentMethodID string `json:"payment_method_id,omitempty"`
	FailureCode     string `json:"failure_code,omitempty"`
	DeclineCode     string `json:"decline_code,omitempty"`
	FailureMessage  string `json:"failure_message,omitempty"`
}

// InvoiceInfo is the part of an Invoice that recovery needs.
type InvoiceInfo struct {
	ID              string `json:"id"`
	PaymentIntentID string `json:"payment_intent_id,omitempty"`
	AmountDue       int64  `json:"amount_due"`
	AmountPaid      int64  `json:"amount_paid"`
	Currency        string `json:"currency"`
	Status          string `json:"status,omitempty"`
}

// CardInfo describes a card without its number.
type CardInfo struct {
	ID       string `json:"id"`
	Brand    string `json:"brand,omitempty"`
	Last4    string `json:"last4,omitempty"`
	ExpMonth int    `json:"exp_month,omitempty"`
	ExpYear  int    `json:"exp_year,omitempty"`
}

// StripeEventInput starts StripeEventWorkflow.
type StripeEventInput struct {
	Event StripeEvent `json:"event"`
}

// StripeEventResult is what StripeEventWorkflow did with an event.
type StripeEventResult struct {
	EventID    string `json:"event_id"`
	Type       string `json:"type"`
	CustomerID string `json:"customer_id,omitempty"`
	Route      Route  `json:"route"`
	// Outcome says in a few words what was done, for the UI and for tests.
	Outcome string `json:"outcome"`
}
