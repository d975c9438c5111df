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

// TestRecordRetryNowDuringAConfirmHistory records, as TestRecordHistories
// does (set DUNNING_RECORD_HISTORIES), recovery-cus_sig_retrynow_joined:
// an operator's retry_now accepted while the scheduled retry's confirm is
// under way, taken as that confirm (retry-now-joins-the-round); then the
// customer removes the card, and retry_now is answered knowing it
// (unusable-methods-not-charged). Stripe answers through two stand-ins, as
// it does: the owed check names pm_1 on card fp_1, and the confirm takes
// three seconds to decline it for insufficient funds; everything else is
// dry. recovery-cus_sig_retrynow_joined_before was recorded by this
// recorder on the code before both changes (its removal signal names no
// payment method, and no answer was checked): there the retry_now ran a
// round more, and the card was confirmed again at once.
func TestRecordRetryNowDuringAConfirmHistory(t *testing.T) {
	dir := recordDir(t)
	const q = "dunning-joined"
	tmp, w := dryRecorder(t, q)
	var removed atomic.Bool // the customer removed pm_1: Stripe names nothing
	owedStandIn(w, "pm_1", "fp_1", &removed)
	newConfirmStandIn(w, confirmAnswer{took: 3 * time.Second, declineOn: "fp_1"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	cus := "cus_joined"
	id := workflows.RecoveryWorkflowID(cus)
	now := time.Now()
	f := workflows.PaymentFailedSignal{EventID: "evt_joined_failed", Created: now, Intent: workflows.PaymentIntentInfo{
		ID: "pi_joined", Amount: 4900, Currency: "usd", InvoiceID: "in_joined", DeclineCode: "insufficient_funds", PaymentMethodID: "pm_1",
		Decline: activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentMethod: "pm_1", Fingerprint: "fp_1"}}}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{3 * time.Second, time.Hour}, GracePeriod: 10 * time.Hour, DeprovisionAfter: 10 * time.Hour,
		CardUpdateDebounce: time.Hour, MaxGraceExtension: 48 * time.Hour}}
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, f,
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	retryNow := func(want string) {
		t.Helper()
		h, err := tmp.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: workflows.ControlRetryNow,
			Args: []any{workflows.OperatorRequest{Operator: "ops"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.OperatorResult
		if err := h.Get(ctx, &res); err != nil || !strings.Contains(res.Message, want) {
			t.Fatalf("retry_now: %+v %v; want %q", res, err, want)
		}
	}
	// The scheduled retry's confirm runs from about 3s to 6s.
	time.Sleep(4500 * time.Millisecond)
	retryNow("a charge is under way: pi_joined with pm_1")
	time.Sleep(4 * time.Second)
	removed.Store(true)
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaymentMethodRemoved, workflows.PaymentMethodRemovedSignal{
		EventID: "evt_joined_removed", Created: time.Now(), Source: "payment_method.detached", PaymentMethodID: "pm_1"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	retryNow("pm_1 (removed by the customer (payment_method.detached))")
	time.Sleep(2 * time.Second)
	v, err := tmp.Client.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var s workflows.RecoveryState
	if err := v.Get(&s); err != nil {
		t.Fatal(err)
	}
	if len(s.Cards) != 1 || len(s.Cards[0].Attempts) != 2 {
		t.Fatalf("cards %+v; want fp_1 tried twice, by the failure and one confirm: the retry_now during the confirm was that confirm", s.Cards)
	}
	waiveAndRecord(t, tmp, dir, "recovery-cus_sig_retrynow_joined", id)
}
