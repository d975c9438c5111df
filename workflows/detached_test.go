package workflows_test

import (
	"encoding/json"
	"strings"
	"testing"

	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"dunning/activities"
	"dunning/workflows"
)

// A PaymentMethod-era customer removing a card sends payment_method.detached
// rather than customer.source.deleted: the same question goes to Stripe,
// and with nothing usable left the customer, ops and a running recovery
// hear it, as for a legacy card.
func TestPaymentMethodDetached(t *testing.T) {
	ev := event(workflows.EventPaymentMethodDetached)
	ev.APIVersion = "2025-03-31.basil"
	ev.ObjectID, ev.ObjectType = "pm_gone", "payment_method"
	ev.Card = &workflows.CardInfo{ID: "pm_gone", Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2030}

	t.Run("nothing usable left", func(t *testing.T) {
		// Stripe may still list the method a moment after the detach, and
		// keep it as the default: it does not count.
		pms := activities.PaymentMethods{DefaultID: "pm_gone", Usable: 1, Methods: []activities.PaymentMethod{
			{ID: "pm_gone", Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2030},
			{ID: "pm_old", Brand: "visa", Last4: "1881", ExpMonth: 1, ExpYear: 2024, Expired: true},
		}}
		run := runEventWith(t, ev, true, pms)
		if run.res.Route != workflows.RouteSourceDeleted || run.res.CustomerID != ev.CustomerID {
			t.Errorf("result %+v, want the removed-card route for %s", run.res, ev.CustomerID)
		}
		if run.lookups != 1 {
			t.Errorf("%d payment-method lookups, want 1", run.lookups)
		}
		if len(run.notices) != 1 || run.notices[0].Type != "payment_method_missing" || run.notices[0].StripeCustomerID != ev.CustomerID {
			t.Fatalf("notices %+v, want one payment_method_missing to %s", run.notices, ev.CustomerID)
		}
		if len(run.alerts) != 1 || run.alerts[0].StripeCustomerID != ev.CustomerID ||
			!strings.Contains(run.alerts[0].Title, "No way to pay left") || !strings.Contains(run.alerts[0].Text, "pm_gone") {
			t.Fatalf("alerts %+v, want one no-way-to-pay alert naming pm_gone", run.alerts)
		}
		var removed *activities.SignalInput
		for i, s := range run.signals {
			if s.SignalName == workflows.SignalPaymentMethodRemoved {
				removed = &run.signals[i]
			}
		}
		if removed == nil || removed.WorkflowID != workflows.RecoveryWorkflowID(ev.CustomerID) || removed.Start != nil {
			t.Fatalf("signals %+v, want the running recovery told, and none started", run.signals)
		}
		var sig workflows.PaymentMethodRemovedSignal
		if err := json.Unmarshal(removed.Signal, &sig); err != nil || sig.EventID != ev.ID || sig.Source != workflows.EventPaymentMethodDetached || sig.PaymentMethodID != "pm_gone" {
			t.Errorf("signal %s (%v), want event %s from %s, naming pm_gone", removed.Signal, err, ev.ID, workflows.EventPaymentMethodDetached)
		}
		if !strings.Contains(run.res.Outcome, "no payment method left") || !strings.Contains(run.res.Outcome, "waits for a card") {
			t.Errorf("outcome %q", run.res.Outcome)
		}
	})
	// Another usable method left: nobody is told, but the running
	// recovery hears which one was removed, so that it never charges it
	// (Stripe's reads may still name it a moment after the detach).
	pms := activities.PaymentMethods{DefaultID: "pm_other", Usable: 2, Methods: []activities.PaymentMethod{
		{ID: "pm_gone", Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2030},
		{ID: "pm_other", Brand: "mastercard", Last4: "4444", ExpMonth: 9, ExpYear: 2031},
	}}
	removals := func(run eventRun) []workflows.PaymentMethodRemovedSignal {
		var out []workflows.PaymentMethodRemovedSignal
		for _, s := range run.signals {
			if s.SignalName != workflows.SignalPaymentMethodRemoved {
				continue
			}
			var sig workflows.PaymentMethodRemovedSignal
			if err := json.Unmarshal(s.Signal, &sig); err != nil || s.WorkflowID != workflows.RecoveryWorkflowID(ev.CustomerID) || s.Start != nil {
				t.Errorf("removal signal %+v (%v), want one to the running recovery of %s", s, err, ev.CustomerID)
			}
			out = append(out, sig)
		}
		return out
	}
	t.Run("another method left", func(t *testing.T) {
		run := runEventWith(t, ev, true, pms)
		if run.lookups != 1 || len(run.notices) != 0 || len(run.alerts) != 0 {
			t.Fatalf("lookups %d notices %+v alerts %+v, want Stripe asked and no one told", run.lookups, run.notices, run.alerts)
		}
		got := removals(run)
		if len(got) != 1 || got[0].PaymentMethodID != "pm_gone" || !got[0].UsableLeft || got[0].EventID != ev.ID || !got[0].Created.Equal(ev.Created) {
			t.Fatalf("removal signals %+v, want one naming pm_gone, with a usable method left, from %s", got, ev.ID)
		}
		if run.res.Route != workflows.RouteSourceDeleted || !strings.Contains(run.res.Outcome, "a usable payment method remains") ||
			!strings.Contains(run.res.Outcome, "not to charge pm_gone") {
			t.Errorf("result %+v, want the record that a usable method remains and the recovery was told", run.res)
		}
	})
	t.Run("another method left, no recovery running", func(t *testing.T) {
		run := runEventWith(t, ev, false, pms)
		if len(removals(run)) != 1 || len(run.notices) != 0 || len(run.alerts) != 0 ||
			!strings.Contains(run.res.Outcome, "a usable payment method remains: nothing to do") {
			t.Errorf("signals %+v notices %+v alerts %+v result %+v, want one plain signal, no one told, nothing to do",
				run.signals, run.notices, run.alerts, run.res)
		}
	})
	t.Run("another method left, an event workflow recorded before", func(t *testing.T) {
		run, err := runEventEnded(t, ev, eventPeers{delivered: true, pms: pms}, func(env *testsuite.TestWorkflowEnvironment) {
			env.OnGetVersion("removal-reaches-recovery", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := removals(run); len(got) != 0 || !strings.Contains(run.res.Outcome, "a usable payment method remains: nothing to do") {
			t.Errorf("removal signals %+v, result %+v; want the recorded workflow to leave the recovery alone", got, run.res)
		}
	})
}
