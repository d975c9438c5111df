package workflows_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/workflow"

	"dunning/activities"
	"dunning/workflows"
)

// stoppedFirst is a first failure declined on pm_1 with a stop decline:
// the card is never to be tried again.
func stoppedFirst() workflows.PaymentFailedSignal {
	first := failed("evt_first", "pi_1", t0)
	first.Intent.PaymentMethodID = "pm_1"
	first.Intent.Decline = activities.Decline{Code: "card_declined", DeclineCode: "stolen_card", PaymentMethod: "pm_1", Fingerprint: "fp_pm_1"}
	return first
}

// The customer removed the stopped card, and nothing usable was left
// when the removal was routed. The stopped card holds nothing any more:
// Stripe cannot charge it. retry_now is taken, says that the stopped card
// was removed and that what Stripe charges now is asked at the charge,
// and the round charges what Stripe names then: a card added before its
// event arrived, or nothing when it names the stopped card's payment
// method still.
func TestRetryNowAfterTheStoppedCardWasRemoved(t *testing.T) {
	for _, tc := range []struct {
		name string
		// added is the customer's default at retry_now: a card added
		// whose event has not arrived, or none.
		added string
		want  workflows.Stage
		pms   []string
	}{
		{"a card added without its event yet", "pm_2", workflows.StageRecovered, []string{"pm_2"}},
		{"nothing added", "", workflows.StageDeprovisioned, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRecoveryTest(t)
			rt.at(20*time.Minute, func() { rt.w.set(func() { rt.w.defaultPM = "" }) })
			rt.signal(20*time.Minute, workflows.SignalPaymentMethodRemoved, workflows.PaymentMethodRemovedSignal{
				EventID: "evt_detached", Created: t0.Add(20 * time.Minute), Source: "payment_method.detached", PaymentMethodID: "pm_1"})
			rt.at(25*time.Minute, func() { rt.w.set(func() { rt.w.defaultPM = tc.added }) })
			var answer string
			rt.update(30*time.Minute, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}, func(r workflows.OperatorResult, err error) {
				if err != nil || !r.Accepted {
					t.Errorf("retry_now after the stopped card was removed: %+v %v; want accepted", r, err)
				}
				answer = r.Message
			})
			rt.w.succeedOnAttempt = 1
			res := rt.runFrom(input(), stoppedFirst())
			var pms []string
			for _, r := range rt.w.retries {
				pms = append(pms, r.PaymentMethodID)
			}
			if res.Stage != tc.want || !equal(pms, tc.pms) {
				t.Fatalf("stage %s, confirms with %v; want %s, confirms with %v", res.Stage, pms, tc.want, tc.pms)
			}
			if !strings.Contains(answer, "pm_1 (removed by the customer (payment_method.detached))") ||
				!strings.Contains(answer, "what Stripe would charge now is asked at the charge") {
				t.Errorf("answer %q; want it to say the stopped card was removed and Stripe is asked at the charge", answer)
			}
			if strings.Contains(answer, "held back") {
				t.Errorf("answer %q names a hold on a card that was removed", answer)
			}
		})
	}
}

// Stripe refused the payment method twice in one round (the second
// refusal reaches ops): neither the status nor retry_now presents it as
// what a confirm would charge.
func TestRefusedPaymentMethodIsNotPresentedAsCharged(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.retryHook = func(in activities.RetryInput) (activities.RetryResult, error, bool) {
			if in.PaymentMethodID == "pm_1" {
				return activities.RetryResult{}, methodRefused("pm_1"), true
			}
			return activities.RetryResult{}, nil, false
		}
	})
	rt.at(61*time.Minute, func() {
		s := rt.status()
		for _, in := range s.Intents {
			if in.Charge != nil && in.Charge.PaymentMethod == "pm_1" {
				t.Errorf("status: %s charges %+v; want not the payment method Stripe refused", in.ID, *in.Charge)
			}
		}
		if len(s.Unusable) != 1 || s.Unusable[0].PaymentMethod != "pm_1" || !strings.Contains(s.Unusable[0].Why, "refused by Stripe") {
			t.Errorf("status unusable %+v; want pm_1, refused by Stripe", s.Unusable)
		}
	})
	var answer string
	rt.update(62*time.Minute, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}, func(r workflows.OperatorResult, err error) {
		answer = r.Message
		if err != nil {
			answer = err.Error()
		}
	})
	rt.run(input())
	if rt.w.alertsWith("critical", "refused the payment method") == 0 {
		t.Fatalf("no alert of the second refusal: the round did not refuse twice (%+v)", rt.w.alerts)
	}
	if !strings.Contains(answer, "pm_1 (refused by Stripe at the confirm of pi_1)") ||
		!strings.Contains(answer, "what Stripe would charge now is asked at the charge") {
		t.Errorf("retry_now answered %q; want pm_1 named as refused, and what is charged asked at the charge", answer)
	}
}

// An operator asks retry_now while the scheduled retry's confirm is under
// way (Stripe takes two minutes to answer). The answer says so: that
// confirm is the retry asked. It declines; the card just declined is not
// confirmed again because of the click: the next confirm is the next
// scheduled one. When a card event came during the confirm (a new
// default), the new card is charged at once after it, not at the card
// event's debounced round. The same holds for retry_now sent as a signal
// during the confirm.
func TestRetryNowDuringAConfirmIsThatConfirm(t *testing.T) {
	for _, tc := range []struct {
		name   string
		signal bool
		// card: a new default and its event during the confirm.
		card bool
		// want are the confirms, by payment method and the minute Stripe
		// answered.
		want []string
	}{
		{"update, nothing changed", false, false, []string{"pm_1@62", "pm_1@122", "pm_1@182"}},
		{"signal, nothing changed", true, false, []string{"pm_1@62", "pm_1@122", "pm_1@182"}},
		{"update, a new card during the confirm", false, true, []string{"pm_1@62", "pm_2@64"}},
		// A life recorded before retry-now-joins-the-round ran a round
		// more, as its history holds.
		{"recorded before", false, false, []string{"pm_1@62", "pm_1@64", "pm_1@122", "pm_1@182"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRecoveryTest(t, func(w *world) { w.chargeDelay = 2 * time.Minute })
			if tc.name == "recorded before" {
				rt.env.OnGetVersion("retry-now-joins-the-round", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			}
			in := input()
			in.Settings.CardUpdateDebounce = 10 * time.Minute
			if tc.card {
				rt.at(61*time.Minute, func() { rt.w.set(func() { rt.w.defaultPM = "pm_2" }) })
				rt.signal(61*time.Minute, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{
					EventID: "evt_attached", Created: t0.Add(61 * time.Minute), PaymentMethodID: "pm_2", Source: "payment_method.attached"})
				rt.w.succeedOnAttempt = 2
			}
			var answer string
			if tc.signal {
				rt.signal(61*time.Minute+30*time.Second, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"})
			} else {
				rt.update(61*time.Minute+30*time.Second, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}, func(r workflows.OperatorResult, err error) {
					if err != nil || !r.Accepted {
						t.Errorf("retry_now during the confirm: %+v %v; want accepted", r, err)
					}
					answer = r.Message
				})
			}
			var got []string
			rt.w.retryHook = func(in activities.RetryInput) (activities.RetryResult, error, bool) {
				got = append(got, fmt.Sprintf("%s@%d", in.PaymentMethodID, rt.w.now().Sub(t0)/time.Minute))
				return activities.RetryResult{}, nil, false
			}
			res := rt.runWith(withFirst(rt, in))
			if !equal(got, tc.want) {
				t.Fatalf("stage %s, confirms %v; want %v", res.Stage, got, tc.want)
			}
			if !tc.signal && tc.name != "recorded before" && (!strings.Contains(answer, "a charge is under way: pi_1 with pm_1") || !strings.Contains(answer, "it is the retry asked")) {
				t.Errorf("answer %q; want it to name the charge under way as the retry asked", answer)
			}
		})
	}
}
