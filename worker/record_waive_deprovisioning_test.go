package worker_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/activities"
	"dunning/workflows"
)

// TestRecordWaiverSignalledWhileDeprovisioningHistory records, as
// TestRecordHistories does (set DUNNING_RECORD_HISTORIES),
// recovery-cus_waive_deprov: the retry (+1s) declines, the customer is
// suspended at +3s and deprovisioned from about +6s; the control plane
// takes three seconds to deprovision, and an operator's waiver is sent
// as a signal meanwhile. It is carried out in the Amberflo step: the debt
// is forgiven and the customer never moved to OFFBOARDED
// (waiver-signalled-while-deprovisioning).
// recovery-cus_waive_deprov_before was recorded by this recorder on the
// code before the change, with DUNNING_RECORD_BEFORE=1: there the waiver
// was refused as coming after the end, and nothing was forgiven.
func TestRecordWaiverSignalledWhileDeprovisioningHistory(t *testing.T) {
	recordWaiverWhileDeprovisioning(t, "cus_waive_deprov", os.Getenv("DUNNING_RECORD_BEFORE") != "", false)
}

// TestRecordWaiverAskedWhileDeprovisioningHistory records, as
// TestRecordWaiverSignalledWhileDeprovisioningHistory does,
// recovery-cus_waive_deprov_upd: the waiver is asked as an update while
// the control plane deprovisions, accepted, and carried out in the
// Amberflo step. Before, it was refused, which left no trace in the
// history: recovery-cus_waive_deprov_before stands for that code.
func TestRecordWaiverAskedWhileDeprovisioningHistory(t *testing.T) {
	recordWaiverWhileDeprovisioning(t, "cus_waive_deprov_upd", false, true)
}

// recordWaiverWhileDeprovisioning records the life of cus, whose waiver
// comes while the control plane deprovisions: as an update, or a signal.
func recordWaiverWhileDeprovisioning(t *testing.T, cus string, before, asUpdate bool) {
	dir := recordDir(t)
	q := "dunning-" + strings.ReplaceAll(cus, "_", "-")
	tmp, w := dryRecorder(t, q)
	owedStandIn(w, "pm_1", "fp_1", nil)
	newConfirmStandIn(w, confirmAnswer{declineOn: "fp_1"})
	var mu sync.Mutex
	var controls []string
	standIn(w, "ControlPlane", func(ctx context.Context, in activities.ControlPlaneInput) (activities.ControlPlaneResult, error) {
		mu.Lock()
		controls = append(controls, in.Action)
		mu.Unlock()
		if in.Action == "deprovision" {
			time.Sleep(3 * time.Second)
		}
		return activities.ControlPlaneResult{}, nil
	})
	ctx := context.Background()
	settings := lifeSettings(3*time.Second, time.Hour, time.Second)
	settings.DeprovisionAfter = 3 * time.Second
	id, _ := startLife(t, tmp, w, q, cus, settings, declinedOn(failedEvent("evt_waive_deprov_failed", "pi_waive_deprov", 4900), "pm_1", "fp_1"))
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(controls)
		mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // the deprovisioning is under way
	req := workflows.OperatorRequest{Operator: "ops", Reason: "goodwill"}
	if asUpdate {
		h, err := tmp.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: workflows.ControlWaive,
			Args: []any{req}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err != nil {
			t.Fatal(err)
		}
		var answer workflows.OperatorResult
		if err := h.Get(ctx, &answer); err != nil || !strings.Contains(answer.Message, "not moved to OFFBOARDED") {
			t.Fatalf("waive: %+v %v; want accepted, saying the customer is not OFFBOARDED", answer, err)
		}
	} else if err := tmp.Client.SignalWorkflow(ctx, id, "", workflows.ControlWaive, req); err != nil {
		t.Fatal(err)
	}
	res := recoveryResult(t, tmp, id, time.Minute)
	mu.Lock()
	got := strings.Join(controls, ",")
	mu.Unlock()
	t.Logf("stage %s, control plane [%s], forgiven %v", res.Stage, got, res.Forgiven)
	name := "recovery-" + cus
	want := []string{"pi_waive_deprov"}
	if before {
		name, want = name+"_before", nil
	}
	if res.Stage != workflows.StageDeprovisioned || got != "suspend,deprovision" || strings.Join(res.Forgiven, ",") != strings.Join(want, ",") {
		t.Fatalf("stage %s, control plane [%s], forgiven %v; want deprovisioned after suspend, deprovision, forgiving %v", res.Stage, got, res.Forgiven, want)
	}
	recordHistory(t, tmp, dir, name, id)
}
