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

// TestRecordFailedAgainToldHistory records, as TestRecordHistories does
// (set DUNNING_RECORD_HISTORIES), recovery-cus_failed_again: the debit's
// payment fails as the life opens, and the life's first notice tells of
// it. At 3 seconds the customer pays the invoice by bank debit: the retry
// round at 6 seconds finds it processing. At 14 seconds the debit fails,
// with a new payment_failed event; the customer is told of it by a notice
// of its own (failed-again-told), and the suspension moves to half the
// 20-second grace period after that notice; then an operator waives.
// Stripe's owed check and the notices answer through stand-ins;
// everything else is dry.
//
// recovery-cus_failed_again_before was recorded by this recorder on the
// code before the change, with DUNNING_RECORD_BEFORE=1: there the failure
// after processing was owed again silently, and the suspension stayed at
// 20 seconds.
func TestRecordFailedAgainToldHistory(t *testing.T) {
	dir := recordDir(t)
	before := os.Getenv("DUNNING_RECORD_BEFORE") != ""
	const q = "dunning-failed-again"
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
	cus := "cus_failed_again"
	id := workflows.RecoveryWorkflowID(cus)
	failure := func(event string) workflows.PaymentFailedSignal {
		return workflows.PaymentFailedSignal{EventID: event, Created: time.Now(), Intent: workflows.PaymentIntentInfo{
			ID: "pi_debit", Amount: 4900, Currency: "usd", InvoiceID: "in_pi_debit", DeclineCode: "insufficient_funds"}}
	}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{6 * time.Second}, GracePeriod: 20 * time.Second, DeprovisionAfter: time.Hour,
		CardUpdateDebounce: time.Hour, MaxGraceExtension: 48 * time.Hour}}
	started := time.Now()
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, failure("evt_debit_first"),
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	debit.Store(1)
	time.Sleep(time.Until(started.Add(14 * time.Second)))
	debit.Store(2)
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaymentFailed, failure("evt_debit_failed_again")); err != nil {
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
		t.Fatalf("notices %v, suspend_at %v; want one notice of the failure again and the suspension moved past the grace period", keys, s.SuspendAt)
	}
	t.Logf("notices %v", keys)
	name := "recovery-cus_failed_again"
	if before {
		name = "recovery-cus_failed_again_before"
	}
	waiveAndRecord(t, tmp, dir, name, id)
}
