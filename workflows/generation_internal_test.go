package workflows

import (
	"maps"
	"testing"

	"go.temporal.io/sdk/workflow"
)

// A released generation is never edited: runs that recorded it rely on
// what it stood for. This is generation 1 as released.
func TestGenerationOneIsAsReleased(t *testing.T) {
	released := map[string]workflow.Version{
		"money-rules": 2, "adopt-money-rules": 1, "act-on-signals-applied-after-step": 1,
		"settle-on-fresh-state": 1, "waiver-notice": 1, "waiver-taken-mid-step": 1,
		"local-first-failure": 1, "told-after-record": 1, "first-reads": 1, "report-memo": 1, "local-routing": 1,
		"paid-after-the-end": 1, "card-updated-tells-expiry-watches": 1,
		"reconcile-reduced-events": 1, "reconcile-watermark": 1,
	}
	if len(generations) < 2 || !maps.Equal(generations[1], released) {
		t.Fatalf("generation 1 is %v, released as %v: add a generation instead of editing one", generations[1], released)
	}
	if generations[0] != nil {
		t.Fatal("generation 0 is the runs without a generation marker; it stands for nothing")
	}
}
