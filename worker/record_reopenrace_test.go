package worker_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"dunning/activities"
	"dunning/internal/testenv"
	"dunning/workflows"
)

// TestRecordPaidWhileJoinedCheckedHistory records, as TestRecordHistories
// does (set DUNNING_RECORD_HISTORIES), recovery-cus_reopen_race: a
// customer suspended for pi_rr_a pays it while Stripe shows pi_rr_c
// unpaid; the life reopens (unpaid-elsewhere-before-resumed) and is
// suspended again for pi_rr_c. pi_rr_b's failure then joins, and while
// Stripe is asked about it before its notice, the payment of pi_rr_c
// comes in. The life reopens first (reopen-after-joined-check): the
// account is given back again and pi_rr_b is told past due; the customer
// pays it and the life ends recovered. recovery-cus_reopen_race_before
// was recorded by this recorder on the code before that change: pi_rr_b
// was told as a failure of the suspended life, which stayed suspended
// until it was paid. The first reopen records the reopen's own marker
// before the race, so only the new change's marker tells the two apart.
func TestRecordPaidWhileJoinedCheckedHistory(t *testing.T) {
	dir := recordDir(t)
	const q = "dunning-reopen-race"
	cus := "cus_reopen_race"
	id := workflows.RecoveryWorkflowID(cus)
	ctx := context.Background()
	tmp, w := dryRecorder(t, q)
	paid := func(c client.Client, event, intent string) error {
		return c.SignalWorkflow(ctx, id, "", workflows.SignalPaid, workflows.PaidSignal{EventID: event, Created: time.Now(),
			IntentID: intent, Source: "payment_intent.succeeded"})
	}
	// Stripe is slow to answer about pi_rr_b the first time: the payment
	// of pi_rr_c reaches the workflow while it waits.
	var raced atomic.Bool
	standIn(w, "IntentOwed", func(actx context.Context, in activities.OwedInput) (activities.Owed, error) {
		if in.IntentID == "pi_rr_b" && raced.CompareAndSwap(false, true) {
			if err := paid(tmp.Client, "evt_rr_paid_c", "pi_rr_c"); err != nil {
				return activities.Owed{}, err
			}
			time.Sleep(time.Second)
		}
		return owedAnswer(in, "", "", ""), nil
	})
	standIn(w, "UnpaidPayments", func(ctx context.Context, in activities.UnpaidInput) (activities.Unpaid, error) {
		if raced.Load() {
			return activities.Unpaid{}, nil
		}
		return activities.Unpaid{Payments: []activities.UnpaidPayment{{IntentID: "pi_rr_c", InvoiceID: "in_pi_rr_c", Amount: 3100, Currency: "usd",
			Status: "requires_payment_method", Created: time.Now().Add(-time.Second).Unix(), Why: "intent requires_payment_method after a decline"}}}, nil
	})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{time.Hour}, GracePeriod: 4 * time.Second, DeprovisionAfter: time.Hour,
		CardUpdateDebounce: time.Hour, MaxGraceExtension: 48 * time.Hour}}
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, suspendedFailure("evt_rr_a", "pi_rr_a", 4900),
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	pollState(t, tmp, id, "the suspension", func(s workflows.RecoveryState) bool { return s.Stage == workflows.StageSuspended })
	if err := paid(tmp.Client, "evt_rr_paid_a", "pi_rr_a"); err != nil {
		t.Fatal(err)
	}
	pollState(t, tmp, id, "the suspension for pi_rr_c", func(s workflows.RecoveryState) bool {
		return s.Reopened == 1 && s.Stage == workflows.StageSuspended
	})
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaymentFailed, suspendedFailure("evt_rr_b", "pi_rr_b", 2500)); err != nil {
		t.Fatal(err)
	}
	var stage workflows.Stage
	pollState(t, tmp, id, "pi_rr_b told", func(s workflows.RecoveryState) bool {
		stage = s.Stage
		for _, in := range s.Intents {
			if in.ID == "pi_rr_b" && !in.ToldAt.IsZero() {
				return true
			}
		}
		return false
	})
	if !raced.Load() {
		t.Fatal("pi_rr_a's payment was not sent while pi_rr_b was checked")
	}
	t.Logf("pi_rr_b told while %s", stage)
	if err := paid(tmp.Client, "evt_rr_paid_b", "pi_rr_b"); err != nil {
		t.Fatal(err)
	}
	res := waitResult(t, tmp, id)
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("ended %s, want recovered", res.Stage)
	}
	recordHistory(t, tmp, dir, "recovery-cus_reopen_race", id)
}

// waitResult waits, a minute at most, for the recovery id to end, and
// returns its result.
func waitResult(t *testing.T, tmp *testenv.Temporal, id string) workflows.RecoveryResult {
	t.Helper()
	var res workflows.RecoveryResult
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if d, err := tmp.Client.DescribeWorkflow(ctx, id, ""); err == nil && d.Status == enumspb.WORKFLOW_EXECUTION_STATUS_FAILED {
		t.Fatalf("%s failed", id)
	}
	if err := tmp.Client.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	return res
}
