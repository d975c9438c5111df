package workflows

import (
	"strings"
	"testing"
	"time"
)

func TestSuspendAtAfterNotice(t *testing.T) {
	week := RecoverySettings{GracePeriod: 7 * 24 * time.Hour}
	short := RecoverySettings{GracePeriod: 10 * time.Hour}
	deadline := day0.Add(7 * 24 * time.Hour)
	at := func(h float64) time.Time { return day0.Add(time.Duration(h * float64(time.Hour))) }
	open := func(id string, told time.Time) *Intent { return &Intent{ID: id, State: IntentOpen, ToldAt: told} }
	for _, tc := range []struct {
		name     string
		settings RecoverySettings
		suspend  time.Time
		intents  []*Intent
		want     time.Time
	}{
		{"no suspension planned stays none", week, time.Time{}, []*Intent{open("pi_2", at(144))}, time.Time{}},
		{"only the first failure: its deadline", week, deadline, []*Intent{open("pi_1", time.Time{})}, deadline},
		{"told early in the grace: the deadline stands", week, deadline, []*Intent{open("pi_1", time.Time{}), open("pi_2", at(24))}, deadline},
		{"told exactly three days before: the deadline stands", week, deadline, []*Intent{open("pi_2", at(96))}, deadline},
		{"told 6 days into a 7-day grace: three days after the notice", week, deadline, []*Intent{open("pi_1", time.Time{}), open("pi_2", at(144))}, at(144 + 72)},
		{"told after the deadline passed (adopted after a hold)", week, deadline, []*Intent{open("pi_2", at(200))}, at(200 + 72)},
		{"the newest notice of an unpaid payment decides", week, deadline, []*Intent{open("pi_2", at(150)), open("pi_3", at(160))}, at(160 + 72)},
		{"a told payment since paid does not move it", week, deadline, []*Intent{open("pi_1", time.Time{}), {ID: "pi_2", State: IntentPaid, ToldAt: at(160)}}, deadline},
		{"a told payment waived does not move it", week, deadline, []*Intent{{ID: "pi_2", State: IntentWaived, ToldAt: at(160)}}, deadline},
		{"a told payment in flight does not move it", week, deadline, []*Intent{{ID: "pi_2", State: IntentInFlight, ToldAt: at(160)}}, deadline},
		{"an extension past the lead stands", week, deadline.Add(5 * 24 * time.Hour), []*Intent{open("pi_2", at(144))}, deadline.Add(5 * 24 * time.Hour)},
		{"short grace: half of it after the notice", short, day0.Add(10 * time.Hour), []*Intent{open("pi_2", at(9))}, at(14)},
		{"short grace: told early, the deadline stands", short, day0.Add(10 * time.Hour), []*Intent{open("pi_2", at(4))}, day0.Add(10 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &RecoveryState{Settings: tc.settings, SuspendAt: tc.suspend, Intents: tc.intents}
			if got := suspendAtAfterNotice(s); !got.Equal(tc.want) {
				t.Errorf("suspendAtAfterNotice = %v, want %v", got, tc.want)
			}
		})
	}
}

// Nothing is taken away while an unpaid payment that joined is untold.
func TestBlockTakeAwayWhileAJoinedFailureIsUntold(t *testing.T) {
	now := day0.Add(8 * 24 * time.Hour)
	for _, tc := range []struct {
		name    string
		stage   Stage
		intents []*Intent
		block   string
	}{
		{"untold and unpaid: blocked", StagePastDue, []*Intent{{ID: "pi_1", State: IntentOpen}, {ID: "pi_2", State: IntentOpen, Untold: true}}, "not yet told of pi_2"},
		{"untold while suspended: no deprovisioning either", StageSuspended, []*Intent{{ID: "pi_2", State: IntentOpen, Untold: true}}, "not yet told of pi_2"},
		{"told: not blocked", StagePastDue, []*Intent{{ID: "pi_1", State: IntentOpen}, {ID: "pi_2", State: IntentOpen, ToldAt: day0}}, ""},
		{"untold but paid: not this one's block", StagePastDue, []*Intent{{ID: "pi_1", State: IntentOpen}, {ID: "pi_2", State: IntentPaid, Untold: true}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &RecoveryState{Stage: tc.stage, SuspendAt: day0, DeprovisionAt: day0, Intents: tc.intents}
			step := takeSuspend
			if tc.stage == StageSuspended {
				step = takeDeprovision
			}
			got := blockTakeAway(s, step, now)
			if (tc.block == "") != (got == "") || !strings.Contains(got, tc.block) {
				t.Errorf("blockTakeAway = %q, want %q", got, tc.block)
			}
		})
	}
}
