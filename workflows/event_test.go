package workflows_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"dunning/activities"
	"dunning/workflows"
)

var acts *activities.Activities

type eventRun struct {
	res     workflows.StripeEventResult
	signals []activities.SignalInput
	alerts  []activities.AlertInput
}

// runEvent runs StripeEventWorkflow with the Signal and Alert activities
// faked; delivered says whether a running workflow takes a plain signal.
func runEvent(t *testing.T, ev workflows.StripeEvent, delivered bool) eventRun {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterActivity(acts)
	var run eventRun
	env.OnActivity(acts.Signal, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SignalInput) (activities.SignalResult, error) {
			run.signals = append(run.signals, in)
			return activities.SignalResult{Delivered: delivered || in.StartRecoveryFor != ""}, nil
		})
	env.OnActivity(acts.Alert, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AlertInput) (activities.NotifyResult, error) {
			run.alerts = append(run.alerts, in)
			return activities.NotifyResult{}, nil
		})
	env.ExecuteWorkflow(workflows.StripeEventWorkflow, workflows.StripeEventInput{Event: ev})
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	if err := env.GetWorkflowResult(&run.res); err != nil {
		t.Fatalf("result: %v", err)
	}
	return run
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
			}[route]
			if wantSignal == "" {
				return
			}
			if len(run.signals) != 1 || run.signals[0].SignalName != wantSignal ||
				run.signals[0].WorkflowID != workflows.RecoveryWorkflowID(ev.CustomerID) {
				t.Fatalf("signals %+v, want one %s to %s", run.signals, wantSignal, workflows.RecoveryWorkflowID(ev.CustomerID))
			}
			wantStart := ""
			if route == workflows.RoutePaymentFailed {
				wantStart = ev.CustomerID
			}
			if run.signals[0].StartRecoveryFor != wantStart {
				t.Errorf("StartRecoveryFor = %q, want %q", run.signals[0].StartRecoveryFor, wantStart)
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
}

func TestStripeEventWorkflowOwnRetryEchoStartsNothing(t *testing.T) {
	ev := event(workflows.EventPaymentFailed)
	ev.PaymentIntent = &workflows.PaymentIntentInfo{ID: "pi_1", Amount: 4900, Currency: "usd"}
	ev.RequestIdempotencyKey = workflows.RetryIdempotencyPrefix + ":recovery-cus_1@1:pi_1:2"
	run := runEvent(t, ev, false)
	if len(run.signals) != 1 || run.signals[0].StartRecoveryFor != "" {
		t.Fatalf("signals %+v, want a plain signal that starts nothing", run.signals)
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
