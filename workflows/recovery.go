package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"dunning/activities"
)

// a is the nil receiver through which workflows name activities.
var a *activities.Activities

const (
	maxAppliedEvents = 1000
	maxActions       = 500
)

// lastSignalsChange applies the signals that come in as a life ends, and
// acts on them, before it completes or continues into the next life.
const lastSignalsChange = "apply-last-signals"

// carryEndedLifeChange passes what a life leaves to the next (its result
// and applied events) on to the run it continues into with new failures.
const carryEndedLifeChange = "carry-ended-life"

// forgivenForeverChange keeps the intents an earlier life forgave
// forgiven in every later life: never charged, nothing taken away for
// them. Lives recorded before it read only the cards of the life before.
const forgivenForeverChange = "forgiven-across-lives"

// forgivenEarlier resolves an intent that an earlier life forgave.
const forgivenEarlier = "an earlier life's waiver"

// recovery is one PaymentRecoveryWorkflow run: its state and its channels.
type recovery struct {
	s       RecoveryState
	id      string
	wake    bool
	pending []PaymentFailedSignal
	// busy names the control-plane action under way, if any, so that
	// operator controls answer knowing it cannot be stopped.
	busy string
	// round is why the retry round under way runs ("" when none does),
	// and charging names the confirm under way in it, if any, so that a
	// retry_now answers knowing it.
	round    string
	charging string
	// roundConfirms, roundUnchanged and roundDeclined count, in the last
	// retry round, the confirms sent, the intents a card update's round
	// left because what it would charge had not changed, and the confirms
	// declined.
	roundConfirms, roundUnchanged, roundDeclined int
	// retryNowSeen is what a retry_now update accepted during the round
	// found: the round's confirms begun by then, and whether one was under
	// way (retryNowAfterChargesChange). asUpdate is set while an update,
	// not a signal, is handled: an update is handled as it arrives, a
	// signal only where the workflow next drains.
	retryNowSeen *retryNowSeen
	asUpdate     bool

	channels []workflow.ReceiveChannel
	failed   workflow.ReceiveChannel
	paid     workflow.ReceiveChannel
	card     workflow.ReceiveChannel
	removed  workflow.ReceiveChannel
	action   workflow.ReceiveChannel
	inFlight workflow.ReceiveChannel
	controls map[string]workflow.ReceiveChannel
	// memo is the RecoveryMemo this run upserted last.
	memo *RecoveryMemo
	// v answers the run's version questions (generation.go).
	v versions
	// opening is set while a run begun without a life applies its first
	// signals, in its first workflow task.
	opening bool
	// startedWith is set when the run was started with its opening
	// failure, first in pending, rather than signalled it.
	startedWith bool
	// ended is how the life before ended, when it ended into this run,
	// and endedEvents the events it applied (RecoveryInput.Previous).
	ended       *RecoveryResult
	endedEvents []string
	// paidMeanwhile collects, while Stripe is asked for the customer's
	// other unpaid payments (non-nil then), the intents and invoices
	// reported paid that the life did not know.
	paidMeanwhile []string
}

// PaymentRecoveryWorkflow is one customer's recovery (ID
// recovery-<customer>): retries on schedule and at once when the card
// changes, a grace period, suspension, deprovisioning; recovered when every
// owed intent is paid. Signal-with-start by StripeEventWorkflow.
func PaymentRecoveryWorkflow(ctx workflow.Context, in RecoveryInput) (RecoveryResult, error) {
	r := &recovery{id: workflow.GetInfo(ctx).WorkflowExecution.ID}
	if in.State != nil {
		r.s = *in.State
	} else {
		r.s = RecoveryState{StripeCustomerID: in.StripeCustomerID, Settings: in.Settings, Stage: StagePastDue}
	}
	r.pending = in.Pending
	r.opening = in.State == nil
	r.startedWith = in.Opening && in.State == nil && len(in.Pending) > 0
	if in.State == nil {
		r.ended, r.endedEvents = in.Previous, in.AppliedEvents
	}
	if err := r.setup(ctx); err != nil {
		return RecoveryResult{}, err
	}
	return r.run(ctx)
}

func (r *recovery) setup(ctx workflow.Context) error {
	r.failed = workflow.GetSignalChannel(ctx, SignalPaymentFailed)
	r.paid = workflow.GetSignalChannel(ctx, SignalPaid)
	r.card = workflow.GetSignalChannel(ctx, SignalCardUpdated)
	r.removed = workflow.GetSignalChannel(ctx, SignalPaymentMethodRemoved)
	r.action = workflow.GetSignalChannel(ctx, SignalActionRequired)
	r.inFlight = workflow.GetSignalChannel(ctx, SignalPaymentProcessing)
	r.channels = []workflow.ReceiveChannel{r.failed, r.paid, r.card, r.removed, r.action, r.inFlight}
	r.controls = map[string]workflow.ReceiveChannel{}
	for _, name := range []string{ControlRetryNow, ControlExtendGrace, ControlWaive, ControlPause, ControlResume} {
		ch := workflow.GetSignalChannel(ctx, name)
		r.controls[name] = ch
		r.channels = append(r.channels, ch)
	}

	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (RecoveryState, error) { return r.s, nil }); err != nil {
		return fmt.Errorf("register status query: %w", err)
	}
	return r.registerControls(ctx)
}

func (r *recovery) run(ctx workflow.Context) (RecoveryResult, error) {
	log := workflow.GetLogger(ctx)
	r.s.Rules = int(r.version(ctx, moneyRulesChange, moneyRules))
	if r.ended != nil && r.cards() {
		// The life before ended into this run: what it leaves is taken
		// over before its last failures open this life.
		r.s.AppliedEvents = slices.Clone(r.endedEvents)
		r.respectPrevious(ctx, *r.ended)
	}
	for i, p := range r.pending {
		if i > 0 || !r.startedWith {
			// Reads taken while the previous life still ran are not this
			// life's.
			p.First = nil
		}
		r.onPaymentFailed(ctx, p)
	}
	r.pending = nil
	if err := r.upsertAttributes(ctx); err != nil {
		return RecoveryResult{}, err
	}
	for {
		if !r.safe() && r.version(ctx, adoptMoneyRulesChange, 1) == 1 {
			// A life begun before the money rules takes them up at its next
			// wake: it continues as new with its whole state, and the new
			// run follows them.
			r.drain(ctx)
			_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
			s := r.s
			// The old rules told the customer and ops when they announced.
			s.PastDueNoticeSent = s.Announced
			return RecoveryResult{}, workflow.NewContinueAsNewError(ctx, PaymentRecoveryWorkflowName, RecoveryInput{
				StripeCustomerID: r.s.StripeCustomerID, Settings: r.s.Settings, State: &s,
			})
		}
		r.drain(ctx)
		r.opening = false
		if err := r.step(ctx); err != nil {
			return RecoveryResult{}, err
		}
		// Signals that came in while step waited on activities (a payment
		// during the suspend call, say) are applied here, and acted on at
		// once. Histories recorded before this waited for the next timer.
		applied := r.drain(ctx)
		if r.safe() {
			r.alertLateMoney(ctx)
			if err := r.upsertMemo(ctx); err != nil {
				return RecoveryResult{}, fmt.Errorf("upsert memo: %w", err)
			}
		}
		if r.terminal() {
			if err := r.applyLastSignals(ctx); err != nil {
				return RecoveryResult{}, err
			}
			if r.safe() {
				r.countEnded(ctx)
			}
			if len(r.pending) > 0 {
				// Failures that came in as this life ended open the next one.
				log.Info("new failures after the end of a recovery; starting the next", "count", len(r.pending))
				return RecoveryResult{}, workflow.NewContinueAsNewError(ctx, PaymentRecoveryWorkflowName, r.nextLife(ctx))
			}
			r.s.Next = NextAction{Kind: NextNone}
			workflow.SetCurrentDetails(ctx, r.details())
			_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
			return r.result(), nil
		}
		if r.wake || r.signalsWaiting() ||
			(applied && r.version(ctx, "act-on-signals-applied-after-step", 1) == 1) {
			r.wake = false
			continue
		}
		if r.safe() && r.waivePending() && r.version(ctx, waiverTakenMidStepChange, 1) == 1 {
			// A waiver sent as a signal and taken in the middle of the step
			// (between two charges of a round, say) wakes nothing: it is
			// carried out now, not when something else happens.
			continue
		}
		r.plan(ctx)
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			r.drain(ctx)
			_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
			s := r.s
			return RecoveryResult{}, workflow.NewContinueAsNewError(ctx, PaymentRecoveryWorkflowName, RecoveryInput{
				StripeCustomerID: r.s.StripeCustomerID, Settings: r.s.Settings, State: &s,
			})
		}
		cond := func() bool { return r.wake || r.signalsWaiting() }
		if r.s.Next.At.IsZero() {
			if err := workflow.Await(ctx, cond); err != nil {
				return RecoveryResult{}, err
			}
		} else if d := r.s.Next.At.Sub(workflow.Now(ctx)); d > 0 {
			if _, err := workflow.AwaitWithTimeout(ctx, d, cond); err != nil {
				return RecoveryResult{}, err
			}
		}
		r.wake = false
	}
}

// applyLastSignals applies, as a life ends, the signals that came in
// after the loop last applied them (while ops were told of money after
// the end, say), and acts on them, until none is waiting: money after the
// end reaches ops, and failures are kept for the next life. Lives
// recorded before lastSignalsChange ended with them unread.
func (r *recovery) applyLastSignals(ctx workflow.Context) error {
	for {
		_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
		if !r.safe() || !r.signalsWaiting() || r.version(ctx, lastSignalsChange, 1) == workflow.DefaultVersion {
			return nil
		}
		r.drain(ctx)
		r.alertLateMoney(ctx)
		if err := r.upsertMemo(ctx); err != nil {
			return fmt.Errorf("upsert memo: %w", err)
		}
	}
}

// nextLife is the input of the run that opens the customer's next life
// on the failures that came in as this one ended, with what the next life
// must respect of this one. Lives recorded before carryEndedLifeChange
// passed on the failures alone.
func (r *recovery) nextLife(ctx workflow.Context) RecoveryInput {
	in := RecoveryInput{StripeCustomerID: r.s.StripeCustomerID, Settings: r.s.Settings, Pending: r.pending}
	if r.cards() && r.version(ctx, carryEndedLifeChange, 1) == 1 {
		r.s.Next = NextAction{Kind: NextNone}
		ended := r.result()
		in.Previous, in.AppliedEvents = &ended, slices.Clone(r.s.AppliedEvents)
	}
	return in
}

func (r *recovery) terminal() bool {
	switch r.s.Stage {
	case StageRecovered, StageDeprovisioned, StageWaived:
		return true
	}
	return false
}

func (r *recovery) signalsWaiting() bool {
	for _, ch := range r.channels {
		if ch.Len() > 0 {
			return true
		}
	}
	return false
}

// drain applies every signal waiting, in the main coroutine, and reports
// whether there was any.
func (r *recovery) drain(ctx workflow.Context) bool {
	applied := false
	for {
		progressed := false
		var f PaymentFailedSignal
		for r.failed.ReceiveAsync(&f) {
			progressed = true
			if r.terminal() {
				if !r.known(f.Intent.ID) && !r.applied(f.EventID) && !isOwnRetry(f) && !forgiven(&r.s, f.Intent.ID) {
					r.pending = append(r.pending, f)
				}
			} else {
				r.onPaymentFailed(ctx, f)
			}
			f = PaymentFailedSignal{}
		}
		// Each kind in the order it always had: the histories replay on it.
		progressed = receiveEach(r.paid, func(p PaidSignal) { r.onPaid(ctx, p) }) || progressed
		progressed = receiveEach(r.card, func(c CardUpdatedSignal) { r.onCardUpdated(ctx, c) }) || progressed
		progressed = receiveEach(r.removed, func(m PaymentMethodRemovedSignal) { r.onPaymentMethodRemoved(ctx, m) }) || progressed
		progressed = receiveEach(r.action, func(a ActionRequiredSignal) { r.onActionRequired(ctx, a) }) || progressed
		progressed = receiveEach(r.inFlight, func(ps PaymentProcessingSignal) { r.onPaymentProcessing(ctx, ps) }) || progressed
		if r.drainControls(ctx) {
			progressed = true
		}
		if !progressed {
			return applied
		}
		applied = true
	}
}

func isOwnRetry(f PaymentFailedSignal) bool {
	return strings.HasPrefix(f.RequestIdempotencyKey, RetryIdempotencyPrefix+":")
}

func (r *recovery) known(intentID string) bool { return r.intent(intentID) != nil }

func (r *recovery) intent(id string) *Intent { return intentByID(&r.s, id) }

func (r *recovery) applied(eventID string) bool {
	return eventID != "" && slices.Contains(r.s.AppliedEvents, eventID)
}

// remember records an event as applied; false when it already was.
func (r *recovery) remember(eventID string) bool {
	var fresh bool
	r.s.AppliedEvents, fresh = rememberEvent(r.s.AppliedEvents, eventID)
	return fresh
}

// rememberEvent adds eventID to the applied events, keeping the newest
// maxAppliedEvents, and reports whether it was new. An event without an ID
// is always new.
func rememberEvent(applied []string, eventID string) ([]string, bool) {
	if eventID == "" {
		return applied, true
	}
	if slices.Contains(applied, eventID) {
		return applied, false
	}
	applied = append(applied, eventID)
	if n := len(applied); n > maxAppliedEvents {
		applied = slices.Clone(applied[n-maxAppliedEvents:])
	}
	return applied, true
}

func (r *recovery) record(ctx workflow.Context, kind, detail, outcome string, dryRun bool) {
	r.s.Actions = append(r.s.Actions, Action{At: workflow.Now(ctx), Kind: kind, Detail: detail, Outcome: outcome, DryRun: dryRun})
	if n := len(r.s.Actions); n > maxActions {
		r.s.Actions = slices.Clone(r.s.Actions[n-maxActions:])
	}
	if dryRun {
		r.s.DryRunActions++
	}
}

// onPaymentFailed applies a failed intent. The first one opens the
// lifecycle; later ones, including the echoes of dunning's own retries,
// join it and start no second ladder.
func (r *recovery) onPaymentFailed(ctx workflow.Context, f PaymentFailedSignal) {
	if !r.remember(f.EventID) {
		return
	}
	if r.safe() {
		switch {
		case f.Intent.Waived:
			r.record(ctx, "payment failed", f.Intent.ID+" (event "+f.EventID+")", "ignored: waived, never charged again", false)
			return
		case isOwnRetry(f) && !r.known(f.Intent.ID):
			// The late echo of a retry made by an earlier life.
			r.record(ctx, "payment failed", f.Intent.ID+" (event "+f.EventID+")", "ignored: echo of an earlier life's retry", false)
			return
		}
	}
	now := workflow.Now(ctx)
	opensWithReads := r.s.FirstFailureAt.IsZero() && r.opening && usableReads(f.First, workflow.GetInfo(ctx).WorkflowStartTime) &&
		r.cards() && r.version(ctx, firstReadsChange, 1) == 1
	if opensWithReads {
		// The run's first workflow task, which runs again if it is lost:
		// the life's clock is the run's start, the same every time.
		now = workflow.GetInfo(ctx).WorkflowStartTime
	}
	if r.s.FirstFailureAt.IsZero() {
		if r.safe() {
			r.countStarted(ctx)
		}
		r.s.FirstFailureAt = now
		r.s.Lifecycle = r.lifeID(ctx, now)
		if len(r.s.Settings.RetrySchedule) > 0 {
			r.s.RetryAt = now.Add(r.s.Settings.RetrySchedule[0])
		}
		r.s.SuspendAt = now.Add(r.s.Settings.GracePeriod)
	}
	decline := firstNonEmpty(f.Intent.DeclineCode, f.Intent.FailureCode)
	in := r.intent(f.Intent.ID)
	older := false // a decline before the newest applied to the intent
	switch {
	case in == nil && forgiven(&r.s, f.Intent.ID):
		// Stripe's own retry of a debt an earlier life forgave, say.
		r.s.Intents = append(r.s.Intents, &Intent{
			ID: f.Intent.ID, Amount: f.Intent.Amount, Currency: f.Intent.Currency, InvoiceID: f.Intent.InvoiceID,
			PaymentMethodID: f.Intent.PaymentMethodID, State: IntentWaived, FailedAt: f.Created, LastDecline: decline, LastEventAt: f.Created,
			ResolvedAt: now, ResolvedBy: forgivenEarlier,
		})
		r.record(ctx, "payment failed", f.Intent.ID+" (event "+f.EventID+")", "waived: forgiven by an earlier life, never charged again", false)
	case in == nil:
		r.s.Intents = append(r.s.Intents, &Intent{
			ID: f.Intent.ID, Amount: f.Intent.Amount, Currency: f.Intent.Currency, InvoiceID: f.Intent.InvoiceID,
			PaymentMethodID: f.Intent.PaymentMethodID, State: IntentOpen, FailedAt: f.Created, LastDecline: decline, LastEventAt: f.Created,
		})
		if r.safe() {
			r.countFailed(ctx, r.s.Intents[len(r.s.Intents)-1])
		}
		r.markJoined(ctx, r.s.Intents[len(r.s.Intents)-1])
		r.record(ctx, "payment failed", fmt.Sprintf("%s %s (%s)", f.Intent.ID, money(f.Intent.Amount, f.Intent.Currency), decline), "recorded", false)
	case adoptedAlready(in, f):
		// Found unpaid in Stripe before this event came, and taken up
		// then, its decline with it.
		r.record(ctx, "payment failed", f.Intent.ID+" (event "+f.EventID+")", "already applied: found unpaid in stripe before its event", false)
		return
	case in.State == IntentInFlight && r.safe() && !f.Created.Before(in.InFlightSince.Add(-time.Minute)):
		// The payment that was processing failed after all.
		in.State, in.InFlightSince, in.InFlightAlerted = IntentOpen, time.Time{}, false
		in.LastEventAt, in.LastDecline = f.Created, decline
		r.record(ctx, "payment in flight failed", fmt.Sprintf("%s (%s)", f.Intent.ID, decline), "owed again", false)
		r.markFailedAgain(ctx, in)
	case in.State != IntentOpen || f.Created.Before(in.LastEventAt):
		older = in.State == IntentOpen
		r.record(ctx, "payment failed", f.Intent.ID+" (event "+f.EventID+")", "ignored: older than what is known", false)
	case r.debitFailedAfterNotice(ctx, in, f):
		// A bank debit the customer made after they were told, whose
		// processing dunning never saw: it failed again all the same.
		in.LastEventAt, in.LastDecline = f.Created, decline
		r.record(ctx, "payment failed again", fmt.Sprintf("%s (%s, %s)", f.Intent.ID, decline, f.Intent.FailedPaymentMethodType),
			"a bank debit made after the customer was told", false)
		r.markFailedAgain(ctx, in)
	default:
		in.LastEventAt, in.LastDecline = f.Created, decline
		r.record(ctx, "payment failed again", fmt.Sprintf("%s (%s)", f.Intent.ID, decline), "recorded", false)
	}
	if r.cards() && !isOwnRetry(f) {
		// Stripe's own attempt (the invoice's, or its Smart Retries) is an
		// attempt on the card like any of dunning's; dunning's own were
		// counted when made.
		if in := r.intent(f.Intent.ID); in != nil && in.State == IntentOpen {
			pm := firstNonEmpty(f.Intent.Decline.PaymentMethod, f.Intent.PaymentMethodID)
			if older && r.version(ctx, olderFailureKeepsLatestChange, 1) == 1 {
				// Stripe does not order its events: the intent keeps the
				// newer decline and card; the older one was still an
				// attempt on its own card.
				r.olderDecline(f.Intent.Decline, pm, f.Created)
			} else {
				r.cardDeclined(ctx, in, f.Intent.Decline, pm, f.Created, true)
			}
		}
	}
	if opensWithReads {
		r.openWithReads(ctx, r.intent(f.Intent.ID), *f.First, now)
	}
}

// firstReadsFreshFor bounds how long before the run's start the first
// reads may have begun. A payment that lands after them is announced by
// an event that finds no recovery running until the run starts; past
// this, the life reads again rather than tell a past due that may be
// paid already.
const firstReadsFreshFor = 2 * time.Second

// usableReads reports whether a new life opened at start may decide on
// reads: some were taken, none while another life ran (it ended before
// this run began, and they say nothing of how), and not long before.
func usableReads(reads *FirstReads, start time.Time) bool {
	return reads != nil && !reads.Previous.Running && !start.After(reads.At.Add(firstReadsFreshFor))
}

// cardDeclined applies a decline to the intent and to the card it was
// made on: the class decides the card's holds, and a bank that wants the
// customer to authenticate stops off-session retries of the intent.
func (r *recovery) cardDeclined(ctx workflow.Context, in *Intent, d activities.Decline, pm string, at time.Time, count bool) {
	key := firstNonEmpty(d.Fingerprint, pm)
	if key == "" {
		return
	}
	v := activities.ClassifyDecline(d)
	c := r.cardRecord(key, pm)
	if count && !slices.ContainsFunc(c.Attempts, at.Equal) {
		c.Attempts = append(c.Attempts, at)
	}
	applyDecline(c, v, pm, workflow.Now(ctx))
	c.Unread = nil
	if d.Charge != "" && d.OutcomeReason == "" && v.Class != activities.DeclineStop {
		// The charge may say more than the error: read before a retry.
		unread := d
		c.Unread = &unread
	}
	in.CardKey, in.Decline = key, &v
	if pm != "" {
		in.PaymentMethodID = pm
	}
	in.Charge = nil // the card just tried is what a confirm charges
	if v.Class == activities.DeclineAuthentication {
		in.NeedsAction = true
	}
}

// olderDecline applies to its card a decline older than the newest one
// applied to its intent, made with the payment method pm at at: the
// attempt is counted (once: an attempt at an instant already counted is
// the same one) and a stop holds the card for good, but the intent's
// decline and payment method stay the newer ones, and so do the card's
// payment method and, short of a stop, its class and reason.
func (r *recovery) olderDecline(d activities.Decline, pm string, at time.Time) {
	key := firstNonEmpty(d.Fingerprint, pm)
	if key == "" {
		return
	}
	c := card(&r.s, key)
	if c == nil {
		c = r.cardRecord(key, pm)
	}
	if !slices.ContainsFunc(c.Attempts, at.Equal) {
		c.Attempts = append(c.Attempts, at)
	}
	if v := activities.ClassifyDecline(d); v.Class == activities.DeclineStop {
		applyDecline(c, v, pm, at)
	}
}

func (r *recovery) onPaid(ctx workflow.Context, p PaidSignal) {
	if !r.remember(p.EventID) {
		return
	}
	matched, resolved := false, false
	for _, in := range r.s.Intents {
		if r.safe() && (in.State == IntentWaived || in.State == IntentCanceled) &&
			((p.IntentID != "" && in.ID == p.IntentID) || (p.InvoiceID != "" && in.InvoiceID == p.InvoiceID)) {
			r.s.LateMoney = append(r.s.LateMoney, fmt.Sprintf("%s %s paid (%s) after it was %s", in.ID, money(in.Amount, in.Currency), p.Source, in.State))
			matched = true
			continue
		}
		if in.State != IntentOpen && !(r.safe() && in.State == IntentInFlight) {
			continue
		}
		if (p.IntentID != "" && in.ID == p.IntentID) || (p.InvoiceID != "" && in.InvoiceID == p.InvoiceID) {
			r.resolve(ctx, in, IntentPaid, p.Source)
			in.PaidAmount = p.AmountPaid
			matched, resolved = true, true
		}
	}
	if !matched {
		r.record(ctx, "payment reported", firstNonEmpty(p.IntentID, p.InvoiceID)+" by "+p.Source, "no open intent matches", false)
		if r.paidMeanwhile != nil {
			for _, id := range []string{p.IntentID, p.InvoiceID} {
				if id != "" {
					r.paidMeanwhile = append(r.paidMeanwhile, id)
				}
			}
		}
	}
	if r.safe() && r.s.Stage == StageDeprovisioned && matched {
		if !resolved && r.version(ctx, lateMoneyOnceChange, 1) == 1 {
			// Only forgiven or canceled intents matched, and each is told
			// above already: one payment, one alert.
			return
		}
		r.s.LateMoney = append(r.s.LateMoney, fmt.Sprintf("%s paid (%s) after deprovisioning", firstNonEmpty(p.IntentID, p.InvoiceID), p.Source))
	}
}

func (r *recovery) resolve(ctx workflow.Context, in *Intent, state IntentState, by string) {
	in.State, in.ResolvedAt, in.ResolvedBy = state, workflow.Now(ctx), by
	r.record(ctx, "intent "+string(state), fmt.Sprintf("%s %s", in.ID, money(in.Amount, in.Currency)), "by "+by, false)
}

func (r *recovery) onCardUpdated(ctx workflow.Context, c CardUpdatedSignal) {
	if !r.remember(c.EventID) {
		return
	}
	if u := CardEventOutdated(r.s.Unusable, c.PaymentMethodID, c.Created); u != nil && r.cards() &&
		r.version(ctx, lateCardEventChange, 1) == 1 {
		// Stripe said since that it will not charge this payment method
		// (removed, refused): the event is older news about it and
		// changes nothing that would be charged.
		r.record(ctx, "card updated", c.PaymentMethodID+" ("+c.Source+")",
			"ignored: created before Stripe said it will not charge it ("+u.Why+")", false)
		return
	}
	r.s.NoPaymentMethod = false
	if c.PaymentMethodID != "" {
		r.s.Unusable = withoutUnusable(r.s.Unusable, c.PaymentMethodID)
	}
	if c.Created.After(r.s.LastCardEventAt) {
		r.s.LastCardEventAt = c.Created
	}
	if r.cards() && c.PaymentMethodID != "" && c.Source == EventPaymentMethodAutoUpd {
		// The network sent the card's new details: the same payment method
		// is worth one more try, and needs no new data any more.
		if !slices.Contains(r.s.AutoUpdated, c.PaymentMethodID) {
			r.s.AutoUpdated = append(r.s.AutoUpdated, c.PaymentMethodID)
		}
		for _, k := range r.s.Cards {
			if k.PaymentMethod == c.PaymentMethodID {
				k.NeedsNewData = false
			}
		}
	}
	if r.safe() {
		// A new card can be charged off-session: the bank's request to
		// authenticate concerned the old one.
		for _, in := range r.s.Intents {
			in.NeedsAction = false
		}
	}
	if r.cards() {
		// What a confirm charges may have changed: Stripe says at the
		// next charge.
		for _, in := range r.s.Intents {
			if unsettled(in) && !slices.Contains(in.CardUpdates, c.PaymentMethodID) {
				in.CardUpdates = append(in.CardUpdates, c.PaymentMethodID)
			}
		}
	}
	if r.s.Stage == StagePastDue || r.s.Stage == StageSuspended {
		// A burst of card events becomes one retry.
		due := workflow.Now(ctx).Add(r.s.Settings.CardUpdateDebounce)
		if r.s.CardRetryAt.IsZero() || due.Before(r.s.CardRetryAt) {
			r.s.CardRetryAt = due
		}
	}
	r.record(ctx, "card updated", firstNonEmpty(c.PaymentMethodID, c.Source), "retry at once", false)
}

// staleRemovalChange ignores a removal created no later than a card event
// already applied: the removed-card route asks Stripe and tells the
// customer and ops before it tells the recovery, so a card added after
// the removal can reach the recovery first. Lives recorded before it
// waited for a card they had.
const staleRemovalChange = "stale-removal-ignored"

func (r *recovery) onPaymentMethodRemoved(ctx workflow.Context, m PaymentMethodRemovedSignal) {
	if !r.remember(m.EventID) {
		return
	}
	if m.PaymentMethodID != "" && r.cards() && r.version(ctx, unusableMethodsChange, 1) == 1 {
		// Whatever else the removal means, Stripe charges it no more.
		r.markUnusable(ctx, m.PaymentMethodID, removedWhy+" ("+m.Source+")", m.Created)
		if !m.UsableLeft {
			// The removal's route told the customer and ops.
			markTold(r.s.Unusable, []string{m.PaymentMethodID})
		}
	}
	if m.UsableLeft && r.version(ctx, removalWithMethodLeftChange, 1) == 1 {
		// Stripe listed another usable way to pay: retries go on, and
		// what they charge is asked at each charge, never the removed one.
		r.record(ctx, "payment method removed", firstNonEmpty(m.PaymentMethodID, m.Source),
			"another usable payment method remains; the removed one is not charged", false)
		return
	}
	if RemovalOvertaken(m.Created, r.s.LastCardEventAt) && r.version(ctx, staleRemovalChange, 1) == 1 {
		// Stripe is asked at the card update's charge, and answers
		// RetryNoPaymentMethod if nothing usable is left after all.
		r.record(ctx, "payment method removed", m.Source,
			"ignored: a card event created since ("+r.s.LastCardEventAt.UTC().Format(time.RFC3339)+") was applied first", false)
		return
	}
	r.s.NoPaymentMethod = true
	r.s.CardRetryAt = time.Time{}
	r.record(ctx, "payment method removed", m.Source, "retries wait for a new card", false)
}

// step does whatever is due: announcing, resolving, retrying, suspending,
// deprovisioning, waiving.
func (r *recovery) step(ctx workflow.Context) error {
	if len(r.s.Intents) == 0 {
		return nil // started by a signal that carried nothing to recover yet
	}
	if r.safe() {
		return r.stepSafe(ctx)
	}
	if r.s.Waive != nil {
		return r.doWaive(ctx)
	}
	if !r.s.Announced {
		if err := r.announce(ctx); err != nil {
			return err
		}
	}
	if r.s.Paused {
		// Nothing automatic while paused; a payment still ends a recovery
		// that has nothing to give back.
		if r.openCount() == 0 && r.s.Stage == StagePastDue {
			return r.recover(ctx)
		}
		return nil
	}
	if r.openCount() == 0 {
		return r.recover(ctx)
	}
	now := workflow.Now(ctx)
	retryDue := r.s.RetryNow || (!r.s.CardRetryAt.IsZero() && !now.Before(r.s.CardRetryAt))
	scheduled := !r.s.RetryAt.IsZero() && !now.Before(r.s.RetryAt)
	if scheduled {
		r.s.RetriesDone++
		r.s.RetryAt = time.Time{}
		if r.s.RetriesDone < len(r.s.Settings.RetrySchedule) {
			r.s.RetryAt = r.s.FirstFailureAt.Add(r.s.Settings.RetrySchedule[r.s.RetriesDone] + r.s.PausedTotal)
		}
	}
	if retryDue || scheduled {
		why := "scheduled retry " + fmt.Sprint(r.s.RetriesDone)
		if retryDue {
			why = "retry after card update"
			if r.s.RetryNow {
				why = "retry asked by an operator"
			}
		}
		r.s.RetryNow, r.s.CardRetryAt = false, time.Time{}
		if r.s.NoPaymentMethod && !retryDue {
			r.record(ctx, why, "", "skipped: no usable payment method", false)
		} else if err := r.retryAll(ctx, why); err != nil {
			return err
		}
		if r.openCount() == 0 {
			return r.recover(ctx)
		}
	}
	switch {
	case r.s.Stage == StagePastDue && !r.s.SuspendAt.IsZero() && !now.Before(r.s.SuspendAt):
		return r.suspend(ctx)
	case r.s.Stage == StageSuspended && !r.s.DeprovisionAt.IsZero() && !now.Before(r.s.DeprovisionAt):
		return r.deprovision(ctx)
	}
	return nil
}

func (r *recovery) openCount() int { return unpaidCount(&r.s) }

// owed sums the open intents, per currency.
func (r *recovery) owed() (int64, string) {
	var total int64
	currency := ""
	for _, in := range r.s.Intents {
		if in.State == IntentOpen {
			total += in.Amount
			if currency == "" {
				currency = in.Currency
			}
		}
	}
	return total, currency
}

func (r *recovery) key(parts ...string) string {
	return r.s.Lifecycle + ":" + strings.Join(parts, ":")
}

// heartbeatTimeout is the heartbeat timeout of dunning's activities. The
// worker heartbeats every activity with one while it runs (a third of it
// apart), so a slow peer keeps its whole start-to-close timeout, while an
// activity whose worker died is noticed within this and tried again on
// another worker, with the same idempotency key.
const heartbeatTimeout = 5 * time.Second

func activityCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		HeartbeatTimeout:    heartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    2 * time.Minute,
		},
	})
}

// announce opens the lifecycle: the product's customer ID, the Amberflo
// invoice, the intent's current status (an old event may describe an
// intent already paid), then one customer notice and one ops alert.
func (r *recovery) announce(ctx workflow.Context) error {
	actx := activityCtx(ctx)
	var profile activities.CustomerProfile
	if err := workflow.ExecuteActivity(actx, a.CustomerProfile, activities.CustomerInput{StripeCustomerID: r.s.StripeCustomerID}).Get(ctx, &profile); err != nil {
		r.record(ctx, "read customer", r.s.StripeCustomerID, "failed: "+errText(err), false)
		profile.CustomerID = r.s.StripeCustomerID
	}
	r.s.CustomerID = profile.CustomerID
	// The card may have changed before this recovery began (the events
	// can arrive in any order): Stripe's current default, if it is not what
	// failed, is tried at once.
	if def := profile.DefaultPaymentMethod; def != "" {
		for _, in := range r.s.Intents {
			if in.State == IntentOpen && in.PaymentMethodID != "" && in.PaymentMethodID != def {
				r.s.CardRetryAt = workflow.Now(ctx).Add(r.s.Settings.CardUpdateDebounce)
				r.record(ctx, "card changed since the failure", def, "retry at once", false)
				break
			}
		}
	}
	r.lookUpInvoice(ctx)
	// An old event may describe an intent paid since. A failed read here
	// is only recorded: the re-check before suspension is the one that
	// must not be skipped.
	for _, in := range r.s.Intents {
		if in.State == IntentOpen {
			r.checkIntent(ctx, in, "status at the first failure")
		}
	}
	r.s.Announced = true
	if r.openCount() == 0 {
		return nil
	}
	amount, currency := r.owed()
	next := r.s.RetryAt
	deadline := r.s.SuspendAt
	r.notice(ctx, "payment_failed", r.key("past_due", "notice"), "", &next, &deadline)
	r.alert(ctx, "warning", r.key("past_due", "alert"), "Payment failed: "+r.s.StripeCustomerID+" is past due",
		fmt.Sprintf("%s owed. Retries scheduled; suspension at %s unless paid.", money(amount, currency), deadline.UTC().Format(time.RFC3339)))
	return nil
}

func (r *recovery) lookUpInvoice(ctx workflow.Context) {
	var inv activities.AmberfloInvoice
	err := workflow.ExecuteActivity(activityCtx(ctx), a.LatestInvoice, activities.AmberfloInput{CustomerID: r.s.CustomerID}).Get(ctx, &inv)
	switch {
	case err != nil:
		r.record(ctx, "amberflo invoice", r.s.CustomerID, "failed: "+errText(err), false)
	case inv.DryRun:
		r.record(ctx, "amberflo invoice", r.s.CustomerID, "not looked up", true)
	case !inv.Found:
		r.record(ctx, "amberflo invoice", r.s.CustomerID, "none found", false)
	default:
		r.s.Invoice = &AmberfloInvoice{URI: inv.URI, Amount: inv.Amount, PaymentStatus: inv.PaymentStatus, Paid: inv.Paid}
		r.record(ctx, "amberflo invoice", inv.URI, inv.PaymentStatus, false)
	}
}

// recheckStripe asks Stripe for every open intent's status and resolves
// the ones paid or canceled since.
func (r *recovery) recheckStripe(ctx workflow.Context, why string) error {
	for _, in := range r.s.Intents {
		if in.State != IntentOpen {
			continue
		}
		if err := r.checkIntent(ctx, in, why); err != nil {
			return r.pauseForOperator(ctx, "stripe re-check of "+in.ID+" failed: "+errText(err))
		}
	}
	return nil
}

// checkIntent reads one intent's status and resolves it if paid or
// canceled since.
func (r *recovery) checkIntent(ctx workflow.Context, in *Intent, why string) error {
	var st activities.IntentStatus
	if err := workflow.ExecuteActivity(activityCtx(ctx), a.PaymentIntentStatus, activities.IntentInput{IntentID: in.ID}).Get(ctx, &st); err != nil {
		r.record(ctx, "stripe re-check", in.ID, "failed: "+errText(err), false)
		return err
	}
	switch {
	case st.Paid:
		r.resolve(ctx, in, IntentPaid, "stripe ("+why+")")
	case st.Closed:
		r.resolve(ctx, in, IntentCanceled, "stripe ("+why+")")
	default:
		r.record(ctx, "stripe re-check", in.ID, st.Status, st.DryRun)
	}
	return nil
}

// recheck asks Stripe and Amberflo again before anything is taken away.
// It returns true when the customer has paid after all.
func (r *recovery) recheck(ctx workflow.Context, before string) (bool, error) {
	if err := r.recheckStripe(ctx, "before "+before); err != nil || r.s.Paused {
		return false, err
	}
	if r.openCount() == 0 {
		return true, nil
	}
	r.lookUpInvoice(ctx)
	if inv := r.s.Invoice; inv != nil && inv.Paid {
		for _, in := range r.s.Intents {
			if in.State == IntentOpen {
				r.resolve(ctx, in, IntentPaid, "amberflo invoice "+inv.PaymentStatus+" (before "+before+")")
			}
		}
		return true, nil
	}
	return false, nil
}

func (r *recovery) retryAll(ctx workflow.Context, why string) error {
	r.s.RetryRounds++
	declined := 0
	for _, in := range r.s.Intents {
		if in.State != IntentOpen {
			continue
		}
		in.Attempts++
		key := strings.Join([]string{RetryIdempotencyPrefix, r.s.Lifecycle, in.ID, fmt.Sprint(in.Attempts)}, ":")
		var res activities.RetryResult
		err := workflow.ExecuteActivity(activityCtx(ctx), a.RetryPayment, activities.RetryInput{
			IntentID: in.ID, StripeCustomerID: r.s.StripeCustomerID, IdempotencyKey: key,
		}).Get(ctx, &res)
		if err != nil {
			r.record(ctx, why, in.ID, "failed: "+errText(err), false)
			r.alert(ctx, "critical", r.key("retry-rejected", in.ID, fmt.Sprint(in.Attempts)),
				"Stripe rejected a retry for "+r.s.StripeCustomerID, errText(err))
			continue
		}
		detail := fmt.Sprintf("%s attempt %d", in.ID, in.Attempts)
		switch res.Outcome {
		case activities.RetrySucceeded:
			r.resolve(ctx, in, IntentPaid, why)
		case activities.RetryAlreadyPaid:
			r.resolve(ctx, in, IntentPaid, "customer (found paid at "+why+")")
		case activities.RetryCanceled:
			r.resolve(ctx, in, IntentCanceled, "stripe (found canceled at "+why+")")
		case activities.RetryNoPaymentMethod:
			r.s.NoPaymentMethod = true
			r.record(ctx, why, detail, "no usable payment method", false)
		case activities.RetryDryRun:
			r.record(ctx, why, detail, "not charged", true)
		default:
			in.LastDecline = firstNonEmpty(res.DeclineCode, res.Outcome)
			r.record(ctx, why, detail, res.Outcome+" "+res.DeclineCode, false)
			declined++
		}
	}
	if declined > 0 {
		next, deadline := r.s.RetryAt, r.s.SuspendAt
		r.notice(ctx, "payment_retry_failed", r.key("retry", fmt.Sprint(r.s.RetryRounds), "notice"), "", &next, &deadline)
	}
	return nil
}

// controlPlane performs an action; a permanent rejection pauses the
// recovery for an operator and reports false.
func (r *recovery) controlPlane(ctx workflow.Context, action, reason string) (bool, error) {
	amount, currency := r.owed()
	var res activities.ControlPlaneResult
	err := workflow.ExecuteActivity(activityCtx(ctx), a.ControlPlane, activities.ControlPlaneInput{
		Action: action, CustomerID: r.s.CustomerID, StripeCustomerID: r.s.StripeCustomerID,
		IdempotencyKey: r.key(action, fmt.Sprint(r.s.Resumes)), Reason: reason, WorkflowID: r.id,
		AmountDue: amount, Currency: currency, RequestedAt: workflow.Now(ctx),
	}).Get(ctx, &res)
	if err != nil {
		return false, r.pauseForOperator(ctx, "control plane "+action+" failed: "+errText(err))
	}
	outcome := "done"
	if res.AlreadyApplied {
		outcome = "already so"
	}
	if res.DryRun {
		outcome = "not called"
	}
	r.record(ctx, "control plane "+action, r.s.CustomerID, outcome, res.DryRun)
	return true, nil
}

func (r *recovery) pauseForOperator(ctx workflow.Context, reason string) error {
	now := workflow.Now(ctx)
	r.s.Paused, r.s.PausedAt, r.s.PausedReason = true, now, reason
	r.record(ctx, "paused", reason, "waiting for an operator", false)
	r.alert(ctx, "critical", r.key("paused", fmt.Sprint(now.Unix())), "Recovery of "+r.s.StripeCustomerID+" paused for an operator",
		reason+"\nResume with: temporal workflow update execute --workflow-id "+r.id+" --name "+ControlResume)
	return r.upsertAttributes(ctx)
}

func (r *recovery) suspend(ctx workflow.Context) error {
	paid, err := r.recheck(ctx, "suspension")
	if err != nil || r.s.Paused {
		return err
	}
	if paid {
		return r.recover(ctx)
	}
	ok, err := r.controlPlane(ctx, "suspend", "unpaid after the grace period")
	if err != nil || !ok {
		return err
	}
	now := workflow.Now(ctx)
	r.s.Stage, r.s.SuspendedAt = StageSuspended, now
	r.s.DeprovisionAt = now.Add(r.s.Settings.DeprovisionAfter)
	deadline := r.s.DeprovisionAt
	r.notice(ctx, "account_suspended", r.key("suspended", "notice"), "", nil, &deadline)
	amount, currency := r.owed()
	r.alert(ctx, "warning", r.key("suspended", "alert"), "Suspended: "+r.s.StripeCustomerID,
		fmt.Sprintf("%s unpaid after the grace period. Deprovisioning at %s unless paid.", money(amount, currency), deadline.UTC().Format(time.RFC3339)))
	return r.upsertAttributes(ctx)
}

func (r *recovery) deprovision(ctx workflow.Context) error {
	paid, err := r.recheck(ctx, "deprovisioning")
	if err != nil || r.s.Paused {
		return err
	}
	if paid {
		return r.recover(ctx)
	}
	ok, err := r.controlPlane(ctx, "deprovision", "unpaid while suspended")
	if err != nil || !ok {
		return err
	}
	amberfloDone := r.deactivateAmberflo(ctx)
	r.s.Stage = StageDeprovisioned
	r.notice(ctx, "account_deprovisioned", r.key("deprovisioned", "notice"), "", nil, nil)
	amount, currency := r.owed()
	r.alert(ctx, "critical", r.key("deprovisioned", "alert"), "Deprovisioned: "+r.s.StripeCustomerID,
		money(amount, currency)+" never paid; resources taken back and "+amberfloDone+".")
	return r.upsertAttributes(ctx)
}

// deactivateAmberflo disables the customer in Amberflo and moves it to
// OFFBOARDED (one activity); a failure is recorded and alerted, not
// fatal. It returns how the deprovisioning alert tells it.
func (r *recovery) deactivateAmberflo(ctx workflow.Context) string {
	var res activities.DeactivateResult
	err := workflow.ExecuteActivity(activityCtx(ctx), a.DeactivateCustomer, activities.AmberfloInput{CustomerID: r.s.CustomerID}).Get(ctx, &res)
	end := amberfloOutcome(r.s.CustomerID, res, err)
	r.record(ctx, "amberflo deactivate", r.s.CustomerID, end.Outcome, res.DryRun && err == nil)
	if end.AlertTitle != "" {
		r.alert(ctx, "critical", r.key("amberflo-deactivate"), end.AlertTitle, end.AlertText)
	}
	return end.Summary
}

// amberfloEnd is what deprovisioning did to the Amberflo customer, as the
// recovery tells it.
type amberfloEnd struct {
	Outcome string // the "amberflo deactivate" record's outcome
	// AlertTitle and AlertText are the critical alert a failure raises;
	// empty when nothing failed.
	AlertTitle, AlertText string
	Summary               string // for the deprovisioning alert
}

// amberfloOutcome reads the DeactivateCustomer activity's answer: the
// customer deactivated (or already inactive) and moved to OFFBOARDED (or
// already there), or which of the two Amberflo refused. A result without
// either OFFBOARDED flag was recorded before the activity set the stage.
func amberfloOutcome(customerID string, res activities.DeactivateResult, err error) amberfloEnd {
	var app *temporal.ApplicationError
	switch {
	case err != nil && errors.As(err, &app) && app.Type() == activities.ErrAmberfloOffboardRejected:
		return amberfloEnd{
			Outcome:    "deactivated, not moved to OFFBOARDED: " + errText(err),
			AlertTitle: "Amberflo customer " + customerID + " deactivated but not OFFBOARDED",
			AlertText: "Amberflo refused to move the lifecycle stage to OFFBOARDED (PUT /customers/stage); the customer is deactivated. " +
				"Move it to OFFBOARDED in Amberflo. " + errText(err),
			Summary: "the Amberflo customer deactivated but NOT moved to OFFBOARDED (see the alert)",
		}
	case err != nil:
		return amberfloEnd{
			Outcome:    "failed: " + errText(err),
			AlertTitle: "Amberflo customer " + customerID + " not deactivated nor OFFBOARDED",
			AlertText: "The customer was not deactivated in Amberflo (GET or PUT /customers), and its lifecycle stage was not moved either. " +
				"Deactivate it and move it to OFFBOARDED in Amberflo. " + errText(err),
			Summary: "the Amberflo customer NOT deactivated nor moved to OFFBOARDED (see the alert)",
		}
	case res.DryRun:
		return amberfloEnd{Outcome: "not called", Summary: "Amberflo not called (not configured)"}
	}
	end := amberfloEnd{Outcome: "deactivated", Summary: "the Amberflo customer deactivated"}
	if !res.Changed {
		end.Outcome = "already inactive"
	}
	switch {
	case res.Offboarded:
		end.Outcome += "; moved to OFFBOARDED"
	case res.AlreadyOffboarded:
		end.Outcome += "; already OFFBOARDED"
	}
	if res.Offboarded || res.AlreadyOffboarded {
		end.Summary += " and OFFBOARDED"
	}
	return end
}

func (r *recovery) recover(ctx workflow.Context) error {
	if r.s.Stage == StageSuspended {
		ok, err := r.controlPlane(ctx, "resume", "paid")
		if err != nil || !ok {
			return err
		}
		r.s.Resumes++
		r.notice(ctx, "account_resumed", r.key("resumed", "notice"), "", nil, nil)
	} else {
		r.notice(ctx, "payment_recovered", r.key("recovered", "notice"), "", nil, nil)
	}
	r.s.Stage = StageRecovered
	r.alert(ctx, "info", r.key("recovered", "alert"), "Recovered: "+r.s.StripeCustomerID, "Every owed payment is settled.")
	return r.upsertAttributes(ctx)
}

func (r *recovery) doWaive(ctx workflow.Context) error {
	req := r.s.Waive
	for _, in := range r.s.Intents {
		if in.State == IntentOpen {
			r.resolve(ctx, in, IntentWaived, "operator "+firstNonEmpty(req.Operator, "(unnamed)"))
		}
	}
	if r.s.Stage == StageSuspended {
		ok, err := r.controlPlane(ctx, "resume", "waived: "+req.Reason)
		if err != nil || !ok {
			return err // paused; the waiver stays asked for
		}
		r.s.Resumes++
	}
	r.s.Waive = nil
	r.s.Stage, r.s.WaivedReason = StageWaived, req.Reason
	r.alert(ctx, "info", r.key("waived", "alert"), "Waived: "+r.s.StripeCustomerID, "Reason: "+req.Reason)
	return r.upsertAttributes(ctx)
}

// notice sends a customer notice; a failure is recorded, not fatal.
func (r *recovery) notice(ctx workflow.Context, typ, key, reason string, next, deadline *time.Time) {
	_ = r.sendNotice(ctx, r.noticeInput(ctx, typ, key, reason, next, deadline))
}

// noticeInput is a notice of the recovery as it stands.
func (r *recovery) noticeInput(ctx workflow.Context, typ, key, reason string, next, deadline *time.Time) activities.NoticeInput {
	amount, currency := r.owed()
	in := activities.NoticeInput{
		Key: key, Type: typ, CustomerID: r.s.CustomerID, StripeCustomerID: r.s.StripeCustomerID,
		Stage: string(r.s.Stage), AmountDue: amount, Currency: currency, Reason: reason, CreatedAt: workflow.Now(ctx),
	}
	if r.s.Invoice != nil {
		in.InvoiceURL = r.s.Invoice.URI
	}
	if next != nil && !next.IsZero() {
		in.NextActionAt = next
	}
	if deadline != nil && !deadline.IsZero() {
		in.Deadline = deadline
	}
	return in
}

// sendNotice sends a notice and records how it went.
func (r *recovery) sendNotice(ctx workflow.Context, in activities.NoticeInput) error {
	var res activities.NotifyResult
	err := workflow.ExecuteActivity(activityCtx(ctx), a.Notice, in).Get(ctx, &res)
	r.record(ctx, "customer notice "+in.Type, "", outcomeOf(err, "sent"), res.DryRun)
	return err
}

// alert sends an ops alert; a failure is recorded, not fatal.
func (r *recovery) alert(ctx workflow.Context, severity, key, title, text string) {
	var res activities.NotifyResult
	err := workflow.ExecuteActivity(activityCtx(ctx), a.Alert, r.alertInput(severity, key, title, text)).Get(ctx, &res)
	r.record(ctx, "ops alert ("+severity+")", title, outcomeOf(err, "sent"), res.DryRun)
}

// alertInput is an ops alert about this recovery.
func (r *recovery) alertInput(severity, key, title, text string) activities.AlertInput {
	return activities.AlertInput{
		Key: key, Severity: severity, Title: title, Text: text, CustomerID: r.s.CustomerID,
		StripeCustomerID: r.s.StripeCustomerID, WorkflowID: r.id,
	}
}

func outcomeOf(err error, ok string) string {
	if err != nil {
		return "failed: " + errText(err)
	}
	return ok
}

// errText is an activity failure in a line: the application error's own
// message, without the chain of causes the SDK appends.
func errText(err error) string {
	msg := err.Error()
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		msg = app.Message()
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}

// plan works out the next action and its time, and shows it in the UI.
func (r *recovery) plan(ctx workflow.Context) {
	if r.safe() {
		if r.cards() {
			r.s.Cards = pruneCards(r.s.Cards, workflow.Now(ctx))
			showCardHolds(&r.s, workflow.Now(ctx), r.freshData())
		}
		r.s.Next = r.planSafe()
		workflow.SetCurrentDetails(ctx, r.details())
		return
	}
	var next NextAction
	earliest := func(kind string, at time.Time) {
		if !at.IsZero() && (next.At.IsZero() || at.Before(next.At)) {
			next = NextAction{Kind: kind, At: at}
		}
	}
	switch {
	case len(r.s.Intents) == 0:
		next = NextAction{Kind: NextWaitPayment}
	case r.s.Paused:
		next = NextAction{Kind: NextPaused}
	default:
		if !r.s.NoPaymentMethod {
			earliest(NextRetry, r.s.RetryAt)
		}
		earliest(NextRetry, r.s.CardRetryAt)
		if r.s.Stage == StagePastDue {
			earliest(NextSuspend, r.s.SuspendAt)
		} else if r.s.Stage == StageSuspended {
			earliest(NextDeprovision, r.s.DeprovisionAt)
		}
		if next.Kind == "" {
			next = NextAction{Kind: NextWaitPayment}
		}
		if r.s.NoPaymentMethod && next.Kind != NextSuspend && next.Kind != NextDeprovision {
			next.Kind = NextWaitCard
		}
	}
	r.s.Next = next
	workflow.SetCurrentDetails(ctx, r.details())
}

// details is the one line the UI shows: stage, amount owed, next action.
func (r *recovery) details() string {
	amount, currency := r.owed()
	line := fmt.Sprintf("%s · owes %s · next: %s", r.s.Stage, money(amount, currency), r.s.Next.Kind)
	if !r.s.Next.At.IsZero() {
		line += " at " + r.s.Next.At.UTC().Format(time.RFC3339)
	}
	if r.s.Paused {
		line += " · paused: " + r.s.PausedReason
	}
	return line
}

func (r *recovery) upsertAttributes(ctx workflow.Context) error {
	attrs := workflow.GetTypedSearchAttributes(ctx)
	var updates []temporal.SearchAttributeUpdate
	if v, _ := attrs.GetKeyword(RecoveryStageKey); v != string(r.s.Stage) {
		updates = append(updates, RecoveryStageKey.ValueSet(string(r.s.Stage)))
	}
	if v, _ := attrs.GetKeyword(StripeCustomerIDKey); v != r.s.StripeCustomerID {
		updates = append(updates, StripeCustomerIDKey.ValueSet(r.s.StripeCustomerID))
	}
	if len(updates) == 0 {
		return nil
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		return fmt.Errorf("upsert search attributes: %w", err)
	}
	return nil
}

// money formats minor units, e.g. "USD 49.00".
func money(amount int64, currency string) string {
	c := strings.ToUpper(currency)
	if c == "" {
		return fmt.Sprint(amount)
	}
	if zeroDecimal[c] {
		return fmt.Sprintf("%s %d", c, amount)
	}
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	return fmt.Sprintf("%s %s%d.%02d", c, sign, amount/100, amount%100)
}

var zeroDecimal = map[string]bool{"BIF": true, "CLP": true, "DJF": true, "GNF": true, "JPY": true, "KMF": true,
	"KRW": true, "MGA": true, "PYG": true, "RWF": true, "UGX": true, "VND": true, "VUV": true, "XAF": true, "XOF": true, "XPF": true}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// lifeID names a life that opens now; every key of the life begins with
// it. Two lives of one customer can begin in one second (the first ended
// within it), but never in one run: a life opens in a run begun without
// one, and its run continued as new keeps its name. The run's tag keeps
// the second life's notices and alerts from taking the first one's keys.
func (r *recovery) lifeID(ctx workflow.Context, now time.Time) string {
	id := fmt.Sprintf("%s@%d", r.id, now.Unix())
	if r.version(ctx, lifeIDChange, 1) == 1 {
		id += "." + runTag(workflow.GetInfo(ctx).WorkflowExecution.RunID)
	}
	return id
}

// runTag is the last eight characters of a run ID without its dashes:
// random in every run ID Temporal makes (the first ones of a version 7
// UUID are its time).
func runTag(runID string) string {
	t := strings.ReplaceAll(runID, "-", "")
	return t[max(0, len(t)-8):]
}

// receiveEach applies every signal waiting on ch, in the order received,
// each decoded into a fresh value; it reports whether there was any.
func receiveEach[T any](ch workflow.ReceiveChannel, apply func(T)) bool {
	got := false
	for {
		var v T
		if !ch.ReceiveAsync(&v) {
			return got
		}
		got = true
		apply(v)
	}
}
