package workflows_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"dunning/activities"
	"dunning/workflows"
)

// calls records which activities ran locally and which as activities.
type calls struct {
	mu            sync.Mutex
	local, remote []string
}

func (c *calls) listen(env *testsuite.TestWorkflowEnvironment) {
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.local = append(c.local, info.ActivityType.Name)
	})
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.remote = append(c.remote, info.ActivityType.Name)
	})
}

func count(names []string, name string) int {
	n := 0
	for _, x := range names {
		if x == name {
			n++
		}
	}
	return n
}

// The first failure's reads are asked at once, as local activities, and so
// are its notice and alert; nothing goes through an activity task.
func TestFirstFailureWorkRunsLocallyAndAtOnce(t *testing.T) {
	rt := newRecoveryTest(t)
	// Each read waits for the other two: run one after another, none
	// would return before its 5 s are up.
	var arrived sync.WaitGroup
	arrived.Add(3)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	var notTogether sync.Once
	apart := false
	rt.w.readsMeet = func() {
		arrived.Done()
		select {
		case <-all:
		case <-time.After(5 * time.Second):
			notTogether.Do(func() { apart = true })
		}
	}
	var c calls
	c.listen(rt.env)
	rt.at(time.Minute, func() {
		rt.w.mu.Lock()
		rt.w.readsMeet = nil
		rt.w.mu.Unlock()
	})
	rt.signal(30*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Source: workflows.EventPaymentSucceeded})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
	if apart {
		t.Error("the first failure's reads were not under way together")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// The recovery's own notice and alert, later, are activities as they
	// always were.
	for name, remote := range map[string]int{"CustomerProfile": 0, "EndedRecovery": 0, "IntentOwed": 0, "Notice": 1, "Alert": 1} {
		if count(c.local, name) != 1 || count(c.remote, name) != remote {
			t.Errorf("%s: %d local, %d as activities; want 1 and %d (local %v, activities %v)", name,
				count(c.local, name), count(c.remote, name), remote, c.local, c.remote)
		}
	}
	if got := rt.w.noticeTypes(); !slices.Equal(got, []string{"payment_failed", "payment_recovered"}) {
		t.Errorf("notices %v", got)
	}
	if len(rt.w.alerts) != 2 || rt.w.alerts[0].Key != rt.status().Lifecycle+":past_due:alert" {
		t.Errorf("alerts %+v, want the past-due alert then the recovered one", rt.w.alerts)
	}
}

// A notice the local attempts cannot send runs again as an activity; the
// notice is then sent once, and ops hear nothing of the first tries.
func TestFirstFailureNoticeFallsBackToAnActivity(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.noticeErrs = []error{errors.New("503"), errors.New("503"), errors.New("503")} })
	// The test clock must not run behind the wall clock, which sets the
	// deadlines of local attempts after the first.
	rt.env.SetStartTime(time.Now())
	var c calls
	c.listen(rt.env)
	rt.signal(30*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Source: workflows.EventPaymentSucceeded})
	if res := rt.run(input()); res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s", res.Stage)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// The recovered notice, later, is an activity as it always was.
	if count(c.local, "Notice") != 3 || count(c.remote, "Notice") != 2 {
		t.Errorf("notice: %d local attempts, %d as activity; want 3 and 2", count(c.local, "Notice"), count(c.remote, "Notice"))
	}
	if got := rt.w.noticeTypes(); !slices.Equal(got, []string{"payment_failed", "payment_recovered"}) {
		t.Errorf("notices sent %v", got)
	}
	for _, a := range rt.w.alerts {
		if a.Severity == "critical" {
			t.Errorf("ops told of a notice that was sent: %+v", a)
		}
	}
	for _, a := range rt.status().Actions {
		if a.Kind == "customer notice payment_failed" && a.Outcome != "sent" {
			t.Errorf("notice recorded as %q", a.Outcome)
		}
	}
}

// A mailer's permanent refusal is final in the local attempt, as it is for
// the activity: no second try, and ops are told to reach the customer.
func TestFirstFailureNoticeRefusedIsFinal(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) {
		w.noticeErrs = []error{temporal.NewNonRetryableApplicationError("mailer answered 422", activities.ErrNotifyRejected, nil)}
	})
	var c calls
	c.listen(rt.env)
	rt.signal(30*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Source: workflows.EventPaymentSucceeded})
	if res := rt.run(input()); res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s", res.Stage)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if count(c.local, "Notice") != 1 || count(c.remote, "Notice") != 1 {
		t.Errorf("notice: %d local attempts, %d as activity; want 1 and 1 (the recovered notice)", count(c.local, "Notice"), count(c.remote, "Notice"))
	}
	if got := rt.w.noticeTypes(); !slices.Equal(got, []string{"payment_recovered"}) {
		t.Errorf("notices sent %v", got)
	}
	undelivered := 0
	for _, a := range rt.w.alerts {
		if a.Severity == "critical" && strings.Contains(a.Key, ":undelivered:") {
			undelivered++
		}
	}
	if undelivered != 1 {
		t.Errorf("%d undelivered-notice alerts, want 1: %+v", undelivered, rt.w.alerts)
	}
}

// The routing hop is a local activity; when it cannot reach Temporal
// there, the signal-with-start runs as an activity, with the same input.
func TestRoutingSignalFallsBackToAnActivity(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(time.Now()) // as in TestFirstFailureNoticeFallsBackToAnActivity
	env.RegisterActivity(acts)
	var c calls
	c.listen(env)
	var got []activities.SignalInput
	env.OnActivity(acts.Signal, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SignalInput) (activities.SignalResult, error) {
			got = append(got, in)
			if len(got) <= 3 {
				return activities.SignalResult{}, errors.New("temporal unavailable")
			}
			return activities.SignalResult{Delivered: true}, nil
		})
	ev := event(workflows.EventPaymentFailed)
	ev.PaymentIntent = &workflows.PaymentIntentInfo{ID: "pi_1", Amount: 4900, Currency: "usd"}
	env.ExecuteWorkflow(workflows.StripeEventWorkflow, workflows.StripeEventInput{Event: ev})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res workflows.StripeEventResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if want := "recovery " + workflows.RecoveryWorkflowID(ev.CustomerID) + " told"; res.Outcome != want {
		t.Errorf("outcome %q, want %q", res.Outcome, want)
	}
	if count(c.local, "Signal") != 3 || count(c.remote, "Signal") != 1 {
		t.Errorf("signal: %d local attempts, %d as activity; want 3 and 1", count(c.local, "Signal"), count(c.remote, "Signal"))
	}
	for _, in := range got[1:] {
		if in.WorkflowID != got[0].WorkflowID || string(in.Signal) != string(got[0].Signal) || in.Start == nil {
			t.Errorf("attempts differ: %+v vs %+v", in, got[0])
		}
	}
}
