package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"dunning/activities"
)

// This file holds the recovery's decisions as pure functions over its
// state: what may be taken away now, what is owed, when to wake. The
// workflow applies signals and updates, calls activities, and asks these
// again after every wait.

// unsettled reports whether an intent still stands between the customer
// and recovery: open (unpaid) or in flight (a payment processing).
func unsettled(in *Intent) bool { return in.State == IntentOpen || in.State == IntentInFlight }

// unpaidCount counts the open intents: money owed and not on its way.
func unpaidCount(s *RecoveryState) int { return countIn(s, IntentOpen) }

// countIn counts the intents in state.
func countIn(s *RecoveryState, state IntentState) int {
	n := 0
	for _, in := range s.Intents {
		if in.State == state {
			n++
		}
	}
	return n
}

// openIntents is the set of the open intents' IDs.
func openIntents(s *RecoveryState) map[string]bool {
	open := map[string]bool{}
	for _, in := range s.Intents {
		if in.State == IntentOpen {
			open[in.ID] = true
		}
	}
	return open
}

// newlyOpen lists the intents open now that were not open in before: new
// failures, and payments in flight that failed.
func newlyOpen(s *RecoveryState, before map[string]bool) []string {
	var ids []string
	for _, in := range s.Intents {
		if in.State == IntentOpen && !before[in.ID] {
			ids = append(ids, in.ID)
		}
	}
	return ids
}

// inFlightCount counts the intents whose payment is in flight.
func inFlightCount(s *RecoveryState) int { return countIn(s, IntentInFlight) }

// unsettledCount counts the intents open or in flight.
func unsettledCount(s *RecoveryState) int {
	n := 0
	for _, in := range s.Intents {
		if unsettled(in) {
			n++
		}
	}
	return n
}

// Take-away steps.
const (
	takeSuspend     = "suspend"
	takeDeprovision = "deprovision"
	// takeCharge names a confirm under way, for operators' answers.
	takeCharge = "charge"
	// takeAmberflo names the deactivation of the Amberflo customer, and
	// the re-check after it, under way once the control plane has
	// deprovisioned: a waiver is still taken then, and stops the move to
	// OFFBOARDED.
	takeAmberflo = "amberflo deactivation"
)

// blockOffboard says why the deprovisioned customer must not be moved to
// OFFBOARDED in Amberflo (which never moves it back), on the state after
// every signal and update accepted while it was deactivated and the money
// asked about again; "" when it may. unchecked says why that re-check has
// no usable answer ("" when it has one).
func blockOffboard(s *RecoveryState, unchecked string) string {
	switch {
	case s.Waive != nil:
		return "waived by an operator during the deactivation"
	case unsettledCount(s) == 0:
		return "nothing is owed any more (settled during the deactivation)"
	case unpaidCount(s) == 0:
		return "every owed payment is in flight"
	case s.Paused:
		return "paused: " + s.PausedReason
	case unchecked != "":
		return "the re-check after the deactivation has no usable answer: " + unchecked
	}
	return ""
}

// blockTakeAway says why the step that takes something away (suspend or
// deprovision) must not happen now, on the state as it is after every
// signal and update accepted so far; "" when it may. It is asked before
// the re-check and again after it, since an operator or a payment may
// have acted while the re-check ran.
func blockTakeAway(s *RecoveryState, step string, now time.Time) string {
	switch {
	case s.Waive != nil:
		return "waived by an operator"
	case s.Paused:
		return "paused: " + s.PausedReason
	case unsettledCount(s) == 0:
		return "nothing is owed any more"
	case unpaidCount(s) == 0:
		return "every owed payment is in flight"
	case !s.RecheckAt.IsZero() && now.Before(s.RecheckAt):
		return "the last re-check got no answer; trying again at " + s.RecheckAt.UTC().Format(time.RFC3339)
	case len(untold(s)) > 0:
		return "the customer is not yet told of " + strings.Join(untold(s), ", ")
	}
	switch step {
	case takeSuspend:
		if s.Stage != StagePastDue {
			return "stage is " + string(s.Stage)
		}
		if s.SuspendAt.IsZero() || now.Before(s.SuspendAt) {
			return "suspension moved to " + s.SuspendAt.UTC().Format(time.RFC3339)
		}
	case takeDeprovision:
		if s.Stage != StageSuspended {
			return "stage is " + string(s.Stage)
		}
		if s.DeprovisionAt.IsZero() || now.Before(s.DeprovisionAt) {
			return "deprovisioning moved to " + s.DeprovisionAt.UTC().Format(time.RFC3339)
		}
	}
	return ""
}

// untold are the unpaid intents that joined the life after the customer
// was told of its failures, and of which they are not told yet.
func untold(s *RecoveryState) []string {
	var ids []string
	for _, in := range s.Intents {
		if in.State == IntentOpen && in.Untold {
			ids = append(ids, in.ID)
		}
	}
	return ids
}

// noticeLead is the least time between telling the customer of a failed
// payment and suspending them for it: three days, so that a notice read
// late (sent on a Friday evening, say) still leaves working days to pay
// or change the card, and the default schedule (24h, 72h, 120h) retries
// at least once in between. Under a grace period shorter than twice that,
// it is half the grace period: a payment that joins is given at least
// half the time the first failure was, never more than all of it.
const noticeLead = 72 * time.Hour

// leadAfterNotice is noticeLead under the life's grace period.
func leadAfterNotice(set RecoverySettings) time.Duration {
	return min(noticeLead, set.GracePeriod/2)
}

// suspendAtAfterNotice is when a life in past_due may suspend, given when
// the customer was told of each unpaid payment: its suspension time, or
// later, no sooner than the notice lead (at most the grace period) after
// the newest notice of a payment still unpaid. Zero stays zero.
func suspendAtAfterNotice(s *RecoveryState) time.Time {
	at := s.SuspendAt
	if at.IsZero() {
		return at
	}
	lead := leadAfterNotice(s.Settings)
	for _, in := range s.Intents {
		if in.State != IntentOpen || in.ToldAt.IsZero() {
			continue
		}
		if earliest := in.ToldAt.Add(lead); earliest.After(at) {
			at = earliest
		}
	}
	return at
}

// deprovisionAtAfterNotice is when a suspended life may deprovision,
// given when the customer was told of each unpaid payment: its
// deprovisioning time, or later, no sooner than the notice lead after the
// newest notice of a payment still unpaid (one that joined while the
// customer was suspended). Zero stays zero.
func deprovisionAtAfterNotice(s *RecoveryState) time.Time {
	at := s.DeprovisionAt
	if at.IsZero() {
		return at
	}
	lead := leadAfterNotice(s.Settings)
	for _, in := range s.Intents {
		if in.State != IntentOpen || in.ToldAt.IsZero() {
			continue
		}
		if earliest := in.ToldAt.Add(lead); earliest.After(at) {
			at = earliest
		}
	}
	return at
}

// reopenDue reports whether a suspended life gives the resources back and
// goes on past due: every payment the customer was told of is settled, and
// what is still unsettled (if anything) joined the life after that and has
// not been told (found unpaid in Stripe as the life was about to end, or
// its event came meanwhile). The paid debt no longer holds the account;
// the new failure is told, and given its own lead before any suspension,
// as a failure that joins a past-due life is. Not while paused (nothing
// automatic) nor with a waiver to carry out (it resumes by itself).
func reopenDue(s *RecoveryState) bool {
	if s.Stage != StageSuspended || s.Paused || s.Waive != nil {
		return false
	}
	for _, in := range s.Intents {
		if unsettled(in) && (!in.Untold || in.FailedAgain > 0 || in.ActionAgain > 0) {
			// A payment told before, failed again or needing the
			// customer's action again, is what the suspension was for:
			// not a new failure.
			return false
		}
	}
	return true
}

// blockCharge says why an intent must not be confirmed now; "" when it
// may. Asked before the owed check and again right before the confirm.
func blockCharge(s *RecoveryState, in *Intent) string {
	switch {
	case s.Waive != nil:
		return "waived by an operator"
	case s.Paused:
		return "paused: " + s.PausedReason
	case s.Stage != StagePastDue && s.Stage != StageSuspended:
		return "stage is " + string(s.Stage)
	case in == nil:
		return "unknown intent"
	case in.State != IntentOpen:
		return "intent is " + string(in.State)
	case in.NeedsAction:
		return "the customer must authenticate this payment"
	}
	return ""
}

// retryable lists the IDs of the intents a retry round would try now.
func retryable(s *RecoveryState) []string {
	var ids []string
	for _, in := range s.Intents {
		if blockCharge(s, in) == "" {
			ids = append(ids, in.ID)
		}
	}
	return ids
}

// inFlightAlertDue returns the in-flight intents that have been
// processing past the bound without ops being told, and the earliest time
// another one will be due (zero when none).
func inFlightAlertDue(s *RecoveryState, now time.Time) ([]*Intent, time.Time) {
	bound := s.Settings.InFlightAlertAfter
	if bound <= 0 {
		bound = DefaultInFlightAlertAfter
	}
	var due []*Intent
	var next time.Time
	for _, in := range s.Intents {
		if in.State != IntentInFlight || in.InFlightAlerted || in.InFlightSince.IsZero() {
			continue
		}
		at := in.InFlightSince.Add(bound)
		if !now.Before(at) {
			due = append(due, in)
		} else if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return due, next
}

// recheckAlertAfter is the bound after which unanswered re-checks alert.
func recheckAlertAfter(s *RecoveryState) time.Duration {
	if s.Settings.RecheckAlertAfter > 0 {
		return s.Settings.RecheckAlertAfter
	}
	return DefaultRecheckAlertAfter
}

// controlKeyIndex is the instance number of the next call of an action:
// each suspend, resume or deprovision of a life has its own key, and a
// retried call of the same instance keeps it.
func controlKeyIndex(s *RecoveryState, action string) int {
	return s.ControlCalls[action]
}

// anyWaived reports whether any intent was forgiven.
func anyWaived(s *RecoveryState) bool {
	for _, in := range s.Intents {
		if in.State == IntentWaived {
			return true
		}
	}
	return false
}

// forgivenOnly reports whether a life that has nothing unsettled left got
// there without any payment: every intent waived or canceled, at least one
// waived.
func forgivenOnly(s *RecoveryState) bool {
	waived := false
	for _, in := range s.Intents {
		switch in.State {
		case IntentWaived:
			waived = true
		case IntentCanceled:
		default:
			return false
		}
	}
	return waived
}

// confirmed reports whether a retry's outcome means a confirm reached the
// card (counted against the network limits); a processing outcome may or
// may not have, and is counted.
func confirmed(outcome string) bool {
	switch outcome {
	case activities.RetryAlreadyPaid, activities.RetryCanceled, activities.RetryNoPaymentMethod, activities.RetryDryRun:
		return false
	}
	return true
}

// maxAttemptsPerCard is the per-card limit of these settings.
func maxAttemptsPerCard(s *RecoverySettings) int {
	n := s.MaxAttemptsPerCard
	if n <= 0 {
		n = DefaultMaxAttemptsPerCard
	}
	return min(n, CardNetworkMaxAttempts)
}

// card finds the record of a card by key; nil when none.
func card(s *RecoveryState, key string) *CardRecord {
	for _, c := range s.Cards {
		if c.Key == key {
			return c
		}
	}
	return nil
}

// attemptsInWindow are the card's confirms within the 30 days before now.
func attemptsInWindow(c *CardRecord, now time.Time) []time.Time {
	var in []time.Time
	for _, t := range c.Attempts {
		if now.Sub(t) < CardAttemptWindow {
			in = append(in, t)
		}
	}
	return in
}

// cardAllows says whether the card may be confirmed now with the payment
// method pm under the card-network rules: never after a stop decline, not
// before the card's data changed after a needs-new-data decline, not
// before the network's retry-after, and at most max confirms in any 30
// days. A payment method other than those that carried the refused data
// carries new data (freshData); pm "" stands for any. When it may not,
// why says so and next is when it may (zero: not until the card changes).
func cardAllows(c *CardRecord, pm string, now time.Time, max int) (ok bool, why string, next time.Time) {
	if c == nil {
		return true, "", time.Time{}
	}
	switch {
	case c.Stopped:
		return false, "the bank said never to try this card again (" + c.Reason + ")", time.Time{}
	case c.NeedsNewData && !freshData(c, pm):
		return false, "the card's details must change first (" + c.Reason + ")", time.Time{}
	case now.Before(c.NotBefore):
		return false, "the card network asks to wait (" + c.Reason + ")", c.NotBefore
	}
	if in := attemptsInWindow(c, now); len(in) >= max {
		// The oldest attempt in the window leaves it first.
		oldest := in[0]
		for _, t := range in {
			if t.Before(oldest) {
				oldest = t
			}
		}
		return false, fmt.Sprintf("%d confirms on this card in 30 days, the limit is %d", len(in), max), oldest.Add(CardAttemptWindow)
	}
	return true, "", time.Time{}
}

// freshData reports whether pm gives a card held for new data the data
// it waits for: the customer entered the card again, and Stripe made a
// new payment method with the card's fingerprint. Stop declines and
// attempts stay the card's, whatever payment method carries it.
func freshData(c *CardRecord, pm string) bool {
	return c != nil && c.NeedsNewData && pm != "" && len(c.StaleMethods) > 0 && !slices.Contains(c.StaleMethods, pm)
}

// chargeCheck says whether the card rules let a confirm charge the card
// key with the payment method pm now: cardAllows under the life's
// settings. fresh is false in a life recorded before freshDataChange,
// where a card held for new data is held whatever payment method carries
// it. The charge path asks it with Stripe's answer; retry_now and the
// status ask it with what the state knows (chargeOutlookOf).
func chargeCheck(s *RecoveryState, key, pm string, now time.Time, fresh bool) (ok bool, why string, next time.Time) {
	if !fresh {
		pm = ""
	}
	return cardAllows(card(s, key), pm, now, maxAttemptsPerCard(&s.Settings))
}

// chargeTargets lists what a confirm of the intent may charge now, as far
// as the state knows before Stripe is asked: what Stripe last said (else
// the card last tried), and every payment method a card event named
// since, with its card where the state knows it; none that Stripe will
// not charge (unusableWhy). When every one named is such, what Stripe
// names at the charge is unknown: the one target is the empty one.
func chargeTargets(s *RecoveryState, in *Intent) []ChargeTarget {
	var targets []ChargeTarget
	for _, t := range namedTargets(s, in) {
		if unusableWhy(s, t.PaymentMethod) == "" {
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		targets = []ChargeTarget{{}}
	}
	return targets
}

// unusableWhy says why Stripe will not charge the payment method pm; ""
// when nothing in the state says so.
func unusableWhy(s *RecoveryState, pm string) string {
	if pm == "" {
		return ""
	}
	for _, u := range s.Unusable {
		if u.PaymentMethod == pm {
			return u.Why
		}
	}
	return ""
}

// maxUnusable bounds the unusable payment methods a life remembers.
const maxUnusable = 50

// withUnusable records pm as a payment method Stripe will not charge, and
// why, keeping the newest maxUnusable. created is when Stripe said so
// (zero: at).
func withUnusable(list []UnusableMethod, pm, why string, at, created time.Time) []UnusableMethod {
	if created.IsZero() {
		created = at
	}
	told := false
	for _, u := range list {
		if u.PaymentMethod == pm && u.Created.After(created) {
			created = u.Created // the newest word about pm stands
		}
		told = told || (u.PaymentMethod == pm && u.Told)
	}
	list = withoutUnusable(list, pm)
	list = append(list, UnusableMethod{PaymentMethod: pm, Why: why, At: at, Created: created, Told: told})
	if n := len(list); n > maxUnusable {
		list = slices.Clone(list[n-maxUnusable:])
	}
	return list
}

// CardEventOutdated reports whether a card event about the payment method
// pm, created at created, is older than what the state says Stripe will
// not charge pm for: the removal (or refusal) was said at the same second
// or later, and the newest word about pm stands. Stripe never lets a
// detached payment method be attached again, so no genuine card event
// about it comes after its removal; one delivered late says nothing new.
// An event without its time cannot be ordered and does not overrule
// either. Returns the entry that stands, or nil.
func CardEventOutdated(list []UnusableMethod, pm string, created time.Time) *UnusableMethod {
	if pm == "" {
		return nil
	}
	for i, u := range list {
		if u.PaymentMethod != pm {
			continue
		}
		since := u.Created
		if since.IsZero() {
			since = u.At
		}
		if created.IsZero() || !created.After(since) {
			return &list[i]
		}
		return nil
	}
	return nil
}

// removedUntold lists the payment methods of pms that the customer removed and
// that nobody was told left nothing usable; markTold marks them told.
func removedUntold(list []UnusableMethod, pms []string) []string {
	var out []string
	for _, u := range list {
		if slices.Contains(pms, u.PaymentMethod) && !u.Told {
			out = append(out, u.PaymentMethod)
		}
	}
	return out
}

func markTold(list []UnusableMethod, pms []string) {
	for i := range list {
		if slices.Contains(pms, list[i].PaymentMethod) {
			list[i].Told = true
		}
	}
}

// withoutUnusable forgets that Stripe would not charge pm.
func withoutUnusable(list []UnusableMethod, pm string) []UnusableMethod {
	return slices.DeleteFunc(list, func(u UnusableMethod) bool { return u.PaymentMethod == pm })
}

// namedTargets is chargeTargets with the payment methods Stripe will not
// charge among them.
func namedTargets(s *RecoveryState, in *Intent) []ChargeTarget {
	base := ChargeTarget{PaymentMethod: in.PaymentMethodID, Card: in.CardKey}
	if in.Charge != nil {
		base = *in.Charge
	}
	targets := []ChargeTarget{base}
	for _, pm := range in.CardUpdates {
		t := ChargeTarget{PaymentMethod: pm, Card: cardOf(s, pm)}
		if !slices.Contains(targets, t) {
			targets = append(targets, t)
		}
	}
	return targets
}

// cardOf is the key of the card that the payment method pm is known to
// carry; "" when the state does not know it.
func cardOf(s *RecoveryState, pm string) string {
	if pm == "" {
		return ""
	}
	for _, c := range s.Cards {
		if c.PaymentMethod == pm || slices.Contains(c.StaleMethods, pm) {
			return c.Key
		}
	}
	for _, in := range s.Intents {
		if in.Charge != nil && in.Charge.PaymentMethod == pm && in.Charge.Card != "" {
			return in.Charge.Card
		}
		if in.PaymentMethodID == pm && in.CardKey != "" {
			return in.CardKey
		}
	}
	return ""
}

// What the card rules make of a confirm of an intent.
const (
	// chargeAllowed: whatever of its targets Stripe names, it is charged.
	chargeAllowed = "allowed"
	// chargeHeld: whatever of its targets Stripe names, it is held.
	chargeHeld = "held"
	// chargeUnknown: whether it is held depends on the card Stripe names.
	chargeUnknown = "unknown"
)

// chargeOutlook is what the card rules make now of a confirm of an
// intent, as the charge path would decide it: why says what holds it
// (or may), next when the hold ends (zero: not until the card changes).
type chargeOutlook struct {
	intent string
	kind   string
	why    string
	next   time.Time
}

// chargeOutlookOf decides, for an intent a retry round would try, what
// the charge path would do with each of its targets (chargeTargets): a
// target whose card is known is decided as the charge path decides it; a
// target whose card is not known yet is held only if it may be a held
// card, which Stripe's answer tells; one whose last decline is still to
// be read (CardRecord.Unread) is held if the read says so.
func chargeOutlookOf(s *RecoveryState, in *Intent, now time.Time, fresh bool) chargeOutlook {
	out := chargeOutlook{intent: in.ID}
	targets := chargeTargets(s, in)
	// with: what may be charged (and unless what); without: what is held.
	var with, without, heldWhy []string
	allowed := 0
	for i, t := range targets {
		name := t.PaymentMethod
		if name == "" {
			name = "the payment method Stripe names"
		}
		if i > 0 {
			name += " (set since)"
		}
		if t.Card != "" {
			ok, why, next := chargeCheck(s, t.Card, t.PaymentMethod, now, fresh)
			switch c := card(s, t.Card); {
			case ok && c != nil && c.Unread != nil:
				// readDeclinedCharge reads it first: a stop it carries holds.
				with = append(with, name+" unless its last decline's charge, read first, says never to try again")
			case ok:
				with = append(with, name)
				allowed++
			default:
				if out.next.IsZero() || (!next.IsZero() && next.Before(out.next)) {
					out.next = next
				}
				without = append(without, name+": "+why)
				heldWhy = append(heldWhy, why)
			}
			continue
		}
		// A card not known yet: any card not held, or one that is.
		var heldCards []string
		for _, c := range s.Cards {
			if ok, _, _ := chargeCheck(s, c.Key, t.PaymentMethod, now, fresh); !ok {
				heldCards = append(heldCards, "the card of "+firstNonEmpty(c.PaymentMethod, c.Key))
			}
		}
		if len(heldCards) == 0 {
			with = append(with, name)
			allowed++
			continue
		}
		with = append(with, name+" unless it carries "+strings.Join(heldCards, " or "))
	}
	switch {
	case allowed == len(targets):
		out.kind = chargeAllowed
	case len(without) == len(targets):
		out.kind = chargeHeld
		out.why = strings.Join(heldWhy, "; ")
		if len(targets) > 1 {
			out.why = strings.Join(without, "; ")
		}
	default:
		out.kind, out.next = chargeUnknown, time.Time{}
		out.why = "charged with " + strings.Join(with, ", or ")
		if len(without) > 0 {
			out.why += "; not with " + strings.Join(without, "; not with ")
		}
	}
	return out
}

// chargeOutlooks decides chargeOutlookOf for every intent a retry round
// would try now.
func chargeOutlooks(s *RecoveryState, now time.Time, fresh bool) []chargeOutlook {
	var outs []chargeOutlook
	for _, id := range retryable(s) {
		outs = append(outs, chargeOutlookOf(s, intentByID(s, id), now, fresh))
	}
	return outs
}

// showCardHolds works out, for the status, when each card may next be
// tried and why not before: judged with the payment methods a confirm
// would charge it with (those of the intents' targets on it, else the
// one it was last used with), as the charge path judges it.
func showCardHolds(s *RecoveryState, now time.Time, fresh bool) {
	var unknown []string // card events' payment methods of no known card
	on := map[string][]string{}
	for _, in := range s.Intents {
		if !unsettled(in) {
			continue
		}
		for _, t := range chargeTargets(s, in) {
			switch {
			case t.Card != "":
				on[t.Card] = append(on[t.Card], t.PaymentMethod)
			case t.PaymentMethod != "" && !slices.Contains(unknown, t.PaymentMethod):
				unknown = append(unknown, t.PaymentMethod)
			}
		}
	}
	for _, c := range s.Cards {
		pms := on[c.Key]
		if len(pms) == 0 {
			pms = []string{c.PaymentMethod}
		}
		c.Held, c.NextAllowed = "", time.Time{}
		for i, pm := range pms {
			ok, why, next := chargeCheck(s, c.Key, pm, now, fresh)
			if ok {
				c.Held, c.NextAllowed = "", time.Time{}
				break
			}
			if i == 0 {
				c.Held, c.NextAllowed = why, next
			}
		}
		if c.Held == "" {
			continue
		}
		for _, pm := range unknown {
			if ok, _, _ := chargeCheck(s, c.Key, pm, now, fresh); ok {
				c.Held += "; " + pm + ", set since, is tried if it carries this card"
			}
		}
	}
}

// maxForgiven bounds the forgiven intents a life remembers.
const maxForgiven = 1000

// forgiven reports whether an earlier life forgave the intent.
func forgiven(s *RecoveryState, id string) bool { return slices.Contains(s.Forgiven, id) }

// withForgiven adds ids to the forgiven intents, once each, keeping the
// newest maxForgiven.
func withForgiven(list []string, ids ...string) []string {
	for _, id := range ids {
		if id != "" && !slices.Contains(list, id) {
			list = append(list, id)
		}
	}
	if n := len(list); n > maxForgiven {
		list = slices.Clone(list[n-maxForgiven:])
	}
	return list
}

// forgivenSoFar lists the intents forgiven by this life or earlier ones.
func forgivenSoFar(s *RecoveryState) []string {
	list := slices.Clone(s.Forgiven)
	for _, in := range s.Intents {
		if in.State == IntentWaived {
			list = withForgiven(list, in.ID)
		}
	}
	return list
}

// forgivenBy lists the intents an ended life leaves forgiven: those it
// names so, and the ones it waived itself (all that a result written
// before Forgiven tells).
func forgivenBy(res RecoveryResult) []string {
	list := slices.Clone(res.Forgiven)
	for _, in := range res.Intents {
		if in.State == IntentWaived {
			list = withForgiven(list, in.ID)
		}
	}
	return list
}

func intentByID(s *RecoveryState, id string) *Intent {
	for _, in := range s.Intents {
		if in.ID == id {
			return in
		}
	}
	return nil
}

// applyDecline records what a decline on the card, made with the payment
// method pm, means for it.
func applyDecline(c *CardRecord, v activities.DeclineVerdict, pm string, now time.Time) {
	c.Class, c.Reason = v.Class, v.Reason
	switch v.Class {
	case activities.DeclineStop:
		c.Stopped = true
	case activities.DeclineNewData:
		if !c.NeedsNewData {
			c.StaleMethods = nil // the data of an earlier hold changed since
		}
		c.NeedsNewData = true
		if pm != "" && !slices.Contains(c.StaleMethods, pm) {
			c.StaleMethods = append(c.StaleMethods, pm)
		}
	case activities.DeclineRetryAfter:
		if at := now.Add(v.RetryAfter); at.After(c.NotBefore) {
			c.NotBefore = at
		}
	}
}

// pruneCards drops attempts older than the window, and the cards with
// nothing left to remember.
func pruneCards(cards []*CardRecord, now time.Time) []*CardRecord {
	var out []*CardRecord
	for _, c := range cards {
		c.Attempts = attemptsInWindow(c, now)
		if len(c.Attempts) > 0 || c.Stopped || c.NeedsNewData || now.Before(c.NotBefore) {
			out = append(out, c)
		}
	}
	return out
}

// mergeCards folds the records of an earlier life into this one's: the
// attempts of both, and every hold either knows.
func mergeCards(into, from []*CardRecord) []*CardRecord {
	for _, f := range from {
		var c *CardRecord
		for _, x := range into {
			if x.Key == f.Key {
				c = x
			}
		}
		if c == nil {
			cp := *f
			cp.Attempts = append([]time.Time(nil), f.Attempts...)
			cp.StaleMethods = slices.Clone(f.StaleMethods)
			into = append(into, &cp)
			continue
		}
		for _, t := range f.Attempts {
			if !slices.ContainsFunc(c.Attempts, t.Equal) {
				c.Attempts = append(c.Attempts, t)
			}
		}
		c.Stopped = c.Stopped || f.Stopped
		switch {
		case f.NeedsNewData && c.NeedsNewData:
			for _, pm := range f.StaleMethods {
				if !slices.Contains(c.StaleMethods, pm) {
					c.StaleMethods = append(c.StaleMethods, pm)
				}
			}
		case f.NeedsNewData:
			c.NeedsNewData, c.StaleMethods = true, slices.Clone(f.StaleMethods)
		}
		if f.NotBefore.After(c.NotBefore) {
			c.NotBefore = f.NotBefore
		}
		if c.Reason == "" {
			c.Class, c.Reason = f.Class, f.Reason
		}
	}
	return into
}

// RemovalOvertaken reports whether a removal of the last usable payment
// method, whose event Stripe created at removed, is older news than the
// newest card event already applied (created at lastCard): that event
// changed the way to pay after the removal, or in the same second, which
// Stripe's timestamps cannot order. Either way, Stripe is to be asked
// rather than the recovery wait for a card that may be there.
func RemovalOvertaken(removed, lastCard time.Time) bool {
	return !removed.IsZero() && !lastCard.IsZero() && !removed.After(lastCard)
}

// retryAfterMissed is the life's scheduled retry at now, once the one it
// waits for (RetryAt) has passed: the retries counted done and when the
// next is due. Times of the schedule pass without their retry when a
// round runs long, or the life wakes late (the workers down, a hold, a
// pause); they are never made up one round after another on the same
// card:
//
//   - one or more missed, and no card declined in the round just ended
//     (or something changed since: a card event asks a round of its own):
//     exactly one retry, at once, for all of them; the schedule goes on
//     from its next time still ahead;
//   - a card declined in the round just ended, and nothing changed: not
//     at once. The next is the schedule's next time still ahead, if it
//     comes by the deadline (the next take-away: the suspension while
//     past due); else one retry is still owed before the deadline, a
//     first interval of the schedule after now, or at the deadline if
//     that comes sooner (at once if it has passed). A customer is never
//     taken away from with a retry owed because dunning was late.
//
// A retry still ahead, a spent schedule or no schedule stays as it is.
func retryAfterMissed(s *RecoveryState, now, deadline time.Time, justDeclined bool) (int, time.Time) {
	sched := s.Settings.RetrySchedule
	done, at := s.RetriesDone, s.RetryAt
	if at.IsZero() || at.After(now) || done >= len(sched) {
		return done, at
	}
	timeOf := func(i int) time.Time { return s.FirstFailureAt.Add(sched[i] + s.PausedTotal) }
	last := done // the last retry of the schedule due at now
	for last+1 < len(sched) && !timeOf(last+1).After(now) {
		last++
	}
	if !justDeclined {
		if last == done {
			return done, at
		}
		return last, timeOf(last)
	}
	if last+1 < len(sched) && (deadline.IsZero() || !timeOf(last+1).After(deadline)) {
		return last + 1, timeOf(last + 1)
	}
	owed := now.Add(sched[0])
	if !deadline.IsZero() && deadline.Before(owed) {
		owed = deadline
	}
	return last, owed
}

// joinedRetryMargin is how long before the take-away deadline a joined
// payment's retry comes at the latest (retryForJoined): time for its
// decline to be told, or its success to end the life, before anything
// is taken away.
const joinedRetryMargin = time.Hour

// retryForJoined is the life's next retry once the customer is told, at
// now, of a failed payment that joined the life, given the take-away
// deadline it could cause (zero: none): the retries counted done, when
// the schedule's next is due, and when a round of the payment's own,
// outside the schedule, is due (zero: none).
//
// The latest a retry may come for it is joinedRetryMargin before the
// deadline (halfway to a deadline nearer than the margin). A retry by
// then covers it, for a round tries every open payment: the schedule's
// next, or a round of its own already owed to a payment that joined
// before. Otherwise it is owed one:
//
//   - the schedule is spent: its own retry is the schedule's last again
//     (done is one less than the schedule's length), a first interval of
//     the schedule after now, or at the latest if that comes sooner;
//   - the schedule's next comes after the latest (a schedule longer than
//     the grace period, a deadline set by the notice lead): a round of
//     its own at the same time, outside the schedule, which goes on as
//     it was, neither made sooner nor counted.
//
// The interval counts from now, when the customer is told, not from when
// the payment failed: the deadline moves with the notice (no sooner than
// the notice lead after it), so a late notice does not cut the time left
// for a retry, and a payment whose failure is old news (adopted, found as
// a suspended customer pays) is not retried the moment it is told of. It
// is never at once, on the card that just declined it: with no time left
// before the deadline, none. No schedule, no retry.
func retryForJoined(s *RecoveryState, now, deadline time.Time) (int, time.Time, time.Time) {
	sched := s.Settings.RetrySchedule
	done, at, own := s.RetriesDone, s.RetryAt, s.JoinedRetryAt
	if len(sched) == 0 {
		return done, at, own
	}
	covers := func(t time.Time) bool {
		return !t.IsZero() && (deadline.IsZero() || !t.After(latestJoinedRetry(now, deadline)))
	}
	if covers(at) || covers(own) {
		return done, at, own
	}
	next := now.Add(sched[0])
	if !deadline.IsZero() {
		if latest := latestJoinedRetry(now, deadline); latest.Before(next) {
			next = latest
		}
	}
	if !next.After(now) {
		return done, at, own
	}
	if at.IsZero() && done >= len(sched) {
		return len(sched) - 1, next, own
	}
	if at.IsZero() {
		return done, at, own // not spent, nothing ahead: the schedule's own wake sets its next
	}
	return done, at, next
}

// latestJoinedRetry is the latest a joined payment's retry may come
// before deadline: joinedRetryMargin before it, or halfway to it from now
// when it is nearer than the margin.
func latestJoinedRetry(now, deadline time.Time) time.Time {
	latest := deadline.Add(-joinedRetryMargin)
	if !latest.After(now) {
		latest = now.Add(deadline.Sub(now) / 2)
	}
	return latest
}

// retryNowSeen is what a retry_now update accepted during a retry round,
// with no confirm under way, found: the confirms the round had begun.
type retryNowSeen struct{ confirms int }

// retryNowAfterCharges reports whether a retry_now accepted during a
// round (seen; nil: none so accepted, or one taken while a confirm was
// under way) still asks for a retry once the round has begun confirms in
// all: true when the round began no confirm after it was asked. A charge
// begun after the retry asked is that retry; one done before it is not.
func retryNowAfterCharges(seen *retryNowSeen, confirms int) bool {
	return seen != nil && confirms == seen.confirms
}

// ownDeclineOrder is the intent's ordering time (LastEventAt) after a
// confirm by dunning declined. Failure events are ordered by their
// created, Stripe's clock, so the decline's own time by that clock
// (declinedAt: its charge's created) stands for it where the activity
// read it; else sent, when the workflow sent the confirm, by its own
// clock: the decline came no sooner, and a skew between the two clocks
// can only misorder an event created within it of the confirm. The
// ordering time never goes back: a newer event applied while the confirm
// ran stays the newest.
func ownDeclineOrder(last, declinedAt, sent time.Time) time.Time {
	at := declinedAt
	if at.IsZero() {
		at = sent
	}
	if at.After(last) {
		return at
	}
	return last
}
