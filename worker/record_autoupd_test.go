package worker_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/activities"
	"dunning/workflows"
)

// TestRecordAutoUpdateDuringACardRoundHistory records, as
// TestRecordHistories does (set DUNNING_RECORD_HISTORIES),
// recovery-cus_autoupd_round: the customer makes pm_2 the default, and
// while the card update's confirm of pm_2 is under way (it takes three
// seconds, and declines) the network updates pm_2 in place. The automatic
// update survives the round (auto-update-outlives-the-round): pm_2 is
// confirmed again at once, with its new details, and pays. Stripe answers
// through two stand-ins; everything else is dry.
func TestRecordAutoUpdateDuringACardRoundHistory(t *testing.T) {
	dir := recordDir(t)
	const q = "dunning-autoupd"
	tmp, w := dryRecorder(t, q)
	var newDefault atomic.Bool // pm_2 is the customer's default
	standIn(w, "IntentOwed", func(ctx context.Context, in activities.OwedInput) (activities.Owed, error) {
		if newDefault.Load() {
			return owedAnswer(in, "pm_2", "customer default", "fp_2"), nil
		}
		return owedAnswer(in, "pm_1", "customer default", "fp_1"), nil
	})
	confirms := newConfirmStandIn(w, confirmAnswer{took: 3 * time.Second, declineOn: "fp_2"}, pays)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	cus := "cus_autoupd"
	id := workflows.RecoveryWorkflowID(cus)
	now := time.Now()
	f := workflows.PaymentFailedSignal{EventID: "evt_autoupd_failed", Created: now, Intent: workflows.PaymentIntentInfo{
		ID: "pi_autoupd", Amount: 4900, Currency: "usd", InvoiceID: "in_autoupd", DeclineCode: "insufficient_funds", PaymentMethodID: "pm_1",
		Decline: activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentMethod: "pm_1", Fingerprint: "fp_1"}}}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{time.Hour}, GracePeriod: 10 * time.Hour, DeprovisionAfter: 10 * time.Hour,
		CardUpdateDebounce: time.Second, MaxGraceExtension: 48 * time.Hour}}
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, f,
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	newDefault.Store(true)
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
		EventID: "evt_autoupd_default", Created: time.Now(), Source: "customer.updated", PaymentMethodID: "pm_2"}); err != nil {
		t.Fatal(err)
	}
	// The card round confirms pm_2 from about 1s to 4s after it.
	time.Sleep(2500 * time.Millisecond)
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
		EventID: "evt_autoupd_auto", Created: time.Now(), Source: workflows.EventPaymentMethodAutoUpd, PaymentMethodID: "pm_2"}); err != nil {
		t.Fatal(err)
	}
	res := recoveryResult(t, tmp, id, time.Minute)
	if res.Stage != workflows.StageRecovered || confirms.count() != 2 {
		t.Fatalf("stage %s after %d confirms; want recovered by pm_2 confirmed again after its automatic update", res.Stage, confirms.count())
	}
	recordHistory(t, tmp, dir, "recovery-cus_autoupd_round", id)
}

// TestRecordRetryNowDuringAnUnchangedCardRoundHistory records, as
// TestRecordHistories does (set DUNNING_RECORD_HISTORIES),
// recovery-cus_retrynow_unchanged: the customer adds pm_9 without making
// it the default, and an operator's retry_now comes while the card
// update's round asks Stripe (two seconds). That round charges nothing,
// what it would charge (pm_1) having not changed, so the retry asked runs
// after it (retry-now-after-an-unchanged-card-round) and pays.
func TestRecordRetryNowDuringAnUnchangedCardRoundHistory(t *testing.T) {
	dir := recordDir(t)
	const q = "dunning-unchanged"
	tmp, w := dryRecorder(t, q)
	var slow atomic.Bool // Stripe answers the owed check in two seconds
	standIn(w, "IntentOwed", func(ctx context.Context, in activities.OwedInput) (activities.Owed, error) {
		if slow.Load() {
			time.Sleep(2 * time.Second)
		}
		return owedAnswer(in, "pm_1", "customer default", "fp_1"), nil
	})
	confirms := newConfirmStandIn(w, pays)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	cus := "cus_retrynow_unchanged"
	id := workflows.RecoveryWorkflowID(cus)
	f := workflows.PaymentFailedSignal{EventID: "evt_unchanged_failed", Created: time.Now(), Intent: workflows.PaymentIntentInfo{
		ID: "pi_unchanged", Amount: 4900, Currency: "usd", InvoiceID: "in_unchanged", DeclineCode: "insufficient_funds", PaymentMethodID: "pm_1",
		Decline: activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentMethod: "pm_1", Fingerprint: "fp_1"}}}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{time.Hour}, GracePeriod: 10 * time.Hour, DeprovisionAfter: 10 * time.Hour,
		CardUpdateDebounce: time.Second, MaxGraceExtension: 48 * time.Hour}}
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, f,
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	slow.Store(true)
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
		EventID: "evt_unchanged_added", Created: time.Now(), Source: workflows.EventPaymentMethodAttached, PaymentMethodID: "pm_9"}); err != nil {
		t.Fatal(err)
	}
	// The card round asks Stripe from about 1s to 3s after it.
	time.Sleep(2 * time.Second)
	h, err := tmp.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: workflows.ControlRetryNow,
		Args: []any{workflows.OperatorRequest{Operator: "ops"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		t.Fatal(err)
	}
	var answer workflows.OperatorResult
	if err := h.Get(ctx, &answer); err != nil || !strings.Contains(answer.Message, "the retry asked runs after it") {
		t.Fatalf("retry_now: %+v %v; want it taken by the card round, the retry running after it if it charges nothing", answer, err)
	}
	res := recoveryResult(t, tmp, id, time.Minute)
	if res.Stage != workflows.StageRecovered || confirms.count() != 1 {
		t.Fatalf("stage %s after %d confirms; want recovered by the retry asked", res.Stage, confirms.count())
	}
	recordHistory(t, tmp, dir, "recovery-cus_retrynow_unchanged", id)
}
