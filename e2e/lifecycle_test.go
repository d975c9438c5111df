package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"dunning/activities"
	"dunning/internal/stripefixture"
	"dunning/workflows"
)

// A failed payment nobody fixes: retried on the schedule (each retry
// declined at Stripe), suspended after the grace period, deprovisioned
// after that, the Amberflo customer deactivated and OFFBOARDED; the
// customer told at each step and ops alerted, each exactly once.
func TestFailedPaymentIsRetriedThenDeprovisioned(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1s,2s", "DUNNING_GRACE_PERIOD": "4s", "DUNNING_DEPROVISION_AFTER": "3s",
	}})
	customer, intent := stripefixture.NewID("cus"), stripefixture.NewID("pi")
	began := time.Now()
	s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent})

	s.WaitStage(customer, workflows.StagePastDue, 20*time.Second)
	s.WaitStage(customer, workflows.StageSuspended, 30*time.Second)
	if took := time.Since(began); took < 4*time.Second {
		t.Errorf("suspended %s after the failure, before the 4s grace period", took)
	}
	res := s.Recovery(customer, 30*time.Second)
	if res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("recovery ended %s (%s), want deprovisioned", res.Stage, res.Summary)
	}
	if st, _ := s.Stage(customer); st != workflows.StageDeprovisioned {
		t.Errorf("RecoveryStage = %q after the end, want deprovisioned", st)
	}

	// Two scheduled retries, each a real confirm with its own key, each
	// declined; nothing charged.
	confirms := s.Stripe.Confirms(intent)
	keys := map[string]bool{}
	for _, c := range confirms {
		if c.Handled != http.StatusPaymentRequired {
			t.Errorf("confirm answered %d, want 402 (the failed card declines): %s", c.Handled, c)
		}
		if !strings.HasPrefix(c.Key, workflows.RetryIdempotencyPrefix+":") {
			t.Errorf("confirm key %q lacks the %s prefix that marks dunning's own retries", c.Key, workflows.RetryIdempotencyPrefix)
		}
		keys[c.Key] = true
	}
	if len(keys) != 2 {
		t.Errorf("%d distinct retries of %s, want 2 (one per scheduled retry):\n%s", len(keys), intent, lines(confirms))
	}
	s.Check(customer, Expect{
		Control: map[string]int{"suspend": 1, "deprovision": 1},
		Notices: map[string]int{"payment_failed": 1, "payment_retry_failed": 2, "account_suspended": 1, "account_deprovisioned": 1},
		Alerts:  map[string]int{"past_due": 1, "suspended": 1, "deprovisioned": 1},
		Charges: map[string]int{intent: 0}, Deactivations: 1,
	})
	applied := s.Control.Applied(customer)
	if len(applied) == 2 && (applied[0].Action != "suspend" || applied[1].Action != "deprovision") {
		t.Errorf("control plane saw %s then %s, want suspend then deprovision", applied[0].Action, applied[1].Action)
	}
	if s.Amberflo.Enabled(customer) {
		t.Error("the Amberflo customer is still enabled")
	}
	if got := s.Amberflo.Stage(customer); got != "OFFBOARDED" {
		t.Errorf("the Amberflo customer's lifecycle stage is %q, want OFFBOARDED", got)
	}

	st := s.Status(customer)
	if st.Stage != workflows.StageDeprovisioned || st.RetriesDone != 2 || st.DryRunActions != 0 {
		t.Errorf("status: stage %s, %d retries done, %d dry-run actions; want deprovisioned, 2, 0", st.Stage, st.RetriesDone, st.DryRunActions)
	}
	if len(st.Intents) != 1 || st.Intents[0].State != workflows.IntentOpen || st.Intents[0].Attempts != 2 {
		t.Errorf("status intents: %+v, want one open intent with 2 attempts", st.Intents)
	}
}

// A failed payment, then a new card: the recovery retries at once (long
// before the first scheduled retry), the new card is charged exactly once,
// and the customer is recovered without anything taken away.
func TestCardUpdateRecoversAtOnce(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1h,2h", "DUNNING_GRACE_PERIOD": "3h", "DUNNING_CARD_UPDATE_DEBOUNCE": "1s",
	}})
	customer, intent := stripefixture.NewID("cus"), stripefixture.NewID("pi")
	s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent})
	s.WaitStage(customer, workflows.StagePastDue, 20*time.Second)
	s.Eventually("past-due notice", 20*time.Second, func() bool { return s.Notices.Kinds(customer)["payment_failed"] == 1 })

	began := time.Now()
	card := stripefixture.NewID("pm")
	s.Send(workflows.EventPaymentMethodAttached, stripefixture.Options{Customer: customer, ObjectID: card})
	res := s.Recovery(customer, 30*time.Second)
	took := time.Since(began)
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("recovery ended %s (%s), want recovered", res.Stage, res.Summary)
	}
	if took > 15*time.Second {
		t.Errorf("recovered %s after the card update; it should retry at once (debounce 1s)", took)
	}

	s.Check(customer, Expect{
		Notices: map[string]int{"payment_failed": 1, "payment_recovered": 1},
		Alerts:  map[string]int{"past_due": 1, "recovered": 1},
		Charges: map[string]int{intent: 1},
	})
	confirms := s.Stripe.Confirms(intent)
	if len(confirms) == 0 || !strings.Contains(string(confirms[len(confirms)-1].Body), "payment_method="+card) {
		t.Errorf("the retry did not charge the new card %s:\n%s", card, lines(confirms))
	}
	st := s.Status(customer)
	if len(st.Intents) != 1 || st.Intents[0].State != workflows.IntentPaid || st.RetriesDone != 0 {
		t.Errorf("status: intents %+v, %d scheduled retries done; want the intent paid by the card retry, no scheduled retry", st.Intents, st.RetriesDone)
	}
}

// Suspended, then the customer pays: resumed through the control plane
// at once, recovered, never deprovisioned.
func TestSuspendedCustomerWhoPaysIsResumed(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1s", "DUNNING_GRACE_PERIOD": "3s", "DUNNING_DEPROVISION_AFTER": "1h",
	}})
	customer, intent := stripefixture.NewID("cus"), stripefixture.NewID("pi")
	s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent})
	s.WaitStage(customer, workflows.StageSuspended, 30*time.Second)
	s.Eventually("suspension notice", 10*time.Second, func() bool { return s.Notices.Kinds(customer)["account_suspended"] == 1 })

	s.Send(workflows.EventPaymentSucceeded, stripefixture.Options{Customer: customer, ObjectID: intent})
	res := s.Recovery(customer, 30*time.Second)
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("recovery ended %s (%s), want recovered", res.Stage, res.Summary)
	}
	s.Check(customer, Expect{
		Control: map[string]int{"suspend": 1, "resume": 1},
		Notices: map[string]int{"payment_failed": 1, "payment_retry_failed": 1, "account_suspended": 1, "account_resumed": 1},
		Alerts:  map[string]int{"past_due": 1, "suspended": 1, "recovered": 1},
		Charges: map[string]int{intent: 0},
	})
	if a := s.Control.Applied(customer); len(a) == 2 && a[1].Action != "resume" {
		t.Errorf("control plane order: %s then %s, want suspend then resume", a[0].Action, a[1].Action)
	}
	if !s.Amberflo.Enabled(customer) {
		t.Error("the Amberflo customer was deactivated")
	}
}

// A card about to expire: a notice now, a reminder before it expires, and
// a card update ends the watch quietly (no alert at expiry).
func TestExpiringCardIsRemindedThenUpdated(t *testing.T) {
	// A card expiring this month stops working at the first instant of
	// next month (UTC); the reminder is due a few seconds after start.
	now := time.Now().UTC()
	month, year := int(now.Month()), now.Year()
	if activities.CardExpiry(month, year).Sub(now) < time.Minute {
		next := now.AddDate(0, 1, 0)
		month, year = int(next.Month()), next.Year()
	}
	reminderIn := 12 * time.Second
	before := (activities.CardExpiry(month, year).Sub(now) - reminderIn).Truncate(time.Second)
	s := Start(t, Options{Env: map[string]string{"DUNNING_CARD_REMINDER_BEFORE": before.String()}})
	reminderAt := activities.CardExpiry(month, year).Add(-before)

	customer, card := stripefixture.NewID("cus"), stripefixture.NewID("card")
	expiring := s.Send(workflows.EventSourceExpiring, stripefixture.Options{Customer: customer, ObjectID: card, ExpMonth: month, ExpYear: year})
	if res := s.EventResult(expiring.ID, 20*time.Second); res.Route != workflows.RouteCardExpiring {
		t.Fatalf("expiring event routed %s (%s)", res.Route, res.Outcome)
	}
	s.Eventually("card-expiring notice", 20*time.Second, func() bool { return s.Notices.Kinds(customer)["card_expiring"] == 1 })
	if time.Now().After(reminderAt) {
		t.Fatalf("the stack took too long to start: the reminder (at %s) is already due", reminderAt.Format(time.RFC3339))
	}
	s.Eventually("reminder", time.Until(reminderAt)+15*time.Second, func() bool {
		return s.Notices.Kinds(customer)["card_expiring_reminder"] == 1
	})
	for _, m := range s.Notices.Messages(customer) {
		if m.Kind == "card_expiring_reminder" && m.First.Before(reminderAt) {
			t.Errorf("reminder sent at %s, before it was due at %s", m.First.Format(time.RFC3339Nano), reminderAt.Format(time.RFC3339Nano))
		}
	}

	s.Send(workflows.EventPaymentMethodAttached, stripefixture.Options{Customer: customer, ExpMonth: month, ExpYear: year + 3})
	id := workflows.CardExpiryWorkflowID(card)
	ctx := t.Context()
	var res workflows.CardExpiryResult
	if err := s.Client().GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	if res.Outcome != "card updated before it expired" {
		t.Errorf("card expiry watch ended %q, want card updated before it expired", res.Outcome)
	}
	v, err := s.Client().QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var st workflows.CardExpiryState
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	if st.Stage != workflows.CardUpdated {
		t.Errorf("card expiry stage %s, want %s", st.Stage, workflows.CardUpdated)
	}
	s.Check(customer, Expect{Notices: map[string]int{"card_expiring": 1, "card_expiring_reminder": 1}})
	if _, err := s.Client().DescribeWorkflow(ctx, workflows.RecoveryWorkflowID(customer), ""); err == nil {
		t.Error("a card expiry started a payment recovery")
	}
}
