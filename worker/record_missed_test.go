package worker_test

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/activities"
	"dunning/workflows"
)

// TestRecordRetriesMissedByALongRoundHistory records, as
// TestRecordHistories does (set DUNNING_RECORD_HISTORIES),
// recovery-cus_missed_round: the first scheduled retry (+2s) takes four
// seconds to decline, past the second (+3s) and third (+4s) retries of
// the schedule. The card that just declined is not confirmed again at
// once, once per missed retry (one-retry-for-missed): one retry is still
// owed, an interval (2s) after the round, and it pays.
// recovery-cus_missed_round_before was recorded by this recorder on the
// code before the change (its gap check left out): there the missed
// retries fell due at once, and the card was confirmed again as soon as
// the first round ended.
func TestRecordRetriesMissedByALongRoundHistory(t *testing.T) {
	dir := recordDir(t)
	const q = "dunning-missed"
	tmp, w := dryRecorder(t, q)
	owedStandIn(w, "pm_1", "fp_1", nil)
	confirms := newConfirmStandIn(w, confirmAnswer{took: 4 * time.Second, declineOn: "fp_1"}, pays)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	cus := "cus_missed_round"
	id := workflows.RecoveryWorkflowID(cus)
	f := workflows.PaymentFailedSignal{EventID: "evt_missed_failed", Created: time.Now(), Intent: workflows.PaymentIntentInfo{
		ID: "pi_missed", Amount: 4900, Currency: "usd", InvoiceID: "in_missed", DeclineCode: "insufficient_funds", PaymentMethodID: "pm_1",
		Decline: activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentMethod: "pm_1", Fingerprint: "fp_1"}}}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{2 * time.Second, 3 * time.Second, 4 * time.Second}, GracePeriod: 10 * time.Hour, DeprovisionAfter: 10 * time.Hour,
		CardUpdateDebounce: time.Second, MaxGraceExtension: 48 * time.Hour}}
	if _, err := tmp.Client.SignalWithStartWorkflow(context.Background(), id, workflows.SignalPaymentFailed, f,
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	res := recoveryResult(t, tmp, id, time.Minute)
	calls := confirms.asked()
	if res.Stage != workflows.StageRecovered || len(calls) != 2 {
		t.Fatalf("stage %s after %d confirms; want recovered by the second", res.Stage, len(calls))
	}
	if gap := calls[1].start.Sub(calls[0].end); gap < 1500*time.Millisecond {
		t.Fatalf("second confirm %s after the first ended; want a retry interval (2s), not at once", gap)
	}
	recordHistory(t, tmp, dir, "recovery-cus_missed_round", id)
}
