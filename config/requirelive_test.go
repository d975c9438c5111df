package config_test

import (
	"slices"
	"strings"
	"testing"

	"dunning/config"
)

// liveEnv configures every integration.
var liveEnv = map[string]string{
	"STRIPE_API_KEY":    "sk_live_0123456789",
	"AMBERFLO_API_KEY":  "amberflo-key",
	"CONTROL_PLANE_URL": "https://control.example.com/api", "CONTROL_PLANE_SECRET": cpSecret,
	"ALERT_WEBHOOK_URL":   "https://hooks.example.com/alerts",
	"CUSTOMER_NOTICE_URL": "https://mailer.example.com/notices", "CUSTOMER_NOTICE_SECRET": noticeSecret,
	"PUBLIC_URL": "https://billing.example.com", "PORTAL_LINK_SECRET": portalSecret,
}

func TestRequireLiveNames(t *testing.T) {
	t.Parallel()
	all := []string{"amberflo", "control_plane", "customer_notice", "ops_alerts", "portal_links", "stripe"}
	for value, want := range map[string][]string{
		"":                             nil,
		"none":                         nil,
		"all":                          all,
		"ALL":                          all,
		"stripe, amberflo,stripe":      {"amberflo", "stripe"},
		"all,stripe":                   all,
		"control_plane,ops_alerts,":    {"control_plane", "ops_alerts"},
		"portal_links,customer_notice": {"customer_notice", "portal_links"},
	} {
		c, err := config.Load(env(map[string]string{"DUNNING_REQUIRE_LIVE": value}))
		if err != nil {
			t.Errorf("DUNNING_REQUIRE_LIVE=%q: %v", value, err)
			continue
		}
		if !slices.Equal(c.RequireLive, want) {
			t.Errorf("DUNNING_REQUIRE_LIVE=%q: %q, want %q", value, c.RequireLive, want)
		}
	}
	// Every name Live gives is one DUNNING_REQUIRE_LIVE takes.
	c, _ := config.Load(env(map[string]string{"DUNNING_REQUIRE_LIVE": "all"}))
	for name := range c.Live() {
		if !slices.Contains(c.RequireLive, name) {
			t.Errorf("all does not cover %s", name)
		}
	}
	for _, bad := range []string{"stripe,amberfl0", "everything", "control-plane"} {
		_, err := config.Load(env(map[string]string{"DUNNING_REQUIRE_LIVE": bad}))
		if err == nil || !strings.Contains(err.Error(), "DUNNING_REQUIRE_LIVE") {
			t.Errorf("DUNNING_REQUIRE_LIVE=%q: %v, want an error naming the variable", bad, err)
		}
	}
}

// Each integration, required and left dry, is refused with the variable
// and the settings it lacks; configured, it passes.
func TestRequireLiveRefusesEachDryIntegration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		integration string
		unset       []string // of liveEnv, leaving it dry (and the config valid)
		missing     []string
	}{
		{config.IntegrationStripe, []string{"STRIPE_API_KEY", "CONTROL_PLANE_URL", "CONTROL_PLANE_SECRET", "PUBLIC_URL", "PORTAL_LINK_SECRET"}, []string{"STRIPE_API_KEY"}},
		{config.IntegrationAmberflo, []string{"AMBERFLO_API_KEY"}, []string{"AMBERFLO_API_KEY"}},
		{config.IntegrationControlPlane, []string{"CONTROL_PLANE_URL", "CONTROL_PLANE_SECRET"}, []string{"CONTROL_PLANE_URL", "CONTROL_PLANE_SECRET"}},
		{config.IntegrationControlPlane, []string{"CONTROL_PLANE_URL"}, []string{"CONTROL_PLANE_URL"}},
		{config.IntegrationOpsAlerts, []string{"ALERT_WEBHOOK_URL"}, []string{"ALERT_WEBHOOK_URL"}},
		{config.IntegrationCustomerNotice, []string{"CUSTOMER_NOTICE_URL", "CUSTOMER_NOTICE_SECRET"}, []string{"CUSTOMER_NOTICE_URL", "CUSTOMER_NOTICE_SECRET"}},
		{config.IntegrationPortalLinks, []string{"PUBLIC_URL", "PORTAL_LINK_SECRET"}, []string{"PUBLIC_URL", "PORTAL_LINK_SECRET"}},
	} {
		vars := map[string]string{"DUNNING_REQUIRE_LIVE": tc.integration}
		for k, v := range liveEnv {
			if !slices.Contains(tc.unset, k) {
				vars[k] = v
			}
		}
		c, err := config.Load(env(vars))
		if err != nil {
			t.Fatalf("%s: %v", tc.integration, err)
		}
		if c.Live()[tc.integration] {
			t.Fatalf("%s is live without %v", tc.integration, tc.unset)
		}
		err = c.RequireLiveFor("worker", tc.integration)
		if err == nil {
			t.Errorf("%s required and dry: started", tc.integration)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "DUNNING_REQUIRE_LIVE") || !strings.Contains(msg, tc.integration) || !strings.Contains(msg, "worker") {
			t.Errorf("%s: %q, want the variable, the integration and the process named", tc.integration, msg)
		}
		for _, v := range tc.missing {
			if !strings.Contains(msg, v) {
				t.Errorf("%s: %q does not name the missing %s", tc.integration, msg, v)
			}
		}
		// Not used by the process: not its business.
		if err := c.RequireLiveFor("webhook", "something_else"); err != nil {
			t.Errorf("%s required, process that does not use it: %v", tc.integration, err)
		}
	}

	all := map[string]string{"DUNNING_REQUIRE_LIVE": "all"}
	for k, v := range liveEnv {
		all[k] = v
	}
	c, err := config.Load(env(all))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RequireLiveFor("worker", config.IntegrationStripe, config.IntegrationAmberflo, config.IntegrationControlPlane,
		config.IntegrationOpsAlerts, config.IntegrationCustomerNotice, config.IntegrationPortalLinks); err != nil {
		t.Errorf("all required, all configured: %v", err)
	}
	none, _ := config.Load(env(nil))
	if err := none.RequireLiveFor("worker", config.IntegrationStripe, config.IntegrationAmberflo); err != nil {
		t.Errorf("nothing required: %v", err)
	}
}
