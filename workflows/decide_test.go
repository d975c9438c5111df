package workflows

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"dunning/activities"
)

var day0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func attemptsAt(days ...float64) []time.Time {
	var out []time.Time
	for _, d := range days {
		out = append(out, day0.Add(time.Duration(d*24*float64(time.Hour))))
	}
	return out
}

func TestCardAllows(t *testing.T) {
	now := day0.Add(40 * 24 * time.Hour)
	for _, tc := range []struct {
		name     string
		card     *CardRecord
		pm       string // the payment method to confirm; "" for any
		max      int
		ok       bool
		why      string
		wantNext time.Time
	}{
		{"no record: never tried", nil, "pm_1", 8, true, "", time.Time{}},
		{"soft declines under the limit", &CardRecord{Attempts: attemptsAt(35, 36, 37), Class: activities.DeclineSoft}, "pm_1", 8, true, "", time.Time{}},
		{"stop decline: never again", &CardRecord{Stopped: true, Reason: "decline_code stolen_card"}, "pm_1", 8, false, "never to try this card again", time.Time{}},
		{"needs new data: waits for the card", &CardRecord{NeedsNewData: true, Reason: "code expired_card"}, "pm_1", 8, false, "details must change", time.Time{}},
		{"network retry-after not reached", &CardRecord{NotBefore: now.Add(time.Hour), Reason: "network_advice_code 24"}, "pm_1", 8, false, "network asks to wait", now.Add(time.Hour)},
		{"network retry-after passed", &CardRecord{NotBefore: now.Add(-time.Second)}, "pm_1", 8, true, "", time.Time{}},
		{"at the limit in 30 days", &CardRecord{Attempts: attemptsAt(12, 20, 25, 30, 31, 32, 33, 39)}, "pm_1", 8, false, "8 confirms on this card in 30 days", day0.Add(42 * 24 * time.Hour)},
		{"old attempts leave the window", &CardRecord{Attempts: attemptsAt(1, 2, 3, 4, 5, 6, 7, 39)}, "pm_1", 8, true, "", time.Time{}},
		{"a lower limit", &CardRecord{Attempts: attemptsAt(38, 39)}, "pm_1", 2, false, "2 confirms", day0.Add(68 * 24 * time.Hour)},
		// The same card entered again is another payment method.
		{"needs new data: the payment method that carried it", &CardRecord{NeedsNewData: true, StaleMethods: []string{"pm_1", "pm_2"}, Reason: "code incorrect_cvc"},
			"pm_2", 8, false, "details must change", time.Time{}},
		{"needs new data: the card entered again", &CardRecord{NeedsNewData: true, StaleMethods: []string{"pm_1"}, Reason: "code incorrect_cvc"},
			"pm_1b", 8, true, "", time.Time{}},
		{"needs new data: any payment method", &CardRecord{NeedsNewData: true, StaleMethods: []string{"pm_1"}, Reason: "code incorrect_cvc"},
			"", 8, false, "details must change", time.Time{}},
		{"needs new data: which payment method carried it is unknown", &CardRecord{NeedsNewData: true, Reason: "code incorrect_cvc"},
			"pm_1b", 8, false, "details must change", time.Time{}},
		{"stop decline: the card entered again", &CardRecord{Stopped: true, NeedsNewData: true, StaleMethods: []string{"pm_1"}, Reason: "decline_code stolen_card"},
			"pm_1b", 8, false, "never to try this card again", time.Time{}},
		{"the card entered again: the card's limit", &CardRecord{NeedsNewData: true, StaleMethods: []string{"pm_1"}, Attempts: attemptsAt(38, 39)},
			"pm_1b", 2, false, "2 confirms", day0.Add(68 * 24 * time.Hour)},
		{"the card entered again: the network's wait", &CardRecord{NeedsNewData: true, StaleMethods: []string{"pm_1"}, NotBefore: now.Add(time.Hour)},
			"pm_1b", 8, false, "network asks to wait", now.Add(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why, next := cardAllows(tc.card, tc.pm, now, tc.max)
			if ok != tc.ok || !strings.Contains(why, tc.why) || !next.Equal(tc.wantNext) {
				t.Errorf("cardAllows = %v %q %s, want %v %q %s", ok, why, next, tc.ok, tc.why, tc.wantNext)
			}
		})
	}
}

func TestMaxAttemptsPerCard(t *testing.T) {
	for _, tc := range []struct{ set, want int }{{0, 8}, {3, 3}, {15, 15}, {40, 15}, {-1, 8}} {
		if got := maxAttemptsPerCard(&RecoverySettings{MaxAttemptsPerCard: tc.set}); got != tc.want {
			t.Errorf("max %d → %d, want %d", tc.set, got, tc.want)
		}
	}
}

func TestApplyDecline(t *testing.T) {
	now := day0
	for _, tc := range []struct {
		v     activities.DeclineVerdict
		check func(*CardRecord) bool
	}{
		{activities.DeclineVerdict{Class: activities.DeclineStop, Reason: "decline_code lost_card"}, func(c *CardRecord) bool { return c.Stopped && !c.NeedsNewData }},
		{activities.DeclineVerdict{Class: activities.DeclineNewData, Reason: "code expired_card"}, func(c *CardRecord) bool { return c.NeedsNewData && !c.Stopped }},
		{activities.DeclineVerdict{Class: activities.DeclineRetryAfter, RetryAfter: 24 * time.Hour}, func(c *CardRecord) bool { return c.NotBefore.Equal(now.Add(24 * time.Hour)) }},
		{activities.DeclineVerdict{Class: activities.DeclineSoft}, func(c *CardRecord) bool { return !c.Stopped && !c.NeedsNewData && c.NotBefore.IsZero() }},
	} {
		c := &CardRecord{Key: "fp_1"}
		applyDecline(c, tc.v, "pm_1", now)
		if !tc.check(c) || c.Class != tc.v.Class || c.Reason != tc.v.Reason {
			t.Errorf("after %+v: %+v", tc.v, c)
		}
	}
	// A shorter retry-after never shortens a longer one.
	c := &CardRecord{NotBefore: now.Add(48 * time.Hour)}
	applyDecline(c, activities.DeclineVerdict{Class: activities.DeclineRetryAfter, RetryAfter: time.Hour}, "pm_1", now)
	if !c.NotBefore.Equal(now.Add(48 * time.Hour)) {
		t.Errorf("NotBefore %s, want the longer wait kept", c.NotBefore)
	}
}

// A needs-new-data hold remembers every payment method that carried the
// refused data while it lasts; a hold that ended (the network updated
// the card) is forgotten by the next one.
func TestApplyDeclineStaleMethods(t *testing.T) {
	newData := activities.DeclineVerdict{Class: activities.DeclineNewData, Reason: "code incorrect_cvc"}
	c := &CardRecord{Key: "fp_1"}
	applyDecline(c, newData, "pm_1", day0)
	applyDecline(c, activities.DeclineVerdict{Class: activities.DeclineSoft}, "pm_1b", day0)
	applyDecline(c, newData, "pm_1c", day0)
	applyDecline(c, newData, "pm_1c", day0)
	if !c.NeedsNewData || strings.Join(c.StaleMethods, ",") != "pm_1,pm_1c" {
		t.Errorf("stale payment methods %v, want pm_1 and pm_1c", c.StaleMethods)
	}
	c.NeedsNewData = false // the network's automatic update
	applyDecline(c, newData, "pm_1b", day0)
	if strings.Join(c.StaleMethods, ",") != "pm_1b" {
		t.Errorf("stale payment methods %v after the update and a new hold, want pm_1b", c.StaleMethods)
	}
}

func TestMergeAndPruneCards(t *testing.T) {
	now := day0.Add(40 * 24 * time.Hour)
	this := []*CardRecord{{Key: "fp_a", Attempts: attemptsAt(38)}}
	prev := []*CardRecord{
		{Key: "fp_a", Attempts: attemptsAt(20, 38), Stopped: true, Reason: "decline_code stolen_card", Class: activities.DeclineStop},
		{Key: "fp_b", Attempts: attemptsAt(1)},                                            // only old attempts: forgotten
		{Key: "fp_c", NotBefore: now.Add(time.Hour), Class: activities.DeclineRetryAfter}, // a wait still running
	}
	got := pruneCards(mergeCards(this, prev), now)
	if len(got) != 2 || got[0].Key != "fp_a" || got[1].Key != "fp_c" {
		t.Fatalf("cards %+v, want fp_a and fp_c", got)
	}
	if a := got[0]; len(a.Attempts) != 2 || !a.Stopped || a.Reason == "" {
		t.Errorf("fp_a %+v, want both attempts in the window (the same one counted once) and the stop kept", a)
	}
	// The earlier life's record is not shared with the new one.
	prev[0].Attempts[0] = time.Time{}
	if got[0].Attempts[0].IsZero() {
		t.Error("merged record shares its attempts with the previous life's")
	}
}

// A hold for new data carries into the next life with the payment
// methods that carried the refused data, whichever life saw them.
func TestMergeCardsKeepsStaleMethods(t *testing.T) {
	this := []*CardRecord{{Key: "fp_a", NeedsNewData: true, StaleMethods: []string{"pm_a2"}}, {Key: "fp_b"}}
	prev := []*CardRecord{
		{Key: "fp_a", NeedsNewData: true, StaleMethods: []string{"pm_a1", "pm_a2"}},
		{Key: "fp_b", NeedsNewData: true, StaleMethods: []string{"pm_b1"}},
		{Key: "fp_c", NeedsNewData: true, StaleMethods: []string{"pm_c1"}},
	}
	got := mergeCards(this, prev)
	for i, want := range []string{"pm_a2,pm_a1", "pm_b1", "pm_c1"} {
		if c := got[i]; !c.NeedsNewData || strings.Join(c.StaleMethods, ",") != want {
			t.Errorf("%s: needs new data %v, stale payment methods %v; want %s", c.Key, c.NeedsNewData, c.StaleMethods, want)
		}
	}
	prev[2].StaleMethods[0] = "pm_other"
	if got[2].StaleMethods[0] != "pm_c1" {
		t.Error("merged record shares its stale payment methods with the previous life's")
	}
}

func TestChargeHolds(t *testing.T) {
	now := day0
	s := &RecoveryState{Stage: StagePastDue, Intents: []*Intent{
		{ID: "pi_1", State: IntentOpen, CardKey: "fp_stolen"},
		{ID: "pi_2", State: IntentOpen, CardKey: "fp_busy"},
		{ID: "pi_3", State: IntentOpen}, // its card not known yet
	}, Cards: []*CardRecord{
		{Key: "fp_stolen", Stopped: true, Reason: "decline_code stolen_card"},
		{Key: "fp_busy", Attempts: attemptsAt(-1, -2, -3, -4, -5, -6, -7, -8)},
	}}
	held, any := chargeHolds(s, now)
	if !any || len(held) != 2 || !strings.HasPrefix(held[0], "pi_1") || !strings.HasPrefix(held[1], "pi_2") {
		t.Fatalf("holds %v any %v, want pi_1 and pi_2 held and pi_3 chargeable", held, any)
	}
	s.Intents = s.Intents[:2]
	if _, any := chargeHolds(s, now); any {
		t.Error("every card held, yet something may be charged")
	}
}

func TestForgivenByAnEndedLife(t *testing.T) {
	for _, c := range []struct {
		name string
		res  RecoveryResult
		want string
	}{
		{"nothing forgiven", RecoveryResult{Intents: []IntentOutcome{{ID: "pi_1", State: IntentPaid}}}, ""},
		{"waived by the life", RecoveryResult{Intents: []IntentOutcome{{ID: "pi_1", State: IntentWaived}, {ID: "pi_2", State: IntentOpen}}}, "pi_1"},
		{"forgiven by an earlier life", RecoveryResult{Forgiven: []string{"pi_0"}, Intents: []IntentOutcome{{ID: "pi_1", State: IntentPaid}}}, "pi_0"},
		{"both, named once", RecoveryResult{Forgiven: []string{"pi_0", "pi_1"}, Intents: []IntentOutcome{{ID: "pi_1", State: IntentWaived}, {ID: "pi_2", State: IntentWaived}}}, "pi_0,pi_1,pi_2"},
	} {
		if got := strings.Join(forgivenBy(c.res), ","); got != c.want {
			t.Errorf("%s: forgiven %q, want %q", c.name, got, c.want)
		}
	}
}

func TestForgivenKeepsTheNewest(t *testing.T) {
	var list []string
	for i := range maxForgiven + 5 {
		list = withForgiven(list, fmt.Sprintf("pi_%d", i), "")
	}
	list = withForgiven(list, "pi_6")
	if len(list) != maxForgiven || list[0] != "pi_5" || list[len(list)-1] != fmt.Sprintf("pi_%d", maxForgiven+4) {
		t.Fatalf("%d forgiven from %s to %s, want the newest %d, each once", len(list), list[0], list[len(list)-1], maxForgiven)
	}
}
