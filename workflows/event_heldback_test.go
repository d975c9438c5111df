package workflows_test

import (
	"strings"
	"testing"

	"dunning/workflows"
)

// heldBackEvent is an event of typ carrying everything a route would act
// on, so that any route taken would show as a signal, a start, a lookup or
// a notice.
func heldBackEvent(typ string) workflows.StripeEvent {
	ev := event(typ)
	ev.PaymentIntent = &workflows.PaymentIntentInfo{ID: "pi_1", Amount: 4900, Currency: "usd"}
	ev.Card = &workflows.CardInfo{ID: "card_1", Brand: "Visa", Last4: "4242", ExpMonth: 4, ExpYear: 2026}
	ev.ObjectID, ev.ObjectType = "card_1", "card"
	ev.DefaultPaymentMethodChanged = true
	return ev
}

// wantOnlyAlert checks that the run did nothing but send one critical alert
// with the given key, naming the event and saying each of texts.
func wantOnlyAlert(t *testing.T, run eventRun, key string, texts ...string) {
	t.Helper()
	if len(run.signals) != 0 || len(run.matching) != 0 || len(run.notices) != 0 || run.lookups != 0 {
		t.Errorf("signals %+v, fan-outs %+v, notices %+v, %d lookups; want none", run.signals, run.matching, run.notices, run.lookups)
	}
	if len(run.alerts) != 1 {
		t.Fatalf("alerts %+v, want exactly one", run.alerts)
	}
	a := run.alerts[0]
	if a.Key != key || a.Severity != "critical" {
		t.Errorf("alert key %q severity %q, want %q critical", a.Key, a.Severity, key)
	}
	for _, want := range texts {
		if !strings.Contains(a.Text, want) {
			t.Errorf("alert text %q does not say %q", a.Text, want)
		}
	}
}

func TestStripeEventWorkflowUnreadableOnlyAlerts(t *testing.T) {
	const reason = "invalid event: data.object: field amount has the wrong type"
	types := append(workflows.HandledEventTypes(), "")
	for _, typ := range types {
		t.Run("type "+typ, func(t *testing.T) {
			// What the webhook starts: the envelope and the reason.
			ev := workflows.StripeEvent{ID: "evt_1OqUnreadable00001", Type: typ, Created: event(typ).Created, Unreadable: reason}
			run := runEvent(t, ev, true)
			wantType := typ
			if typ == "" {
				wantType = "type unknown"
			}
			wantOnlyAlert(t, run, ev.ID+":unreadable", ev.ID, wantType, reason)
			if !strings.HasPrefix(run.res.Outcome, "unreadable") || run.res.EventID != ev.ID {
				t.Errorf("result %+v, want outcome unreadable for %s", run.res, ev.ID)
			}
		})
	}
	t.Run("whatever else the event carries", func(t *testing.T) {
		ev := heldBackEvent(workflows.EventPaymentFailed)
		ev.Unreadable = reason
		live := true
		ev.ExpectedLivemode = &live // and of the other mode: one alert, the unreadable one
		wantOnlyAlert(t, runEvent(t, ev, true), ev.ID+":unreadable", reason)
	})
}

func TestStripeEventWorkflowWrongModeOnlyAlerts(t *testing.T) {
	for _, typ := range workflows.HandledEventTypes() {
		for _, live := range []bool{true, false} {
			ev := heldBackEvent(typ)
			ev.Livemode = !live
			ev.ExpectedLivemode = &live
			name := typ + "/test event, live key"
			if !live {
				name = typ + "/live event, test key"
			}
			t.Run(name, func(t *testing.T) {
				run := runEvent(t, ev, true)
				wantOnlyAlert(t, run, ev.ID+":livemode", ev.ID, typ, "STRIPE_API_KEY")
				if !strings.Contains(run.res.Outcome, "other mode") {
					t.Errorf("Outcome = %q, want it to say the event is of the other mode", run.res.Outcome)
				}
			})
		}
	}
}

func TestStripeEventWorkflowModeChecked(t *testing.T) {
	live, test := true, false
	for _, tc := range []struct {
		name     string
		livemode bool
		expected *bool
	}{
		{"live event, live key", true, &live},
		{"test event, test key", false, &test},
		{"live event, no key", true, nil},
		{"test event, no key", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := heldBackEvent(workflows.EventPaymentFailed)
			ev.Livemode, ev.ExpectedLivemode = tc.livemode, tc.expected
			run := runEvent(t, ev, true)
			if len(run.alerts) != 0 || len(run.signals) != 1 || run.signals[0].SignalName != workflows.SignalPaymentFailed {
				t.Errorf("alerts %+v signals %+v, want the recovery told and no alert", run.alerts, run.signals)
			}
		})
	}
	t.Run("unhandled type of the other mode is ignored", func(t *testing.T) {
		ev := heldBackEvent("charge.refunded")
		ev.Livemode, ev.ExpectedLivemode = false, &live
		run := runEvent(t, ev, true)
		if len(run.alerts) != 0 || len(run.signals) != 0 || !strings.HasPrefix(run.res.Outcome, "ignored") {
			t.Errorf("alerts %+v signals %+v outcome %q, want it ignored", run.alerts, run.signals, run.res.Outcome)
		}
	})
}

func TestWrongMode(t *testing.T) {
	live, test := true, false
	for _, tc := range []struct {
		livemode bool
		expected *bool
		want     bool
	}{
		{true, &live, false},
		{false, &test, false},
		{false, &live, true},
		{true, &test, true},
		{true, nil, false},
		{false, nil, false},
	} {
		ev := workflows.StripeEvent{ID: "evt_1", Livemode: tc.livemode, ExpectedLivemode: tc.expected}
		if got := workflows.WrongMode(ev); got != tc.want {
			t.Errorf("WrongMode(livemode %v, expected %v) = %v, want %v", tc.livemode, show(tc.expected), got, tc.want)
		}
	}
}

func show(b *bool) string {
	if b == nil {
		return "unknown"
	}
	if *b {
		return "live"
	}
	return "test"
}
