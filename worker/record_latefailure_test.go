package worker_test

import (
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"dunning/activities"
	"dunning/workflows"
)

// TestRecordLateFailureRetryHistory records, as TestRecordHistories does
// (set DUNNING_RECORD_HISTORIES), recovery-cus_late_failure: the life's
// one scheduled retry (+2s) declines, then a second payment fails (+5s),
// after the schedule is spent. It gets one retry of its own, an interval
// (2s) after it joined (late-failure-gets-a-retry); that round pays both
// and the life ends recovered, long before the suspension (+20s).
// recovery-cus_late_failure_before was recorded by this recorder on the
// code before the change (its check of the outcome left out): there the
// second payment was never retried, the customer was suspended (+20s),
// and an operator waived the life at +23s.
func TestRecordLateFailureRetryHistory(t *testing.T) {
	dir := recordDir(t)
	const q = "dunning-late-failure"
	tmp, w := dryRecorder(t, q)
	owedStandIn(w, "pm_1", "fp_1", nil)
	stripeConfirm := newConfirmStandIn(w, confirmAnswer{declineOn: "fp_1"}, pays)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	cus := "cus_late_failure"
	id := workflows.RecoveryWorkflowID(cus)
	failure := func(event, intent string) workflows.PaymentFailedSignal {
		return workflows.PaymentFailedSignal{EventID: event, Created: time.Now(), Intent: workflows.PaymentIntentInfo{
			ID: intent, Amount: 4900, Currency: "usd", InvoiceID: "in_" + intent, DeclineCode: "insufficient_funds", PaymentMethodID: "pm_1",
			Decline: activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentMethod: "pm_1", Fingerprint: "fp_1"}}}
	}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{2 * time.Second}, GracePeriod: 20 * time.Second, DeprovisionAfter: time.Hour,
		CardUpdateDebounce: time.Second, MaxGraceExtension: 48 * time.Hour}}
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, failure("evt_late_first", "pi_late_1"),
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaymentFailed, failure("evt_late_second", "pi_late_2")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(18 * time.Second)
	if d, err := tmp.Client.DescribeWorkflow(ctx, id, ""); err == nil && d.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		// Never retried (the code before the change), and suspended: an
		// operator ends it.
		if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.ControlWaive, workflows.OperatorRequest{Operator: "ops", Reason: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	res := recoveryResult(t, tmp, id, time.Minute)
	var confirms []string
	for _, c := range stripeConfirm.asked() {
		confirms = append(confirms, c.in.IntentID)
	}
	t.Logf("stage %s, confirms %v", res.Stage, confirms)
	if res.Stage != workflows.StageRecovered || len(confirms) != 3 || confirms[1] == confirms[2] {
		t.Fatalf("stage %s after confirms %v; want recovered by the second payment's own retry, which confirms both", res.Stage, confirms)
	}
	recordHistory(t, tmp, dir, "recovery-cus_late_failure", id)
}
