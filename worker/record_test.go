package worker_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"dunning/internal/stripefixture"
	"dunning/internal/testenv"
	"dunning/workflows"
)

// TestRecordHistories records the histories that the replay test keeps,
// from real runs on a dev server: set DUNNING_RECORD_HISTORIES to the
// folder to write them to (worker/testdata/histories). Run it after every
// change of workflow commands, with the names carrying the new version
// (recovery-cus_rules<N>_…, recovery-cus_memo_… for the report memo,
// …_local_… for the local first-failure work and routing, …_told_… for
// settle-on-fresh-state and waiver-notice, …_lt_… for all of them,
// …_gen_… for generation 1, which stands for all of them and
// told-after-record, …_open_… for recoveries started with their first
// failure in their input, …_life_… for life-id-run, …_prev_… for
// previous-at-start, …_audit_… for the changes of the money audit:
// take-away-on-checked-state, control-key-per-request, paid-while-paused,
// waiver-keeps-in-flight, read-declined-charge,
// fresh-data-lifts-new-data-hold, apply-last-signals, carry-ended-life,
// forgiven-across-lives, expiry-notice-undelivered,
// source-deleted-refusals, event-failed-alert, paid-while-running;
// …_dec_… for refused-method-decides-again, the charge target kept for
// retry_now and the status, the Amberflo offboarding's records, and
// payment_method.detached routed as a removed card; …_off_… for
// offboard-on-fresh-state, recorded by TestRecordOffboardHistories;
// …_susp_… for unpaid-elsewhere-before-resumed and
// joined-failure-moves-deprovisioning, recorded by
// TestRecordSuspendedPaidHistory and TestRecordJoinedWhileSuspendedHistory), and
// keep what it
// writes beside the older histories, which must keep replaying too.
func TestRecordHistories(t *testing.T) {
	dir := recordDir(t)
	s := startLocalStack(t, map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1s,2s", "DUNNING_GRACE_PERIOD": "4s", "DUNNING_DEPROVISION_AFTER": "3s",
		"DUNNING_CARD_UPDATE_DEBOUNCE": "1s",
	})
	record := func(name, workflowID string) { recordHistory(t, s.tmp, dir, name, workflowID) }

	// A new card recovers at once.
	recovered := stripefixture.NewID("cus")
	failedEvent := stripefixture.NewID("evt")
	s.send(workflows.EventPaymentFailed, stripefixture.Options{ID: failedEvent, Customer: recovered, ObjectID: "pi_rules_recovered"})
	s.send(workflows.EventPaymentMethodAttached, stripefixture.Options{Customer: recovered})
	if res := s.result(workflows.RecoveryWorkflowID(recovered), time.Minute); res.Stage != workflows.StageRecovered {
		t.Fatalf("recovered: stage %s", res.Stage)
	}
	record("recovery-cus_dec_recovered", workflows.RecoveryWorkflowID(recovered))
	waitClosed(t, s, failedEvent)
	record("evt_dec_failed", failedEvent)

	// Never paid: suspended, deprovisioned; then the money comes.
	deprov := stripefixture.NewID("cus")
	s.send(workflows.EventPaymentFailed, stripefixture.Options{Customer: deprov, ObjectID: "pi_rules_deprov"})
	if res := s.result(workflows.RecoveryWorkflowID(deprov), 2*time.Minute); res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("deprovisioned: stage %s", res.Stage)
	}
	record("recovery-cus_dec_deprov", workflows.RecoveryWorkflowID(deprov))
	late := stripefixture.Options{Customer: deprov, ObjectID: "pi_rules_deprov", ID: stripefixture.NewID("evt")}
	s.send(workflows.EventPaymentSucceeded, late)
	waitClosed(t, s, late.ID)
	record("evt_dec_late_money", late.ID)

	// Waived by an operator while past due: written to Stripe.
	waived := stripefixture.NewID("cus")
	s.send(workflows.EventPaymentFailed, stripefixture.Options{Customer: waived, ObjectID: "pi_rules_waived"})
	id := workflows.RecoveryWorkflowID(waived)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		// Signal once it runs (the event workflow starts it a moment after
		// the webhook answers).
		err := s.tmp.Client.SignalWorkflow(ctx, id, "", workflows.ControlWaive, workflows.OperatorRequest{Reason: "recorded", Operator: "test"})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("signal %s: %v", id, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if res := s.result(id, time.Minute); res.Stage != workflows.StageWaived {
		t.Fatalf("waived: stage %s", res.Stage)
	}
	record("recovery-cus_dec_waived", id)

	// A PaymentMethod account's customer removes their only card.
	detached := stripefixture.Options{Customer: stripefixture.NewID("cus"), ID: stripefixture.NewID("evt")}
	s.send(workflows.EventPaymentMethodDetached, detached)
	waitClosed(t, s, detached.ID)
	record("evt_dec_detached", detached.ID)
}

// recordHistory writes the history of workflowID to dir/name.json, as
// `temporal workflow show` gives it. TestReconciliationOnTemporal records
// a reconciliation's with DUNNING_RECORD_HISTORIES set.
func recordHistory(t *testing.T, tmp *testenv.Temporal, dir, name, workflowID string) {
	t.Helper()
	cli := testenv.Tool(t, "TEMPORAL_CLI", "temporal")
	out, err := exec.Command(cli, "workflow", "show", "--workflow-id", workflowID, "--output", "json",
		"--address", tmp.Address, "--namespace", tmp.Namespace).Output()
	if err != nil {
		t.Fatalf("show %s: %v", workflowID, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waiveAndRecord ends a recorded life with an operator's waiver, once
// what the recorder wants in its history has happened, waits for it to
// close, and writes its history to dir/name.json.
func waiveAndRecord(t *testing.T, tmp *testenv.Temporal, dir, name, id string) workflows.RecoveryResult {
	t.Helper()
	if err := tmp.Client.SignalWorkflow(context.Background(), id, "", workflows.ControlWaive,
		workflows.OperatorRequest{Operator: "ops", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	res := recoveryResult(t, tmp, id, time.Minute)
	t.Logf("stage %s", res.Stage)
	recordHistory(t, tmp, dir, name, id)
	return res
}

func waitClosed(t *testing.T, s *localStack, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if _, err := s.tmp.Client.DescribeWorkflow(ctx, id, ""); err == nil {
			if err := s.tmp.Client.GetWorkflow(ctx, id, "").Get(ctx, nil); err == nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not complete", id)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
