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

// TestRecordActionAfterInFlightHistory records, as TestRecordHistories
// does (set DUNNING_RECORD_HISTORIES), recovery-cus_action_again: the
// debit's payment and another fail as the life opens, and the life's
// first notice tells of them. At 3 seconds the customer pays the debit's
// invoice again: the retry round at 6 seconds finds it processing. At 14
// seconds the bank asks the customer to authenticate it, which only the
// re-check before the suspension at 20 seconds finds: the customer is
// asked to act by a notice of its own (action-after-inflight-told), and
// the suspension moves to half the grace period after that notice; then
// an operator waives. Stripe's owed check and the notices answer through
// stand-ins; everything else is dry.
//
// recovery-cus_action_again_before was recorded by this recorder on the
// code before the change, with DUNNING_RECORD_BEFORE=1: there the
// customer was suspended at 20 seconds, asked to act only by the intent's
// first request.
func TestRecordActionAfterInFlightHistory(t *testing.T) {
	dir := recordDir(t)
	before := os.Getenv("DUNNING_RECORD_BEFORE") != ""
	const q = "dunning-action-again"
	tmp, w := dryRecorder(t, q)
	var debit atomic.Int32 // 0 failed, 1 processing, 2 requires_action
	standIn(w, "IntentOwed", func(ctx context.Context, in activities.OwedInput) (activities.Owed, error) {
		o := owedAnswer(in, "pm_card", "customer default", "fp_card")
		if in.IntentID == "pi_debit" {
			switch debit.Load() {
			case 1:
				return inFlight, nil
			case 2:
				// As the owed check reads an intent the bank wants
				// authenticated.
				o.Verdict, o.Status, o.Why = activities.OwedActionRequired, "requires_action", "the bank asks the customer to authenticate"
			}
		}
		return o, nil
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
	cus := "cus_action_again"
	id := workflows.RecoveryWorkflowID(cus)
	failure := func(event, intent string) workflows.PaymentFailedSignal {
		return workflows.PaymentFailedSignal{EventID: event, Created: time.Now(), Intent: workflows.PaymentIntentInfo{
			ID: intent, Amount: 4900, Currency: "usd", InvoiceID: "in_" + intent, DeclineCode: "insufficient_funds"}}
	}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{6 * time.Second}, GracePeriod: 20 * time.Second, DeprovisionAfter: time.Hour,
		CardUpdateDebounce: time.Hour, MaxGraceExtension: 48 * time.Hour}}
	started := time.Now()
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, failure("evt_debit_first", "pi_debit"),
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaymentFailed, failure("evt_other_first", "pi_other")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	debit.Store(1)
	time.Sleep(time.Until(started.Add(14 * time.Second)))
	debit.Store(2)
	time.Sleep(time.Until(started.Add(24 * time.Second)))
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
		if strings.HasPrefix(k, "payment_action_required ") && strings.Contains(k, ":pi_debit:again:") {
			again++
		}
	}
	mu.Unlock()
	if s.RetryRounds != 1 {
		t.Fatalf("%d rounds; want one", s.RetryRounds)
	}
	moved := s.SuspendAt.After(started.Add(22 * time.Second)) // the life opens a moment after started
	if before {
		if again != 0 || moved || s.Stage != workflows.StageSuspended {
			t.Fatalf("%d requests to act again, suspend_at %v, stage %s; want the code before the change: none, not moved, suspended", again, s.SuspendAt, s.Stage)
		}
	} else if again != 1 || !moved || s.Stage != workflows.StagePastDue {
		t.Fatalf("notices %v, suspend_at %v, stage %s; want one request to act again, the suspension moved past the grace period, past_due", keys, s.SuspendAt, s.Stage)
	}
	t.Logf("notices %v", keys)
	name := "recovery-cus_action_again"
	if before {
		name = "recovery-cus_action_again_before"
	}
	waiveAndRecord(t, tmp, dir, name, id)
}
