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
	// fresh is set from expiryFreshStateChange on: Stripe is asked about
	// the card before each notice, on each card event and at expiry.
	fresh bool
	// recheck is set by a card event that Stripe is to confirm.
	recheck bool
	// why says what Stripe showed that ended the watch.
	why     string
	updates workflow.ReceiveChannel
	repeats workflow.ReceiveChannel
	// untold are the notices given up at the expiry before ops heard
	// that they were held, for the alerts at expiry to tell.
	untold []string
}

// CardExpiryWorkflow watches one expiring card (ID card-expiry-<card>): a
// notice to the customer now, a reminder ReminderBefore the card expires if
// nothing changed, and at expiry, if the card is still the customer's
// default or only way to pay, an ops alert that the account is at risk. A
// card update for the customer ends it early, quietly, once Stripe shows
// that the card no longer matters (renewed, removed, or another usable
// card the default); Stripe is asked again before each notice and at
// expiry, so that an event late or out of order tells no one anything
// stale.
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
	w.fresh = version(ctx, expiryFreshStateChange, 1) == 1

	var profile activities.CustomerProfile
	if err := workflow.ExecuteActivity(ctx, a.CustomerProfile, activities.CustomerInput{StripeCustomerID: in.StripeCustomerID}).Get(ctx, &profile); err != nil {
		w.record(ctx, "read customer", in.StripeCustomerID, "failed: "+errText(err), false)
	}
	w.s.CustomerID = profile.CustomerID

	if w.fresh && OpeningOf(workflow.Now(ctx), expires, w.s.ReminderAt) == OpenExpired &&
		version(ctx, expiryLateEventChange, 1) == 1 {
		// The event came after the card expired (a late delivery, a
		// replay, a retry): "expires soon" would be false. What the watch
		// does at expiry is due now.
		w.record(ctx, "expiring event after the expiry", fmt.Sprintf("expired %s", expires.UTC().Format(time.RFC3339)),
			"no expiring notice; checking Stripe", false)
		w.s.Stage = CardExpired
		return w.atExpiry(ctx), nil
	}
	if w.fresh && w.settled(ctx, "before the notice") {
		return w.end(ctx, "nothing to tell: "+w.why), nil
	}
	w.notice(ctx, "card_expiring", "notice")
	if w.updated {
		return w.end(ctx, "card updated during the notice: "+w.why), nil
	}
	if !w.s.ReminderAt.IsZero() && workflow.Now(ctx).Before(w.s.ReminderAt) {
		w.plan(ctx, "reminder", w.s.ReminderAt)
		if w.waitUntil(ctx, w.s.ReminderAt) {
			return w.end(ctx, "card updated before the reminder"), nil
		}
		if w.fresh && w.settled(ctx, "before the reminder") {
			return w.end(ctx, "no reminder: "+w.why), nil
		}
		w.s.Stage = CardReminded
		w.notice(ctx, "card_expiring_reminder", "reminder")
		if w.updated {
			return w.end(ctx, "card updated during the reminder: "+w.why), nil
		}
	}
	w.plan(ctx, "check at expiry", expires)
	if w.waitUntil(ctx, expires) {
		return w.end(ctx, "card updated before it expired"), nil
	}

	// The card has expired with nothing changed: is the account at risk?
	// Stripe is asked, not assumed.
	w.s.Stage = CardExpired
	if w.fresh {
		return w.atExpiry(ctx), nil
	}
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
		if w.recheck {
			w.recheck = false
			if w.settled(ctx, "on the card event") {
				break
			}
			continue
		}
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
			w.onExpiring(ctx, s)
		})
		sel.Select(ctx)
		if fired {
			return w.updated
		}
		cancel()
	}
	return true
}

func (w *cardExpiry) onExpiring(ctx workflow.Context, s CardExpiringSignal) {
	if !w.remember(s.EventID) {
		return
	}
	if w.fresh && s.Card.ExpYear != 0 && (s.Card.ExpMonth != w.in.Card.ExpMonth || s.Card.ExpYear != w.in.Card.ExpYear) {
		// The same card with another expiry: it changed since the watch began.
		w.recheck = true
		w.record(ctx, "expiring again", s.EventID, fmt.Sprintf("expiry now %02d/%d; checking Stripe", s.Card.ExpMonth, s.Card.ExpYear), false)
		return
	}
	w.record(ctx, "expiring again", s.EventID, "already watching", false)
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
	if w.fresh {
		// Any of the customer's card events comes here, not only this
		// card's: Stripe says whether this one still matters.
		w.recheck = true
		w.record(ctx, "card updated", firstNonEmpty(s.PaymentMethodID, s.Source), "checking Stripe", false)
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
	in := activities.NoticeInput{
		Key:  key,
		Type: typ, CustomerID: w.s.CustomerID, StripeCustomerID: w.in.StripeCustomerID,
		CardBrand: c.Brand, CardLast4: c.Last4, CardExpMonth: c.ExpMonth, CardExpYear: c.ExpYear,
		Deadline: &expires, CreatedAt: workflow.Now(ctx),
	}
	var err error
	if w.fresh && version(ctx, expiryNoticeOverdueChange, 1) == 1 {
		err = w.sendWatched(ctx, in, step, &res)
	} else {
		err = workflow.ExecuteActivity(ctx, a.Notice, in).Get(ctx, &res)
	}
	if w.updated {
		// Cancelled for a card event on which Stripe showed the card no
		// longer matters: the notice is not sent.
		w.record(ctx, "customer notice "+typ, c.Brand+" ending "+c.Last4, "not sent: "+w.why, false)
		return
	}
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

// expiryNoticeOverdueChange tells ops of a card-expiry notice the mailer
// has not taken for noticeOverdueAfter (the activity retries a mailer
// outage for as long as it lasts), and gives the notice up once the card
// has expired, when "expires soon" is no longer true; watches recorded
// before it waited on the notice, silently, however long it took.
const expiryNoticeOverdueChange = "expiry-notice-overdue"

// noticeOverdueAfter is how long a card-expiry notice may go undelivered
// before ops hear of it.
const noticeOverdueAfter = time.Hour

// expiryNoticeCardEventChange has a card event that comes while a notice
// is held (the mailer down, the activity retrying) cancel the notice and
// ask Stripe about the card: the watch ends without the notice when the
// card no longer matters, and sends it again, under the same key and with
// the same input, when it still does. The notice waits for its
// cancellation, so that one the mailer took just before is recorded as
// sent. Watches recorded before it left card events unread until the
// notice was done, and told a customer who had just replaced the card
// that it expires soon.
const expiryNoticeCardEventChange = "expiry-notice-card-event"

// sendWatched sends the notice in, telling ops once if it is still not
// delivered after noticeOverdueAfter, and cancelling it if the card
// expires first or (from expiryNoticeCardEventChange on) a card event
// comes on which Stripe shows the card no longer matters; w.updated is
// then set. It returns the notice's error: a cancellation when it was
// given up.
func (w *cardExpiry) sendWatched(ctx workflow.Context, in activities.NoticeInput, step string, res *activities.NotifyResult) error {
	c := w.in.Card
	heed := version(ctx, expiryNoticeCardEventChange, 1) == 1
	activityCtx := ctx
	if heed {
		opts := workflow.GetActivityOptions(ctx)
		opts.WaitForCancellation = true
		activityCtx = workflow.WithActivityOptions(ctx, opts)
	}
	// The notice is scheduled before the timers, as it was before
	// expiry-notice-card-event.
	noticeCtx, cancelNotice := workflow.WithCancel(activityCtx)
	sent := workflow.ExecuteActivity(noticeCtx, a.Notice, in)
	timerCtx, cancelTimers := workflow.WithCancel(ctx)
	defer cancelTimers()
	started := workflow.Now(ctx)
	overdue := workflow.NewTimer(timerCtx, noticeOverdueAfter)
	var expired workflow.Future
	if d := w.s.ExpiresAt.Sub(started); d > 0 {
		expired = workflow.NewTimer(timerCtx, d)
	}
	told, gaveUp := false, false
	giveUp := func() {
		gaveUp = true
		if !told {
			w.untold = append(w.untold, in.Type)
		}
		w.record(ctx, "customer notice "+in.Type, step, "given up: the card has expired", false)
	}
	for {
		done, interrupted := false, false
		for !done {
			sel := workflow.NewSelector(ctx)
			sel.AddFuture(sent, func(workflow.Future) { done = true })
			if !told {
				sel.AddFuture(overdue, func(workflow.Future) {
					told = true
					var alerted activities.NotifyResult
					err := workflow.ExecuteActivity(ctx, a.Alert, activities.AlertInput{
						Key: w.id + ":overdue:" + strings.TrimPrefix(in.Key, w.id+":"), Severity: "critical",
						CustomerID: w.s.CustomerID, StripeCustomerID: w.in.StripeCustomerID, WorkflowID: w.id,
						Title: "Customer notice not delivered yet: " + w.in.StripeCustomerID,
						Text: fmt.Sprintf("The %s notice for %s ending %s (expires %02d/%d) has not reached the mailer since %s; "+
							"dunning keeps trying until the card expires. Check the mailer, or tell the customer by hand.",
							in.Type, c.Brand, c.Last4, c.ExpMonth, c.ExpYear, started.UTC().Format(time.RFC3339)),
					}).Get(ctx, &alerted)
					w.record(ctx, "ops alert (critical)", "customer notice "+in.Type+" not delivered after "+noticeOverdueAfter.String(),
						outcomeOf(err, "sent"), alerted.DryRun)
				})
			}
			if expired != nil && !gaveUp {
				sel.AddFuture(expired, func(workflow.Future) {
					cancelNotice()
					giveUp()
				})
			}
			if heed {
				sel.AddReceive(w.updates, func(ch workflow.ReceiveChannel, _ bool) {
					var s CardUpdatedSignal
					ch.Receive(ctx, &s)
					w.onUpdated(ctx, s)
				})
				sel.AddReceive(w.repeats, func(ch workflow.ReceiveChannel, _ bool) {
					var s CardExpiringSignal
					ch.Receive(ctx, &s)
					w.onExpiring(ctx, s)
				})
			}
			sel.Select(ctx)
			if !done && !interrupted && !gaveUp && w.recheck {
				// "Expires soon" may no longer be true: nothing more
				// goes to the mailer until Stripe has said.
				interrupted = true
				cancelNotice()
				w.record(ctx, "customer notice "+in.Type, step, "held back: a card event came; checking Stripe", false)
			}
		}
		err := sent.Get(ctx, res)
		cancelNotice()
		if gaveUp && err == nil && len(w.untold) > 0 && w.untold[len(w.untold)-1] == in.Type {
			// The mailer took it before the cancellation reached it: the
			// customer was told after all.
			w.untold = w.untold[:len(w.untold)-1]
		}
		if !interrupted || gaveUp || !temporal.IsCanceledError(err) {
			// Sent (the mailer took it before the cancellation reached
			// it), refused, or given up; a card event still to check is
			// checked by the wait that follows.
			return err
		}
		w.recheck = false
		if w.settled(ctx, "on the card event") {
			return err
		}
		if expired != nil && expired.IsReady() {
			giveUp()
			return err
		}
		w.record(ctx, "customer notice "+in.Type, step, "sending again: the card still matters", false)
		noticeCtx, cancelNotice = workflow.WithCancel(activityCtx)
		sent = workflow.ExecuteActivity(noticeCtx, a.Notice, in)
	}
}

// expiryLateEventChange has a watch whose expiring event arrives after the
// card's expiry skip the expiring notice and reminder and go straight to
// what it does at expiry; watches recorded before it told the customer the
// card "expires soon" all the same.
const expiryLateEventChange = "expiry-late-event"

// Opening is what a watch does first, given when its event is taken up.
type Opening string

const (
	// OpenNoticeAndReminder: the notice now, the reminder later.
	OpenNoticeAndReminder Opening = "notice_and_reminder"
	// OpenNoticeOnly: the reminder's time has passed; the notice alone
	// still tells the truth, that the card expires soon.
	OpenNoticeOnly Opening = "notice_only"
	// OpenExpired: the card has expired already; the watch does what it
	// does at expiry, and tells no one that it expires soon.
	OpenExpired Opening = "expired"
)

// OpeningOf decides how a watch opens at now for a card that stops working
// at expires (the start of the month after its expiry month), with its
// reminder due at reminderAt (zero: none).
func OpeningOf(now, expires, reminderAt time.Time) Opening {
	switch {
	case !now.Before(expires):
		return OpenExpired
	case reminderAt.IsZero() || !now.Before(reminderAt):
		return OpenNoticeOnly
	}
	return OpenNoticeAndReminder
}

// expiryFreshStateChange has the watch ask Stripe about the card before
// each notice, on each card event and at expiry, and act on its answer;
// watches recorded before it trusted the expiring event throughout and
// ended on any card event of the customer.
const expiryFreshStateChange = "expiry-fresh-state"

// CardStanding is what Stripe's list of the customer's payment methods
// says of a watched card.
type CardStanding string

const (
	// CardDue: attached with the watched expiry, and the default or the
	// customer's only usable card: its expiry matters.
	CardDue CardStanding = "due"
	// CardRenewed: attached with a later expiry (the network's account
	// updater, or the customer).
	CardRenewed CardStanding = "renewed"
	// CardRemoved: no longer attached to the customer.
	CardRemoved CardStanding = "removed"
	// CardSpare: attached, but another usable card is the default, and
	// no subscription charges this one.
	CardSpare CardStanding = "spare"
	// CardDefaultCovered: the customer's default, but every subscription
	// charges a usable card of its own: only what is charged to the
	// customer's default (invoices outside a subscription) rides on it.
	CardDefaultCovered CardStanding = "default_covered"
	// CardUnknown: Stripe could not be read, or is not configured.
	CardUnknown CardStanding = "unknown"
)

// StandingOf says what pms (read with readErr) says of the watched card c,
// and in a few words why.
func StandingOf(c CardInfo, pms activities.PaymentMethods, readErr error) (CardStanding, string) {
	switch {
	case readErr != nil:
		return CardUnknown, "stripe not read: " + errText(readErr)
	case pms.DryRun:
		return CardUnknown, "stripe not configured"
	}
	others := 0
	var listed *activities.PaymentMethod
	for i, m := range pms.Methods {
		switch {
		case m.ID == c.ID:
			listed = &pms.Methods[i]
		case !m.Expired:
			others++
		}
	}
	switch {
	case listed == nil:
		return CardRemoved, "the card is no longer the customer's"
	case listed.ExpYear*12+listed.ExpMonth > c.ExpYear*12+c.ExpMonth:
		return CardRenewed, fmt.Sprintf("the card now expires %02d/%d", listed.ExpMonth, listed.ExpYear)
	}
	why := fmt.Sprintf("default %s, %d other usable", firstNonEmpty(pms.DefaultID, "none"), others)
	switch {
	case pms.SubscriptionsUnread != "":
		// A subscription may charge the card: it is not taken for a spare.
		return CardDue, why + "; subscriptions not read: " + pms.SubscriptionsUnread
	case !pms.SubscriptionsRead:
		// Not asked for (watches recorded before subscriptions were read).
		if pms.DefaultID != c.ID && others > 0 {
			return CardSpare, why
		}
		return CardDue, why
	}
	var pays, covered []string
	for _, sub := range pms.Subscriptions {
		switch payer := firstNonEmpty(sub.PaymentMethodID, pms.DefaultID); {
		case payer == c.ID:
			pays = append(pays, sub.ID)
		case sub.PaymentMethodID != "" && listedUsable(pms, sub.PaymentMethodID):
			covered = append(covered, sub.ID)
		}
	}
	switch {
	case len(pays) > 0:
		return CardDue, why + "; charged for " + strings.Join(pays, ", ")
	case pms.DefaultID == c.ID && len(covered) > 0 && len(covered) == len(pms.Subscriptions):
		return CardDefaultCovered, why + "; every subscription charges its own card (" + strings.Join(covered, ", ") + ")"
	case pms.DefaultID != c.ID && others > 0:
		return CardSpare, why + fmt.Sprintf("; no subscription charges it (%d read)", len(pms.Subscriptions))
	}
	return CardDue, why
}

// listedUsable reports whether pms lists the card id unexpired.
func listedUsable(pms activities.PaymentMethods, id string) bool {
	for _, m := range pms.Methods {
		if m.ID == id {
			return !m.Expired
		}
	}
	return false
}

// standingReadWithin bounds a read of Stripe before a notice or on a card
// event, retries included: a Stripe outage delays no notice for longer.
const standingReadWithin = 10 * time.Minute

// standing reads the card's standing from Stripe now; readCtx sets how
// long the read may take.
func (w *cardExpiry) standing(readCtx workflow.Context, when string) (CardStanding, string, bool) {
	var pms activities.PaymentMethods
	err := workflow.ExecuteActivity(readCtx, a.PaymentMethods, activities.CustomerInput{
		StripeCustomerID: w.in.StripeCustomerID, WithSubscriptions: true,
	}).Get(readCtx, &pms)
	st, why := StandingOf(w.in.Card, pms, err)
	w.record(readCtx, "payment methods "+when, why, string(st), pms.DryRun)
	return st, why, pms.DryRun
}

// settled asks Stripe whether the card still matters; true, with w.why
// set, when it does not (renewed, removed, or a spare), and the watch
// ends. Unknown keeps watching, so that a customer is rather told twice
// than not at all, except for a card event with Stripe not configured,
// which is taken at its word as before.
func (w *cardExpiry) settled(ctx workflow.Context, when string) bool {
	readCtx := workflow.WithScheduleToCloseTimeout(ctx, standingReadWithin)
	st, why, dryRun := w.standing(readCtx, when)
	switch {
	case st == CardDue, st == CardDefaultCovered, st == CardUnknown && !(dryRun && when == "on the card event"):
		return false
	}
	w.updated, w.why = true, why
	return true
}

// atExpiry decides, once the card has expired with the watch going on,
// whether the account is at risk, on Stripe's answer after every card
// event accepted so far, those that came while Stripe was read included.
func (w *cardExpiry) atExpiry(ctx workflow.Context) CardExpiryResult {
	var st CardStanding
	var why string
	var dryRun bool
	for {
		st, why, dryRun = w.standing(ctx, "at expiry")
		for {
			var s CardUpdatedSignal
			if !w.updates.ReceiveAsync(&s) {
				break
			}
			w.onUpdated(ctx, s)
		}
		if !w.recheck {
			break
		}
		w.recheck = false
	}
	c := w.in.Card
	switch st {
	case CardRenewed, CardRemoved:
		w.updated = true
		return w.end(ctx, "card updated before it expired: "+why)
	case CardSpare:
		return w.end(ctx, "expired; another payment method remains")
	case CardDefaultCovered:
		var res activities.NotifyResult
		err := workflow.ExecuteActivity(ctx, a.Alert, activities.AlertInput{
			Key: w.id + ":default-covered", Severity: "warning", CustomerID: w.s.CustomerID, StripeCustomerID: w.in.StripeCustomerID, WorkflowID: w.id,
			Title: "Default card expired: " + w.in.StripeCustomerID,
			Text: fmt.Sprintf("%s ending %s expired (%02d/%d) and is still the customer's default, but every subscription charges "+
				"a card of its own (%s); what is charged to the customer's default, outside a subscription (usage invoices among it), will fail.%s",
				c.Brand, c.Last4, c.ExpMonth, c.ExpYear, why, w.untoldNote()),
		}).Get(ctx, &res)
		w.record(ctx, "ops alert (warning)", "default card expired; subscriptions covered", outcomeOf(err, "sent"), res.DryRun)
		return w.end(ctx, "expired; the customer's default, subscriptions charge their own cards, ops told")
	case CardUnknown:
		if !dryRun {
			var res activities.NotifyResult
			err := workflow.ExecuteActivity(ctx, a.Alert, activities.AlertInput{
				Key: w.id + ":at-risk-unknown", Severity: "critical", CustomerID: w.s.CustomerID, StripeCustomerID: w.in.StripeCustomerID, WorkflowID: w.id,
				Title: "Cannot tell whether " + w.in.StripeCustomerID + " can still pay: card expired",
				Text: fmt.Sprintf("%s ending %s expired (%02d/%d), and Stripe could not be read to tell whether the customer can "+
					"still pay another way (%s). Check the customer in the Stripe Dashboard.%s", c.Brand, c.Last4, c.ExpMonth, c.ExpYear, why, w.untoldNote()),
			}).Get(ctx, &res)
			w.record(ctx, "ops alert (critical)", "account may be at risk; stripe not read", outcomeOf(err, "sent"), res.DryRun)
			return w.end(ctx, "expired; stripe not read, ops alerted")
		}
	}
	var res activities.NotifyResult
	err := workflow.ExecuteActivity(ctx, a.Alert, activities.AlertInput{
		Key: w.id + ":at-risk", Severity: "warning", CustomerID: w.s.CustomerID, StripeCustomerID: w.in.StripeCustomerID, WorkflowID: w.id,
		Title: "Account at risk: " + w.in.StripeCustomerID + "'s card expired",
		Text: fmt.Sprintf("%s ending %s expired (%02d/%d) and is still the customer's default or only way to pay; the next charge will fail.%s",
			c.Brand, c.Last4, c.ExpMonth, c.ExpYear, w.untoldNote()),
	}).Get(ctx, &res)
	w.record(ctx, "ops alert (warning)", "account at risk", outcomeOf(err, "sent"), res.DryRun)
	return w.end(ctx, "expired; account at risk, ops alerted")
}

// untoldNote tells, for an alert at expiry, which notices never reached
// the customer (given up at the expiry, the mailer not taking them);
// "" when every one did or ops heard of it already.
func (w *cardExpiry) untoldNote() string {
	if len(w.untold) == 0 {
		return ""
	}
	return " The customer was never told: the " + strings.Join(w.untold, " and ") +
		" notice was not delivered (the mailer did not take it before the expiry); tell the customer by hand."
}
