package main

import (
	"strings"
	"testing"

	"dunning/config"
)

// `dunning dev` listens on loopback unless HTTP_ADDR says otherwise.
func TestDevListensOnLoopbackByDefault(t *testing.T) {
	t.Setenv("HTTP_ADDR", "")
	t.Setenv("STRIPE_WEBHOOK_SECRET", "")
	devEnvDefaults()
	cfg, err := config.Load(func(k string) string {
		if k == "HTTP_ADDR" || k == "STRIPE_WEBHOOK_SECRET" {
			return envOr(k, "")
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "127.0.0.1:8080" {
		t.Errorf("dev webhook on %s, want loopback 127.0.0.1:8080", cfg.HTTPAddr)
	}
	t.Setenv("HTTP_ADDR", ":9090")
	devEnvDefaults()
	if got := envOr("HTTP_ADDR", ""); got != ":9090" {
		t.Errorf("HTTP_ADDR=:9090 became %s", got)
	}
}

// A live Stripe key with the public dev webhook secret is refused, naming
// the variable; a test key, or a live key with the endpoint's own secret,
// is not.
func TestDevRefusesALiveKeyWithThePublicSecret(t *testing.T) {
	load := func(key, secret string) config.Config {
		t.Helper()
		cfg, err := config.Load(func(k string) string {
			return map[string]string{"STRIPE_API_KEY": key, "STRIPE_WEBHOOK_SECRET": secret}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	for _, key := range []string{"sk_live_abc", "rk_live_abc"} {
		for _, secret := range []string{DevWebhookSecret, "whsec_real," + DevWebhookSecret} {
			err := checkDevConfig(load(key, secret))
			if err == nil || !strings.Contains(err.Error(), "STRIPE_WEBHOOK_SECRET") {
				t.Errorf("%s…, %s: %v, want a refusal naming STRIPE_WEBHOOK_SECRET", key[:8], secret, err)
			}
		}
	}
	// The same for the public dev secret of portal links.
	portal := func(key, secret string) config.Config {
		t.Helper()
		cfg, err := config.Load(func(k string) string {
			return map[string]string{"STRIPE_API_KEY": key, "STRIPE_WEBHOOK_SECRET": "whsec_real",
				"PUBLIC_URL": "https://billing.example.com", "PORTAL_LINK_SECRET": secret}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	if err := checkDevConfig(portal("sk_live_abc", DevPortalLinkSecret)); err == nil || !strings.Contains(err.Error(), "PORTAL_LINK_SECRET") {
		t.Errorf("live key with the public portal-link secret: %v, want a refusal naming PORTAL_LINK_SECRET", err)
	}
	if err := checkDevConfig(portal("sk_test_abc", DevPortalLinkSecret)); err != nil {
		t.Errorf("test key with the public portal-link secret: %v, want it accepted", err)
	}
	if err := checkDevConfig(portal("sk_live_abc", "a_real_portal_link_secret_of_32_bytes_or_more")); err != nil {
		t.Errorf("live key with its own portal-link secret: %v, want it accepted", err)
	}
	for _, tc := range [][2]string{{"sk_test_abc", DevWebhookSecret}, {"sk_live_abc", "whsec_real"}, {"", DevWebhookSecret}} {
		if err := checkDevConfig(load(tc[0], tc[1])); err != nil {
			t.Errorf("%q with %q: %v, want it accepted", tc[0], tc[1], err)
		}
	}
}

// The public dev secrets are no signing secrets for the control plane or
// the mailer: `dunning dev` refuses either set to one of them, naming the
// variable, and takes secrets of their own.
func TestDevRefusesADevSecretForRequestSigning(t *testing.T) {
	for _, k := range []string{"HTTP_ADDR", "STRIPE_WEBHOOK_SECRET", "PUBLIC_URL", "PORTAL_LINK_SECRET", "CONTROL_PLANE_SECRET", "CUSTOMER_NOTICE_SECRET"} {
		t.Setenv(k, "")
	}
	devEnvDefaults()
	devPortalDefaults()
	load := func(vars map[string]string) error {
		_, err := config.Load(func(k string) string {
			if v, ok := vars[k]; ok {
				return v
			}
			if k == "STRIPE_API_KEY" {
				return devStripeKey
			}
			return envOr(k, "")
		})
		return err
	}
	if err := load(nil); err != nil {
		t.Fatalf("dev defaults: %v", err)
	}
	for _, tc := range []struct{ name, value, other string }{
		{"CONTROL_PLANE_SECRET", DevPortalLinkSecret, "PORTAL_LINK_SECRET"},
		{"CUSTOMER_NOTICE_SECRET", DevPortalLinkSecret, "PORTAL_LINK_SECRET"},
		{"CONTROL_PLANE_SECRET", DevWebhookSecret, "STRIPE_WEBHOOK_SECRET"},
		{"CUSTOMER_NOTICE_SECRET", DevWebhookSecret, "STRIPE_WEBHOOK_SECRET"},
	} {
		err := load(map[string]string{tc.name: tc.value})
		if err == nil || !strings.Contains(err.Error(), tc.name+": must not be one of the "+tc.other) {
			t.Errorf("%s = the dev %s: %v, want a refusal naming both", tc.name, tc.other, err)
		}
	}
	own := map[string]string{
		"CONTROL_PLANE_SECRET":   "a_control_plane_secret_of_32_bytes_or_more",
		"CUSTOMER_NOTICE_SECRET": "a_customer_notice_secret_of_32_bytes_or_more",
	}
	if err := load(own); err != nil {
		t.Errorf("secrets of their own: %v", err)
	}
}

// `dunning dev` refuses settings for another Temporal, naming them, and
// takes TEMPORAL_TLS=false, which is what it does anyway.
func TestDevRefusesTemporalSecuritySettings(t *testing.T) {
	for _, vars := range []map[string]string{
		{"TEMPORAL_TLS": "true"},
		{"TEMPORAL_API_KEY": "key"},
		{"TEMPORAL_TLS_CLIENT_CERT_PATH": "/etc/dunning/client.pem", "TEMPORAL_TLS_CLIENT_KEY_PATH": "/etc/dunning/client.key"},
		{"TEMPORAL_PROFILE": "prod"},
		{"TEMPORAL_CONFIG_FILE": "/etc/temporal.toml"},
	} {
		err := checkDevTemporal(func(k string) string { return vars[k] })
		if err == nil {
			t.Errorf("%v: accepted, want a refusal", vars)
			continue
		}
		for name := range vars {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("%v: %v, want it to name %s", vars, err, name)
			}
		}
		if strings.Contains(err.Error(), "key\"") || strings.Contains(err.Error(), "client.pem") {
			t.Errorf("the refusal repeats a value: %v", err)
		}
	}
	for _, vars := range []map[string]string{nil, {"TEMPORAL_TLS": "false"}, {"TEMPORAL_TLS": "0"},
		{"TEMPORAL_ADDRESS": "127.0.0.1:7244", "TEMPORAL_NAMESPACE": "dev"}} {
		if err := checkDevTemporal(func(k string) string { return vars[k] }); err != nil {
			t.Errorf("%v: %v, want it accepted", vars, err)
		}
	}
}
