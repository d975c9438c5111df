package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"dunning/internal/testenv"
)

// deploy/setup-namespace.sh with the real temporal CLI against a real
// server: it raises a short retention to TEMPORAL_NAMESPACE_RETENTION and
// keeps a longer one an operator set; it creates a missing namespace.
func TestSetupScriptOnlyRaisesRetention(t *testing.T) {
	tmp := testenv.StartTemporal(t)
	cli := testenv.Tool(t, "TEMPORAL_CLI", "temporal")
	ctx := context.Background()
	set := func(ns string, d time.Duration) {
		t.Helper()
		_, err := tmp.Client.WorkflowService().UpdateNamespace(ctx, &workflowservice.UpdateNamespaceRequest{
			Namespace: ns, Config: &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(d)},
		})
		if err != nil {
			t.Fatalf("set retention of %s to %s: %v", ns, d, err)
		}
	}
	get := func(ns string) time.Duration {
		t.Helper()
		resp, err := tmp.Client.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns})
		if err != nil {
			t.Fatalf("describe %s: %v", ns, err)
		}
		return resp.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration()
	}
	run := func(ns, retention string) string {
		t.Helper()
		cmd := exec.Command("/bin/sh", filepath.Join(root, "deploy", "setup-namespace.sh"))
		cmd.Env = append(os.Environ(),
			"TEMPORAL_CLI="+cli, "TEMPORAL_ADDRESS="+tmp.Address, "TEMPORAL_NAMESPACE="+ns,
			"TEMPORAL_NAMESPACE_RETENTION="+retention,
			"DUNNING_SEARCH_ATTRIBUTES=StripeCustomerId=Keyword,StripeEventType=Keyword,RecoveryStage=Keyword")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("setup-namespace.sh (%s, %s): %v\n%s", ns, retention, err, out)
		}
		return string(out)
	}

	set(tmp.Namespace, 720*time.Hour)
	out := run(tmp.Namespace, "168h")
	if got := get(tmp.Namespace); got != 720*time.Hour {
		t.Errorf("the script lowered an operator's 720h retention to %s:\n%s", got, out)
	}
	if !strings.Contains(out, "left as it is") {
		t.Errorf("the script does not say it kept the retention:\n%s", out)
	}

	set(tmp.Namespace, 48*time.Hour)
	out = run(tmp.Namespace, "168h")
	if got := get(tmp.Namespace); got != 168*time.Hour {
		t.Errorf("the script left a 48h retention at %s, want 168h:\n%s", got, out)
	}

	// A unit the CLI accepts too.
	run(tmp.Namespace, "10d")
	if got := get(tmp.Namespace); got != 240*time.Hour {
		t.Errorf("with TEMPORAL_NAMESPACE_RETENTION=10d the retention is %s, want 240h", got)
	}

	run("dunning-new", "168h")
	if got := get("dunning-new"); got != 168*time.Hour {
		t.Errorf("a namespace created by the script keeps closed workflows for %s, want 168h", got)
	}
}
