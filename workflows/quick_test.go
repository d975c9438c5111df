package workflows_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
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

// expect checks how often each activity ran locally and as an activity:
// want[name] is {local, as activities}, a negative count meaning any.
// The caller holds c.mu.
func (c *calls) expect(t *testing.T, want map[string][2]int) {
	t.Helper()
	for name, w := range want {
		if count(c.local, name) != w[0] || (w[1] >= 0 && count(c.remote, name) != w[1]) {
			t.Errorf("%s: %d local, %d as activities; want %d and %d (local %v, activities %v)", name,
				count(c.local, name), count(c.remote, name), w[0], w[1], c.local, c.remote)
		}
	}
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

// The first failure's reads are asked at once, as local activities; its
// notice and alert, which the customer and ops see, are activities, so
// that a workflow task lost after the reads sends nothing.
func TestFirstFailureReadsRunLocallyAndAtOnce(t *testing.T) {
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
	// The past-due notice and alert, and the recovered ones later, are
	// activities.
	c.expect(t, map[string][2]int{"CustomerProfile": {1, 0}, "EndedRecovery": {1, 0}, "IntentOwed": {1, 0}, "Notice": {0, 2}, "Alert": {0, 2}})
	if got := rt.w.noticeTypes(); !slices.Equal(got, []string{"payment_failed", "payment_recovered"}) {
		t.Errorf("notices %v", got)
	}
	if len(rt.w.alerts) != 2 || rt.w.alerts[0].Key != rt.status().Lifecycle+":past_due:alert" {
		t.Errorf("alerts %+v, want the past-due alert then the recovered one", rt.w.alerts)
	}
}

// A notice the mailer cannot take at first is tried again by its activity;
// the notice is then sent once, and ops hear nothing of the first tries.
func TestFirstFailureNoticeTriedAgain(t *testing.T) {
	rt := newRecoveryTest(t, func(w *world) { w.noticeErrs = []error{errors.New("503"), errors.New("503"), errors.New("503")} })
	var c calls
	c.listen(rt.env)
	rt.signal(30*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Source: workflows.EventPaymentSucceeded})
	if res := rt.run(input()); res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s", res.Stage)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Three failed attempts and the one that took, then the recovered
	// notice.
	if count(c.local, "Notice") != 0 || count(c.remote, "Notice") != 5 {
		t.Errorf("notice: %d local attempts, %d as activity; want 0 and 5", count(c.local, "Notice"), count(c.remote, "Notice"))
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

// A mailer's permanent refusal is final: no second try, and ops are told
// to reach the customer.
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
	if count(c.local, "Notice") != 0 || count(c.remote, "Notice") != 2 {
		t.Errorf("notice: %d local attempts, %d as activity; want 0 and 2 (the refused one, the recovered one)", count(c.local, "Notice"), count(c.remote, "Notice"))
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

// openWithReads runs a recovery whose first failure brings the event
// workflow's reads, as a new life's does; reads without a time began as
// the run did. The failure comes as the run's first signal, or, with
// rt.startedWith, in the input the run was started with, first of its
// pending failures.
func (rt *recoveryTest) openWithReads(reads workflows.FirstReads) workflows.RecoveryResult {
	rt.t.Helper()
	if reads.At.IsZero() {
		reads.At = t0
	}
	f := failed("evt_first", "pi_1", t0)
	f.First = &reads
	if rt.startedWith {
		in := input()
		in.Pending, in.Opening = []workflows.PaymentFailedSignal{f}, true
		return rt.runWith(in)
	}
	return rt.runFrom(input(), f)
}

// watchedUntilPaid is a recovery test whose activity calls are counted
// and whose intent pi_1 is paid 30 minutes in, opened as startedWith
// says.
func watchedUntilPaid(t *testing.T, startedWith bool) (*recoveryTest, *calls) {
	rt := newRecoveryTest(t)
	rt.startedWith = startedWith
	c := &calls{}
	c.listen(rt.env)
	rt.signal(30*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Source: workflows.EventPaymentSucceeded})
	return rt, c
}

// bothWays runs test for a life opened by a signal-with-start and for one
// started with its failure in its input (a customer with no run going):
// the two must decide alike.
func bothWays(t *testing.T, test func(t *testing.T, startedWith bool)) {
	for _, startedWith := range []bool{false, true} {
		name := "signalled"
		if startedWith {
			name = "started with it"
		}
		t.Run(name, func(t *testing.T) { test(t, startedWith) })
	}
}

// A life opened by a failure that brought its reads decides on them, in
// its first workflow task, without reading again: the notice and alert go
// out there as local activities, keyed and dated by the run's start, so
// that the task run again after a lost worker sends the very same ones.
func TestLifeOpenedWithItsReadsDecidesOnThemAlone(t *testing.T) {
	bothWays(t, func(t *testing.T, startedWith bool) {
		rt, c := watchedUntilPaid(t, startedWith)
		// The test environment's run ID is default-test-run-id.
		life := workflows.RecoveryWorkflowID(customer) + "@" + strconv.FormatInt(t0.Unix(), 10) + ".estrunid"
		rt.at(time.Minute, func() {
			if s := rt.status(); s.Lifecycle != life || !s.FirstFailureAt.Equal(t0) || !s.Announced || !s.PastDueNoticeSent {
				t.Errorf("life %s first failure %s announced %v told %v; want %s at the run's start, told", s.Lifecycle, s.FirstFailureAt, s.Announced, s.PastDueNoticeSent, life)
			}
		})
		res := rt.openWithReads(workflows.FirstReads{
			Profile: activities.CustomerProfile{CustomerID: "acme-" + customer, DefaultPaymentMethod: "pm_1"},
			Owed: activities.Owed{Verdict: activities.OwedYes, Status: "requires_payment_method", Why: "intent requires_payment_method",
				InvoiceID: "in_pi_1", PayURL: "https://invoice.stripe.com/i/in_pi_1"},
		})
		if res.Stage != workflows.StageRecovered {
			t.Fatalf("stage %s, want recovered", res.Stage)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.expect(t, map[string][2]int{"CustomerProfile": {0, 0}, "EndedRecovery": {0, 0}, "IntentOwed": {0, -1}, "Notice": {1, 1}, "Alert": {1, 1}})
		if len(rt.w.notices) != 2 {
			t.Fatalf("notices %v, want the past-due one and the recovered one", rt.w.noticeTypes())
		}
		n := rt.w.notices[0]
		if n.Type != "payment_failed" || n.Key != life+":past_due:notice" || !n.CreatedAt.Equal(t0) ||
			n.PayURL != "https://invoice.stripe.com/i/in_pi_1" || n.CustomerID != "acme-"+customer ||
			n.Deadline == nil || !n.Deadline.Equal(t0.Add(settings.GracePeriod)) {
			t.Errorf("past-due notice %+v", n)
		}
	})
}

// Reads that find the intent paid already open a life that ends at once,
// without a word to anyone.
func TestLifeOpenedWithReadsOfAPaidIntentEndsQuietly(t *testing.T) {
	bothWays(t, func(t *testing.T, startedWith bool) {
		rt := newRecoveryTest(t)
		rt.startedWith = startedWith
		res := rt.openWithReads(workflows.FirstReads{
			Profile: activities.CustomerProfile{CustomerID: "acme-" + customer},
			Owed:    activities.Owed{Verdict: activities.OwedPaid, Status: "succeeded", Why: "intent succeeded"},
		})
		if res.Stage != workflows.StageRecovered || len(rt.w.notices) != 0 || len(rt.w.alerts) != 0 || len(rt.w.retries) != 0 {
			t.Fatalf("stage %s, notices %v, alerts %d, charges %d; want recovered quietly", res.Stage, rt.w.noticeTypes(), len(rt.w.alerts), len(rt.w.retries))
		}
	})
}

// Reads taken while another life still ran (it ended before this run
// began) are not trusted: the new life reads for itself, and tells as any
// later decision does, through activities.
func TestLifeOpenedWithReadsTakenWhileAnotherRanReadsAgain(t *testing.T) {
	bothWays(t, func(t *testing.T, startedWith bool) {
		rt, c := watchedUntilPaid(t, startedWith)
		res := rt.openWithReads(workflows.FirstReads{
			Profile:  activities.CustomerProfile{CustomerID: "acme-" + customer},
			Previous: activities.EndedRecovery{Found: true, Running: true, Status: "Running"},
			Owed:     activities.Owed{Verdict: activities.OwedYes, Status: "requires_payment_method"},
		})
		if res.Stage != workflows.StageRecovered {
			t.Fatalf("stage %s", res.Stage)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.expect(t, map[string][2]int{"CustomerProfile": {1, 0}, "EndedRecovery": {1, 0}, "IntentOwed": {1, -1}, "Notice": {0, 2}, "Alert": {0, 2}})
	})
}

// Reads that began well before the run started are not trusted: a payment
// in between found no recovery to tell. The new life reads for itself
// (here: it finds the intent paid, as the stale reads did not).
func TestLifeOpenedWithStaleReadsReadsAgain(t *testing.T) {
	bothWays(t, func(t *testing.T, startedWith bool) {
		rt := newRecoveryTest(t, func(w *world) { w.paidIntents["pi_1"] = true })
		rt.startedWith = startedWith
		var c calls
		c.listen(rt.env)
		res := rt.openWithReads(workflows.FirstReads{
			At:      t0.Add(-10 * time.Second),
			Profile: activities.CustomerProfile{CustomerID: "acme-" + customer},
			Owed:    activities.Owed{Verdict: activities.OwedYes, Status: "requires_payment_method"},
		})
		if res.Stage != workflows.StageRecovered || len(rt.w.notices) != 0 || len(rt.w.alerts) != 0 {
			t.Fatalf("stage %s, notices %v, alerts %d; want recovered quietly on its own reads", res.Stage, rt.w.noticeTypes(), len(rt.w.alerts))
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.expect(t, map[string][2]int{"CustomerProfile": {1, 0}, "IntentOwed": {1, 0}})
	})
}

// Failures pending at the end of a life open the next run with reads
// taken while that life still ran: the run started with them, but not
// opened by the first of them, reads for itself.
func TestPendingFailuresOfTheLifeBeforeAreReadAgain(t *testing.T) {
	rt, c := watchedUntilPaid(t, false)
	f := failed("evt_first", "pi_1", t0)
	f.First = &workflows.FirstReads{At: t0, Profile: activities.CustomerProfile{CustomerID: "acme-" + customer},
		Owed: activities.Owed{Verdict: activities.OwedYes, Status: "requires_payment_method"}}
	in := input()
	in.Pending = []workflows.PaymentFailedSignal{f}
	if res := rt.runWith(in); res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s", res.Stage)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expect(t, map[string][2]int{"CustomerProfile": {1, 0}, "EndedRecovery": {1, 0}, "IntentOwed": {1, -1}, "Notice": {0, 2}, "Alert": {0, 2}})
}
