package workflows_test

// What deprovisioning does to the Amberflo customer: deactivates it, then,
// only if the money is still owed on the state after the deactivation,
// moves it to OFFBOARDED (which Amberflo never moves back), and what it
// tells ops of each.

import (
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"dunning/activities"
	"dunning/workflows"
)

// Suspended at +10h, deprovisioned at +30h (the test settings): the
// Amberflo step begins at +30h.
const deprovisionAt = 30 * time.Hour

// amberfloRecords returns the outcomes of the records of kind.
func amberfloRecords(s workflows.RecoveryState, kind string) []string {
	var out []string
	for _, a := range s.Actions {
		if a.Kind == kind {
			out = append(out, a.Outcome)
		}
	}
	return out
}

func alertTitled(alerts []activities.AlertInput, prefix string) *activities.AlertInput {
	for i := range alerts {
		if strings.HasPrefix(alerts[i].Title, prefix) {
			return &alerts[i]
		}
	}
	return nil
}

func TestDeprovisionDeactivatesThenOffboardsAmberfloWhileOwed(t *testing.T) {
	for _, tc := range []struct {
		name         string
		disable      activities.DisableResult
		offboard     activities.OffboardResult
		wantDisable  string
		wantOffboard string
	}{
		{"both now", activities.DisableResult{Changed: true}, activities.OffboardResult{Moved: true}, "deactivated", "moved to OFFBOARDED"},
		{"already inactive", activities.DisableResult{}, activities.OffboardResult{Moved: true}, "already inactive", "moved to OFFBOARDED"},
		{"already both", activities.DisableResult{}, activities.OffboardResult{}, "already inactive", "already OFFBOARDED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRecoveryTest(t, func(w *world) {
				w.disableDelay = 3 * time.Hour
				w.disable = func(activities.AmberfloInput) (activities.DisableResult, error) { return tc.disable, nil }
				w.offboard = func(activities.AmberfloInput) (activities.OffboardResult, error) { return tc.offboard, nil }
			})
			var checksBefore int
			rt.at(deprovisionAt+time.Hour, func() { rt.w.mu.Lock(); checksBefore = len(rt.w.checks); rt.w.mu.Unlock() })
			res := rt.run(input())
			if res.Stage != workflows.StageDeprovisioned || !equal(rt.w.offboarded, []string{"acme-" + customer}) {
				t.Fatalf("stage %s, offboarded %v; want deprovisioned and OFFBOARDED once", res.Stage, rt.w.offboarded)
			}
			// The money was asked about again after the deactivation.
			if len(rt.w.checks) <= checksBefore {
				t.Errorf("no owed check after the deactivation (checks %v)", rt.w.checks)
			}
			s := rt.status()
			if got := amberfloRecords(s, "amberflo deactivate"); !equal(got, []string{tc.wantDisable}) {
				t.Errorf("deactivate records %q, want %q", got, tc.wantDisable)
			}
			if got := amberfloRecords(s, "amberflo offboard"); !equal(got, []string{tc.wantOffboard}) {
				t.Errorf("offboard records %q, want %q", got, tc.wantOffboard)
			}
			dep := alertTitled(rt.w.alerts, "Deprovisioned: ")
			if dep == nil || !strings.Contains(dep.Text, "Amberflo customer deactivated and OFFBOARDED") || !strings.Contains(dep.Text, "never paid") {
				t.Errorf("deprovisioning alert %+v, want unpaid, deactivated and OFFBOARDED", dep)
			}
			if a := alertTitled(rt.w.alerts, "Amberflo customer"); a != nil {
				t.Errorf("alert %q sent when Amberflo did both", a.Title)
			}
		})
	}
}

func TestDeprovisionAmberfloRefusalSaysWhichCall(t *testing.T) {
	refused := func(msg, typ string) error { return temporal.NewNonRetryableApplicationError(msg, typ, nil) }
	for _, tc := range []struct {
		name         string
		disableErr   error
		offboardErr  error
		wantOffboard int // OffboardCustomer calls
		wantTitle    string
		wantSummary  string // in the deprovisioning alert
	}{
		{"stage refused", nil, refused(`customer "acme-cus_1" not moved to OFFBOARDED: PUT /customers/stage: amberflo answered 400 Bad Request`, activities.ErrAmberfloOffboardRejected),
			1, "Amberflo customer acme-" + customer + " deactivated but not OFFBOARDED", "Amberflo customer deactivated but NOT moved to OFFBOARDED"},
		{"deactivation refused", refused(`amberflo: deactivate customer "acme-cus_1": PUT /customers: amberflo answered 400 Bad Request`, activities.ErrAmberfloRejected), nil,
			0, "Amberflo customer acme-" + customer + " not deactivated nor OFFBOARDED", "Amberflo customer NOT deactivated nor moved to OFFBOARDED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRecoveryTest(t, func(w *world) {
				w.disable = func(activities.AmberfloInput) (activities.DisableResult, error) {
					return activities.DisableResult{}, tc.disableErr
				}
				w.offboard = func(activities.AmberfloInput) (activities.OffboardResult, error) {
					return activities.OffboardResult{}, tc.offboardErr
				}
			})
			if got := rt.run(input()); got.Stage != workflows.StageDeprovisioned {
				t.Fatalf("stage %s, want deprovisioned", got.Stage)
			}
			if len(rt.w.offboarded) != tc.wantOffboard {
				t.Errorf("OffboardCustomer called %d times, want %d", len(rt.w.offboarded), tc.wantOffboard)
			}
			a := alertTitled(rt.w.alerts, "Amberflo customer")
			if a == nil || a.Title != tc.wantTitle || a.Severity != "critical" || !strings.Contains(a.Text, "400 Bad Request") {
				t.Fatalf("alert %+v, want critical %q with Amberflo's answer", a, tc.wantTitle)
			}
			dep := alertTitled(rt.w.alerts, "Deprovisioned: ")
			if dep == nil || !strings.Contains(dep.Text, tc.wantSummary) {
				t.Errorf("deprovisioning alert %+v, want it to say %q", dep, tc.wantSummary)
			}
		})
	}
}

// Fresh state decides. Amberflo is down when the deprovisioning comes, and
// the deactivation is retried for three hours; the customer pays an hour
// in. The stage is never moved to OFFBOARDED (Amberflo would never move it
// back), and ops hear of the money with what is left in Amberflo.
func TestPaidWhileTheAmberfloDeactivationRunsIsNeverOffboarded(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.disableDelay = 3 * time.Hour })
	rt.at(deprovisionAt+time.Hour, func() {
		rt.w.set(func() { rt.w.paidIntents["pi_1"] = true })
		rt.env.SignalWorkflow(workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid_late", IntentID: "pi_1",
			Created: t0.Add(deprovisionAt + time.Hour), Source: "payment_intent.succeeded"})
	})
	res := rt.run(input())
	if res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("stage %s, want deprovisioned (the control plane had taken the resources back)", res.Stage)
	}
	if len(rt.w.deactive) != 1 {
		t.Errorf("deactivations %v, want the one under way", rt.w.deactive)
	}
	if len(rt.w.offboarded) != 0 {
		t.Fatalf("moved to OFFBOARDED %v, a customer who paid during the deactivation", rt.w.offboarded)
	}
	s := rt.status()
	if got := amberfloRecords(s, "amberflo offboard"); len(got) != 1 || !strings.HasPrefix(got[0], "not moved to OFFBOARDED: nothing is owed") {
		t.Errorf("offboard records %q, want one saying it was not moved, nothing being owed", got)
	}
	late := alertTitled(rt.w.alerts, "Money after the end")
	if n := rt.w.alertsWith("critical", "Money after the end"); n != 1 || late == nil ||
		!strings.Contains(late.Text, "deactivated but was NOT moved to OFFBOARDED") || !strings.Contains(late.Text, "enable it again in Amberflo") {
		t.Fatalf("%d money-after-the-end alerts (%+v), want one saying the customer is deactivated, not OFFBOARDED, and can be enabled again", n, late)
	}
	dep := alertTitled(rt.w.alerts, "Deprovisioned: ")
	if dep == nil || strings.Contains(dep.Text, "never paid") || !strings.Contains(dep.Text, "NOT moved to OFFBOARDED") {
		t.Errorf("deprovisioning alert %+v; want it to say the money came and the customer is not OFFBOARDED", dep)
	}
	if a := alertTitled(rt.w.alerts, "Amberflo customer"); a != nil {
		t.Errorf("alert %q: nothing is left for ops to decide in Amberflo beyond the late money", a.Title)
	}
}

// The same payment, seen only by the re-check after the deactivation (a
// bank transfer, no event): not OFFBOARDED either, and it still reaches
// ops as money after the end.
func TestPaidFoundByTheRecheckAfterTheDeactivationIsNeverOffboarded(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.disableDelay = 3 * time.Hour })
	rt.at(deprovisionAt+time.Hour, func() { rt.w.set(func() { rt.w.invoiceState["in_pi_1"] = "paid" }) })
	res := rt.run(input())
	if res.Stage != workflows.StageDeprovisioned || len(rt.w.offboarded) != 0 {
		t.Fatalf("stage %s, offboarded %v; want deprovisioned and never OFFBOARDED", res.Stage, rt.w.offboarded)
	}
	late := alertTitled(rt.w.alerts, "Money after the end")
	if late == nil || !strings.Contains(late.Text, "pi_1") || !strings.Contains(late.Text, "NOT moved to OFFBOARDED") {
		t.Errorf("money-after-the-end alert %+v, want one for pi_1 saying the customer is not OFFBOARDED", late)
	}
}

// An operator's answer is the truth. The waiver comes while the
// deactivation is retried through an Amberflo outage: it is accepted, says
// what it does, and does it: the debt is forgiven in Stripe, the customer
// is never OFFBOARDED, and the life's result says the intent is forgiven
// (no later life charges it).
func TestWaiverWhileTheAmberfloDeactivationRunsIsNeverOffboarded(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.disableDelay = 3 * time.Hour })
	var answer workflows.OperatorResult
	rt.update(deprovisionAt+time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Operator: "ops@example.com", Reason: "goodwill"},
		func(r workflows.OperatorResult, err error) {
			if err != nil || !r.Accepted {
				t.Errorf("waiver during the deactivation: %+v %v, want accepted", r, err)
			}
			answer = r
		})
	res := rt.run(input())
	if !strings.Contains(answer.Message, "not moved to OFFBOARDED") || !strings.Contains(answer.Message, "ends as deprovisioned") {
		t.Errorf("waiver answer %q, want it to say the customer is not moved to OFFBOARDED and the recovery ends as deprovisioned", answer.Message)
	}
	if res.Stage != workflows.StageDeprovisioned || len(rt.w.offboarded) != 0 {
		t.Fatalf("stage %s, offboarded %v; want deprovisioned and never OFFBOARDED", res.Stage, rt.w.offboarded)
	}
	if len(rt.w.forgiven) != 1 || rt.w.forgiven[0].IntentID != "pi_1" {
		t.Errorf("forgiven in Stripe %+v, want pi_1", rt.w.forgiven)
	}
	if !equal(res.Forgiven, []string{"pi_1"}) {
		t.Errorf("result forgives %v, want pi_1", res.Forgiven)
	}
	if s := rt.status(); s.Waive != nil {
		t.Errorf("waiver %+v left asked for after the life ended", s.Waive)
	}
	dep := alertTitled(rt.w.alerts, "Deprovisioned: ")
	if dep == nil || !strings.Contains(dep.Text, "waived by operator ops@example.com") || !strings.Contains(dep.Text, "NOT moved to OFFBOARDED") {
		t.Errorf("deprovisioning alert %+v, want it to say the debt was waived and the customer not OFFBOARDED", dep)
	}
	if !strings.Contains(strings.Join(rt.w.noticeTypes(), ","), "payment_waived") {
		t.Errorf("notices %v, want the customer told of the waiver", rt.w.noticeTypes())
	}
}
