package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"dunning/activities"
)

// The money rules (DESIGN.md), as the recovery keeps them from version
// moneyRulesChange on. Lives recorded before it replay through the
// functions of recovery.go that these replace; see step.

const (
	moneyRulesChange = "money-rules"
	// moneyRules is the newest version: 1 decides every step on fresh
	// state; 2 adds the card-network rules (decline classes, per-card
	// limits, retries only when what would be charged changed).
	moneyRules = 2
	cardRules  = 2
	// adoptMoneyRulesChange moves a life begun before the money rules onto
	// them (by continue-as-new) at its next wake.
	adoptMoneyRulesChange = "adopt-money-rules"
	// settleOnFreshStateChange applies the signals accepted while a step
	// waited on activities before the life ends as settled; lives recorded
	// before it ended on the state the step began with.
	settleOnFreshStateChange = "settle-on-fresh-state"
	// waiverNoticeChange tells the customer of a waiver (the resume it
	// brings, or the debt forgiven); lives recorded before it only
	// alerted ops.
	waiverNoticeChange = "waiver-notice"
	// waiverTakenMidStepChange carries out a waiver applied during a step
	// at once; before, it waited for another wake.
	waiverTakenMidStepChange = "waiver-taken-mid-step"
	// lifeIDChange names a life by its run as well as its second: lives
	// begun before it are named by the second alone.
	lifeIDChange = "life-id-run"
	// takeAwayOnCheckedStateChange decides a take-away only on intents the
	// re-check just asked about (one that joins while it runs is asked
	// first), and ends a life whose take-away the re-check called off
	// through recoverSafe; before, such a life ended through recover,
	// which reported a written-off debt as recovered and dropped a notice
	// the mailer refused.
	takeAwayOnCheckedStateChange = "take-away-on-checked-state"
	// controlKeyPerRequestChange gives the next control-plane call of an
	// action a new key once one has failed: the next is built anew (amount
	// owed, time) and one key never carries two bodies. Before, the index
	// moved on success only.
	controlKeyPerRequestChange = "control-key-per-request"
	// paidWhilePausedChange tells ops when a suspended customer has paid
	// while the recovery is paused: the resume waits for the operator.
	paidWhilePausedChange = "paid-while-paused"
	// waiverKeepsInFlightChange leaves a payment in flight out of a
	// waiver: kept if it succeeds, forgiven if it fails. Before, the
	// waiver forgave it with the money on its way.
	waiverKeepsInFlightChange = "waiver-keeps-in-flight"
	// readDeclinedChargeChange reads the charge of a decline an event only
	// named before the card is tried again; before, the decline stood as
	// the event's error gave it, and a stop that only the charge's outcome
	// carried was missed.
	readDeclinedChargeChange = "read-declined-charge"
	// freshDataChange confirms a card held for new data with a payment
	// method other than those that carried the refused data: the same card
	// entered again. Before, only the network's automatic update of the
	// held payment method lifted the hold.
	freshDataChange = "fresh-data-lifts-new-data-hold"
	// profileBeforeTakeAwayChange reads the customer again before a
	// take-away when the first read failed: the product's ID (the
	// metadata key's value) names whom the control plane suspends and
	// whose invoices Amberflo is asked about. Before, the life went on
	// with the Stripe ID.
	profileBeforeTakeAwayChange = "profile-before-take-away"
	// unansweredConfirmCountsChange counts a confirm that got no answer
	// (it may have reached the card network) against the card's limit;
	// before, only a confirm Stripe answered was counted.
	unansweredConfirmCountsChange = "unanswered-confirm-counts"
	// refusedMethodChange decides a charge again at once, on fresh state,
	// when Stripe refuses the payment method the owed check chose (the
	// customer removed or replaced it since): nothing was charged and the
	// card was not declined. A second refusal in the round reaches ops.
	// Before, the refusal alerted as a rejected retry and the charge
	// waited for the next round.
	refusedMethodChange = "refused-method-decides-again"
	// unusableMethodsChange keeps the payment methods Stripe will not
	// charge (removed by the customer, refused at a confirm) out of what
	// retry_now and the status present as charged. Before, a stopped card
	// the customer removed still held retry_now, and a card Stripe refused
	// was named as what a confirm charges.
	unusableMethodsChange = "unusable-methods-not-charged"
	// retryNowJoinsRoundChange takes a retry_now accepted while a retry
	// round ran (a confirm under way, say) as that round: another runs at
	// once only if a card event during it changed what would be charged,
	// and then as a card update's round, which never charges again the
	// card that was just tried. A retry_now sent as a signal during the
	// round is applied at its end, as taken in it. Before, such a
	// retry_now ran a whole round more right after the first, on the
	// card just declined.
	retryNowJoinsRoundChange = "retry-now-joins-the-round"
	// offboardOnFreshStateChange parts the Amberflo step of deprovisioning
	// in two: the customer is deactivated (reversible), then the money is
	// asked about again and every signal and update accepted meanwhile
	// applied, and only then is its lifecycle stage moved to OFFBOARDED,
	// which Amberflo never moves back. A customer who paid, or whose debt
	// an operator waived, while the deactivation ran (through an Amberflo
	// outage, say) is never OFFBOARDED. Before, one activity did both.
	offboardOnFreshStateChange = "offboard-on-fresh-state"
	// lateMoneyOnceChange tells ops once of a payment, after
	// deprovisioning, of an intent that was forgiven (waived while the
	// Amberflo customer was deactivated, say) or canceled: it is money
	// after the end as a forgiven intent paid. Before, the same payment
	// was told twice, also as paid after deprovisioning.
	lateMoneyOnceChange = "late-money-once"
	// autoUpdateOutlivesRoundChange keeps the automatic updates of a card
	// that came during a card update's round, after its last read (while
	// its last confirm ran), for the card round they ask for. Since
	// retryNowJoinsRoundChange applies them right after the round, before
	// the round's own updates are forgotten, they were forgotten with them,
	// and the card was taken for the one just tried, unchanged.
	autoUpdateOutlivesRoundChange = "auto-update-outlives-the-round"
	// retryNowAfterUnchangedRoundChange runs the retry an operator asked
	// during a card update's round when that round charged nothing,
	// because what it would charge had not changed (a card added but not
	// made the default, say). Before, retry-now-joins-the-round took the
	// retry_now for that round all the same: the operator was told the
	// round was the retry asked, and nothing was retried.
	retryNowAfterUnchangedRoundChange = "retry-now-after-an-unchanged-card-round"
	// retryNowAfterChargesChange runs, once the round ends, a retry_now
	// an operator sent during a retry round after its confirms were done
	// (the round telling the customer of a decline, say) when no confirm
	// began after it: the operator asked for a charge after the round's
	// own, likely on hearing the funds are there. Before, the round took
	// it all the same; nothing was charged, and the customer could be
	// suspended at the deadline with the retry asked never made.
	retryNowAfterChargesChange = "retry-now-after-the-rounds-charges"
	// waiverFindsLateMoneyChange tells ops of an intent that a waiver
	// taken during the Amberflo deactivation found paid in Stripe: money
	// after the end. Before, it was resolved as paid and told to no one,
	// while the deprovisioning alert pointed to a money-after-the-end
	// alert that never came.
	waiverFindsLateMoneyChange = "waiver-finds-late-money"
	// moneyKeptChange keeps the money that paid an intent where dunning
	// learns it: what a confirm that succeeded took (amount_received,
	// less than what failed when a credit note lowered the debt), and
	// what Amberflo says settled the invoice, or that nobody said how
	// much. Before, the amount that failed stood for both.
	moneyKeptChange = "money-kept"
	// creditedLifeWaivedChange ends a life that Stripe settled without
	// money (credit notes, the credit balance) as waived: its stage is
	// waived, the customer told of the failure hears payment_waived, and
	// ops a waiver. Before, the stage was recovered and the customer
	// heard payment_recovered for money never paid, while its outcome
	// said waived.
	creditedLifeWaivedChange = "credited-life-waived"
	// joinedFailureToldChange tells the customer of a failed payment that
	// joins a life after they were told of the first (its own event, or a
	// payment found unpaid in Stripe as the life was about to end), by a
	// payment_failed notice of its own, and moves the suspension to no
	// sooner than the notice lead after it; nothing is taken away while
	// such a failure is untold. Before, the customer heard only of the
	// first failure, and could be suspended at once, on its deadline, for
	// a payment they never heard had failed.
	joinedFailureToldChange = "joined-failure-told"
	// olderFailureKeepsLatestChange applies a failure event older than the
	// newest applied to its intent only to its own card (its attempt
	// counted, a stop held): the intent keeps its newer decline and
	// payment method. Before, the older decline replaced them, and the
	// next retry charged the card it named.
	olderFailureKeepsLatestChange = "older-failure-keeps-latest-decline"
	// oneRetryForMissedChange runs one retry for all the scheduled retries
	// whose time passed without their round (a round that ran long, a
	// life woken late), and none at once on a card that declined in the
	// round just ended unless something changed; a retry so put off is
	// still made before the suspension (retryAfterMissed). The adoption
	// of a found payment keeps a retry owed before the suspension too.
	// Before, each missed retry fell due at once, and the card was
	// confirmed once per missed retry, back to back, each with a
	// payment_retry_failed notice.
	oneRetryForMissedChange = "one-retry-for-missed"
	// joinedMovesDeprovisioningChange moves the deprovisioning of a
	// suspended customer told of a failure that joined the life to no
	// sooner than the notice lead after that notice, as
	// joinedFailureToldChange moves the suspension. Before, the notice
	// named the old deadline, which could be an hour after it.
	joinedMovesDeprovisioningChange = "joined-failure-moves-deprovisioning"
	// lateCardEventChange ignores a card event about a payment method
	// that Stripe said since it will not charge (removed by the customer,
	// refused at a confirm): Stripe delivers events out of order, and
	// the newest word about a payment method, by the events' created,
	// stands. Before, an attach or update created before a removal but
	// delivered after it took the removed method back off the unusable
	// list, and retry_now and the status named it as what is charged.
	lateCardEventChange = "card-event-older-than-removal"
	// removalWithMethodLeftChange takes the removal of a payment method
	// while another usable one remains (the event workflow tells it from
	// removalReachesRecoveryChange on): the removed one is recorded as
	// one Stripe will not charge, and retries go on. Before, such a
	// removal never reached the recovery.
	removalWithMethodLeftChange = "removal-with-method-left"
	// removedNeverChargedChange keeps the payment methods the customer
	// removed out of what the owed check may choose to charge, and never
	// confirms with one: when Stripe names only removed ones (its reads
	// lag a removal, or a subscription's default still names one), the
	// customer and ops are told that nothing usable is left. Before, the
	// removed card was confirmed, and Stripe's refusal reached ops as a
	// rejected retry.
	removedNeverChargedChange = "removed-method-never-charged"
	// inFlightFailureToldChange tells the customer of a payment that was
	// in flight (processing: a bank debit, say) when the life's first
	// payment_failed notice went out, and that fails afterwards, by a
	// payment_failed notice of its own, as a failure that joins a told
	// life is told (joined-failure-told): the first notice told of the
	// money owed then, not of it. Before, its failure (its event, a
	// re-check that found it failed, or an event that came while the
	// first notice was at the mailer) made it owed again silently, and
	// the customer could be suspended on the first failure's deadline
	// for a payment they never heard had failed.
	inFlightFailureToldChange = "in-flight-failure-told"
	// untoldAfterRoundChange tells at once, not at the next wake, of a
	// failure that came in while a retry round ran (a payment that was in
	// flight failed, or another joined): the signals the round's end
	// applied woke nothing, and the customer heard of it only at the next
	// retry or deadline.
	untoldAfterRoundChange = "untold-after-round"
	// joinedNoticeRecheckChange asks Stripe about a failed payment that
	// joined a told life before its own payment_failed notice, as the
	// first failure is asked before the first notice: one found in flight
	// (its event said failed, but a bank debit has begun since) is told
	// only if it fails, one found settled is not told. Before, the event
	// alone decided, and a payment that then succeeded had been told as
	// failed.
	joinedNoticeRecheckChange = "joined-notice-rechecked"
	// lateFailureRetryChange gives a failed payment that joins a life
	// after its retry schedule is spent (its own event, one adopted from
	// Stripe's list, one that was in flight, one left as a suspended
	// customer paid) one retry of its own before the take-away it could
	// cause (retryForJoined), set as the customer is told of it. Before,
	// it was told and taken away for without dunning ever retrying it.
	lateFailureRetryChange = "late-failure-gets-a-retry"
	// failedAgainToldChange tells the customer again of a payment they
	// were told had failed (in the life's first notice, or in one of its
	// own) that went in flight since (they paid the open invoice by bank
	// debit, say) and failed again: a payment_failed notice of its own,
	// keyed by the count of such failures, before anything is taken away
	// for it, and no take-away sooner than the notice lead after it.
	// Before, it was owed again silently, and the customer who believed
	// they had paid could be suspended at once on the old deadline.
	failedAgainToldChange = "failed-again-told"
	// joinedRetryBeforeDeadlineChange gives a failed payment that joins a
	// life whose next scheduled retry comes after the take-away it could
	// cause (a schedule longer than the grace period, a deadline set by
	// the notice lead) a round of its own before it, outside the schedule
	// (retryForJoined, JoinedRetryAt). Before, any retry still ahead was
	// taken as covering it, and the customer could be suspended without
	// that payment ever retried.
	joinedRetryBeforeDeadlineChange = "joined-retry-before-deadline"

	// ownDeclineOrdersChange makes a confirm by dunning that declined (a
	// scheduled retry, retry_now, a card update's retry) move its
	// intent's ordering time, as a failure event does: to the decline's
	// time by Stripe's clock where the activity read it, else to when
	// the confirm was sent (ownDeclineOrder). A failure event created
	// before it is then older news, applied only to its own card
	// (older-failure-keeps-latest-decline). Before, only events moved
	// it, and a late event older than dunning's own decline replaced
	// the intent's decline and payment method: a stop decline gave way
	// to an older soft one, and the next retry charged the older card.
	ownDeclineOrdersChange = "own-decline-orders-events"
	// actionAfterInFlightChange asks the customer again to act on a
	// payment they were told had failed, that went in flight since and
	// came back needing their action (the bank asks for 3-D Secure): its
	// payment_intent.requires_action event, or Stripe's answer to any
	// re-check. A payment_action_required notice of its own, keyed by the
	// count of such returns, before anything is taken away, and no
	// take-away sooner than the notice lead after it. Before, the customer
	// was asked only if they never had been for that intent, and the old
	// deadline, passed while it was processing, stood.
	actionAfterInFlightChange = "action-after-inflight-told"
	// retryNowBeforeTakeAwayChange runs a retry_now accepted while the
	// re-check before a take-away ran before the take-away, as it runs
	// when asked a moment earlier: the take-away is deferred, the retry
	// round asked runs at once, and the take-away is decided again after
	// it, on a re-check of its own. Before, the customer was suspended (or
	// deprovisioned) first, on the state from before the retry the
	// operator was told was being made.
	retryNowBeforeTakeAwayChange = "retry-now-before-take-away"
	// waiverSignalledWhileDeprovisioningChange takes a waiver sent as a
	// signal while the control plane deprovisioned, applied once that
	// call returns, as one sent during the Amberflo deactivation that
	// follows: the debt is forgiven and the customer never moved to
	// OFFBOARDED. Before, it was refused as coming after the end, and the
	// customer was OFFBOARDED with the debt standing.
	waiverSignalledWhileDeprovisioningChange = "waiver-signalled-while-deprovisioning"
	// reopenAfterJoinedCheckChange decides again, after Stripe is asked
	// about a failed payment that joined a suspended life and before it is
	// told, whether the life reopens: when a payment of what the
	// suspension was for came in meanwhile, the loop gives the account
	// back first (reopenDue), and the new failure is told past due, with
	// the notice lead before any suspension for it. Before, it was told as
	// a failure of the suspended life, with the deprovisioning as its
	// deadline; told, it held the reopen off for good, and the customer
	// was deprovisioned though the suspension's debt was paid.
	reopenAfterJoinedCheckChange = "reopen-after-joined-check"
	// debitFailureToldChange tells the customer of a bank debit they made
	// after being told a payment failed, when that debit fails too: its
	// payment_intent.processing event (routed to the running recovery
	// only, never starting one) marks the payment in flight, as a re-check
	// finding it processing does, so that its failure is a failure again
	// (failed-again-told); and a failure event of a delayed-notification
	// way to pay (a bank debit), created after the customer was told of
	// the payment, is one even when no processing was seen (its event
	// lost or late). Before, unless a re-check happened to find it
	// processing, the failure was recorded as the one already told: no
	// notice, no lead, and a suspension (or deprovisioning) at once.
	debitFailureToldChange = "debit-failure-told"
)

// removedWhy begins the reason of a payment method the customer removed.
const removedWhy = "removed by the customer"

// removedMethods lists the payment methods the customer removed, as the
// recovery knows them: never charged again.
func removedMethods(s *RecoveryState) []string {
	var out []string
	for _, u := range s.Unusable {
		if strings.HasPrefix(u.Why, removedWhy) {
			out = append(out, u.PaymentMethod)
		}
	}
	return out
}

// tellNoMethodLeft tells the customer and ops that nothing usable is left
// to charge: Stripe named only payment methods the customer removed
// (passed), whose removals were routed as leaving a usable one, so that
// neither has been told yet. Once per removed payment method: the keys
// name them.
func (r *recovery) tellNoMethodLeft(ctx workflow.Context, id string, passed []string) {
	which := strings.Join(passed, ",")
	deadline := r.s.SuspendAt
	if r.s.Stage == StageSuspended {
		deadline = r.s.DeprovisionAt
	}
	r.noticeSafe(ctx, "payment_method_missing", r.key("no-method", which, "notice"),
		"the payment method on file was removed and no other can be charged", nil, &deadline, r.payURL())
	r.alert(ctx, "warning", r.key("no-method", which, "alert"), "No way to pay left: "+r.s.StripeCustomerID,
		fmt.Sprintf("Stripe names only %s, which the customer removed, as what would pay %s; nothing was charged. "+
			"The customer was asked for a new payment method; retries wait for one.", which, id))
}

// retryNowTakenByRound, right after a retry round, applies the controls
// sent as signals while it ran, and settles a retry_now accepted during
// it: the round was the retry asked. Another round runs at once only
// while something is owed and a card event applied during the round asks
// for one (CardRetryAt); it is that card event's round, debounced no
// longer, so it charges only what changed.
func (r *recovery) retryNowTakenByRound(ctx workflow.Context, why string) {
	if !r.cards() || r.version(ctx, retryNowJoinsRoundChange, 1) == workflow.DefaultVersion {
		return
	}
	r.round = why
	r.drain(ctx) // what came in during the round's last waits
	r.round = ""
	if !r.s.RetryNow {
		return
	}
	r.s.RetryNow = false
	outcome := "taken by the " + why + " under way; nothing charged again: no card event changed what would be charged"
	switch {
	case unsettledCount(&r.s) == 0:
		outcome = "taken by the " + why + " under way; nothing is owed any more"
	case why == whyCardUpdate && r.roundConfirms == 0 && r.roundUnchanged > 0 &&
		r.version(ctx, retryNowAfterUnchangedRoundChange, 1) == 1:
		// The card round charged nothing: what it would charge had not
		// changed. That is no retry; the one asked runs now.
		r.s.RetryNow, r.wake = true, true
		outcome = "the " + why + " under way charged nothing (what would be charged had not changed); the retry asked runs now"
	case retryNowAfterCharges(r.retryNowSeen, r.roundConfirms) && r.version(ctx, retryNowAfterChargesChange, 1) == 1:
		// Asked once the round's confirms were done, and none began after:
		// the round was not the retry asked.
		r.s.RetryNow, r.wake = true, true
		outcome = "asked after the " + why + "'s charges, and it began none after: the retry asked runs now"
	case !r.s.CardRetryAt.IsZero():
		r.s.CardRetryAt = workflow.Now(ctx)
		outcome = "taken by the " + why + " under way; a card event came during it: " + whyCardUpdate + " at once"
	}
	r.record(ctx, "operator: retry now", "", outcome, false)
}

// markUnusable records that Stripe will not charge the payment method pm,
// and why, as Stripe said it at created (zero: now): no intent names it as
// what a confirm charges any more.
func (r *recovery) markUnusable(ctx workflow.Context, pm, why string, created time.Time) {
	r.s.Unusable = withUnusable(r.s.Unusable, pm, why, workflow.Now(ctx), created)
	for _, in := range r.s.Intents {
		if unsettled(in) && in.Charge != nil && in.Charge.PaymentMethod == pm {
			in.Charge = &ChargeTarget{} // Stripe names what it charges now
		}
	}
}

// safe reports whether this life follows the money rules.
func (r *recovery) safe() bool { return r.s.Rules >= 1 }

// cards reports whether this life follows the card-network rules.
func (r *recovery) cards() bool { return r.s.Rules >= cardRules }

// freshData reports whether this life lets a payment method with new data
// lift a needs-new-data hold (freshDataChange), as its charge path would
// decide now; for validators, queries and the status, which must not ask.
func (r *recovery) freshData() bool {
	return r.v.known(freshDataChange, 1) != workflow.DefaultVersion
}

// Why a retry round runs.
const (
	whyCardUpdate = "retry after card update"
	whyOperator   = "retry asked by an operator"
	whyHeld       = "retry held for the card network"
	// whyJoined is the round of its own a joined payment is owed before
	// the take-away it could cause (JoinedRetryAt).
	whyJoined = "retry of a joined payment before its deadline"
	// whyCharge is the owed check right before a confirm.
	whyCharge = "before a charge"
	// whyScheduled, with the retry's number, is a scheduled round.
	whyScheduled = "scheduled retry "
)

// cardKey names the card a charge would go to: its fingerprint where
// Stripe gave one, else the payment method.
func cardKey(o activities.Owed) string { return firstNonEmpty(o.Fingerprint, o.PaymentMethod) }

// cardRecord returns the record of a card, made on first use.
func (r *recovery) cardRecord(key, pm string) *CardRecord {
	if c := card(&r.s, key); c != nil {
		if pm != "" {
			c.PaymentMethod = pm
		}
		return c
	}
	c := &CardRecord{Key: key, PaymentMethod: pm}
	r.s.Cards = append(r.s.Cards, c)
	return c
}

// chargeFor bounds one confirm with its retries. Stripe replays the first
// answer to an idempotency key for 24 hours, a 500 included: retried
// without end, a confirm that got a 500 would hold the recovery inside
// the charge for a day, and then charge for real on state a day old (a
// waiver accepted meanwhile, say). Past the bound the attempt is a failed
// one, and the next is decided on fresh state under a key of its own.
const chargeFor = 10 * time.Minute

// chargeCtx is activityCtx bounded by chargeFor.
func chargeCtx(ctx workflow.Context) workflow.Context {
	o := workflow.GetActivityOptions(activityCtx(ctx))
	o.ScheduleToCloseTimeout = chargeFor
	return workflow.WithActivityOptions(ctx, o)
}

// readDeclinedCharge reads the charge of the card's last decline when the
// event that brought it only named it, and applies what it says (a stop
// that only the charge's outcome carries). It reports false when the card
// must not be tried this round: Stripe gave no answer. A charge Stripe
// will not show leaves the decline as the event gave it.
func (r *recovery) readDeclinedCharge(ctx workflow.Context, c *CardRecord, why, id string) bool {
	if c == nil || c.Unread == nil || r.version(ctx, readDeclinedChargeChange, 1) != 1 {
		return true
	}
	var d activities.Decline
	err := workflow.ExecuteActivity(r.recheckCtx(ctx), a.ChargeDecline, *c.Unread).Get(ctx, &d)
	switch {
	case err == nil:
		v := activities.ClassifyDecline(d)
		applyDecline(c, v, firstNonEmpty(d.PaymentMethod, c.Unread.PaymentMethod), workflow.Now(ctx))
		c.Unread = nil
		r.record(ctx, "declined charge read", d.Charge, string(v.Class)+": "+v.Reason, false)
	case isRejected(err):
		c.Unread = nil
		r.record(ctx, "declined charge read", c.Key, "not shown: "+errText(err)+"; the decline stands as the event gave it", false)
	default:
		r.record(ctx, why, id, "not charged: the declined charge could not be read: "+errText(err), false)
		return false
	}
	return true
}

// holdRetryUntil asks for a retry round when a held card may be tried.
func (r *recovery) holdRetryUntil(at time.Time) {
	if !at.IsZero() && (r.s.HeldRetryAt.IsZero() || at.Before(r.s.HeldRetryAt)) {
		r.s.HeldRetryAt = at
	}
}

// recheckCtx is for the reads that decide a charge or a take-away: a
// short schedule (2 minutes, or the alert bound when that is shorter), so
// that a peer that does not answer defers the step instead of holding the
// workflow, and no answer never reads as paid or unpaid.
func (r *recovery) recheckCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		HeartbeatTimeout:       heartbeatTimeout,
		ScheduleToCloseTimeout: min(2*time.Minute, recheckAlertAfter(&r.s)),
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			NonRetryableErrorTypes: []string{activities.ErrStripeRejected, activities.ErrAmberfloRejected, activities.ErrBadInput},
		},
	})
}

// isRejected reports whether an activity failed with a peer's permanent
// answer (a 4xx or something unreadable), as opposed to no answer.
func isRejected(err error) bool {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		return false
	}
	switch app.Type() {
	case activities.ErrStripeRejected, activities.ErrAmberfloRejected, activities.ErrBadInput:
		return true
	}
	return false
}

// methodRefused reports whether an activity failed because Stripe refused
// the payment method a confirm named (activities.StripeRefusal).
func methodRefused(err error) bool {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrStripeRejected || !app.HasDetails() {
		return false
	}
	var refusal activities.StripeRefusal
	return app.Details(&refusal) == nil && refusal.PaymentMethodRefused()
}

// checkOwed asks Stripe whether an intent's money is still owed and
// applies the answer to the intent. It reports the answer, or the error
// when Stripe gave none.
func (r *recovery) checkOwed(ctx workflow.Context, in *Intent, why string) (activities.Owed, error) {
	var o activities.Owed
	oi := r.owedInput(in, why)
	if removed := removedMethods(&r.s); len(removed) > 0 && !oi.SkipCharge && r.cards() &&
		r.version(ctx, removedNeverChargedChange, 1) == 1 {
		oi.Removed = removed
	}
	err := workflow.ExecuteActivity(r.recheckCtx(ctx), a.IntentOwed, oi).Get(ctx, &o)
	return r.applyOwed(ctx, in, why, o, err)
}

// owedInput asks whether an intent is still owed; only a charge needs
// what it would charge.
func (r *recovery) owedInput(in *Intent, why string) activities.OwedInput {
	return activities.OwedInput{
		IntentID: in.ID, StripeCustomerID: r.s.StripeCustomerID, FailedPaymentMethod: in.PaymentMethodID,
		SkipCharge: r.cards() && why != whyCharge,
	}
}

// invoiceFromStripeChange records on an intent that its event gave
// without an invoice (API versions from 2025-03-31.basil) the invoice
// Stripe's read names, so that a later invoice.paid, which names no intent
// in those versions, meets it. Runs before it left the intent without one.
const invoiceFromStripeChange = "invoice-from-stripe"

// applyOwed applies Stripe's answer on an intent (or its lack, err).
func (r *recovery) applyOwed(ctx workflow.Context, in *Intent, why string, o activities.Owed, err error) (activities.Owed, error) {
	if err != nil {
		r.record(ctx, "stripe re-check ("+why+")", in.ID, "no answer: "+errText(err), false)
		return o, err
	}
	now := workflow.Now(ctx)
	in.Checked, in.CheckedAt = o.Verdict+": "+o.Why, now
	if !o.PeriodEnd.IsZero() {
		in.PeriodStart, in.PeriodEnd = o.PeriodStart, o.PeriodEnd
	}
	if o.PayURL != "" {
		in.PayURL = o.PayURL
	}
	if in.InvoiceID == "" && o.InvoiceID != "" && r.version(ctx, invoiceFromStripeChange, 1) == 1 {
		// An event of API version 2025-03-31.basil or later names no
		// invoice on the intent (nor an intent on the invoice): Stripe's
		// read links them, so that the invoice's own events find it.
		in.InvoiceID = o.InvoiceID
	}
	if !unsettled(in) {
		return o, nil // resolved by a signal meanwhile
	}
	by := "stripe (" + o.Why + ", " + why + ")"
	switch o.Verdict {
	case activities.OwedPaid:
		r.resolve(ctx, in, IntentPaid, by)
		in.PaidAmount = o.AmountPaid
	case activities.OwedCanceled:
		r.resolve(ctx, in, IntentCanceled, by)
	case activities.OwedForgiven:
		r.resolve(ctx, in, IntentWaived, by)
	case activities.OwedInFlight:
		r.markInFlight(ctx, in, o.Why)
	case activities.OwedActionRequired:
		wasInFlight := in.State == IntentInFlight
		in.State = IntentOpen
		in.NeedsAction = true
		r.record(ctx, "stripe re-check ("+why+")", in.ID, o.Verdict+": "+o.Why, o.DryRun)
		if wasInFlight {
			r.markActionAgain(ctx, in)
		}
	default:
		wasInFlight := in.State == IntentInFlight
		in.State = IntentOpen
		r.record(ctx, "stripe re-check ("+why+")", in.ID, o.Verdict+": "+o.Why, o.DryRun)
		if wasInFlight {
			r.markFailedAgain(ctx, in)
		}
	}
	return o, nil
}

func (r *recovery) markInFlight(ctx workflow.Context, in *Intent, why string) {
	if in.State != IntentInFlight {
		in.State = IntentInFlight
		in.InFlightSince = workflow.Now(ctx)
		r.record(ctx, "payment in flight", in.ID, why+": waiting for its outcome", false)
	}
}

// checkAmberflo asks Amberflo about the invoice of the intent's period.
// It reports whether the intent was found settled there; a permanent
// error pauses the recovery for an operator (reported as an error), no
// answer is an error too. An intent without a billing period has no
// Amberflo invoice to ask about.
func (r *recovery) checkAmberflo(ctx workflow.Context, in *Intent, why string) (bool, error) {
	if in.PeriodEnd.IsZero() {
		return false, nil
	}
	var inv activities.AmberfloInvoice
	err := workflow.ExecuteActivity(r.recheckCtx(ctx), a.InvoiceForPeriod, activities.AmberfloPeriodInput{
		CustomerID: r.s.CustomerID, PeriodStart: in.PeriodStart, PeriodEnd: in.PeriodEnd,
	}).Get(ctx, &inv)
	period := in.PeriodStart.UTC().Format("2006-01-02") + "…" + in.PeriodEnd.UTC().Format("2006-01-02")
	switch {
	case err != nil:
		r.record(ctx, "amberflo re-check ("+why+")", in.ID+" period "+period, "no usable answer: "+errText(err), false)
		return false, err
	case inv.DryRun:
		r.record(ctx, "amberflo re-check ("+why+")", in.ID+" period "+period, "not looked up", true)
	case !inv.Found:
		r.record(ctx, "amberflo re-check ("+why+")", in.ID+" period "+period, "no invoice for that period", false)
	default:
		r.s.Invoice = &AmberfloInvoice{URI: inv.URI, Amount: inv.Amount, PaymentStatus: inv.PaymentStatus, Paid: inv.Paid}
		r.record(ctx, "amberflo re-check ("+why+")", in.ID+" period "+period, inv.PaymentStatus, false)
		if inv.Paid && unsettled(in) {
			r.resolve(ctx, in, IntentPaid, "amberflo invoice "+inv.PaymentStatus+" ("+why+")")
			if r.version(ctx, moneyKeptChange, 1) == 1 {
				in.PaidAmount, in.PaidAmountUnknown = AmberfloPaid(inv, in.Amount, in.Currency)
				if in.PaidAmountUnknown {
					r.record(ctx, "amberflo settled", in.ID, "for an amount Amberflo did not say: counted apart, not as recovered", false)
				}
			}
			return true, nil
		}
	}
	return false, nil
}

// announceSafe opens the lifecycle: the product's customer ID, then, for
// every intent, whether it is still owed; only money really owed is
// announced to the customer and ops.
func (r *recovery) announceSafe(ctx workflow.Context) error {
	if r.version(ctx, localFirstFailureChange, 1) == 1 {
		r.announceQuick(ctx)
		return nil
	}
	var profile activities.CustomerProfile
	if err := workflow.ExecuteActivity(activityCtx(ctx), a.CustomerProfile, activities.CustomerInput{StripeCustomerID: r.s.StripeCustomerID}).Get(ctx, &profile); err != nil {
		r.record(ctx, "read customer", r.s.StripeCustomerID, "failed: "+errText(err), false)
		profile.CustomerID = r.s.StripeCustomerID
		r.s.ProfileUnread = true
	}
	r.applyProfile(ctx, profile)
	if r.cards() {
		r.carryCardLimits(ctx)
	}
	// An old event may describe an intent paid, forgiven or in flight
	// since. No answer here is recorded: the checks before a charge and
	// before a take-away are the ones that must not be skipped.
	for _, in := range r.s.Intents {
		if unsettled(in) {
			_, _ = r.checkOwed(ctx, in, "at the first failure")
		}
	}
	r.s.Announced = true
	return nil
}

// openWithReads announces a life opened by a failure that brought its
// reads (the event workflow's), in the run's first workflow task, at the
// life's clock at: the reads applied in announceSafe's order, then the
// past-due notice and alert at once, before any other signal is applied.
// Nothing here depends on what the task could see differently if it ran
// again.
func (r *recovery) openWithReads(ctx workflow.Context, in *Intent, reads FirstReads, at time.Time) {
	profile := reads.Profile
	if reads.ProfileErr != "" {
		r.record(ctx, "read customer", r.s.StripeCustomerID, "failed: "+reads.ProfileErr, false)
		profile.CustomerID = r.s.StripeCustomerID
		r.s.ProfileUnread = true
	}
	r.applyProfile(ctx, profile)
	r.applyCardLimits(ctx, reads.Previous, errorOf(reads.PreviousErr))
	if in != nil && unsettled(in) {
		_, _ = r.applyOwed(ctx, in, "at the first failure", reads.Owed, errorOf(reads.OwedErr))
	}
	r.s.Announced = true
	r.tellPastDueAt(ctx, at)
}

func errorOf(s string) error {
	if s == "" {
		return nil
	}
	return errors.New(s)
}

// announceQuick is announceSafe with its reads, which do not depend on
// one another, asked at once as local activities; their answers are
// applied in announceSafe's order, on the state as it is once all are in.
func (r *recovery) announceQuick(ctx workflow.Context) {
	actx := activityCtx(ctx)
	profileCall := startQuick(ctx, actx, a.CustomerProfile, activities.CustomerInput{StripeCustomerID: r.s.StripeCustomerID})
	var prevCall *quickCall
	if r.cards() {
		prevCall = startQuick(ctx, actx, a.EndedRecovery, activities.EndedRecoveryInput{WorkflowID: r.id, Previous: true})
	}
	type owedCall struct {
		in   *Intent
		call *quickCall
	}
	var owed []owedCall
	for _, in := range r.s.Intents {
		if unsettled(in) {
			owed = append(owed, owedCall{in, startQuick(ctx, r.recheckCtx(ctx), a.IntentOwed, r.owedInput(in, "at the first failure"))})
		}
	}

	var profile activities.CustomerProfile
	if err := profileCall.Get(ctx, &profile); err != nil {
		r.record(ctx, "read customer", r.s.StripeCustomerID, "failed: "+errText(err), false)
		profile.CustomerID = r.s.StripeCustomerID
		r.s.ProfileUnread = true
	}
	r.applyProfile(ctx, profile)
	if prevCall != nil {
		var prev activities.EndedRecovery
		err := prevCall.Get(ctx, &prev)
		r.applyCardLimits(ctx, prev, err)
	}
	for _, o := range owed {
		var answer activities.Owed
		err := o.call.Get(ctx, &answer)
		_, _ = r.applyOwed(ctx, o.in, "at the first failure", answer, err)
	}
	r.s.Announced = true
}

// applyProfile takes the product's customer ID from the Stripe customer,
// and asks for a retry at once when the card changed since the failure.
func (r *recovery) applyProfile(ctx workflow.Context, profile activities.CustomerProfile) {
	r.s.CustomerID = profile.CustomerID
	if def := profile.DefaultPaymentMethod; def != "" {
		changed := false
		for _, in := range r.s.Intents {
			if in.State == IntentOpen && in.PaymentMethodID != "" && in.PaymentMethodID != def {
				if r.cards() && !slices.Contains(in.CardUpdates, def) {
					in.CardUpdates = append(in.CardUpdates, def) // for retry_now and the status
				}
				changed = true
			}
		}
		if changed {
			r.s.CardRetryAt = workflow.Now(ctx).Add(r.s.Settings.CardUpdateDebounce)
			r.record(ctx, "card changed since the failure", def, "retry at once", false)
		}
	}
}

// carryCardLimits takes the card-network limits over from the customer's
// previous life: a card tried there counts here, within the same 30 days.
func (r *recovery) carryCardLimits(ctx workflow.Context) {
	var prev activities.EndedRecovery
	err := workflow.ExecuteActivity(activityCtx(ctx), a.EndedRecovery, activities.EndedRecoveryInput{WorkflowID: r.id, Previous: true}).Get(ctx, &prev)
	r.applyCardLimits(ctx, prev, err)
}

// applyCardLimits applies the previous life's answer, or records that
// there was none.
func (r *recovery) applyCardLimits(ctx workflow.Context, prev activities.EndedRecovery, err error) {
	if err != nil {
		r.record(ctx, "card limits of the previous life", "", "not read: "+errText(err), false)
		return
	}
	if len(prev.Result) == 0 {
		return
	}
	var last RecoveryResult
	// Decoding a plain struct is deterministic.
	err = json.Unmarshal(prev.Result, &last) //workflowcheck:ignore
	if err != nil {
		r.record(ctx, "card limits of the previous life", "", "not read: "+err.Error(), false)
		return
	}
	r.respectPrevious(ctx, last)
}

// respectPrevious takes over what the customer's previous life leaves to
// this one: its cards' network limits, and the intents forgiven, which
// are resolved as waived here too. Lives recorded before
// forgivenForeverChange took the cards alone.
func (r *recovery) respectPrevious(ctx workflow.Context, last RecoveryResult) {
	if len(last.Cards) > 0 {
		r.s.Cards = pruneCards(mergeCards(r.s.Cards, last.Cards), workflow.Now(ctx))
		r.record(ctx, "card limits of the previous life", fmt.Sprintf("%d card(s)", len(last.Cards)), "carried over", false)
	}
	ids := forgivenBy(last)
	if len(ids) == 0 || r.version(ctx, forgivenForeverChange, 1) == workflow.DefaultVersion {
		return
	}
	r.s.Forgiven = withForgiven(r.s.Forgiven, ids...)
	r.record(ctx, "intents forgiven by earlier lives", strings.Join(ids, ", "), "never charged again", false)
	for _, in := range r.s.Intents {
		if unsettled(in) && forgiven(&r.s, in.ID) {
			r.resolve(ctx, in, IntentWaived, forgivenEarlier)
		}
	}
}

// tellPastDue sends the past-due notice and alert once there is money
// owed that is not on its way.
func (r *recovery) tellPastDue(ctx workflow.Context) { r.tellPastDueAt(ctx, time.Time{}) }

// tellPastDueAt is tellPastDue; with opening set, in the first workflow
// task of a life opened by a failure that brought its reads, where every
// input of the decision is in the history already (the signal and the
// run's start time) and the notice and alert, as local activities, are
// the same however often the task runs.
func (r *recovery) tellPastDueAt(ctx workflow.Context, opening time.Time) {
	if r.s.PastDueNoticeSent || unpaidCount(&r.s) == 0 {
		return
	}
	r.s.PastDueNoticeSent = true
	r.toldLate(ctx, opening)
	r.markInFlightUntold(ctx)
	amount, currency := r.owed()
	next, deadline := r.s.RetryAt, r.s.SuspendAt
	reason := ""
	for _, in := range r.s.Intents {
		if in.State == IntentOpen && in.Decline != nil && reason == "" {
			reason = activities.DeclineNoticeReason(*in.Decline)
		}
	}
	title := "Payment failed: " + r.s.StripeCustomerID + " is past due"
	text := fmt.Sprintf("%s owed. Retries scheduled; suspension at %s unless paid.", money(amount, currency), deadline.UTC().Format(time.RFC3339))
	if r.version(ctx, localFirstFailureChange, 1) == 1 {
		notice := r.noticeInput(ctx, "payment_failed", r.key("past_due", "notice"), reason, &next, &deadline)
		notice.PayURL = r.payURL()
		alert := r.alertInput("warning", r.key("past_due", "alert"), title, text)
		var noticeCall, alertCall interface {
			Get(workflow.Context, any) error
		}
		if !opening.IsZero() {
			notice.CreatedAt = opening
		}
		if opening.IsZero() && r.version(ctx, toldAfterRecordChange, 1) == 1 {
			// Decided on this task's clock, perhaps on its local reads:
			// both go out as activities, at once, which the task's
			// completion records with every parameter before either is
			// sent.
			noticeCall = workflow.ExecuteActivity(activityCtx(ctx), a.Notice, notice)
			alertCall = workflow.ExecuteActivity(activityCtx(ctx), a.Alert, alert)
		} else {
			// At once, as local activities: at the opening on reads the
			// history holds, or as histories recorded before did.
			noticeCall = startQuick(ctx, activityCtx(ctx), a.Notice, notice)
			alertCall = startQuick(ctx, activityCtx(ctx), a.Alert, alert)
		}
		var sent, alerted activities.NotifyResult
		err := noticeCall.Get(ctx, &sent)
		r.record(ctx, "customer notice "+notice.Type, "", outcomeOf(err, "sent"), sent.DryRun)
		if err != nil {
			r.noticeUndelivered(ctx, notice.Type, notice.Key, err)
		}
		err = alertCall.Get(ctx, &alerted)
		r.record(ctx, "ops alert (warning)", title, outcomeOf(err, "sent"), alerted.DryRun)
		return
	}
	r.noticeSafe(ctx, "payment_failed", r.key("past_due", "notice"), reason, &next, &deadline, r.payURL())
	r.alert(ctx, "warning", r.key("past_due", "alert"), title, text)
}

// toldLate gives the first notice of a life, when it goes out late in
// the grace period (the first failure was in flight until then, say),
// the same notice lead as a joined failure's: the suspension moves to no
// sooner than the lead after it. A notice sent early enough moves
// nothing and asks no version.
func (r *recovery) toldLate(ctx workflow.Context, opening time.Time) {
	now := opening
	if now.IsZero() {
		now = workflow.Now(ctx)
	}
	if !r.safe() || r.s.Stage != StagePastDue || r.s.SuspendAt.IsZero() || !now.Add(leadAfterNotice(r.s.Settings)).After(r.s.SuspendAt) ||
		r.version(ctx, joinedFailureToldChange, 1) != 1 {
		return
	}
	for _, in := range r.s.Intents {
		if in.State == IntentOpen {
			in.ToldAt = now
		}
	}
	at := suspendAtAfterNotice(&r.s)
	r.record(ctx, "suspension moved", "", "to "+at.UTC().Format(time.RFC3339)+": the customer is told of the failure only now", false)
	r.s.SuspendAt = at
}

// markInFlightUntold marks the payments in flight as the life's first
// notice goes out: it tells of the money owed now, not of them. One that
// fails afterwards is told by a notice of its own before anything is
// taken away for it, and the suspension moves to no sooner than the
// notice lead after that (tellJoined); one that succeeds, or is
// otherwise settled, is told nothing. A payment that failed before this
// notice is owed in it, and is not marked. Asked only while a payment is
// in flight, so most lives record no marker.
func (r *recovery) markInFlightUntold(ctx workflow.Context) {
	if !r.safe() || inFlightCount(&r.s) == 0 || r.version(ctx, inFlightFailureToldChange, 1) != 1 {
		return
	}
	var ids []string
	for _, in := range r.s.Intents {
		if in.State == IntentInFlight {
			in.Untold = true
			ids = append(ids, in.ID)
		}
	}
	r.record(ctx, "payment in flight", strings.Join(ids, ", "), "not in the first notice: told by its own if it fails", false)
}

// markFailedAgain marks a payment that was in flight and is found failed
// again (its event, or Stripe's answer to a re-check) when the customer
// was told of its failure already: they are told of this failure too, by
// a notice of its own (tellJoined), before anything is taken away for
// it. A payment in flight that was never told (markInFlightUntold) is
// still untold, and told as such; one that fails before the life's first
// notice is owed in it.
func (r *recovery) markFailedAgain(ctx workflow.Context, in *Intent) {
	// A request to act not yet sent (action-after-inflight-told) gives
	// way to the failure that came since: that is what is told.
	if !r.safe() || !r.s.PastDueNoticeSent || (in.Untold && !in.AskUntold) || in.State != IntentOpen ||
		r.version(ctx, failedAgainToldChange, 1) != 1 {
		return
	}
	if in.AskUntold {
		// The customer authenticated it (it went in flight since) and
		// the payment failed: the bank's request is no longer what holds
		// the retries; a decline that asks again says so itself.
		in.NeedsAction = false
	}
	in.FailedAgain++
	in.Untold, in.AskUntold = true, false
	r.record(ctx, "payment failed again", in.ID, "the customer was told of its failure before it went in flight: told again by a notice of its own", false)
}

// markActionAgain marks a payment that was in flight and is found
// needing the customer's action (its event, or Stripe's answer to a
// re-check) when the customer was told of its failure already: they are
// asked to act by a notice of its own (tellJoined), before anything is
// taken away for it, whether or not they were asked before.
func (r *recovery) markActionAgain(ctx workflow.Context, in *Intent) {
	if !r.safe() || !r.s.PastDueNoticeSent || in.Untold || in.State != IntentOpen ||
		r.version(ctx, actionAfterInFlightChange, 1) != 1 {
		return
	}
	in.ActionAgain++
	in.Untold, in.AskUntold = true, true
	r.record(ctx, "payment needs action again", in.ID, "the customer was told of its failure before it went in flight: asked to act by a notice of its own", false)
}

// onActionRequired applies a payment_intent.requires_action event: a
// payment that was processing needs the customer's action now. It is
// owed again, no off-session retry can pay it, and a customer told of
// it before is asked to act (markActionAgain). Of any other intent the
// event is only recorded: the next re-check decides on what Stripe says.
func (r *recovery) onActionRequired(ctx workflow.Context, a ActionRequiredSignal) {
	if !r.remember(a.EventID) {
		return
	}
	in := r.intent(a.IntentID)
	if r.terminal() || in == nil || in.State != IntentInFlight || a.Created.Before(in.InFlightSince.Add(-time.Minute)) {
		r.record(ctx, "payment needs action", a.IntentID+" (event "+a.EventID+")", "recorded: not a payment in flight here", false)
		return
	}
	in.State, in.InFlightSince, in.InFlightAlerted = IntentOpen, time.Time{}, false
	in.LastEventAt, in.NeedsAction = a.Created, true
	r.record(ctx, "payment in flight needs action", a.IntentID+" (event "+a.EventID+")", "owed again: the bank asks the customer to authenticate", false)
	r.markActionAgain(ctx, in)
}

// onPaymentProcessing applies a payment_intent.processing event: a
// payment owed here is in flight (a bank debit the customer made), as a
// re-check finding it processing marks it. Its failure, when it comes,
// is a failure again (markFailedAgain). An event older than what is
// known of the intent, or of one not owed here, is only recorded.
func (r *recovery) onPaymentProcessing(ctx workflow.Context, p PaymentProcessingSignal) {
	if !r.remember(p.EventID) {
		return
	}
	in := r.intent(p.IntentID)
	if r.terminal() || in == nil || in.State != IntentOpen || p.Created.Before(in.LastEventAt) ||
		r.version(ctx, debitFailureToldChange, 1) != 1 {
		r.record(ctx, "payment processing", p.IntentID+" (event "+p.EventID+")", "recorded: not a payment owed here", false)
		return
	}
	in.LastEventAt = p.Created
	r.markInFlight(ctx, in, "payment_intent.processing (event "+p.EventID+")")
}

// debitFailedAfterNotice reports whether a failure event of an open
// intent is a bank debit's that the customer made after they were told
// of the intent's failure: the way to pay that failed is one whose
// outcome comes days later (activities.DelayedNotification), the event
// was created after the notice, and it is not dunning's own retry. A
// card's decline was seen by the customer as they paid, and stays what
// it was. Asks its version only when all of that holds.
func (r *recovery) debitFailedAfterNotice(ctx workflow.Context, in *Intent, f PaymentFailedSignal) bool {
	if !r.safe() || !r.s.PastDueNoticeSent || in.Untold || isOwnRetry(f) ||
		!activities.DelayedNotification(f.Intent.FailedPaymentMethodType) {
		return false
	}
	told := in.ToldAt
	if told.IsZero() {
		told = in.LastEventAt // the failure the first notice told of
	}
	return f.Created.After(told) && r.version(ctx, debitFailureToldChange, 1) == 1
}

// noticeKey is the key of the notice of a payment's own failure: one per
// failure the customer is told of.
func (r *recovery) noticeKey(in *Intent) string {
	if in.FailedAgain > 0 {
		return r.key("past_due", in.ID, "again", fmt.Sprint(in.FailedAgain), "notice")
	}
	return r.key("past_due", in.ID, "notice")
}

// markJoined marks a failure that joins a life whose customer was told
// of its failures already: the customer is told of it too, before
// anything is taken away (tellJoined).
func (r *recovery) markJoined(ctx workflow.Context, in *Intent) {
	if r.safe() && r.s.PastDueNoticeSent && in.State == IntentOpen && r.version(ctx, joinedFailureToldChange, 1) == 1 {
		in.Untold = true
	}
}

// tellJoined tells the customer, once per intent, of each failed payment
// that joined the life after they were told of the first, and moves the
// suspension to no sooner than the notice lead after it. Stripe is asked
// first (joined-notice-rechecked). A joined payment settled before it was
// told is not told; one in flight is told if it fails. It reports whether anything came in while a notice was sent:
// the step then ends, and the loop decides again on fresh state (a
// payment, a waiver or a pause during the notice).
func (r *recovery) tellJoined(ctx workflow.Context) bool {
	applied := false
	for i := 0; i < len(r.s.Intents); i++ {
		in := r.s.Intents[i]
		if !in.Untold || in.State == IntentInFlight {
			continue
		}
		if in.State == IntentOpen && r.s.Waive == nil && r.version(ctx, joinedNoticeRecheckChange, 1) == 1 {
			// Told on fresh state: no answer tells it as the event said.
			_, _ = r.checkOwed(ctx, in, "before its notice")
			if r.drain(ctx) || r.waivePending() || r.s.Paused {
				r.wake, applied = true, true
			}
			switch {
			case in.State == IntentInFlight:
				r.wake, applied = true, true
				continue // told if it fails
			case in.State != IntentOpen:
				// Settled: nothing to tell, and perhaps nothing owed.
				in.Untold = false
				r.wake, applied = true, true
				continue
			case r.waivePending() || r.s.Paused:
				return applied // the loop decides first; told later, if still owed
			case r.reopenFirst(ctx):
				// Paid what the suspension was for while Stripe was
				// asked: the account comes back first, and this payment
				// is told past due.
				r.wake = true
				return true
			}
		}
		in.Untold = false
		if in.State != IntentOpen || r.s.Waive != nil {
			continue
		}
		now := workflow.Now(ctx)
		in.ToldAt = now
		deadline := r.s.DeprovisionAt
		switch {
		case r.s.Stage == StagePastDue:
			if at := suspendAtAfterNotice(&r.s); !at.Equal(r.s.SuspendAt) {
				r.record(ctx, "suspension moved", in.ID, "to "+at.UTC().Format(time.RFC3339)+
					": the customer is told of this payment only now", false)
				r.s.SuspendAt = at
			}
			deadline = r.s.SuspendAt
		case r.s.Stage == StageSuspended && r.version(ctx, joinedMovesDeprovisioningChange, 1) == 1:
			if at := deprovisionAtAfterNotice(&r.s); !at.Equal(r.s.DeprovisionAt) {
				r.record(ctx, "deprovisioning moved", in.ID, "to "+at.UTC().Format(time.RFC3339)+
					": the customer is told of this payment only now", false)
				r.s.DeprovisionAt = at
			}
			deadline = r.s.DeprovisionAt
		}
		if in.AskUntold {
			// Only the customer can pay it now: asked to act, and no
			// retry of its own.
			r.askAgain(ctx, in, deadline)
			if r.drain(ctx) || r.waivePending() || r.s.Paused {
				r.wake, applied = true, true
			}
			continue
		}
		done, at, own := retryForJoined(&r.s, now, deadline)
		if (done != r.s.RetriesDone || !at.Equal(r.s.RetryAt)) && r.version(ctx, lateFailureRetryChange, 1) == 1 {
			// The schedule is spent: this payment gets one retry of its
			// own before the take-away, named in its notice.
			r.record(ctx, "retry schedule", in.ID, "joined after the schedule was spent: one retry of its own at "+
				at.UTC().Format(time.RFC3339)+", before the "+deadline.UTC().Format(time.RFC3339)+" deadline", false)
			r.s.RetriesDone, r.s.RetryAt = done, at
		}
		if !own.Equal(r.s.JoinedRetryAt) && r.version(ctx, joinedRetryBeforeDeadlineChange, 1) == 1 {
			// The schedule's next comes after the take-away: a round of
			// its own before it, named in its notice; the schedule goes
			// on as it was.
			r.record(ctx, "retry schedule", in.ID, "the schedule's next retry, at "+r.s.RetryAt.UTC().Format(time.RFC3339)+
				", comes after the "+deadline.UTC().Format(time.RFC3339)+" deadline: a retry of its own at "+
				own.UTC().Format(time.RFC3339)+", outside the schedule", false)
			r.s.JoinedRetryAt = own
		}
		reason := ""
		if in.Decline != nil {
			reason = activities.DeclineNoticeReason(*in.Decline) + " "
		}
		total, currency := r.owed()
		if in.FailedAgain > 0 {
			// The customer paid it, they believe: the payment they made
			// failed, the same debt is owed still.
			reason += fmt.Sprintf("Your payment of %s (%s), which was processing, failed; %s is owed in all.", money(in.Amount, in.Currency), in.ID, money(total, currency))
		} else {
			reason += fmt.Sprintf("A further payment of %s (%s) failed; %s is owed in all.", money(in.Amount, in.Currency), in.ID, money(total, currency))
		}
		next := r.s.RetryAt
		if !r.s.JoinedRetryAt.IsZero() && (next.IsZero() || r.s.JoinedRetryAt.Before(next)) {
			next = r.s.JoinedRetryAt
		}
		notice := r.noticeInput(ctx, "payment_failed", r.noticeKey(in), reason, &next, &deadline)
		// The notice names the payment it is about, and where to pay it.
		notice.AmountDue, notice.Currency = in.Amount, in.Currency
		notice.PayURL = firstNonEmpty(in.PayURL, r.payURL())
		if err := r.sendNotice(ctx, notice); err != nil {
			r.noticeUndelivered(ctx, notice.Type, notice.Key, err)
		}
		// Decided again on what came in while the mailer answered: a
		// payment (a signal), a waiver or a pause (an update, taken at
		// once).
		if r.drain(ctx) || r.waivePending() || r.s.Paused {
			r.wake, applied = true, true
		}
	}
	return applied
}

// reopenFirst reports whether a suspended life reopens before a joined
// failure is told (reopen-after-joined-check): what came in while Stripe
// was asked about it settled every payment the customer was told of.
// Asked only then, so that a life where it changes nothing records no
// marker.
func (r *recovery) reopenFirst(ctx workflow.Context) bool {
	return r.cards() && reopenDue(&r.s) &&
		r.version(ctx, reopenAfterJoinedCheckChange, 1) == 1 &&
		r.version(ctx, unpaidBeforeResumeChange, 1) == 1
}

// askAgain asks the customer to act on a payment they made, which was
// processing and now needs their bank's authentication
// (action-after-inflight-told): a payment_action_required notice of its
// own, one per such return, naming the deadline the notice moved. It
// stands for the one askToAuthenticate sends when none was.
func (r *recovery) askAgain(ctx workflow.Context, in *Intent, deadline time.Time) {
	in.AskUntold, in.ActionNoticeSent = false, true
	total, currency := r.owed()
	reason := fmt.Sprintf("Your payment of %s (%s), which was processing, needs you to confirm it with your bank; %s is owed in all.",
		money(in.Amount, in.Currency), in.ID, money(total, currency))
	notice := r.noticeInput(ctx, "payment_action_required", r.key("action", in.ID, "again", fmt.Sprint(in.ActionAgain), "notice"), reason, nil, &deadline)
	notice.AmountDue, notice.Currency = in.Amount, in.Currency
	notice.PayURL = firstNonEmpty(in.PayURL, r.payURL())
	if err := r.sendNotice(ctx, notice); err != nil {
		r.noticeUndelivered(ctx, notice.Type, notice.Key, err)
	}
}

// payURL is the page where the customer pays the first open intent's
// invoice, if Stripe gave one.
func (r *recovery) payURL() string {
	for _, in := range r.s.Intents {
		if in.State == IntentOpen && in.PayURL != "" {
			return in.PayURL
		}
	}
	return ""
}

// askToAuthenticate tells the customer, once per intent, that the bank
// wants them to complete the payment themselves.
func (r *recovery) askToAuthenticate(ctx workflow.Context) {
	for _, in := range r.s.Intents {
		if in.State != IntentOpen || !in.NeedsAction || in.ActionNoticeSent {
			continue
		}
		in.ActionNoticeSent = true
		deadline := r.s.SuspendAt
		r.noticeSafe(ctx, "payment_action_required", r.key("action", in.ID, "notice"),
			"your bank asks you to confirm the payment "+in.ID, nil, &deadline, in.PayURL)
	}
}

// alertInFlight tells ops, once per intent, of a payment that stays in
// flight past the bound.
func (r *recovery) alertInFlight(ctx workflow.Context) {
	due, _ := inFlightAlertDue(&r.s, workflow.Now(ctx))
	for _, in := range due {
		in.InFlightAlerted = true
		r.alert(ctx, "warning", r.key("in-flight", in.ID, "alert"), "Payment still in flight: "+r.s.StripeCustomerID,
			fmt.Sprintf("%s %s has been processing since %s. dunning neither retries nor suspends for it; check it in Stripe.",
				in.ID, money(in.Amount, in.Currency), in.InFlightSince.UTC().Format(time.RFC3339)))
	}
}

// alertLateMoney raises a critical alert for each payment that arrived
// after the debt was forgiven or the customer deprovisioned.
func (r *recovery) alertLateMoney(ctx workflow.Context) {
	for len(r.s.LateMoney) > 0 {
		what := r.s.LateMoney[0]
		r.s.LateMoney = r.s.LateMoney[1:]
		r.s.LateMoneyAlerts++
		text := what + ". dunning took no action; refund or restore by hand."
		if r.s.AmberfloEnd != "" {
			// What deprovisioning left in Amberflo, so that whoever
			// restores the account knows what to undo there.
			text = what + ". " + r.s.AmberfloEnd + ". dunning took no other action; refund or restore by hand."
		}
		r.alert(ctx, "critical", r.key("late-money", fmt.Sprint(r.s.LateMoneyAlerts)), "Money after the end: "+r.s.StripeCustomerID, text)
	}
}

// retryRound tries every intent that may be charged, deciding each charge
// on the state as it is right before it: signals are applied and the
// waiver, pause and stage checked again after every wait. An intent whose
// payment method Stripe refused is decided once more, at the end of the
// round.
func (r *recovery) retryRound(ctx workflow.Context, why string) error {
	r.round = why
	defer func() { r.round = "" }()
	r.s.RetryRounds++
	r.roundConfirms, r.roundUnchanged, r.roundDeclined = 0, 0, 0
	r.retryNowSeen = nil
	declined := 0
	defer func() { r.roundDeclined = declined }()
	var lastDecline *activities.DeclineVerdict
	ids := retryable(&r.s)
	decidedAgain := map[string]bool{}
	for i := 0; i < len(ids); i++ {
		id := ids[i]
		r.drain(ctx)
		in := r.intent(id)
		if reason := blockCharge(&r.s, in); reason != "" {
			r.record(ctx, why, id, "not charged: "+reason, false)
			continue
		}
		o, err := r.checkOwed(ctx, in, whyCharge)
		if err != nil {
			if isRejected(err) {
				return r.pauseForOperator(ctx, "stripe re-check of "+id+" failed: "+errText(err))
			}
			continue // no answer: no charge this round
		}
		if o.Verdict != activities.OwedYes {
			continue
		}
		passed := o.Passed
		if r.cards() && slices.Contains(removedMethods(&r.s), o.PaymentMethod) &&
			r.version(ctx, removedNeverChargedChange, 1) == 1 {
			// Stripe named a payment method the customer removed (an
			// activity that did not pass over it): it is not charged.
			passed = append(passed, o.PaymentMethod)
			o.PaymentMethod, o.PaymentMethodSource, o.Fingerprint = "", "", ""
		}
		if r.cards() && o.PaymentMethod != "" && !o.DryRun {
			// What a confirm charges now, for retry_now and the status; a
			// card event applied from here on makes it uncertain again.
			in.Charge, in.CardUpdates = &ChargeTarget{PaymentMethod: o.PaymentMethod, Card: cardKey(o)}, nil
		}
		if _, err := r.checkAmberflo(ctx, in, "before a charge"); err != nil {
			if isRejected(err) {
				return r.pauseForOperator(ctx, "amberflo re-check of "+id+" failed: "+errText(err))
			}
			continue
		}
		if r.cards() && !r.readDeclinedCharge(ctx, card(&r.s, cardKey(o)), why, id) {
			continue
		}
		// Decide again on what arrived during the checks.
		r.drain(ctx)
		if reason := blockCharge(&r.s, in); reason != "" {
			r.record(ctx, why, id, "not charged: "+reason, false)
			continue
		}
		if o.DryRun {
			r.record(ctx, why, id, "not charged: stripe not configured", true)
			continue
		}
		if o.PaymentMethod == "" {
			r.s.NoPaymentMethod = true
			r.record(ctx, why, id, "no usable payment method", false)
			if fresh := removedUntold(r.s.Unusable, passed); len(fresh) > 0 && r.version(ctx, removedNeverChargedChange, 1) == 1 {
				markTold(r.s.Unusable, fresh)
				r.tellNoMethodLeft(ctx, id, fresh)
			}
			continue
		}
		ck := cardKey(o)
		if r.cards() {
			if why == whyCardUpdate && o.PaymentMethod == in.PaymentMethodID && !slices.Contains(r.s.AutoUpdated, o.PaymentMethod) {
				// An address edit, or a card added but not made the default.
				r.record(ctx, why, id, "not charged: what would be charged has not changed ("+o.PaymentMethod+")", false)
				r.roundUnchanged++
				continue
			}
			// A life recorded before freshDataChange holds the card
			// whatever the payment method; asked only where it matters.
			fresh := !freshData(card(&r.s, ck), o.PaymentMethod) || r.version(ctx, freshDataChange, 1) != workflow.DefaultVersion
			if ok, hold, next := chargeCheck(&r.s, ck, o.PaymentMethod, workflow.Now(ctx), fresh); !ok {
				r.record(ctx, why, id+" with "+o.PaymentMethod, "not charged: "+hold, false)
				r.holdRetryUntil(next)
				continue
			}
		}
		in.Attempts++
		r.roundConfirms++
		key := strings.Join([]string{RetryIdempotencyPrefix, r.s.Lifecycle, in.ID, fmt.Sprint(in.Attempts), o.PaymentMethod}, ":")
		var res activities.RetryResult
		r.busy = takeCharge
		r.charging = fmt.Sprintf("%s with %s (attempt %d)", in.ID, o.PaymentMethod, in.Attempts)
		sent := workflow.Now(ctx)
		err = workflow.ExecuteActivity(chargeCtx(ctx), a.RetryPayment, activities.RetryInput{
			IntentID: in.ID, StripeCustomerID: r.s.StripeCustomerID, IdempotencyKey: key, PaymentMethodID: o.PaymentMethod,
		}).Get(ctx, &res)
		r.busy, r.charging = "", ""
		if err != nil || confirmed(res.Outcome) {
			r.countAttempt(ctx, res, err)
		}
		detail := fmt.Sprintf("%s attempt %d with %s (%s)", in.ID, in.Attempts, o.PaymentMethod, o.PaymentMethodSource)
		if methodRefused(err) && r.version(ctx, refusedMethodChange, 1) == 1 {
			// Not a decline, nothing charged: the customer removed or
			// replaced the card since the owed check read it.
			r.record(ctx, why, detail, "not charged: stripe refused the payment method: "+errText(err), false)
			if r.cards() && r.version(ctx, unusableMethodsChange, 1) == 1 {
				r.markUnusable(ctx, o.PaymentMethod, "refused by Stripe at the confirm of "+in.ID, time.Time{})
			}
			if !decidedAgain[id] {
				decidedAgain[id] = true
				ids = append(ids, id) // decided again on what Stripe says now
				continue
			}
			r.alert(ctx, "critical", r.key("method-refused", in.ID, fmt.Sprint(in.Attempts)),
				"Stripe refused the payment method for "+r.s.StripeCustomerID,
				fmt.Sprintf("%s: Stripe refused %s (%s) twice in one retry round, read afresh each time: %s. Nothing was charged and no card was counted; "+
					"the next retry decides again. Check the customer's payment methods in Stripe.", in.ID, o.PaymentMethod, o.PaymentMethodSource, errText(err)))
			continue
		}
		if err != nil {
			r.record(ctx, why, detail, "failed: "+errText(err), false)
			title := "Stripe rejected a retry for " + r.s.StripeCustomerID
			if !isRejected(err) && r.cards() && r.version(ctx, unansweredConfirmCountsChange, 1) == 1 {
				// No answer: the confirm may have reached the card network,
				// and the card's limit counts it.
				c := r.cardRecord(ck, o.PaymentMethod)
				c.Attempts = append(c.Attempts, workflow.Now(ctx))
				title = "Stripe did not answer a retry for " + r.s.StripeCustomerID
			}
			r.alert(ctx, "critical", r.key("retry-rejected", in.ID, fmt.Sprint(in.Attempts)), title, errText(err))
			continue
		}
		if r.cards() && confirmed(res.Outcome) {
			// Stripe took the payment method: whatever was said of it
			// before no longer holds.
			r.s.Unusable = withoutUnusable(r.s.Unusable, o.PaymentMethod)
			c := r.cardRecord(ck, o.PaymentMethod)
			c.Attempts = append(c.Attempts, workflow.Now(ctx))
			in.CardKey, in.PaymentMethodID = ck, o.PaymentMethod
		}
		if !unsettled(in) {
			continue // settled by a signal while the charge ran
		}
		switch res.Outcome {
		case activities.RetrySucceeded:
			r.resolve(ctx, in, IntentPaid, why)
			if res.AmountReceived > 0 && r.version(ctx, moneyKeptChange, 1) == 1 {
				in.PaidAmount = &res.AmountReceived
			}
		case activities.RetryAlreadyPaid:
			r.resolve(ctx, in, IntentPaid, "customer (found paid at "+why+")")
		case activities.RetryCanceled:
			r.resolve(ctx, in, IntentCanceled, "stripe (found canceled at "+why+")")
		case activities.RetryProcessing:
			r.markInFlight(ctx, in, "payment processing after "+why)
		case activities.RetryRequiresAction:
			in.NeedsAction = true
			if r.cards() {
				r.cardDeclined(ctx, in, res.Decline, o.PaymentMethod, workflow.Now(ctx), false)
			}
			r.ownDeclineOrders(ctx, in, res.Decline, sent)
			r.record(ctx, why, detail, "the bank asks the customer to authenticate", false)
		case activities.RetryNoPaymentMethod:
			r.s.NoPaymentMethod = true
			r.record(ctx, why, detail, "no usable payment method", false)
		case activities.RetryDryRun:
			r.record(ctx, why, detail, "not charged", true)
		default:
			in.LastDecline = firstNonEmpty(res.DeclineCode, res.Outcome)
			r.ownDeclineOrders(ctx, in, res.Decline, sent)
			outcome := res.Outcome + " " + res.DeclineCode
			if r.cards() {
				// The attempt was counted above; its key is the card charged.
				d := res.Decline
				if d.Fingerprint == "" {
					d.Fingerprint = o.Fingerprint
				}
				r.cardDeclined(ctx, in, d, o.PaymentMethod, workflow.Now(ctx), false)
				outcome += " (" + string(in.Decline.Class) + ": " + in.Decline.Reason + ")"
				lastDecline = in.Decline
			}
			r.record(ctx, why, detail, outcome, false)
			declined++
		}
	}
	if declined > 0 && r.s.Waive == nil {
		next, deadline := r.s.RetryAt, r.s.SuspendAt
		reason := ""
		if lastDecline != nil {
			// What to do, by class; a stop decline never names its reason.
			reason = activities.DeclineNoticeReason(*lastDecline)
		}
		r.noticeSafe(ctx, "payment_retry_failed", r.key("retry", fmt.Sprint(r.s.RetryRounds), "notice"), reason, &next, &deadline, r.payURL())
	}
	return nil
}

// ownDeclineOrders moves the intent's ordering time to the decline of
// dunning's own confirm, sent at sent (ownDeclineOrdersChange), so that
// a failure event Stripe created before it does not replace it.
func (r *recovery) ownDeclineOrders(ctx workflow.Context, in *Intent, d activities.Decline, sent time.Time) {
	if r.version(ctx, ownDeclineOrdersChange, 1) == 1 {
		in.LastEventAt = ownDeclineOrder(in.LastEventAt, d.Created, sent)
	}
}

// recheckBeforeTakeAway asks Stripe about every unsettled intent and
// Amberflo about the invoice of each one still unpaid. It reports false
// when the step must wait: a peer gave no answer (tried again later, ops
// told once past the bound) or rejected the question (paused for an
// operator).
func (r *recovery) recheckBeforeTakeAway(ctx workflow.Context, step string) (bool, error) {
	why := "before " + step
	began := workflow.Now(ctx)
	if r.s.ProfileUnread && r.version(ctx, profileBeforeTakeAwayChange, 1) == 1 {
		var profile activities.CustomerProfile
		err := workflow.ExecuteActivity(r.recheckCtx(ctx), a.CustomerProfile, activities.CustomerInput{StripeCustomerID: r.s.StripeCustomerID}).Get(ctx, &profile)
		if err != nil {
			// Nothing is taken away from a customer named by a guess.
			if isRejected(err) {
				return false, r.pauseForOperator(ctx, why+": read customer "+r.s.StripeCustomerID+": "+errText(err))
			}
			r.unanswered(ctx, why, "customer "+r.s.StripeCustomerID, began, err)
			return false, nil
		}
		r.s.CustomerID, r.s.ProfileUnread = profile.CustomerID, false
		r.record(ctx, "read customer", r.s.StripeCustomerID, "read again "+why+": "+profile.CustomerID, false)
	}
	for _, in := range r.s.Intents {
		if !unsettled(in) {
			continue
		}
		_, err := r.checkOwed(ctx, in, why)
		if err == nil && in.State == IntentOpen {
			_, err = r.checkAmberflo(ctx, in, why)
		}
		if err == nil {
			continue
		}
		if isRejected(err) {
			return false, r.pauseForOperator(ctx, why+": "+in.ID+": "+errText(err))
		}
		r.unanswered(ctx, why, in.ID, began, err)
		return false, nil
	}
	r.s.RecheckAt, r.s.UnansweredSince, r.s.UnansweredAlerted = time.Time{}, time.Time{}, false
	return true, nil
}

// unanswered defers a take-away whose re-check got no answer, and tells
// ops once when that has lasted past the bound.
func (r *recovery) unanswered(ctx workflow.Context, why, intentID string, began time.Time, err error) {
	now := workflow.Now(ctx)
	if r.s.UnansweredSince.IsZero() {
		// Unanswered since the re-check that first got no answer began.
		r.s.UnansweredSince = began
	}
	// Tried again within a minute, and at least once within the bound.
	r.s.RecheckAt = now.Add(min(time.Minute, recheckAlertAfter(&r.s)))
	r.record(ctx, "decision", why, "deferred: no answer about "+intentID, false)
	if !r.s.UnansweredAlerted && now.Sub(r.s.UnansweredSince) >= recheckAlertAfter(&r.s) {
		r.s.UnansweredAlerted = true
		r.alert(ctx, "critical", r.key("unanswered", fmt.Sprint(r.s.UnansweredSince.Unix())),
			"Re-check unanswered: "+r.s.StripeCustomerID,
			fmt.Sprintf("The re-check %s has had no answer since %s (%s). Nothing is suspended or deprovisioned until it has one.",
				why, r.s.UnansweredSince.UTC().Format(time.RFC3339), errText(err)))
	}
}

// takeAway suspends or deprovisions, if the state still says so once the
// peers were asked again and every signal and update that came in
// meanwhile was applied.
func (r *recovery) takeAway(ctx workflow.Context, step string) error {
	now := workflow.Now(ctx)
	if reason := blockTakeAway(&r.s, step, now); reason != "" {
		if len(untold(&r.s)) > 0 {
			r.wake = true // told first, at once
		}
		return nil
	}
	ok, err := r.recheckBeforeTakeAway(ctx, step)
	if err != nil || !ok {
		return err
	}
	checked := openIntents(&r.s)
	r.drain(ctx)
	if reason := blockTakeAway(&r.s, step, workflow.Now(ctx)); reason != "" {
		r.record(ctx, "decision", step, "called off: "+reason, false)
		if len(untold(&r.s)) > 0 {
			// A failure that came in while the peers were asked: the
			// customer is told of it at once, and the deadline moves.
			r.wake = true
		}
		if unsettledCount(&r.s) == 0 && r.s.Waive == nil && !r.s.Paused {
			if r.version(ctx, takeAwayOnCheckedStateChange, 1) == 1 {
				return r.recoverSafe(ctx)
			}
			return r.recover(ctx)
		}
		return nil
	}
	if r.s.RetryNow && r.version(ctx, retryNowBeforeTakeAwayChange, 1) == 1 {
		// An operator asked for a retry while the peers were asked, and was
		// told it is made now: it is, before anything is taken away.
		r.record(ctx, "decision", step, "deferred: the retry an operator asked meanwhile runs first", false)
		r.wake = true
		return nil
	}
	if unasked := newlyOpen(&r.s, checked); len(unasked) > 0 && r.version(ctx, takeAwayOnCheckedStateChange, 1) == 1 {
		// A failure that came in while the peers were asked is owed only
		// as far as the event says: the loop comes back at once and asks
		// about it before anything is taken away.
		r.record(ctx, "decision", step, "deferred: not yet re-checked: "+strings.Join(unasked, ", "), false)
		r.wake = true
		return nil
	}
	r.record(ctx, "decision", step, "decided: "+r.owedSummary(), false)
	if step == takeSuspend {
		return r.suspendSafe(ctx)
	}
	return r.deprovisionSafe(ctx)
}

// alertPaidWhilePaused tells ops, once per pause, that a suspended
// customer has paid everything: the account stays suspended until an
// operator resumes the recovery, which then gives it back.
func (r *recovery) alertPaidWhilePaused(ctx workflow.Context) {
	r.s.PaidWhilePausedAlerted = r.s.PausedAt
	r.record(ctx, "decision", "resume", "waiting: paid while paused ("+r.s.PausedReason+")", false)
	r.alert(ctx, "critical", r.key("paid-while-paused", fmt.Sprint(r.s.PausedAt.Unix())),
		"Paid but still suspended: "+r.s.StripeCustomerID,
		"Every owed payment is settled, but the recovery is paused ("+r.s.PausedReason+"), so the account has not been given back.\n"+
			"Resume with: temporal workflow update execute --workflow-id "+r.id+" --name "+ControlResume)
}

// owedSummary says what the latest checks found for each unpaid intent.
func (r *recovery) owedSummary() string {
	var parts []string
	for _, in := range r.s.Intents {
		if in.State == IntentOpen {
			parts = append(parts, in.ID+" "+in.Checked)
		}
	}
	return strings.Join(parts, "; ")
}

func (r *recovery) suspendSafe(ctx workflow.Context) error {
	ok, err := r.controlPlaneSafe(ctx, "suspend", "unpaid after the grace period")
	if err != nil || !ok {
		return err
	}
	now := workflow.Now(ctx)
	r.s.Stage, r.s.SuspendedAt = StageSuspended, now
	r.s.DeprovisionAt = now.Add(r.s.Settings.DeprovisionAfter)
	deadline := r.s.DeprovisionAt
	r.noticeSafe(ctx, "account_suspended", r.stageKey("suspended", "notice"), "", nil, &deadline, r.payURL())
	amount, currency := r.owed()
	r.alert(ctx, "warning", r.stageKey("suspended", "alert"), "Suspended: "+r.s.StripeCustomerID,
		fmt.Sprintf("%s unpaid after the grace period. Deprovisioning at %s unless paid.", money(amount, currency), deadline.UTC().Format(time.RFC3339)))
	return r.upsertAttributes(ctx)
}

func (r *recovery) deprovisionSafe(ctx workflow.Context) error {
	ok, err := r.controlPlaneSafe(ctx, "deprovision", "unpaid while suspended")
	if err != nil || !ok {
		return err
	}
	r.s.Stage = StageDeprovisioned
	began := workflow.Now(ctx)
	// Deactivation is decided on what arrived during the deprovisioning:
	// a customer who paid meanwhile keeps the Amberflo account, and ops
	// hear of the money. A waiver signalled meanwhile is taken as one
	// sent during the Amberflo step, which carries it out.
	if r.controls[ControlWaive].Len() > 0 && r.v.known(offboardOnFreshStateChange, 1) != workflow.DefaultVersion &&
		r.version(ctx, waiverSignalledWhileDeprovisioningChange, 1) == 1 {
		r.busy = takeAmberflo
	}
	r.drain(ctx)
	r.busy = ""
	if r.s.Waive != nil && unpaidCount(&r.s) == 0 {
		// Paid (or on its way) during the deprovisioning: no Amberflo step
		// carries the waiver out, and nothing unpaid is left to forgive.
		r.record(ctx, "operator: waive", r.s.Waive.Operator, "nothing left to forgive: paid during the deprovisioning", false)
		r.s.Waive = nil
	}
	amberfloDone := "the Amberflo customer kept (a payment arrived during the deprovisioning)"
	waivedBy := ""
	switch {
	case unpaidCount(&r.s) == 0:
		r.record(ctx, "amberflo deactivate", r.s.CustomerID, "skipped: paid during the deprovisioning", false)
	case r.version(ctx, offboardOnFreshStateChange, 1) == 1:
		amberfloDone, waivedBy = r.offboardAmberflo(ctx)
	default:
		amberfloDone = r.deactivateAmberflo(ctx)
	}
	r.noticeSafe(ctx, "account_deprovisioned", r.key("deprovisioned", "notice"), "", nil, nil, "")
	amount, currency := r.owed()
	unpaid := money(amount, currency) + " never paid"
	if waivedBy != "" {
		unpaid = "The debt was waived by " + waivedBy + " while the Amberflo customer was being deactivated, after the control plane had taken the resources back"
	} else if unpaidCount(&r.s) == 0 {
		unpaid = "Everything owed was paid while the deprovisioning ran, too late to stop it (see the money-after-the-end alert)"
		if paid, gone := settledSince(&r.s, began); len(gone) > 0 {
			// Written off or canceled in Stripe, not paid: no money came
			// for these, and no money-after-the-end alert tells them.
			unpaid = "What was owed was written off or canceled in Stripe while the deprovisioning ran, too late to stop it, and no money came for it: " +
				strings.Join(gone, ", ")
			if paid > 0 {
				unpaid = "What was owed was settled while the deprovisioning ran, too late to stop it: paid in part (see the money-after-the-end alert), " +
					"and written off or canceled in Stripe without money: " + strings.Join(gone, ", ")
			}
		}
		var flying []string
		for _, in := range r.s.Intents {
			if in.State == IntentInFlight {
				flying = append(flying, in.ID+" ("+money(in.Amount, in.Currency)+")")
			}
		}
		if len(flying) > 0 {
			// Paid is only what landed: a payment on its way may yet fail.
			unpaid = "What was unpaid was paid while the deprovisioning ran, too late to stop it (see the money-after-the-end alert); still in flight, and may yet fail: " +
				strings.Join(flying, ", ")
		}
	}
	r.alert(ctx, "critical", r.key("deprovisioned", "alert"), "Deprovisioned: "+r.s.StripeCustomerID,
		unpaid+"; resources taken back and "+amberfloDone+".")
	r.alertLateMoney(ctx)
	return r.upsertAttributes(ctx)
}

// controlPlaneSafe performs an action under the key of its instance; a
// permanent rejection pauses the recovery for an operator and reports
// false. While it runs, operator controls answer knowing it is under way.
func (r *recovery) controlPlaneSafe(ctx workflow.Context, action, reason string) (bool, error) {
	amount, currency := r.owed()
	if r.s.ControlCalls == nil {
		r.s.ControlCalls = map[string]int{}
	}
	r.busy = action
	defer func() { r.busy = "" }()
	var res activities.ControlPlaneResult
	err := workflow.ExecuteActivity(activityCtx(ctx), a.ControlPlane, activities.ControlPlaneInput{
		Action: action, CustomerID: r.s.CustomerID, StripeCustomerID: r.s.StripeCustomerID,
		IdempotencyKey: r.key(action, fmt.Sprint(controlKeyIndex(&r.s, action))), Reason: reason, WorkflowID: r.id,
		AmountDue: amount, Currency: currency, RequestedAt: workflow.Now(ctx),
	}).Get(ctx, &res)
	if err != nil {
		r.busy = ""
		if r.version(ctx, controlKeyPerRequestChange, 1) == 1 {
			// The request under this key may have reached the control
			// plane; the next one is built anew, so it takes the next key.
			r.s.ControlCalls[action]++
		}
		return false, r.pauseForOperator(ctx, "control plane "+action+" failed: "+errText(err))
	}
	r.s.ControlCalls[action]++
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

// creditedReason is why a life settled without money was waived.
const creditedReason = "settled without money (a credit note, the credit balance or a refund in Stripe, or an Amberflo invoice of nothing)"

func (r *recovery) recoverSafe(ctx workflow.Context) error {
	if r.mustConfirmRecovered() && r.version(ctx, unpaidElsewhereChange, 1) == 1 && !r.confirmRecovered(ctx) {
		// Something is still owed, or may be: the customer is not told
		// that it is over.
		return r.upsertAttributes(ctx)
	}
	if r.mustConfirmResumed() && r.version(ctx, unpaidBeforeResumeChange, 1) == 1 {
		ended := r.confirmRecovered(ctx)
		switch {
		case !ended && reopenDue(&r.s):
			// Paid what the suspension was for: the account comes back,
			// and what Stripe found (or could not say) is dealt with past
			// due.
			return r.reopen(ctx)
		case !ended, r.s.Paused:
			// Paused while Stripe was asked: the operator's resume gives
			// the account back. Or something told is owed again.
			return r.upsertAttributes(ctx)
		}
	}
	// Paid, every intent, and no money in any payment: a debt credited
	// away, which the customer is not told they paid.
	credited := !forgivenOnly(&r.s) && paidWithoutMoney(&r.s) && r.version(ctx, creditedLifeWaivedChange, 1) == 1
	switch {
	case r.s.Stage == StageSuspended:
		ok, err := r.controlPlaneSafe(ctx, "resume", "paid")
		if err != nil || !ok {
			return err
		}
		r.noticeSafe(ctx, "account_resumed", r.stageKey("resumed", "notice"), "", nil, nil, "")
	case r.s.PastDueNoticeSent && (forgivenOnly(&r.s) || credited):
		// Told of a failure, the customer hears that the debt is gone,
		// not that a payment came in.
		r.noticeSafe(ctx, "payment_waived", r.key("waived", "notice"), "", nil, nil, "")
	case r.s.PastDueNoticeSent:
		r.noticeSafe(ctx, "payment_recovered", r.key("recovered", "notice"), "", nil, nil, "")
	}
	r.s.Stage = StageRecovered
	if forgivenOnly(&r.s) {
		// Nothing was paid: every intent had been forgiven (by an earlier
		// life's waiver, or written off in Stripe) or canceled.
		r.s.Stage = StageWaived
		r.s.WaivedReason = firstNonEmpty(r.s.WaivedReason, "forgiven before this recovery")
		r.record(ctx, "waived", "", "every intent was already forgiven or canceled", false)
		return r.upsertAttributes(ctx)
	}
	if credited {
		// Settled in Stripe without money: forgiven, not recovered.
		r.s.Stage = StageWaived
		r.s.WaivedReason = firstNonEmpty(r.s.WaivedReason, creditedReason)
		// Told or not, ops hear of a debt that ended without money, as of
		// every waiver.
		r.alert(ctx, "info", r.key("waived", "alert"), "Waived: "+r.s.StripeCustomerID,
			"Reason: "+creditedReason+". Nothing was recovered.")
		return r.upsertAttributes(ctx)
	}
	if r.s.PastDueNoticeSent {
		r.alert(ctx, "info", r.key("recovered", "alert"), "Recovered: "+r.s.StripeCustomerID, "Every owed payment is settled.")
	} else {
		r.record(ctx, "recovered", "", "settled before anyone was told of a failure", false)
	}
	return r.upsertAttributes(ctx)
}

// waiveSafe forgives every unsettled intent, in Stripe too, so that no
// later life and no later event charges it; then gives back what a
// suspension took. A waiver still waiting for its resume stays in the
// state (and so survives continue-as-new).
func (r *recovery) waiveSafe(ctx workflow.Context) error {
	req := *r.s.Waive
	keepInFlight := inFlightCount(&r.s) > 0 && r.version(ctx, waiverKeepsInFlightChange, 1) == 1
	r.forgive(ctx, req, keepInFlight)
	if keepInFlight && inFlightCount(&r.s) > 0 {
		// The money on its way is not forgiven: the waiver waits for its
		// outcome, and takes it up again if it fails.
		r.s.WaiverWaits = true
		r.record(ctx, "operator: waive", req.Operator, fmt.Sprintf("waiting for %d payment(s) in flight", inFlightCount(&r.s)), false)
		return nil
	}
	r.s.WaiverWaits = false
	if !anyWaived(&r.s) {
		// Everything was paid before the waiver could forgive it.
		r.s.Waive = nil
		r.record(ctx, "operator: waive", req.Operator, "nothing left to forgive: paid", false)
		return r.recoverSafe(ctx)
	}
	resumed := r.s.Stage == StageSuspended
	if resumed {
		ok, err := r.controlPlaneSafe(ctx, "resume", "waived: "+req.Reason)
		if err != nil || !ok {
			return err // paused; the waiver stays asked for
		}
	}
	r.s.Waive = nil
	r.s.Stage, r.s.WaivedReason = StageWaived, req.Reason
	if r.version(ctx, waiverNoticeChange, 1) == 1 {
		switch {
		case resumed:
			r.noticeSafe(ctx, "account_resumed", r.stageKey("resumed", "notice"), "", nil, nil, "")
		case r.s.PastDueNoticeSent:
			r.noticeSafe(ctx, "payment_waived", r.key("waived", "notice"), "", nil, nil, "")
		}
	}
	r.alert(ctx, "info", r.key("waived", "alert"), "Waived: "+r.s.StripeCustomerID, "Reason: "+req.Reason)
	return r.upsertAttributes(ctx)
}

// settledSince counts the intents paid since the instant since, and names
// those written off or canceled (in Stripe, not by a waiver carried out
// here) since then.
func settledSince(s *RecoveryState, since time.Time) (paid int, gone []string) {
	for _, in := range s.Intents {
		if in.ResolvedAt.Before(since) {
			continue
		}
		switch {
		case in.State == IntentPaid:
			paid++
		case in.State == IntentCanceled, in.State == IntentWaived && !strings.HasPrefix(in.ResolvedBy, "operator "):
			gone = append(gone, in.ID+" "+money(in.Amount, in.Currency)+" ("+string(in.State)+" by "+in.ResolvedBy+")")
		}
	}
	return paid, gone
}

// forgive forgives every unsettled intent, in Stripe too, for the waiver
// req; with keepInFlight, a payment in flight is left out.
func (r *recovery) forgive(ctx workflow.Context, req OperatorRequest, keepInFlight bool) {
	operator := "operator " + firstNonEmpty(req.Operator, "(unnamed)")
	for _, in := range r.s.Intents {
		if !unsettled(in) || (keepInFlight && in.State == IntentInFlight) {
			continue
		}
		var res activities.ForgiveResult
		err := workflow.ExecuteActivity(activityCtx(ctx), a.ForgiveIntent, activities.ForgiveInput{
			IntentID: in.ID, Reason: req.Reason, Lifecycle: r.s.Lifecycle, IdempotencyKey: r.key("waive", in.ID),
		}).Get(ctx, &res)
		switch {
		case !unsettled(in):
			// settled by a signal while Stripe was written
		case err != nil:
			r.resolve(ctx, in, IntentWaived, operator)
			r.alert(ctx, "critical", r.key("waive-not-in-stripe", in.ID), "Waiver not written to Stripe: "+r.s.StripeCustomerID,
				in.ID+": "+errText(err)+". dunning will not charge it, but Stripe's own retries may: mark its invoice uncollectible by hand.")
		case res.Outcome == activities.ForgivePaid:
			r.resolve(ctx, in, IntentPaid, "customer (found paid while waiving: "+res.Detail+")")
		default:
			r.resolve(ctx, in, IntentWaived, operator)
			r.record(ctx, "waiver in stripe", in.ID, firstNonEmpty(res.Detail, res.Outcome), res.DryRun)
		}
	}
}

// noticeSafe sends a customer notice. A notice the mailer refuses for good
// reaches ops, so that no customer goes through a stage unheard.
func (r *recovery) noticeSafe(ctx workflow.Context, typ, key, reason string, next, deadline *time.Time, payURL string) {
	in := r.noticeInput(ctx, typ, key, reason, next, deadline)
	// The Stripe invoice's page, read by the last owed check.
	in.PayURL = payURL
	err := r.sendNotice(ctx, in)
	if err != nil {
		r.noticeUndelivered(ctx, typ, key, err)
	}
}

// noticeUndelivered tells ops of a notice the mailer refused for good.
func (r *recovery) noticeUndelivered(ctx workflow.Context, typ, key string, err error) {
	r.alert(ctx, "critical", r.key("undelivered", strings.TrimPrefix(key, r.s.Lifecycle+":")), "Customer notice not delivered: "+r.s.StripeCustomerID,
		fmt.Sprintf("The %s notice could not be sent (%s). Tell the customer by hand.", typ, errText(err)))
}

// result is what the life that ends leaves for whoever looks later.
func (r *recovery) result() RecoveryResult {
	res := RecoveryResult{Stage: r.s.Stage, Summary: r.details()}
	if r.safe() {
		for _, in := range r.s.Intents {
			res.Intents = append(res.Intents, IntentOutcome{ID: in.ID, InvoiceID: in.InvoiceID, Amount: in.Amount, Currency: in.Currency, State: in.State})
		}
		res.Forgiven = forgivenSoFar(&r.s)
	}
	if r.cards() {
		res.Cards = r.s.Cards
	}
	return res
}

// settled reports whether nothing is left to pay, on the state after
// every signal accepted so far: a failure that came in while the step
// waited on a check belongs to this life, and must not be left for the
// next one by ending this one as recovered. Whatever the signals changed
// wakes the loop at once.
//
// A payment owed again ends any hold of the end as recovered: the next
// hold is its own, dated and told anew.
func (r *recovery) settled(ctx workflow.Context) bool {
	if unsettledCount(&r.s) > 0 {
		r.clearHold()
		return false
	}
	if r.version(ctx, settleOnFreshStateChange, 1) == workflow.DefaultVersion {
		return true
	}
	if r.drain(ctx) {
		r.wake = true
	}
	if unsettledCount(&r.s) > 0 {
		r.clearHold()
		return false
	}
	return true
}

// waivePending reports whether a waiver is to be carried out by the next
// step: at once, even while paused, except for the resume it still owes
// after the control plane refused it, which waits for the operator's
// resume, like everything automatic.
func (r *recovery) waivePending() bool {
	if r.s.WaiverWaits && unpaidCount(&r.s) == 0 && unsettledCount(&r.s) > 0 {
		return false // only payments in flight are left: their outcome is waited for
	}
	return r.s.Waive != nil && !(r.s.Paused && unsettledCount(&r.s) == 0)
}

// stepSafe does whatever is due, each step decided on fresh state.
func (r *recovery) stepSafe(ctx workflow.Context) error {
	// A waiver is carried out at once (waivePending says when not).
	if r.waivePending() {
		return r.waiveSafe(ctx)
	}
	if !r.s.Announced {
		if err := r.announceSafe(ctx); err != nil {
			return err
		}
	}
	r.alertLateMoney(ctx)
	if r.s.Paused {
		// Nothing automatic while paused; a payment still ends a recovery
		// that has nothing to give back.
		if r.s.Stage == StagePastDue && r.settled(ctx) {
			return r.recoverSafe(ctx)
		}
		if r.s.Stage == StageSuspended && unsettledCount(&r.s) == 0 && r.s.Waive == nil &&
			!r.s.PaidWhilePausedAlerted.Equal(r.s.PausedAt) && r.version(ctx, paidWhilePausedChange, 1) == 1 {
			r.alertPaidWhilePaused(ctx)
		}
		return nil
	}
	if r.settled(ctx) {
		return r.recoverSafe(ctx)
	}
	if r.cards() && reopenDue(&r.s) && r.version(ctx, unpaidBeforeResumeChange, 1) == 1 {
		// Suspended for payments now settled, with only failures the
		// customer has not heard of left: the account comes back first.
		return r.reopen(ctx)
	}
	r.tellPastDue(ctx)
	if r.tellJoined(ctx) {
		return nil // the loop decides again, at once, on what came in meanwhile
	}
	r.askToAuthenticate(ctx)
	r.alertInFlight(ctx)
	now := workflow.Now(ctx)
	retryDue := r.s.RetryNow || (!r.s.CardRetryAt.IsZero() && !now.Before(r.s.CardRetryAt))
	held := !r.s.HeldRetryAt.IsZero() && !now.Before(r.s.HeldRetryAt)
	scheduled := !r.s.RetryAt.IsZero() && !now.Before(r.s.RetryAt)
	joined := !r.s.JoinedRetryAt.IsZero() && !now.Before(r.s.JoinedRetryAt)
	if scheduled {
		r.missedRetries(ctx, now, false)
		r.s.RetriesDone++
		r.s.RetryAt = time.Time{}
		if r.s.RetriesDone < len(r.s.Settings.RetrySchedule) {
			r.s.RetryAt = r.s.FirstFailureAt.Add(r.s.Settings.RetrySchedule[r.s.RetriesDone] + r.s.PausedTotal)
		}
	}
	if retryDue || scheduled || held || joined {
		var autoUpdatedAfter []string
		why := whyScheduled + fmt.Sprint(r.s.RetriesDone)
		switch {
		case r.s.RetryNow:
			why = whyOperator
		case retryDue:
			why = whyCardUpdate
		case held && !scheduled:
			why = whyHeld
		case joined && !scheduled:
			why = whyJoined
		}
		// A round tries every open payment: it is the one a joined
		// payment was owed.
		r.s.RetryNow, r.s.CardRetryAt, r.s.HeldRetryAt, r.s.JoinedRetryAt = false, time.Time{}, time.Time{}, time.Time{}
		if r.s.NoPaymentMethod && !retryDue {
			r.record(ctx, why, "", "skipped: no usable payment method", false)
		} else if err := r.retryRound(ctx, why); err != nil {
			return err
		} else {
			seen := slices.Clone(r.s.AutoUpdated)
			r.retryNowTakenByRound(ctx, why)
			autoUpdatedAfter = slices.DeleteFunc(slices.Clone(r.s.AutoUpdated), func(pm string) bool { return slices.Contains(seen, pm) })
			// Decided on what came in during the round: a card event asks
			// a round of its own, on what changed.
			changed := !r.s.CardRetryAt.IsZero() || len(autoUpdatedAfter) > 0
			r.missedRetries(ctx, workflow.Now(ctx), r.roundDeclined > 0 && !changed)
		}
		if why == whyCardUpdate {
			r.s.AutoUpdated = nil
			if len(autoUpdatedAfter) > 0 && r.version(ctx, autoUpdateOutlivesRoundChange, 1) == 1 {
				// Updated by the network after the round last read it (during
				// its last confirm): new details, for the next card round.
				r.s.AutoUpdated = autoUpdatedAfter
			}
		}
		if r.s.Waive != nil || r.s.Paused {
			return nil // the loop comes back to it at once
		}
		if r.settled(ctx) {
			return r.recoverSafe(ctx)
		}
		r.askToAuthenticate(ctx)
		if len(untold(&r.s)) > 0 && r.version(ctx, untoldAfterRoundChange, 1) == 1 {
			// A failure applied as the round ended: told at once, and
			// nothing is taken away before.
			r.wake = true
			return nil
		}
	}
	switch {
	case r.s.Stage == StagePastDue && !r.s.SuspendAt.IsZero() && !now.Before(r.s.SuspendAt):
		return r.takeAway(ctx, takeSuspend)
	case r.s.Stage == StageSuspended && !r.s.DeprovisionAt.IsZero() && !now.Before(r.s.DeprovisionAt):
		return r.takeAway(ctx, takeDeprovision)
	}
	return nil
}

// planSafe works out the next action and its time: a take-away only while
// something is unpaid, and never before a deferred re-check.
func (r *recovery) planSafe() NextAction {
	var next NextAction
	earliest := func(kind string, at time.Time) {
		if !at.IsZero() && (next.At.IsZero() || at.Before(next.At)) {
			next = NextAction{Kind: kind, At: at}
		}
	}
	later := func(a, b time.Time) time.Time {
		if b.After(a) {
			return b
		}
		return a
	}
	switch {
	case len(r.s.Intents) == 0:
		return NextAction{Kind: NextWaitPayment}
	case r.s.Paused:
		return NextAction{Kind: NextPaused, At: r.s.UnpaidReadAt}
	case r.s.Waive != nil && r.s.WaiverWaits:
		// Nothing is charged or taken away; ops hear of a payment that
		// stays in flight.
		_, at := inFlightAlertDue(&r.s, time.Time{})
		return NextAction{Kind: NextWaitPayment, At: at}
	case r.s.Waive != nil:
		return NextAction{Kind: NextNone}
	}
	canCharge := len(retryable(&r.s)) > 0
	if !r.s.NoPaymentMethod && canCharge {
		earliest(NextRetry, r.s.RetryAt)
		earliest(NextRetry, r.s.JoinedRetryAt)
	}
	earliest(NextRetry, r.s.CardRetryAt)
	earliest(NextRetry, r.s.HeldRetryAt)
	if unpaidCount(&r.s) > 0 {
		if r.s.Stage == StagePastDue && !r.s.SuspendAt.IsZero() {
			earliest(NextSuspend, later(r.s.SuspendAt, r.s.RecheckAt))
		} else if r.s.Stage == StageSuspended && !r.s.DeprovisionAt.IsZero() {
			earliest(NextDeprovision, later(r.s.DeprovisionAt, r.s.RecheckAt))
		}
	}
	if _, at := inFlightAlertDue(&r.s, time.Time{}); !at.IsZero() {
		earliest(NextWaitPayment, at)
	}
	if unsettledCount(&r.s) == 0 {
		earliest(NextConfirmRecovered, r.s.UnpaidReadAt)
	}
	if next.Kind == "" {
		next = NextAction{Kind: NextWaitPayment}
	}
	if r.s.NoPaymentMethod && next.Kind == NextRetry {
		next.Kind = NextWaitCard
	}
	return next
}

// missedRetries applies retryAfterMissed at now: justDeclined says that a
// card declined in the round just ended and nothing changed since. A
// retry whose time has not passed is left as it is.
func (r *recovery) missedRetries(ctx workflow.Context, now time.Time, justDeclined bool) {
	done, at := retryAfterMissed(&r.s, now, r.takeAwayAt(), justDeclined)
	if (done == r.s.RetriesDone && at.Equal(r.s.RetryAt)) || r.version(ctx, oneRetryForMissedChange, 1) != 1 {
		return
	}
	outcome := fmt.Sprintf("the missed retries are made once, at once (retry %d of the schedule)", done+1)
	switch {
	case justDeclined && done < len(r.s.Settings.RetrySchedule) && at.Equal(r.s.FirstFailureAt.Add(r.s.Settings.RetrySchedule[done]+r.s.PausedTotal)):
		outcome = "not made up on the card that just declined: the next at " + at.UTC().Format(time.RFC3339)
	case justDeclined:
		outcome = "not made up on the card that just declined: one retry still owed before the deadline, at " + at.UTC().Format(time.RFC3339)
	}
	r.record(ctx, "retry schedule", fmt.Sprintf("%d of %d done; due %s", r.s.RetriesDone, len(r.s.Settings.RetrySchedule), r.s.RetryAt.UTC().Format(time.RFC3339)), outcome, false)
	r.s.RetriesDone, r.s.RetryAt = done, at
}

// takeAwayAt is the deadline of the next take-away: the suspension while
// past due, the deprovisioning once suspended.
func (r *recovery) takeAwayAt() time.Time {
	switch r.s.Stage {
	case StagePastDue:
		return r.s.SuspendAt
	case StageSuspended:
		return r.s.DeprovisionAt
	}
	return time.Time{}
}
