package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The real binary, started as an operator would with a setting that is
// wrong or dangerous, refuses at once: it exits non-zero before it serves
// or polls anything, and its message names every variable at fault and
// repeats no secret. Temporal is pointed at a closed port, so a refusal
// cannot be mistaken for a connection failure.
func TestBinaryRefusesBadSettings(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "client.pem")
	if err := os.WriteFile(cert, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const (
		secretA = "a_control_plane_secret_of_32_bytes_or_more"
		secretB = "a_customer_notice_secret_of_32_bytes_or_more"
	)
	base := map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": dir, "TMPDIR": os.TempDir(),
		"TEMPORAL_ADDRESS": "127.0.0.1:1", "HTTP_ADDR": "127.0.0.1:0", "WORKER_METRICS_ADDR": "127.0.0.1:0",
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"control plane live while Stripe is dry", []string{"worker"},
			map[string]string{"CONTROL_PLANE_URL": "http://127.0.0.1:1/cp", "CONTROL_PLANE_SECRET": secretA},
			[]string{"CONTROL_PLANE_URL", "STRIPE_API_KEY"}},
		{"a required integration left dry", []string{"worker"},
			map[string]string{"DUNNING_REQUIRE_LIVE": "all", "STRIPE_API_KEY": "sk_test_123"},
			[]string{"DUNNING_REQUIRE_LIVE", "AMBERFLO_API_KEY"}},
		{"a misspelled integration in the required list", []string{"worker"},
			map[string]string{"DUNNING_REQUIRE_LIVE": "stripe,amberflow", "STRIPE_API_KEY": "sk_test_123"},
			[]string{"DUNNING_REQUIRE_LIVE", "amberflow"}},
		{"a short control-plane secret", []string{"worker"},
			map[string]string{"STRIPE_API_KEY": "sk_test_123", "CONTROL_PLANE_URL": "http://127.0.0.1:1/cp", "CONTROL_PLANE_SECRET": "short"},
			[]string{"CONTROL_PLANE_SECRET", "32"}},
		{"one secret for the control plane and the notices", []string{"worker"},
			map[string]string{"STRIPE_API_KEY": "sk_test_123", "CONTROL_PLANE_URL": "http://127.0.0.1:1/cp", "CONTROL_PLANE_SECRET": secretA,
				"CUSTOMER_NOTICE_URL": "http://127.0.0.1:1/n", "CUSTOMER_NOTICE_SECRET": secretA},
			[]string{"CONTROL_PLANE_SECRET", "CUSTOMER_NOTICE_SECRET"}},
		{"a client certificate without its key", []string{"worker"},
			map[string]string{"TEMPORAL_TLS_CLIENT_CERT_PATH": cert},
			[]string{"TEMPORAL_TLS_CLIENT_KEY_PATH"}},
		{"an API key with TLS switched off", []string{"worker"},
			map[string]string{"TEMPORAL_API_KEY": "key", "TEMPORAL_TLS": "false"},
			[]string{"TEMPORAL_API_KEY", "TEMPORAL_TLS"}},
		{"a webhook without its signing secret", []string{"webhook"}, nil,
			[]string{"STRIPE_WEBHOOK_SECRET"}},
		{"a signature tolerance over an hour", []string{"webhook"},
			map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_" + secretB, "STRIPE_WEBHOOK_TOLERANCE": "2h"},
			[]string{"STRIPE_WEBHOOK_TOLERANCE"}},
		{"a live Stripe key with the public dev secret", []string{"dev"},
			map[string]string{"STRIPE_API_KEY": "sk_live_123"},
			[]string{"STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET"}},
		{"dev pointed at a Temporal with TLS", []string{"dev"},
			map[string]string{"TEMPORAL_TLS": "true"},
			[]string{"TEMPORAL_TLS"}},
		{"a namespace retention under seven days", []string{"worker"},
			map[string]string{"TEMPORAL_NAMESPACE_RETENTION": "24h"},
			[]string{"TEMPORAL_NAMESPACE_RETENTION"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var env []string
			for k, v := range base {
				env = append(env, k+"="+v)
			}
			for k, v := range tc.env {
				env = append(env, k+"="+v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, Binary, tc.args...)
			cmd.Env, cmd.Dir = env, dir
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			var exit *exec.ExitError
			switch {
			case ctx.Err() != nil:
				t.Fatalf("still running after 30s; output:\n%s", out.String())
			case !errors.As(err, &exit):
				t.Fatalf("exit: %v, want a refusal; output:\n%s", err, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("the refusal does not name %s:\n%s", w, out.String())
				}
			}
			for _, secret := range []string{secretA, secretB, "sk_live_123", "sk_test_123"} {
				if strings.Contains(out.String(), secret) {
					t.Errorf("the refusal repeats a secret value:\n%s", out.String())
				}
			}
		})
	}
}
