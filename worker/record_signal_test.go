package worker_test

import (
	"strings"
	"testing"
	"time"

	"dunning/workflows"
)

// TestRecordRetryNowSignalHistory records, as TestRecordHistories does
// (set DUNNING_RECORD_HISTORIES), a recovery in which an operator's
// retry_now, sent as a signal (the UI's Send Signal), is judged in the
// workflow while the card last tried is stopped and a card event named
// another payment method since: recovery-cus_sig_retrynow_rejected was
// recorded before retry-now-judges-the-charge, and refused it;
// recovery-cus_sig_retrynow_accepted since. The workflow runs on a worker
// of its own with the activities dry, and is sent its signals directly.
func TestRecordRetryNowSignalHistory(t *testing.T) {
	dir := recordDir(t)
	const q = "dunning-sig"
	tmp, w := dryRecorder(t, q)
	f := failedEvent("evt_sig_failed", "pi_sig", 4900)
	f.Intent.InvoiceID, f.Intent.DeclineCode = "in_sig", "stolen_card"
	settings := lifeSettings(10*time.Hour, time.Hour, time.Hour)
	settings.DeprovisionAfter = 10 * time.Hour
	id, _ := startLife(t, tmp, w, q, "cus_sigretry", settings, declinedOn(f, "pm_1", "fp_1"))
	time.Sleep(3 * time.Second)
	signal(t, tmp, id, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
		EventID: "evt_sig_card", Created: time.Now(), PaymentMethodID: "pm_2", Source: "payment_method.attached"})
	time.Sleep(2 * time.Second)
	signal(t, tmp, id, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"})
	time.Sleep(2 * time.Second)
	s := lifeStatus(t, tmp, id)
	outcome := ""
	for _, a := range s.Actions {
		if a.Kind == "operator: "+workflows.ControlRetryNow || a.Kind == "operator: retry now" {
			outcome = "accepted"
			if strings.HasPrefix(a.Outcome, "rejected") {
				outcome = "rejected"
			}
		}
	}
	if outcome == "" {
		t.Fatalf("retry_now not applied: %+v", s.Actions)
	}
	waiveAndRecord(t, tmp, dir, "recovery-cus_sig_retrynow_"+outcome, id)
}
