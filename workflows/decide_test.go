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

// What retry_now and the status say of a confirm is what the charge path
// would do: the card rules applied to what a confirm would charge, as far
// as the state knows before Stripe is asked.
func TestChargeOutlook(t *testing.T) {
	now := day0
	stolen := func() *CardRecord {
		return &CardRecord{Key: "fp_1", PaymentMethod: "pm_1", Stopped: true, Reason: "decline_code stolen_card"}
	}
	cvc := func() *CardRecord {
		return &CardRecord{Key: "fp_1", PaymentMethod: "pm_1", NeedsNewData: true, StaleMethods: []string{"pm_1"}, Reason: "code incorrect_cvc"}
	}
	soft := func() *CardRecord { return &CardRecord{Key: "fp_1", PaymentMethod: "pm_1", Attempts: attemptsAt(-1)} }
	stolen9 := &CardRecord{Key: "fp_9", PaymentMethod: "pm_9", Stopped: true, Reason: "decline_code lost_card"}
	lastTried := Intent{ID: "pi_1", State: IntentOpen, PaymentMethodID: "pm_1", CardKey: "fp_1"}
	with := func(f func(in *Intent)) Intent { in := lastTried; f(&in); return in }
	for _, tc := range []struct {
		name  string
		in    Intent
		cards []*CardRecord
		fresh bool
		kind  string
		why   string // a part of why; "" when nothing holds it
		next  time.Time
	}{
		{"card not known yet, none held", Intent{ID: "pi_1", State: IntentOpen}, nil, true, chargeAllowed, "", time.Time{}},
		{"card not known yet, another held", Intent{ID: "pi_1", State: IntentOpen}, []*CardRecord{stolen9}, true, chargeUnknown, "charged with the payment method Stripe names unless it carries the card of pm_9", time.Time{}},
		{"soft decline", lastTried, []*CardRecord{soft()}, true, chargeAllowed, "", time.Time{}},
		{"stop decline", lastTried, []*CardRecord{stolen()}, true, chargeHeld, "the bank said never to try this card again", time.Time{}},
		{"at the limit", lastTried, []*CardRecord{{Key: "fp_1", PaymentMethod: "pm_1", Attempts: attemptsAt(-1, -2, -3, -4, -5, -6, -7, -8)}}, true,
			chargeHeld, "8 confirms on this card in 30 days", day0.Add(22 * 24 * time.Hour)},
		{"network asks to wait", lastTried, []*CardRecord{{Key: "fp_1", PaymentMethod: "pm_1", NotBefore: day0.Add(time.Hour), Reason: "network advice 24"}}, true,
			chargeHeld, "the card network asks to wait", day0.Add(time.Hour)},
		{"needs new data, the same payment method", lastTried, []*CardRecord{cvc()}, true, chargeHeld, "the card's details must change first", time.Time{}},
		{"needs new data, Stripe names the card entered again", with(func(in *Intent) { in.Charge = &ChargeTarget{PaymentMethod: "pm_1b", Card: "fp_1"} }),
			[]*CardRecord{cvc()}, true, chargeAllowed, "", time.Time{}},
		{"the same, in a life recorded before fresh data lifted the hold", with(func(in *Intent) { in.Charge = &ChargeTarget{PaymentMethod: "pm_1b", Card: "fp_1"} }),
			[]*CardRecord{cvc()}, false, chargeHeld, "the card's details must change first", time.Time{}},
		{"stop decline, Stripe names the same card entered again", with(func(in *Intent) { in.Charge = &ChargeTarget{PaymentMethod: "pm_1b", Card: "fp_1"} }),
			[]*CardRecord{stolen()}, true, chargeHeld, "never to try this card again", time.Time{}},
		{"soft decline, Stripe names a stopped default", with(func(in *Intent) { in.Charge = &ChargeTarget{PaymentMethod: "pm_9", Card: "fp_9"} }),
			[]*CardRecord{soft(), stolen9}, true, chargeHeld, "never to try this card again (decline_code lost_card)", time.Time{}},
		{"stop decline, then a card event names another card", with(func(in *Intent) { in.CardUpdates = []string{"pm_2"} }),
			[]*CardRecord{stolen()}, true, chargeUnknown, "charged with pm_2 (set since) unless it carries the card of pm_1; not with pm_1: the bank said never", time.Time{}},
		{"stop decline, then a card event without a payment method", with(func(in *Intent) { in.CardUpdates = []string{""} }),
			[]*CardRecord{stolen()}, true, chargeUnknown, "charged with the payment method Stripe names (set since) unless it carries the card of pm_1; not with pm_1: the bank said never", time.Time{}},
		{"stop decline, then an address edit of that card", with(func(in *Intent) { in.CardUpdates = []string{"pm_1"} }),
			[]*CardRecord{stolen()}, true, chargeHeld, "the bank said never to try this card again", time.Time{}},
		{"stop decline, then a card event names another held card", with(func(in *Intent) { in.CardUpdates = []string{"pm_9"} }),
			[]*CardRecord{stolen(), stolen9}, true, chargeHeld, "pm_1: the bank said never to try this card again (decline_code stolen_card); pm_9 (set since): the bank said never to try this card again (decline_code lost_card)", time.Time{}},
		{"needs new data, then the card entered again", with(func(in *Intent) { in.CardUpdates = []string{"pm_1b"} }),
			[]*CardRecord{cvc()}, true, chargeUnknown, "charged with pm_1b (set since); not with pm_1: the card's details must change first", time.Time{}},
		{"soft decline, then a card event names a stopped card", with(func(in *Intent) { in.CardUpdates = []string{"pm_9"} }),
			[]*CardRecord{soft(), stolen9}, true, chargeUnknown, "charged with pm_1; not with pm_9 (set since): the bank said never", time.Time{}},
		{"soft decline whose charge is not read yet", lastTried, []*CardRecord{{Key: "fp_1", PaymentMethod: "pm_1", Unread: &activities.Decline{Charge: "ch_1"}}}, true,
			chargeUnknown, "charged with pm_1 unless its last decline's charge, read first, says never to try again", time.Time{}},
		{"needs new data, the card entered again named by Stripe since", with(func(in *Intent) {
			in.Charge, in.CardUpdates = &ChargeTarget{PaymentMethod: "pm_1b", Card: "fp_1"}, []string{"pm_1b"}
		}), []*CardRecord{cvc()}, true, chargeAllowed, "", time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			s := &RecoveryState{Stage: StagePastDue, Intents: []*Intent{&in}, Cards: tc.cards}
			got := chargeOutlookOf(s, &in, now, tc.fresh)
			if got.kind != tc.kind || !strings.Contains(got.why, tc.why) || (tc.why == "") != (got.why == "") || !got.next.Equal(tc.next) {
				t.Errorf("got %s %q next %v; want %s %q next %v", got.kind, got.why, got.next, tc.kind, tc.why, tc.next)
			}
		})
	}
}

func TestRetryNowAnswer(t *testing.T) {
	held := chargeOutlook{intent: "pi_3", kind: chargeHeld, why: "the bank said never to try this card again"}
	maybe := chargeOutlook{intent: "pi_2", kind: chargeUnknown, why: "charged with pm_2 (set since) unless it carries the card of pm_1"}
	ok := chargeOutlook{intent: "pi_1", kind: chargeAllowed}
	for _, tc := range []struct {
		name     string
		outs     []chargeOutlook
		want     string
		refused  bool
		heldPart string
	}{
		{"every one charged", []chargeOutlook{ok}, "retrying every open payment now, within the card-network limits", false, ""},
		{"some held", []chargeOutlook{ok, held}, "retrying now, within the card-network limits: pi_1; held back: pi_3: the bank said", false, "pi_3"},
		{"some up to Stripe", []chargeOutlook{ok, maybe}, "retrying now, within the card-network limits: pi_1; what is charged depends on the card Stripe names: pi_2 (charged with pm_2", false, ""},
		{"none sure", []chargeOutlook{maybe, held}, "asking Stripe now what each open payment would charge; what is charged depends on the card Stripe names: pi_2", false, "pi_3"},
		{"every one held", []chargeOutlook{held}, "", true, "pi_3: the bank said never"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, all := heldOutlooks(tc.outs)
			if all != tc.refused || !strings.Contains(strings.Join(h, "; "), tc.heldPart) {
				t.Errorf("held %v all %v; want all %v naming %q", h, all, tc.refused, tc.heldPart)
			}
			if tc.refused {
				return
			}
			if got := retryNowAnswer(tc.outs); !strings.HasPrefix(got, tc.want) || strings.Contains(got, "retrying") != strings.Contains(tc.want, "retrying") {
				t.Errorf("answer %q, want it to begin %q", got, tc.want)
			}
		})
	}
}

// The status shows each card's hold as the charge path would judge it:
// with the payment method a confirm would charge on it.
func TestShowCardHolds(t *testing.T) {
	now := day0
	cvc := func() *CardRecord {
		return &CardRecord{Key: "fp_1", PaymentMethod: "pm_1", NeedsNewData: true, StaleMethods: []string{"pm_1"}, Reason: "code incorrect_cvc"}
	}
	open := func(f func(in *Intent)) []*Intent {
		in := &Intent{ID: "pi_1", State: IntentOpen, PaymentMethodID: "pm_1", CardKey: "fp_1"}
		f(in)
		return []*Intent{in}
	}
	for _, tc := range []struct {
		name    string
		intents []*Intent
		card    *CardRecord
		fresh   bool
		held    string // a part of the hold shown; "" for none
		next    time.Time
	}{
		{"needs new data, nothing changed", open(func(*Intent) {}), cvc(), true, "the card's details must change first", time.Time{}},
		{"needs new data, Stripe names the card entered again", open(func(in *Intent) { in.Charge = &ChargeTarget{PaymentMethod: "pm_1b", Card: "fp_1"} }), cvc(), true, "", time.Time{}},
		{"the same in a life recorded before fresh data lifted the hold", open(func(in *Intent) { in.Charge = &ChargeTarget{PaymentMethod: "pm_1b", Card: "fp_1"} }), cvc(), false, "the card's details must change first", time.Time{}},
		{"needs new data, last charged with the card entered again", nil, func() *CardRecord { c := cvc(); c.PaymentMethod = "pm_1b"; return c }(), true, "", time.Time{}},
		{"needs new data, a card event named a payment method since", open(func(in *Intent) { in.CardUpdates = []string{"pm_1b"} }), cvc(), true,
			"the card's details must change first (code incorrect_cvc); pm_1b, set since, is tried if it carries this card", time.Time{}},
		{"stopped, a card event named a payment method since", open(func(in *Intent) { in.CardUpdates = []string{"pm_2"} }),
			&CardRecord{Key: "fp_1", PaymentMethod: "pm_1", Stopped: true, Reason: "decline_code stolen_card"}, true, "never to try this card again (decline_code stolen_card)", time.Time{}},
		{"at the limit", open(func(*Intent) {}), &CardRecord{Key: "fp_1", PaymentMethod: "pm_1", Attempts: attemptsAt(-1, -2)}, true, "2 confirms", day0.Add(28 * 24 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &RecoveryState{Stage: StagePastDue, Intents: tc.intents, Cards: []*CardRecord{tc.card}, Settings: RecoverySettings{MaxAttemptsPerCard: 2}}
			showCardHolds(s, now, tc.fresh)
			c := s.Cards[0]
			if !strings.Contains(c.Held, tc.held) || (tc.held == "") != (c.Held == "") || !c.NextAllowed.Equal(tc.next) ||
				(strings.Contains(c.Held, "set since") != strings.Contains(tc.held, "set since")) {
				t.Errorf("held %q until %v; want %q until %v", c.Held, c.NextAllowed, tc.held, tc.next)
			}
		})
	}
}

func TestRetryAfterMissed(t *testing.T) {
	first := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	h := func(n float64) time.Time { return first.Add(time.Duration(n * float64(time.Hour))) }
	sched := []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour}
	state := func(done int, at time.Time) *RecoveryState {
		return &RecoveryState{FirstFailureAt: first, RetriesDone: done, RetryAt: at, Settings: RecoverySettings{RetrySchedule: sched}}
	}
	paused := state(1, h(2+5))
	paused.PausedTotal = 5 * time.Hour
	deadline := h(10)
	tests := []struct {
		name     string
		s        *RecoveryState
		now      time.Time
		deadline time.Time
		declined bool
		wantDone int
		wantAt   time.Time
	}{
		// Nothing missed.
		{"missed none: the next is ahead", state(0, h(1)), h(0.5), deadline, false, 0, h(1)},
		{"missed none, just declined: ahead, kept", state(1, h(2)), h(1.2), deadline, true, 1, h(2)},
		{"the schedule is spent", state(3, time.Time{}), h(5), deadline, true, 3, time.Time{}},
		{"no schedule", &RecoveryState{FirstFailureAt: first, RetryAt: h(1)}, h(5), deadline, false, 0, h(1)},
		// Woken late, or a round that declined nothing: one, at once.
		{"missed one: it runs at once", state(0, h(1)), h(1.5), deadline, false, 0, h(1)},
		{"due this instant: it runs", state(1, h(2)), h(2), deadline, false, 1, h(2)},
		{"missed two: one runs, the third is next", state(0, h(1)), h(2.5), deadline, false, 1, h(2)},
		{"missed all three: one runs, the schedule is then spent", state(0, h(1)), h(6), deadline, false, 2, h(3)},
		{"missed all, past the deadline: one runs before the suspension", state(0, h(1)), h(12), deadline, false, 2, h(3)},
		{"a pause moves the schedule: missed one", paused, h(7.5), deadline, false, 1, h(7)},
		{"a pause moves the schedule: missed two", paused, h(8.5), deadline, false, 2, h(8)},
		// The card declined in the round just ended, nothing changed.
		{"just declined, missed one: the next of the schedule", state(1, h(2)), h(2.5), deadline, true, 2, h(3)},
		{"just declined, due this instant: not at once", state(1, h(2)), h(2), deadline, true, 2, h(3)},
		{"just declined, missed the last: one still owed, an interval on", state(2, h(3)), h(4), deadline, true, 2, h(5)},
		{"just declined, missed all: one still owed, an interval on", state(0, h(1)), h(6), deadline, true, 2, h(7)},
		{"just declined, missed all, the deadline near: owed at the deadline", state(1, h(2)), h(9.5), deadline, true, 2, deadline},
		{"just declined, the deadline passed during the round: owed at once", state(1, h(2)), h(10.5), deadline, true, 2, deadline},
		{"just declined, the next ahead is past the deadline: owed before it", state(0, h(1)), h(1.5), h(1.8), true, 0, h(1.8)},
		{"just declined, the next ahead is at the deadline: it", state(0, h(1)), h(1.5), h(2), true, 1, h(2)},
		{"just declined, no deadline: an interval on", state(2, h(3)), h(4), time.Time{}, true, 2, h(5)},
		{"just declined, a pause moves the schedule", paused, h(7.5), deadline, true, 2, h(8)},
	}
	for _, tt := range tests {
		done, at := retryAfterMissed(tt.s, tt.now, tt.deadline, tt.declined)
		if done != tt.wantDone || !at.Equal(tt.wantAt) {
			t.Errorf("%s: retryAfterMissed = %d, %s; want %d, %s", tt.name, done, at, tt.wantDone, tt.wantAt)
		}
	}
}

func TestRetryNowAfterCharges(t *testing.T) {
	for _, tc := range []struct {
		name     string
		seen     *retryNowSeen
		confirms int
		want     bool
	}{
		{"no retry_now asked after the round's charges", nil, 1, false},
		{"asked before the round's first confirm, which then began", &retryNowSeen{confirms: 0}, 1, false},
		{"asked before the round's first confirm, and none began", &retryNowSeen{confirms: 0}, 0, true},
		{"asked after the round's confirm was declined", &retryNowSeen{confirms: 1}, 1, true},
		{"asked between two intents' confirms", &retryNowSeen{confirms: 1}, 2, false},
	} {
		if got := retryNowAfterCharges(tc.seen, tc.confirms); got != tc.want {
			t.Errorf("%s: retryNowAfterCharges = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRetryForJoined(t *testing.T) {
	first := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	h := func(n float64) time.Time { return first.Add(time.Duration(n * float64(time.Hour))) }
	sched := []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour}
	state := func(done int, at time.Time) *RecoveryState {
		return &RecoveryState{FirstFailureAt: first, RetriesDone: done, RetryAt: at, Settings: RecoverySettings{RetrySchedule: sched}}
	}
	spent := state(3, time.Time{})
	daily := state(1, time.Time{})
	daily.Settings.RetrySchedule = []time.Duration{24 * time.Hour}
	// long's last retry, at +30h, comes long after a ten-hour grace.
	long := func(at, own time.Time) *RecoveryState {
		s := state(2, at)
		s.Settings.RetrySchedule = []time.Duration{time.Hour, 2 * time.Hour, 30 * time.Hour}
		s.JoinedRetryAt = own
		return s
	}
	// slow's first and only retry comes after the deadline.
	slow := state(0, h(30))
	slow.Settings.RetrySchedule = []time.Duration{30 * time.Hour}
	spentOwed := state(3, time.Time{})
	spentOwed.JoinedRetryAt = h(6)
	tests := []struct {
		name     string
		s        *RecoveryState
		now      time.Time
		deadline time.Time
		wantDone int
		wantAt   time.Time
		wantOwn  time.Time
	}{
		// A retry of the schedule still to come, by the margin before the
		// deadline, covers it.
		{"the next of the schedule is ahead", state(1, h(2)), h(1.5), h(10), 1, h(2), time.Time{}},
		{"the next of the schedule is due now", state(1, h(2)), h(2), h(10), 1, h(2), time.Time{}},
		{"a retry owed before the deadline is ahead", state(2, h(4)), h(3.5), h(10), 2, h(4), time.Time{}},
		{"the next of the schedule exactly the margin before the deadline", long(h(9), time.Time{}), h(5), h(10), 2, h(9), time.Time{}},
		{"no deadline: the next of the schedule covers however late", long(h(30), time.Time{}), h(5), time.Time{}, 2, h(30), time.Time{}},
		{"no schedule: no retry", &RecoveryState{FirstFailureAt: first}, h(5), h(10), 0, time.Time{}, time.Time{}},
		// The schedule's next comes after the deadline: a round of its
		// own before it, the schedule left as it is.
		{"the next after the deadline: a first interval after now", long(h(30), time.Time{}), h(5), h(10), 2, h(30), h(6)},
		{"the next inside the margin: a first interval after now", long(h(9.5), time.Time{}), h(5), h(10), 2, h(9.5), h(6)},
		{"the next after the deadline, the interval ends inside the margin: the margin before it", long(h(30), time.Time{}), h(5), h(6.5), 2, h(30), h(5.5)},
		{"the next after the deadline, the deadline sooner than the interval: halfway", state(2, h(3)), h(2.5), h(3.2), 2, h(3), h(2.85)},
		{"the next after the deadline, the deadline now: none, never at once", long(h(30), time.Time{}), h(5), h(5), 2, h(30), time.Time{}},
		{"the next after the deadline, the deadline passed: none", long(h(30), time.Time{}), h(5), h(4), 2, h(30), time.Time{}},
		{"none of the schedule made, its first after the deadline", slow, h(5), h(10), 0, h(30), h(9)},
		{"a round of its own already owed by the margin covers it", long(h(30), h(6)), h(5.5), h(12), 2, h(30), h(6)},
		{"a round of its own owed past the margin: one sooner", long(h(30), h(8)), h(5), h(7), 2, h(30), h(6)},
		{"spent, a round of its own already owed by the margin covers it", spentOwed, h(5.5), h(10), 3, time.Time{}, h(6)},
		// The schedule is spent: one of its own.
		{"spent: a first interval after now", spent, h(5), h(10), 2, h(6), time.Time{}},
		{"spent, no deadline: a first interval after now", spent, h(5), time.Time{}, 2, h(6), time.Time{}},
		{"spent, the deadline sooner than the interval: shortly before it", spent, h(5), h(5.5), 2, h(5.25), time.Time{}},
		{"spent, the interval ends at the margin: the interval", spent, h(5), h(7), 2, h(6), time.Time{}},
		{"spent, the interval ends inside the margin: the margin before the deadline", spent, h(5), h(6.5), 2, h(5.5), time.Time{}},
		{"spent, the deadline now: none, never at once", spent, h(5), h(5), 3, time.Time{}, time.Time{}},
		{"spent, the deadline passed: none", spent, h(5), h(4), 3, time.Time{}, time.Time{}},
		{"spent, a long interval, the deadline three days on: an hour before it", daily, h(48), h(48 + 72), 0, h(48 + 24), time.Time{}},
		{"spent, a long interval, the deadline five hours on: an hour before it", daily, h(48), h(53), 0, h(52), time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done, at, own := retryForJoined(tt.s, tt.now, tt.deadline)
			if done != tt.wantDone || !at.Equal(tt.wantAt) || !own.Equal(tt.wantOwn) {
				t.Errorf("retryForJoined = %d, %s, own %s; want %d, %s, own %s", done, at, own, tt.wantDone, tt.wantAt, tt.wantOwn)
			}
		})
	}
}
