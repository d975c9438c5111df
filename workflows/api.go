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

	"dunning/activities"
)

// DefaultTaskQueue is the task queue when TEMPORAL_TASK_QUEUE is not set.
const DefaultTaskQueue = "dunning"

// Workflow type names.
const (
	StripeEventWorkflowName     = "StripeEventWorkflow"
	PaymentRecoveryWorkflowName = "PaymentRecoveryWorkflow"
	CardExpiryWorkflowName      = "CardExpiryWorkflow"
	// ReconcileEventsWorkflowName backfills events Stripe never delivered.
	ReconcileEventsWorkflowName = "ReconcileEventsWorkflow"
)

// ReconcileScheduleID is the Temporal Schedule that runs
// ReconcileEventsWorkflow; the worker creates or updates it at start.
const ReconcileScheduleID = "dunning-reconcile-events"

// Memo fields a complete reconciliation leaves for the next one to start
// from: ReconcileWatermarkMemo is the end of the window it listed (every
// event Stripe listed as created before it was handled), and
// ReconcileCoveredFromMemo how far back the chain of complete runs reaching
// it goes without a gap.
const (
	ReconcileWatermarkMemo   = "reconcile_watermark"
	ReconcileCoveredFromMemo = "reconcile_covered_from"
)

// DefaultReconcileOverlap is how far before the last watermark a
// reconciliation lists again, for Stripe's clock skew and late writes,
// when its input names no overlap.
const DefaultReconcileOverlap = 10 * time.Minute

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
	EventPaymentMethodDetached = "payment_method.detached"
	EventCustomerUpdated       = "customer.updated"
	// EventPaymentRequiresAction: the bank asks the customer to
	// authenticate a payment (3-D Secure), one that was processing, say.
	EventPaymentRequiresAction = "payment_intent.requires_action"
	// EventPaymentProcessing: a payment is under way and its outcome
	// comes later (a bank debit the customer started, say).
	EventPaymentProcessing = "payment_intent.processing"
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
	// RouteSourceDeleted checks whether the customer can still pay after
	// removing a way to pay: a legacy card or source deleted, or a
	// payment method detached.
	RouteSourceDeleted Route = "source_deleted"
	// RouteCardUpdated tells the customer's running workflows that the way
	// to pay changed.
	RouteCardUpdated Route = "card_updated"
	// RouteActionRequired tells the customer's running recovery that the
	// bank asks the customer to authenticate a payment; it starts none.
	RouteActionRequired Route = "action_required"
	// RoutePaymentProcessing tells the customer's running recovery that a
	// payment is in flight; it starts none.
	RoutePaymentProcessing Route = "payment_processing"
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
	EventPaymentMethodDetached: RouteSourceDeleted,
	EventCustomerUpdated:       RouteCardUpdated,
	EventPaymentRequiresAction: RouteActionRequired,
	EventPaymentProcessing:     RoutePaymentProcessing,
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

// CardExpiryWorkflowID is the ID of the workflow that watches one card's
// expiry: one per card, however often Stripe repeats the event.
func CardExpiryWorkflowID(cardID string) string { return "card-expiry-" + cardID }

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
	// RequestIdempotencyKey is the idempotency key of the API request that
	// caused the event, when Stripe reports one.
	RequestIdempotencyKey string `json:"request_idempotency_key,omitempty"`
	// DefaultPaymentMethodChanged is set on customer.updated when the
	// previous attributes show the default payment method or source moved.
	DefaultPaymentMethodChanged bool `json:"default_payment_method_changed,omitempty"`
	// Unreadable says why a verified event could not be decoded; the event
	// then holds only the envelope fields that could be read. Its workflow
	// alerts ops and does nothing else. The reason names the problem and
	// never repeats the payload.
	Unreadable string `json:"unreadable,omitempty"`
	// ExpectedLivemode is the mode of dunning's Stripe API key where the
	// event was decoded: true for a live key, false for a test key, nil
	// when no key is configured and the mode is unknown. An event whose
	// Livemode differs is not acted on; its workflow alerts ops.
	ExpectedLivemode *bool `json:"expected_livemode,omitempty"`
}

// PaymentIntentInfo is the part of a PaymentIntent that recovery needs.
type PaymentIntentInfo struct {
	ID     string `json:"id"`
	Amount int64  `json:"amount"`
	// AmountReceived is the money the intent took (amount_received):
	// for a succeeded intent, what paid it.
	AmountReceived  int64  `json:"amount_received,omitempty"`
	Currency        string `json:"currency"`
	Status          string `json:"status,omitempty"`
	InvoiceID       string `json:"invoice_id,omitempty"`
	PaymentMethodID string `json:"payment_method_id,omitempty"`
	FailureCode     string `json:"failure_code,omitempty"`
	DeclineCode     string `json:"decline_code,omitempty"`
	FailureMessage  string `json:"failure_message,omitempty"`
	// Waived is set when the intent carries dunning's waiver metadata: an
	// operator forgave it, and nothing may charge it again.
	Waived bool `json:"waived,omitempty"`
	// Decline is last_payment_error as the event's API version gave it
	// (advice codes, the card's fingerprint, …); activities.ClassifyDecline
	// says what it means. Zero when the intent has no payment error.
	Decline activities.Decline `json:"decline,omitzero"`
	// FailedPaymentMethodType is the type of the way to pay that failed
	// (last_payment_error.payment_method.type: card, us_bank_account,
	// sepa_debit, …), empty when the event does not say.
	// activities.DelayedNotification tells a bank debit, whose failure
	// comes days after the customer paid, from a card's decline.
	FailedPaymentMethodType string `json:"failed_payment_method_type,omitempty"`
}

// InvoiceInfo is the part of an Invoice that recovery needs.
type InvoiceInfo struct {
	ID              string `json:"id"`
	PaymentIntentID string `json:"payment_intent_id,omitempty"`
	AmountDue       int64  `json:"amount_due"`
	AmountPaid      int64  `json:"amount_paid"`
	Currency        string `json:"currency"`
	Status          string `json:"status,omitempty"`
	// PaidOutOfBand: marked paid in Stripe for money taken elsewhere
	// (amount_paid then counts it, though no charge took it).
	PaidOutOfBand bool `json:"paid_out_of_band,omitempty"`
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

// Signals a PaymentRecoveryWorkflow receives from Stripe events.
const (
	// SignalPaymentFailed carries a failed PaymentIntent (PaymentFailedSignal).
	SignalPaymentFailed = "payment_failed"
	// SignalPaid says an intent or invoice is paid (PaidSignal).
	SignalPaid = "paid"
	// SignalCardUpdated says the customer's way to pay changed (CardUpdatedSignal).
	SignalCardUpdated = "card_updated"
	// SignalPaymentMethodRemoved says the customer removed a way to pay,
	// and whether a usable one is left (PaymentMethodRemovedSignal).
	SignalPaymentMethodRemoved = "payment_method_removed"
	// SignalActionRequired says the bank asks the customer to
	// authenticate a payment (ActionRequiredSignal).
	SignalActionRequired = "action_required"
	// SignalPaymentProcessing says a payment is in flight
	// (PaymentProcessingSignal).
	SignalPaymentProcessing = "payment_processing"
)

// Operator controls, each both an update (validated, answered; for the CLI)
// and a signal of the same name (for the UI's Send Signal). A signal that
// fails validation is recorded as rejected and changes nothing.
const (
	ControlRetryNow    = "retry_now"    // OperatorRequest
	ControlExtendGrace = "extend_grace" // ExtendGraceRequest
	ControlWaive       = "waive"        // OperatorRequest; Reason required
	ControlPause       = "pause"        // OperatorRequest
	ControlResume      = "resume"       // OperatorRequest
)

// RetryIdempotencyPrefix starts the idempotency key of every payment retry
// dunning makes. Stripe echoes the key in the event the retry causes, which
// tells dunning's own retries apart from the customer's payments.
const RetryIdempotencyPrefix = "dunning-retry"

// RecoverySettings are the timings of one recovery, taken from config when
// the recovery starts, so that a config change does not rewrite lives
// already running.
type RecoverySettings struct {
	// RetrySchedule: delays after the first failure, increasing.
	RetrySchedule    []time.Duration `json:"retry_schedule"`
	GracePeriod      time.Duration   `json:"grace_period"`
	DeprovisionAfter time.Duration   `json:"deprovision_after"`
	// CardUpdateDebounce gathers a burst of card-update events into one
	// retry.
	CardUpdateDebounce time.Duration `json:"card_update_debounce"`
	// MaxGraceExtension bounds one operator extension.
	MaxGraceExtension time.Duration `json:"max_grace_extension"`
	// InFlightAlertAfter: a payment still processing this long after it
	// was seen in flight alerts ops (zero: DefaultInFlightAlertAfter).
	InFlightAlertAfter time.Duration `json:"in_flight_alert_after,omitempty"`
	// RecheckAlertAfter: a re-check before suspension or deprovisioning
	// that cannot get an answer for this long alerts ops, once (zero:
	// DefaultRecheckAlertAfter).
	RecheckAlertAfter time.Duration `json:"recheck_alert_after,omitempty"`
	// MaxAttemptsPerCard bounds the confirms on one card in any 30 days
	// (zero: DefaultMaxAttemptsPerCard; never above CardNetworkMaxAttempts).
	MaxAttemptsPerCard int `json:"max_attempts_per_card,omitempty"`
}

// Card-network limits.
const (
	DefaultMaxAttemptsPerCard = 8
	// CardNetworkMaxAttempts is Visa's limit of reattempts in 30 days.
	CardNetworkMaxAttempts = 15
	// CardAttemptWindow is the window the limits count in.
	CardAttemptWindow = 30 * 24 * time.Hour
)

// CardRecord is what dunning knows of one card's attempts, across every
// intent and every life of the customer's recovery.
type CardRecord struct {
	// Key is the card's fingerprint where Stripe gives one, else the
	// payment method ID.
	Key           string `json:"key"`
	PaymentMethod string `json:"payment_method,omitempty"`
	// Attempts are the confirms made on it within the last 30 days.
	Attempts []time.Time `json:"attempts,omitempty"`
	// Class and Reason are the last decline's.
	Class  activities.DeclineClass `json:"class,omitempty"`
	Reason string                  `json:"reason,omitempty"`
	// Stopped: a decline said never again on this card.
	Stopped bool `json:"stopped,omitempty"`
	// NeedsNewData: not retried until the card changes. StaleMethods are
	// the payment methods that carried the data the bank refused: the
	// same card entered again is another payment method, with new data.
	NeedsNewData bool     `json:"needs_new_data,omitempty"`
	StaleMethods []string `json:"stale_payment_methods,omitempty"`
	// NotBefore is when the network allows the next attempt.
	NotBefore time.Time `json:"not_before,omitzero"`
	// Next is the next attempt allowed and why, as last worked out, for
	// the status.
	NextAllowed time.Time `json:"next_allowed,omitzero"`
	Held        string    `json:"held,omitempty"`
	// Unread is the last decline when an event named its charge without
	// showing it: the charge is read before the card is tried again.
	Unread *activities.Decline `json:"unread,omitempty"`
}

// Defaults of the settings that recoveries started before them lack.
const (
	DefaultInFlightAlertAfter = 7 * 24 * time.Hour
	DefaultRecheckAlertAfter  = time.Hour
)

// RecoveryInput starts or continues a PaymentRecoveryWorkflow.
type RecoveryInput struct {
	StripeCustomerID string           `json:"stripe_customer_id"`
	Settings         RecoverySettings `json:"settings"`
	// State is set when the workflow continues as new.
	State *RecoveryState `json:"state,omitempty"`
	// Pending are failures that arrived as a lifecycle ended; they open
	// the next one. A run started for a customer with none going has its
	// failure here, first, instead of in a signal.
	Pending []PaymentFailedSignal `json:"pending,omitempty"`
	// Opening says Pending[0] is the failure this run was started with,
	// its first reads taken for the life it opens. Reads of the other
	// pending failures were taken while the life before still ran, and
	// the run reads again for itself.
	Opening bool `json:"opening,omitempty"`
	// Previous is how the life before ended, when it ended into this run
	// with Pending: a run that continued as new is no Completed run that
	// the next life could read, so what the next life must respect of it
	// (its cards' network limits, the intents it forgave) comes here.
	Previous *RecoveryResult `json:"previous,omitempty"`
	// AppliedEvents are the events the life before applied, so that one
	// delivered again is not taken for a new failure.
	AppliedEvents []string `json:"applied_events,omitempty"`
}

// RecoveryResult is how a recovery ended.
type RecoveryResult struct {
	Stage   Stage  `json:"stage"`
	Summary string `json:"summary"`
	// Intents are the intents of the life that ended, as they ended, so
	// that money arriving after the end can be told from an echo.
	Intents []IntentOutcome `json:"intents,omitempty"`
	// Cards carry the card-network limits into the customer's next life.
	Cards []*CardRecord `json:"cards,omitempty"`
	// Forgiven are the intents this life or an earlier one forgave, so
	// that every later life keeps them forgiven.
	Forgiven []string `json:"forgiven,omitempty"`
}

// IntentOutcome is how one intent stood when a recovery ended.
type IntentOutcome struct {
	ID        string      `json:"id"`
	InvoiceID string      `json:"invoice_id,omitempty"`
	Amount    int64       `json:"amount"`
	Currency  string      `json:"currency"`
	State     IntentState `json:"state"`
}

// PaymentFailedSignal carries one failed PaymentIntent.
type PaymentFailedSignal struct {
	EventID string            `json:"event_id"`
	Created time.Time         `json:"created"`
	Intent  PaymentIntentInfo `json:"intent"`
	// RequestIdempotencyKey is the key of the API request that caused the
	// event, when Stripe reports one.
	RequestIdempotencyKey string `json:"request_idempotency_key,omitempty"`
	// First is what the event workflow read for a failure that may open
	// a life, before it signalled; absent for dunning's own retries.
	First *FirstReads `json:"first_reads,omitempty"`
	// FirstBeforeStart are first reads that leave the customer's latest
	// run to the start of the recovery (previous-at-start): the starter
	// completes them and moves them to First, or drops them. A recovery
	// never decides on them, so reads that reach one unfinished (a starter
	// that predates them) make it read for itself.
	FirstBeforeStart *FirstReads `json:"first_reads_before_start,omitempty"`
}

// WithPrevious completes reads that left the customer's latest run to
// the start (FirstBeforeStart) with that run, as First; when it could
// not be read (err), the reads are dropped and the recovery reads for
// itself. A signal with nothing to complete is returned as it is.
func (f PaymentFailedSignal) WithPrevious(latest activities.EndedRecovery, err error) PaymentFailedSignal {
	if f.FirstBeforeStart == nil {
		return f
	}
	reads := *f.FirstBeforeStart
	f.FirstBeforeStart = nil
	if err != nil {
		f.First = nil
		return f
	}
	reads.Previous, reads.PreviousErr = latest, ""
	f.First = &reads
	return f
}

// FirstReads are the reads that decide how a life opens: the Stripe
// customer, the previous life's result and whether the intent is still
// owed, each with the error that stood for its answer, if any. They come
// with the signal, so they are in the recovery's history before it
// decides anything on them.
type FirstReads struct {
	// At is when the reads began: a life whose run starts much later
	// than that reads again, as a payment in between would have found no
	// recovery to tell.
	At          time.Time                  `json:"at"`
	Profile     activities.CustomerProfile `json:"profile"`
	ProfileErr  string                     `json:"profile_error,omitempty"`
	Previous    activities.EndedRecovery   `json:"previous"`
	PreviousErr string                     `json:"previous_error,omitempty"`
	Owed        activities.Owed            `json:"owed"`
	OwedErr     string                     `json:"owed_error,omitempty"`
}

// ActionRequiredSignal says the bank asks the customer to authenticate
// a payment intent (payment_intent.requires_action).
type ActionRequiredSignal struct {
	EventID  string    `json:"event_id"`
	Created  time.Time `json:"created"`
	IntentID string    `json:"intent_id"`
}

// PaymentProcessingSignal says a payment intent is in flight
// (payment_intent.processing): the customer paid it by bank debit, say,
// and its outcome comes later.
type PaymentProcessingSignal struct {
	EventID  string    `json:"event_id"`
	Created  time.Time `json:"created"`
	IntentID string    `json:"intent_id"`
}

// PaidSignal says an intent, or the intent behind an invoice, is paid.
type PaidSignal struct {
	EventID   string    `json:"event_id"`
	Created   time.Time `json:"created"`
	IntentID  string    `json:"intent_id,omitempty"`
	InvoiceID string    `json:"invoice_id,omitempty"`
	// Source names what reported it, e.g. the event type.
	Source string `json:"source"`
	// AmountPaid is the money the invoice says was paid (amount_paid, in
	// the invoice's currency), or that the intent took (amount_received,
	// less than what failed when a credit note lowered it), nil when the
	// report does not say: a credit note or the customer's credit balance
	// pays an invoice without money.
	AmountPaid *int64 `json:"amount_paid,omitempty"`
}

// CardUpdatedSignal says the customer added or changed a way to pay.
type CardUpdatedSignal struct {
	EventID         string    `json:"event_id"`
	Created         time.Time `json:"created"`
	PaymentMethodID string    `json:"payment_method_id,omitempty"`
	Source          string    `json:"source"`
}

// PaymentMethodRemovedSignal says the customer removed a way to pay, and
// that no usable one is left unless UsableLeft says Stripe listed one.
// PaymentMethodID is the payment method (or legacy card) the customer
// removed; signals sent before it was carried lack it. Signals sent before
// UsableLeft was carried were sent only when nothing usable was left.
type PaymentMethodRemovedSignal struct {
	EventID         string    `json:"event_id"`
	Created         time.Time `json:"created"`
	Source          string    `json:"source"`
	PaymentMethodID string    `json:"payment_method_id,omitempty"`
	UsableLeft      bool      `json:"usable_left,omitempty"`
}

// OperatorRequest is the input of retry_now, waive, pause and resume.
type OperatorRequest struct {
	Reason   string `json:"reason,omitempty"`
	Operator string `json:"operator,omitempty"`
}

// ExtendGraceRequest postpones the next step that takes something away:
// suspension while past due, deprovisioning while suspended.
type ExtendGraceRequest struct {
	// By is a Go duration such as "48h".
	By       string `json:"by"`
	Reason   string `json:"reason,omitempty"`
	Operator string `json:"operator,omitempty"`
}

// OperatorResult answers an operator control.
type OperatorResult struct {
	Accepted bool   `json:"accepted"`
	Message  string `json:"message"`
}

// IntentState is where one owed PaymentIntent stands.
type IntentState string

// Intent states.
const (
	IntentOpen IntentState = "open"
	// IntentInFlight: a payment is processing (a bank debit takes days);
	// neither paid nor unpaid, never retried, waiting for its outcome.
	IntentInFlight IntentState = "in_flight"
	IntentPaid     IntentState = "paid"
	IntentCanceled IntentState = "canceled"
	IntentWaived   IntentState = "waived"
)

// Intent is one PaymentIntent the customer owes or owed.
type Intent struct {
	ID        string `json:"id"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	InvoiceID string `json:"invoice_id,omitempty"`
	// PaymentMethodID is the payment method that failed.
	PaymentMethodID string      `json:"payment_method_id,omitempty"`
	State           IntentState `json:"state"`
	// Attempts counts the retries dunning made.
	Attempts    int       `json:"attempts"`
	FailedAt    time.Time `json:"failed_at"`
	LastDecline string    `json:"last_decline,omitempty"`
	// LastEventAt is the created time of the newest event applied to it,
	// or of dunning's own newest declined confirm where later (its
	// charge's created, else when it was sent; own-decline-orders-events):
	// a failure event created before it is older news.
	LastEventAt time.Time `json:"last_event_at"`
	ResolvedAt  time.Time `json:"resolved_at,omitzero"`
	ResolvedBy  string    `json:"resolved_by,omitempty"`
	// PaidAmount is the money that paid it, where Stripe said (what its
	// invoice's amount_paid or its amount_received was when found paid);
	// nil when unknown, and Amount stands for it. It is the money kept:
	// what a refund or a credit note gave back after the payment is not
	// in it, and what a credit note took off the debt before it never
	// was. PaidAmountUnknown: found settled where nobody said for how
	// much (Amberflo without a readable amount); then no amount stands
	// for it, and the figures count it apart.
	PaidAmount        *int64 `json:"paid_amount,omitempty"`
	PaidAmountUnknown bool   `json:"paid_amount_unknown,omitempty"`

	// Checked is Stripe's last answer on whether the money is still owed
	// (verdict: why), and when.
	Checked   string    `json:"checked,omitempty"`
	CheckedAt time.Time `json:"checked_at,omitzero"`
	// PeriodStart and PeriodEnd are the usage period the intent's invoice
	// bills, which names its Amberflo invoice; PayURL the invoice's page.
	PeriodStart time.Time `json:"period_start,omitzero"`
	PeriodEnd   time.Time `json:"period_end,omitzero"`
	PayURL      string    `json:"pay_url,omitempty"`
	// InFlightSince is when the payment was first seen processing;
	// InFlightAlerted once ops were told it stays in flight.
	InFlightSince   time.Time `json:"in_flight_since,omitzero"`
	InFlightAlerted bool      `json:"in_flight_alerted,omitempty"`
	// NeedsAction is set when the bank asks the customer to authenticate:
	// no off-session retry until the customer acts or the card changes.
	NeedsAction bool `json:"needs_action,omitempty"`
	// ActionNoticeSent is set once the customer was asked to act.
	ActionNoticeSent bool `json:"action_notice_sent,omitempty"`
	// CardKey names the card last charged or failed for this intent;
	// Decline is what its last decline meant.
	CardKey string                     `json:"card_key,omitempty"`
	Decline *activities.DeclineVerdict `json:"decline,omitempty"`
	// Charge is what a confirm would charge, as Stripe said before the
	// last charge was decided; nil until then (CardKey and PaymentMethodID
	// stand for it). CardUpdates are the payment methods card events
	// named since ("" for an event that named none), and a default read
	// since that is not the card that failed: any of them may be
	// what Stripe charges now, or none (a card added but not made the
	// default), until Stripe is asked again.
	Charge      *ChargeTarget `json:"charge,omitempty"`
	CardUpdates []string      `json:"card_updates,omitempty"`
	// AdoptedAt is set on an intent found failed and unpaid in Stripe
	// before its failure event reached the recovery (the life was about
	// to end as recovered), and AdoptedCharge is the charge of the decline
	// found then: the event, when it comes, is already applied.
	AdoptedAt     time.Time `json:"adopted_at,omitzero"`
	AdoptedCharge string    `json:"adopted_charge,omitempty"`
	// Untold is set on a failure that joined the life after the customer
	// was told of the first (its own event, or found in Stripe), and on a
	// told payment that failed again after it was in flight: nothing
	// is taken away while the customer has not been told of it. ToldAt is
	// when they were, by a payment_failed notice of its own; no suspension
	// comes sooner than the notice lead after it (see
	// suspendAtAfterNotice).
	Untold bool      `json:"failure_untold,omitempty"`
	ToldAt time.Time `json:"failure_told_at,omitzero"`
	// FailedAgain counts the failures of this payment the customer was
	// told of again: each after they had been told it failed and it went
	// in flight since (failed-again-told). Each is told by a notice of its
	// own, keyed by this count.
	FailedAgain int `json:"failed_again,omitempty"`
	// ActionAgain counts the times this payment, told before and in
	// flight since, came back needing the customer's action
	// (action-after-inflight-told); AskUntold is set while the latest is
	// not yet told: it is told by a payment_action_required notice of its
	// own, keyed by the count, and Untold holds the take-away until then.
	ActionAgain int  `json:"action_again,omitempty"`
	AskUntold   bool `json:"action_untold,omitempty"`
}

// UnusableMethod is a payment method Stripe will not charge, why, and
// since when: At is when the recovery learnt it, Created when Stripe said
// it (the removal event's created, the refusal's answer). A card event
// about the payment method created no later than that is older news and
// does not make it usable again. Entries recorded before Created was kept
// have it zero: At stands for it.
type UnusableMethod struct {
	PaymentMethod string    `json:"payment_method"`
	Why           string    `json:"why"`
	At            time.Time `json:"at"`
	Created       time.Time `json:"created,omitzero"`
	// Told: the customer and ops were told that nothing usable is left
	// since it was removed (by the removal's route, or at a charge that
	// found only removed payment methods named).
	Told bool `json:"told,omitempty"`
}

// ChargeTarget is a payment method a confirm would charge, and the key of
// its card ("" while Stripe has not said which card it carries).
type ChargeTarget struct {
	PaymentMethod string `json:"payment_method,omitempty"`
	Card          string `json:"card,omitempty"`
}

// Action is one thing a recovery did or tried, for the status history.
type Action struct {
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"`
	Detail  string    `json:"detail,omitempty"`
	Outcome string    `json:"outcome"`
	// DryRun is set when the integration was not configured: logged and
	// recorded, not performed.
	DryRun bool `json:"dry_run,omitempty"`
}

// NextAction is what a recovery will do next, and when.
type NextAction struct {
	Kind string    `json:"kind"`
	At   time.Time `json:"at,omitzero"`
}

// Kinds of next action.
const (
	NextRetry       = "retry"
	NextSuspend     = "suspend"
	NextDeprovision = "deprovision"
	NextWaitPayment = "wait for payment"
	NextWaitCard    = "wait for a new card"
	NextPaused      = "paused for an operator"
	NextNone        = "none"
	// NextConfirmRecovered: everything dunning knows of is settled, and
	// Stripe is asked again for the customer's other unpaid payments
	// before the customer hears that the recovery is over.
	NextConfirmRecovered = "ask stripe for other unpaid payments"
)

// RecoveryState is the whole state of a recovery, carried across
// continue-as-new and returned by the status query.
type RecoveryState struct {
	StripeCustomerID string `json:"stripe_customer_id"`
	// CustomerID is the ID the product and Amberflo use.
	CustomerID string           `json:"customer_id,omitempty"`
	Settings   RecoverySettings `json:"settings"`
	Stage      Stage            `json:"stage"`
	Intents    []*Intent        `json:"intents"`

	FirstFailureAt time.Time `json:"first_failure_at"`
	// RetriesDone counts the scheduled retries already made.
	RetriesDone   int       `json:"retries_done"`
	SuspendAt     time.Time `json:"suspend_at,omitzero"`
	SuspendedAt   time.Time `json:"suspended_at,omitzero"`
	DeprovisionAt time.Time `json:"deprovision_at,omitzero"`
	// CardRetryAt is when a retry asked for by a card update is due.
	CardRetryAt time.Time `json:"card_retry_at,omitzero"`
	// NoPaymentMethod is set when the customer has no usable way to pay;
	// retries wait for a card update.
	NoPaymentMethod bool `json:"no_payment_method,omitempty"`
	// LastCardEventAt is when the newest card event applied was created
	// in Stripe: a removal created no later says nothing of the way to pay
	// that event brought.
	LastCardEventAt time.Time `json:"last_card_event_at,omitzero"`

	Paused       bool      `json:"paused,omitempty"`
	PausedAt     time.Time `json:"paused_at,omitzero"`
	PausedReason string    `json:"paused_reason,omitempty"`
	// WaiverWaits is set while a waiver waits for the outcome of payments
	// in flight (kept if they succeed, forgiven if they fail).
	WaiverWaits bool `json:"waiver_waits,omitempty"`
	// PaidWhilePausedAlerted is the PausedAt of the pause during which
	// ops were told that a suspended customer has paid.
	PaidWhilePausedAlerted time.Time `json:"paid_while_paused_alerted,omitzero"`

	// ProfileUnread is set while the customer could not be read: the
	// Stripe ID stands in for the product's, and is read again before
	// anything is taken away.
	ProfileUnread bool `json:"profile_unread,omitempty"`

	// Invoice is the latest Amberflo invoice seen for the customer.
	Invoice *AmberfloInvoice `json:"invoice,omitempty"`
	// Announced is set once the past-due notice and alert went out.
	Announced bool `json:"announced,omitempty"`
	// Lifecycle names this life of the customer's recovery (workflow ID
	// and first failure); idempotency keys derive from it, so that a later
	// life is not taken for a retry of this one.
	Lifecycle string `json:"lifecycle"`
	// Resumes counts control-plane resumes, for their idempotency keys.
	Resumes int `json:"resumes,omitempty"`
	// RetryAt is when the next scheduled retry is due; zero when none is.
	RetryAt time.Time `json:"retry_at,omitzero"`
	// RetryNow is set by an operator's retry_now.
	RetryNow bool `json:"retry_now,omitempty"`
	// RetryRounds counts every round of retries, scheduled or not.
	RetryRounds int `json:"retry_rounds"`
	// PausedTotal is how long the recovery has been paused in all.
	PausedTotal time.Duration `json:"paused_total,omitempty"`

	Actions       []Action   `json:"actions"`
	Next          NextAction `json:"next"`
	AppliedEvents []string   `json:"applied_events"`
	WaivedReason  string     `json:"waived_reason,omitempty"`
	DryRunActions int        `json:"dry_run_actions"`

	// Rules is the version of the money rules this life follows (0: the
	// rules of histories recorded before them).
	Rules int `json:"rules,omitempty"`
	// Waive is an accepted waiver not yet carried out (its control-plane
	// resume may still be due); it survives continue-as-new.
	Waive *OperatorRequest `json:"waive,omitempty"`
	// ControlCalls counts the control-plane actions done, per action, so
	// that each instance of an action has its own idempotency key.
	ControlCalls map[string]int `json:"control_calls,omitempty"`
	// PastDueNoticeSent is set once the customer and ops were told of the
	// failure; a failure found already paid or in flight tells no one.
	PastDueNoticeSent bool `json:"past_due_notice_sent,omitempty"`
	// RecheckAt defers a suspension or deprovisioning whose re-check got
	// no answer; UnansweredSince is when re-checks began to go unanswered,
	// and UnansweredAlerted once ops were told.
	RecheckAt         time.Time `json:"recheck_at,omitzero"`
	UnansweredSince   time.Time `json:"unanswered_since,omitzero"`
	UnansweredAlerted bool      `json:"unanswered_alerted,omitempty"`
	// LateMoney lists payments that arrived after the debt was waived or
	// the customer deprovisioned, for ops.
	// Cards are the cards charged or failed, with their attempts and
	// what their last decline allows (from version 2 of the money rules).
	Cards []*CardRecord `json:"cards,omitempty"`
	// AutoUpdated are payment methods Stripe updated in place (the card's
	// network sent new details) since the last card-update round.
	AutoUpdated []string `json:"auto_updated,omitempty"`
	// Unusable are payment methods Stripe will not charge: the customer
	// removed them, or Stripe refused them in a confirm. None is what a
	// confirm would charge (retry_now, the status) until a card event
	// names it again or Stripe answers a confirm with it.
	Unusable []UnusableMethod `json:"unusable_payment_methods,omitempty"`
	// HeldRetryAt is when a card held by the network rules may be tried.
	HeldRetryAt time.Time `json:"held_retry_at,omitzero"`
	// JoinedRetryAt is when a payment that joined the life is retried in
	// a round of its own, outside the schedule, whose next comes after
	// the take-away it could cause (retryForJoined). Any round covers it.
	JoinedRetryAt   time.Time `json:"joined_retry_at,omitzero"`
	LateMoney       []string  `json:"late_money,omitempty"`
	LateMoneyAlerts int       `json:"late_money_alerts,omitempty"`
	// AmberfloEnd says what deprovisioning left of the Amberflo customer
	// (deactivated, OFFBOARDED or not), for the alerts of money that
	// arrives after it; empty in lives recorded before
	// offboardOnFreshStateChange.
	AmberfloEnd string `json:"amberflo_end,omitempty"`
	// Forgiven are the intents that earlier lives forgave (waived by an
	// operator, or written off in Stripe): whatever later events say,
	// this life never charges them, nor takes anything away for them.
	Forgiven []string `json:"forgiven,omitempty"`
	// UnpaidReadAt is when Stripe is asked again for the customer's other
	// unpaid payments, while the end of a settled life waits for an
	// answer; UnpaidHeldSince is when it began to wait, and
	// UnpaidHeldAlerted once ops were told.
	UnpaidReadAt      time.Time `json:"unpaid_read_at,omitzero"`
	UnpaidHeldSince   time.Time `json:"unpaid_held_since,omitzero"`
	UnpaidHeldAlerted bool      `json:"unpaid_held_alerted,omitempty"`
	// OlderUnpaidTold: ops were told of failed payments Stripe shows
	// unpaid that are older than this life (told once a life).
	OlderUnpaidTold bool `json:"older_unpaid_told,omitempty"`
	// Reopened counts the times this life gave a suspended customer's
	// resources back and went on past due (reopenDue): each later
	// suspension and resume has keys of its own.
	Reopened int `json:"reopened,omitempty"`
}

// AmberfloInvoice is what recovery keeps of an Amberflo invoice.
type AmberfloInvoice struct {
	URI           string  `json:"uri,omitempty"`
	Amount        float64 `json:"amount"`
	PaymentStatus string  `json:"payment_status"`
	Paid          bool    `json:"paid"`
}

// SignalCardExpiring carries a repeated customer.source.expiring event to
// the card's running expiry workflow (CardExpiringSignal).
const SignalCardExpiring = "card_expiring"

// CardExpiryInput starts a CardExpiryWorkflow.
type CardExpiryInput struct {
	StripeCustomerID string    `json:"stripe_customer_id"`
	Card             CardInfo  `json:"card"`
	EventID          string    `json:"event_id"`
	Created          time.Time `json:"created"`
	// ReminderBefore is how long before the card expires (the end of its
	// expiry month) the reminder goes out, taken from config at start.
	ReminderBefore time.Duration `json:"reminder_before"`
}

// CardExpiringSignal is a repeat of the expiring event for the same card.
type CardExpiringSignal struct {
	EventID string    `json:"event_id"`
	Created time.Time `json:"created"`
	Card    CardInfo  `json:"card"`
}

// CardExpiryResult is how a card's expiry watch ended.
type CardExpiryResult struct {
	Outcome string `json:"outcome"`
}

// ReconcileInput runs one reconciliation.
type ReconcileInput struct {
	// Lookback is how far back events are listed; within the namespace
	// retention, so that every event found meets its workflow if it ran.
	Lookback time.Duration `json:"lookback"`
	// Overlap is how far before the last complete run's watermark the
	// listing starts again; DefaultReconcileOverlap when zero.
	Overlap time.Duration `json:"overlap,omitempty"`
	// Retention is the namespace's retention of closed workflows: a run
	// catching up from an old watermark lists no event created longer
	// ago, whose workflow, if it ran, may be deleted. Lookback stands in
	// for it when zero (inputs from before it, runs by hand).
	Retention time.Duration `json:"retention,omitempty"`
	// Full lists the whole look-back whatever the last watermark: for an
	// operator's run by hand.
	Full bool `json:"full,omitempty"`
	// Progress and StartingAfter are set when a long reconciliation
	// continues as new: its window and counts so far, and the last event
	// ID listed.
	Progress      *ReconcileResult `json:"progress,omitempty"`
	StartingAfter string           `json:"starting_after,omitempty"`
}

// ReconcileResult reports one reconciliation.
type ReconcileResult struct {
	From         time.Time `json:"from"`
	To           time.Time `json:"to"`
	Found        int       `json:"found"`
	Started      int       `json:"started"`
	AlreadyKnown int       `json:"already_known"`
	// Ignored are events of types dunning does not handle; Invalid, events
	// that cannot be decoded. Found is the sum of all four.
	Ignored int  `json:"ignored,omitempty"`
	Invalid int  `json:"invalid,omitempty"`
	Pages   int  `json:"pages"`
	DryRun  bool `json:"dry_run,omitempty"`
	// Since is the watermark of the last complete run this one went on
	// from (listing from Since minus the overlap); zero when it looked
	// back the whole look-back. CoveredFrom is how far back the chain of
	// complete runs reaching this one's end goes without a gap.
	Since       time.Time `json:"since,omitzero"`
	CoveredFrom time.Time `json:"covered_from,omitzero"`
	// Unchecked is where the listing would have started from Since had
	// it been safe: the events created from Unchecked to From were not
	// listed, because Stripe no longer lists them or because their
	// workflows may be deleted after the namespace retention, and ops
	// were told to check them by hand. Zero when nothing was left out.
	Unchecked time.Time `json:"unchecked,omitzero"`
}

// CardExpiryState is the whole state of a card's expiry watch, returned by
// the status query.
type CardExpiryState struct {
	StripeCustomerID string    `json:"stripe_customer_id"`
	CustomerID       string    `json:"customer_id,omitempty"`
	Card             CardInfo  `json:"card"`
	ExpiresAt        time.Time `json:"expires_at"`
	ReminderAt       time.Time `json:"reminder_at,omitzero"`
	// Stage: watching, reminded, updated, expired.
	Stage         string     `json:"stage"`
	Next          NextAction `json:"next"`
	Actions       []Action   `json:"actions"`
	AppliedEvents []string   `json:"applied_events"`
}

// Stages of a card's expiry watch.
const (
	CardWatching = "watching"
	CardReminded = "reminded"
	CardUpdated  = "updated"
	CardExpired  = "expired"
)

// CustomerCardExpiryQuery is the visibility query that finds a customer's
// running card-expiry watches. Customer IDs are checked to be letters,
// digits and underscores before they get here.
func CustomerCardExpiryQuery(stripeCustomerID string) string {
	return "WorkflowType = '" + CardExpiryWorkflowName + "' AND " + StripeCustomerIDKey.GetName() +
		" = '" + stripeCustomerID + "' AND ExecutionStatus = 'Running'"
}

// Metrics the recovery emits through workflow.GetMetricsHandler, once per
// fact (the SDK emits nothing while replaying). The worker registers them
// at start, with the label sets named here.
const (
	MetricRecoveriesStarted = "dunning_recoveries_started_total"
	MetricRecoveriesEnded   = "dunning_recoveries_ended_total"  // outcome
	MetricFailedAmount      = "dunning_failed_amount_total"     // currency
	MetricRecoveredAmount   = "dunning_recovered_amount_total"  // currency
	MetricTimeToRecover     = "dunning_time_to_recover_seconds" // histogram
	MetricPaymentAttempts   = "dunning_payment_attempts_total"  // result, decline_class
	MetricRecoveriesInStage = "dunning_recoveries_in_stage"     // stage; gauge, from visibility

	TagOutcome      = "outcome"
	TagCurrency     = "currency"
	TagResult       = "result"
	TagDeclineClass = "decline_class"
	TagStage        = "stage"
)

// Outcome is how a recovery's life ended, for metrics and the report.
type Outcome string

// Outcomes of a life.
const (
	OutcomeRecoveredByRetry      Outcome = "recovered_by_retry"
	OutcomeRecoveredByCardUpdate Outcome = "recovered_by_card_update"
	// OutcomeRecoveredByCustomer: paid outside dunning's retries.
	OutcomeRecoveredByCustomer Outcome = "recovered_by_customer"
	OutcomeWaived              Outcome = "waived"
	OutcomeDeprovisioned       Outcome = "deprovisioned"
)

// Outcomes lists every outcome, in the order reports show them.
var Outcomes = []Outcome{OutcomeRecoveredByRetry, OutcomeRecoveredByCardUpdate, OutcomeRecoveredByCustomer, OutcomeWaived, OutcomeDeprovisioned}

// Recovered reports whether the outcome is money recovered.
func (o Outcome) Recovered() bool {
	return o == OutcomeRecoveredByRetry || o == OutcomeRecoveredByCardUpdate || o == OutcomeRecoveredByCustomer
}

// Results of one confirm, the result label of MetricPaymentAttempts.
const (
	AttemptSucceeded      = "succeeded"
	AttemptDeclined       = "declined"
	AttemptRequiresAction = "requires_action"
	AttemptProcessing     = "processing"
	AttemptError          = "error"
	// AttemptMethodRefused is a confirm Stripe refused for its payment
	// method (removed or replaced since it was chosen): not a decline, and
	// not Stripe failing either.
	AttemptMethodRefused = "method_refused"
	// DeclineClassNone labels an attempt without a decline verdict.
	DeclineClassNone = "none"
)

// RecoveryMemoKey is the memo field in which every recovery that follows
// the money rules keeps a RecoveryMemo, kept current as it goes, so that
// `dunning report` computes from one visibility listing.
const RecoveryMemoKey = "recovery"

// RecoveryMemo is what the report needs of one life: IDs and amounts
// only, no personal data (the memo is visible to anyone with UI access).
type RecoveryMemo struct {
	// Lifecycle names the life (runs continued-as-new share it).
	Lifecycle      string    `json:"lifecycle"`
	FirstFailureAt time.Time `json:"first_failure_at"`
	Stage          Stage     `json:"stage"`
	// Outcome and EndedAt are set once the life ended.
	Outcome Outcome      `json:"outcome,omitempty"`
	EndedAt time.Time    `json:"ended_at,omitzero"`
	Intents []MemoIntent `json:"intents,omitempty"`
}

// MemoIntent is one intent of a RecoveryMemo.
type MemoIntent struct {
	ID       string      `json:"id"`
	Amount   int64       `json:"amount"`
	Currency string      `json:"currency"`
	State    IntentState `json:"state"`
	// DeclineCode is the last decline (code or failure code);
	// DeclineClass what it meant, where classified.
	DeclineCode  string    `json:"decline_code,omitempty"`
	DeclineClass string    `json:"decline_class,omitempty"`
	ResolvedAt   time.Time `json:"resolved_at,omitzero"`
	// Invoice is the Stripe invoice it pays: intents of one invoice owe
	// (and pay) its money once. PaidAmount is the money that paid it, as
	// Intent.PaidAmount; nil when unknown (Amount stands for it), unless
	// PaidAmountUnknown says that nobody knows it.
	Invoice           string `json:"invoice,omitempty"`
	PaidAmount        *int64 `json:"paid_amount,omitempty"`
	PaidAmountUnknown bool   `json:"paid_amount_unknown,omitempty"`
}
