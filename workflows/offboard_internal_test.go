package workflows

import (
	"fmt"
	"testing"

	"go.temporal.io/sdk/temporal"

	"dunning/activities"
)

func TestAmberfloOutcome(t *testing.T) {
	stageRefused := temporal.NewNonRetryableApplicationError("stage refused", activities.ErrAmberfloOffboardRejected, nil)
	refused := temporal.NewNonRetryableApplicationError("refused", activities.ErrAmberfloRejected, nil)
	for _, tc := range []struct {
		name string
		res  activities.DeactivateResult
		err  error
		want amberfloEnd
	}{
		{"both now", activities.DeactivateResult{Changed: true, Offboarded: true}, nil,
			amberfloEnd{Outcome: "deactivated; moved to OFFBOARDED", Summary: "the Amberflo customer deactivated and OFFBOARDED"}},
		{"inactive, moved now", activities.DeactivateResult{Offboarded: true}, nil,
			amberfloEnd{Outcome: "already inactive; moved to OFFBOARDED", Summary: "the Amberflo customer deactivated and OFFBOARDED"}},
		{"deactivated now, already offboarded", activities.DeactivateResult{Changed: true, AlreadyOffboarded: true}, nil,
			amberfloEnd{Outcome: "deactivated; already OFFBOARDED", Summary: "the Amberflo customer deactivated and OFFBOARDED"}},
		{"already both", activities.DeactivateResult{AlreadyOffboarded: true}, nil,
			amberfloEnd{Outcome: "already inactive; already OFFBOARDED", Summary: "the Amberflo customer deactivated and OFFBOARDED"}},
		// Results recorded before the activity set the stage.
		{"old result, changed", activities.DeactivateResult{Changed: true}, nil,
			amberfloEnd{Outcome: "deactivated", Summary: "the Amberflo customer deactivated"}},
		{"old result, unchanged", activities.DeactivateResult{}, nil,
			amberfloEnd{Outcome: "already inactive", Summary: "the Amberflo customer deactivated"}},
		{"dry run", activities.DeactivateResult{DryRun: true}, nil,
			amberfloEnd{Outcome: "not called", Summary: "Amberflo not called (not configured)"}},
		{"stage refused", activities.DeactivateResult{}, stageRefused, amberfloEnd{
			Outcome:    "deactivated, not moved to OFFBOARDED: stage refused",
			AlertTitle: "Amberflo customer acct-1 deactivated but not OFFBOARDED",
			AlertText: "Amberflo refused to move the lifecycle stage to OFFBOARDED (PUT /customers/stage); the customer is deactivated. " +
				"Move it to OFFBOARDED in Amberflo. stage refused",
			Summary: "the Amberflo customer deactivated but NOT moved to OFFBOARDED (see the alert)"}},
		{"deactivation refused", activities.DeactivateResult{}, refused, amberfloEnd{
			Outcome:    "failed: refused",
			AlertTitle: "Amberflo customer acct-1 not deactivated nor OFFBOARDED",
			AlertText: "The customer was not deactivated in Amberflo (GET or PUT /customers), and its lifecycle stage was not moved either. " +
				"Deactivate it and move it to OFFBOARDED in Amberflo. refused",
			Summary: "the Amberflo customer NOT deactivated nor moved to OFFBOARDED (see the alert)"}},
		{"not an application error", activities.DeactivateResult{}, fmt.Errorf("canceled"), amberfloEnd{
			Outcome:    "failed: canceled",
			AlertTitle: "Amberflo customer acct-1 not deactivated nor OFFBOARDED",
			AlertText: "The customer was not deactivated in Amberflo (GET or PUT /customers), and its lifecycle stage was not moved either. " +
				"Deactivate it and move it to OFFBOARDED in Amberflo. canceled",
			Summary: "the Amberflo customer NOT deactivated nor moved to OFFBOARDED (see the alert)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := amberfloOutcome("acct-1", tc.res, tc.err); got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
