package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/internal/stripefixture"
	"dunning/internal/testenv"
)

// The scan every test ends with finds a personal string wherever a
// history holds one (here a workflow's input and a signal), and nothing
// in a history without one.
func TestPersonalDataScanFindsWhatIsThere(t *testing.T) {
	d := testenv.StartDevServer(t, "", testenv.TemporalOptions{LogPath: filepath.Join(t.TempDir(), "temporal.log")})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := func(id string, input any) {
		t.Helper()
		// No worker polls this queue: the histories hold only what the
		// client wrote.
		if _, err := d.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "personal-data-scan"}, "Probe", input); err != nil {
			t.Fatal(err)
		}
	}
	start("clean", map[string]string{"customer": "cus_123"})
	start("tainted", map[string]string{"customer": "cus_456", "receipt_email": stripefixture.PersonalEmail})
	start("signalled", map[string]string{"customer": "cus_789"})
	if err := d.Client.SignalWorkflow(ctx, "signalled", "", "card", map[string]any{"billing_details": stripefixture.PersonalBillingDetails()}); err != nil {
		t.Fatal(err)
	}
	runs, err := listExecutions(ctx, d.Client)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string][]string{}
	for _, e := range runs {
		f, events, err := personalIn(ctx, d.Client, e)
		if err != nil {
			t.Fatal(err)
		}
		if events == 0 {
			t.Errorf("%s: empty history", e.workflowID)
		}
		found[e.workflowID] = f
	}
	if len(runs) != 3 {
		t.Fatalf("listed %d runs, want 3", len(runs))
	}
	if len(found["clean"]) != 0 {
		t.Errorf("clean history: %v", found["clean"])
	}
	if f := found["tainted"]; len(f) != 1 || !strings.Contains(f[0], "WorkflowExecutionStarted") || !strings.Contains(f[0], stripefixture.PersonalEmail) {
		t.Errorf("tainted input: %v, want the start event holding the email", f)
	}
	// Billing details hold the email, name, phone, street, city and zip.
	if f := found["signalled"]; len(f) != len(stripefixture.Personal) || !strings.Contains(f[0], "WorkflowExecutionSignaled") {
		t.Errorf("signal: %v, want every personal string in the signal", f)
	}
}
