package workflows_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"dunning/activities"
	"dunning/workflows"
)

// The card expires at the end of April 2026: it stops working on 1 May.
var (
	expiringAt = time.Date(2026, 4, 10, 9, 0, 0, 0, time.UTC)
	cardEnd    = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	card       = workflows.CardInfo{ID: "card_exp1", Brand: "Visa", Last4: "4242", ExpMonth: 4, ExpYear: 2026}
)

type expiryRun struct {
	res     workflows.CardExpiryResult
	notices []activities.NoticeInput
	alerts  []activities.AlertInput
	state   workflows.CardExpiryState
}

func runExpiry(t *testing.T, pms activities.PaymentMethods, setup func(env *testsuite.TestWorkflowEnvironment)) expiryRun {
	t.Helper()
	return runExpiryMailer(t, pms, nil, setup)
}

// runExpiryMailer runs the watch with a mailer that answers each notice
// with refuse's error (nil: sent).
func runExpiryMailer(t *testing.T, pms activities.PaymentMethods, refuse func(activities.NoticeInput) error,
	setup func(env *testsuite.TestWorkflowEnvironment)) expiryRun {
	t.Helper()
	return runExpiryStripe(t, newCardStripe(pms), refuse, setup)
}

// cardStripe stands in for Stripe's list of a customer's payment methods;
// a test changes it as the customer changes their cards.
type cardStripe struct {
	mu  sync.Mutex
	pms activities.PaymentMethods
	err error
}

func newCardStripe(pms activities.PaymentMethods) *cardStripe { return &cardStripe{pms: pms} }

func (s *cardStripe) set(pms activities.PaymentMethods) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pms = pms
}

func (s *cardStripe) answer(_ context.Context, in activities.CustomerInput) (activities.PaymentMethods, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pms := s.pms
	if !in.WithSubscriptions {
		// As the activity: subscriptions are listed only when asked for.
		pms.Subscriptions, pms.SubscriptionsRead, pms.SubscriptionsUnread = nil, false, ""
	}
	return pms, s.err
}

// runExpiryStripe runs the watch against st for Stripe.
func runExpiryStripe(t *testing.T, st *cardStripe, refuse func(activities.NoticeInput) error,
	setup func(env *testsuite.TestWorkflowEnvironment)) expiryRun {
	t.Helper()
	return runExpiryHeld(t, st, refuse, 0, setup)
}

// runExpiryHeld is runExpiryStripe with each attempt at a notice taking
// hold, on the workflow's clock, before the mailer answers.
func runExpiryHeld(t *testing.T, st *cardStripe, refuse func(activities.NoticeInput) error, hold time.Duration,
	setup func(env *testsuite.TestWorkflowEnvironment)) expiryRun {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(expiringAt)
	env.RegisterActivity(acts)
	var run expiryRun
	env.OnActivity(acts.CustomerProfile, mock.Anything, mock.Anything).Return(activities.CustomerProfile{CustomerID: "acme-1"}, nil)
	env.OnActivity(acts.PaymentMethods, mock.Anything, mock.Anything).Return(st.answer)
	notices := env.OnActivity(acts.Notice, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NoticeInput) (activities.NotifyResult, error) {
			run.notices = append(run.notices, in)
			if refuse != nil {
				return activities.NotifyResult{}, refuse(in)
			}
			return activities.NotifyResult{}, nil
		})
	if hold > 0 {
		notices.After(hold)
	}
	env.OnActivity(acts.Alert, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AlertInput) (activities.NotifyResult, error) {
			run.alerts = append(run.alerts, in)
			return activities.NotifyResult{}, nil
		})
	if setup != nil {
		setup(env)
	}
	env.ExecuteWorkflow(workflows.CardExpiryWorkflow, workflows.CardExpiryInput{
		StripeCustomerID: "cus_exp1", Card: card, EventID: "evt_expiring", Created: expiringAt, ReminderBefore: 7 * 24 * time.Hour,
	})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("card expiry did not complete: %v", env.GetWorkflowError())
	}
	if err := env.GetWorkflowResult(&run.res); err != nil {
		t.Fatal(err)
	}
	if v, err := env.QueryWorkflow(workflows.StatusQuery); err == nil {
		_ = v.Get(&run.state)
	}
	return run
}

func noticeTypes(ns []activities.NoticeInput) string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Type)
	}
	return strings.Join(out, ",")
}

// cardUpdate delivers a card update; st, when set, shows the card renewed
// at Stripe from then on, as the update did.
func cardUpdate(env *testsuite.TestWorkflowEnvironment, st *cardStripe, after time.Duration, created time.Time, id string) {
	env.RegisterDelayedCallback(func() {
		if st != nil {
			st.set(cardRenewed)
		}
		env.SignalWorkflow(workflows.SignalCardUpdated, workflows.CardUpdatedSignal{EventID: id, Created: created, Source: "payment_method.attached"})
	}, after)
}

func TestCardUpdatedBeforeTheReminder(t *testing.T) {
	st := newCardStripe(cardDue)
	run := runExpiryStripe(t, st, nil, func(env *testsuite.TestWorkflowEnvironment) {
		cardUpdate(env, st, 48*time.Hour, expiringAt.Add(48*time.Hour), "evt_upd")
	})
	if noticeTypes(run.notices) != "card_expiring" || len(run.alerts) != 0 || !strings.Contains(run.res.Outcome, "before the reminder") {
		t.Fatalf("notices %s alerts %d outcome %q", noticeTypes(run.notices), len(run.alerts), run.res.Outcome)
	}
	n := run.notices[0]
	if n.CardLast4 != "4242" || n.CardExpMonth != 4 || n.CardExpYear != 2026 || n.Deadline == nil || !n.Deadline.Equal(cardEnd) {
		t.Errorf("notice %+v, want the card's brand, last four and expiry", n)
	}
}

func TestCardUpdatedAfterTheReminder(t *testing.T) {
	// The reminder is due 7 days before 1 May: 24 April.
	st := newCardStripe(cardDue)
	run := runExpiryStripe(t, st, nil, func(env *testsuite.TestWorkflowEnvironment) {
		cardUpdate(env, st, 16*24*time.Hour, expiringAt.Add(16*24*time.Hour), "evt_upd")
	})
	if noticeTypes(run.notices) != "card_expiring,card_expiring_reminder" || len(run.alerts) != 0 {
		t.Fatalf("notices %s alerts %d", noticeTypes(run.notices), len(run.alerts))
	}
	if run.notices[0].Key == run.notices[1].Key {
		t.Errorf("the reminder reused the notice's idempotency key %q", run.notices[0].Key)
	}
}

func TestCardNeverUpdatedAndStillDefaultAlertsOps(t *testing.T) {
	pms := activities.PaymentMethods{DefaultID: card.ID, Methods: []activities.PaymentMethod{
		{ID: card.ID, ExpMonth: 4, ExpYear: 2026, Expired: true},
		{ID: "card_spare", ExpMonth: 1, ExpYear: 2030},
	}}
	run := runExpiry(t, pms, nil)
	if len(run.alerts) != 1 || !strings.Contains(run.alerts[0].Title, "at risk") {
		t.Fatalf("alerts %+v, want one at-risk alert", run.alerts)
	}
	if run.state.Stage != workflows.CardExpired {
		t.Errorf("stage %s", run.state.Stage)
	}
}

func TestCardNeverUpdatedWithAnotherMethodIsQuiet(t *testing.T) {
	pms := activities.PaymentMethods{DefaultID: "card_spare", Methods: []activities.PaymentMethod{
		{ID: card.ID, ExpMonth: 4, ExpYear: 2026, Expired: true},
		{ID: "card_spare", ExpMonth: 1, ExpYear: 2030},
	}}
	// Stripe lists the card unexpired until its month ends.
	pms.Methods[0].Expired = false
	st := newCardStripe(pms)
	run := runExpiryStripe(t, st, nil, func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(func() {
			p := pms
			p.Methods = []activities.PaymentMethod{{ID: card.ID, ExpMonth: 4, ExpYear: 2026, Expired: true}, pms.Methods[1]}
			st.set(p)
		}, cardEnd.Sub(expiringAt))
	})
	if len(run.alerts) != 0 || len(run.notices) != 0 || !strings.Contains(run.res.Outcome, "other usable") {
		t.Fatalf("alerts %+v notices %s outcome %q, want nothing told of a card another one stands in for",
			run.alerts, noticeTypes(run.notices), run.res.Outcome)
	}
}

func TestCardExpiryIgnoresOlderAndRepeatedEvents(t *testing.T) {
	st := newCardStripe(cardDue)
	run := runExpiryStripe(t, st, nil, func(env *testsuite.TestWorkflowEnvironment) {
		// An update from before the expiring event does not end the watch,
		// and Stripe repeating the expiring event starts nothing new.
		cardUpdate(env, nil, time.Hour, expiringAt.Add(-time.Hour), "evt_old_update")
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(workflows.SignalCardExpiring, workflows.CardExpiringSignal{EventID: "evt_expiring", Created: expiringAt, Card: card})
			env.SignalWorkflow(workflows.SignalCardExpiring, workflows.CardExpiringSignal{EventID: "evt_expiring_again", Created: expiringAt.Add(2 * time.Hour), Card: card})
		}, 2*time.Hour)
	})
	if noticeTypes(run.notices) != "card_expiring,card_expiring_reminder" || len(run.alerts) != 1 {
		t.Fatalf("notices %s alerts %d, want the full watch", noticeTypes(run.notices), len(run.alerts))
	}
}

// mailerRefusal is the Notice activity's answer when the product's mailer
// refuses a notice for good (a 4xx): a non-retryable NotifyRejected.
var mailerRefusal = temporal.NewNonRetryableApplicationError("customer notice webhook answered 422: unknown template",
	activities.ErrNotifyRejected, nil)

func mailerRefuses(activities.NoticeInput) error { return mailerRefusal }

// Nothing silent: a card-expiry notice the mailer refuses reaches ops,
// one critical alert per notice, so that someone tells the customer
// before the card stops working.
func TestCardExpiryNoticeRefusedByTheMailerReachesOps(t *testing.T) {
	run := runExpiryMailer(t, cardDue, mailerRefuses, nil)
	if noticeTypes(run.notices) != "card_expiring,card_expiring_reminder" {
		t.Fatalf("notices %s, want the notice and the reminder tried", noticeTypes(run.notices))
	}
	// One for each refused notice, then the account at risk at expiry.
	if len(run.alerts) != 3 || !strings.Contains(run.alerts[2].Title, "at risk") {
		t.Fatalf("alerts %+v, want one for each refused notice and the at-risk one", run.alerts)
	}
	for i, step := range []string{"notice", "reminder"} {
		al := run.alerts[i]
		if !strings.HasSuffix(al.Key, ":undelivered:2026-04:"+step) || al.Severity != "critical" ||
			al.StripeCustomerID != "cus_exp1" || al.CustomerID != "acme-1" {
			t.Errorf("alert %+v, want a critical alert keyed from the %s's key", al, step)
		}
		for _, want := range []string{run.notices[i].Type, "ending 4242", "04/2026", "unknown template", "Tell the customer by hand"} {
			if !strings.Contains(al.Text, want) {
				t.Errorf("alert text %q does not say %q", al.Text, want)
			}
		}
	}
	if !strings.Contains(run.res.Outcome, "at risk") {
		t.Errorf("outcome %q, want the watch to go on to its end", run.res.Outcome)
	}
}

// The watch that ends early on a card update has sent one notice; its
// refusal reaches ops all the same.
func TestCardExpiryNoticeRefusedThenCardUpdatedStillReachesOps(t *testing.T) {
	st := newCardStripe(cardDue)
	run := runExpiryStripe(t, st, mailerRefuses, func(env *testsuite.TestWorkflowEnvironment) {
		cardUpdate(env, st, 48*time.Hour, expiringAt.Add(48*time.Hour), "evt_upd")
	})
	if len(run.alerts) != 1 || !strings.HasSuffix(run.alerts[0].Key, ":undelivered:2026-04:notice") {
		t.Fatalf("alerts %+v, want one about the card_expiring notice", run.alerts)
	}
	if !strings.Contains(run.res.Outcome, "before the reminder") {
		t.Errorf("outcome %q", run.res.Outcome)
	}
}

// Stripe's answers about the watched card (4/2026, ID card_exp1), each a
// list of payment methods as the PaymentMethods activity reads it.
var (
	// The card is the default and the only card: everything rides on it.
	cardDue = activities.PaymentMethods{DefaultID: card.ID, Usable: 1, Methods: []activities.PaymentMethod{
		{ID: card.ID, Brand: "visa", Last4: "4242", ExpMonth: 4, ExpYear: 2026},
	}}
	// The network's account updater gave the same card a new expiry
	// (payment_method.automatically_updated keeps the ID).
	cardRenewed = activities.PaymentMethods{DefaultID: card.ID, Usable: 1, Methods: []activities.PaymentMethod{
		{ID: card.ID, Brand: "visa", Last4: "4242", ExpMonth: 4, ExpYear: 2029},
	}}
)

// An expiring event delivered after the card was renewed (Stripe does not
// keep order; the update reached no watch, as none ran yet): Stripe says
// the card no longer expires in April, so the customer is not told it
// does, and ops are not told the account is at risk.
func TestCardExpiryEventForACardAlreadyRenewedTellsNoOne(t *testing.T) {
	run := runExpiry(t, cardRenewed, nil)
	if len(run.notices) != 0 || len(run.alerts) != 0 {
		t.Fatalf("notices %s alerts %+v, want none for a card Stripe shows renewed", noticeTypes(run.notices), run.alerts)
	}
}

// An expiring event delivered after the card was removed: nothing to tell
// the customer about a card they no longer have.
func TestCardExpiryEventForACardAlreadyRemovedTellsNoOne(t *testing.T) {
	other := activities.PaymentMethods{DefaultID: "card_new", Usable: 1, Methods: []activities.PaymentMethod{
		{ID: "card_new", Brand: "visa", Last4: "1881", ExpMonth: 9, ExpYear: 2030},
	}}
	run := runExpiry(t, other, nil)
	if len(run.notices) != 0 || len(run.alerts) != 0 {
		t.Fatalf("notices %s alerts %+v, want none for a card the customer removed", noticeTypes(run.notices), run.alerts)
	}
}

// A change to another of the customer's cards (customer.source.updated of
// an old card's billing address) does not fix the expiring one: it is
// still the default and the only usable card, so the reminder goes out
// and ops hear of the account at risk when it expires.
func TestCardExpiryWatchOutlivesAnUpdateOfAnotherCard(t *testing.T) {
	pms := activities.PaymentMethods{DefaultID: card.ID, Usable: 1, Methods: []activities.PaymentMethod{
		{ID: card.ID, Brand: "visa", Last4: "4242", ExpMonth: 4, ExpYear: 2026},
		{ID: "card_old", Brand: "visa", Last4: "0005", ExpMonth: 1, ExpYear: 2025, Expired: true},
	}}
	run := runExpiry(t, pms, func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(workflows.SignalCardUpdated, workflows.CardUpdatedSignal{EventID: "evt_other_card",
				Created: expiringAt.Add(48 * time.Hour), PaymentMethodID: "card_old", Source: "customer.source.updated"})
		}, 48*time.Hour)
	})
	if noticeTypes(run.notices) != "card_expiring,card_expiring_reminder" || len(run.alerts) != 1 ||
		!strings.Contains(run.alerts[0].Title, "at risk") {
		t.Fatalf("notices %s alerts %+v, want the reminder and the at-risk alert", noticeTypes(run.notices), run.alerts)
	}
	if run.state.Stage != workflows.CardExpired {
		t.Errorf("stage %s, want %s", run.state.Stage, workflows.CardExpired)
	}
}

// The card renewed by the network while the reminder waits: Stripe's
// new expiry ends the watch, without a reminder or an alert.
func TestCardExpiryRenewedByTheNetworkEndsTheWatch(t *testing.T) {
	st := newCardStripe(cardDue)
	run := runExpiryStripe(t, st, nil, func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(func() {
			st.set(cardRenewed)
			env.SignalWorkflow(workflows.SignalCardUpdated, workflows.CardUpdatedSignal{EventID: "evt_auto", Created: expiringAt.Add(72 * time.Hour),
				PaymentMethodID: card.ID, Source: "payment_method.automatically_updated"})
		}, 72*time.Hour)
	})
	if noticeTypes(run.notices) != "card_expiring" || len(run.alerts) != 0 || !strings.Contains(run.res.Outcome, "before the reminder") {
		t.Fatalf("notices %s alerts %+v outcome %q", noticeTypes(run.notices), run.alerts, run.res.Outcome)
	}
	if run.state.Stage != workflows.CardUpdated {
		t.Errorf("stage %s, want %s", run.state.Stage, workflows.CardUpdated)
	}
}

// Fresh state decides: a card update accepted while Stripe is read at
// expiry is applied before ops are told the account is at risk.
func TestCardExpiryUpdateDuringTheExpiryReadIsApplied(t *testing.T) {
	st := newCardStripe(cardDue)
	reads := 0
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(expiringAt)
	env.RegisterActivity(acts)
	var alerts []activities.AlertInput
	env.OnActivity(acts.CustomerProfile, mock.Anything, mock.Anything).Return(activities.CustomerProfile{CustomerID: "acme-1"}, nil)
	env.OnActivity(acts.Notice, mock.Anything, mock.Anything).Return(activities.NotifyResult{}, nil)
	env.OnActivity(acts.Alert, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AlertInput) (activities.NotifyResult, error) {
			alerts = append(alerts, in)
			return activities.NotifyResult{}, nil
		})
	// Stripe answers slowly at expiry; the update lands meanwhile.
	env.OnActivity(acts.PaymentMethods, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.CustomerInput) (activities.PaymentMethods, error) {
			reads++
			return st.answer(ctx, in)
		}).After(time.Minute)
	env.RegisterDelayedCallback(func() {
		st.set(cardRenewed)
		env.SignalWorkflow(workflows.SignalCardUpdated, workflows.CardUpdatedSignal{EventID: "evt_auto", Created: cardEnd.Add(30 * time.Second),
			PaymentMethodID: card.ID, Source: "payment_method.automatically_updated"})
	}, cardEnd.Sub(expiringAt)+30*time.Second)
	env.ExecuteWorkflow(workflows.CardExpiryWorkflow, workflows.CardExpiryInput{
		StripeCustomerID: "cus_exp1", Card: card, EventID: "evt_expiring", Created: expiringAt, ReminderBefore: 7 * 24 * time.Hour,
	})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("card expiry did not complete: %v", env.GetWorkflowError())
	}
	var res workflows.CardExpiryResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 0 {
		t.Fatalf("alerts %+v (outcome %q), want none: the card was renewed before the alert", alerts, res.Outcome)
	}
}

// Stripe refusing the list of payment methods at expiry reaches ops as
// what it is: no one could tell whether the account is at risk. The alert
// does not claim the card is still the default.
func TestCardExpiryStripeUnreadableAtExpirySaysSo(t *testing.T) {
	st := newCardStripe(activities.PaymentMethods{})
	st.err = temporal.NewNonRetryableApplicationError("list payment methods of cus_exp1: stripe 403 permission_error",
		activities.ErrStripeRejected, nil)
	run := runExpiryStripe(t, st, nil, nil)
	if noticeTypes(run.notices) != "card_expiring,card_expiring_reminder" {
		t.Fatalf("notices %s, want both: an unreadable Stripe does not keep the customer from being told", noticeTypes(run.notices))
	}
	if len(run.alerts) != 1 {
		t.Fatalf("alerts %+v, want one", run.alerts)
	}
	al := run.alerts[0]
	if strings.Contains(al.Text, "is still the customer's default") || !strings.Contains(al.Text, "permission_error") ||
		al.Severity != "critical" {
		t.Errorf("alert %+v, want a critical alert that says Stripe could not be read and why", al)
	}
}

func TestStandingOf(t *testing.T) {
	pm := func(id string, m, y int, expired bool) activities.PaymentMethod {
		return activities.PaymentMethod{ID: id, ExpMonth: m, ExpYear: y, Expired: expired}
	}
	cards := []activities.PaymentMethod{pm(card.ID, 4, 2026, false), pm("card_new", 1, 2030, false), pm("card_old", 1, 2025, true)}
	spareDefault := activities.PaymentMethods{DefaultID: "card_new", Methods: cards}
	dueWithSpare := activities.PaymentMethods{DefaultID: card.ID, Methods: cards}
	sub := func(id, pm string) activities.SubscriptionPayer {
		return activities.SubscriptionPayer{ID: id, Status: "active", PaymentMethodID: pm}
	}
	withSubs := func(pms activities.PaymentMethods, subs ...activities.SubscriptionPayer) activities.PaymentMethods {
		pms.Subscriptions, pms.SubscriptionsRead = subs, true
		return pms
	}
	unreadSubs := func(pms activities.PaymentMethods) activities.PaymentMethods {
		pms.SubscriptionsUnread = "list subscriptions of cus_exp1: stripe rejected the request (403 permission_error)"
		return pms
	}
	dec := workflows.CardInfo{ID: "card_dec", ExpMonth: 12, ExpYear: 2026}
	for _, tc := range []struct {
		name string
		c    workflows.CardInfo
		pms  activities.PaymentMethods
		err  error
		want workflows.CardStanding
	}{
		{"default, alone", card, cardDue, nil, workflows.CardDue},
		{"renewed a year on", card, cardRenewed, nil, workflows.CardRenewed},
		{"December to January is later", dec, activities.PaymentMethods{Methods: []activities.PaymentMethod{pm("card_dec", 1, 2027, false)}}, nil, workflows.CardRenewed},
		{"same expiry, expired by now", card, activities.PaymentMethods{DefaultID: card.ID, Methods: []activities.PaymentMethod{pm(card.ID, 4, 2026, true)}}, nil, workflows.CardDue},
		{"not listed", card, activities.PaymentMethods{DefaultID: "card_new", Methods: []activities.PaymentMethod{pm("card_new", 1, 2030, false)}}, nil, workflows.CardRemoved},
		{"nothing listed", card, activities.PaymentMethods{}, nil, workflows.CardRemoved},
		{"another usable default", card, activities.PaymentMethods{DefaultID: "card_new", Methods: []activities.PaymentMethod{pm(card.ID, 4, 2026, false), pm("card_new", 1, 2030, false)}}, nil, workflows.CardSpare},
		{"no default, another usable", card, activities.PaymentMethods{Methods: []activities.PaymentMethod{pm(card.ID, 4, 2026, false), pm("card_new", 1, 2030, false)}}, nil, workflows.CardSpare},
		{"default elsewhere, others expired", card, activities.PaymentMethods{DefaultID: "src_bank", Methods: []activities.PaymentMethod{pm(card.ID, 4, 2026, false), pm("card_old", 1, 2025, true)}}, nil, workflows.CardDue},
		{"still default with a spare", card, activities.PaymentMethods{DefaultID: card.ID, Methods: []activities.PaymentMethod{pm(card.ID, 4, 2026, false), pm("card_new", 1, 2030, false)}}, nil, workflows.CardDue},
		{"stripe refused", card, activities.PaymentMethods{}, mailerRefusal, workflows.CardUnknown},
		// Subscriptions read: Stripe charges a subscription's own
		// default_payment_method (or default_source) before the customer's.
		{"another default, a subscription's own card", card, withSubs(spareDefault, sub("sub_a", card.ID)), nil, workflows.CardDue},
		{"another default, one of two subscriptions charges it", card, withSubs(spareDefault, sub("sub_a", ""), sub("sub_b", card.ID)), nil, workflows.CardDue},
		{"another default, subscriptions on the default", card, withSubs(spareDefault, sub("sub_a", "")), nil, workflows.CardSpare},
		{"another default, subscriptions on other cards", card, withSubs(spareDefault, sub("sub_a", "card_new")), nil, workflows.CardSpare},
		{"another default, no subscriptions", card, withSubs(spareDefault), nil, workflows.CardSpare},
		{"default, a subscription falls back to it", card, withSubs(dueWithSpare, sub("sub_a", "")), nil, workflows.CardDue},
		{"default, every subscription on its own good card", card, withSubs(dueWithSpare, sub("sub_a", "card_new"), sub("sub_b", "card_new")), nil, workflows.CardDefaultCovered},
		{"default, one subscription falls back", card, withSubs(dueWithSpare, sub("sub_a", "card_new"), sub("sub_b", "")), nil, workflows.CardDue},
		{"default, a subscription on an expired card", card, withSubs(dueWithSpare, sub("sub_a", "card_old")), nil, workflows.CardDue},
		{"default, a subscription on a method not listed", card, withSubs(dueWithSpare, sub("sub_a", "ba_bank")), nil, workflows.CardDue},
		{"default, no subscriptions", card, withSubs(dueWithSpare), nil, workflows.CardDue},
		{"another default, subscriptions unreadable", card, unreadSubs(spareDefault), nil, workflows.CardDue},
		{"renewed, subscriptions unreadable", card, unreadSubs(cardRenewed), nil, workflows.CardRenewed},
		{"removed, subscriptions unreadable", card, unreadSubs(activities.PaymentMethods{DefaultID: "card_new", Methods: []activities.PaymentMethod{pm("card_new", 1, 2030, false)}}), nil, workflows.CardRemoved},
		{"dry run", card, activities.PaymentMethods{DryRun: true}, nil, workflows.CardUnknown},
	} {
		if got, why := workflows.StandingOf(tc.c, tc.pms, tc.err); got != tc.want {
			t.Errorf("%s: %s (%s), want %s", tc.name, got, why, tc.want)
		}
	}
}

// After the card's expiry: the expiring event delivered late, replayed by
// reconciliation, or retried after days.
var afterCardEnd = cardEnd.Add(19 * 24 * time.Hour)

func TestOpeningOf(t *testing.T) {
	reminder := cardEnd.Add(-7 * 24 * time.Hour)
	dec := activities.CardExpiry(12, 2026) // 1 January 2027
	for _, tc := range []struct {
		name             string
		now, exp, remind time.Time
		want             workflows.Opening
	}{
		{"a month ahead", expiringAt, cardEnd, reminder, workflows.OpenNoticeAndReminder},
		{"just before the reminder", reminder.Add(-time.Second), cardEnd, reminder, workflows.OpenNoticeAndReminder},
		{"at the reminder", reminder, cardEnd, reminder, workflows.OpenNoticeOnly},
		{"between the reminder and the expiry", cardEnd.Add(-time.Hour), cardEnd, reminder, workflows.OpenNoticeOnly},
		{"no reminder configured", expiringAt, cardEnd, time.Time{}, workflows.OpenNoticeOnly},
		{"last second of the expiry month", cardEnd.Add(-time.Second), cardEnd, reminder, workflows.OpenNoticeOnly},
		{"the first instant of the next month", cardEnd, cardEnd, reminder, workflows.OpenExpired},
		{"weeks after", afterCardEnd, cardEnd, reminder, workflows.OpenExpired},
		{"after, with no reminder", afterCardEnd, cardEnd, time.Time{}, workflows.OpenExpired},
		{"December card on 31 December", time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), dec, dec.Add(-7 * 24 * time.Hour), workflows.OpenNoticeOnly},
		{"December card on 2 January", time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC), dec, dec.Add(-7 * 24 * time.Hour), workflows.OpenExpired},
	} {
		if got := workflows.OpeningOf(tc.now, tc.exp, tc.remind); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// An expiring event taken up after the card expired tells the customer
// nothing about a card that "expires soon": a card still relied on goes
// straight to the at-risk alert, as at expiry.
func TestCardExpiryEventAfterTheExpiryGoesToTheAtRiskAlert(t *testing.T) {
	due := activities.PaymentMethods{DefaultID: card.ID, Methods: []activities.PaymentMethod{
		{ID: card.ID, Brand: "visa", Last4: "4242", ExpMonth: 4, ExpYear: 2026, Expired: true},
	}}
	run := runExpiry(t, due, func(env *testsuite.TestWorkflowEnvironment) { env.SetStartTime(afterCardEnd) })
	if len(run.notices) != 0 {
		t.Fatalf("notices %s, want none: the card has already expired", noticeTypes(run.notices))
	}
	if len(run.alerts) != 1 || !strings.Contains(run.alerts[0].Title, "at risk") || run.alerts[0].Severity != "warning" {
		t.Fatalf("alerts %+v, want the at-risk alert", run.alerts)
	}
	if run.state.Stage != workflows.CardExpired || !strings.Contains(run.res.Outcome, "at risk") {
		t.Errorf("stage %s outcome %q", run.state.Stage, run.res.Outcome)
	}
}

// The same late event for a card another one stands in for ends quietly,
// with a record of why.
func TestCardExpiryEventAfterTheExpiryForASpareCardIsQuiet(t *testing.T) {
	spare := activities.PaymentMethods{DefaultID: "card_new", Methods: []activities.PaymentMethod{
		{ID: card.ID, ExpMonth: 4, ExpYear: 2026, Expired: true},
		{ID: "card_new", ExpMonth: 1, ExpYear: 2030},
	}}
	run := runExpiry(t, spare, func(env *testsuite.TestWorkflowEnvironment) { env.SetStartTime(afterCardEnd) })
	if len(run.notices) != 0 || len(run.alerts) != 0 {
		t.Fatalf("notices %s alerts %+v, want nothing told", noticeTypes(run.notices), run.alerts)
	}
	if !strings.Contains(run.res.Outcome, "another payment method remains") {
		t.Errorf("outcome %q", run.res.Outcome)
	}
	recorded := false
	for _, act := range run.state.Actions {
		recorded = recorded || strings.Contains(act.Kind, "after the expiry")
	}
	if !recorded {
		t.Errorf("actions %+v, want the late event recorded", run.state.Actions)
	}
}

// mailerDown answers like the Notice activity while the product's mailer
// is unreachable: a retryable error, which the activity retries. The
// testsuite stops retrying an activity after 10 attempts, where Temporal
// retries it for ever: each attempt of these tests is held (runExpiryHeld)
// for as long as many of the activity's attempts would take.
func mailerDown(attempts *int, upFrom int) func(activities.NoticeInput) error {
	return func(activities.NoticeInput) error {
		*attempts++
		if upFrom > 0 && *attempts >= upFrom {
			return nil
		}
		return temporal.NewApplicationError("post customer notice: dial tcp 10.0.0.7:443: connect: connection refused", "")
	}
}

// Nothing silent: a mailer outage that holds the notice for over an hour
// reaches ops once, while the notice goes on being tried and is sent when
// the mailer is back.
func TestCardExpiryNoticeHeldByAMailerOutageReachesOps(t *testing.T) {
	attempts := 0
	st := newCardStripe(cardDue)
	// Down for about two hours: six attempts of 20 minutes each fail.
	run := runExpiryHeld(t, st, mailerDown(&attempts, 7), 20*time.Minute, func(env *testsuite.TestWorkflowEnvironment) {
		cardUpdate(env, st, 5*24*time.Hour, expiringAt.Add(5*24*time.Hour), "evt_upd")
	})
	if attempts != 7 {
		t.Fatalf("%d attempts at the notice, want it tried until the mailer was back", attempts)
	}
	if len(run.alerts) != 1 {
		t.Fatalf("alerts %+v, want one telling ops the notice is held", run.alerts)
	}
	al := run.alerts[0]
	if al.Severity != "critical" || !strings.HasSuffix(al.Key, ":overdue:2026-04:notice") || !strings.Contains(al.Text, "card_expiring") ||
		!strings.Contains(al.Text, "ending 4242") {
		t.Errorf("alert %+v, want a critical alert keyed from the notice's key that names the notice and the card", al)
	}
	sent := false
	for _, act := range run.state.Actions {
		sent = sent || act.Kind == "customer notice card_expiring" && act.Outcome == "sent"
	}
	if !sent || !strings.Contains(run.res.Outcome, "before the reminder") {
		t.Errorf("actions %+v outcome %q, want the notice sent once the mailer was back", run.state.Actions, run.res.Outcome)
	}
}

// A mailer down until the card expires: ops hear of it after an hour; at
// the expiry the notice, no longer true, is given up, and the watch does
// what it does at expiry.
func TestCardExpiryNoticeHeldUntilTheExpiryIsGivenUp(t *testing.T) {
	attempts := 0
	// Ten attempts of an hour each outlast the six hours left.
	run := runExpiryHeld(t, newCardStripe(cardDue), mailerDown(&attempts, 0), time.Hour, func(env *testsuite.TestWorkflowEnvironment) {
		env.SetStartTime(cardEnd.Add(-6 * time.Hour))
	})
	if len(run.alerts) != 2 || !strings.Contains(run.alerts[0].Key, ":overdue:") || !strings.Contains(run.alerts[1].Title, "at risk") {
		t.Fatalf("alerts %+v, want the held notice, then the account at risk", run.alerts)
	}
	for _, n := range run.notices {
		if n.Type != "card_expiring" {
			t.Errorf("notice %s tried, want only the first notice", n.Type)
		}
	}
	gaveUp := false
	for _, act := range run.state.Actions {
		gaveUp = gaveUp || strings.Contains(act.Outcome, "given up")
	}
	if !gaveUp || !strings.Contains(run.res.Outcome, "at risk") {
		t.Errorf("actions %+v outcome %q, want the notice given up at expiry", run.state.Actions, run.res.Outcome)
	}
}

// The customer's cards for the subscription tests: the watched card, and
// a good one that is the customer's default unless a test says otherwise.
func subsCards(defaultID string, subs ...activities.SubscriptionPayer) activities.PaymentMethods {
	return activities.PaymentMethods{DefaultID: defaultID, Usable: 2, Methods: []activities.PaymentMethod{
		{ID: card.ID, Brand: "visa", Last4: "4242", ExpMonth: 4, ExpYear: 2026},
		{ID: "card_new", Brand: "visa", Last4: "1881", ExpMonth: 9, ExpYear: 2030},
	}, Subscriptions: subs, SubscriptionsRead: true}
}

// A card that an active subscription names as its own default payment
// method is charged for that subscription's invoices, whatever the
// customer's default: its expiry is told, and ops hear of it at expiry.
func TestCardExpiryOfASubscriptionsOwnCardIsTold(t *testing.T) {
	run := runExpiry(t, subsCards("card_new", activities.SubscriptionPayer{ID: "sub_pro", Status: "active", PaymentMethodID: card.ID}), nil)
	if noticeTypes(run.notices) != "card_expiring,card_expiring_reminder" {
		t.Fatalf("notices %s, want the notice and the reminder", noticeTypes(run.notices))
	}
	if len(run.alerts) != 1 || !strings.Contains(run.alerts[0].Title, "at risk") {
		t.Fatalf("alerts %+v, want the at-risk alert", run.alerts)
	}
}

// The customer's default expiring while every subscription charges a good
// card of its own: the customer is told (it is still their default), and
// at expiry ops get a warning that says what rides on it (invoices
// outside a subscription, usage invoices among them), not that the
// account is at risk.
func TestCardExpiryOfADefaultEverySubscriptionBypassesIsLessAtRisk(t *testing.T) {
	run := runExpiry(t, subsCards(card.ID, activities.SubscriptionPayer{ID: "sub_pro", Status: "active", PaymentMethodID: "card_new"}), nil)
	if noticeTypes(run.notices) != "card_expiring,card_expiring_reminder" {
		t.Fatalf("notices %s, want the notice and the reminder", noticeTypes(run.notices))
	}
	if len(run.alerts) != 1 {
		t.Fatalf("alerts %+v, want one", run.alerts)
	}
	al := run.alerts[0]
	if al.Severity != "warning" || strings.Contains(al.Title, "at risk") || !strings.Contains(al.Text, "sub_pro") ||
		!strings.Contains(al.Text, "outside a subscription") {
		t.Errorf("alert %+v, want a warning naming the subscription that charges its own card", al)
	}
}

// Fail safe: subscriptions Stripe refuses to list may charge the card, so
// it is not taken for a spare because another card is the default.
func TestCardExpirySubscriptionsUnreadableKeepTheWatchTelling(t *testing.T) {
	pms := subsCards("card_new")
	pms.SubscriptionsRead = false
	pms.SubscriptionsUnread = "list subscriptions of cus_exp1: stripe rejected the request (403 permission_error)"
	run := runExpiry(t, pms, nil)
	if noticeTypes(run.notices) != "card_expiring,card_expiring_reminder" || len(run.alerts) != 1 {
		t.Fatalf("notices %s alerts %+v, want the watch to run its course", noticeTypes(run.notices), run.alerts)
	}
	if !strings.Contains(run.alerts[0].Title, "at risk") {
		t.Errorf("alert %+v", run.alerts[0])
	}
}
