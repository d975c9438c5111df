package workflows_test

import (
	"testing"
	"time"

	"dunning/activities"
	"dunning/workflows"
)

// declinedWith is a failure event of pi_1 created at created, declined on
// the payment method pm (card "fp_" + pm) as d says.
func declinedWith(eventID string, created time.Time, pm string, d activities.Decline) workflows.PaymentFailedSignal {
	f := failed(eventID, "pi_1", created)
	d.PaymentMethod, d.Fingerprint = pm, "fp_"+pm
	f.Intent.DeclineCode, f.Intent.PaymentMethodID, f.Intent.Decline = d.DeclineCode, pm, d
	return f
}

// pi_1 fails on pm_old (insufficient funds) at 0, Stripe's own retry on
// pm_old fails again at +5m, and the customer's pm_stop is declined at
// +10m with do_not_honor and the advice never to try again. Stripe
// delivers the +10m event first and the +5m one after it: the older soft
// decline is an attempt on pm_old, counted, but the intent keeps the
// newer stop on pm_stop, and the next scheduled retry (the customer has
// no default) charges neither the stopped card nor the older one.
func TestOlderFailureEventKeepsTheNewerStopDecline(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.defaultPM = "" })
	soft := activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds"}
	stop := activities.Decline{Code: "card_declined", DeclineCode: "do_not_honor", AdviceCode: "do_not_try_again"}
	rt.signal(15*time.Minute, workflows.SignalPaymentFailed, declinedWith("evt_stop", t0.Add(10*time.Minute), "pm_stop", stop))
	rt.signal(20*time.Minute, workflows.SignalPaymentFailed, declinedWith("evt_older", t0.Add(5*time.Minute), "pm_old", soft))
	rt.at(30*time.Minute, func() {
		s := rt.status()
		in := intentOf(s, "pi_1")
		if in == nil || in.PaymentMethodID != "pm_stop" || in.Decline == nil || in.Decline.Class != activities.DeclineStop {
			t.Errorf("pi_1 = %+v, want it to keep the newer stop decline on pm_stop", in)
		}
		for _, c := range s.Cards {
			switch c.Key {
			case "fp_pm_old":
				if len(c.Attempts) != 2 {
					t.Errorf("pm_old attempts %v, want 2 (0 and +5m, each once)", c.Attempts)
				}
			case "fp_pm_stop":
				if !c.Stopped {
					t.Errorf("pm_stop %+v, want it stopped", c)
				}
			}
		}
	})
	rt.at(time.Hour+5*time.Minute, func() {
		for _, r := range rt.w.retries {
			t.Errorf("confirm of %s with %s at the first retry, want none: the intent last failed on a card never to be tried again", r.IntentID, r.PaymentMethodID)
		}
		rt.env.CancelWorkflow()
	})
	rt.signal(0, workflows.SignalPaymentFailed, declinedWith("evt_first", t0, "pm_old", soft))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, input())
}
