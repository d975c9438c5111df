package workflows_test

import (
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"dunning/workflows"
)

func runStripeEventWorkflow(t *testing.T, ev workflows.StripeEvent) workflows.StripeEventResult {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.ExecuteWorkflow(workflows.StripeEventWorkflow, workflows.StripeEventInput{Event: ev})
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	var res workflows.StripeEventResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatalf("result: %v", err)
	}
	return res
}

func TestStripeEventWorkflowRoutesHandledTypes(t *testing.T) {
	t.Parallel()
	types := workflows.HandledEventTypes()
	if len(types) == 0 {
		t.Fatal("no handled event types")
	}
	for _, typ := range types {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			route, ok := workflows.RouteOf(typ)
			if !ok || route == "" {
				t.Fatalf("RouteOf(%s) = %q, %v", typ, route, ok)
			}
			ev := workflows.StripeEvent{
				ID:         "evt_1OqWorkflowTest001",
				Type:       typ,
				APIVersion: "2023-10-16",
				Created:    time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC),
				CustomerID: "cus_PqWorkflowTest01",
				ObjectID:   "obj_1OqWorkflowTest01",
			}
			res := runStripeEventWorkflow(t, ev)
			if res.Route != route {
				t.Errorf("Route = %q, want %q", res.Route, route)
			}
			if res.EventID != ev.ID || res.CustomerID != ev.CustomerID || res.Type != typ {
				t.Errorf("result %+v does not echo event %s of %s for %s", res, ev.ID, typ, ev.CustomerID)
			}
			if res.Outcome == "" || strings.HasPrefix(res.Outcome, "ignored") {
				t.Errorf("Outcome = %q, want the handled event recorded", res.Outcome)
			}
		})
	}
}

func TestStripeEventWorkflowIgnoresUnhandledType(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"charge.refunded", "customer.created", ""} {
		if _, handled := workflows.RouteOf(typ); handled {
			t.Fatalf("%q is handled; pick another type", typ)
		}
		res := runStripeEventWorkflow(t, workflows.StripeEvent{ID: "evt_1OqWorkflowIgnored1", Type: typ, CustomerID: "cus_PqIgnored0000001"})
		if !strings.HasPrefix(res.Outcome, "ignored") {
			t.Errorf("type %q: Outcome = %q, want it ignored", typ, res.Outcome)
		}
		if res.Route != "" || res.EventID != "evt_1OqWorkflowIgnored1" || res.Type != typ || res.CustomerID != "cus_PqIgnored0000001" {
			t.Errorf("type %q: result %+v", typ, res)
		}
	}
}
