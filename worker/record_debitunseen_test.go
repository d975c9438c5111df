package worker_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/activities"
	"dunning/workflows"
)

// TestRecordDebitUnseenHistory records, as TestRecordHistories does (set
// DUNNING_RECORD_HISTORIES), recovery-cus_debit_unseen: the payment fails
// as the life opens (a card's decline), and the life's first notice tells
// of it. The one scheduled retry round, at 3 seconds, finds it owed. At 5
// seconds the customer pays the invoice by bank debit, and no re-check of
// dunning's sees it processing. At 12 seconds the debit fails: its
// payment_failed event names a us_bank_account as the way to pay that
// failed. The customer is told of it by a notice of its own
// (debit-failure-told, then failed-again-told), and the suspension moves
// to half the 20-second grace period after that notice; then an operator
// waives. Stripe's owed check and the notices answer through stand-ins;
// everything else is dry.
//
// recovery-cus_debit_unseen_before was recorded by this recorder on the
// code before the change, with DUNNING_RECORD_BEFORE=1: there the debit's
// failure was recorded as the one already told, and the suspension stayed
// at 20 seconds. The failure is sent as JSON so that the recorder builds
// on that code too, whose signal has no way-to-pay type.
func TestRecordDebitUnseenHistory(t *testing.T) { recordDebit(t, false) }

// TestRecordDebitProcessingHistory records recovery-cus_debit_processing
// and evt_debit_processing: the same story, but the debit's
// payment_intent.processing event is handled at 5 seconds (its event
// workflow signals the recovery, which marks the payment in flight) and
// the failure event names no way to pay: the processing event alone makes
// it a failure again. On the code before the change (the _before pair)
// the event workflow ignored the type, and the failure was recorded as
// the one already told. evt_debit_processing_before fails to replay
// without the event workflow's gate.
func TestRecordDebitProcessingHistory(t *testing.T) { recordDebit(t, true) }

func recordDebit(t *testing.T, processingEvent bool) {
	dir := recordDir(t)
	before := os.Getenv("DUNNING_RECORD_BEFORE") != ""
	q, cus := "dunning-debit-unseen", "cus_debit_unseen"
	if processingEvent {
		q, cus = "dunning-debit-processing", "cus_debit_processing"
	}
	tmp, w := dryRecorder(t, q)
	var debit atomic.Int32 // 0 failed, 1 processing, 2 failed again
	standIn(w, "IntentOwed", func(ctx context.Context, in activities.OwedInput) (activities.Owed, error) {
		if debit.Load() == 1 {
			return inFlight, nil
		}
		return owedAnswer(in, "pm_card", "customer default", "fp_card"), nil
	})
	var mu sync.Mutex
	var keys []string
	standIn(w, "Notice", func(ctx context.Context, in activities.NoticeInput) (activities.NotifyResult, error) {
		mu.Lock()
		defer mu.Unlock()
		keys = append(keys, in.Type+" "+in.Key)
		return activities.NotifyResult{DryRun: true}, nil
	})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	id := workflows.RecoveryWorkflowID(cus)
	failure := func(event, pmType string) map[string]any {
		intent := map[string]any{"id": "pi_debit", "amount": 4900, "currency": "usd", "invoice_id": "in_pi_debit",
			"failure_code": "payment_intent_payment_attempt_failed", "decline_code": "insufficient_funds"}
		if pmType != "" {
			intent["failed_payment_method_type"] = pmType
		}
		return map[string]any{"event_id": event, "created": time.Now(), "intent": intent}
	}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{3 * time.Second}, GracePeriod: 20 * time.Second, DeprovisionAfter: time.Hour,
		CardUpdateDebounce: time.Hour, MaxGraceExtension: 48 * time.Hour}}
	started := time.Now()
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, failure("evt_card_first", "card"),
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(started.Add(5 * time.Second)))
	debit.Store(1)
	// The type as a literal: the code before the change has no name for it.
	ev := workflows.StripeEvent{ID: "evt_debit_processing", Type: "payment_intent.processing", Created: time.Now(),
		CustomerID: cus, ObjectID: "pi_debit", ObjectType: "payment_intent",
		PaymentIntent: &workflows.PaymentIntentInfo{ID: "pi_debit", Amount: 4900, Currency: "usd", InvoiceID: "in_pi_debit", Status: "processing"}}
	if processingEvent {
		run, err := tmp.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: ev.ID, TaskQueue: q},
			workflows.StripeEventWorkflowName, workflows.StripeEventInput{Event: ev})
		if err != nil {
			t.Fatal(err)
		}
		var evRes workflows.StripeEventResult
		if err := run.Get(ctx, &evRes); err != nil {
			t.Fatal(err)
		}
		t.Logf("processing event: %s", evRes.Outcome)
	}
	time.Sleep(time.Until(started.Add(12 * time.Second)))
	debit.Store(2)
	pmType := "us_bank_account"
	if processingEvent {
		pmType = "" // the processing event alone tells
	}
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaymentFailed, failure("evt_debit_failed", pmType)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(started.Add(15 * time.Second)))
	v, err := tmp.Client.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var s workflows.RecoveryState
	if err := v.Get(&s); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	again := 0
	for _, k := range keys {
		if strings.HasPrefix(k, "payment_failed ") && strings.Contains(k, ":pi_debit:again:") {
			again++
		}
	}
	mu.Unlock()
	if s.Stage != workflows.StagePastDue || s.RetryRounds != 1 {
		t.Fatalf("stage %s, %d rounds; want past_due after one round", s.Stage, s.RetryRounds)
	}
	moved := s.SuspendAt.After(started.Add(22 * time.Second)) // the life opens a moment after started
	if before {
		if again != 0 || moved {
			t.Fatalf("%d notices of the failure again, suspend_at %v; want the code before the change: none, not moved", again, s.SuspendAt)
		}
	} else if again != 1 || !moved {
		t.Fatalf("notices %v, suspend_at %v; want one notice of the debit's failure and the suspension moved past the grace period", keys, s.SuspendAt)
	}
	t.Logf("notices %v", keys)
	suffix := ""
	if before {
		suffix = "_before"
	}
	waiveAndRecord(t, tmp, dir, "recovery-"+cus+suffix, id)
	if processingEvent {
		recordHistory(t, tmp, dir, ev.ID+suffix, ev.ID)
	}
}
