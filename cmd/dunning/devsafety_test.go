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
	for _, tc := range [][2]string{{"sk_test_abc", DevWebhookSecret}, {"sk_live_abc", "whsec_real"}, {"", DevWebhookSecret}} {
		if err := checkDevConfig(load(tc[0], tc[1])); err != nil {
			t.Errorf("%q with %q: %v, want it accepted", tc[0], tc[1], err)
		}
	}
}
