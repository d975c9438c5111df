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

// TestRecordRemovedMethodHistories records, as TestRecordHistories does
// (set DUNNING_RECORD_HISTORIES), the histories of a removal that leaves a
// usable method: evt_removed_usable_left, the payment_method.detached
// event workflow that tells the running recovery all the same
// (removal-reaches-recovery), and recovery-cus_removed_left, the
// recovery that takes it (removal-with-method-left), then ignores the
// network's update of the removed card created before the removal and
// delivered after it (card-event-older-than-removal), then passes over
// the removed card that Stripe's lagging read still names as the default
// at the scheduled retry and tells the customer and ops that nothing
// usable is left (removed-method-never-charged), and is paid by the card
// the customer then makes the default. Stripe answers through stand-ins:
// the payment methods listed, the owed check (through the activities'
// own choice of what to charge), the confirm; everything else is dry.
func TestRecordRemovedMethodHistories(t *testing.T) {
	dir := recordDir(t)
	const q = "dunning-removed"
	tmp, w := dryRecorder(t, q)
	var defaultPM atomic.Value
	defaultPM.Store("pm_1")
	standIn(w, "PaymentMethods", func(ctx context.Context, in activities.CustomerInput) (activities.PaymentMethods, error) {
		return activities.PaymentMethods{DefaultID: "pm_other", Usable: 1, Methods: []activities.PaymentMethod{
			{ID: "pm_other", Brand: "mastercard", Last4: "4444", ExpMonth: 9, ExpYear: 2031},
		}}, nil
	})
	standIn(w, "IntentOwed", func(ctx context.Context, in activities.OwedInput) (activities.Owed, error) {
		if in.SkipCharge {
			return owedAnswer(in, "", "", ""), nil
		}
		pm, source, passed := activities.ChargeMethodExcept(in.Removed, defaultPM.Load().(string), in.FailedPaymentMethod, "")
		o := owedAnswer(in, pm, source, "fp_"+pm)
		o.Passed = passed
		return o, nil
	})
	confirms := newConfirmStandIn(w, pays)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	cus := "cus_removed"
	id := workflows.RecoveryWorkflowID(cus)
	start := time.Now()
	f := workflows.PaymentFailedSignal{EventID: "evt_removed_failed", Created: start, Intent: workflows.PaymentIntentInfo{
		ID: "pi_removed", Amount: 4900, Currency: "usd", InvoiceID: "in_removed", DeclineCode: "insufficient_funds", PaymentMethodID: "pm_1",
		Decline: activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentMethod: "pm_1", Fingerprint: "fp_pm_1"}}}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{4 * time.Second, time.Hour}, GracePeriod: 10 * time.Hour, DeprovisionAfter: 10 * time.Hour,
		CardUpdateDebounce: time.Second, MaxGraceExtension: 48 * time.Hour}}
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, f,
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)

	// The customer detaches pm_1; pm_other is left.
	detachedAt := time.Now().Truncate(time.Second)
	ev := workflows.StripeEvent{ID: "evt_removed_usable_left", Type: workflows.EventPaymentMethodDetached, Created: detachedAt,
		CustomerID: cus, ObjectID: "pm_1", ObjectType: "payment_method",
		Card: &workflows.CardInfo{ID: "pm_1", Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2030}}
	run, err := tmp.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: ev.ID, TaskQueue: q},
		workflows.StripeEventWorkflowName, workflows.StripeEventInput{Event: ev})
	if err != nil {
		t.Fatal(err)
	}
	var evRes workflows.StripeEventResult
	if err := run.Get(ctx, &evRes); err != nil {
		t.Fatal(err)
	}
	t.Logf("event: %s", evRes.Outcome)

	// The network's update of pm_1, created before the detach, arrives.
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
		EventID: "evt_removed_late_autoupd", Created: detachedAt.Add(-time.Minute), PaymentMethodID: "pm_1",
		Source: workflows.EventPaymentMethodAutoUpd}); err != nil {
		t.Fatal(err)
	}
	// The scheduled retry (at 4s) finds only pm_1 named.
	time.Sleep(5 * time.Second)
	defaultPM.Store("pm_2")
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
		EventID: "evt_removed_default", Created: time.Now(), Source: workflows.EventCustomerUpdated}); err != nil {
		t.Fatal(err)
	}
	var res workflows.RecoveryResult
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := tmp.Client.GetWorkflow(wctx, id, "").Get(wctx, &res); err != nil {
		t.Fatal(err)
	}
	removedConfirmed := false
	for _, c := range confirms.asked() {
		removedConfirmed = removedConfirmed || c.in.PaymentMethodID == "pm_1"
	}
	if res.Stage != workflows.StageRecovered || removedConfirmed {
		t.Fatalf("stage %s, pm_1 confirmed %v; want recovered by pm_2, pm_1 never confirmed", res.Stage, removedConfirmed)
	}
	t.Logf("recovery: %s", res.Summary)
	recordHistory(t, tmp, dir, "recovery-cus_removed_left", id)
	recordHistory(t, tmp, dir, "evt_removed_usable_left", ev.ID)
}
