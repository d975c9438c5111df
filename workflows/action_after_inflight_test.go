package workflows_test

import (
	"strings"
	"testing"
	"time"

	"dunning/activities"
	"dunning/workflows"
)

// actionNotices are the payment_action_required notices about intent, in
// the order sent.
func (w *world) actionNotices(intent string) []activities.NoticeInput {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []activities.NoticeInput
	for _, n := range w.notices {
		if n.Type == "payment_action_required" && strings.Contains(n.Key, ":"+intent+":") {
			out = append(out, n)
		}
	}
	return out
}

// debitNeedsAction makes the bank ask the customer to authenticate pi_1,
// which was processing, at d: Stripe shows it requires_action from then
// on, and its payment_intent.requires_action event comes at d when event
// is set.
func (rt *recoveryTest) debitNeedsAction(d time.Duration, event bool) {
	rt.at(d-time.Second, func() { rt.w.set(func() { rt.w.intentStatus["pi_1"] = "requires_action" }) })
	if event {
		rt.signal(d, workflows.SignalActionRequired, workflows.ActionRequiredSignal{EventID: "evt_debit_action", Created: t0.Add(d), IntentID: "pi_1"})
	}
}

// pi_1 fails at 0 and the customer is told in the life's first notice.
// At +90m they pay the invoice again; the retry at +2h finds it
// processing. Then the bank asks them to authenticate it (its event at
// +9h, or only Stripe's answer to the re-check before the suspension at
// +10h). The customer, who believes they paid, is asked to act by a
// payment_action_required notice of its own, and is not suspended before
// half the grace period after it; an event that arrives twice asks once.
func TestToldPaymentThatNeedsActionAfterProcessingIsAskedAndGivenTheLead(t *testing.T) {
	for _, tc := range []struct {
		name  string
		at    time.Duration
		event bool
	}{
		{"its event", 9 * time.Hour, true},
		// pi_2 keeps the deadline's re-check: with all owed in flight
		// nothing is suspended, and nothing asks.
		{"found by the re-check before the suspension", 10*time.Hour - time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRecoveryTest(t)
			if !tc.event {
				rt.signal(time.Hour, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(time.Hour)))
			}
			rt.debitStarts(90 * time.Minute)
			rt.debitNeedsAction(tc.at, tc.event)
			if tc.event {
				// The same event, delivered again.
				rt.signal(tc.at+time.Minute, workflows.SignalActionRequired, workflows.ActionRequiredSignal{EventID: "evt_debit_action", Created: t0.Add(tc.at), IntentID: "pi_1"})
			}
			rt.at(3*time.Hour, func() {
				if s := rt.status(); s.Intents[0].State != workflows.IntentInFlight {
					t.Errorf("at +3h pi_1 is %s, want in flight", s.Intents[0].State)
				}
			})
			rt.at(10*time.Hour+time.Minute, func() {
				s := rt.status()
				if s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
					t.Errorf("at the old deadline, pi_1 just needs the customer's action: stage %s, control plane %v; want past_due, nothing taken", s.Stage, rt.w.controlActions())
				}
				asked := rt.w.actionNotices("pi_1")
				if len(asked) != 1 {
					t.Fatalf("pi_1's payment_action_required notices %d (%v); want one, for the payment that was processing", len(asked), rt.w.noticeTypes())
				}
				ask := asked[0]
				if !strings.HasSuffix(ask.Key, ":action:pi_1:again:1:notice") || ask.AmountDue != 4900 || !strings.Contains(ask.Reason, "pi_1") ||
					!strings.Contains(ask.Reason, "was processing") || ask.PayURL == "" {
					t.Errorf("notice asking again %+v; want a key of its own, naming pi_1, its 49.00, the payment made, and where to pay", ask)
				}
				want := ask.CreatedAt.Add(5 * time.Hour)
				if !s.SuspendAt.Equal(want) || ask.Deadline == nil || !ask.Deadline.Equal(want) {
					t.Errorf("suspend_at %v, notice deadline %v; want %v, half the grace period after the notice", s.SuspendAt, ask.Deadline, want)
				}
				if in := s.Intents[0]; in.State != workflows.IntentOpen || !in.NeedsAction {
					t.Errorf("pi_1 %s, needs action %v; want open, waiting for the customer", in.State, in.NeedsAction)
				}
			})
			rt.at(14*time.Hour, func() {
				if s := rt.status(); s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0 {
					t.Errorf("before the lead after the notice: stage %s, control plane %v; want past_due", s.Stage, rt.w.controlActions())
				}
			})
			rt.at(15*time.Hour+10*time.Minute, func() {
				if s := rt.status(); s.Stage != workflows.StageSuspended || !equal(rt.w.controlActions(), []string{"suspend"}) {
					t.Errorf("after the lead: stage %s, control plane %v; want suspended once", s.Stage, rt.w.controlActions())
				}
			})
			rt.update(15*time.Hour+20*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
			if res := rt.run(input()); res.Stage != workflows.StageWaived {
				t.Errorf("the life ended %s, want waived at +15h20m", res.Stage)
			}
			if n := len(rt.w.actionNotices("pi_1")); n != 1 || rt.w.lifeNotices() != 1 || len(rt.w.failedNotices("pi_1")) != 0 {
				t.Errorf("%d action notices of pi_1, %d life notices, %d payment_failed of pi_1's own; want 1, 1, 0",
					n, rt.w.lifeNotices(), len(rt.w.failedNotices("pi_1")))
			}
		})
	}
}

// pi_1's first decline asked for authentication: the customer was asked
// to act (once per intent, before). pi_2 fails at +1h. They pay pi_1 by
// bank debit at +90m; the re-check before the suspension at +10h finds it
// processing, and suspends for pi_2. At +12h the bank asks them to
// authenticate that payment (its event): they are asked again, under a
// key of its own, with the deprovisioning as the deadline, and not given
// the account back.
func TestPaymentAskedBeforeThatNeedsActionAfterProcessingIsAskedAgain(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.intentStatus["pi_1"], w.intentPM["pi_1"] = "requires_action", "pm_1" })
	rt.signal(time.Hour, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(time.Hour)))
	rt.debitStarts(90 * time.Minute)
	rt.debitNeedsAction(12*time.Hour, true)
	rt.at(10*time.Hour+10*time.Minute, func() {
		s := rt.status()
		if s.Stage != workflows.StageSuspended || s.Intents[0].State != workflows.IntentInFlight || len(rt.w.actionNotices("pi_1")) != 1 {
			t.Errorf("at +10h: stage %s, pi_1 %s, pi_1's action notices %d; want suspended for pi_2, pi_1 in flight, asked once", s.Stage, s.Intents[0].State, len(rt.w.actionNotices("pi_1")))
		}
	})
	rt.at(12*time.Hour+time.Minute, func() {
		asked := rt.w.actionNotices("pi_1")
		if len(asked) != 2 || asked[0].Key == asked[1].Key {
			t.Fatalf("pi_1's payment_action_required notices %+v; want the first, and one of its own for the payment made", asked)
		}
		s := rt.status()
		if asked[1].Deadline == nil || !asked[1].Deadline.Equal(s.DeprovisionAt) || s.Stage != workflows.StageSuspended {
			t.Errorf("notice deadline %v, stage %s; want the deprovisioning %v, suspended", asked[1].Deadline, s.Stage, s.DeprovisionAt)
		}
	})
	rt.update(13*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
	if res := rt.run(input()); res.Stage != workflows.StageWaived {
		t.Errorf("the life ended %s, want waived at +13h", res.Stage)
	}
}

// pi_1 was in flight at the first notice and its debit failed at +3h: it
// was told by a notice of its own. The customer pays it again; the
// re-check before the suspension at +10h finds it processing, and
// suspends for pi_2. At +28h the bank asks them to authenticate pi_1's
// payment: found by the re-check before the deprovisioning at +30h (pi_2
// still owed), or told by its event (pi_2 paid at +12h, nothing else
// owed). Either way they are asked, and not deprovisioned sooner than
// the lead after it, nor given the account back.
func TestSuspendedPaymentThatNeedsActionAfterProcessingIsAskedBeforeDeprovisioning(t *testing.T) {
	for _, tc := range []struct {
		name   string
		at     time.Duration
		event  bool
		payPi2 bool
	}{
		{"found by the re-check before the deprovisioning", 30*time.Hour - time.Minute, false, false},
		{"its event", 28 * time.Hour, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := inFlightThenSecond(t)
			rt.debitFails(3*time.Hour, true)
			rt.debitStarts(9 * time.Hour)
			if tc.payPi2 {
				rt.at(12*time.Hour-time.Second, func() { rt.w.set(func() { rt.w.paidIntents["pi_2"] = true }) })
				rt.signal(12*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_second_paid", IntentID: "pi_2", Created: t0.Add(12 * time.Hour), Source: "invoice.paid"})
			}
			rt.debitNeedsAction(tc.at, tc.event)
			rt.at(10*time.Hour+10*time.Minute, func() {
				if s := rt.status(); s.Stage != workflows.StageSuspended || s.Intents[0].State != workflows.IntentInFlight {
					t.Errorf("at +10h: stage %s, pi_1 %s; want suspended for pi_2, pi_1 in flight", s.Stage, s.Intents[0].State)
				}
			})
			rt.at(30*time.Hour+10*time.Minute, func() {
				s := rt.status()
				asked := rt.w.actionNotices("pi_1")
				if s.Stage != workflows.StageSuspended || !equal(rt.w.controlActions(), []string{"suspend"}) || len(asked) != 1 {
					t.Fatalf("pi_1 needs action after processing: stage %s, control plane %v, pi_1's action notices %d; want suspended, asked once",
						s.Stage, rt.w.controlActions(), len(asked))
				}
				if want := asked[0].CreatedAt.Add(5 * time.Hour); !s.DeprovisionAt.Equal(want) || !strings.HasSuffix(asked[0].Key, ":action:pi_1:again:1:notice") ||
					asked[0].Deadline == nil || !asked[0].Deadline.Equal(want) {
					t.Errorf("deprovision_at %v, notice key %q, deadline %v; want %v and a key of its own", s.DeprovisionAt, asked[0].Key, asked[0].Deadline, want)
				}
			})
			rt.update(31*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
			if res := rt.run(input()); res.Stage != workflows.StageWaived {
				t.Errorf("the life ended %s, want waived at +31h", res.Stage)
			}
		})
	}
}

// Look for the race: the bank's request to authenticate pi_1 comes while
// the re-check before the suspension asks Stripe, or while pi_2's notice
// is at the mailer. Either way the customer is asked once, by a notice of
// its own, before anything is taken away, and no suspension comes sooner
// than the lead after it.
func TestPaymentNeedingActionDuringANoticeOrTheSuspensionsRecheckIsAskedFirst(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opt    func(*world)
		second time.Duration // when pi_2 fails and joins
		at     time.Duration
		after  time.Duration // the notice is sent no sooner than this
	}{
		{"during pi_2's notice", func(w *world) { w.noticeDelayAll = 10 * time.Minute }, 2*time.Hour + 30*time.Minute, 2*time.Hour + 35*time.Minute, 2*time.Hour + 40*time.Minute},
		{"during the re-check before the suspension", func(w *world) { w.checkDelay = 5 * time.Minute }, time.Hour, 10*time.Hour + 2*time.Minute, 10*time.Hour + 2*time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRecoveryTest(t, tc.opt)
			rt.signal(tc.second, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(tc.second)))
			rt.debitStarts(90 * time.Minute)
			rt.debitNeedsAction(tc.at, true)
			rt.at(10*time.Hour+40*time.Minute, func() {
				s := rt.status()
				asked := rt.w.actionNotices("pi_1")
				if len(asked) != 1 || asked[0].CreatedAt.Before(t0.Add(tc.after)) || !strings.HasSuffix(asked[0].Key, ":action:pi_1:again:1:notice") {
					t.Fatalf("pi_1's action notices %+v; want one of its own for the payment made, once what ran returned", asked)
				}
				if want := asked[0].CreatedAt.Add(5 * time.Hour); s.SuspendAt.Before(want) {
					t.Errorf("suspend_at %v, want no sooner than %v", s.SuspendAt, want)
				}
				if tc.at > 10*time.Hour && (s.Stage != workflows.StagePastDue || len(rt.w.controls) != 0) {
					t.Errorf("stage %s, control plane %v; want past_due, nothing taken before pi_1's customer is asked", s.Stage, rt.w.controlActions())
				}
			})
			rt.update(10*time.Hour+50*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
			if res := rt.run(input()); res.Stage != workflows.StageWaived {
				t.Errorf("the life ended %s, want waived", res.Stage)
			}
		})
	}
}

// The bank's request to authenticate pi_1 comes at +9h, but by the
// re-check before its notice the customer has authenticated and it is
// processing again: nothing is sent yet. At +12h that payment fails: the
// customer is told of the failure (payment_failed, a key of its own), not
// asked to act on a payment that no longer asks anything.
func TestPaymentNeedingActionThenFailingBeforeItsNoticeIsToldAsFailed(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.debitStarts(90 * time.Minute)
	rt.signal(9*time.Hour, workflows.SignalActionRequired, workflows.ActionRequiredSignal{EventID: "evt_debit_action", Created: t0.Add(9 * time.Hour), IntentID: "pi_1"})
	rt.at(9*time.Hour+time.Minute, func() {
		if s := rt.status(); s.Intents[0].State != workflows.IntentInFlight || len(rt.w.actionNotices("pi_1")) != 0 {
			t.Errorf("pi_1 %s, action notices %d; want in flight again, nothing sent", s.Intents[0].State, len(rt.w.actionNotices("pi_1")))
		}
	})
	rt.debitFailsAgain(12*time.Hour, true)
	rt.at(12*time.Hour+time.Minute, func() {
		told, asked := rt.w.failedNotices("pi_1"), rt.w.actionNotices("pi_1")
		if len(told) != 1 || len(asked) != 0 || !strings.HasSuffix(told[0].Key, ":past_due:pi_1:again:1:notice") {
			t.Fatalf("pi_1's payment_failed notices %+v, payment_action_required %d; want one of the failure again, no request to act", told, len(asked))
		}
		if s, want := rt.status(), told[0].CreatedAt.Add(5*time.Hour); !s.SuspendAt.Equal(want) || s.Stage != workflows.StagePastDue {
			t.Errorf("suspend_at %v, stage %s; want %v, past_due", s.SuspendAt, s.Stage, want)
		}
	})
	rt.update(13*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "ops"}, mustAccept(t, "waive"))
	if res := rt.run(input()); res.Stage != workflows.StageWaived {
		t.Errorf("the life ended %s, want waived", res.Stage)
	}
}
