package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"dunning/activities"
)

// unpaidElsewhereChange asks Stripe, before a life told of a failure ends
// as recovered, for the customer's failed payments that no event has
// brought yet (Stripe does not guarantee the order of its events; a
// webhook outage or reconciliation can bring one a quarter of an hour
// late), and takes them into the life. Before, the customer heard "you
// are all set", ops "every owed payment is settled", and a new life
// opened seconds later with "payment failed".
const unpaidElsewhereChange = "unpaid-elsewhere-before-recovered"

// unpaidBeforeResumeChange asks Stripe the same before a suspended
// customer who paid is resumed and the life ends: before, the customer was
// resumed, and ops told "Recovered", without it, and a failure whose event
// came late opened a new life right after. What Stripe finds is dealt with as
// a failure that joins a past-due life (reopen): the account is given
// back all the same, for the debt it was suspended for is paid; the life
// goes on past due; the customer is told of the new failure by a notice
// of its own, and is not suspended for it before the notice lead after
// that notice. When Stripe gives no answer the account is given back too
// (fail safe: no answer takes nothing away, and keeps nothing away from a
// customer who paid what they were told of), and the end as recovered is
// held until Stripe answers, as a past-due life's is. It also gives the
// account back, without asking Stripe, when a suspended customer has paid
// every payment they were told of and only a failure not yet told is
// left.
const unpaidBeforeResumeChange = "unpaid-elsewhere-before-resumed"

// takeConfirmRecovered names the read of the customer's other unpaid
// payments under way, for operators' answers.
const takeConfirmRecovered = "check for other unpaid payments"

// unpaidRefusedWait is how long a life waits before asking Stripe again
// after a refusal (or an answer it cannot take up): a refusal does not
// pass in a minute, and an operator has been told.
const unpaidRefusedWait = time.Hour

// endCheck is what Stripe's list of the customer's unpaid payments means
// for a life whose known payments are all settled.
type endCheck struct {
	// End: nothing is unpaid beyond what the life knows; it ends.
	End bool
	// Adopt are failed payments the life takes up as if their failure
	// events had come; Hold, unpaid payments it cannot take up (Stripe
	// named no intent), which keep the life from ending as recovered.
	Adopt []activities.UnpaidPayment
	Hold  []activities.UnpaidPayment
	// Older are failed payments created too long before this life began
	// for their events to be merely late: a life before this one left
	// them unpaid (deprovisioned), or their events never reached dunning,
	// or they are not dunning's to collect (a checkout abandoned after a
	// decline). They are neither charged nor held for; ops are told.
	Older []activities.UnpaidPayment
	// Left says what was found and left out, and why.
	Left []string
}

// decideEnd decides, on the state after every signal accepted while
// Stripe was asked, whether a settled life may end as recovered. paid
// are the intents and invoices reported paid meanwhile that the life did
// not know: Stripe's list may predate their payment. A failure that
// joined meanwhile keeps the life going, with nothing adopted: the loop
// decides again on it.
func decideEnd(s *RecoveryState, found activities.Unpaid, paid []string) endCheck {
	var c endCheck
	if unsettledCount(s) > 0 {
		return c
	}
	seen := map[string]bool{}
	for _, p := range found.Payments {
		name := firstNonEmpty(p.IntentID, p.InvoiceID)
		var known *Intent
		for _, in := range s.Intents {
			if p.InvoiceID != "" && in.InvoiceID == p.InvoiceID && known == nil {
				known = in
			}
		}
		switch {
		case seen[name]:
		case p.IntentID != "" && intentByID(s, p.IntentID) != nil:
			c.Left = append(c.Left, name+": known to this life ("+string(intentByID(s, p.IntentID).State)+")")
		case p.IntentID != "" && forgiven(s, p.IntentID):
			c.Left = append(c.Left, name+": forgiven by an earlier life")
		case (p.IntentID != "" && slices.Contains(paid, p.IntentID)) || (p.InvoiceID != "" && slices.Contains(paid, p.InvoiceID)):
			c.Left = append(c.Left, name+": reported paid while Stripe was asked")
		case known != nil:
			c.Left = append(c.Left, name+": its invoice "+p.InvoiceID+" is known to this life through "+known.ID+" ("+string(known.State)+")")
		case !lateForThisLife(s, p):
			c.Older = append(c.Older, p)
		case p.IntentID == "":
			c.Hold = append(c.Hold, p)
		default:
			c.Adopt = append(c.Adopt, p)
		}
		seen[name] = true
	}
	c.End = len(c.Adopt) == 0 && len(c.Hold) == 0
	return c
}

// lateEventWindow is how much older than its life a failed payment may be
// and still be taken for one whose event is late: Stripe retries a
// delivery for up to three days.
const lateEventWindow = 72 * time.Hour

// lateForThisLife reports whether a failed payment Stripe lists was
// created recently enough that its failure event may simply not have
// come yet: no earlier than lateEventWindow before the life's first
// failure. One of unknown age is not.
func lateForThisLife(s *RecoveryState, p activities.UnpaidPayment) bool {
	if p.Created <= 0 {
		return false
	}
	return !time.Unix(p.Created, 0).Before(s.FirstFailureAt.Add(-lateEventWindow))
}

// adoptedAlready reports whether a failure event describes the decline
// that the life adopted from Stripe's list: the same charge, or, where a
// charge is not named on both, an event created no later than the
// adoption, whose failure the list already showed. An event naming
// another charge is another decline (an earlier attempt on the intent,
// whose event is later still, say), however old: it is applied as any
// late event is, so that its card is counted and held.
func adoptedAlready(in *Intent, f PaymentFailedSignal) bool {
	if in.AdoptedAt.IsZero() {
		return false
	}
	if c := f.Intent.Decline.Charge; c != "" && in.AdoptedCharge != "" {
		return c == in.AdoptedCharge
	}
	return !f.Created.After(in.AdoptedAt)
}

// mustConfirmRecovered reports whether a life about to end as recovered
// asks Stripe first: one whose customer was told of a failure, and is
// about to hear that it is over.
func (r *recovery) mustConfirmRecovered() bool {
	return r.cards() && r.s.Stage == StagePastDue && r.s.PastDueNoticeSent && !forgivenOnly(&r.s)
}

// mustConfirmResumed reports whether a suspended life about to resume
// the customer and end as recovered asks Stripe first.
func (r *recovery) mustConfirmResumed() bool {
	return r.cards() && r.s.Stage == StageSuspended && !forgivenOnly(&r.s)
}

// reopen gives a suspended customer's resources back and takes the life
// on past due (reopenDue says when): the failures not yet told are told
// by the step that follows at once, each by a payment_failed notice of its
// own that moves the suspension to no sooner than the notice lead after
// it (tellJoined). Ops hear why the account came back without the
// recovery's end.
func (r *recovery) reopen(ctx workflow.Context) error {
	ok, err := r.controlPlaneSafe(ctx, "resume", "paid what the suspension was for")
	if err != nil || !ok {
		return err // paused for an operator
	}
	key := r.stageKey("resumed", "notice")
	alertKey := r.key("reopened", fmt.Sprint(r.s.Reopened), "alert")
	r.s.Reopened++
	r.s.Stage, r.s.DeprovisionAt = StagePastDue, time.Time{}
	var left, inFlight []string
	for _, in := range r.s.Intents {
		switch {
		case in.State == IntentInFlight:
			// Not a failure: told only if it fails.
			inFlight = append(inFlight, fmt.Sprintf("%s %s", in.ID, money(in.Amount, in.Currency)))
		case unsettled(in):
			left = append(left, fmt.Sprintf("%s %s", in.ID, money(in.Amount, in.Currency)))
		}
	}
	lead := leadAfterNotice(r.s.Settings).String()
	why := "Stripe shows further failed payments: " + strings.Join(left, ", ") +
		". The customer is told of each by a notice of its own and is not suspended for it before " + lead + " after that notice."
	reason := "The payment your account was suspended for is settled. A further payment failed; you will hear of it separately."
	if len(inFlight) > 0 {
		still := "Still in flight, never told as failed: " + strings.Join(inFlight, ", ") +
			"; the customer is told of each only if it fails, and is not suspended for it before " + lead + " after that notice."
		if len(left) == 0 {
			why, reason = still, "The payment your account was suspended for is settled."
		} else {
			why += " " + still
		}
	}
	if len(left) == 0 && len(inFlight) == 0 {
		why = "Stripe has not confirmed that nothing else is unpaid (no answer, or an open invoice whose payment it does not name: see the Recovery not confirmed alert); " +
			"the recovery ends as recovered once it does."
		reason = "The payment your account was suspended for is settled."
	}
	r.record(ctx, "decision", "resume", "the account is given back; the life goes on past due: "+why, false)
	r.noticeSafe(ctx, "account_resumed", key, reason, nil, nil, "")
	r.alert(ctx, "warning", alertKey, "Resumed, still past due: "+r.s.StripeCustomerID,
		"The customer paid what the suspension was for and the account is given back. "+why)
	r.wake = true
	return r.upsertAttributes(ctx)
}

// stageKey is the key of a suspension's or resume's notice or alert:
// the life's first of each keeps the key it always had; those after the
// life reopened (reopen) take the count, so that one key never carries
// two notices.
func (r *recovery) stageKey(stage, kind string) string {
	if r.s.Reopened == 0 {
		return r.key(stage, kind)
	}
	return r.key(stage, fmt.Sprint(r.s.Reopened), kind)
}

// confirmRecovered asks Stripe for the customer's failed, unpaid payments
// that no event has brought, and takes them up; it reports whether the
// life may end as recovered now.
//
// When Stripe gives no answer, the life waits and asks again rather than
// end: "recovered" tells the customer that nothing more is owed, which no
// one knows then, and a wrong "you're all set" followed by "payment
// failed" costs more trust than a confirmation that comes some minutes
// late. Waiting costs the customer nothing: the account is not
// suspended, nothing is charged, and a payment or a failure that comes
// meanwhile is applied as ever. Ops hear of a wait past the re-check
// bound (at once of a refusal, which waiting does not mend), so that a
// Stripe that stays down does not hold the notice unseen.
func (r *recovery) confirmRecovered(ctx workflow.Context) bool {
	began := workflow.Now(ctx)
	r.busy, r.paidMeanwhile = takeConfirmRecovered, []string{}
	var found activities.Unpaid
	err := workflow.ExecuteActivity(r.recheckCtx(ctx), a.UnpaidPayments, activities.UnpaidInput{StripeCustomerID: r.s.StripeCustomerID}).Get(ctx, &found)
	r.busy = ""
	// Decided on what came in while Stripe was asked: a payment of what
	// the list shows unpaid, a failure that joins, an operator's control.
	if r.drain(ctx) {
		r.wake = true
	}
	paid := r.paidMeanwhile
	r.paidMeanwhile = nil
	if unsettledCount(&r.s) > 0 {
		r.clearHold()
		return false
	}
	if err != nil {
		r.record(ctx, "other unpaid payments", r.s.StripeCustomerID, "no answer: "+errText(err), false)
		r.holdRecovered(ctx, began, isRejected(err), "Stripe could not be asked for the customer's other unpaid payments ("+errText(err)+")")
		return false
	}
	c := decideEnd(&r.s, found, paid)
	if found.DryRun {
		r.record(ctx, "other unpaid payments", r.s.StripeCustomerID, "not looked up", true)
	}
	for _, left := range c.Left {
		r.record(ctx, "other unpaid payments", left, "left out", false)
	}
	for _, p := range c.Adopt {
		r.adopt(ctx, p)
	}
	if len(c.Older) > 0 {
		r.tellOlderUnpaid(ctx, c.Older)
	}
	if len(c.Hold) > 0 {
		var names []string
		for _, p := range c.Hold {
			names = append(names, p.InvoiceID+" ("+p.Why+")")
		}
		r.holdRecovered(ctx, began, true, "Stripe shows unpaid invoices whose payment it does not name: "+strings.Join(names, ", ")+
			". Settle, void or write them off in Stripe")
		return false
	}
	r.clearHold()
	if !c.End {
		r.wake = true
		return false
	}
	r.record(ctx, "other unpaid payments", r.s.StripeCustomerID, "none", false)
	return true
}

// adopt takes a failed payment found in Stripe into the life, as its
// failure event would have: the intent is owed, its decline is applied
// to its card (classified as the event's would be, and counted as an
// attempt), and it waits for the life's next retry: nothing is charged
// at once on a card that just declined.
func (r *recovery) adopt(ctx workflow.Context, p activities.UnpaidPayment) {
	now := workflow.Now(ctx)
	failed := now
	if p.Created > 0 {
		failed = time.Unix(p.Created, 0).UTC()
	}
	decline := firstNonEmpty(p.Decline.DeclineCode, p.Decline.Code)
	in := &Intent{
		ID: p.IntentID, Amount: p.Amount, Currency: p.Currency, InvoiceID: p.InvoiceID, PaymentMethodID: p.PaymentMethodID,
		State: IntentOpen, FailedAt: failed, LastDecline: decline, LastEventAt: failed,
		AdoptedAt: now, AdoptedCharge: p.Decline.Charge,
	}
	r.s.Intents = append(r.s.Intents, in)
	r.countFailed(ctx, in)
	r.markJoined(ctx, in)
	r.record(ctx, "payment failed", fmt.Sprintf("%s %s (%s)", p.IntentID, money(p.Amount, p.Currency), firstNonEmpty(decline, p.Status)),
		"found unpaid in stripe before its event: "+p.Why, false)
	if p.Decline != (activities.Decline{}) {
		pm := firstNonEmpty(p.Decline.PaymentMethod, p.PaymentMethodID)
		r.cardDeclined(ctx, in, p.Decline, pm, adoptedAttemptAt(card(&r.s, firstNonEmpty(p.Decline.Fingerprint, pm)), now), true)
	}
	if p.Status == "requires_action" {
		in.NeedsAction = true
	}
	done, at := retryAfterAdoption(&r.s, now)
	deadline := r.takeAwayAt()
	if lead := now.Add(leadAfterNotice(r.s.Settings)); in.Untold && r.s.Stage == StagePastDue && !deadline.IsZero() && lead.After(deadline) {
		// The customer is told of it next, and the suspension moves to
		// no sooner than the notice lead after (tellJoined).
		deadline = lead
	}
	if d, t := retryAfterMissed(&r.s, now, deadline, true); (d != done || !t.Equal(at)) && r.version(ctx, oneRetryForMissedChange, 1) == 1 {
		// Put off past the suspension, the retries the end held over
		// would never be made: one is still owed before it.
		done, at = d, t
	}
	if !at.Equal(r.s.RetryAt) {
		r.record(ctx, "retry schedule", p.IntentID, "retries that fell due with nothing owed are not made up at once: the next at "+
			at.UTC().Format(time.RFC3339), false)
		r.s.RetriesDone, r.s.RetryAt = done, at
	}
}

// retryAfterAdoption is the life's scheduled retry once a payment is
// adopted at now: as it was, unless it fell due while nothing was owed
// (the end held for Stripe, or paused). Those retries are not made up
// in a burst on the card that just declined: the next is the first of
// the schedule still ahead, or, when every one has passed, one more, as
// long after now as the schedule waits after a first failure. It
// returns the retries counted done and the time.
func retryAfterAdoption(s *RecoveryState, now time.Time) (int, time.Time) {
	sched := s.Settings.RetrySchedule
	done, at := s.RetriesDone, s.RetryAt
	if at.IsZero() || at.After(now) || len(sched) == 0 {
		return done, at
	}
	for !at.After(now) {
		done++
		if done >= len(sched) {
			return len(sched) - 1, now.Add(sched[0])
		}
		at = s.FirstFailureAt.Add(sched[done] + s.PausedTotal)
	}
	return done, at
}

// adoptedAttemptAt is when an adopted decline counts as an attempt on its
// card c (nil when the life knows none): now, or the first instant after
// it that the card has no attempt at. cardDeclined takes an attempt at an
// instant already counted for the same one, and two payments adopted
// from one list on one card are two attempts.
func adoptedAttemptAt(c *CardRecord, now time.Time) time.Time {
	at := now
	for c != nil && slices.ContainsFunc(c.Attempts, at.Equal) {
		at = at.Add(time.Nanosecond)
	}
	return at
}

// tellOlderUnpaid records the failed payments Stripe still shows unpaid
// that are older than this life, and tells ops once per life: dunning
// does not charge them (a debt left by an earlier life, or one that was
// never dunning's), and the customer hears that this recovery is over.
// A later end of the same life records them again without a second
// alert, whose text could differ under the same key.
func (r *recovery) tellOlderUnpaid(ctx workflow.Context, older []activities.UnpaidPayment) {
	var names []string
	for _, p := range older {
		name := firstNonEmpty(p.IntentID, p.InvoiceID)
		created := "of unknown date"
		if p.Created > 0 {
			created = "created " + time.Unix(p.Created, 0).UTC().Format(time.RFC3339)
		}
		r.record(ctx, "other unpaid payments", name+" "+money(p.Amount, p.Currency), "older than this life ("+created+"): not charged by dunning", false)
		names = append(names, fmt.Sprintf("%s %s (%s; %s)", name, money(p.Amount, p.Currency), created, p.Why))
	}
	if r.s.OlderUnpaidTold {
		return
	}
	r.s.OlderUnpaidTold = true
	r.alert(ctx, "warning", r.key("recovered", "older-unpaid"), "Older unpaid payments: "+r.s.StripeCustomerID,
		fmt.Sprintf("Every payment of this recovery is settled, but Stripe still shows failed, unpaid payments older than it (begun %s): %s. "+
			"dunning does not charge them: a payment whose failure event was missed, or a debt an earlier recovery left unpaid. Collect, void or write them off in Stripe.",
			r.s.FirstFailureAt.UTC().Format(time.RFC3339), strings.Join(names, ", ")))
}

// holdRecovered keeps a settled life from ending as recovered until
// Stripe is asked again, and tells ops once (at once when waiting will
// not mend it).
func (r *recovery) holdRecovered(ctx workflow.Context, began time.Time, refused bool, why string) {
	now := workflow.Now(ctx)
	if r.s.UnpaidHeldSince.IsZero() {
		r.s.UnpaidHeldSince = began
	}
	wait := min(time.Minute, recheckAlertAfter(&r.s))
	if refused {
		wait = unpaidRefusedWait
	}
	r.s.UnpaidReadAt = now.Add(wait)
	r.record(ctx, "decision", "recovered", "held: "+why, false)
	if r.s.UnpaidHeldAlerted || !(refused || now.Sub(r.s.UnpaidHeldSince) >= recheckAlertAfter(&r.s)) {
		return
	}
	r.s.UnpaidHeldAlerted = true
	r.alert(ctx, "critical", r.key("recovered-held", fmt.Sprint(r.s.UnpaidHeldSince.Unix())), "Recovery not confirmed: "+r.s.StripeCustomerID,
		fmt.Sprintf("Every payment dunning knows of is settled, but %s, since %s. The customer is not told that the recovery is over until Stripe answers; dunning asks again at %s.",
			why, r.s.UnpaidHeldSince.UTC().Format(time.RFC3339), r.s.UnpaidReadAt.UTC().Format(time.RFC3339)))
}

func (r *recovery) clearHold() {
	r.s.UnpaidReadAt, r.s.UnpaidHeldSince, r.s.UnpaidHeldAlerted = time.Time{}, time.Time{}, false
}
