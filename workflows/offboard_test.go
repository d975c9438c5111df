package workflows_test

// What deprovisioning records and tells ops of the Amberflo customer:
// deactivated and moved to OFFBOARDED, or which of the two Amberflo
// refused.

import (
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"dunning/activities"
	"dunning/workflows"
)

// deprovisioned runs a recovery to deprovisioning with DeactivateCustomer
// answering res, err, and returns the "amberflo deactivate" record's
// outcome and the alerts sent.
func deprovisioned(t *testing.T, res activities.DeactivateResult, err error) (string, []activities.AlertInput) {
	t.Helper()
	rt := newRecoveryTest(t, func(w *world) {
		w.deactivate = func(activities.AmberfloInput) (activities.DeactivateResult, error) { return res, err }
	})
	if got := rt.run(input()); got.Stage != workflows.StageDeprovisioned {
		t.Fatalf("stage %s, want deprovisioned", got.Stage)
	}
	var outcome []string
	for _, a := range rt.status().Actions {
		if a.Kind == "amberflo deactivate" {
			outcome = append(outcome, a.Outcome)
		}
	}
	if len(outcome) != 1 {
		t.Fatalf("amberflo deactivate records %q, want one", outcome)
	}
	return outcome[0], rt.w.alerts
}

func alertTitled(alerts []activities.AlertInput, prefix string) *activities.AlertInput {
	for i := range alerts {
		if strings.HasPrefix(alerts[i].Title, prefix) {
			return &alerts[i]
		}
	}
	return nil
}

func TestDeprovisionOffboardsAmberflo(t *testing.T) {
	for _, tc := range []struct {
		name        string
		res         activities.DeactivateResult
		wantOutcome string
	}{
		{"both done now", activities.DeactivateResult{Changed: true, Offboarded: true}, "deactivated; moved to OFFBOARDED"},
		{"already inactive", activities.DeactivateResult{Offboarded: true}, "already inactive; moved to OFFBOARDED"},
		{"already both", activities.DeactivateResult{AlreadyOffboarded: true}, "already inactive; already OFFBOARDED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outcome, alerts := deprovisioned(t, tc.res, nil)
			if outcome != tc.wantOutcome {
				t.Errorf("recorded %q, want %q", outcome, tc.wantOutcome)
			}
			dep := alertTitled(alerts, "Deprovisioned: ")
			if dep == nil || !strings.Contains(dep.Text, "Amberflo customer deactivated and OFFBOARDED") {
				t.Errorf("deprovisioning alert %+v, want it to say the Amberflo customer is deactivated and OFFBOARDED", dep)
			}
			if a := alertTitled(alerts, "Amberflo customer"); a != nil {
				t.Errorf("alert %q sent when Amberflo did both", a.Title)
			}
		})
	}
}

func TestDeprovisionAmberfloRefusalSaysWhichCall(t *testing.T) {
	for _, tc := range []struct {
		name        string
		err         error
		wantOutcome string
		wantTitle   string
		wantSummary string // in the deprovisioning alert
	}{
		{"stage refused", temporal.NewNonRetryableApplicationError(
			`customer "acme-cus_1" deactivated, not offboarded: PUT /customers/stage: amberflo answered 400 Bad Request`,
			activities.ErrAmberfloOffboardRejected, nil),
			"deactivated, not moved to OFFBOARDED: ", "Amberflo customer acme-" + customer + " deactivated but not OFFBOARDED",
			"Amberflo customer deactivated but NOT moved to OFFBOARDED"},
		{"deactivation refused", temporal.NewNonRetryableApplicationError(
			`amberflo: deactivate customer "acme-cus_1": PUT /customers: amberflo answered 400 Bad Request`,
			activities.ErrAmberfloRejected, nil),
			"failed: ", "Amberflo customer acme-" + customer + " not deactivated nor OFFBOARDED",
			"Amberflo customer NOT deactivated nor moved to OFFBOARDED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outcome, alerts := deprovisioned(t, activities.DeactivateResult{}, tc.err)
			if !strings.HasPrefix(outcome, tc.wantOutcome) || !strings.Contains(outcome, "400 Bad Request") {
				t.Errorf("recorded %q, want %q and Amberflo's answer", outcome, tc.wantOutcome)
			}
			a := alertTitled(alerts, "Amberflo customer")
			if a == nil || a.Title != tc.wantTitle || a.Severity != "critical" || !strings.Contains(a.Text, "400 Bad Request") {
				t.Fatalf("alert %+v, want critical %q with Amberflo's answer", a, tc.wantTitle)
			}
			dep := alertTitled(alerts, "Deprovisioned: ")
			if dep == nil || !strings.Contains(dep.Text, tc.wantSummary) {
				t.Errorf("deprovisioning alert %+v, want it to say %q", dep, tc.wantSummary)
			}
		})
	}
}
