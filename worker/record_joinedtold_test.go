package worker_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

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
	id, started := startLife(t, tmp, w, q, "cus_joined_told", lifeSettings(20*time.Second, time.Hour, time.Hour),
		failedEvent("evt_told_first", "pi_told_1", 4900))
	time.Sleep(12 * time.Second)
	signal(t, tmp, id, workflows.SignalPaymentFailed, failedEvent("evt_told_second", "pi_told_2", 2500))
	time.Sleep(2 * time.Second)
	s := lifeStatus(t, tmp, id)
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
	failure := func(event string) workflows.PaymentFailedSignal {
		f := failedEvent(event, "pi_told_late", 4900)
		f.Intent.InvoiceID = "in_told_late"
		return f
	}
	id, started := startLife(t, tmp, w, q, "cus_told_late", lifeSettings(20*time.Second, time.Hour, time.Hour), failure("evt_late_first"))
	time.Sleep(14 * time.Second)
	failedDebit.Store(true)
	signal(t, tmp, id, workflows.SignalPaymentFailed, failure("evt_late_debit_failed"))
	time.Sleep(2 * time.Second)
	s := lifeStatus(t, tmp, id)
	if !s.PastDueNoticeSent || !s.SuspendAt.After(started.Add(20*time.Second)) || s.Stage != workflows.StagePastDue {
		t.Fatalf("told %v, suspend_at %v, stage %s; want told and the suspension moved past the grace period", s.PastDueNoticeSent, s.SuspendAt, s.Stage)
	}
	waiveAndRecord(t, tmp, dir, "recovery-cus_told_late", id)
}
