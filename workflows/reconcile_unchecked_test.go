package workflows_test

import (
	"strings"
	"testing"
	"time"

	"dunning/activities"
	"dunning/workflows"
)

// When the catch-up may reach no further than the look-back (no retention
// given: an input from before it, or a run by hand; or a retention no
// longer than the look-back and its margin), the run lists the whole
// look-back and leaves the rest to ops. The alert must still say when the
// last complete run was, which is where the events left out begin.
func TestReconcileUncheckedAlertNamesTheLastCompleteRun(t *testing.T) {
	const lookback = 72 * time.Hour
	for _, tc := range []struct {
		name      string
		retention time.Duration
		says      string
	}{
		{"retention not given", 0, "the look-back (72h0m0s) stands in for it"},
		{"retention equal to the look-back", lookback, "retention (72h0m0s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wm := activities.ReconcileWatermark{To: reconcileStart.Add(-100 * time.Hour), CoveredFrom: reconcileStart.Add(-200 * time.Hour)}
			f := &fakeStripeList{t: t, watermark: wm, pages: map[string]activities.EventPage{"": page(false, "evt_new1")}}
			_, res, err := f.run(workflows.ReconcileInput{Lookback: lookback, Retention: tc.retention}, reconcileStart)
			if err != nil {
				t.Fatalf("workflow failed: %v", err)
			}
			if full := reconcileStart.Add(-lookback); !res.From.Equal(full) || res.Unchecked.IsZero() {
				t.Fatalf("result %+v, want the whole look-back and the events before it left out", res)
			}
			if len(f.alerts) != 1 {
				t.Fatalf("alerts %+v, want one", f.alerts)
			}
			al := f.alerts[0]
			text := al.Title + " " + al.Text + " " + strings.Join(al.Fields, " ")
			if strings.Contains(text, "0001-01-01") {
				t.Errorf("alert %+v names the zero time as the last complete run", al)
			}
			for _, want := range []string{wm.To.Format(time.RFC3339), tc.says} {
				if !strings.Contains(text, want) {
					t.Errorf("alert %+v does not say %q", al, want)
				}
			}
		})
	}
}
