package workflows_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/workflow"

	"dunning/workflows"
)

// firstOnPM1 is the first failure, on the customer's card pm_1.
func firstOnPM1() workflows.PaymentFailedSignal {
	first := failed("evt_first", "pi_1", t0)
	first.Intent.PaymentMethodID = "pm_1"
	return first
}

// removedPM1 is the customer's removal of pm_1, created at created.
func removedPM1(created time.Duration, usableLeft bool) workflows.PaymentMethodRemovedSignal {
	return workflows.PaymentMethodRemovedSignal{EventID: "evt_detached", Created: t0.Add(created),
		Source: workflows.EventPaymentMethodDetached, PaymentMethodID: "pm_1", UsableLeft: usableLeft}
}

// confirmedWith lists the payment methods of every confirm sent, those
// Stripe refused included.
func (w *world) confirmedWith() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var pms []string
	for _, r := range append(slices.Clone(w.retries), w.refused...) {
		pms = append(pms, r.PaymentMethodID)
	}
	return pms
}

// Stripe delivers events out of order: the network's update of pm_1,
// created before the customer removed pm_1, arrives after the removal.
// The removal is the newest word about pm_1 (and Stripe never lets a
// detached payment method back): pm_1 stays one Stripe will not charge,
// the customer still has nothing to pay with, and neither the status nor
// retry_now presents pm_1 as what a confirm charges. Nothing is confirmed
// with it.
func TestCardEventOlderThanTheRemovalKeepsItUnusable(t *testing.T) {
	late := workflows.CardUpdatedSignal{EventID: "evt_autoupd", Created: t0.Add(10 * time.Minute),
		PaymentMethodID: "pm_1", Source: workflows.EventPaymentMethodAutoUpd}
	for _, tc := range []struct {
		name   string
		recent bool // a life recorded before card-event-older-than-removal
	}{{"now", true}, {"a life recorded before", false}} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRecoveryTest(t)
			if !tc.recent {
				rt.env.OnGetVersion("card-event-older-than-removal", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			}
			// The detach clears the customer's default in Stripe.
			rt.at(20*time.Minute, func() {
				rt.w.set(func() { rt.w.defaultPM, rt.w.detached["pm_1"] = "", true })
			})
			rt.signal(25*time.Minute, workflows.SignalPaymentMethodRemoved, removedPM1(20*time.Minute, false))
			rt.signal(40*time.Minute, workflows.SignalCardUpdated, late)
			var s workflows.RecoveryState
			rt.at(45*time.Minute, func() { s = rt.status() })
			var answer string
			rt.update(46*time.Minute, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}, func(r workflows.OperatorResult, err error) {
				if err != nil || !r.Accepted {
					t.Errorf("retry_now: %+v %v; want accepted", r, err)
				}
				answer = r.Message
			})
			rt.runFrom(input(), firstOnPM1())
			if pms := rt.w.confirmedWith(); slices.Contains(pms, "pm_1") {
				t.Errorf("confirms with %v; want none with pm_1, removed at +20m", pms)
			}
			if !tc.recent {
				// As recorded: the late event took pm_1 back.
				if len(s.Unusable) != 0 {
					t.Errorf("status unusable %+v; want the recorded life's list emptied by the late event", s.Unusable)
				}
				return
			}
			if len(s.Unusable) != 1 || s.Unusable[0].PaymentMethod != "pm_1" || !strings.Contains(s.Unusable[0].Why, "removed by the customer") ||
				!s.Unusable[0].Created.Equal(t0.Add(20*time.Minute)) {
				t.Errorf("status unusable %+v; want pm_1, removed by the customer at +20m", s.Unusable)
			}
			if !s.NoPaymentMethod {
				t.Errorf("status: a usable payment method; want none: the late event says nothing new")
			}
			for _, in := range s.Intents {
				if slices.Contains(in.CardUpdates, "pm_1") || (in.Charge != nil && in.Charge.PaymentMethod == "pm_1") {
					t.Errorf("status: %s would charge %+v / card updates %v; want never pm_1", in.ID, in.Charge, in.CardUpdates)
				}
			}
			if !strings.Contains(answer, "pm_1 (removed by the customer (payment_method.detached))") {
				t.Errorf("retry_now answer %q; want it to say pm_1 was removed and is not charged", answer)
			}
			if !slices.ContainsFunc(s.Actions, func(a workflows.Action) bool {
				return a.Kind == "card updated" && strings.HasPrefix(a.Outcome, "ignored: created before")
			}) {
				t.Errorf("actions %+v; want the late card event recorded as ignored", s.Actions)
			}
		})
	}
}

// A card event created after Stripe refused its payment method is newer
// news: the method may be charged again.
func TestCardEventOutdated(t *testing.T) {
	list := []workflows.UnusableMethod{
		{PaymentMethod: "pm_removed", Why: "removed by the customer (payment_method.detached)", At: t0.Add(time.Minute), Created: t0},
		{PaymentMethod: "pm_old", Why: "refused by Stripe at the confirm of pi_1", At: t0}, // recorded before Created was kept
	}
	for _, tc := range []struct {
		name    string
		pm      string
		created time.Time
		want    bool
	}{
		{"created before the removal", "pm_removed", t0.Add(-time.Second), true},
		{"created in the removal's second", "pm_removed", t0, true},
		{"created after the removal", "pm_removed", t0.Add(time.Second), false},
		{"no time to order it by", "pm_removed", time.Time{}, true},
		{"an entry without created: when it was learnt stands", "pm_old", t0.Add(-time.Minute), true},
		{"an entry without created, event newer", "pm_old", t0.Add(time.Minute), false},
		{"another payment method", "pm_2", t0.Add(-time.Hour), false},
		{"no payment method", "", t0, false},
	} {
		if got := workflows.CardEventOutdated(list, tc.pm, tc.created) != nil; got != tc.want {
			t.Errorf("%s: CardEventOutdated = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The customer removes pm_1, the card that failed, while another usable
// method remains: the removal reaches the recovery all the same. Stripe's
// read of the customer lags the detach and still names pm_1 as the
// default at the scheduled retry: pm_1 is not confirmed (Stripe would
// refuse it, and ops would hear of a rejected retry). Nothing else is
// named, so the customer and ops are told that nothing usable is left;
// when the customer makes pm_2 the default, its card event's round
// charges pm_2.
func TestRemovalWithAMethodLeftIsNeverCharged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		recent bool // lives recorded before removal-with-method-left and removed-method-never-charged
	}{{"now", true}, {"a life recorded before", false}} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRecoveryTest(t)
			if !tc.recent {
				rt.env.OnGetVersion("removal-with-method-left", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
				rt.env.OnGetVersion("removed-method-never-charged", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			}
			rt.w.succeedOnAttempt = 1
			rt.at(20*time.Minute, func() { rt.w.set(func() { rt.w.detached["pm_1"] = true }) })
			rt.signal(21*time.Minute, workflows.SignalPaymentMethodRemoved, removedPM1(20*time.Minute, true))
			var s workflows.RecoveryState
			rt.at(30*time.Minute, func() { s = rt.status() })
			rt.at(90*time.Minute, func() { rt.w.set(func() { rt.w.defaultPM = "pm_2" }) })
			rt.signal(90*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{EventID: "evt_default",
				Created: t0.Add(90 * time.Minute), Source: workflows.EventCustomerUpdated})
			res := rt.runFrom(input(), firstOnPM1())
			pms := rt.w.confirmedWith()
			if !tc.recent {
				// As recorded: the removal left the life waiting for a
				// card, and the scheduled retry was skipped.
				if !s.NoPaymentMethod || res.Stage != workflows.StageRecovered || !equal(pms, []string{"pm_2"}) {
					t.Errorf("waiting %v, stage %s, confirms %v; want the recorded life to wait for a card, then charge pm_2", s.NoPaymentMethod, res.Stage, pms)
				}
				return
			}
			if s.NoPaymentMethod || len(s.Unusable) != 1 || s.Unusable[0].PaymentMethod != "pm_1" {
				t.Errorf("status at +30m: waiting for a card %v, unusable %+v; want retries to go on, pm_1 not charged", s.NoPaymentMethod, s.Unusable)
			}
			if res.Stage != workflows.StageRecovered || !equal(pms, []string{"pm_2"}) {
				t.Fatalf("stage %s, confirms with %v; want recovered by pm_2, pm_1 never confirmed", res.Stage, pms)
			}
			if n := rt.w.alertsWith("critical", "Stripe"); n != 0 {
				t.Errorf("%d critical alerts of Stripe (%+v); want none: nothing was refused", n, rt.w.alerts)
			}
			if rt.w.alertsWith("warning", "No way to pay left") != 1 || !slices.Contains(rt.w.noticeTypes(), "payment_method_missing") {
				t.Errorf("alerts %+v notices %v; want the customer and ops told once that nothing usable is left", rt.w.alerts, rt.w.noticeTypes())
			}
		})
	}
}

// The customer removed pm_1 and nothing usable was left: the customer and
// ops were told by the removal's route. Stripe's read of the customer
// lags the detach and still names pm_1 as the default when an operator
// asks for a retry, and when a customer.updated created before the
// removal arrives late: pm_1 is not confirmed (Stripe refuses it, and the
// refusal reached ops as a rejected retry), and nobody is told twice.
func TestRetryNowAfterARemovalStripeStillNames(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.at(20*time.Minute, func() { rt.w.set(func() { rt.w.detached["pm_1"] = true }) })
	rt.signal(21*time.Minute, workflows.SignalPaymentMethodRemoved, workflows.PaymentMethodRemovedSignal{EventID: "evt_detached",
		Created: t0.Add(20 * time.Minute), Source: workflows.EventPaymentMethodDetached, PaymentMethodID: "pm_1"})
	rt.update(30*time.Minute, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}, mustAccept(t, "retry_now"))
	rt.signal(35*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{EventID: "evt_default_late",
		Created: t0.Add(10 * time.Minute), Source: workflows.EventCustomerUpdated})
	var s workflows.RecoveryState
	rt.at(50*time.Minute, func() { s = rt.status() })
	rt.runFrom(input(), firstOnPM1())
	if pms := rt.w.confirmedWith(); len(pms) != 0 {
		t.Errorf("confirms with %v; want none: pm_1 was removed and nothing else is named", pms)
	}
	if n := rt.w.alertsWith("critical", "Stripe"); n != 0 {
		t.Errorf("%d critical alerts of Stripe (%+v); want none", n, rt.w.alerts)
	}
	if rt.w.alertsWith("warning", "No way to pay left") != 0 || slices.Contains(rt.w.noticeTypes(), "payment_method_missing") {
		t.Errorf("alerts %+v notices %v; want nobody told again: the removal's route told them", rt.w.alerts, rt.w.noticeTypes())
	}
	if !s.NoPaymentMethod {
		t.Errorf("status: a usable payment method; want none")
	}
}

// The customer removes both cards at once, and Stripe's list lags: each
// removal's route still lists the other card, so each says a usable
// method remains. Both removals reach the recovery; the scheduled retry,
// with Stripe's read still naming pm_2 as the default, charges neither,
// and the customer and ops are told, once, that nothing usable is left.
func TestTwoRemovalsWhileStripesListLags(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.at(20*time.Minute, func() {
		rt.w.set(func() { rt.w.defaultPM, rt.w.detached["pm_1"], rt.w.detached["pm_2"] = "pm_2", true, true })
	})
	rt.signal(21*time.Minute, workflows.SignalPaymentMethodRemoved, workflows.PaymentMethodRemovedSignal{EventID: "evt_detached_1",
		Created: t0.Add(20 * time.Minute), Source: workflows.EventPaymentMethodDetached, PaymentMethodID: "pm_1", UsableLeft: true})
	rt.signal(21*time.Minute, workflows.SignalPaymentMethodRemoved, workflows.PaymentMethodRemovedSignal{EventID: "evt_detached_2",
		Created: t0.Add(20 * time.Minute), Source: workflows.EventPaymentMethodDetached, PaymentMethodID: "pm_2", UsableLeft: true})
	var s workflows.RecoveryState
	rt.at(2*time.Hour, func() { s = rt.status() })
	res := rt.runFrom(input(), firstOnPM1())
	if pms := rt.w.confirmedWith(); len(pms) != 0 {
		t.Errorf("confirms with %v; want neither removed card confirmed", pms)
	}
	if rt.w.alertsWith("critical", "Stripe") != 0 {
		t.Errorf("alerts %+v; want no refusal", rt.w.alerts)
	}
	if n := rt.w.alertsWith("warning", "No way to pay left"); n != 1 {
		t.Errorf("%d no-way-to-pay alerts (%+v); want one", n, rt.w.alerts)
	}
	if n := strings.Count(strings.Join(rt.w.noticeTypes(), ","), "payment_method_missing"); n != 1 {
		t.Errorf("notices %v; want one payment_method_missing", rt.w.noticeTypes())
	}
	if !s.NoPaymentMethod || len(s.Unusable) != 2 {
		t.Errorf("status at +2h: waiting for a card %v, unusable %+v; want both removed, waiting for a card", s.NoPaymentMethod, s.Unusable)
	}
	if res.Stage != workflows.StageDeprovisioned {
		t.Errorf("stage %s, want deprovisioned: nothing was ever paid", res.Stage)
	}
}
