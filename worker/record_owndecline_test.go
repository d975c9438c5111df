package worker_test

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/activities"
	"dunning/workflows"
)

// TestRecordOwnDeclineOrderHistory records, as TestRecordHistories does
// (set DUNNING_RECORD_HISTORIES), recovery-cus_own_decline: pi_own fails
// on pm_a; the customer has no default, so the first scheduled retry
// (+3s) confirms pm_a, and the bank says stolen_card. Then comes the
// event of Stripe's own attempt on pm_b, created at +1s, before that
// confirm: it is older than dunning's own decline
// (own-decline-orders-events), counted on pm_b, and the intent keeps the
// stop on pm_a, so the second retry (+8s) charges nothing. The customer
// then pays. recovery-cus_own_decline_before was recorded by this
// recorder on the code before the change, with DUNNING_RECORD_BEFORE=1:
// there the older event replaced the stop, and the second retry
// confirmed pm_b.
func TestRecordOwnDeclineOrderHistory(t *testing.T) {
	dir := recordDir(t)
	before := os.Getenv("DUNNING_RECORD_BEFORE") != ""
	const q = "dunning-own-decline"
	tmp, w := dryRecorder(t, q)
	// The customer has no default: a retry charges the card that failed.
	standIn(w, "IntentOwed", func(ctx context.Context, in activities.OwedInput) (activities.Owed, error) {
		return owedAnswer(in, in.FailedPaymentMethod, "failed payment method", "fp_"+in.FailedPaymentMethod), nil
	})
	var mu sync.Mutex
	var confirmed []string
	standIn(w, "RetryPayment", func(ctx context.Context, in activities.RetryInput) (activities.RetryResult, error) {
		mu.Lock()
		confirmed = append(confirmed, in.PaymentMethodID)
		mu.Unlock()
		// As RetryPayment answers a 402: a stop decline's charge is not
		// read, so the decline carries no time of its own.
		d := activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentMethod: in.PaymentMethodID,
			Fingerprint: "fp_" + in.PaymentMethodID, IntentStatus: "requires_payment_method"}
		if in.PaymentMethodID == "pm_a" {
			d.DeclineCode = "stolen_card"
		}
		return activities.RetryResult{Outcome: activities.RetryDeclined, Status: "requires_payment_method",
			PaymentMethod: in.PaymentMethodID, DeclineCode: d.DeclineCode, Message: "Your card was declined.", Decline: d}, nil
	})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	cus := "cus_own_decline"
	id := workflows.RecoveryWorkflowID(cus)
	t0 := time.Now()
	event := func(eventID string, created time.Time, pm string) workflows.PaymentFailedSignal {
		d := activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentMethod: pm, Fingerprint: "fp_" + pm}
		return workflows.PaymentFailedSignal{EventID: eventID, Created: created, Intent: workflows.PaymentIntentInfo{
			ID: "pi_own", Amount: 4900, Currency: "usd", InvoiceID: "in_own", DeclineCode: d.DeclineCode, PaymentMethodID: pm, Decline: d}}
	}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{3 * time.Second, 8 * time.Second}, GracePeriod: 10 * time.Hour, DeprovisionAfter: 10 * time.Hour,
		CardUpdateDebounce: time.Second, MaxGraceExtension: 48 * time.Hour}}
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, event("evt_own_first", t0, "pm_a"),
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	// The first retry's decline (+3s), then Stripe's older event.
	time.Sleep(time.Until(t0.Add(5 * time.Second)))
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaymentFailed, event("evt_own_late", t0.Add(time.Second), "pm_b")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	v, err := tmp.Client.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var s workflows.RecoveryState
	if err := v.Get(&s); err != nil {
		t.Fatal(err)
	}
	want := "pm_a"
	if before {
		want = "pm_b"
	}
	if len(s.Intents) != 1 || s.Intents[0].PaymentMethodID != want {
		t.Fatalf("intents %+v; want pi_own's payment method %s", s.Intents, want)
	}
	// The second retry (+8s).
	time.Sleep(time.Until(t0.Add(10 * time.Second)))
	mu.Lock()
	got := slices.Clone(confirmed)
	mu.Unlock()
	wantConfirms := []string{"pm_a"}
	if before {
		wantConfirms = []string{"pm_a", "pm_b"}
	}
	if !slices.Equal(got, wantConfirms) {
		t.Fatalf("confirmed %v; want %v", got, wantConfirms)
	}
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaid, workflows.PaidSignal{
		EventID: "evt_own_paid", Created: time.Now(), IntentID: "pi_own", Source: "payment_intent.succeeded"}); err != nil {
		t.Fatal(err)
	}
	res := recoveryResult(t, tmp, id, time.Minute)
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s; want recovered", res.Stage)
	}
	name := "recovery-cus_own_decline"
	if before {
		name = "recovery-cus_own_decline_before"
	}
	recordHistory(t, tmp, dir, name, id)
}
