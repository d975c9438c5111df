package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"dunning/config"
)

// With DUNNING_REQUIRE_LIVE, `dunning worker` and `dunning webhook` refuse
// to start, before they reach for Temporal, when an integration they use
// would run dry; the refusal names the variable and what is missing.
func TestPartsRefuseToRunDryIntegrationsTheyMustNot(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	load := func(vars map[string]string) config.Config {
		t.Helper()
		// Temporal at an address where nothing answers: a part that got
		// that far would wait, not return.
		vars["TEMPORAL_ADDRESS"] = "127.0.0.1:1"
		vars["STRIPE_WEBHOOK_SECRET"] = "whsec_test"
		cfg, err := config.Load(func(k string) string { return vars[k] })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	for _, tc := range []struct {
		part    string
		run     func(context.Context, config.Config, *slog.Logger) error
		vars    map[string]string
		missing []string
	}{
		{"worker", runWorker, map[string]string{"DUNNING_REQUIRE_LIVE": "all", "STRIPE_API_KEY": "sk_live_1"},
			[]string{"amberflo", "AMBERFLO_API_KEY", "control_plane", "CONTROL_PLANE_URL", "ops_alerts", "ALERT_WEBHOOK_URL",
				"customer_notice", "CUSTOMER_NOTICE_URL", "portal_links", "PORTAL_LINK_SECRET"}},
		{"worker", runWorker, map[string]string{"DUNNING_REQUIRE_LIVE": "amberflo", "STRIPE_API_KEY": "sk_live_1"},
			[]string{"amberflo", "AMBERFLO_API_KEY"}},
		{"webhook", runWebhook, map[string]string{"DUNNING_REQUIRE_LIVE": "stripe"}, []string{"stripe", "STRIPE_API_KEY"}},
		{"webhook", runWebhook, map[string]string{"DUNNING_REQUIRE_LIVE": "all", "STRIPE_API_KEY": "sk_live_1"},
			[]string{"portal_links", "PUBLIC_URL", "PORTAL_LINK_SECRET"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := tc.run(ctx, load(tc.vars), quiet)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "DUNNING_REQUIRE_LIVE") || !strings.Contains(err.Error(), tc.part) {
			t.Errorf("%s with %v: %v, want a refusal naming DUNNING_REQUIRE_LIVE", tc.part, tc.vars, err)
			continue
		}
		for _, m := range tc.missing {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s with %v: %q does not name %s", tc.part, tc.vars, err, m)
			}
		}
	}
	// The webhook does not use Amberflo: requiring it is the worker's
	// business. (It then gets as far as serving; cancelled at once.)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := load(map[string]string{"DUNNING_REQUIRE_LIVE": "amberflo", "HTTP_ADDR": "127.0.0.1:0"})
	if err := runWebhook(ctx, cfg, quiet); err != nil && strings.Contains(err.Error(), "DUNNING_REQUIRE_LIVE") {
		t.Errorf("webhook refused for an integration it does not use: %v", err)
	}
}
