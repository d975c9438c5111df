package worker_test

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/activities"
	"dunning/workflows"
)

// TestRecordOlderFailureAfterAStopHistory records, as TestRecordHistories
// does (set DUNNING_RECORD_HISTORIES), recovery-cus_older_decline: pi_older
// fails on pm_old, then on pm_stop with a decline never to be retried,
// and then comes the event of a decline on pm_old created between the two
// (older-failure-keeps-latest-decline): it is counted on pm_old, and the
// intent keeps the stop on pm_stop, so the scheduled retry charges
// nothing (the customer has no default). The customer then pays.
func TestRecordOlderFailureAfterAStopHistory(t *testing.T) {
	dir := recordDir(t)
	const q = "dunning-older"
	tmp, w := dryRecorder(t, q)
	// The customer has no default: a retry charges the card that failed.
	standIn(w, "IntentOwed", func(ctx context.Context, in activities.OwedInput) (activities.Owed, error) {
		return owedAnswer(in, in.FailedPaymentMethod, "failed payment method", "fp_"+in.FailedPaymentMethod), nil
	})
	confirms := newConfirmStandIn(w, pays)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	cus := "cus_older_decline"
	id := workflows.RecoveryWorkflowID(cus)
	t0 := time.Now()
	event := func(eventID string, created time.Time, pm string, d activities.Decline) workflows.PaymentFailedSignal {
		d.PaymentMethod, d.Fingerprint = pm, "fp_"+pm
		return workflows.PaymentFailedSignal{EventID: eventID, Created: created, Intent: workflows.PaymentIntentInfo{
			ID: "pi_older", Amount: 4900, Currency: "usd", InvoiceID: "in_older", DeclineCode: d.DeclineCode, PaymentMethodID: pm, Decline: d}}
	}
	soft := activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds"}
	stop := activities.Decline{Code: "card_declined", DeclineCode: "do_not_honor", AdviceCode: "do_not_try_again"}
	in := workflows.RecoveryInput{StripeCustomerID: cus, Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{4 * time.Second}, GracePeriod: 10 * time.Hour, DeprovisionAfter: 10 * time.Hour,
		CardUpdateDebounce: time.Second, MaxGraceExtension: 48 * time.Hour}}
	if _, err := tmp.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalPaymentFailed, event("evt_older_first", t0, "pm_old", soft),
		client.StartWorkflowOptions{ID: id, TaskQueue: q}, workflows.PaymentRecoveryWorkflowName, in); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	for _, f := range []workflows.PaymentFailedSignal{
		event("evt_older_stop", t0.Add(2*time.Second), "pm_stop", stop),
		event("evt_older_soft", t0.Add(time.Second), "pm_old", soft),
	} {
		if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaymentFailed, f); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	v, err := tmp.Client.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var s workflows.RecoveryState
	if err := v.Get(&s); err != nil {
		t.Fatal(err)
	}
	if len(s.Intents) != 1 || s.Intents[0].PaymentMethodID != "pm_stop" || s.Intents[0].Decline == nil || s.Intents[0].Decline.Class != activities.DeclineStop {
		t.Fatalf("intents %+v; want pi_older to keep the stop on pm_stop", s.Intents)
	}
	// The scheduled retry (+4s) charges neither the stopped card nor the
	// older one.
	time.Sleep(time.Until(t0.Add(6 * time.Second)))
	if calls := confirms.asked(); len(calls) != 0 {
		t.Fatalf("confirmed %+v at the retry; want nothing charged", calls)
	}
	if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.SignalPaid, workflows.PaidSignal{
		EventID: "evt_older_paid", Created: time.Now(), IntentID: "pi_older", Source: "payment_intent.succeeded"}); err != nil {
		t.Fatal(err)
	}
	res := recoveryResult(t, tmp, id, time.Minute)
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s; want recovered", res.Stage)
	}
	recordHistory(t, tmp, dir, "recovery-cus_older_decline", id)
}
