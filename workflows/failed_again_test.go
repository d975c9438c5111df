package workflows_test

import (
	"strings"
	"testing"
	"time"

	"dunning/activities"
	"dunning/workflows"
)

// intentNotices are the notices of type typ of intent's own (a key naming
// it, not the life's), in the order sent.
func (w *world) intentNotices(typ, intent string) []activities.NoticeInput {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []activities.NoticeInput
	for _, n := range w.notices {
		if n.Type == typ && strings.Contains(n.Key, ":"+intent+":") {
			out = append(out, n)
		}
	}
	return out
}

// failedNotices are the payment_failed notices of intent's own.
func (w *world) failedNotices(intent string) []activities.NoticeInput {
	return w.intentNotices("payment_failed", intent)
}

// debitStarts makes pi_1 processing from d on: the customer pays the
// open invoice by bank debit, and Stripe re-uses the intent.
func (rt *recoveryTest) debitStarts(d time.Duration) {
	rt.at(d, func() { rt.w.set(func() { rt.w.intentStatus["pi_1"] = "processing" }) })
}

// debitAfterTold opens the life the told-payment tests share: pi_1 fails
// at 0 and is told in the life's first notice; with keepRecheck pi_2 fails
// at +1h and stays owed, so the re-check before the suspension is made.
// At +90m the customer pays pi_1 by bank debit: the retry at +2h finds it
// processing, and it is in flight at +3h.
func (rt *recoveryTest) debitAfterTold(keepRecheck bool) {
	if keepRecheck {
		rt.signal(time.Hour, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(time.Hour)))
	}
	rt.debitStarts(90 * time.Minute)
	rt.at(3*time.Hour, func() {
		if s := rt.status(); s.Intents[0].State != workflows.IntentInFlight {
			rt.t.Errorf("at +3h pi_1 is %s, want in flight", s.Intents[0].State)
		}
	})
}

// debitTurns are the two ways a turn of pi_1's debit (at) reaches the
// life: its event, or only Stripe's answer to the re-check before the
// suspension.
var debitTurns = []struct {
	name  string
	at    time.Duration
	event bool
}{
	{"its event", 9 * time.Hour, true},
	// pi_2 keeps the deadline's re-check: with all owed in flight
	// nothing is suspended, and nothing asks.
	{"found by the re-check before the suspension", 10*time.Hour - time.Minute, false},
}

// leadAfterNotice checks that a life whose suspension moved to half the
// grace period after a notice at about +10h is past due until then
// (+14h) and suspended once after it (+15h10m); an operator waives at
// +15h20m.
func (rt *recoveryTest) leadAfterNotice() {
	rt.at(14*time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
			rt.t.Errorf("before the lead after the notice: stage %s, control plane %v; want past_due", s.Stage, rt.w.controlActions())
		}
	})
	rt.at(15*time.Hour+10*time.Minute, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended || !equal(rt.w.controlActions(), []string{"suspend"}) {
			rt.t.Errorf("after the lead: stage %s, control plane %v; want suspended once", s.Stage, rt.w.controlActions())
		}
	})
	rt.waive(15*time.Hour + 20*time.Minute)
}

// turnRaces are the moments a turn of pi_1's debit (at) can race what
// runs: pi_2's notice at the mailer, or the re-check before the
// suspension asking Stripe. pi_2 fails and joins at second, and the
// notice of pi_1's turn can be sent no sooner than after.
var turnRaces = []struct {
	name   string
	opt    func(*world)
	second time.Duration
	at     time.Duration
	after  time.Duration
}{
	{"during pi_2's notice", func(w *world) { w.noticeDelayAll = 10 * time.Minute }, 2*time.Hour + 30*time.Minute, 2*time.Hour + 35*time.Minute, 2*time.Hour + 40*time.Minute},
	{"during the re-check before the suspension", func(w *world) { w.checkDelay = 5 * time.Minute }, time.Hour, 10*time.Hour + 2*time.Minute, 10*time.Hour + 2*time.Minute},
}

// toldOnceFirst checks, at +10h40m of a turnRaces life whose debit turned
// at at, that notices (pi_1's notices of the turn) hold one notice, sent
// no sooner than after; that no suspension comes sooner than the lead
// after it; and, for a turn after the deadline's re-check began, that
// nothing was taken before it. An operator waives at +10h50m.
func (rt *recoveryTest) toldOnceFirst(at, after time.Duration, notices func() []activities.NoticeInput) {
	rt.at(10*time.Hour+40*time.Minute, func() {
		s := rt.status()
		told := notices()
		if len(told) != 1 || told[0].CreatedAt.Before(t0.Add(after)) {
			rt.t.Fatalf("pi_1's notices of the turn %+v; want one of its own, once what ran returned", told)
		}
		if want := told[0].CreatedAt.Add(5 * time.Hour); s.SuspendAt.Before(want) {
			rt.t.Errorf("suspend_at %v, want no sooner than %v", s.SuspendAt, want)
		}
		if at > 10*time.Hour && (s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0) {
			rt.t.Errorf("stage %s, control plane %v; want past_due, nothing taken before pi_1's customer hears of it", s.Stage, rt.w.controlActions())
		}
	})
	rt.waive(10*time.Hour + 50*time.Minute)
}

// waive has an operator waive the life at d.
func (rt *recoveryTest) waive(d time.Duration) {
	rt.update(d, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(rt.t, "waive"))
}

// debitFailsAgain makes pi_1's debit fail at d: Stripe shows it unpaid
// from then on, and a new payment_failed event comes at d when event is
// set.
func (rt *recoveryTest) debitFailsAgain(d time.Duration, event bool) {
	rt.at(d-time.Second, func() { rt.w.set(func() { rt.w.intentStatus["pi_1"] = "requires_payment_method" }) })
	if event {
		rt.signal(d, workflows.SignalPaymentFailed, failed("evt_debit_failed_again", "pi_1", t0.Add(d)))
	}
}

// pi_1 fails at 0 and the customer is told in the life's first notice.
// At +90m they pay the invoice by bank debit; the retry at +2h finds it
// processing. The debit fails at +9h (its event, or only Stripe's answer
// to the re-check before the suspension at +10h). The customer, who
// believes they paid, is told of this failure by a payment_failed notice
// of its own, and is not suspended before half the grace period after
// it; one that arrives twice is told once. A debit that succeeds is told
// nothing.
func TestToldPaymentThatFailsAgainAfterProcessingIsToldAndGivenTheLead(t *testing.T) {
	for _, tc := range debitTurns {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRecoveryTest(t)
			rt.debitAfterTold(!tc.event)
			rt.debitFailsAgain(tc.at, tc.event)
			if tc.event {
				// The same event, delivered again.
				rt.signal(tc.at+time.Minute, workflows.SignalPaymentFailed, failed("evt_debit_failed_again", "pi_1", t0.Add(tc.at)))
			}
			var toldAt time.Time
			rt.at(10*time.Hour+time.Minute, func() {
				s := rt.status()
				if s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
					t.Errorf("at the old deadline, pi_1 just failed again: stage %s, control plane %v; want past_due, nothing taken", s.Stage, rt.w.controlActions())
				}
				told := rt.w.failedNotices("pi_1")
				if len(told) != 1 || rt.w.lifeNotices() != 1 {
					t.Fatalf("%d life notices, pi_1's own payment_failed notices %d (%v); want the first, and one of pi_1's for the failure after processing",
						rt.w.lifeNotices(), len(told), rt.w.noticeTypes())
				}
				again := told[0]
				if !strings.Contains(again.Key, ":again:1:") || again.AmountDue != 4900 || !strings.Contains(again.Reason, "pi_1") ||
					!strings.Contains(again.Reason, "was processing, failed") {
					t.Errorf("notice of the failure again %+v; want a key of its own, naming pi_1 and its 49.00, as the payment made that failed", again)
				}
				toldAt = again.CreatedAt
				want := toldAt.Add(5 * time.Hour)
				if !s.SuspendAt.Equal(want) || again.Deadline == nil || !again.Deadline.Equal(want) {
					t.Errorf("suspend_at %v, notice deadline %v; want %v, half the grace period after the notice", s.SuspendAt, again.Deadline, want)
				}
			})
			rt.leadAfterNotice()
			rt.run(input())
			if n := len(rt.w.failedNotices("pi_1")); n != 1 || rt.w.lifeNotices() != 1 {
				t.Errorf("%d payment_failed notices of pi_1's own, %d life notices; want 1 (one per failure told), 1", n, rt.w.lifeNotices())
			}
		})
	}
	t.Run("the debit succeeds", func(t *testing.T) {
		rt := newRecoveryTest(t)
		rt.debitStarts(90 * time.Minute)
		rt.at(6*time.Hour-time.Second, func() { rt.w.set(func() { rt.w.paidIntents["pi_1"] = true; delete(rt.w.intentStatus, "pi_1") }) })
		rt.signal(6*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_debit_paid", IntentID: "pi_1", Created: t0.Add(6 * time.Hour), Source: "payment_intent.succeeded"})
		res := rt.run(input())
		if res.Stage != workflows.StageRecovered || len(rt.w.failedNotices("pi_1")) != 0 || rt.w.lifeNotices() != 1 {
			t.Errorf("stage %s, %d life notices, %d of pi_1's own; want recovered, the first notice alone", res.Stage, rt.w.lifeNotices(), len(rt.w.failedNotices("pi_1")))
		}
	})
}

// pi_1 was in flight at the first notice and its debit failed at +3h: it
// was told by a notice of its own. The customer pays it by bank debit
// again; the re-check before the suspension at +10h finds it processing,
// and suspends for pi_2, which they pay at +12h. pi_1's second debit
// fails at +28h. The customer is told of it by a second notice of pi_1's
// own, under a key of its own, and not deprovisioned sooner than half the
// grace period after it; nor given the account back: pi_1 is what the
// suspension was for, not a new failure.
func TestPaymentToldByItsOwnNoticeThatFailsAgainWhileSuspendedIsToldAgain(t *testing.T) {
	rt := inFlightThenSecond(t)
	rt.debitFails(3*time.Hour, true)
	rt.debitStarts(9 * time.Hour)
	rt.at(12*time.Hour-time.Second, func() { rt.w.set(func() { rt.w.paidIntents["pi_2"] = true }) })
	rt.signal(12*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_second_paid", IntentID: "pi_2", Created: t0.Add(12 * time.Hour), Source: "invoice.paid"})
	rt.debitFailsAgain(28*time.Hour, true)
	rt.at(10*time.Hour+10*time.Minute, func() {
		s := rt.status()
		if s.Stage != workflows.StageSuspended || s.Intents[0].State != workflows.IntentInFlight || len(rt.w.failedNotices("pi_1")) != 1 {
			t.Errorf("at +10h: stage %s, pi_1 %s, pi_1's notices %d; want suspended for pi_2, pi_1 in flight, told once", s.Stage, s.Intents[0].State, len(rt.w.failedNotices("pi_1")))
		}
	})
	want := t0.Add(33 * time.Hour)
	rt.at(28*time.Hour+time.Minute, func() {
		told := rt.w.failedNotices("pi_1")
		if len(told) != 2 {
			t.Fatalf("pi_1's own notices %d (%v); want its first, and one for the failure after the second debit", len(told), rt.w.noticeTypes())
		}
		if told[0].Key == told[1].Key || told[1].Deadline == nil || !told[1].Deadline.Equal(want) {
			t.Errorf("pi_1's notices keyed %q then %q, deadline %v; want two keys, deprovisioning at %v", told[0].Key, told[1].Key, told[1].Deadline, want)
		}
		if s := rt.status(); !s.DeprovisionAt.Equal(want) {
			t.Errorf("deprovision_at %v, want %v", s.DeprovisionAt, want)
		}
	})
	rt.at(32*time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended || !equal(rt.w.controlActions(), []string{"suspend"}) {
			t.Errorf("before the lead after pi_1's notice: stage %s, control plane %v; want suspended, nothing else", s.Stage, rt.w.controlActions())
		}
	})
	rt.waive(32*time.Hour + time.Minute)
	rt.run(input())
}

// Look for the race: pi_1's new failure event comes while a retry round
// charges pi_2 (after the round found pi_1 processing). It is told once
// the round is over, once, and no suspension comes sooner than the lead
// after it.
func TestToldPaymentFailingAgainDuringARetryRoundIsToldOnce(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.chargeDelay = 10 * time.Minute })
	rt.signal(30*time.Minute, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(30*time.Minute)))
	rt.debitStarts(90 * time.Minute)
	rt.debitFailsAgain(2*time.Hour+5*time.Minute, true)
	rt.at(2*time.Hour+30*time.Minute, func() {
		told := rt.w.failedNotices("pi_1")
		if len(told) != 1 || told[0].CreatedAt.Before(t0.Add(2*time.Hour+5*time.Minute)) {
			t.Fatalf("pi_1's own notices %+v; want one payment_failed, after the round", told)
		}
		if s, want := rt.status(), told[0].CreatedAt.Add(5*time.Hour); s.SuspendAt.Before(want) {
			t.Errorf("suspend_at %v, want no sooner than %v", s.SuspendAt, want)
		}
	})
	rt.waive(3*time.Hour + 30*time.Minute)
	rt.run(input())
	if n := len(rt.w.failedNotices("pi_1")); n != 1 {
		t.Errorf("%d notices of pi_1's own, want 1", n)
	}
}

// Look for the race: pi_1's new failure event comes while another
// payment's notice is at the mailer, or while the re-check before the
// suspension asks Stripe. Either way the customer is told of it once, by
// a notice of its own, before anything is taken away for it.
func TestToldPaymentFailingAgainDuringANoticeOrTheSuspensionsRecheckIsToldFirst(t *testing.T) {
	for _, tc := range turnRaces {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRecoveryTest(t, tc.opt)
			rt.joins(tc.second)
			rt.debitStarts(90 * time.Minute)
			rt.debitFailsAgain(tc.at, true)
			rt.toldOnceFirst(tc.at, tc.after, func() []activities.NoticeInput { return rt.w.failedNotices("pi_1") })
			rt.run(input())
			if n := len(rt.w.failedNotices("pi_1")); n != 1 {
				t.Errorf("%d notices of pi_1's own, want 1", n)
			}
		})
	}
}
