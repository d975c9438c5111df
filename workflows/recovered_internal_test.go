package workflows

import (
	"strings"
	"testing"
	"time"

	"dunning/activities"
)

func TestDecideEnd(t *testing.T) {
	paid := &Intent{ID: "pi_1", InvoiceID: "in_1", State: IntentPaid}
	waived := &Intent{ID: "pi_w", InvoiceID: "in_w", State: IntentWaived}
	open := &Intent{ID: "pi_open", State: IntentOpen}
	flying := &Intent{ID: "pi_fly", State: IntentInFlight}
	began := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	failedAt := func(id, invoice string, created time.Time) activities.UnpaidPayment {
		p := activities.UnpaidPayment{IntentID: id, InvoiceID: invoice, Amount: 4900, Currency: "usd", Status: "requires_payment_method", Why: "declined"}
		if !created.IsZero() {
			p.Created = created.Unix()
		}
		return p
	}
	failed := func(id, invoice string) activities.UnpaidPayment { return failedAt(id, invoice, began.Add(time.Hour)) }
	tests := []struct {
		name     string
		intents  []*Intent
		forgiven []string
		found    []activities.UnpaidPayment
		paid     []string
		wantEnd  bool
		adopt    []string
		hold     []string
		older    []string
		left     string // a fragment of what was left out
	}{
		{name: "nothing else unpaid", intents: []*Intent{paid}, wantEnd: true},
		{name: "a dry run finds nothing", intents: []*Intent{paid}, wantEnd: true},
		{name: "another failed intent is adopted", intents: []*Intent{paid}, found: []activities.UnpaidPayment{failed("pi_2", "in_2")}, adopt: []string{"pi_2"}},
		{name: "two, and one listed twice", intents: []*Intent{paid},
			found: []activities.UnpaidPayment{failed("pi_2", "in_2"), failed("pi_3", ""), failed("pi_2", "in_2")}, adopt: []string{"pi_2", "pi_3"}},
		{name: "a known intent Stripe still lists is the life's own", intents: []*Intent{paid}, found: []activities.UnpaidPayment{failed("pi_1", "in_1")},
			wantEnd: true, left: "pi_1: known to this life (paid)"},
		{name: "waived here stays forgiven", intents: []*Intent{paid, waived}, found: []activities.UnpaidPayment{failed("pi_w", "in_w")},
			wantEnd: true, left: "known to this life (waived)"},
		{name: "forgiven by an earlier life", intents: []*Intent{paid}, forgiven: []string{"pi_old"}, found: []activities.UnpaidPayment{failed("pi_old", "in_old")},
			wantEnd: true, left: "forgiven by an earlier life"},
		{name: "the intent reported paid while Stripe was asked", intents: []*Intent{paid}, paid: []string{"pi_2"},
			found: []activities.UnpaidPayment{failed("pi_2", "in_2")}, wantEnd: true, left: "reported paid while Stripe was asked"},
		{name: "its invoice reported paid while Stripe was asked", intents: []*Intent{paid}, paid: []string{"in_2"},
			found: []activities.UnpaidPayment{failed("pi_2", "in_2")}, wantEnd: true, left: "reported paid while Stripe was asked"},
		{name: "another intent of an invoice the life knows", intents: []*Intent{paid}, found: []activities.UnpaidPayment{failed("pi_1b", "in_1")},
			wantEnd: true, left: "its invoice in_1 is known to this life through pi_1"},
		{name: "an open invoice naming no intent holds the end", intents: []*Intent{paid},
			found: []activities.UnpaidPayment{{InvoiceID: "in_9", Amount: 100, Currency: "usd", Created: began.Unix(), Why: "invoice in_9 open after 1 failed attempt(s)"}}, hold: []string{"in_9"}},
		{name: "a failure just inside the late-event window is adopted", intents: []*Intent{paid},
			found: []activities.UnpaidPayment{failedAt("pi_2", "in_2", began.Add(-lateEventWindow))}, adopt: []string{"pi_2"}},
		{name: "a failure older than the window is not charged, and does not hold the end", intents: []*Intent{paid},
			found: []activities.UnpaidPayment{failedAt("pi_old", "in_old", began.Add(-lateEventWindow-time.Second))}, wantEnd: true, older: []string{"pi_old"}},
		{name: "a failure of unknown age is not charged", intents: []*Intent{paid},
			found: []activities.UnpaidPayment{failedAt("pi_x", "", time.Time{})}, wantEnd: true, older: []string{"pi_x"}},
		{name: "an old open invoice naming no intent is told, not held for", intents: []*Intent{paid},
			found: []activities.UnpaidPayment{{InvoiceID: "in_8", Amount: 100, Currency: "usd", Created: began.Add(-30 * 24 * time.Hour).Unix()}}, wantEnd: true, older: []string{"in_8"}},
		{name: "a recent failure is adopted beside an old one", intents: []*Intent{paid},
			found: []activities.UnpaidPayment{failedAt("pi_old", "in_old", began.Add(-10*24*time.Hour)), failed("pi_2", "in_2")}, adopt: []string{"pi_2"}, older: []string{"pi_old"}},
		{name: "a failure joined while Stripe was asked", intents: []*Intent{paid, open}, found: []activities.UnpaidPayment{failed("pi_2", "in_2")}},
		{name: "a payment in flight is not settled", intents: []*Intent{paid, flying}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &RecoveryState{Intents: tt.intents, Forgiven: tt.forgiven, FirstFailureAt: began}
			got := decideEnd(s, activities.Unpaid{Payments: tt.found}, tt.paid)
			if got.End != tt.wantEnd {
				t.Errorf("End = %v, want %v (%+v)", got.End, tt.wantEnd, got)
			}
			var adopt, hold, older []string
			for _, p := range got.Older {
				older = append(older, firstNonEmpty(p.IntentID, p.InvoiceID))
			}
			if strings.Join(older, ",") != strings.Join(tt.older, ",") {
				t.Errorf("older %v, want %v", older, tt.older)
			}
			for _, p := range got.Adopt {
				adopt = append(adopt, p.IntentID)
			}
			for _, p := range got.Hold {
				hold = append(hold, p.InvoiceID)
			}
			if strings.Join(adopt, ",") != strings.Join(tt.adopt, ",") || strings.Join(hold, ",") != strings.Join(tt.hold, ",") {
				t.Errorf("adopt %v hold %v, want %v and %v", adopt, hold, tt.adopt, tt.hold)
			}
			if tt.left != "" && !strings.Contains(strings.Join(got.Left, "; "), tt.left) {
				t.Errorf("left out %q, want it to say %q", got.Left, tt.left)
			}
		})
	}
}

func TestAdoptedAlready(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	adopted := &Intent{ID: "pi_2", AdoptedAt: at, AdoptedCharge: "ch_2"}
	noCharge := &Intent{ID: "pi_2", AdoptedAt: at}
	event := func(charge string, created time.Time) PaymentFailedSignal {
		return PaymentFailedSignal{EventID: "evt", Created: created, Intent: PaymentIntentInfo{ID: "pi_2", Decline: activities.Decline{Charge: charge}}}
	}
	tests := []struct {
		name string
		in   *Intent
		f    PaymentFailedSignal
		want bool
	}{
		{"an intent an event brought", &Intent{ID: "pi_2"}, event("ch_2", at.Add(-time.Hour)), false},
		{"the adopted decline's event, late", adopted, event("ch_2", at.Add(-25*time.Minute)), true},
		{"the same charge, its event stamped after the read", adopted, event("ch_2", at.Add(time.Second)), true},
		{"a new decline after the adoption", adopted, event("ch_3", at.Add(time.Hour)), false},
		{"an earlier decline of another charge, its event later still", adopted, event("ch_1", at.Add(-20*time.Minute)), false},
		{"an event naming no charge, from before the read", adopted, event("", at.Add(-time.Minute)), true},
		{"an event naming no charge, after the read", adopted, event("", at.Add(time.Minute)), false},
		{"adopted without a charge, the event older", noCharge, event("ch_2", at.Add(-time.Minute)), true},
		{"adopted without a charge, the event newer", noCharge, event("ch_2", at.Add(time.Minute)), false},
	}
	for _, tt := range tests {
		if got := adoptedAlready(tt.in, tt.f); got != tt.want {
			t.Errorf("%s: adoptedAlready = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRetryAfterAdoption(t *testing.T) {
	first := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	sched := []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour}
	state := func(done int, at time.Time) *RecoveryState {
		return &RecoveryState{FirstFailureAt: first, RetriesDone: done, RetryAt: at, Settings: RecoverySettings{RetrySchedule: sched}}
	}
	tests := []struct {
		name     string
		s        *RecoveryState
		now      time.Time
		wantDone int
		wantAt   time.Time
	}{
		{"the next retry is ahead", state(0, first.Add(time.Hour)), first.Add(30 * time.Minute), 0, first.Add(time.Hour)},
		{"the schedule is spent", state(3, time.Time{}), first.Add(5 * time.Hour), 3, time.Time{}},
		{"one fell due: the next of the schedule", state(0, first.Add(time.Hour)), first.Add(90 * time.Minute), 1, first.Add(2 * time.Hour)},
		{"due this instant: not at once", state(1, first.Add(2*time.Hour)), first.Add(2 * time.Hour), 2, first.Add(3 * time.Hour)},
		{"every one fell due: one more, an interval on", state(0, first.Add(time.Hour)), first.Add(6 * time.Hour), 2, first.Add(7 * time.Hour)},
	}
	for _, tt := range tests {
		done, at := retryAfterAdoption(tt.s, tt.now)
		if done != tt.wantDone || !at.Equal(tt.wantAt) {
			t.Errorf("%s: retryAfterAdoption = %d, %s; want %d, %s", tt.name, done, at, tt.wantDone, tt.wantAt)
		}
	}
}
