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

// TestRecordJoinedFailureToldHistory records, as TestRecordHistories does
// (set DUNNING_RECORD_HISTORIES), recovery-cus_joined_told: a second
// failure joins a life whose customer was told of the first, late in a
// 20-second grace period; the customer is told of it by a notice of its
// own and the suspension moves to half the grace period after that notice
// (joined-failure-told); then an operator waives. Stripe's owed check
// answers through a stand-in (owed, no card named); everything else is
// dry.
func TestRecordJoinedFailureToldHistory(t *testing.T) {
	dir := recordDir(t)
	const q = "dunning-joined-told"
	tmp, w := dryRecorder(t, q)
	owedStandIn(w, "", "", nil)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	cus := "cus_joined_told"
	id := workflows.RecoveryWorkflowID(cus)
	failure := func(event, intent string, amount int64) workflows.PaymentFailedSignal {
		return workflows.PaymentFailedSignal{EventID: event, Created: time.Now(), Intent: workflows.PaymentIntentInfo{
			ID: intent, Amount: amount, Currency: "usd", InvoiceID: "in_" + intent, DeclineCode: "insufficient_funds"}}
	}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{time.Hour}, GracePeriod: 20 * time.Second, DeprovisionAfter: time.Hour,
		CardUpdateDebounce: time.Hour, MaxGraceExtension: 48 * time.Hour}}
	started := time.Now()
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, failure("evt_told_first", "pi_told_1", 4900),
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	time.Sleep(12 * time.Second)
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaymentFailed, failure("evt_told_second", "pi_told_2", 2500)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
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
		if in.ID == "pi_told_2" {
			told = in.ToldAt
		}
	}
	if told.IsZero() || !s.SuspendAt.After(started.Add(20*time.Second)) || s.Stage != workflows.StagePastDue {
		t.Fatalf("pi_told_2 told at %v, suspend_at %v, stage %s; want it told and the suspension moved past the grace period", told, s.SuspendAt, s.Stage)
	}
	waiveAndRecord(t, tmp, dir, "recovery-cus_joined_told", id)
}

// TestRecordFirstFailureToldLateHistory records, as TestRecordHistories
// does (set DUNNING_RECORD_HISTORIES), recovery-cus_told_late: the first
// payment is in flight (a bank debit) when the life opens, and its
// failure comes 14 seconds into a 20-second grace; the customer's first
// notice goes out then, and the suspension moves to half the grace period
// after it (joined-failure-told); then an operator waives.
func TestRecordFirstFailureToldLateHistory(t *testing.T) {
	dir := recordDir(t)
	const q = "dunning-told-late"
	tmp, w := dryRecorder(t, q)
	var failedDebit atomic.Bool
	standIn(w, "IntentOwed", func(ctx context.Context, in activities.OwedInput) (activities.Owed, error) {
		if !failedDebit.Load() {
			return inFlight, nil
		}
		return owedAnswer(in, "", "", ""), nil
	})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	cus := "cus_told_late"
	id := workflows.RecoveryWorkflowID(cus)
	failure := func(event string) workflows.PaymentFailedSignal {
		return workflows.PaymentFailedSignal{EventID: event, Created: time.Now(), Intent: workflows.PaymentIntentInfo{
			ID: "pi_told_late", Amount: 4900, Currency: "usd", InvoiceID: "in_told_late", DeclineCode: "insufficient_funds"}}
	}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{time.Hour}, GracePeriod: 20 * time.Second, DeprovisionAfter: time.Hour,
		CardUpdateDebounce: time.Hour, MaxGraceExtension: 48 * time.Hour}}
	started := time.Now()
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, failure("evt_late_first"),
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	time.Sleep(14 * time.Second)
	failedDebit.Store(true)
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaymentFailed, failure("evt_late_debit_failed")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	v, err := tmp.Client.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var s workflows.RecoveryState
	if err := v.Get(&s); err != nil {
		t.Fatal(err)
	}
	if !s.PastDueNoticeSent || !s.SuspendAt.After(started.Add(20*time.Second)) || s.Stage != workflows.StagePastDue {
		t.Fatalf("told %v, suspend_at %v, stage %s; want told and the suspension moved past the grace period", s.PastDueNoticeSent, s.SuspendAt, s.Stage)
	}
	waiveAndRecord(t, tmp, dir, "recovery-cus_told_late", id)
}
