package workflows_test

import (
	"context"
	"strings"
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
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(expiringAt)
	env.RegisterActivity(acts)
	var run expiryRun
	env.OnActivity(acts.CustomerProfile, mock.Anything, mock.Anything).Return(activities.CustomerProfile{CustomerID: "acme-1"}, nil)
	env.OnActivity(acts.PaymentMethods, mock.Anything, mock.Anything).Return(pms, nil)
	env.OnActivity(acts.Notice, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NoticeInput) (activities.NotifyResult, error) {
			run.notices = append(run.notices, in)
			if refuse != nil {
				return activities.NotifyResult{}, refuse(in)
			}
			return activities.NotifyResult{}, nil
		})
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

func cardUpdate(env *testsuite.TestWorkflowEnvironment, after time.Duration, created time.Time, id string) {
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(workflows.SignalCardUpdated, workflows.CardUpdatedSignal{EventID: id, Created: created, Source: "payment_method.attached"})
	}, after)
}

func TestCardUpdatedBeforeTheReminder(t *testing.T) {
	run := runExpiry(t, activities.PaymentMethods{}, func(env *testsuite.TestWorkflowEnvironment) {
		cardUpdate(env, 48*time.Hour, expiringAt.Add(48*time.Hour), "evt_upd")
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
	run := runExpiry(t, activities.PaymentMethods{}, func(env *testsuite.TestWorkflowEnvironment) {
		cardUpdate(env, 16*24*time.Hour, expiringAt.Add(16*24*time.Hour), "evt_upd")
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
	run := runExpiry(t, pms, nil)
	if len(run.alerts) != 0 || !strings.Contains(run.res.Outcome, "another payment method") {
		t.Fatalf("alerts %+v outcome %q, want no alert", run.alerts, run.res.Outcome)
	}
}

func TestCardExpiryIgnoresOlderAndRepeatedEvents(t *testing.T) {
	pms := activities.PaymentMethods{DefaultID: card.ID}
	run := runExpiry(t, pms, func(env *testsuite.TestWorkflowEnvironment) {
		// An update from before the expiring event does not end the watch,
		// and Stripe repeating the expiring event starts nothing new.
		cardUpdate(env, time.Hour, expiringAt.Add(-time.Hour), "evt_old_update")
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
	pms := activities.PaymentMethods{DefaultID: "card_spare", Methods: []activities.PaymentMethod{
		{ID: card.ID, ExpMonth: 4, ExpYear: 2026, Expired: true},
		{ID: "card_spare", ExpMonth: 1, ExpYear: 2030},
	}}
	run := runExpiryMailer(t, pms, mailerRefuses, nil)
	if noticeTypes(run.notices) != "card_expiring,card_expiring_reminder" {
		t.Fatalf("notices %s, want the notice and the reminder tried", noticeTypes(run.notices))
	}
	if len(run.alerts) != 2 {
		t.Fatalf("alerts %+v, want one for each refused notice", run.alerts)
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
	if !strings.Contains(run.res.Outcome, "another payment method") {
		t.Errorf("outcome %q, want the watch to go on to its end", run.res.Outcome)
	}
}

// The watch that ends early on a card update has sent one notice; its
// refusal reaches ops all the same.
func TestCardExpiryNoticeRefusedThenCardUpdatedStillReachesOps(t *testing.T) {
	run := runExpiryMailer(t, activities.PaymentMethods{}, mailerRefuses, func(env *testsuite.TestWorkflowEnvironment) {
		cardUpdate(env, 48*time.Hour, expiringAt.Add(48*time.Hour), "evt_upd")
	})
	if len(run.alerts) != 1 || !strings.HasSuffix(run.alerts[0].Key, ":undelivered:2026-04:notice") {
		t.Fatalf("alerts %+v, want one about the card_expiring notice", run.alerts)
	}
	if !strings.Contains(run.res.Outcome, "before the reminder") {
		t.Errorf("outcome %q", run.res.Outcome)
	}
}
