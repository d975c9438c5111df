package workflows_test

import (
	"context"
	"reflect"

	"go.temporal.io/sdk/converter"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"

	"dunning/activities"
	"dunning/workflows"
)

// noticeStarts counts, by type, the Notice activities the watch starts,
// with the input of each.
func noticeStarts(env *testsuite.TestWorkflowEnvironment, starts map[string][]activities.NoticeInput) {
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
		if info.ActivityType.Name != "Notice" {
			return
		}
		var in activities.NoticeInput
		if err := args.Get(&in); err == nil {
			starts[in.Type] = append(starts[in.Type], in)
		}
	})
}

// actionIndex is the index of the first action of kind whose outcome
// begins with outcome; -1 when there is none.
func actionIndex(acts []workflows.Action, kind, outcome string) int {
	for i, act := range acts {
		if act.Kind == kind && strings.HasPrefix(act.Outcome, outcome) {
			return i
		}
	}
	return -1
}

// The mailer holds the notice for three hours; an hour in, the customer
// renews the card. "Your card expires soon" would be false: the held
// notice is cancelled and Stripe asked at once, not after the mailer
// took it, and the watch ends as updated without telling the customer
// anything.
func TestCardExpiryNoticeHeldIsCancelledByACardUpdate(t *testing.T) {
	st := newCardStripe(cardDue)
	starts := map[string][]activities.NoticeInput{}
	run := runExpiryHeld(t, st, nil, 3*time.Hour, func(env *testsuite.TestWorkflowEnvironment) {
		noticeStarts(env, starts)
		cardUpdate(env, st, time.Hour, expiringAt.Add(time.Hour), "evt_renewed")
	})
	if len(starts["card_expiring"]) != 1 || len(starts["card_expiring_reminder"]) != 0 {
		t.Fatalf("notices started %v, want the first notice once and no reminder", starts)
	}
	if i := actionIndex(run.state.Actions, "customer notice card_expiring", "sent"); i >= 0 {
		t.Fatalf("actions %+v: the notice was recorded sent after the card was renewed", run.state.Actions)
	}
	if actionIndex(run.state.Actions, "customer notice card_expiring", "not sent") < 0 {
		t.Errorf("actions %+v, want the notice recorded as not sent", run.state.Actions)
	}
	for _, al := range run.alerts {
		if !strings.Contains(al.Key, ":overdue:") {
			t.Errorf("alert %+v, want none but the held notice's", al)
		}
	}
	if run.state.Stage != workflows.CardUpdated || !strings.Contains(run.res.Outcome, "card updated during the notice") {
		t.Errorf("stage %s outcome %q, want the watch ended as updated during the notice", run.state.Stage, run.res.Outcome)
	}
}

// The same, but the event is of another card (an old one's address
// changed): Stripe shows the watched card still the only one, so the
// notice goes on, sent again under the same key with the same input, and
// Stripe was asked when the event came, not three hours later.
func TestCardExpiryNoticeHeldGoesOnAfterAnUpdateOfAnotherCard(t *testing.T) {
	st := newCardStripe(cardDue)
	starts := map[string][]activities.NoticeInput{}
	run := runExpiryHeld(t, st, nil, 3*time.Hour, func(env *testsuite.TestWorkflowEnvironment) {
		noticeStarts(env, starts)
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(workflows.SignalCardUpdated, workflows.CardUpdatedSignal{EventID: "evt_other_card",
				Created: expiringAt.Add(time.Hour), PaymentMethodID: "card_old", Source: "customer.source.updated"})
		}, time.Hour)
	})
	read := actionIndex(run.state.Actions, "payment methods on the card event", "due")
	sent := actionIndex(run.state.Actions, "customer notice card_expiring", "sent")
	if read < 0 || sent < 0 || read > sent {
		t.Fatalf("actions %+v, want Stripe asked on the card event before the notice was sent", run.state.Actions)
	}
	if read := run.state.Actions[read].At; !read.Equal(expiringAt.Add(time.Hour)) {
		t.Errorf("Stripe asked at %s, want when the card event came", read)
	}
	first := starts["card_expiring"]
	if len(first) != 2 || !reflect.DeepEqual(first[0], first[1]) {
		t.Fatalf("notices started %+v, want the notice sent again with the same input", first)
	}
	if actionIndex(run.state.Actions, "customer notice card_expiring_reminder", "sent") < 0 || !strings.Contains(run.res.Outcome, "at risk") {
		t.Errorf("actions %+v outcome %q, want the reminder sent, and the account at risk", run.state.Actions, run.res.Outcome)
	}
}

// The reminder held by the mailer, and the card renewed an hour in: no
// reminder, the watch ends as updated, and ops hear of no account at
// risk.
func TestCardExpiryReminderHeldIsCancelledByACardUpdate(t *testing.T) {
	st := newCardStripe(cardDue)
	starts := map[string][]activities.NoticeInput{}
	reminderAt := cardEnd.Add(-7 * 24 * time.Hour)
	run := runExpiryHeld(t, st, nil, 3*time.Hour, func(env *testsuite.TestWorkflowEnvironment) {
		noticeStarts(env, starts)
		cardUpdate(env, st, reminderAt.Add(time.Hour).Sub(expiringAt), reminderAt.Add(time.Hour), "evt_renewed")
	})
	if len(starts["card_expiring_reminder"]) != 1 {
		t.Fatalf("notices started %v, want the reminder started once", starts)
	}
	if actionIndex(run.state.Actions, "customer notice card_expiring_reminder", "sent") >= 0 {
		t.Fatalf("actions %+v: the reminder was recorded sent after the card was renewed", run.state.Actions)
	}
	for _, al := range run.alerts {
		if !strings.Contains(al.Key, ":overdue:") {
			t.Errorf("alert %+v, want none but the held notices'", al)
		}
	}
	if run.state.Stage != workflows.CardUpdated || !strings.Contains(run.res.Outcome, "card updated during the reminder") {
		t.Errorf("stage %s outcome %q, want the watch ended as updated during the reminder", run.state.Stage, run.res.Outcome)
	}
}
