package worker_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/activities"
	"dunning/workflows"
)

// TestRecordInFlightFailureToldHistory records, as TestRecordHistories
// does (set DUNNING_RECORD_HISTORIES), recovery-cus_inflight_told: the
// first payment is in flight (a bank debit) when the life opens; a second
// fails a second later and the life's first notice goes out for it alone
// (in-flight-failure-told marks the debit). A third payment's failure
// joins at 6 seconds while Stripe has it processing: asked before its
// notice, it is in flight and not told (joined-notice-rechecked); it is
// paid at 8 seconds. The debit fails while the retry round (at 10
// seconds) charges the second payment (3 seconds at Stripe); once the round is over the
// customer is told of the debit at once (untold-after-round), by a notice
// of its own after Stripe is asked, and the suspension moves to half the
// 20-second grace period after that notice; then an operator waives.
// Stripe's owed check and confirm answer through stand-ins; everything
// else is dry.
//
// Two histories beside it were recorded on the code before those
// changes, and pin their gates: recovery-cus_inflight_untold (this
// scenario without the third payment, waived at 23 seconds: the debit's
// failure told no one, and the customer was suspended at 20 seconds) and
// recovery-cus_joined_in_round (the card payment first, and another
// payment's failure during the round, told no sooner than the next
// wake). recovery-cus_joined_told pins joined-notice-rechecked.
func TestRecordInFlightFailureToldHistory(t *testing.T) {
	dir := recordDir(t)
	const q = "dunning-inflight-told"
	tmp, w := dryRecorder(t, q)
	var debitFailed atomic.Bool
	standIn(w, "IntentOwed", func(ctx context.Context, in activities.OwedInput) (activities.Owed, error) {
		if (in.IntentID == "pi_debit" && !debitFailed.Load()) || in.IntentID == "pi_late" {
			return inFlight, nil
		}
		return owedAnswer(in, "pm_card", "customer default", "fp_card"), nil
	})
	// The debit fails while the round's confirm is at Stripe.
	var debitEvent func() error
	confirm := newConfirmStandIn(w, confirmAnswer{took: 3 * time.Second, declineOn: "fp_card"})
	confirm.onAsk = func(in activities.RetryInput) error {
		if in.IntentID == "pi_card" && !debitFailed.Swap(true) {
			return debitEvent()
		}
		return nil
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	cus := "cus_inflight_told"
	id := workflows.RecoveryWorkflowID(cus)
	failure := func(event, intent string, amount int64) workflows.PaymentFailedSignal {
		return workflows.PaymentFailedSignal{EventID: event, Created: time.Now(), Intent: workflows.PaymentIntentInfo{
			ID: intent, Amount: amount, Currency: "usd", InvoiceID: "in_" + intent, DeclineCode: "insufficient_funds"}}
	}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{10 * time.Second}, GracePeriod: 20 * time.Second, DeprovisionAfter: time.Hour,
		CardUpdateDebounce: time.Hour, MaxGraceExtension: 48 * time.Hour}}
	debitEvent = func() error {
		return tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaymentFailed, failure("evt_debit_failed", "pi_debit", 4900))
	}
	started := time.Now()
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, failure("evt_debit_first", "pi_debit", 4900),
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaymentFailed, failure("evt_card_failed", "pi_card", 2500)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(started.Add(6 * time.Second)))
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaymentFailed, failure("evt_late_failed", "pi_late", 1200)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(started.Add(8 * time.Second)))
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_late_paid", Created: time.Now(),
		IntentID: "pi_late", Source: "payment_intent.succeeded"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(started.Add(17 * time.Second)))
	v, err := tmp.Client.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var s workflows.RecoveryState
	if err := v.Get(&s); err != nil {
		t.Fatal(err)
	}
	var told time.Time
	for _, in := range s.Intents {
		switch in.ID {
		case "pi_debit":
			told = in.ToldAt
		case "pi_late":
			if in.State != workflows.IntentPaid || !in.ToldAt.IsZero() {
				t.Fatalf("pi_late %+v; want it paid and never told as failed", *in)
			}
		}
	}
	if told.IsZero() || !s.SuspendAt.After(started.Add(20*time.Second)) || s.Stage != workflows.StagePastDue || s.RetryRounds != 1 {
		t.Fatalf("pi_debit told at %v, suspend_at %v, stage %s, %d rounds; want it told after the round and the suspension moved past the grace period",
			told, s.SuspendAt, s.Stage, s.RetryRounds)
	}
	waiveAndRecord(t, tmp, dir, "recovery-cus_inflight_told", id)
}
