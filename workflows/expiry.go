package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"dunning/activities"
)

// cardExpiry is one CardExpiryWorkflow run.
type cardExpiry struct {
	in      CardExpiryInput
	id      string
	s       CardExpiryState
	updated bool
	updates workflow.ReceiveChannel
	repeats workflow.ReceiveChannel
}

// CardExpiryWorkflow watches one expiring card (ID card-expiry-<card>): a
// notice to the customer now, a reminder ReminderBefore the card expires if
// nothing changed, and at expiry, if the card is still the customer's
// default or only way to pay, an ops alert that the account is at risk. A
// card update for the customer ends it early, quietly.
func CardExpiryWorkflow(ctx workflow.Context, in CardExpiryInput) (CardExpiryResult, error) {
	w := &cardExpiry{in: in, id: workflow.GetInfo(ctx).WorkflowExecution.ID}
	expires := activities.CardExpiry(in.Card.ExpMonth, in.Card.ExpYear)
	w.s = CardExpiryState{StripeCustomerID: in.StripeCustomerID, Card: in.Card, ExpiresAt: expires, Stage: CardWatching}
	if in.ReminderBefore > 0 {
		w.s.ReminderAt = expires.Add(-in.ReminderBefore)
	}
	if in.EventID != "" {
		w.s.AppliedEvents = []string{in.EventID}
	}
	w.updates = workflow.GetSignalChannel(ctx, SignalCardUpdated)
	w.repeats = workflow.GetSignalChannel(ctx, SignalCardExpiring)
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (CardExpiryState, error) { return w.s, nil }); err != nil {
		return CardExpiryResult{}, fmt.Errorf("register status query: %w", err)
	}
	ctx = activityCtx(ctx)

	var profile activities.CustomerProfile
	if err := workflow.ExecuteActivity(ctx, a.CustomerProfile, activities.CustomerInput{StripeCustomerID: in.StripeCustomerID}).Get(ctx, &profile); err != nil {
		w.record(ctx, "read customer", in.StripeCustomerID, "failed: "+errText(err), false)
	}
	w.s.CustomerID = profile.CustomerID

	w.notice(ctx, "card_expiring", "notice")
	if !w.s.ReminderAt.IsZero() && workflow.Now(ctx).Before(w.s.ReminderAt) {
		w.plan(ctx, "reminder", w.s.ReminderAt)
		if w.waitUntil(ctx, w.s.ReminderAt) {
			return w.end(ctx, "card updated before the reminder"), nil
		}
		w.s.Stage = CardReminded
		w.notice(ctx, "card_expiring_reminder", "reminder")
	}
	w.plan(ctx, "check at expiry", expires)
	if w.waitUntil(ctx, expires) {
		return w.end(ctx, "card updated before it expired"), nil
	}

	// The card has expired with nothing changed: is the account at risk?
	// Stripe is asked, not assumed.
	w.s.Stage = CardExpired
	var pms activities.PaymentMethods
	if err := workflow.ExecuteActivity(ctx, a.PaymentMethods, activities.CustomerInput{StripeCustomerID: in.StripeCustomerID}).Get(ctx, &pms); err != nil {
		w.record(ctx, "payment methods", "", "failed: "+errText(err), false)
		pms = activities.PaymentMethods{}
	}
	others := 0
	for _, m := range pms.Methods {
		if m.ID != in.Card.ID && !m.Expired {
			others++
		}
	}
	atRisk := pms.DefaultID == in.Card.ID || others == 0
	w.record(ctx, "payment methods at expiry", fmt.Sprintf("default %s, %d other usable", pms.DefaultID, others),
		map[bool]string{true: "at risk", false: "another way to pay remains"}[atRisk], pms.DryRun)
	if !atRisk {
		return w.end(ctx, "expired; another payment method remains"), nil
	}
	var res activities.NotifyResult
	err := workflow.ExecuteActivity(ctx, a.Alert, activities.AlertInput{
		Key: w.id + ":at-risk", Severity: "warning", CustomerID: w.s.CustomerID, StripeCustomerID: in.StripeCustomerID, WorkflowID: w.id,
		Title: "Account at risk: " + in.StripeCustomerID + "'s card expired",
		Text: fmt.Sprintf("%s ending %s expired (%02d/%d) and is still the customer's default or only way to pay; the next charge will fail.",
			in.Card.Brand, in.Card.Last4, in.Card.ExpMonth, in.Card.ExpYear),
	}).Get(ctx, &res)
	w.record(ctx, "ops alert (warning)", "account at risk", outcomeOf(err, "sent"), res.DryRun)
	return w.end(ctx, "expired; account at risk, ops alerted"), nil
}

// waitUntil waits for at, applying signals meanwhile; true when the card
// was updated first.
func (w *cardExpiry) waitUntil(ctx workflow.Context, at time.Time) bool {
	for !w.updated {
		d := at.Sub(workflow.Now(ctx))
		if d <= 0 {
			return false
		}
		timerCtx, cancel := workflow.WithCancel(ctx)
		fired := false
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(workflow.NewTimer(timerCtx, d), func(workflow.Future) { fired = true })
		sel.AddReceive(w.updates, func(c workflow.ReceiveChannel, _ bool) {
			var s CardUpdatedSignal
			c.Receive(ctx, &s)
			w.onUpdated(ctx, s)
		})
		sel.AddReceive(w.repeats, func(c workflow.ReceiveChannel, _ bool) {
			var s CardExpiringSignal
			c.Receive(ctx, &s)
			if w.remember(s.EventID) {
				w.record(ctx, "expiring again", s.EventID, "already watching", false)
			}
		})
		sel.Select(ctx)
		if fired {
			return w.updated
		}
		cancel()
	}
	return true
}

func (w *cardExpiry) onUpdated(ctx workflow.Context, s CardUpdatedSignal) {
	if !w.remember(s.EventID) {
		return
	}
	if !s.Created.IsZero() && s.Created.Before(w.in.Created) {
		// Older than the expiring event: it cannot have fixed this card.
		w.record(ctx, "card updated", s.Source, "ignored: older than the expiry notice", false)
		return
	}
	w.updated = true
	w.record(ctx, "card updated", firstNonEmpty(s.PaymentMethodID, s.Source), "watch ends", false)
}

func (w *cardExpiry) remember(eventID string) bool {
	var fresh bool
	w.s.AppliedEvents, fresh = rememberEvent(w.s.AppliedEvents, eventID)
	return fresh
}

func (w *cardExpiry) record(ctx workflow.Context, kind, detail, outcome string, dryRun bool) {
	w.s.Actions = append(w.s.Actions, Action{At: workflow.Now(ctx), Kind: kind, Detail: detail, Outcome: outcome, DryRun: dryRun})
}

func (w *cardExpiry) plan(ctx workflow.Context, kind string, at time.Time) {
	w.s.Next = NextAction{Kind: kind, At: at}
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("%s ending %s, expires %02d/%d · %s · next: %s at %s", w.in.Card.Brand,
		w.in.Card.Last4, w.in.Card.ExpMonth, w.in.Card.ExpYear, w.s.Stage, kind, at.UTC().Format(time.RFC3339)))
}

func (w *cardExpiry) end(ctx workflow.Context, outcome string) CardExpiryResult {
	if w.updated {
		w.s.Stage = CardUpdated
	}
	w.s.Next = NextAction{Kind: NextNone}
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("%s ending %s · %s", w.in.Card.Brand, w.in.Card.Last4, outcome))
	return CardExpiryResult{Outcome: outcome}
}

// expiryNoticeUndeliveredChange tells ops of a card-expiry notice the
// mailer refused for good; watches recorded before it only recorded it.
const expiryNoticeUndeliveredChange = "expiry-notice-undelivered"

// notice tells the customer about the card; once per card, expiry and
// kind, whatever retries happen. A notice the mailer refuses for good
// reaches ops, so that no customer learns of an expired card by its
// declines.
func (w *cardExpiry) notice(ctx workflow.Context, typ, step string) {
	c := w.in.Card
	expires := w.s.ExpiresAt
	key := fmt.Sprintf("%s:%04d-%02d:%s", w.id, c.ExpYear, c.ExpMonth, step)
	var res activities.NotifyResult
	err := workflow.ExecuteActivity(ctx, a.Notice, activities.NoticeInput{
		Key:  key,
		Type: typ, CustomerID: w.s.CustomerID, StripeCustomerID: w.in.StripeCustomerID,
		CardBrand: c.Brand, CardLast4: c.Last4, CardExpMonth: c.ExpMonth, CardExpYear: c.ExpYear,
		Deadline: &expires, CreatedAt: workflow.Now(ctx),
	}).Get(ctx, &res)
	w.record(ctx, "customer notice "+typ, c.Brand+" ending "+c.Last4, outcomeOf(err, "sent"), res.DryRun)
	// Only a permanent refusal or the watch's cancellation comes back: the
	// activity retries everything else.
	if err == nil || temporal.IsCanceledError(err) ||
		version(ctx, expiryNoticeUndeliveredChange, 1) == workflow.DefaultVersion {
		return
	}
	var alerted activities.NotifyResult
	err = workflow.ExecuteActivity(ctx, a.Alert, activities.AlertInput{
		Key: w.id + ":undelivered:" + strings.TrimPrefix(key, w.id+":"), Severity: "critical",
		CustomerID: w.s.CustomerID, StripeCustomerID: w.in.StripeCustomerID, WorkflowID: w.id,
		Title: "Customer notice not delivered: " + w.in.StripeCustomerID,
		Text: fmt.Sprintf("The %s notice for %s ending %s (expires %02d/%d) could not be sent (%s). Tell the customer by hand.",
			typ, c.Brand, c.Last4, c.ExpMonth, c.ExpYear, errText(err)),
	}).Get(ctx, &alerted)
	w.record(ctx, "ops alert (critical)", "customer notice "+typ+" not delivered", outcomeOf(err, "sent"), alerted.DryRun)
}
