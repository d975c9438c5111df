package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"dunning/internal/stripefixture"
	"dunning/workflows"
)

// countWorkflows counts the executions a visibility query finds.
func countWorkflows(t *testing.T, s *Stack, query string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := s.Client().CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
	if err != nil {
		t.Fatalf("count %q: %v", query, err)
	}
	return resp.GetCount()
}

// The same 100 events, each delivered 10 times at once: every delivery is
// answered 200 in the end, no event starts its workflow twice, and each
// customer's recovery applies its event once (one notice, one alert). A
// delivery answered 503 (Temporal did not answer the start in time, as
// on a loaded machine) is delivered again, as Stripe does; its start may
// have been recorded all the same, and the next delivery then finds it a
// duplicate, so only without a 503 must every event be answered
// "started" exactly once.
func TestSameEventsDeliveredTenTimesConcurrently(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{"DUNNING_RETRY_SCHEDULE": "1h", "DUNNING_GRACE_PERIOD": "2h"}})
	const events, copies = 100, 10
	var evs []*Event
	for range events {
		evs = append(evs, s.NewEvent(workflows.EventPaymentFailed, stripefixture.Options{Customer: stripefixture.NewID("cus")}))
	}

	type answer struct {
		event   int
		status  int
		outcome string
		err     error
	}
	answers := make(chan answer, events*copies)
	var resent atomic.Int64
	sem := make(chan struct{}, 100)
	var wg sync.WaitGroup
	for i, ev := range evs {
		for range copies {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				status, outcome, err := s.Post(ev)
				for try := 1; err == nil && status == http.StatusServiceUnavailable && try < 10; try++ {
					resent.Add(1)
					time.Sleep(time.Second)
					status, outcome, err = s.Post(ev)
				}
				answers <- answer{i, status, outcome, err}
			})
		}
	}
	wg.Wait()
	close(answers)
	started := make([]int, events)
	outcomes := map[string]int{}
	for a := range answers {
		if a.err != nil || a.status != http.StatusOK {
			t.Errorf("event %s: answered %d %s %v, want 200", evs[a.event].ID, a.status, a.outcome, a.err)
		}
		outcomes[a.outcome]++
		if a.outcome == "started" {
			started[a.event]++
		}
	}
	if n := resent.Load(); n > 0 {
		t.Logf("%d deliveries answered 503 and delivered again; answers in the end: %v", n, outcomes)
		if outcomes["started"]+outcomes["duplicate"] != events*copies {
			t.Errorf("answers: %v, want every delivery started or duplicate", outcomes)
		}
	} else if outcomes["started"] != events || outcomes["duplicate"] != events*(copies-1) {
		t.Errorf("answers: %v, want %d started and %d duplicate", outcomes, events, events*(copies-1))
	}
	for i, n := range started {
		if n > 1 || (n == 0 && resent.Load() == 0) {
			t.Errorf("event %s answered started %d times", evs[i].ID, n)
		}
	}

	q := fmt.Sprintf("WorkflowType = '%s'", workflows.StripeEventWorkflowName)
	s.Eventually("100 event workflows completed", 90*time.Second, func() bool {
		return countWorkflows(t, s, q+" AND ExecutionStatus = 'Completed'") == events
	})
	if n := countWorkflows(t, s, q); n != events {
		t.Errorf("%d event workflows, want %d", n, events)
	}
	s.Eventually("every customer told once", 90*time.Second, func() bool {
		return len(s.Notices.Messages("")) >= events && len(s.Alerts.Messages("")) >= events
	})
	if n := countWorkflows(t, s, fmt.Sprintf("WorkflowType = '%s'", workflows.PaymentRecoveryWorkflowName)); n != events {
		t.Errorf("%d recoveries, want %d", n, events)
	}
	for _, ev := range evs {
		s.Check(ev.Customer, Expect{
			Notices: map[string]int{"payment_failed": 1},
			Alerts:  map[string]int{"past_due": 1},
		})
		if st, running := s.Stage(ev.Customer); st != workflows.StagePastDue || !running {
			t.Errorf("%s: stage %s (running %v), want past_due", ev.Customer, st, running)
		}
	}
	for _, ev := range evs[:10] {
		st := s.Status(ev.Customer)
		if !slices.Equal(st.AppliedEvents, []string{ev.ID}) || len(st.Intents) != 1 {
			t.Errorf("%s: applied events %v, %d intents; want exactly %s once", ev.Customer, st.AppliedEvents, len(st.Intents), ev.ID)
		}
	}
}

// Temporal goes away while events arrive: the webhook answers 503 (and
// /readyz says so), Stripe delivers again with backoff, and once Temporal
// is back on its own database every event is processed exactly once: the
// recoveries that were running go on, the new ones start.
func TestTemporalDownWhileEventsArrive(t *testing.T) {
	s := Start(t, Options{Persist: true, Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1h", "DUNNING_GRACE_PERIOD": "2h", "WEBHOOK_START_TIMEOUT": "2s",
	}})
	const n = 5
	var before, paid, failed []*Event
	for range n {
		before = append(before, s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: stripefixture.NewID("cus")}))
	}
	for _, ev := range before {
		s.WaitStage(ev.Customer, workflows.StagePastDue, 30*time.Second)
	}
	// The recoveries wait for their next retry: nothing is in flight.
	s.Eventually("past-due notices and alerts", 30*time.Second, func() bool {
		return len(s.Notices.Messages("")) == n && len(s.Alerts.Messages("")) == n
	})

	s.StopTemporal()
	if resp, err := s.http.Get(s.webhookBase + "/readyz"); err != nil {
		t.Errorf("/readyz with Temporal down: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/readyz with Temporal down answered %d, want 503", resp.StatusCode)
		}
	}
	for _, ev := range before {
		paid = append(paid, s.NewEvent(workflows.EventPaymentSucceeded, stripefixture.Options{Customer: ev.Customer, ObjectID: ev.Parsed.ObjectID}))
		failed = append(failed, s.NewEvent(workflows.EventPaymentFailed, stripefixture.Options{Customer: stripefixture.NewID("cus")}))
	}
	all := append(slices.Clone(paid), failed...)
	deliveries := make([][]int, len(all))
	var wg sync.WaitGroup
	for i, ev := range all {
		wg.Go(func() { deliveries[i] = s.Deliver(ev, 2*time.Minute) })
	}
	// Stripe's first attempts meet Temporal down; then it comes back.
	time.Sleep(4 * time.Second)
	s.StartTemporal()
	wg.Wait()
	for i, d := range deliveries {
		if d[0] != http.StatusServiceUnavailable || d[len(d)-1] != http.StatusOK {
			t.Errorf("%s %s: answers %v, want 503 while Temporal was down, then 200", all[i].Type, all[i].ID, d)
		}
	}

	for i, ev := range paid {
		if res := s.Recovery(ev.Customer, time.Minute); res.Stage != workflows.StageRecovered {
			t.Errorf("%s: recovery ended %s, want recovered", ev.Customer, res.Stage)
		}
		if st := s.Status(ev.Customer); !slices.Equal(st.AppliedEvents, []string{before[i].ID, ev.ID}) {
			t.Errorf("%s: applied events %v, want %s then %s, once each", ev.Customer, st.AppliedEvents, before[i].ID, ev.ID)
		}
		s.Check(ev.Customer, Expect{
			Notices: map[string]int{"payment_failed": 1, "payment_recovered": 1},
			Alerts:  map[string]int{"past_due": 1, "recovered": 1},
		})
	}
	for _, ev := range failed {
		s.WaitStage(ev.Customer, workflows.StagePastDue, time.Minute)
		s.Eventually("past-due notice and alert for "+ev.Customer, time.Minute, func() bool {
			return s.Notices.Kinds(ev.Customer)["payment_failed"] == 1 && s.Alerts.Kinds(ev.Customer)["past_due"] == 1
		})
		s.Check(ev.Customer, Expect{Notices: map[string]int{"payment_failed": 1}, Alerts: map[string]int{"past_due": 1}})
		if st := s.Status(ev.Customer); !slices.Equal(st.AppliedEvents, []string{ev.ID}) {
			t.Errorf("%s: applied events %v, want %s once", ev.Customer, st.AppliedEvents, ev.ID)
		}
	}
	for _, ev := range all {
		if res := s.EventResult(ev.ID, 30*time.Second); res.EventID != ev.ID {
			t.Errorf("event workflow %s: %+v", ev.ID, res)
		}
	}
	if got := countWorkflows(t, s, fmt.Sprintf("WorkflowType = '%s'", workflows.StripeEventWorkflowName)); got != 3*n {
		t.Errorf("%d event workflows, want %d", got, 3*n)
	}
}

// The worker is killed with SIGKILL in the middle of lifecycles, once
// while the control plane holds a suspension it has already applied, and
// started again each time: every lifecycle completes, and no action is
// applied twice at any peer.
func TestWorkerKilledMidLifecycle(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1s,2s", "DUNNING_GRACE_PERIOD": "6s", "DUNNING_DEPROVISION_AFTER": "3s",
		"DUNNING_CARD_UPDATE_DEBOUNCE": "1s",
	}})
	const n = 6
	var evs []*Event
	for range n {
		evs = append(evs, s.Send(workflows.EventPaymentFailed, stripefixture.Options{
			Customer: stripefixture.NewID("cus"), ObjectID: stripefixture.NewID("pi")}))
	}
	unpaid, fixed := evs[:n/2], evs[n/2:]
	// The first unpaid customer's suspension is applied by the control
	// plane, and its answer held while the worker dies.
	held := s.Control.HoldNext(MethodPath(http.MethodPost, unpaid[0].Customer, "/suspend"))

	time.Sleep(1500 * time.Millisecond) // announcements and first retries under way
	s.KillWorker()
	for _, ev := range fixed { // events arrive while no worker runs
		s.Send(workflows.EventPaymentMethodAttached, stripefixture.Options{Customer: ev.Customer})
	}
	time.Sleep(time.Second)
	s.StartWorker()

	// An activity the killed worker was running is tried again once its
	// 5s heartbeat timeout passes; the suspension comes after it.
	select {
	case <-held.Arrived():
	case <-time.After(40 * time.Second):
		t.Fatal("the suspension of " + unpaid[0].Customer + " never reached the control plane")
	}
	s.KillWorker()
	held.Release() // applied; the answer goes nowhere
	time.Sleep(time.Second)
	s.StartWorker()

	for _, ev := range unpaid {
		// The held suspension is retried once its heartbeats stop (5s).
		if res := s.Recovery(ev.Customer, 45*time.Second); res.Stage != workflows.StageDeprovisioned {
			t.Errorf("%s: recovery ended %s, want deprovisioned", ev.Customer, res.Stage)
		}
		s.Check(ev.Customer, Expect{
			Control: map[string]int{"suspend": 1, "deprovision": 1},
			Notices: map[string]int{"payment_failed": 1, "payment_retry_failed": AnyCount, "account_suspended": 1, "account_deprovisioned": 1},
			Alerts:  map[string]int{"past_due": 1, "suspended": 1, "deprovisioned": 1},
			Charges: map[string]int{ev.Parsed.ObjectID: 0}, Deactivations: 1,
		})
		retried(t, s, ev)
	}
	for _, ev := range fixed {
		if res := s.Recovery(ev.Customer, 30*time.Second); res.Stage != workflows.StageRecovered {
			t.Errorf("%s: recovery ended %s, want recovered", ev.Customer, res.Stage)
		}
		s.Check(ev.Customer, Expect{
			Notices: map[string]int{"payment_failed": 1, "payment_retry_failed": AnyCount, "payment_recovered": 1},
			Alerts:  map[string]int{"past_due": 1, "recovered": 1},
			Charges: map[string]int{ev.Parsed.ObjectID: 1},
		})
		retried(t, s, ev)
	}
	suspends := s.Control.Requests(func(r Request) bool { return r.Customer == unpaid[0].Customer && r.Kind == "suspend" })
	if len(suspends) < 2 {
		t.Errorf("the held suspension was not delivered again after the kill:\n%s", lines(suspends))
	}
}

// A worker killed while an activity runs on it: the activity's heartbeats
// stop, and the server hands it to the other worker once its heartbeat
// timeout (5s) passes, well before its start-to-close timeout (30s). The
// suspension it was making is applied once, and the customer suspended.
func TestWorkerKilledMidActivityRetriedOnAnother(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1s", "DUNNING_GRACE_PERIOD": "2s", "DUNNING_DEPROVISION_AFTER": "1h",
	}})
	first := s.KillWorkerTarget()
	ev := s.Send(workflows.EventPaymentFailed, stripefixture.Options{
		Customer: stripefixture.NewID("cus"), ObjectID: stripefixture.NewID("pi")})
	suspend := MethodPath(http.MethodPost, ev.Customer, "/suspend")
	held := s.Control.HoldNext(suspend)
	select {
	case <-held.Arrived():
	case <-time.After(40 * time.Second):
		t.Fatal("the suspension of " + ev.Customer + " never reached the control plane")
	}
	// The first worker is inside the suspend activity; a second one joins,
	// and the first dies. The retry is held too, to see when it comes.
	s.StartWorker()
	retry := s.Control.HoldNext(suspend)
	s.Kill(first)
	killed := time.Now()
	select {
	case <-retry.Arrived():
		took := time.Since(killed)
		t.Logf("suspension retried on the second worker %s after the kill", took.Round(time.Millisecond))
		// A protocol bound (the heartbeat timeout, 5s, plus the retry's
		// 1s backoff and a poll), not a speed: the start-to-close timeout
		// would take 30s.
		if took > 15*time.Second {
			t.Errorf("the suspension was retried %s after its worker died, want within 15s (heartbeat timeout 5s)", took)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the suspension was never retried after its worker died")
	}
	held.Release() // applied; the answer goes nowhere
	retry.Release()
	s.WaitStage(ev.Customer, workflows.StageSuspended, 30*time.Second)
	if n := s.Control.Count(ev.Customer, "suspend"); n != 1 {
		t.Errorf("suspension applied %d times, want 1", n)
	}
}

// retried checks that every retry round of a customer's recovery made at
// most one confirm per key that reached Stripe as new, and that the
// declined-retry notices match the rounds the recovery says it made.
func retried(t *testing.T, s *Stack, ev *Event) {
	t.Helper()
	st := s.Status(ev.Customer)
	if got := s.Notices.Kinds(ev.Customer)["payment_retry_failed"]; got > st.RetryRounds {
		t.Errorf("%s: %d retry-failed notices for %d retry rounds", ev.Customer, got, st.RetryRounds)
	}
	fresh := map[string]int{}
	for _, c := range s.Stripe.Confirms(ev.Parsed.ObjectID) {
		if c.Handled != 0 && !c.Replayed {
			fresh[c.Key]++
		}
	}
	for k, n := range fresh {
		if n > 1 {
			t.Errorf("%s: confirm %s reached Stripe %d times as new", ev.Customer, k, n)
		}
	}
	if len(st.Intents) == 1 && len(fresh) > st.Intents[0].Attempts {
		t.Errorf("%s: %d distinct confirms for %d attempts", ev.Customer, len(fresh), st.Intents[0].Attempts)
	}
}

// The control plane, Amberflo, Stripe and the notification receivers fail
// for a while: 5xx, 429, an answer lost after the work was done, a call
// that hangs past the client's timeout. Each call is retried with backoff
// and the lifecycle completes once they recover, every action applied
// once.
func TestPeersFailingForAWhile(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1s,2s", "DUNNING_GRACE_PERIOD": "5s", "DUNNING_DEPROVISION_AFTER": "2s",
	}})
	customer, intent := stripefixture.NewID("cus"), stripefixture.NewID("pi")
	readCustomer := MethodPath(http.MethodGet, "/v1/customers/"+customer)
	s.Stripe.FailNext(1, http.StatusInternalServerError, readCustomer)
	s.Stripe.FailNext(1, http.StatusTooManyRequests, readCustomer)
	s.Stripe.LoseNext(1, http.StatusBadGateway, MethodPath(http.MethodPost, intent, "/confirm"))
	invoice := PathHas("/customer-product-invoice")
	s.Amberflo.FailNext(1, http.StatusServiceUnavailable, invoice)
	s.Amberflo.FailNext(1, http.StatusTooManyRequests, invoice)
	s.Amberflo.LoseNext(1, http.StatusGatewayTimeout, MethodPath(http.MethodPut, "/customers"))
	s.Amberflo.LoseNext(1, http.StatusBadGateway, MethodPath(http.MethodPut, "/customers/stage"))
	s.Notices.FailNext(1, http.StatusServiceUnavailable, Any)
	s.Alerts.FailNext(1, http.StatusTooManyRequests, Any)
	suspend := MethodPath(http.MethodPost, customer, "/suspend")
	s.Control.FailNext(1, http.StatusBadGateway, suspend)
	s.Control.FailNext(1, http.StatusTooManyRequests, suspend)
	s.Control.HangNext(1, 15*time.Second, suspend) // past the client's 10s timeout
	s.Control.LoseNext(1, http.StatusServiceUnavailable, MethodPath(http.MethodPost, customer, "/deprovision"))

	s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent})
	res := s.Recovery(customer, 90*time.Second)
	if res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("recovery ended %s (%s), want deprovisioned", res.Stage, res.Summary)
	}
	s.Check(customer, Expect{
		Control: map[string]int{"suspend": 1, "deprovision": 1},
		Notices: map[string]int{"payment_failed": 1, "payment_retry_failed": AnyCount, "account_suspended": 1, "account_deprovisioned": 1},
		Alerts:  map[string]int{"past_due": 1, "suspended": 1, "deprovisioned": 1},
		Charges: map[string]int{intent: 0}, Deactivations: 1,
	})
	st := s.Status(customer)
	if st.Paused || st.DryRunActions != 0 {
		t.Errorf("status: paused %v (%s), %d dry-run actions", st.Paused, st.PausedReason, st.DryRunActions)
	}

	// Every fault was met, and each failed call was tried again after a
	// growing pause.
	for _, p := range s.peers() {
		p.mu.Lock()
		left := len(p.rules)
		p.mu.Unlock()
		if left != 0 {
			t.Errorf("%s: %d injected faults never met", p.name, left)
		}
	}
	backoff(t, "control plane suspend", s.Control.Requests(func(r Request) bool { return r.Kind == "suspend" }), 4)
	backoff(t, "stripe customer read", s.Stripe.Requests(func(r Request) bool { return r.Kind == "read customer" }), 3)
	backoff(t, "amberflo invoices", s.Amberflo.Requests(func(r Request) bool { return r.Kind == "invoices" }), 3)
}

// backoff checks that the first n of reqs are attempts of one call made
// after growing pauses.
func backoff(t *testing.T, what string, reqs []Request, n int) {
	t.Helper()
	if len(reqs) < n {
		t.Errorf("%s: %d attempts, want at least %d:\n%s", what, len(reqs), n, lines(reqs))
		return
	}
	var prev time.Duration
	for i := 1; i < n; i++ {
		gap := reqs[i].At.Sub(reqs[i-1].At)
		if gap < 800*time.Millisecond || gap < prev {
			t.Errorf("%s: attempt %d came %s after the one before (previous pause %s); want a backoff of 1s and more, growing:\n%s",
				what, i+1, gap, prev, lines(reqs))
			return
		}
		prev = gap
	}
}

// A control plane that rejects the suspension for good (403): the
// recovery pauses for an operator and alerts, once, and does not call
// again on its own. Once the control plane is fixed, the operator's resume
// suspends, with the same idempotency key.
func TestPermanentRejectionPausesForAnOperator(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1s", "DUNNING_GRACE_PERIOD": "3s", "DUNNING_DEPROVISION_AFTER": "1h",
	}})
	customer := stripefixture.NewID("cus")
	suspend := MethodPath(http.MethodPost, customer, "/suspend")
	s.Control.Always(http.StatusForbidden, suspend)
	s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer})

	s.Eventually("paused alert", 30*time.Second, func() bool { return s.Alerts.Kinds(customer)["paused"] == 1 })
	time.Sleep(5 * time.Second) // no loop: nothing more happens on its own
	if reqs := s.Control.Requests(nil); len(reqs) != 1 || reqs[0].Status != http.StatusForbidden {
		t.Fatalf("control plane got %d requests, want the one rejected suspension:\n%s", len(reqs), lines(reqs))
	}
	st := s.Status(customer)
	if !st.Paused || st.Stage != workflows.StagePastDue || st.Next.Kind != workflows.NextPaused {
		t.Errorf("status: paused %v, stage %s, next %q; want paused past_due", st.Paused, st.Stage, st.Next.Kind)
	}
	s.Check(customer, Expect{
		Notices: map[string]int{"payment_failed": 1, "payment_retry_failed": 1},
		Alerts:  map[string]int{"past_due": 1, "paused": 1},
	})

	s.Control.Heal()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := s.Client().UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.RecoveryWorkflowID(customer), UpdateName: workflows.ControlResume,
		Args: []any{workflows.OperatorRequest{Reason: "control plane fixed", Operator: "e2e"}}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	var out workflows.OperatorResult
	if err := h.Get(ctx, &out); err != nil || !out.Accepted {
		t.Fatalf("resume: %+v %v", out, err)
	}
	s.WaitStage(customer, workflows.StageSuspended, 20*time.Second)
	s.Check(customer, Expect{
		Control: map[string]int{"suspend": 1},
		Notices: map[string]int{"payment_failed": 1, "payment_retry_failed": 1, "account_suspended": AnyCount},
		Alerts:  map[string]int{"past_due": 1, "paused": 1, "suspended": AnyCount},
	})
	reqs := s.Control.Requests(nil)
	// The refused call applied nothing; the one after it is a new request
	// (its own amount and time), so it has its own key.
	if len(reqs) != 2 || reqs[0].Key == reqs[1].Key || reqs[1].Status != http.StatusOK {
		t.Errorf("control plane requests after resume, want the suspension again under a key of its own, applied:\n%s", lines(reqs))
	}
}

// A payment that succeeds while a suspension is being decided: found
// during the re-check (Stripe), or arriving while the control plane is
// suspending, or settled in Amberflo. The customer ends recovered: never
// suspended, or resumed at once; never deprovisioned.
func TestPaymentDuringSuspensionDecision(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1h", "DUNNING_GRACE_PERIOD": "4s", "DUNNING_DEPROVISION_AFTER": "1h",
	}})
	duringRecheck, duringSuspend, inAmberflo := stripefixture.NewID("cus"), stripefixture.NewID("cus"), stripefixture.NewID("cus")
	intents := map[string]string{}
	for _, c := range []string{duringRecheck, duringSuspend, inAmberflo} {
		intents[c] = s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: c}).Parsed.ObjectID
	}
	for _, c := range []string{duringRecheck, duringSuspend, inAmberflo} {
		s.Eventually("past-due notice for "+c, 20*time.Second, func() bool { return s.Notices.Kinds(c)["payment_failed"] == 1 })
	}
	// The announcement read each intent; the next read is the re-check
	// before suspension.
	recheck := s.Stripe.HoldNext(MethodPath(http.MethodGet, "/v1/payment_intents/"+intents[duringRecheck]))
	suspending := s.Control.HoldNext(MethodPath(http.MethodPost, duringSuspend, "/suspend"))
	s.Amberflo.SetInvoiceStatus(inAmberflo, "SETTLED") // paid outside Stripe's events

	paidWhileHeld := func(h *Hold, customer string) {
		select {
		case <-h.Arrived():
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the suspension decision never reached the held call", customer)
		}
		ev := s.Send(workflows.EventPaymentSucceeded, stripefixture.Options{Customer: customer, ObjectID: intents[customer]})
		if res := s.EventResult(ev.ID, 20*time.Second); res.Outcome != "running recovery told" {
			t.Errorf("%s: payment event %s", customer, res.Outcome)
		}
		h.Release()
	}
	paidWhileHeld(recheck, duringRecheck)
	paidWhileHeld(suspending, duringSuspend)

	recovered := func(c string) {
		t.Helper()
		if res := s.Recovery(c, 30*time.Second); res.Stage != workflows.StageRecovered {
			t.Errorf("%s: recovery ended %s (%s), want recovered", c, res.Stage, res.Summary)
		}
	}
	recovered(duringRecheck)
	s.Check(duringRecheck, Expect{
		Notices: map[string]int{"payment_failed": 1, "payment_recovered": 1},
		Alerts:  map[string]int{"past_due": 1, "recovered": 1},
	})
	recovered(inAmberflo)
	s.Check(inAmberflo, Expect{
		Notices: map[string]int{"payment_failed": 1, "payment_recovered": 1},
		Alerts:  map[string]int{"past_due": 1, "recovered": 1},
	})
	// Suspended as the payment came in: resumed at once, not at the next
	// timer (retry or deprovisioning, an hour away).
	recovered(duringSuspend)
	s.Check(duringSuspend, Expect{
		Control: map[string]int{"suspend": 1, "resume": 1},
		Notices: map[string]int{"payment_failed": 1, "account_suspended": AnyCount, "account_resumed": 1},
		Alerts:  map[string]int{"past_due": 1, "suspended": AnyCount, "recovered": 1},
	})
	if a := s.Control.Applied(duringSuspend); len(a) == 2 && a[1].Action != "resume" {
		t.Errorf("%s: control plane order %s, %s; want suspend then resume", duringSuspend, a[0].Action, a[1].Action)
	}
	for _, c := range []string{duringRecheck, duringSuspend, inAmberflo} {
		if s.Control.Count(c, "deprovision") != 0 || !s.Amberflo.Enabled(c) {
			t.Errorf("%s was deprovisioned", c)
		}
	}
}
