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

// An operator asks to retry once the scheduled round's confirm has been
// declined, while the round still tells the customer of the decline (the
// mailer is slow): the funds are there now, say. The round was not the
// retry asked: it began no confirm after it. The retry runs once the
// round ends, and the customer is recovered before the suspension. A
// retry_now sent as a signal is only seen where the workflow next drains,
// so nothing tells when it was sent: it stays taken by the round, as
// before, and so does one a life recorded before this rule took.
func TestRetryNowAfterTheRoundsChargeRunsOnceTheRoundEnds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		signal bool
		before bool
		// want are the confirms, by payment method and the minute Stripe
		// answered.
		want   []string
		answer string
	}{
		{"update", false, false, []string{"pm_1@60", "pm_1@70"}, "if it begins none, the retry asked runs once it ends"},
		{"signal", true, false, []string{"pm_1@60", "pm_1@120"}, ""},
		// Its answer was recorded with its history; only what it did is
		// replayed.
		{"recorded before", false, true, []string{"pm_1@60", "pm_1@120"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRecoveryTest(t, func(w *world) {
				w.noticeDelay = map[string]time.Duration{"payment_retry_failed": 10 * time.Minute}
			})
			if tc.before {
				rt.env.OnGetVersion("retry-now-after-the-rounds-charges", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			}
			in := input()
			var answer string
			// The first retry (at 60m) is declined; the customer's funds
			// are there from 61m on.
			rt.at(61*time.Minute, func() { rt.w.set(func() { rt.w.succeedOnAttempt = 2 }) })
			if tc.signal {
				rt.signal(62*time.Minute, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"})
			} else {
				rt.update(62*time.Minute, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops"}, func(r workflows.OperatorResult, err error) {
					if err != nil || !r.Accepted {
						t.Errorf("retry_now after the round's confirm: %+v %v; want accepted", r, err)
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
			if res.Stage != workflows.StageRecovered {
				t.Errorf("stage %s, want recovered", res.Stage)
			}
			if !strings.Contains(answer, tc.answer) {
				t.Errorf("answer %q; want it to say %q", answer, tc.answer)
			}
		})
	}
}
