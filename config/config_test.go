package config_test

import (
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/contrib/envconfig"

	"dunning/config"
)

// Portal-link secrets of the allowed length.
const (
	portalSecret    = "portal-secret-0123456789abcdef0123456789"
	oldPortalSecret = "portal-secret-old-fedcba9876543210fedcba"
)

// Request-signing secrets of the allowed length, each its own.
const (
	cpSecret     = "cp-secret-0123456789abcdef0123456789"
	noticeSecret = "notice-secret-fedcba9876543210fedcba"
)

// env is a getenv over a fixed map.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatalf("Load with empty environment: %v", err)
	}
	want := config.Config{
		HTTPAddr:               ":8080",
		TemporalAddress:        "127.0.0.1:7233",
		TemporalNamespace:      "default",
		Temporal:               envconfig.ClientConfigProfile{Address: "127.0.0.1:7233", Namespace: "default"},
		TemporalTaskQueue:      "dunning",
		NamespaceRetention:     168 * time.Hour,
		StripeWebhookTolerance: 5 * time.Minute,
		WebhookMaxBody:         512 << 10,
		WebhookStartTimeout:    5 * time.Second,
		PortalLinkTTL:          720 * time.Hour,
		AmberfloBaseURL:        "https://app.amberflo.io",
		RetrySchedule:          []time.Duration{24 * time.Hour, 72 * time.Hour, 120 * time.Hour},
		GracePeriod:            168 * time.Hour,
		DeprovisionAfter:       336 * time.Hour,
		CardUpdateDebounce:     time.Second,
		InFlightAlertAfter:     7 * 24 * time.Hour,
		RecheckAlertAfter:      time.Hour,
		MaxAttemptsPerCard:     8,
		CardReminderBefore:     7 * 24 * time.Hour,
		ReconcileInterval:      15 * time.Minute,
		ReconcileLookback:      72 * time.Hour,
		ReconcileOverlap:       10 * time.Minute,
		WorkflowCacheSize:      2000,
		WorkerStopTimeout:      30 * time.Second,
		WorkflowTaskPollers:    8,
		LogLevel:               "info",
		LogFormat:              "text",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load(empty) =\n%+v\nwant\n%+v", c, want)
	}
	for name, live := range c.Live() {
		if live {
			t.Errorf("Live()[%q] = true with nothing configured; want every integration dry", name)
		}
	}
	if err := c.RequireWebhookSecret(); err == nil || !strings.Contains(err.Error(), "STRIPE_WEBHOOK_SECRET") {
		t.Errorf("RequireWebhookSecret with no secret = %v, want an error naming STRIPE_WEBHOOK_SECRET", err)
	}
}

func TestOverrides(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{
		"HTTP_ADDR":                      "127.0.0.1:9090",
		"TEMPORAL_ADDRESS":               "temporal.internal:7233",
		"TEMPORAL_NAMESPACE":             "billing-prod",
		"TEMPORAL_TASK_QUEUE":            "dunning-v2",
		"TEMPORAL_NAMESPACE_RETENTION":   "720h",
		"STRIPE_WEBHOOK_SECRET":          "whsec_live_one",
		"STRIPE_WEBHOOK_TOLERANCE":       "2m",
		"STRIPE_API_KEY":                 "sk_test_123",
		"STRIPE_API_BASE_URL":            "http://localhost:12111/",
		"WEBHOOK_MAX_BODY_BYTES":         "1048576",
		"WEBHOOK_START_TIMEOUT":          "3s",
		"WEBHOOK_TRUSTED_PROXIES":        "10.0.0.0/8, 192.0.2.7,fd00::/8",
		"PUBLIC_URL":                     "https://billing.example.com/dunning/",
		"PORTAL_LINK_SECRET":             portalSecret + ", " + oldPortalSecret,
		"PORTAL_LINK_TTL":                "336h",
		"PORTAL_RETURN_URL":              "https://app.example.com/settings/billing",
		"AMBERFLO_API_KEY":               "af_key",
		"AMBERFLO_BASE_URL":              "https://amberflo.example.com",
		"CONTROL_PLANE_URL":              "https://cp.example.com/api/",
		"CONTROL_PLANE_SECRET":           cpSecret,
		"ALERT_WEBHOOK_URL":              "https://hooks.example.com/services/T0/B0/X",
		"CUSTOMER_NOTICE_URL":            "https://mailer.example.com/notices",
		"CUSTOMER_NOTICE_SECRET":         noticeSecret,
		"CUSTOMER_ID_METADATA_KEY":       "tenant_id",
		"DUNNING_RETRY_SCHEDULE":         "1h, 6h ,48h",
		"DUNNING_GRACE_PERIOD":           "240h",
		"DUNNING_DEPROVISION_AFTER":      "720h",
		"DUNNING_CARD_UPDATE_DEBOUNCE":   "30s",
		"DUNNING_IN_FLIGHT_ALERT_AFTER":  "96h",
		"DUNNING_RECHECK_ALERT_AFTER":    "30m",
		"DUNNING_MAX_ATTEMPTS_PER_CARD":  "12",
		"DUNNING_CARD_REMINDER_BEFORE":   "72h",
		"RECONCILE_INTERVAL":             "5m",
		"RECONCILE_LOOKBACK":             "48h",
		"WORKER_METRICS_ADDR":            "127.0.0.1:9464",
		"TEMPORAL_WORKFLOW_CACHE_SIZE":   "500",
		"TEMPORAL_WORKFLOW_TASK_POLLERS": "16",
		"LOG_LEVEL":                      "DEBUG",
		"LOG_FORMAT":                     "json",
		"RECONCILE_OVERLAP":              "15m",
		"WORKER_STOP_TIMEOUT":            "45s",
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := config.Config{
		HTTPAddr:               "127.0.0.1:9090",
		TemporalAddress:        "temporal.internal:7233",
		TemporalNamespace:      "billing-prod",
		Temporal:               envconfig.ClientConfigProfile{Address: "temporal.internal:7233", Namespace: "billing-prod"},
		TemporalTaskQueue:      "dunning-v2",
		NamespaceRetention:     720 * time.Hour,
		StripeWebhookSecrets:   []string{"whsec_live_one"},
		StripeWebhookTolerance: 2 * time.Minute,
		StripeAPIKey:           "sk_test_123",
		StripeAPIBaseURL:       "http://localhost:12111",
		WebhookMaxBody:         1 << 20,
		WebhookStartTimeout:    3 * time.Second,
		WebhookTrustedProxies:  []string{"10.0.0.0/8", "192.0.2.7", "fd00::/8"},
		PublicURL:              "https://billing.example.com/dunning",
		PortalLinkSecrets:      []string{portalSecret, oldPortalSecret},
		PortalLinkTTL:          336 * time.Hour,
		PortalReturnURL:        "https://app.example.com/settings/billing",
		AmberfloAPIKey:         "af_key",
		AmberfloBaseURL:        "https://amberflo.example.com",
		ControlPlaneURL:        "https://cp.example.com/api",
		ControlPlaneSecret:     cpSecret,
		AlertWebhookURL:        "https://hooks.example.com/services/T0/B0/X",
		CustomerNoticeURL:      "https://mailer.example.com/notices",
		CustomerNoticeSecret:   noticeSecret,
		CustomerIDMetadataKey:  "tenant_id",
		RetrySchedule:          []time.Duration{time.Hour, 6 * time.Hour, 48 * time.Hour},
		GracePeriod:            240 * time.Hour,
		DeprovisionAfter:       720 * time.Hour,
		CardUpdateDebounce:     30 * time.Second,
		InFlightAlertAfter:     96 * time.Hour,
		RecheckAlertAfter:      30 * time.Minute,
		MaxAttemptsPerCard:     12,
		CardReminderBefore:     72 * time.Hour,
		ReconcileInterval:      5 * time.Minute,
		ReconcileLookback:      48 * time.Hour,
		ReconcileOverlap:       15 * time.Minute,
		WorkerMetricsAddr:      "127.0.0.1:9464",
		WorkflowCacheSize:      500,
		WorkerStopTimeout:      45 * time.Second,
		WorkflowTaskPollers:    16,
		LogLevel:               "debug",
		LogFormat:              "json",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load =\n%+v\nwant\n%+v", c, want)
	}
	for name, live := range c.Live() {
		if !live {
			t.Errorf("Live()[%q] = false with everything configured", name)
		}
	}
	if err := c.RequireWebhookSecret(); err != nil {
		t.Errorf("RequireWebhookSecret with a secret: %v", err)
	}
}

func TestWebhookSecretList(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		"whsec_a":                         {"whsec_a"},
		" whsec_a , whsec_b ":             {"whsec_a", "whsec_b"},
		"whsec_a,,whsec_b,":               {"whsec_a", "whsec_b"},
		"\twhsec_new,\n whsec_old\n":      {"whsec_new", "whsec_old"},
		" , ,":                            nil,
		"whsec_a,whsec_b,whsec_c,whsec_d": {"whsec_a", "whsec_b", "whsec_c", "whsec_d"},
	}
	for raw, want := range cases {
		c, err := config.Load(env(map[string]string{"STRIPE_WEBHOOK_SECRET": raw}))
		if err != nil {
			t.Fatalf("Load(STRIPE_WEBHOOK_SECRET=%q): %v", raw, err)
		}
		if !slices.Equal(c.StripeWebhookSecrets, want) {
			t.Errorf("STRIPE_WEBHOOK_SECRET=%q: secrets %q, want %q", raw, c.StripeWebhookSecrets, want)
		}
		if gotErr := c.RequireWebhookSecret() != nil; gotErr != (len(want) == 0) {
			t.Errorf("STRIPE_WEBHOOK_SECRET=%q: RequireWebhookSecret error = %v, want error %v", raw, c.RequireWebhookSecret(), len(want) == 0)
		}
	}
}

// named returns the variables an error from Load names, one per line.
func named(t *testing.T, err error) []string {
	t.Helper()
	var names []string
	for _, line := range strings.Split(err.Error(), "\n") {
		name, _, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ToUpper(name) != name || strings.ContainsAny(name, " \t") {
			t.Errorf("error line %q does not start with a variable name", line)
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func TestBadValues(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  map[string]string
		want []string // variables named, one error each
	}{
		{"bad duration", map[string]string{"DUNNING_GRACE_PERIOD": "seven days"}, []string{"DUNNING_GRACE_PERIOD"}},
		{"bad retention duration", map[string]string{"TEMPORAL_NAMESPACE_RETENTION": "1w"}, []string{"TEMPORAL_NAMESPACE_RETENTION"}},
		{"bad tolerance", map[string]string{"STRIPE_WEBHOOK_TOLERANCE": "5"}, []string{"STRIPE_WEBHOOK_TOLERANCE"}},
		{"negative tolerance", map[string]string{"STRIPE_WEBHOOK_TOLERANCE": "-1m"}, []string{"STRIPE_WEBHOOK_TOLERANCE"}},
		{"tolerance over an hour", map[string]string{"STRIPE_WEBHOOK_TOLERANCE": "61m"}, []string{"STRIPE_WEBHOOK_TOLERANCE"}},
		{"tolerance of days", map[string]string{"STRIPE_WEBHOOK_TOLERANCE": "72h"}, []string{"STRIPE_WEBHOOK_TOLERANCE"}},
		{"zero grace period", map[string]string{"DUNNING_GRACE_PERIOD": "0s"}, []string{"DUNNING_GRACE_PERIOD"}},
		{"negative deprovision delay", map[string]string{"DUNNING_DEPROVISION_AFTER": "-24h"}, []string{"DUNNING_DEPROVISION_AFTER"}},
		{"cache too small", map[string]string{"TEMPORAL_WORKFLOW_CACHE_SIZE": "1"}, []string{"TEMPORAL_WORKFLOW_CACHE_SIZE"}},
		{"no stop timeout", map[string]string{"WORKER_STOP_TIMEOUT": "0s"}, []string{"WORKER_STOP_TIMEOUT"}},
		{"stop timeout under a second", map[string]string{"WORKER_STOP_TIMEOUT": "500ms"}, []string{"WORKER_STOP_TIMEOUT"}},
		{"stop timeout over 10 minutes", map[string]string{"WORKER_STOP_TIMEOUT": "11m"}, []string{"WORKER_STOP_TIMEOUT"}},
		{"stop timeout not a duration", map[string]string{"WORKER_STOP_TIMEOUT": "30"}, []string{"WORKER_STOP_TIMEOUT"}},
		{"one poller", map[string]string{"TEMPORAL_WORKFLOW_TASK_POLLERS": "1"}, []string{"TEMPORAL_WORKFLOW_TASK_POLLERS"}},
		{"reconcile too often", map[string]string{"RECONCILE_INTERVAL": "1s"}, []string{"RECONCILE_INTERVAL"}},
		{"lookback beyond retention", map[string]string{"RECONCILE_LOOKBACK": "200h"}, []string{"RECONCILE_LOOKBACK"}},
		{"overlap under a minute", map[string]string{"RECONCILE_OVERLAP": "30s"}, []string{"RECONCILE_OVERLAP"}},
		{"overlap as long as the look-back", map[string]string{"RECONCILE_LOOKBACK": "1h", "RECONCILE_OVERLAP": "1h"}, []string{"RECONCILE_OVERLAP"}},
		{"zero reminder lead", map[string]string{"DUNNING_CARD_REMINDER_BEFORE": "0s"}, []string{"DUNNING_CARD_REMINDER_BEFORE"}},
		{"bad worker metrics address", map[string]string{"WORKER_METRICS_ADDR": "nope"}, []string{"WORKER_METRICS_ADDR"}},
		{"debounce over an hour", map[string]string{"DUNNING_CARD_UPDATE_DEBOUNCE": "2h"}, []string{"DUNNING_CARD_UPDATE_DEBOUNCE"}},
		{"more attempts per card than Visa allows", map[string]string{"DUNNING_MAX_ATTEMPTS_PER_CARD": "16"}, []string{"DUNNING_MAX_ATTEMPTS_PER_CARD"}},
		{"no attempts per card", map[string]string{"DUNNING_MAX_ATTEMPTS_PER_CARD": "0"}, []string{"DUNNING_MAX_ATTEMPTS_PER_CARD"}},
		{"attempts per card not a number", map[string]string{"DUNNING_MAX_ATTEMPTS_PER_CARD": "eight"}, []string{"DUNNING_MAX_ATTEMPTS_PER_CARD"}},
		{"decreasing schedule", map[string]string{"DUNNING_RETRY_SCHEDULE": "72h,24h,120h"}, []string{"DUNNING_RETRY_SCHEDULE"}},
		{"repeated schedule item", map[string]string{"DUNNING_RETRY_SCHEDULE": "24h,24h"}, []string{"DUNNING_RETRY_SCHEDULE"}},
		{"zero schedule item", map[string]string{"DUNNING_RETRY_SCHEDULE": "0s,24h"}, []string{"DUNNING_RETRY_SCHEDULE"}},
		{"negative schedule item", map[string]string{"DUNNING_RETRY_SCHEDULE": "-1h,24h"}, []string{"DUNNING_RETRY_SCHEDULE"}},
		{"empty schedule item", map[string]string{"DUNNING_RETRY_SCHEDULE": "24h,,72h"}, []string{"DUNNING_RETRY_SCHEDULE"}},
		{"schedule not durations", map[string]string{"DUNNING_RETRY_SCHEDULE": "daily"}, []string{"DUNNING_RETRY_SCHEDULE"}},
		{"retention below 7 days", map[string]string{"TEMPORAL_NAMESPACE_RETENTION": "72h"}, []string{"TEMPORAL_NAMESPACE_RETENTION"}},
		{"retention an hour short of 7 days", map[string]string{"TEMPORAL_NAMESPACE_RETENTION": "167h"}, []string{"TEMPORAL_NAMESPACE_RETENTION"}},
		{"non-URL CONTROL_PLANE_URL", map[string]string{"CONTROL_PLANE_URL": "cp.example.com", "CONTROL_PLANE_SECRET": cpSecret, "STRIPE_API_KEY": "sk_test_1"}, []string{"CONTROL_PLANE_URL"}},
		{"CONTROL_PLANE_URL with another scheme", map[string]string{"CONTROL_PLANE_URL": "ftp://cp.example.com", "CONTROL_PLANE_SECRET": cpSecret, "STRIPE_API_KEY": "sk_test_1"}, []string{"CONTROL_PLANE_URL"}},
		{"CONTROL_PLANE_URL without host", map[string]string{"CONTROL_PLANE_URL": "https://", "CONTROL_PLANE_SECRET": cpSecret, "STRIPE_API_KEY": "sk_test_1"}, []string{"CONTROL_PLANE_URL"}},
		{"CONTROL_PLANE_URL without CONTROL_PLANE_SECRET", map[string]string{"CONTROL_PLANE_URL": "https://cp.example.com", "STRIPE_API_KEY": "sk_live_1"}, []string{"CONTROL_PLANE_SECRET"}},
		{"CONTROL_PLANE_URL without STRIPE_API_KEY", map[string]string{"CONTROL_PLANE_URL": "https://cp.example.com", "CONTROL_PLANE_SECRET": cpSecret}, []string{"CONTROL_PLANE_URL"}},
		{"CONTROL_PLANE_URL with a blank STRIPE_API_KEY", map[string]string{"CONTROL_PLANE_URL": "https://cp.example.com", "CONTROL_PLANE_SECRET": cpSecret, "STRIPE_API_KEY": "  "}, []string{"CONTROL_PLANE_URL"}},
		{"publishable key as STRIPE_API_KEY", map[string]string{"STRIPE_API_KEY": "pk_live_1"}, []string{"STRIPE_API_KEY"}},
		{"STRIPE_API_KEY of no known kind", map[string]string{"STRIPE_API_KEY": "sk_123"}, []string{"STRIPE_API_KEY"}},
		{"CUSTOMER_NOTICE_URL without secret", map[string]string{"CUSTOMER_NOTICE_URL": "https://mailer.example.com"}, []string{"CUSTOMER_NOTICE_SECRET"}},
		{"non-URL ALERT_WEBHOOK_URL", map[string]string{"ALERT_WEBHOOK_URL": "not a url"}, []string{"ALERT_WEBHOOK_URL"}},
		{"non-URL STRIPE_API_BASE_URL", map[string]string{"STRIPE_API_BASE_URL": "localhost:12111"}, []string{"STRIPE_API_BASE_URL"}},
		{"non-URL AMBERFLO_BASE_URL", map[string]string{"AMBERFLO_BASE_URL": "app.amberflo.io"}, []string{"AMBERFLO_BASE_URL"}},
		{"HTTP_ADDR without port", map[string]string{"HTTP_ADDR": "8080"}, []string{"HTTP_ADDR"}},
		{"HTTP_ADDR port out of range", map[string]string{"HTTP_ADDR": ":99999"}, []string{"HTTP_ADDR"}},
		{"HTTP_ADDR port not a number", map[string]string{"HTTP_ADDR": "localhost:http"}, []string{"HTTP_ADDR"}},
		{"TEMPORAL_ADDRESS without port", map[string]string{"TEMPORAL_ADDRESS": "temporal"}, []string{"TEMPORAL_ADDRESS"}},
		{"namespace with a space", map[string]string{"TEMPORAL_NAMESPACE": "my namespace"}, []string{"TEMPORAL_NAMESPACE"}},
		{"task queue with a slash", map[string]string{"TEMPORAL_TASK_QUEUE": "dunning/v2"}, []string{"TEMPORAL_TASK_QUEUE"}},
		{"bad LOG_LEVEL", map[string]string{"LOG_LEVEL": "verbose"}, []string{"LOG_LEVEL"}},
		{"bad LOG_FORMAT", map[string]string{"LOG_FORMAT": "xml"}, []string{"LOG_FORMAT"}},
		{"body limit below 1 KiB", map[string]string{"WEBHOOK_MAX_BODY_BYTES": "1023"}, []string{"WEBHOOK_MAX_BODY_BYTES"}},
		{"body limit above 64 MiB", map[string]string{"WEBHOOK_MAX_BODY_BYTES": "67108865"}, []string{"WEBHOOK_MAX_BODY_BYTES"}},
		{"body limit zero", map[string]string{"WEBHOOK_MAX_BODY_BYTES": "0"}, []string{"WEBHOOK_MAX_BODY_BYTES"}},
		{"body limit not a number", map[string]string{"WEBHOOK_MAX_BODY_BYTES": "512KiB"}, []string{"WEBHOOK_MAX_BODY_BYTES"}},
		{"start timeout over a minute", map[string]string{"WEBHOOK_START_TIMEOUT": "2m"}, []string{"WEBHOOK_START_TIMEOUT"}},
		{"start timeout up to the write timeout", map[string]string{"WEBHOOK_START_TIMEOUT": "30s"}, []string{"WEBHOOK_START_TIMEOUT"}},
		{"start timeout past read plus start", map[string]string{"WEBHOOK_START_TIMEOUT": "16s"}, []string{"WEBHOOK_START_TIMEOUT"}},
		{"start timeout zero", map[string]string{"WEBHOOK_START_TIMEOUT": "0s"}, []string{"WEBHOOK_START_TIMEOUT"}},
		{"trusted proxy not an address", map[string]string{"WEBHOOK_TRUSTED_PROXIES": "10.0.0.0/8,proxy.internal"}, []string{"WEBHOOK_TRUSTED_PROXIES"}},
		{"trusted proxy bad CIDR", map[string]string{"WEBHOOK_TRUSTED_PROXIES": "10.0.0.0/33"}, []string{"WEBHOOK_TRUSTED_PROXIES"}},
		{"PUBLIC_URL without PORTAL_LINK_SECRET", map[string]string{"PUBLIC_URL": "https://billing.example.com", "STRIPE_API_KEY": "sk_test_1"}, []string{"PORTAL_LINK_SECRET"}},
		{"PORTAL_LINK_SECRET without PUBLIC_URL", map[string]string{"PORTAL_LINK_SECRET": portalSecret, "STRIPE_API_KEY": "sk_test_1"}, []string{"PUBLIC_URL"}},
		{"portal links without STRIPE_API_KEY", map[string]string{"PUBLIC_URL": "https://billing.example.com", "PORTAL_LINK_SECRET": portalSecret}, []string{"PUBLIC_URL"}},
		{"non-URL PUBLIC_URL", map[string]string{"PUBLIC_URL": "billing.example.com", "PORTAL_LINK_SECRET": portalSecret, "STRIPE_API_KEY": "sk_test_1"}, []string{"PUBLIC_URL"}},
		{"PUBLIC_URL with a query", map[string]string{"PUBLIC_URL": "https://billing.example.com/?x=1", "PORTAL_LINK_SECRET": portalSecret, "STRIPE_API_KEY": "sk_test_1"}, []string{"PUBLIC_URL"}},
		{"PUBLIC_URL with a fragment", map[string]string{"PUBLIC_URL": "https://billing.example.com/#top", "PORTAL_LINK_SECRET": portalSecret, "STRIPE_API_KEY": "sk_test_1"}, []string{"PUBLIC_URL"}},
		{"short PORTAL_LINK_SECRET", map[string]string{"PUBLIC_URL": "https://billing.example.com", "PORTAL_LINK_SECRET": "short-secret", "STRIPE_API_KEY": "sk_test_1"}, []string{"PORTAL_LINK_SECRET"}},
		{"short old PORTAL_LINK_SECRET", map[string]string{"PUBLIC_URL": "https://billing.example.com", "PORTAL_LINK_SECRET": portalSecret + ",old", "STRIPE_API_KEY": "sk_test_1"}, []string{"PORTAL_LINK_SECRET"}},
		{"PORTAL_LINK_TTL not a duration", map[string]string{"PORTAL_LINK_TTL": "30d"}, []string{"PORTAL_LINK_TTL"}},
		{"PORTAL_LINK_TTL under an hour", map[string]string{"PORTAL_LINK_TTL": "59m"}, []string{"PORTAL_LINK_TTL"}},
		{"PORTAL_LINK_TTL over 90 days", map[string]string{"PORTAL_LINK_TTL": "2161h"}, []string{"PORTAL_LINK_TTL"}},
		{"non-URL PORTAL_RETURN_URL", map[string]string{"PORTAL_RETURN_URL": "/settings/billing"}, []string{"PORTAL_RETURN_URL"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(env(tc.env))
			if err == nil {
				t.Fatalf("Load(%v) = nil error, want one naming %v", tc.env, tc.want)
			}
			if got := named(t, err); !slices.Equal(got, tc.want) {
				t.Errorf("Load(%v) error names %v, want %v; error:\n%v", tc.env, got, tc.want, err)
			}
		})
	}
}

func TestBoundaryValuesAccepted(t *testing.T) {
	t.Parallel()
	for _, vars := range []map[string]string{
		{"TEMPORAL_NAMESPACE_RETENTION": "168h"},
		{"WEBHOOK_MAX_BODY_BYTES": "1024"},
		{"WEBHOOK_MAX_BODY_BYTES": "67108864"},
		{"WEBHOOK_START_TIMEOUT": "15s"},
		{"STRIPE_WEBHOOK_TOLERANCE": "1h"},
		{"DUNNING_RETRY_SCHEDULE": "1s"},
		{"HTTP_ADDR": "0.0.0.0:0"},
		{"HTTP_ADDR": "[::1]:8080"},
		{"LOG_LEVEL": "Warn"},
		{"PORTAL_LINK_TTL": "1h"},
		{"PORTAL_LINK_TTL": "2160h"},
		{"PUBLIC_URL": "http://127.0.0.1:8080", "PORTAL_LINK_SECRET": strings.Repeat("s", 32), "STRIPE_API_KEY": "sk_test_1"},
	} {
		if _, err := config.Load(env(vars)); err != nil {
			t.Errorf("Load(%v): %v", vars, err)
		}
	}
}

func TestSeveralBadValuesAllReported(t *testing.T) {
	t.Parallel()
	const cpSecret, amberfloKey, webhookSecret, stripeKey = "cp-secret-93f1-0123456789abcdef0123", "af-key-5d0a", "whsec_d3adb33f", "pk_live_7c2e"
	_, err := config.Load(env(map[string]string{
		"HTTP_ADDR":                    "nonsense",
		"LOG_LEVEL":                    "loud",
		"DUNNING_RETRY_SCHEDULE":       "72h,24h",
		"TEMPORAL_NAMESPACE_RETENTION": "24h",
		"WEBHOOK_MAX_BODY_BYTES":       "10",
		"DUNNING_GRACE_PERIOD":         "soon",
		"CUSTOMER_NOTICE_URL":          "https://mailer.example.com",
		"CONTROL_PLANE_URL":            "cp",
		"CONTROL_PLANE_SECRET":         cpSecret,
		"STRIPE_API_KEY":               stripeKey,
		"CUSTOMER_NOTICE_SECRET":       "",
		"STRIPE_WEBHOOK_SECRET":        webhookSecret,
		"AMBERFLO_API_KEY":             amberfloKey,
	}))
	if err == nil {
		t.Fatal("Load with many bad values = nil error")
	}
	want := []string{
		"CONTROL_PLANE_URL", "CUSTOMER_NOTICE_SECRET", "DUNNING_GRACE_PERIOD", "DUNNING_RETRY_SCHEDULE",
		"HTTP_ADDR", "LOG_LEVEL", "STRIPE_API_KEY", "TEMPORAL_NAMESPACE_RETENTION", "WEBHOOK_MAX_BODY_BYTES",
	}
	if got := named(t, err); !slices.Equal(got, want) {
		t.Errorf("error names %v, want %v; error:\n%v", got, want, err)
	}
	for _, secret := range []string{cpSecret, amberfloKey, webhookSecret, stripeKey} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error repeats a secret:\n%v", err)
		}
	}
}

// A control plane takes resources away on what Stripe says is owed: with
// the control plane configured and Stripe not, dunning refuses to start,
// naming both variables.
func TestControlPlaneNeedsStripe(t *testing.T) {
	t.Parallel()
	cp := map[string]string{"CONTROL_PLANE_URL": "https://cp.example.com/api", "CONTROL_PLANE_SECRET": cpSecret}
	_, err := config.Load(env(cp))
	if err == nil {
		t.Fatal("Load with CONTROL_PLANE_URL and no STRIPE_API_KEY = nil error")
	}
	for _, name := range []string{"CONTROL_PLANE_URL", "STRIPE_API_KEY"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	if strings.Contains(err.Error(), cpSecret) {
		t.Errorf("error %q repeats the control-plane secret", err)
	}

	cp["STRIPE_API_KEY"] = "rk_live_51AbC"
	c, err := config.Load(env(cp))
	if err != nil {
		t.Fatalf("Load with both configured: %v", err)
	}
	if !c.Live()["control_plane"] || !c.Live()["stripe"] {
		t.Errorf("Live() = %v, want stripe and control_plane live", c.Live())
	}
	// Stripe without a control plane is fine: nothing is taken away.
	if _, err := config.Load(env(map[string]string{"STRIPE_API_KEY": "sk_test_1"})); err != nil {
		t.Errorf("Load with Stripe alone: %v", err)
	}
}

// Portal links are on when PUBLIC_URL and PORTAL_LINK_SECRET are set, and
// lead back to PUBLIC_URL/portal/ unless PORTAL_RETURN_URL says otherwise.
func TestPortalLinks(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{
		"PUBLIC_URL":         "https://billing.example.com/",
		"PORTAL_LINK_SECRET": portalSecret,
		"STRIPE_API_KEY":     "sk_live_51AbC",
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !c.PortalLinksConfigured() || !c.Live()["portal_links"] {
		t.Errorf("portal links configured %v, live %v; want both", c.PortalLinksConfigured(), c.Live()["portal_links"])
	}
	if c.PublicURL != "https://billing.example.com" || c.PortalReturnURL != "https://billing.example.com/portal/" || c.PortalLinkTTL != 720*time.Hour {
		t.Errorf("PublicURL %q, PortalReturnURL %q, PortalLinkTTL %s; want the return URL under PUBLIC_URL/portal/ and 720h",
			c.PublicURL, c.PortalReturnURL, c.PortalLinkTTL)
	}

	c, err = config.Load(env(map[string]string{"PORTAL_RETURN_URL": "https://app.example.com/billing", "STRIPE_API_KEY": "sk_test_1"}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.PortalLinksConfigured() || c.Live()["portal_links"] {
		t.Error("portal links configured without PUBLIC_URL and PORTAL_LINK_SECRET; want them dry")
	}

	// Errors never repeat a secret.
	_, err = config.Load(env(map[string]string{"PUBLIC_URL": "https://b.example.com", "PORTAL_LINK_SECRET": portalSecret + ",short-one-7f3a"}))
	if err == nil {
		t.Fatal("Load with a short secret and no Stripe key = nil error")
	}
	for _, s := range []string{portalSecret, "short-one-7f3a"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error repeats a portal-link secret:\n%v", err)
		}
	}

	// A Stripe endpoint's signing secret, which anyone with access to the
	// Stripe Dashboard reads, never signs portal links.
	_, err = config.Load(env(map[string]string{"PUBLIC_URL": "https://b.example.com", "STRIPE_API_KEY": "sk_test_1",
		"STRIPE_WEBHOOK_SECRET": "whsec_old," + portalSecret, "PORTAL_LINK_SECRET": portalSecret}))
	if err == nil || !strings.Contains(err.Error(), "PORTAL_LINK_SECRET: secret 1 of 1 must not be one of the STRIPE_WEBHOOK_SECRET values") {
		t.Errorf("portal-link secret equal to a webhook secret: %v, want a refusal naming both", err)
	} else if strings.Contains(err.Error(), portalSecret) {
		t.Errorf("error repeats the secret:\n%v", err)
	}
}

func TestStripeLivemode(t *testing.T) {
	t.Parallel()
	live, test := true, false
	for _, tc := range []struct {
		key  string
		want *bool
	}{
		{"", nil},
		{"sk_live_51AbCdEf", &live},
		{"rk_live_51AbCdEf", &live},
		{"sk_test_123", &test},
		{"rk_test_51AbCdEf", &test},
		{"pk_live_51AbCdEf", nil},
		{"sk_51AbCdEf", nil},
		{"SK_LIVE_51AbCdEf", nil},
		{"whsec_live_1", nil},
	} {
		got := config.Config{StripeAPIKey: tc.key}.StripeLivemode()
		if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
			t.Errorf("StripeLivemode(%q) = %v, want %v", tc.key, show(got), show(tc.want))
		}
	}
}

func show(b *bool) string {
	if b == nil {
		return "unknown"
	}
	return strconv.FormatBool(*b)
}

// The secrets dunning signs its own requests with are refused when short,
// or when one value serves two receivers; each refusal names the variables
// and never the value.
func TestSigningSecretsRefused(t *testing.T) {
	t.Parallel()
	live := map[string]string{
		"STRIPE_API_KEY":      "sk_test_1",
		"CONTROL_PLANE_URL":   "https://cp.example.com/api",
		"CUSTOMER_NOTICE_URL": "https://mailer.example.com/notices",
		"PUBLIC_URL":          "https://billing.example.com",
	}
	with := func(vars map[string]string) map[string]string {
		out := maps.Clone(live)
		maps.Copy(out, vars)
		return out
	}
	const webhookSecret = "whsec_0123456789abcdef0123456789abcdef"
	short := strings.Repeat("s", 31)
	cases := []struct {
		name    string
		env     map[string]string
		want    []string // variables named, one error each
		mention string   // another variable the error must name
	}{
		{"short CONTROL_PLANE_SECRET", with(map[string]string{"CONTROL_PLANE_SECRET": short, "CUSTOMER_NOTICE_SECRET": noticeSecret, "PORTAL_LINK_SECRET": portalSecret}),
			[]string{"CONTROL_PLANE_SECRET"}, "32 bytes"},
		{"short CUSTOMER_NOTICE_SECRET", with(map[string]string{"CONTROL_PLANE_SECRET": cpSecret, "CUSTOMER_NOTICE_SECRET": short, "PORTAL_LINK_SECRET": portalSecret}),
			[]string{"CUSTOMER_NOTICE_SECRET"}, "32 bytes"},
		{"short secrets without their URLs", map[string]string{"CONTROL_PLANE_SECRET": "cp", "CUSTOMER_NOTICE_SECRET": "notice"},
			[]string{"CONTROL_PLANE_SECRET", "CUSTOMER_NOTICE_SECRET"}, "32 bytes"},
		{"one secret for the control plane and notices", with(map[string]string{"CONTROL_PLANE_SECRET": cpSecret, "CUSTOMER_NOTICE_SECRET": cpSecret, "PORTAL_LINK_SECRET": portalSecret}),
			[]string{"CUSTOMER_NOTICE_SECRET"}, "CONTROL_PLANE_SECRET"},
		{"control-plane secret is the portal-link secret", with(map[string]string{"CONTROL_PLANE_SECRET": portalSecret, "CUSTOMER_NOTICE_SECRET": noticeSecret, "PORTAL_LINK_SECRET": portalSecret}),
			[]string{"CONTROL_PLANE_SECRET"}, "PORTAL_LINK_SECRET"},
		{"notice secret is the old portal-link secret", with(map[string]string{"CONTROL_PLANE_SECRET": cpSecret, "CUSTOMER_NOTICE_SECRET": oldPortalSecret, "PORTAL_LINK_SECRET": portalSecret + "," + oldPortalSecret}),
			[]string{"CUSTOMER_NOTICE_SECRET"}, "PORTAL_LINK_SECRET"},
		{"control-plane secret is a webhook secret", with(map[string]string{"CONTROL_PLANE_SECRET": webhookSecret, "CUSTOMER_NOTICE_SECRET": noticeSecret, "PORTAL_LINK_SECRET": portalSecret, "STRIPE_WEBHOOK_SECRET": "whsec_new_1," + webhookSecret}),
			[]string{"CONTROL_PLANE_SECRET"}, "STRIPE_WEBHOOK_SECRET"},
		{"notice secret is the webhook secret", with(map[string]string{"CONTROL_PLANE_SECRET": cpSecret, "CUSTOMER_NOTICE_SECRET": webhookSecret, "PORTAL_LINK_SECRET": portalSecret, "STRIPE_WEBHOOK_SECRET": webhookSecret}),
			[]string{"CUSTOMER_NOTICE_SECRET"}, "STRIPE_WEBHOOK_SECRET"},
		{"the same secret everywhere", with(map[string]string{"CONTROL_PLANE_SECRET": webhookSecret, "CUSTOMER_NOTICE_SECRET": webhookSecret, "PORTAL_LINK_SECRET": webhookSecret, "STRIPE_WEBHOOK_SECRET": webhookSecret}),
			[]string{"CONTROL_PLANE_SECRET", "CONTROL_PLANE_SECRET", "CUSTOMER_NOTICE_SECRET", "CUSTOMER_NOTICE_SECRET", "CUSTOMER_NOTICE_SECRET", "PORTAL_LINK_SECRET"}, "CONTROL_PLANE_SECRET"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(env(tc.env))
			if err == nil {
				t.Fatalf("Load = nil error, want one naming %v", tc.want)
			}
			if got := named(t, err); !slices.Equal(got, tc.want) {
				t.Errorf("error names %v, want %v; error:\n%v", got, tc.want, err)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error does not mention %s:\n%v", tc.mention, err)
			}
			for _, v := range []string{cpSecret, noticeSecret, portalSecret, oldPortalSecret, webhookSecret, short} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("error repeats a secret:\n%v", err)
				}
			}
		})
	}

	// Distinct secrets of 32 bytes and more are accepted, with their URLs
	// or without.
	for _, vars := range []map[string]string{
		with(map[string]string{"CONTROL_PLANE_SECRET": strings.Repeat("c", 32), "CUSTOMER_NOTICE_SECRET": strings.Repeat("n", 32), "PORTAL_LINK_SECRET": portalSecret, "STRIPE_WEBHOOK_SECRET": webhookSecret}),
		{"CONTROL_PLANE_SECRET": cpSecret},
		{"CUSTOMER_NOTICE_SECRET": noticeSecret, "STRIPE_WEBHOOK_SECRET": webhookSecret},
	} {
		if _, err := config.Load(env(vars)); err != nil {
			t.Errorf("Load(%v): %v", vars, err)
		}
	}
}
