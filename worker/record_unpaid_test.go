package worker_test

import (
	"context"
	"testing"
	"time"

	"dunning/internal/stripefixture"
	"dunning/workflows"
)

// TestRecordUnpaidHistories records, with DUNNING_RECORD_HISTORIES set (see
// TestRecordHistories), a life that finds a second failure in Stripe
// before it would end as recovered (unpaid-elsewhere-before-recovered):
// pi_a fails and is paid while pi_b, failed in Stripe, has no event yet;
// the life takes pi_b up, its late event is already applied, and the life
// ends recovered once pi_b is paid.
func TestRecordUnpaidHistories(t *testing.T) {
	dir := recordDir(t)
	s := startLocalStack(t, map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1h", "DUNNING_GRACE_PERIOD": "2h", "DUNNING_DEPROVISION_AFTER": "2h",
		"DUNNING_CARD_UPDATE_DEBOUNCE": "1s",
	})
	cus := stripefixture.NewID("cus")
	id := workflows.RecoveryWorkflowID(cus)
	s.send(workflows.EventPaymentFailed, stripefixture.Options{Customer: cus, ObjectID: "pi_unpaid_a", Invoice: "in_unpaid_a"})
	waitState(t, s, id, "the past-due notice", func(st workflows.RecoveryState) bool { return st.PastDueNoticeSent })

	// pi_b fails in Stripe; its event is held back.
	late := stripefixture.Options{ID: stripefixture.NewID("evt"), Customer: cus, ObjectID: "pi_unpaid_b", Invoice: "in_unpaid_b", Amount: 2500,
		Created: time.Now().Add(-time.Second)}
	s.dev.Observe(workflows.StripeEvent{ID: late.ID, Type: workflows.EventPaymentFailed, Created: late.Created, CustomerID: cus,
		ObjectID: late.ObjectID, ObjectType: "payment_intent", PaymentIntent: &workflows.PaymentIntentInfo{
			ID: late.ObjectID, Amount: late.Amount, Currency: "usd", InvoiceID: late.Invoice, FailureCode: "card_declined", DeclineCode: "insufficient_funds"}})

	s.send(workflows.EventPaymentSucceeded, stripefixture.Options{Customer: cus, ObjectID: "pi_unpaid_a", Invoice: "in_unpaid_a"})
	waitState(t, s, id, "pi_b taken up", func(st workflows.RecoveryState) bool {
		for _, in := range st.Intents {
			if in.ID == "pi_unpaid_b" && !in.AdoptedAt.IsZero() {
				return true
			}
		}
		return false
	})
	s.send(workflows.EventPaymentFailed, late)
	waitState(t, s, id, "the late event applied", func(st workflows.RecoveryState) bool {
		for _, e := range st.AppliedEvents {
			if e == late.ID {
				return true
			}
		}
		return false
	})
	s.send(workflows.EventPaymentSucceeded, stripefixture.Options{Customer: cus, ObjectID: "pi_unpaid_b", Invoice: "in_unpaid_b", Amount: 2500})
	res := s.result(id, time.Minute)
	if res.Stage != workflows.StageRecovered || len(res.Intents) != 2 {
		t.Fatalf("ended %s with %+v, want recovered with pi_a and pi_b", res.Stage, res.Intents)
	}
	recordHistory(t, s.tmp, dir, "recovery-cus_unpaid_recovered", id)
}

// waitState polls the recovery's status until ok says so.
func waitState(t *testing.T, s *localStack, id, what string, ok func(workflows.RecoveryState) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if v, err := s.tmp.Client.QueryWorkflow(ctx, id, "", workflows.StatusQuery); err == nil {
			var st workflows.RecoveryState
			if v.Get(&st) == nil && ok(st) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: waited for %s", id, what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
