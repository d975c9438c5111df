// Package config reads dunning's configuration from the environment once,
// into one typed struct with defaults, and validates it. A bad value fails
// at start with a message naming the variable.
package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/contrib/envconfig"

	"dunning/internal/portallink"
	"dunning/internal/sig"
)

// Config is everything dunning reads from the environment.
type Config struct {
	// HTTPAddr is where the webhook server listens (HTTP_ADDR).
	HTTPAddr string

	// TemporalAddress and TemporalNamespace are where the Temporal
	// connection leads (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, or the
	// profile's; 127.0.0.1:7233 and default).
	TemporalAddress   string
	TemporalNamespace string
	// Temporal is the whole connection, read as Temporal's own tools read
	// it: the profile of TEMPORAL_CONFIG_FILE named by TEMPORAL_PROFILE,
	// under TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY and
	// TEMPORAL_TLS*. TemporalClientOptions turns it into client options.
	Temporal          envconfig.ClientConfigProfile
	TemporalTaskQueue string // TEMPORAL_TASK_QUEUE
	// NamespaceRetention is how long closed workflows are kept
	// (TEMPORAL_NAMESPACE_RETENTION). Event-ID deduplication holds only
	// while the closed event workflow is retained, so it is never below
	// MinRetention.
	NamespaceRetention time.Duration

	// StripeWebhookSecrets are the signing secrets accepted on incoming
	// webhooks (STRIPE_WEBHOOK_SECRET, comma-separated during rotation).
	StripeWebhookSecrets []string
	// StripeWebhookTolerance is how old a signature's timestamp may be
	// (STRIPE_WEBHOOK_TOLERANCE); one ahead of the clock is accepted, as
	// Stripe's libraries do.
	StripeWebhookTolerance time.Duration
	StripeAPIKey           string // STRIPE_API_KEY
	StripeAPIBaseURL       string // STRIPE_API_BASE_URL; empty means Stripe's own

	// WebhookMaxBody caps a webhook request body in bytes
	// (WEBHOOK_MAX_BODY_BYTES).
	WebhookMaxBody int64
	// WebhookStartTimeout bounds the call that hands an event to Temporal
	// (WEBHOOK_START_TIMEOUT); past it the webhook answers 503.
	WebhookStartTimeout time.Duration
	// WebhookTrustedProxies are the addresses (IPs or CIDRs) whose
	// X-Forwarded-For the webhook believes (WEBHOOK_TRUSTED_PROXIES); the
	// client address it finds that way is what portal clicks are
	// rate-limited by. Empty: the peer's address.
	WebhookTrustedProxies []string

	// PublicURL is where the webhook's /portal/ is reached from outside
	// (PUBLIC_URL): the base of the links in customer notices.
	PublicURL string
	// PortalLinkSecrets sign those links (PORTAL_LINK_SECRET,
	// comma-separated during rotation, the first one signing).
	PortalLinkSecrets []string
	// PortalLinkTTL is how long a link opens the portal (PORTAL_LINK_TTL).
	PortalLinkTTL time.Duration
	// PortalReturnURL is where the Stripe Billing Portal sends the
	// customer back (PORTAL_RETURN_URL); PUBLIC_URL/portal/ unless set.
	PortalReturnURL string

	AmberfloAPIKey  string // AMBERFLO_API_KEY; empty means dry run
	AmberfloBaseURL string // AMBERFLO_BASE_URL

	ControlPlaneURL    string // CONTROL_PLANE_URL; empty means dry run
	ControlPlaneSecret string // CONTROL_PLANE_SECRET

	AlertWebhookURL string // ALERT_WEBHOOK_URL; empty means log

	CustomerNoticeURL    string // CUSTOMER_NOTICE_URL; empty means log
	CustomerNoticeSecret string // CUSTOMER_NOTICE_SECRET

	// CustomerIDMetadataKey names the Stripe customer metadata key that
	// holds the ID the product and Amberflo use for a customer
	// (CUSTOMER_ID_METADATA_KEY); without it, or when a customer lacks the
	// key, the Stripe customer ID is used.
	CustomerIDMetadataKey string

	// RetrySchedule holds the delays after the first failure at which the
	// payment is retried (DUNNING_RETRY_SCHEDULE), strictly increasing.
	RetrySchedule    []time.Duration
	GracePeriod      time.Duration // DUNNING_GRACE_PERIOD
	DeprovisionAfter time.Duration // DUNNING_DEPROVISION_AFTER
	// CardUpdateDebounce gathers a burst of card-update events into one
	// retry (DUNNING_CARD_UPDATE_DEBOUNCE).
	CardUpdateDebounce time.Duration
	// InFlightAlertAfter: a payment processing this long alerts ops
	// (DUNNING_IN_FLIGHT_ALERT_AFTER); bank debits take days.
	InFlightAlertAfter time.Duration
	// RecheckAlertAfter: a re-check before suspension or deprovisioning
	// unanswered this long alerts ops, once (DUNNING_RECHECK_ALERT_AFTER).
	RecheckAlertAfter time.Duration
	// MaxAttemptsPerCard bounds the confirms on one card in any 30 days
	// (DUNNING_MAX_ATTEMPTS_PER_CARD; Visa allows 15).
	MaxAttemptsPerCard int

	// CardReminderBefore is how long before a card expires the reminder
	// goes out (DUNNING_CARD_REMINDER_BEFORE).
	CardReminderBefore time.Duration

	// ReconcileInterval is how often Stripe's event list is compared with
	// what dunning has (RECONCILE_INTERVAL); 0 turns reconciliation off.
	ReconcileInterval time.Duration
	// ReconcileLookback is the window of each reconciliation
	// (RECONCILE_LOOKBACK), within the namespace retention.
	ReconcileLookback time.Duration
	// ReconcileOverlap is how far before the last complete run's watermark
	// a reconciliation lists again, for Stripe's clock skew and late
	// writes (RECONCILE_OVERLAP).
	ReconcileOverlap time.Duration

	// WorkerMetricsAddr is where the worker serves /metrics
	// (WORKER_METRICS_ADDR); empty means not served.
	WorkerMetricsAddr string

	// WorkflowCacheSize bounds how many workflows a worker keeps in memory
	// (TEMPORAL_WORKFLOW_CACHE_SIZE); the others are replayed from their
	// history when they next wake. It bounds a worker's memory when many
	// recoveries wait on long timers.
	WorkflowCacheSize int
	// WorkerStopTimeout is how long a stopping worker (SIGTERM, Ctrl-C)
	// lets the activities it runs finish before it cancels them
	// (WORKER_STOP_TIMEOUT). A container's stop grace period must exceed
	// it, or the worker is killed mid-call.
	WorkerStopTimeout time.Duration
	// WorkflowTaskPollers is how many long polls a worker keeps open for
	// workflow tasks (TEMPORAL_WORKFLOW_TASK_POLLERS). With the first
	// failure's work inside one workflow task, tasks wait for a poll
	// rather than for activities: 8 holds the latency at 20 new
	// recoveries a second where the SDK's 2 did not (docs/benchmarks.md).
	WorkflowTaskPollers int

	LogLevel  string // LOG_LEVEL: debug, info, warn, error
	LogFormat string // LOG_FORMAT: text or json

	// RequireLive names the integrations (as Live names them) that must
	// not run dry (DUNNING_REQUIRE_LIVE, a comma list or all): a process
	// that uses one of them refuses to start while it is not configured.
	// Empty: none.
	RequireLive []string
}

// The integrations, as Live, DUNNING_REQUIRE_LIVE and the startup log name
// them.
const (
	IntegrationStripe         = "stripe"
	IntegrationAmberflo       = "amberflo"
	IntegrationControlPlane   = "control_plane"
	IntegrationOpsAlerts      = "ops_alerts"
	IntegrationCustomerNotice = "customer_notice"
	IntegrationPortalLinks    = "portal_links"
)

// integrationSettings are the variables that make each integration live.
var integrationSettings = map[string][]string{
	IntegrationStripe:         {"STRIPE_API_KEY"},
	IntegrationAmberflo:       {"AMBERFLO_API_KEY"},
	IntegrationControlPlane:   {"CONTROL_PLANE_URL", "CONTROL_PLANE_SECRET"},
	IntegrationOpsAlerts:      {"ALERT_WEBHOOK_URL"},
	IntegrationCustomerNotice: {"CUSTOMER_NOTICE_URL", "CUSTOMER_NOTICE_SECRET"},
	IntegrationPortalLinks:    {"PUBLIC_URL", "PORTAL_LINK_SECRET"},
}

// MaxWebhookTolerance bounds STRIPE_WEBHOOK_TOLERANCE: how long a
// captured, validly signed delivery could be replayed.
const MaxWebhookTolerance = time.Hour

// The webhook server's read and write timeouts. WEBHOOK_START_TIMEOUT is
// kept within their difference, so that the webhook always gets to answer.
const (
	WebhookReadTimeout  = 15 * time.Second
	WebhookWriteTimeout = 30 * time.Second
)

// DefaultWorkerStopTimeout is how long a stopping worker lets running
// activities finish, unless WORKER_STOP_TIMEOUT says otherwise: as long
// as the usual start-to-close timeout of dunning's activities, so that a
// call under way to Stripe or the control plane ends with its answer
// recorded instead of being cancelled and tried again by another worker.
// An activity still running at the end is cancelled, and retried
// elsewhere under its idempotency key.
const (
	DefaultWorkerStopTimeout = 30 * time.Second
	MaxWorkerStopTimeout     = 10 * time.Minute
)

// MinRetention is the shortest namespace retention dunning accepts: Stripe
// retries a delivery for up to 3 days, and duplicates must still meet the
// closed event workflow then.
const MinRetention = 7 * 24 * time.Hour

// Live reports which integrations are configured; the others run dry.
func (c Config) Live() map[string]bool {
	return map[string]bool{
		IntegrationStripe:         c.StripeAPIKey != "",
		IntegrationAmberflo:       c.AmberfloAPIKey != "",
		IntegrationControlPlane:   c.ControlPlaneURL != "",
		IntegrationOpsAlerts:      c.AlertWebhookURL != "",
		IntegrationCustomerNotice: c.CustomerNoticeURL != "",
		IntegrationPortalLinks:    c.PortalLinksConfigured(),
	}
}

// Missing lists the unset variables that would make integration live.
func (c Config) Missing(integration string) []string {
	set := map[string]bool{
		"STRIPE_API_KEY": c.StripeAPIKey != "", "AMBERFLO_API_KEY": c.AmberfloAPIKey != "",
		"CONTROL_PLANE_URL": c.ControlPlaneURL != "", "CONTROL_PLANE_SECRET": c.ControlPlaneSecret != "",
		"ALERT_WEBHOOK_URL": c.AlertWebhookURL != "", "CUSTOMER_NOTICE_URL": c.CustomerNoticeURL != "",
		"CUSTOMER_NOTICE_SECRET": c.CustomerNoticeSecret != "", "PUBLIC_URL": c.PublicURL != "",
		"PORTAL_LINK_SECRET": len(c.PortalLinkSecrets) > 0,
	}
	var out []string
	for _, v := range integrationSettings[integration] {
		if !set[v] {
			out = append(out, v)
		}
	}
	return out
}

// RequireLiveFor reports an error naming DUNNING_REQUIRE_LIVE when an
// integration it lists, of those the process (part) uses, would run dry;
// the error names the settings missing for each.
func (c Config) RequireLiveFor(part string, uses ...string) error {
	live := c.Live()
	var dry []string
	for _, name := range c.RequireLive {
		if slices.Contains(uses, name) && !live[name] {
			dry = append(dry, fmt.Sprintf("%s (set %s)", name, strings.Join(c.Missing(name), ", ")))
		}
	}
	if len(dry) == 0 {
		return nil
	}
	return fmt.Errorf("DUNNING_REQUIRE_LIVE: the %s would run %s dry; configure it or take it off DUNNING_REQUIRE_LIVE",
		part, strings.Join(dry, ", "))
}

// PortalLinksConfigured reports whether notices carry the one-click link
// to update a payment method, and the webhook opens it: PUBLIC_URL and
// PORTAL_LINK_SECRET are set.
func (c Config) PortalLinksConfigured() bool {
	return c.PublicURL != "" && len(c.PortalLinkSecrets) > 0
}

// Load reads the configuration through getenv (os.Getenv in production)
// and validates it. Every problem found is reported, each naming its
// variable.
func Load(getenv func(string) string) (Config, error) {
	return load(getenv, true)
}

// LoadLocal is Load without the Temporal profile file: for `dunning dev`,
// which connects to the dev server it starts itself, whatever the user's
// Temporal CLI is set up for.
func LoadLocal(getenv func(string) string) (Config, error) {
	return load(getenv, false)
}

func load(getenv func(string) string, temporalFile bool) (Config, error) {
	r := reader{getenv: getenv}
	c := Config{
		HTTPAddr:               r.addr("HTTP_ADDR", ":8080"),
		TemporalTaskQueue:      r.name("TEMPORAL_TASK_QUEUE", "dunning"),
		NamespaceRetention:     r.duration("TEMPORAL_NAMESPACE_RETENTION", MinRetention),
		StripeWebhookSecrets:   r.list("STRIPE_WEBHOOK_SECRET"),
		StripeWebhookTolerance: r.duration("STRIPE_WEBHOOK_TOLERANCE", 5*time.Minute),
		StripeAPIKey:           r.str("STRIPE_API_KEY", ""),
		StripeAPIBaseURL:       r.url("STRIPE_API_BASE_URL", ""),
		WebhookMaxBody:         r.bytes("WEBHOOK_MAX_BODY_BYTES", 512<<10),
		WebhookStartTimeout:    r.duration("WEBHOOK_START_TIMEOUT", 5*time.Second),
		WebhookTrustedProxies:  r.networks("WEBHOOK_TRUSTED_PROXIES"),
		PublicURL:              r.url("PUBLIC_URL", ""),
		PortalLinkSecrets:      r.list("PORTAL_LINK_SECRET"),
		PortalLinkTTL:          r.duration("PORTAL_LINK_TTL", portallink.DefaultTTL),
		PortalReturnURL:        r.url("PORTAL_RETURN_URL", ""),
		AmberfloAPIKey:         r.str("AMBERFLO_API_KEY", ""),
		AmberfloBaseURL:        r.url("AMBERFLO_BASE_URL", "https://app.amberflo.io"),
		ControlPlaneURL:        r.url("CONTROL_PLANE_URL", ""),
		ControlPlaneSecret:     r.str("CONTROL_PLANE_SECRET", ""),
		AlertWebhookURL:        r.url("ALERT_WEBHOOK_URL", ""),
		CustomerNoticeURL:      r.url("CUSTOMER_NOTICE_URL", ""),
		CustomerNoticeSecret:   r.str("CUSTOMER_NOTICE_SECRET", ""),
		CustomerIDMetadataKey:  r.str("CUSTOMER_ID_METADATA_KEY", ""),
		RetrySchedule:          r.schedule("DUNNING_RETRY_SCHEDULE", "24h,72h,120h"),
		GracePeriod:            r.duration("DUNNING_GRACE_PERIOD", 168*time.Hour),
		DeprovisionAfter:       r.duration("DUNNING_DEPROVISION_AFTER", 336*time.Hour),
		CardUpdateDebounce:     r.duration("DUNNING_CARD_UPDATE_DEBOUNCE", time.Second),
		InFlightAlertAfter:     r.duration("DUNNING_IN_FLIGHT_ALERT_AFTER", 7*24*time.Hour),
		RecheckAlertAfter:      r.duration("DUNNING_RECHECK_ALERT_AFTER", time.Hour),
		MaxAttemptsPerCard:     int(r.whole("DUNNING_MAX_ATTEMPTS_PER_CARD", 8)),
		CardReminderBefore:     r.duration("DUNNING_CARD_REMINDER_BEFORE", 7*24*time.Hour),
		ReconcileInterval:      r.duration("RECONCILE_INTERVAL", 15*time.Minute),
		ReconcileLookback:      r.duration("RECONCILE_LOOKBACK", 72*time.Hour),
		ReconcileOverlap:       r.duration("RECONCILE_OVERLAP", 10*time.Minute),
		WorkerMetricsAddr:      r.optionalAddr("WORKER_METRICS_ADDR"),
		WorkflowCacheSize:      int(r.bytes("TEMPORAL_WORKFLOW_CACHE_SIZE", 2000)),
		WorkerStopTimeout:      r.duration("WORKER_STOP_TIMEOUT", DefaultWorkerStopTimeout),
		WorkflowTaskPollers:    int(r.whole("TEMPORAL_WORKFLOW_TASK_POLLERS", 8)),
		LogLevel:               r.oneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:              r.oneOf("LOG_FORMAT", "text", "text", "json"),
		RequireLive:            r.integrations("DUNNING_REQUIRE_LIVE"),
	}
	r.temporal(&c, temporalFile)

	if c.NamespaceRetention < MinRetention {
		r.fail("TEMPORAL_NAMESPACE_RETENTION", "must be at least %s so that redelivered events are still recognised", MinRetention)
	}
	if c.StripeWebhookTolerance <= 0 || c.StripeWebhookTolerance > MaxWebhookTolerance {
		// A longer window lets a captured delivery be replayed for longer.
		r.fail("STRIPE_WEBHOOK_TOLERANCE", "must be positive and at most %s", MaxWebhookTolerance)
	}
	if c.WebhookMaxBody < 1<<10 || c.WebhookMaxBody > 64<<20 {
		r.fail("WEBHOOK_MAX_BODY_BYTES", "must be between 1 KiB and 64 MiB")
	}
	if max := WebhookWriteTimeout - WebhookReadTimeout; c.WebhookStartTimeout <= 0 || c.WebhookStartTimeout > max {
		r.fail("WEBHOOK_START_TIMEOUT", "must be positive and at most %s, so that the answer (503) is written within the webhook server's %s write timeout after up to %s of reading the request",
			max, WebhookWriteTimeout, WebhookReadTimeout)
	}
	if c.ControlPlaneURL != "" && c.ControlPlaneSecret == "" {
		r.fail("CONTROL_PLANE_SECRET", "is required when CONTROL_PLANE_URL is set: control-plane calls are signed")
	}
	if c.ControlPlaneURL != "" && c.StripeAPIKey == "" {
		// Suspension and deprovisioning are decided on what Stripe says
		// is owed; without Stripe they would be decided on nothing.
		r.fail("CONTROL_PLANE_URL", "is set but STRIPE_API_KEY is not: the control plane suspends and deprovisions only on what Stripe says is owed; set STRIPE_API_KEY or unset CONTROL_PLANE_URL")
	}
	if c.StripeAPIKey != "" && c.StripeLivemode() == nil {
		// The key itself is not repeated.
		r.fail("STRIPE_API_KEY", "is not a Stripe secret or restricted key (sk_live_…, sk_test_…, rk_live_…, rk_test_…)")
	}
	r.portalLinks(&c)
	if c.CustomerNoticeURL != "" && c.CustomerNoticeSecret == "" {
		r.fail("CUSTOMER_NOTICE_SECRET", "is required when CUSTOMER_NOTICE_URL is set: notices are signed")
	}
	r.signingSecrets(c)
	if c.GracePeriod <= 0 {
		r.fail("DUNNING_GRACE_PERIOD", "must be positive")
	}
	if c.DeprovisionAfter <= 0 {
		r.fail("DUNNING_DEPROVISION_AFTER", "must be positive")
	}
	if c.InFlightAlertAfter <= 0 {
		r.fail("DUNNING_IN_FLIGHT_ALERT_AFTER", "must be positive")
	}
	if c.MaxAttemptsPerCard < 1 || c.MaxAttemptsPerCard > 15 {
		r.fail("DUNNING_MAX_ATTEMPTS_PER_CARD", "must be between 1 and 15 (Visa allows at most 15 reattempts in 30 days)")
	}
	if c.RecheckAlertAfter <= 0 {
		r.fail("DUNNING_RECHECK_ALERT_AFTER", "must be positive")
	}
	if c.CardUpdateDebounce < 0 || c.CardUpdateDebounce > time.Hour {
		r.fail("DUNNING_CARD_UPDATE_DEBOUNCE", "must be between 0 and 1h")
	}
	if c.WorkflowCacheSize < 10 || c.WorkflowCacheSize > 1000000 {
		r.fail("TEMPORAL_WORKFLOW_CACHE_SIZE", "must be between 10 and 1000000 workflows")
	}
	if c.WorkerStopTimeout < time.Second || c.WorkerStopTimeout > MaxWorkerStopTimeout {
		r.fail("WORKER_STOP_TIMEOUT", "must be between 1s and %s", MaxWorkerStopTimeout)
	}
	if c.WorkflowTaskPollers < 2 || c.WorkflowTaskPollers > 64 {
		r.fail("TEMPORAL_WORKFLOW_TASK_POLLERS", "must be between 2 and 64")
	}
	if c.CardReminderBefore <= 0 || c.CardReminderBefore > 60*24*time.Hour {
		r.fail("DUNNING_CARD_REMINDER_BEFORE", "must be positive and at most 1440h")
	}
	if c.ReconcileInterval < 0 || (c.ReconcileInterval > 0 && c.ReconcileInterval < 10*time.Second) {
		r.fail("RECONCILE_INTERVAL", "must be 0 (off) or at least 10s")
	}
	// (A retention too short is reported on its own.)
	if c.ReconcileLookback <= 0 || (c.NamespaceRetention >= MinRetention && c.ReconcileLookback > c.NamespaceRetention) {
		r.fail("RECONCILE_LOOKBACK", "must be positive and within TEMPORAL_NAMESPACE_RETENTION (%s)", c.NamespaceRetention)
	}
	if c.ReconcileOverlap < time.Minute || (c.ReconcileLookback > 0 && c.ReconcileOverlap >= c.ReconcileLookback) {
		r.fail("RECONCILE_OVERLAP", "must be at least 1m and shorter than RECONCILE_LOOKBACK (%s)", c.ReconcileLookback)
	}
	return c, errors.Join(r.errs...)
}

// StripeLivemode is the mode of the Stripe API key: true for a live key
// (sk_live_, rk_live_), false for a test key (sk_test_, rk_test_), nil when
// there is no key (dry run) or its mode cannot be told. Events of the other
// mode are not acted on.
func (c Config) StripeLivemode() *bool {
	var live bool
	switch {
	case strings.HasPrefix(c.StripeAPIKey, "sk_live_"), strings.HasPrefix(c.StripeAPIKey, "rk_live_"):
		live = true
	case strings.HasPrefix(c.StripeAPIKey, "sk_test_"), strings.HasPrefix(c.StripeAPIKey, "rk_test_"):
		live = false
	default:
		return nil
	}
	return &live
}

// RequireWebhookSecret reports an error naming STRIPE_WEBHOOK_SECRET when
// no secret is configured. Only the webhook server needs one, so Load does
// not insist on it.
func (c Config) RequireWebhookSecret() error {
	if len(c.StripeWebhookSecrets) == 0 {
		return errors.New("STRIPE_WEBHOOK_SECRET: required by the webhook server (the endpoint's signing secret, whsec_…)")
	}
	return nil
}

// portalLinks checks the portal-link settings together and fills in the
// return URL.
func (r *reader) portalLinks(c *Config) {
	if strings.ContainsAny(c.PublicURL, "?#") {
		// Links are PUBLIC_URL/portal/{token}.
		r.fail("PUBLIC_URL", "must not have a query or a fragment")
	}
	for i, s := range c.PortalLinkSecrets {
		if len(s) < portallink.MinSecretLen {
			// Which one, not what it is.
			r.fail("PORTAL_LINK_SECRET", "secret %d of %d is shorter than %d bytes (make one with `openssl rand -hex 32`)", i+1, len(c.PortalLinkSecrets), portallink.MinSecretLen)
		}
		if slices.Contains(c.StripeWebhookSecrets, s) {
			// Whoever reads the endpoint's secret in Stripe's Dashboard
			// could sign links for any customer.
			r.fail("PORTAL_LINK_SECRET", "secret %d of %d must not be one of the STRIPE_WEBHOOK_SECRET values: portal links get a secret of their own", i+1, len(c.PortalLinkSecrets))
		}
	}
	if c.PortalLinkTTL < time.Hour || c.PortalLinkTTL > portallink.MaxTTL {
		r.fail("PORTAL_LINK_TTL", "must be between 1h and %s", portallink.MaxTTL)
	}
	switch {
	case c.PublicURL != "" && len(c.PortalLinkSecrets) == 0:
		r.fail("PORTAL_LINK_SECRET", "is required when PUBLIC_URL is set: portal links are signed")
	case c.PublicURL == "" && len(c.PortalLinkSecrets) > 0:
		r.fail("PUBLIC_URL", "is required when PORTAL_LINK_SECRET is set: it is where portal links lead")
	case c.PortalLinksConfigured() && c.StripeAPIKey == "":
		r.fail("PUBLIC_URL", "is set but STRIPE_API_KEY is not: a portal link opens a Stripe Billing Portal session; set STRIPE_API_KEY or unset PUBLIC_URL and PORTAL_LINK_SECRET")
	}
	if c.PortalReturnURL == "" && c.PublicURL != "" {
		c.PortalReturnURL = c.PublicURL + portallink.PathPrefix
	}
}

// signingSecrets checks the secrets dunning signs its own requests with:
// each long enough, and each its own, so that whoever holds one secret (a
// mailer, the control plane, a Stripe endpoint, a portal link's checker)
// cannot sign for another receiver. The values are never repeated.
func (r *reader) signingSecrets(c Config) {
	signing := []struct{ name, value string }{
		{"CONTROL_PLANE_SECRET", c.ControlPlaneSecret},
		{"CUSTOMER_NOTICE_SECRET", c.CustomerNoticeSecret},
	}
	for _, s := range signing {
		if s.value == "" {
			continue
		}
		if len(s.value) < sig.MinSecretLen {
			r.fail(s.name, "is shorter than %d bytes (make one with `openssl rand -hex 32`)", sig.MinSecretLen)
		}
		if slices.Contains(c.StripeWebhookSecrets, s.value) {
			r.fail(s.name, "must not be one of the STRIPE_WEBHOOK_SECRET values: every receiver gets a secret of its own")
		}
		if slices.Contains(c.PortalLinkSecrets, s.value) {
			r.fail(s.name, "must not be one of the PORTAL_LINK_SECRET values: every receiver gets a secret of its own")
		}
	}
	if c.ControlPlaneSecret != "" && c.ControlPlaneSecret == c.CustomerNoticeSecret {
		r.fail("CUSTOMER_NOTICE_SECRET", "must differ from CONTROL_PLANE_SECRET: the mailer must not be able to sign control-plane calls")
	}
}

type reader struct {
	getenv func(string) string
	errs   []error
}

func (r *reader) fail(name, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
}

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) name(name, def string) string {
	v := r.str(name, def)
	if strings.ContainsAny(v, " \t\n/") {
		r.fail(name, "%q must not contain spaces or slashes", v)
	}
	return v
}

func (r *reader) addr(name, def string) string {
	v := r.str(name, def)
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		r.fail(name, "%q is not host:port", v)
		return v
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		r.fail(name, "%q has no valid port", v)
	}
	return v
}

func (r *reader) optionalAddr(name string) string {
	if r.str(name, "") == "" {
		return ""
	}
	return r.addr(name, "")
}

func (r *reader) url(name, def string) string {
	v := r.str(name, def)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The value is not repeated: webhook URLs often carry a token.
		r.fail(name, "is not an absolute http(s) URL")
		return v
	}
	return strings.TrimRight(v, "/")
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(name, "%q is not a duration such as 90s, 15m or 168h", v)
		return def
	}
	return d
}

func (r *reader) whole(name string, def int64) int64 {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.fail(name, "%q is not a whole number", v)
		return def
	}
	return n
}

func (r *reader) bytes(name string, def int64) int64 {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.fail(name, "%q is not a whole number of bytes", v)
		return def
	}
	return n
}

func (r *reader) list(name string) []string {
	var out []string
	for _, s := range strings.Split(r.getenv(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// networks reads a comma-separated list of IP addresses and CIDRs.
func (r *reader) networks(name string) []string {
	out := r.list(name)
	for _, s := range out {
		if _, _, err := net.ParseCIDR(s); err != nil && net.ParseIP(s) == nil {
			r.fail(name, "%q is not an IP address or a CIDR such as 10.0.0.0/8", s)
		}
	}
	return out
}

func (r *reader) schedule(name, def string) []time.Duration {
	v := r.str(name, def)
	var out []time.Duration
	for _, s := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			r.fail(name, "%q is not a comma-separated list of durations such as 24h,72h,120h", v)
			return nil
		}
		if d <= 0 || (len(out) > 0 && d <= out[len(out)-1]) {
			r.fail(name, "%q must be positive delays after the first failure, each later than the one before", v)
			return nil
		}
		out = append(out, d)
	}
	return out
}

// integrations reads a comma list of integration names, or all, or none.
func (r *reader) integrations(name string) []string {
	known := slices.Sorted(maps.Keys(integrationSettings))
	var out []string
	for _, v := range r.list(name) {
		switch v = strings.ToLower(v); {
		case v == "all":
			out = append(out, known...)
		case v == "none":
		case slices.Contains(known, v):
			out = append(out, v)
		default:
			r.fail(name, "%q is not an integration: use all, none or a comma list of %s", v, strings.Join(known, ", "))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (r *reader) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(r.str(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.fail(name, "%q is not one of %s", v, strings.Join(allowed, ", "))
	return def
}
