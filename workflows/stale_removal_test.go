package workflows_test

import (
	"testing"
	"time"

	"go.temporal.io/sdk/workflow"

	"dunning/workflows"
)

// The removed-card route asks Stripe, tells the customer and ops, and only
// then tells the recovery; a card event created after the removal takes a
// shorter way and can reach the recovery first. The removal it then
// overtook says nothing about the card added since: the recovery charges
// at once on the card update, and Stripe says whether anything is usable.
func TestPaymentMethodRemovedOlderThanACardUpdate(t *testing.T) {
	removed := func(created time.Duration) workflows.PaymentMethodRemovedSignal {
		return workflows.PaymentMethodRemovedSignal{EventID: "evt_detached", Created: t0.Add(created), Source: workflows.EventPaymentMethodDetached}
	}
	attached := workflows.CardUpdatedSignal{EventID: "evt_attached", Created: t0.Add(30 * time.Minute),
		PaymentMethodID: "pm_new", Source: workflows.EventPaymentMethodAttached}

	t.Run("removal created before the card update, delivered after it", func(t *testing.T) {
		rt := newRecoveryTest(t)
		rt.w.succeedOnAttempt = 1
		rt.signal(30*time.Minute, workflows.SignalCardUpdated, attached)
		rt.signal(30*time.Minute+10*time.Second, workflows.SignalPaymentMethodRemoved, removed(29*time.Minute))
		res := rt.run(input())
		if res.Stage != workflows.StageRecovered || len(rt.w.retries) != 1 {
			t.Fatalf("stage %s after %d confirms; want recovered by the card update's charge", res.Stage, len(rt.w.retries))
		}
		if now := rt.env.Now(); now.Sub(t0) >= time.Hour {
			t.Errorf("recovered at +%s, want at the card update, before the first scheduled retry", now.Sub(t0))
		}
	})
	t.Run("removal created in the same second as the card update", func(t *testing.T) {
		rt := newRecoveryTest(t)
		rt.w.succeedOnAttempt = 1
		rt.signal(30*time.Minute, workflows.SignalCardUpdated, attached)
		rt.signal(30*time.Minute+10*time.Second, workflows.SignalPaymentMethodRemoved, removed(30*time.Minute))
		if res := rt.run(input()); res.Stage != workflows.StageRecovered || len(rt.w.retries) != 1 ||
			rt.env.Now().Sub(t0) >= time.Hour {
			t.Fatalf("stage %s after %d confirms at +%s; want Stripe asked at the card update", res.Stage, len(rt.w.retries), rt.env.Now().Sub(t0))
		}
	})
	t.Run("removal created after the card update", func(t *testing.T) {
		rt := newRecoveryTest(t)
		rt.w.succeedOnAttempt = 1
		rt.signal(30*time.Minute, workflows.SignalCardUpdated, attached)
		rt.signal(30*time.Minute+10*time.Second, workflows.SignalPaymentMethodRemoved, removed(31*time.Minute))
		var waits bool
		rt.at(2*time.Hour, func() { waits = rt.status().NoPaymentMethod })
		res := rt.run(input())
		if !waits || len(rt.w.retries) != 0 || res.Stage != workflows.StageDeprovisioned {
			t.Fatalf("waiting for a card %v, %d confirms, stage %s; want the removal to stand", waits, len(rt.w.retries), res.Stage)
		}
	})
	t.Run("a life recorded before", func(t *testing.T) {
		rt := newRecoveryTest(t)
		rt.w.succeedOnAttempt = 1
		rt.env.OnGetVersion("stale-removal-ignored", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		rt.signal(30*time.Minute, workflows.SignalCardUpdated, attached)
		rt.signal(30*time.Minute+10*time.Second, workflows.SignalPaymentMethodRemoved, removed(29*time.Minute))
		if res := rt.run(input()); len(rt.w.retries) != 0 || res.Stage != workflows.StageDeprovisioned {
			t.Fatalf("%d confirms, stage %s; want the recorded life to wait for a card as it did", len(rt.w.retries), res.Stage)
		}
	})
}

func TestRemovalOvertaken(t *testing.T) {
	for _, tc := range []struct {
		name              string
		removed, lastCard time.Time
		want              bool
	}{
		{"no card event applied", t0, time.Time{}, false},
		{"card event older than the removal", t0, t0.Add(-time.Second), false},
		{"card event in the same second", t0, t0, true},
		{"card event newer than the removal", t0, t0.Add(time.Second), true},
		{"removal without its time", time.Time{}, t0, false},
	} {
		if got := workflows.RemovalOvertaken(tc.removed, tc.lastCard); got != tc.want {
			t.Errorf("%s: RemovalOvertaken = %v, want %v", tc.name, got, tc.want)
		}
	}
}
