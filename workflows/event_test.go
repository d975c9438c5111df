package workflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"dunning/activities"
	"dunning/workflows"
)

var acts *activities.Activities

type eventRun struct {
	res      workflows.StripeEventResult
	signals  []activities.SignalInput
	matching []activities.SignalMatchingInput
	alerts   []activities.AlertInput
	notices  []activities.NoticeInput
	lookups  int // PaymentMethods calls
	reads    []string
}

// paymentMethods is what the faked Stripe says the customer can pay with.
var paymentMethods = activities.PaymentMethods{DefaultID: "pm_other", Usable: 1,
	Methods: []activities.PaymentMethod{{ID: "pm_other", Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2030}}}

// runEvent runs StripeEventWorkflow with the Signal and Alert activities
// faked; delivered says whether a running workflow takes a plain signal.
func runEvent(t *testing.T, ev workflows.StripeEvent, delivered bool) eventRun {
	return runEventWith(t, ev, delivered, paymentMethods)
}

func runEventWith(t *testing.T, ev workflows.StripeEvent, delivered bool, pms activities.PaymentMethods) eventRun {
	t.Helper()
	return runEventFull(t, ev, delivered, pms, activities.EndedRecovery{})
}

// runEventFull also says how the customer's last recovery ended, for a
// payment that finds none running.
func runEventFull(t *testing.T, ev workflows.StripeEvent, delivered bool, pms activities.PaymentMethods, ended activities.EndedRecovery) eventRun {
	t.Helper()
	return runEventIn(t, ev, eventPeers{delivered: delivered, pms: pms, ended: ended})
}

// eventPeers is what the faked peers answer an event workflow.
type eventPeers struct {
	// delivered says whether a running workflow takes a plain signal.
	delivered bool
	// pms is what Stripe says the customer can pay with; pmsErr, when
	// set, is its answer instead.
	pms    activities.PaymentMethods
	pmsErr error
	// noticeErr, when set, is the mailer's answer to every notice.
	noticeErr error
	// ended is the customer's latest recovery run; previous, when set,
	// the newest that ended before a running one (else ended as well).
	ended    activities.EndedRecovery
	previous *activities.EndedRecovery
	// signalErr, when set, is Temporal's answer to every signal.
	signalErr error
}

// runEventIn runs StripeEventWorkflow against peers, which must let it
// complete.
func runEventIn(t *testing.T, ev workflows.StripeEvent, peers eventPeers) eventRun {
	t.Helper()
	run, err := runEventEnded(t, ev, peers, nil)
	if err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	return run
}

// runEventEnded runs StripeEventWorkflow against peers to its end, whatever
// it is, and returns the workflow's error; setup, when set, drives the run.
func runEventEnded(t *testing.T, ev workflows.StripeEvent, peers eventPeers, setup func(env *testsuite.TestWorkflowEnvironment)) (eventRun, error) {
	t.Helper()
	delivered, pms, ended := peers.delivered, peers.pms, peers.ended
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterActivity(acts)
	var run eventRun
	// The first reads run at once, as local activities.
	var readsMu sync.Mutex
	read := func(what string) {
		readsMu.Lock()
		defer readsMu.Unlock()
		run.reads = append(run.reads, what)
	}
	env.OnActivity(acts.Signal, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SignalInput) (activities.SignalResult, error) {
			run.signals = append(run.signals, in)
			if peers.signalErr != nil {
				return activities.SignalResult{}, peers.signalErr
			}
			return activities.SignalResult{Delivered: delivered || in.Start != nil}, nil
		})
	env.OnActivity(acts.Alert, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AlertInput) (activities.NotifyResult, error) {
			run.alerts = append(run.alerts, in)
			return activities.NotifyResult{}, nil
		})
	env.OnActivity(acts.SignalMatching, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SignalMatchingInput) (activities.SignalMatchingResult, error) {
			run.matching = append(run.matching, in)
			return activities.SignalMatchingResult{}, nil
		})
	env.OnActivity(acts.PaymentMethods, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.CustomerInput) (activities.PaymentMethods, error) {
			run.lookups++
			return pms, peers.pmsErr
		})
	env.OnActivity(acts.EndedRecovery, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EndedRecoveryInput) (activities.EndedRecovery, error) {
			what := "latest of "
			if in.Previous {
				what = "previous of "
			}
			read(what + in.WorkflowID)
			if in.Previous && peers.previous != nil {
				return *peers.previous, nil
			}
			return ended, nil
		})
	env.OnActivity(acts.CustomerProfile, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CustomerInput) (activities.CustomerProfile, error) {
			read("customer " + in.StripeCustomerID)
			return activities.CustomerProfile{CustomerID: "acme-" + in.StripeCustomerID, DefaultPaymentMethod: "pm_1"}, nil
		})
	env.OnActivity(acts.IntentOwed, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.OwedInput) (activities.Owed, error) {
			read("owed " + in.IntentID)
			if in.IntentID == "pi_down" {
				return activities.Owed{}, errors.New("stripe: 503 service unavailable")
			}
			if !in.SkipCharge {
				return activities.Owed{}, errors.New("the first check chose a payment method to charge")
			}
			return activities.Owed{}, temporal.NewNonRetryableApplicationError("no such intent", activities.ErrStripeRejected, nil)
		})
	env.OnActivity(acts.Notice, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NoticeInput) (activities.NotifyResult, error) {
			run.notices = append(run.notices, in)
			return activities.NotifyResult{}, peers.noticeErr
		})
	if setup != nil {
		setup(env)
	}
	env.ExecuteWorkflow(workflows.StripeEventWorkflow, workflows.StripeEventInput{Event: ev})
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		return run, err
	}
	if err := env.GetWorkflowResult(&run.res); err != nil {
		t.Fatalf("result: %v", err)
	}
	return run, nil
}

func event(typ string) workflows.StripeEvent {
	return workflows.StripeEvent{
		ID: "evt_1OqWorkflowTest001", Type: typ, APIVersion: "2023-10-16",
		Created:    time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC),
		CustomerID: "cus_PqWorkflowTest01", ObjectID: "obj_1OqWorkflowTest01",
	}
}

func TestStripeEventWorkflowRoutesHandledTypes(t *testing.T) {
	for _, typ := range workflows.HandledEventTypes() {
		t.Run(typ, func(t *testing.T) {
			route, _ := workflows.RouteOf(typ)
			ev := event(typ)
			ev.PaymentIntent = &workflows.PaymentIntentInfo{ID: "pi_1", Amount: 4900, Currency: "usd"}
			ev.Card = &workflows.CardInfo{ID: "card_1", Brand: "Visa", Last4: "4242", ExpMonth: 4, ExpYear: 2026}
			ev.DefaultPaymentMethodChanged = true
			run := runEvent(t, ev, true)
			if run.res.Route != route || run.res.EventID != ev.ID || run.res.CustomerID != ev.CustomerID || run.res.Type != typ {
				t.Errorf("result %+v does not echo event %s of %s", run.res, ev.ID, typ)
			}
			if run.res.Outcome == "" || strings.HasPrefix(run.res.Outcome, "ignored") {
				t.Errorf("Outcome = %q, want the event handled", run.res.Outcome)
			}
			wantSignal := map[workflows.Route]string{
				workflows.RoutePaymentFailed: workflows.SignalPaymentFailed,
				workflows.RoutePaid:          workflows.SignalPaid,
				workflows.RouteCardUpdated:   workflows.SignalCardUpdated,
				// The bank asks to authenticate: the running recovery is
				// told, none is started.
				workflows.RouteActionRequired: workflows.SignalActionRequired,
				// A payment in flight: the running recovery is told, none
				// is started.
				workflows.RoutePaymentProcessing: workflows.SignalPaymentProcessing,
			}[route]
			if wantSignal == "" {
				return
			}
			if len(run.signals) == 0 || run.signals[0].SignalName != wantSignal ||
				run.signals[0].WorkflowID != workflows.RecoveryWorkflowID(ev.CustomerID) {
				t.Fatalf("signals %+v, want %s to %s first", run.signals, wantSignal, workflows.RecoveryWorkflowID(ev.CustomerID))
			}
			start := run.signals[0].Start
			if route == workflows.RoutePaymentFailed {
				if start == nil || start.Kind != activities.StartRecovery || start.StripeCustomerID != ev.CustomerID {
					t.Errorf("Start = %+v, want the customer's recovery", start)
				}
			} else if start != nil {
				t.Errorf("Start = %+v, want a plain signal", start)
			}
		})
	}
}

func TestStripeEventWorkflowPaymentFailedCarriesTheIntent(t *testing.T) {
	ev := event(workflows.EventPaymentFailed)
	ev.PaymentIntent = &workflows.PaymentIntentInfo{ID: "pi_1", Amount: 4900, Currency: "usd", InvoiceID: "in_1", DeclineCode: "insufficient_funds"}
	run := runEvent(t, ev, false)
	var sig workflows.PaymentFailedSignal
	if err := json.Unmarshal(run.signals[0].Signal, &sig); err != nil {
		t.Fatal(err)
	}
	if sig.EventID != ev.ID || !sig.Created.Equal(ev.Created) || sig.Intent != *ev.PaymentIntent {
		t.Errorf("signal %+v does not carry event %+v", sig, ev)
	}
	// What a new life decides on travels with the signal, answers and
	// errors alike, read before it was sent; the customer's latest run
	// is left to the start, which learns it from its own answer.
	slices.Sort(run.reads)
	if want := []string{"customer " + ev.CustomerID, "owed pi_1"}; !slices.Equal(run.reads, want) {
		t.Errorf("reads %v, want %v", run.reads, want)
	}
	if sig.First != nil {
		t.Errorf("first reads %+v sent as complete; the latest run is the start's to read", sig.First)
	}
	f := sig.FirstBeforeStart
	if f == nil || f.At.IsZero() || f.Profile.CustomerID != "acme-"+ev.CustomerID || f.ProfileErr != "" || f.Previous.Found || f.PreviousErr != "" ||
		!strings.Contains(f.OwedErr, "no such intent") {
		t.Errorf("first reads %+v", f)
	}
	// The starter completes them with the latest run, or drops them when
	// it could not be read.
	prev := activities.EndedRecovery{Found: true, Status: "Completed", Result: json.RawMessage(`{"stage":"recovered"}`)}
	done := sig.WithPrevious(prev, nil)
	if done.FirstBeforeStart != nil || done.First == nil || !reflect.DeepEqual(done.First.Previous, prev) ||
		!reflect.DeepEqual(done.First.Profile, f.Profile) || !done.First.At.Equal(f.At) || done.First.OwedErr != f.OwedErr {
		t.Errorf("completed %+v, want the reads %+v with the previous run %+v", done.First, f, prev)
	}
	if sig.FirstBeforeStart == nil {
		t.Error("WithPrevious changed the signal it was called on")
	}
	if dropped := sig.WithPrevious(activities.EndedRecovery{}, errors.New("unavailable")); dropped.First != nil || dropped.FirstBeforeStart != nil {
		t.Errorf("reads kept (%+v, %+v) though the latest run could not be read", dropped.First, dropped.FirstBeforeStart)
	}
	if same := done.WithPrevious(activities.EndedRecovery{}, nil); !reflect.DeepEqual(same, done) {
		t.Errorf("complete reads changed again: %+v", same.First)
	}
}

func TestStripeEventWorkflowOwnRetryEchoStartsNothing(t *testing.T) {
	ev := event(workflows.EventPaymentFailed)
	ev.PaymentIntent = &workflows.PaymentIntentInfo{ID: "pi_1", Amount: 4900, Currency: "usd"}
	ev.RequestIdempotencyKey = workflows.RetryIdempotencyPrefix + ":recovery-cus_1@1:pi_1:2"
	run := runEvent(t, ev, false)
	if len(run.signals) != 1 || run.signals[0].Start != nil {
		t.Fatalf("signals %+v, want a plain signal that starts nothing", run.signals)
	}
	if len(run.reads) != 0 || strings.Contains(string(run.signals[0].Signal), "first_reads") {
		t.Errorf("reads %v for an echo that opens no life; signal %s", run.reads, run.signals[0].Signal)
	}
	if !strings.Contains(run.res.Outcome, "no recovery running") {
		t.Errorf("Outcome = %q", run.res.Outcome)
	}
}

func TestStripeEventWorkflowFailureWithoutCustomerAlertsOps(t *testing.T) {
	ev := event(workflows.EventPaymentFailed)
	ev.CustomerID = ""
	ev.PaymentIntent = &workflows.PaymentIntentInfo{ID: "pi_1", Amount: 4900, Currency: "usd"}
	run := runEvent(t, ev, false)
	if len(run.signals) != 0 || len(run.alerts) != 1 || !strings.Contains(run.alerts[0].Text, ev.ID) {
		t.Fatalf("signals %+v alerts %+v, want one alert naming the event and no signal", run.signals, run.alerts)
	}
}

func TestStripeEventWorkflowUnchangedDefaultSignalsNothing(t *testing.T) {
	ev := event(workflows.EventCustomerUpdated)
	run := runEvent(t, ev, true)
	if len(run.signals) != 0 || !strings.Contains(run.res.Outcome, "unchanged") {
		t.Fatalf("signals %+v outcome %q", run.signals, run.res.Outcome)
	}
}

func TestStripeEventWorkflowIgnoresUnhandledType(t *testing.T) {
	for _, typ := range []string{"charge.refunded", "customer.created", ""} {
		if _, handled := workflows.RouteOf(typ); handled {
			t.Fatalf("%q is handled; pick another type", typ)
		}
		ev := workflows.StripeEvent{ID: "evt_1OqWorkflowIgnored1", Type: typ, CustomerID: "cus_PqIgnored0000001"}
		run := runEvent(t, ev, true)
		if !strings.HasPrefix(run.res.Outcome, "ignored") || len(run.signals) != 0 {
			t.Errorf("type %q: Outcome = %q, signals %v, want it ignored", typ, run.res.Outcome, run.signals)
		}
	}
}

func TestCardUpdateReachesRecoveryAndExpiryWatches(t *testing.T) {
	for _, typ := range []string{workflows.EventPaymentMethodAttached, workflows.EventPaymentMethodAutoUpd,
		workflows.EventSourceCreated, workflows.EventSourceUpdated, workflows.EventCustomerUpdated} {
		t.Run(typ, func(t *testing.T) {
			ev := event(typ)
			ev.ObjectID, ev.ObjectType = "card_1", "card"
			if typ == workflows.EventCustomerUpdated {
				ev.ObjectID, ev.ObjectType, ev.DefaultPaymentMethodChanged = ev.CustomerID, "customer", true
			}
			run := runEvent(t, ev, true)
			targets := []string{}
			for _, s := range run.signals {
				if s.SignalName != workflows.SignalCardUpdated || s.Start != nil {
					t.Errorf("signal %+v, want a plain card_updated", s)
				}
				targets = append(targets, s.WorkflowID)
			}
			want := []string{workflows.RecoveryWorkflowID(ev.CustomerID)}
			if typ != workflows.EventCustomerUpdated {
				want = append(want, workflows.CardExpiryWorkflowID("card_1"))
			}
			if strings.Join(targets, ",") != strings.Join(want, ",") {
				t.Errorf("signalled %v, want %v", targets, want)
			}
			if len(run.matching) != 1 || run.matching[0].Query != workflows.CustomerCardExpiryQuery(ev.CustomerID) {
				t.Errorf("fan-out %+v, want one query for the customer's expiry watches", run.matching)
			}
		})
	}
}

func TestCardExpiringStartsOneWatchPerCard(t *testing.T) {
	ev := event(workflows.EventSourceExpiring)
	ev.ObjectID = "card_9"
	ev.Card = &workflows.CardInfo{ID: "card_9", Brand: "Visa", Last4: "4242", ExpMonth: 4, ExpYear: 2026}
	run := runEvent(t, ev, false)
	if len(run.signals) != 1 {
		t.Fatalf("signals %+v", run.signals)
	}
	s := run.signals[0]
	if s.WorkflowID != workflows.CardExpiryWorkflowID("card_9") || s.SignalName != workflows.SignalCardExpiring ||
		s.Start == nil || s.Start.Kind != activities.StartCardExpiry || s.Start.StripeCustomerID != ev.CustomerID {
		t.Fatalf("signal %+v, want signal-with-start of the card's watch", s)
	}
	var in workflows.CardExpiryInput
	if err := json.Unmarshal(s.Start.Args, &in); err != nil || in.Card != *ev.Card || in.EventID != ev.ID {
		t.Fatalf("start args %s (%v)", s.Start.Args, err)
	}
}

func TestSourceDeleted(t *testing.T) {
	ev := event(workflows.EventSourceDeleted)
	ev.ObjectID = "card_gone"
	t.Run("a usable method remains", func(t *testing.T) {
		run := runEventWith(t, ev, true, paymentMethods)
		if len(run.notices) != 0 || len(run.alerts) != 0 || !strings.Contains(run.res.Outcome, "remains") {
			t.Fatalf("notices %v alerts %v outcome %q", run.notices, run.alerts, run.res.Outcome)
		}
	})
	t.Run("nothing usable left", func(t *testing.T) {
		expiredOnly := activities.PaymentMethods{Methods: []activities.PaymentMethod{{ID: "card_old", Expired: true}}}
		run := runEventWith(t, ev, true, expiredOnly)
		if len(run.notices) != 1 || run.notices[0].Type != "payment_method_missing" || len(run.alerts) != 1 {
			t.Fatalf("notices %+v alerts %+v, want one notice and one alert", run.notices, run.alerts)
		}
		var told bool
		for _, s := range run.signals {
			told = told || (s.WorkflowID == workflows.RecoveryWorkflowID(ev.CustomerID) && s.SignalName == workflows.SignalPaymentMethodRemoved)
		}
		if !told {
			t.Fatalf("signals %+v, want the recovery told", run.signals)
		}
	})
	t.Run("the default is the removed card", func(t *testing.T) {
		pms := activities.PaymentMethods{DefaultID: "card_gone"}
		if run := runEventWith(t, ev, false, pms); len(run.notices) != 1 {
			t.Fatalf("notices %+v, want the customer told", run.notices)
		}
	})
}

// Nothing silent: a payment_method_missing notice the mailer refuses is a
// result. Ops hear that no way to pay is left and that the customer was
// not told, and the running recovery still waits for a card.
func TestSourceDeletedNoticeRefusedStillAlertsOpsAndTellsRecovery(t *testing.T) {
	ev := event(workflows.EventSourceDeleted)
	ev.ObjectID, ev.ObjectType = "card_gone", "card"
	expiredOnly := activities.PaymentMethods{Methods: []activities.PaymentMethod{{ID: "card_old", Expired: true}}}
	run := runEventIn(t, ev, eventPeers{delivered: true, pms: expiredOnly, noticeErr: mailerRefusal})
	if len(run.notices) != 1 || run.notices[0].Type != "payment_method_missing" {
		t.Fatalf("notices %+v, want the payment_method_missing notice tried", run.notices)
	}
	if len(run.alerts) != 1 {
		t.Fatalf("alerts %+v, want one", run.alerts)
	}
	al := run.alerts[0]
	if al.Key != ev.ID+":alert:undelivered" || al.Severity != "critical" || al.StripeCustomerID != ev.CustomerID ||
		!strings.Contains(al.Title, "No way to pay left") {
		t.Errorf("alert %+v, want a critical no-way-to-pay alert of its own key", al)
	}
	for _, want := range []string{"card_gone", "payment_method_missing", "unknown template", "Tell the customer by hand"} {
		if !strings.Contains(al.Text, want) {
			t.Errorf("alert text %q does not say %q", al.Text, want)
		}
	}
	var told bool
	for _, s := range run.signals {
		told = told || (s.WorkflowID == workflows.RecoveryWorkflowID(ev.CustomerID) && s.SignalName == workflows.SignalPaymentMethodRemoved)
	}
	if !told {
		t.Errorf("signals %+v, want the recovery told", run.signals)
	}
	if !strings.Contains(run.res.Outcome, "not delivered") || !strings.Contains(run.res.Outcome, "waits for a card") {
		t.Errorf("outcome %q, want the undelivered notice and the told recovery in it", run.res.Outcome)
	}
}

// Fail safe: when Stripe refuses the list of payment methods for good, no
// one can tell whether the customer can still pay; ops are told so, and
// neither the customer nor the recovery hears a guess.
func TestSourceDeletedLookupRefusedTellsOps(t *testing.T) {
	ev := event(workflows.EventSourceDeleted)
	ev.ObjectID, ev.ObjectType = "card_gone", "card"
	refusal := temporal.NewNonRetryableApplicationError("list payment methods of "+ev.CustomerID+": stripe answered 400 invalid_request_error",
		activities.ErrStripeRejected, nil)
	run := runEventIn(t, ev, eventPeers{delivered: true, pms: paymentMethods, pmsErr: refusal})
	if len(run.notices) != 0 {
		t.Errorf("notices %+v, want none on no answer", run.notices)
	}
	for _, s := range run.signals {
		if s.SignalName == workflows.SignalPaymentMethodRemoved {
			t.Errorf("signal %+v, want the recovery left alone", s)
		}
	}
	if len(run.alerts) != 1 {
		t.Fatalf("alerts %+v, want one", run.alerts)
	}
	al := run.alerts[0]
	if al.Severity != "critical" || !strings.HasPrefix(al.Key, ev.ID+":") || al.StripeCustomerID != ev.CustomerID {
		t.Errorf("alert %+v, want a critical alert keyed from the event", al)
	}
	for _, want := range []string{"card_gone", ev.ID, "invalid_request_error", "cannot tell whether"} {
		if !strings.Contains(al.Text, want) {
			t.Errorf("alert text %q does not say %q", al.Text, want)
		}
	}
	if !strings.Contains(run.res.Outcome, "refused") {
		t.Errorf("outcome %q", run.res.Outcome)
	}
}

// Nothing silent: an event whose route fails for good ends its workflow
// failed, and its ID taken, so it is never run again by itself; ops get
// one alert that says which event and what to do. A run an operator
// cancels ended as asked and says nothing, not even from a context the
// cancel does not reach.
func TestStripeEventWorkflowFailureReachesOps(t *testing.T) {
	refused := temporal.NewNonRetryableApplicationError("start recovery-cus_PqWorkflowTest01: search attribute StripeCustomerId is not defined",
		activities.ErrBadInput, nil)
	ev := event(workflows.EventPaymentFailed)
	ev.PaymentIntent = &workflows.PaymentIntentInfo{ID: "pi_1", Amount: 4900, Currency: "usd"}
	t.Run("refused for good", func(t *testing.T) {
		run, err := runEventEnded(t, ev, eventPeers{pms: paymentMethods, signalErr: refused}, nil)
		if err == nil || !strings.Contains(err.Error(), "is not defined") {
			t.Fatalf("workflow error %v, want the route's", err)
		}
		if len(run.alerts) != 1 {
			t.Fatalf("alerts %+v, want one", run.alerts)
		}
		al := run.alerts[0]
		if al.Key != ev.ID+":failed" || al.Severity != "critical" || al.StripeCustomerID != ev.CustomerID || al.WorkflowID != ev.ID {
			t.Errorf("alert %+v, want a critical alert keyed %s:failed", al, ev.ID)
		}
		for _, want := range []string{ev.ID, ev.Type, ev.CustomerID, "is not defined", "Stripe Dashboard", "temporal workflow delete"} {
			if !strings.Contains(al.Text, want) {
				t.Errorf("alert text %q does not say %q", al.Text, want)
			}
		}
	})
	t.Run("canceled by an operator", func(t *testing.T) {
		// Temporal does not answer: the signal goes from local attempts
		// to the activity's pause, where the cancel finds it.
		run, err := runEventEnded(t, ev, eventPeers{pms: paymentMethods, signalErr: errors.New("temporal: unavailable")},
			func(env *testsuite.TestWorkflowEnvironment) {
				env.RegisterDelayedCallback(env.CancelWorkflow, 5*time.Second)
			})
		if !temporal.IsCanceledError(err) {
			t.Fatalf("workflow error %v, want it canceled", err)
		}
		if len(run.alerts) != 0 {
			t.Errorf("alerts %+v for a canceled run, want none", run.alerts)
		}
	})
}

// Rule 6: money that arrives after a recovery ended reaches ops, with the
// customer, the intent and the amount; the echo of a payment that ended a
// recovery does not.
func TestMoneyAfterTheEndReachesOps(t *testing.T) {
	result := func(stage workflows.Stage, state workflows.IntentState) activities.EndedRecovery {
		raw, _ := json.Marshal(workflows.RecoveryResult{Stage: stage, Intents: []workflows.IntentOutcome{
			{ID: "pi_1", InvoiceID: "in_1", Amount: 4900, Currency: "usd", State: state}}})
		return activities.EndedRecovery{Found: true, Result: raw, Status: "Completed"}
	}
	for _, tc := range []struct {
		name  string
		ended activities.EndedRecovery
		late  bool
	}{
		{"after deprovisioning", result(workflows.StageDeprovisioned, workflows.IntentOpen), true},
		{"after a waiver", result(workflows.StageWaived, workflows.IntentWaived), true},
		{"an intent canceled in a recovered life", result(workflows.StageRecovered, workflows.IntentCanceled), true},
		{"the echo of the payment that recovered", result(workflows.StageRecovered, workflows.IntentPaid), false},
		{"no recovery ever", activities.EndedRecovery{}, false},
		{"a recovery that did not complete", activities.EndedRecovery{Found: true, Status: "Terminated"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := event(workflows.EventPaymentSucceeded)
			ev.PaymentIntent = &workflows.PaymentIntentInfo{ID: "pi_1", Amount: 4900, Currency: "usd", InvoiceID: "in_1"}
			run := runEventFull(t, ev, false, paymentMethods, tc.ended)
			var late []activities.AlertInput
			for _, a := range run.alerts {
				if a.Severity == "critical" && strings.Contains(a.Title, "Money after the end") {
					late = append(late, a)
				}
			}
			if !tc.late {
				if len(late) != 0 {
					t.Fatalf("alerts %+v for %s", late, tc.name)
				}
				return
			}
			if len(late) != 1 || !strings.Contains(late[0].Text, "USD 49.00") || !strings.Contains(late[0].Text, "pi_1") ||
				late[0].StripeCustomerID != ev.CustomerID {
				t.Fatalf("alerts %+v, want one naming the customer, pi_1 and USD 49.00", run.alerts)
			}
			if !strings.HasPrefix(run.res.Outcome, "money after the end") {
				t.Errorf("outcome %q, want it recorded on the event", run.res.Outcome)
			}
		})
	}
}

// Money for what an earlier life left unpaid reaches ops even while a
// later life runs: the running one takes only its own intents and records
// the payment as unmatched. A payment of the running life's own intent,
// or the echo of one the earlier life saw paid, says nothing.
func TestMoneyForAnEarlierLifeWhileANewOneRunsReachesOps(t *testing.T) {
	earlier := func(stage workflows.Stage, state workflows.IntentState) *activities.EndedRecovery {
		raw, err := json.Marshal(workflows.RecoveryResult{Stage: stage, Intents: []workflows.IntentOutcome{
			{ID: "pi_old", InvoiceID: "in_old", Amount: 4900, Currency: "usd", State: state}}})
		if err != nil {
			t.Fatal(err)
		}
		return &activities.EndedRecovery{Found: true, Result: raw, Status: "Completed"}
	}
	for _, tc := range []struct {
		name     string
		previous *activities.EndedRecovery
		intent   string
		late     string // what the alert says it came after; empty: no alert
	}{
		{"left unpaid at deprovisioning", earlier(workflows.StageDeprovisioned, workflows.IntentOpen), "pi_old", "deprovisioned"},
		{"in flight at deprovisioning", earlier(workflows.StageDeprovisioned, workflows.IntentInFlight), "pi_old", "deprovisioned"},
		{"waived", earlier(workflows.StageWaived, workflows.IntentWaived), "pi_old", "waived"},
		{"canceled in a recovered life", earlier(workflows.StageRecovered, workflows.IntentCanceled), "pi_old", "canceled"},
		{"the running life's own intent", earlier(workflows.StageDeprovisioned, workflows.IntentOpen), "pi_new", ""},
		{"the echo of a payment the earlier life saw", earlier(workflows.StageRecovered, workflows.IntentPaid), "pi_old", ""},
		{"no earlier life", &activities.EndedRecovery{}, "pi_old", ""},
		// invoice.paid names the invoice; the intent paying it may be a
		// new one.
		{"its invoice paid at deprovisioning", earlier(workflows.StageDeprovisioned, workflows.IntentOpen), "in_old", "deprovisioned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := event(workflows.EventPaymentSucceeded)
			ev.ObjectID, ev.ObjectType = tc.intent, "payment_intent"
			ev.PaymentIntent = &workflows.PaymentIntentInfo{ID: tc.intent, Amount: 4900, Currency: "usd", Status: "succeeded"}
			if strings.HasPrefix(tc.intent, "in_") {
				ev = event(workflows.EventInvoicePaid)
				ev.ObjectID, ev.ObjectType = tc.intent, "invoice"
				ev.Invoice = &workflows.InvoiceInfo{ID: tc.intent, PaymentIntentID: "pi_portal", AmountDue: 4900, AmountPaid: 4900, Currency: "usd", Status: "paid"}
			}
			run := runEventIn(t, ev, eventPeers{delivered: true, pms: paymentMethods,
				ended: activities.EndedRecovery{Found: true, Running: true}, previous: tc.previous})
			if len(run.signals) != 1 || run.signals[0].SignalName != workflows.SignalPaid {
				t.Errorf("signals %+v, want the running recovery told", run.signals)
			}
			if want := []string{"previous of " + workflows.RecoveryWorkflowID(ev.CustomerID)}; !slices.Equal(run.reads, want) {
				t.Errorf("reads %v, want %v", run.reads, want)
			}
			if tc.late == "" {
				if len(run.alerts) != 0 || run.res.Outcome != "running recovery told" {
					t.Fatalf("alerts %+v outcome %q, want none", run.alerts, run.res.Outcome)
				}
				return
			}
			if len(run.alerts) != 1 {
				t.Fatalf("alerts %+v, want one", run.alerts)
			}
			al := run.alerts[0]
			if al.Key != ev.ID+":late-money" || al.Severity != "critical" || !strings.Contains(al.Title, "Money after the end") ||
				al.StripeCustomerID != ev.CustomerID {
				t.Errorf("alert %+v, want the critical late-money alert", al)
			}
			for _, want := range []string{"USD 49.00", tc.late, "refund or restore by hand"} {
				if !strings.Contains(al.Text, want) {
					t.Errorf("alert text %q does not say %q", al.Text, want)
				}
			}
			if !slices.Contains(al.Fields, tc.intent) {
				t.Errorf("alert fields %q do not name %s", al.Fields, tc.intent)
			}
			if !strings.HasPrefix(run.res.Outcome, "money after the end") {
				t.Errorf("outcome %q, want it recorded on the event", run.res.Outcome)
			}
		})
	}
}

// Rule 4: Stripe's own later failure of a waived intent starts nothing.
func TestFailureOfAWaivedIntentStartsNothing(t *testing.T) {
	ev := event(workflows.EventPaymentFailed)
	ev.PaymentIntent = &workflows.PaymentIntentInfo{ID: "pi_1", Amount: 4900, Currency: "usd", Waived: true}
	run := runEvent(t, ev, false)
	if len(run.signals) != 0 {
		t.Fatalf("signals %+v, want none for a waived intent", run.signals)
	}
}

// First reads that get no answer within their minute are left out: the
// recovery starts all the same, at once, and reads for itself.
func TestStripeEventWorkflowFirstReadsWithoutAnswerAreLeftOut(t *testing.T) {
	ev := event(workflows.EventPaymentFailed)
	ev.PaymentIntent = &workflows.PaymentIntentInfo{ID: "pi_down", Amount: 4900, Currency: "usd"}
	run := runEvent(t, ev, false)
	if len(run.signals) != 1 || run.signals[0].Start == nil {
		t.Fatalf("signals %+v, want one signal-with-start", run.signals)
	}
	var sig workflows.PaymentFailedSignal
	if err := json.Unmarshal(run.signals[0].Signal, &sig); err != nil {
		t.Fatal(err)
	}
	if sig.First != nil {
		t.Errorf("first reads %+v sent although Stripe never answered the owed check", sig.First)
	}
	if n := strings.Count(strings.Join(run.reads, ","), "owed pi_down"); n < 4 {
		t.Errorf("owed check tried %d times; want the local tries and the activity's retries", n)
	}
}

// invoice.paid tells the recovery what paid the invoice: amount_paid
// (nothing, for a credit note), and that it was paid out of band.
func TestInvoicePaidCarriesTheMoneyThatPaid(t *testing.T) {
	for _, tc := range []struct {
		name      string
		inv       workflows.InvoiceInfo
		paid      int64 // -1: not said
		outOfBand bool
	}{
		{"charged", workflows.InvoiceInfo{AmountDue: 4900, AmountPaid: 4900}, 4900, false},
		{"credited in full", workflows.InvoiceInfo{AmountDue: 0, AmountPaid: 0}, 0, false},
		{"paid out of band", workflows.InvoiceInfo{AmountDue: 4900, AmountPaid: 4900, PaidOutOfBand: true}, 4900, true},
		{"paid out of band, amount_paid zero", workflows.InvoiceInfo{AmountDue: 4900, AmountPaid: 0, PaidOutOfBand: true}, -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := event(workflows.EventInvoicePaid)
			ev.ObjectID, ev.ObjectType = "in_1", "invoice"
			inv := tc.inv
			inv.ID, inv.PaymentIntentID, inv.Currency, inv.Status = "in_1", "pi_1", "usd", "paid"
			ev.Invoice = &inv
			run := runEventIn(t, ev, eventPeers{delivered: true, pms: paymentMethods,
				ended: activities.EndedRecovery{Found: true, Running: true}, previous: &activities.EndedRecovery{}})
			if len(run.signals) != 1 || run.signals[0].SignalName != workflows.SignalPaid {
				t.Fatalf("signals %+v, want the running recovery told", run.signals)
			}
			var sig workflows.PaidSignal
			if err := json.Unmarshal(run.signals[0].Signal, &sig); err != nil {
				t.Fatal(err)
			}
			said := sig.AmountPaid != nil
			if sig.InvoiceID != "in_1" || said != (tc.paid >= 0) || (said && *sig.AmountPaid != tc.paid) ||
				strings.Contains(sig.Source, "out of band") != tc.outOfBand {
				t.Errorf("signal %+v (amount paid %v), want %d paid, out of band %v", sig, sig.AmountPaid, tc.paid, tc.outOfBand)
			}
		})
	}
}

// payment_intent.succeeded tells the recovery what the intent took: a
// credit note may have lowered it below what failed, and the invoice.paid
// that follows finds the intent paid already.
func TestPaymentSucceededCarriesWhatTheIntentTook(t *testing.T) {
	for _, tc := range []struct {
		name     string
		received int64
		paid     int64 // -1: not said
	}{
		{"all of it", 4900, 4900},
		{"lowered by a credit note", 3000, 3000},
		{"an event without amount_received", 0, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := event(workflows.EventPaymentSucceeded)
			ev.ObjectID, ev.ObjectType = "pi_1", "payment_intent"
			ev.PaymentIntent = &workflows.PaymentIntentInfo{ID: "pi_1", Amount: tc.received, AmountReceived: tc.received,
				Currency: "usd", Status: "succeeded", InvoiceID: "in_1"}
			run := runEventIn(t, ev, eventPeers{delivered: true, pms: paymentMethods,
				ended: activities.EndedRecovery{Found: true, Running: true}, previous: &activities.EndedRecovery{}})
			if len(run.signals) != 1 || run.signals[0].SignalName != workflows.SignalPaid {
				t.Fatalf("signals %+v, want the running recovery told", run.signals)
			}
			var sig workflows.PaidSignal
			if err := json.Unmarshal(run.signals[0].Signal, &sig); err != nil {
				t.Fatal(err)
			}
			said := sig.AmountPaid != nil
			if sig.IntentID != "pi_1" || said != (tc.paid >= 0) || (said && *sig.AmountPaid != tc.paid) {
				t.Errorf("signal %+v (amount paid %v), want %d paid", sig, sig.AmountPaid, tc.paid)
			}
		})
	}
}
