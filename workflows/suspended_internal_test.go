package workflows

import (
	"testing"
	"time"
)

func TestDeprovisionAtAfterNotice(t *testing.T) {
	week := RecoverySettings{GracePeriod: 7 * 24 * time.Hour, DeprovisionAfter: 14 * 24 * time.Hour}
	short := RecoverySettings{GracePeriod: 10 * time.Hour, DeprovisionAfter: 20 * time.Hour}
	at := func(h float64) time.Time { return day0.Add(time.Duration(h * float64(time.Hour))) }
	deadline := at(21 * 24) // suspended at 7 days, deprovisioned 14 days later
	open := func(id string, told time.Time) *Intent { return &Intent{ID: id, State: IntentOpen, ToldAt: told} }
	for _, tc := range []struct {
		name     string
		settings RecoverySettings
		deprov   time.Time
		intents  []*Intent
		want     time.Time
	}{
		{"no deprovisioning planned stays none", week, time.Time{}, []*Intent{open("pi_2", at(500))}, time.Time{}},
		{"only the failure suspended for: its deadline", week, deadline, []*Intent{open("pi_1", time.Time{})}, deadline},
		{"told before the suspension (a late first notice): the deadline stands", week, deadline, []*Intent{open("pi_1", at(140))}, deadline},
		{"joined early in the suspension: the deadline stands", week, deadline, []*Intent{open("pi_1", time.Time{}), open("pi_2", at(200))}, deadline},
		{"joined a day before the deadline: three days after its notice", week, deadline, []*Intent{open("pi_1", time.Time{}), open("pi_2", at(20*24))}, at(23 * 24)},
		{"the newest notice of an unpaid payment decides", week, deadline, []*Intent{open("pi_2", at(20*24)), open("pi_3", at(20*24+6))}, at(23*24 + 6)},
		{"a told payment since paid does not move it", week, deadline, []*Intent{open("pi_1", time.Time{}), {ID: "pi_2", State: IntentPaid, ToldAt: at(20 * 24)}}, deadline},
		{"a told payment in flight does not move it", week, deadline, []*Intent{{ID: "pi_2", State: IntentInFlight, ToldAt: at(20 * 24)}}, deadline},
		{"a told payment waived does not move it", week, deadline, []*Intent{{ID: "pi_2", State: IntentWaived, ToldAt: at(20 * 24)}}, deadline},
		{"short grace: half of it after the notice", short, at(30), []*Intent{open("pi_2", at(29))}, at(34)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &RecoveryState{Stage: StageSuspended, Settings: tc.settings, DeprovisionAt: tc.deprov, Intents: tc.intents}
			if got := deprovisionAtAfterNotice(s); !got.Equal(tc.want) {
				t.Errorf("deprovisionAtAfterNotice = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReopenDue(t *testing.T) {
	paid := &Intent{ID: "pi_1", State: IntentPaid}
	for _, tc := range []struct {
		name    string
		stage   Stage
		paused  bool
		waive   bool
		intents []*Intent
		want    bool
	}{
		{"paid, a failure found and untold: reopened", StageSuspended, false, false, []*Intent{paid, {ID: "pi_2", State: IntentOpen, Untold: true}}, true},
		{"paid, Stripe not answered (nothing unsettled): reopened", StageSuspended, false, false, []*Intent{paid}, true},
		{"an untold failure in flight: reopened", StageSuspended, false, false, []*Intent{paid, {ID: "pi_2", State: IntentInFlight, Untold: true}}, true},
		{"the debt suspended for still owed: kept", StageSuspended, false, false, []*Intent{{ID: "pi_1", State: IntentOpen}, {ID: "pi_2", State: IntentOpen, Untold: true}}, false},
		{"the debt suspended for in flight: kept", StageSuspended, false, false, []*Intent{{ID: "pi_1", State: IntentInFlight}}, false},
		{"the debt suspended for failed again after flight, not yet told: kept", StageSuspended, false, false, []*Intent{paid, {ID: "pi_2", State: IntentOpen, Untold: true, FailedAgain: 1}}, false},
		{"the debt suspended for failed again, found in flight before its notice: kept", StageSuspended, false, false, []*Intent{paid, {ID: "pi_2", State: IntentInFlight, Untold: true, FailedAgain: 1}}, false},
		{"a joined failure told while suspended: kept", StageSuspended, false, false, []*Intent{paid, {ID: "pi_2", State: IntentOpen, ToldAt: day0}}, false},
		{"paused: waits for the operator", StageSuspended, true, false, []*Intent{paid, {ID: "pi_2", State: IntentOpen, Untold: true}}, false},
		{"a waiver to carry out resumes by itself", StageSuspended, false, true, []*Intent{paid, {ID: "pi_2", State: IntentOpen, Untold: true}}, false},
		{"past due: nothing to give back", StagePastDue, false, false, []*Intent{paid, {ID: "pi_2", State: IntentOpen, Untold: true}}, false},
		{"deprovisioned: final", StageDeprovisioned, false, false, []*Intent{paid}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &RecoveryState{Stage: tc.stage, Paused: tc.paused, Intents: tc.intents}
			if tc.waive {
				s.Waive = &OperatorRequest{Reason: "goodwill"}
			}
			if got := reopenDue(s); got != tc.want {
				t.Errorf("reopenDue = %v, want %v", got, tc.want)
			}
		})
	}
}
