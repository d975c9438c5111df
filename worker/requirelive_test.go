package worker_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"

	"dunning/config"
	"dunning/worker"
)

// A worker starting with integrations dry says so at warning level, one
// line each with the settings to set; with DUNNING_REQUIRE_LIVE listing
// one of them it does not start.
func TestWorkerWarnsOfDryIntegrationsAndRefusesRequiredOnes(t *testing.T) {
	c, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	load := func(vars map[string]string) config.Config {
		cfg, err := config.Load(func(k string) string { return vars[k] })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := worker.New(c, load(map[string]string{"STRIPE_API_KEY": "sk_test_1"}), log); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"level=WARN msg=\"integration runs dry", "integration=amberflo set=AMBERFLO_API_KEY",
		"integration=control_plane set=CONTROL_PLANE_URL,CONTROL_PLANE_SECRET",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("start log lacks %q:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "integration=stripe") {
		t.Errorf("live Stripe warned of as dry:\n%s", logs.String())
	}

	_, err = worker.New(c, load(map[string]string{"STRIPE_API_KEY": "sk_test_1", "DUNNING_REQUIRE_LIVE": "stripe,ops_alerts"}), log)
	if err == nil || !strings.Contains(err.Error(), "DUNNING_REQUIRE_LIVE") || !strings.Contains(err.Error(), "ALERT_WEBHOOK_URL") {
		t.Errorf("ops_alerts required and dry: %v, want a refusal naming DUNNING_REQUIRE_LIVE and ALERT_WEBHOOK_URL", err)
	}
}
