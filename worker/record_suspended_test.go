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

// suspendedRecorder is a dry recorder on task queue q whose owed check
// says every payment is owed, and whose list of the customer's other
// unpaid payments shows unpaid() (the payments Stripe lists as failed and
// unpaid at that moment).
func suspendedRecorder(t *testing.T, q string, unpaid func() []activities.UnpaidPayment) *testenv.Temporal {
	t.Helper()
	tmp, w := dryRecorder(t, q)
	owedStandIn(w, "", "", nil)
	standIn(w, "UnpaidPayments", func(ctx context.Context, in activities.UnpaidInput) (activities.Unpaid, error) {
		return activities.Unpaid{Payments: unpaid()}, nil
	})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return tmp
}

// suspendedFailure is a failed payment of intent, as its event brings it.
func suspendedFailure(event, intent string, amount int64) workflows.PaymentFailedSignal {
	return workflows.PaymentFailedSignal{EventID: event, Created: time.Now(), Intent: workflows.PaymentIntentInfo{
		ID: intent, Amount: amount, Currency: "usd", InvoiceID: "in_" + intent, DeclineCode: "insufficient_funds"}}
}

// pollState polls the recovery's status until ok says so, or it closed.
func pollState(t *testing.T, tmp *testenv.Temporal, id, what string, ok func(workflows.RecoveryState) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if d, err := tmp.Client.DescribeWorkflow(ctx, id, ""); err == nil && d.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return
		}
		if v, err := tmp.Client.QueryWorkflow(ctx, id, "", workflows.StatusQuery); err == nil {
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

// TestRecordSuspendedPaidHistory records, as TestRecordHistories does
// (set DUNNING_RECORD_HISTORIES), recovery-cus_susp_paid: a customer
// suspended for pi_susp_a pays it while pi_susp_b, failed in Stripe, has
// no event; Stripe is asked before the end (unpaid-elsewhere-before-
// resumed), the account is given back and the life goes on past due for
// pi_susp_b, which is told; suspended again for it, the customer pays it
// and is resumed. recovery-cus_susp_paid_before was recorded by this
// recorder on the code before that change: the customer was resumed and
// the life ended at the first payment, without asking Stripe.
func TestRecordSuspendedPaidHistory(t *testing.T) {
	dir := recordDir(t)
	var paidB atomic.Bool
	tmp := suspendedRecorder(t, "dunning-susp-paid", func() []activities.UnpaidPayment {
		if paidB.Load() {
			return nil
		}
		return []activities.UnpaidPayment{{IntentID: "pi_susp_b", InvoiceID: "in_pi_susp_b", Amount: 2500, Currency: "usd",
			Status: "requires_payment_method", Created: time.Now().Add(-time.Second).Unix(), Why: "intent requires_payment_method after a decline"}}
	})
	ctx := context.Background()
	cus := "cus_susp_paid"
	id := workflows.RecoveryWorkflowID(cus)
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{time.Hour}, GracePeriod: 4 * time.Second, DeprovisionAfter: time.Hour,
		CardUpdateDebounce: time.Hour, MaxGraceExtension: 48 * time.Hour}}
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, suspendedFailure("evt_susp_a", "pi_susp_a", 4900),
		client.StartWorkflowOptions{ID: id, TaskQueue: "dunning-susp-paid"}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	pollState(t, tmp, id, "the suspension", func(s workflows.RecoveryState) bool { return s.Stage == workflows.StageSuspended })
	paid := func(event, intent string) {
		if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaid, workflows.PaidSignal{EventID: event, Created: time.Now(),
			IntentID: intent, Source: "payment_intent.succeeded"}); err != nil {
			t.Fatal(err)
		}
	}
	paid("evt_susp_paid_a", "pi_susp_a")
	pollState(t, tmp, id, "pi_susp_b told", func(s workflows.RecoveryState) bool {
		for _, in := range s.Intents {
			if in.ID == "pi_susp_b" && !in.ToldAt.IsZero() {
				return true
			}
		}
		return false
	})
	if d, err := tmp.Client.DescribeWorkflow(ctx, id, ""); err != nil || d.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		// The code before the change ended at the first payment.
		pollState(t, tmp, id, "the suspension for pi_susp_b", func(s workflows.RecoveryState) bool { return s.Stage == workflows.StageSuspended })
		paidB.Store(true)
		paid("evt_susp_paid_b", "pi_susp_b")
	}
	var res workflows.RecoveryResult
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := tmp.Client.GetWorkflow(wctx, id, "").Get(wctx, &res); err != nil {
		t.Fatal(err)
	}
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("ended %s, want recovered", res.Stage)
	}
	t.Logf("ended %s with %d intents", res.Stage, len(res.Intents))
	recordHistory(t, tmp, dir, "recovery-cus_susp_paid", id)
}

// TestRecordJoinedWhileSuspendedHistory records, as TestRecordHistories
// does (set DUNNING_RECORD_HISTORIES), recovery-cus_susp_joined: a
// failure joins a suspended life half a second before its deprovisioning;
// the customer is told of it, and the deprovisioning moves to half the
// grace period after that notice (joined-failure-moves-deprovisioning).
// recovery-cus_susp_joined_before was recorded by this recorder on the
// code before that change: the customer was deprovisioned on the old
// date, half a second after the notice.
func TestRecordJoinedWhileSuspendedHistory(t *testing.T) {
	dir := recordDir(t)
	tmp := suspendedRecorder(t, "dunning-susp-joined", func() []activities.UnpaidPayment { return nil })
	ctx := context.Background()
	cus := "cus_susp_joined"
	id := workflows.RecoveryWorkflowID(cus)
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{time.Hour}, GracePeriod: 3 * time.Second, DeprovisionAfter: 6 * time.Second,
		CardUpdateDebounce: time.Hour, MaxGraceExtension: 48 * time.Hour}}
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, suspendedFailure("evt_sj_a", "pi_sj_a", 4900),
		client.StartWorkflowOptions{ID: id, TaskQueue: "dunning-susp-joined"}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	var deprovAt time.Time
	pollState(t, tmp, id, "the suspension", func(s workflows.RecoveryState) bool {
		deprovAt = s.DeprovisionAt
		return s.Stage == workflows.StageSuspended
	})
	time.Sleep(time.Until(deprovAt.Add(-500 * time.Millisecond)))
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaymentFailed, suspendedFailure("evt_sj_b", "pi_sj_b", 2500)); err != nil {
		t.Fatal(err)
	}
	var res workflows.RecoveryResult
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := tmp.Client.GetWorkflow(wctx, id, "").Get(wctx, &res); err != nil {
		t.Fatal(err)
	}
	if res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("ended %s, want deprovisioned", res.Stage)
	}
	recordHistory(t, tmp, dir, "recovery-cus_susp_joined", id)
}
