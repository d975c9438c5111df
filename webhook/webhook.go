// Package webhook is dunning's front door for Stripe: it verifies a
// delivery, drops the event types dunning does not handle, and starts the
// event's workflow in Temporal with the event ID as workflow ID. It answers
// 200 only once Temporal has the event, and 503 when Temporal cannot be
// reached, so that Stripe delivers again. A verified event is never
// answered 4xx: one that cannot be read is started all the same, marked,
// for its workflow to alert ops. It holds no business logic.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"dunning/config"
	"dunning/internal/portallink"
	"dunning/internal/sig"
	"dunning/internal/stripeevent"
	"dunning/workflows"
)

// Paths served.
const (
	PathStripe  = "/webhooks/stripe"
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
	PathMetrics = "/metrics"
	// PathPortal is the customer's one-click link, GET /portal/{token}.
	PathPortal = portallink.PathPrefix
)

// SignatureHeader is the header Stripe signs its deliveries in.
const SignatureHeader = "Stripe-Signature"

// Temporal is the part of the Temporal client the webhook uses.
type Temporal interface {
	ExecuteWorkflow(ctx context.Context, options client.StartWorkflowOptions, workflow any, args ...any) (client.WorkflowRun, error)
	CheckHealth(ctx context.Context, request *client.CheckHealthRequest) (*client.CheckHealthResponse, error)
}

// Options configure the handler.
type Options struct {
	Secrets      []string      // accepted signing secrets
	Tolerance    time.Duration // allowed signature age, either way
	MaxBody      int64         // bytes
	StartTimeout time.Duration // bound on the call to Temporal
	TaskQueue    string
	Logger       *slog.Logger
	Registry     *prometheus.Registry // metrics are registered here and served at /metrics
	Now          func() time.Time     // time.Now when nil
	// Observe, when set, sees every verified event of a handled type
	// before it is started; the local stack keeps its Stripe stand-in in
	// step with it. Nil in production.
	Observe func(workflows.StripeEvent)
	// ExpectedLivemode is the mode of dunning's Stripe API key (config's
	// StripeLivemode): events are marked with it, and one of the other
	// mode is started only for its workflow to alert ops. Nil (no key)
	// marks nothing.
	ExpectedLivemode *bool
	// Portal serves the customer's one-click link, GET /portal/{token};
	// nil (no PUBLIC_URL and PORTAL_LINK_SECRET) answers every link with
	// a "not configured" page.
	Portal *Portal
	// TrustedProxies are the addresses (IPs, CIDRs) whose X-Forwarded-For
	// is believed for the client's address (WEBHOOK_TRUSTED_PROXIES);
	// none means the peer's address.
	TrustedProxies []string
}

type handler struct {
	temporal Temporal
	opts     Options
	metrics  *Metrics
	log      *slog.Logger

	perClient, perCustomer *limiter
}

// NewHandler returns the webhook's HTTP handler.
func NewHandler(t Temporal, opts Options) (http.Handler, error) {
	if len(opts.Secrets) == 0 || slices.Contains(opts.Secrets, "") {
		return nil, errors.New("webhook: a signing secret is missing or empty")
	}
	if opts.Tolerance <= 0 || opts.MaxBody <= 0 || opts.StartTimeout <= 0 || opts.TaskQueue == "" {
		return nil, errors.New("webhook: tolerance, body limit, start timeout and task queue are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	h := &handler{temporal: t, opts: opts, metrics: NewMetrics(opts.Registry), log: opts.Logger}
	if p := opts.Portal; p != nil {
		copied := *p
		if err := copied.complete(); err != nil {
			return nil, err
		}
		h.opts.Portal = &copied
		h.perClient = newLimiter(copied.PerClient, maxLimiterKeys)
		h.perCustomer = newLimiter(copied.PerCustomer, maxLimiterKeys)
	}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// Forwarded-for headers are trusted only from the configured proxies;
	// without any, logs and rate limits see the peer address.
	if err := r.SetTrustedProxies(opts.TrustedProxies); err != nil {
		return nil, fmt.Errorf("webhook: trusted proxies: %w", err)
	}
	r.HandleMethodNotAllowed = true
	r.Use(gin.CustomRecoveryWithWriter(io.Discard, h.recovered))
	r.NoMethod(func(c *gin.Context) {
		if c.Request.URL.Path == PathStripe {
			h.metrics.requests.WithLabelValues(OutcomeMethodNotAllowed).Inc()
		}
		c.JSON(http.StatusMethodNotAllowed, gin.H{"error": "method not allowed"})
	})
	r.NoRoute(func(c *gin.Context) { c.JSON(http.StatusNotFound, gin.H{"error": "not found"}) })
	r.POST(PathStripe, h.stripe)
	r.GET(PathHealthz, func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET(PathReadyz, h.ready)
	r.GET(PathMetrics, gin.WrapH(promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{})))
	r.GET(routePortal, h.portal)
	return r, nil
}

func (h *handler) recovered(c *gin.Context, err any) {
	path := c.Request.URL.Path
	if strings.HasPrefix(path, portallink.PathPrefix) {
		path = portallink.PathPrefix + "…" // the token is not logged
	}
	h.log.Error("webhook handler panicked", "path", path, "panic", fmt.Sprint(err))
	c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": "internal error"})
}

func (h *handler) answer(c *gin.Context, status int, outcome string, body gin.H) {
	h.metrics.requests.WithLabelValues(outcome).Inc()
	body["status"] = outcome
	c.JSON(status, body)
}

func (h *handler) stripe(c *gin.Context) {
	req := c.Request
	if !isJSON(req.Header.Get("Content-Type")) {
		h.answer(c, http.StatusUnsupportedMediaType, OutcomeBadContentType, gin.H{"error": "content type must be application/json"})
		return
	}
	if req.ContentLength > h.opts.MaxBody {
		h.answer(c, http.StatusRequestEntityTooLarge, OutcomeTooLarge, gin.H{"error": "body too large"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, req.Body, h.opts.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.answer(c, http.StatusRequestEntityTooLarge, OutcomeTooLarge, gin.H{"error": "body too large"})
			return
		}
		h.answer(c, http.StatusBadRequest, OutcomeBadEvent, gin.H{"error": "could not read body"})
		return
	}

	if err := sig.Verify(req.Header.Get(SignatureHeader), body, h.opts.Secrets, h.opts.Tolerance, h.opts.Now()); err != nil {
		reason := err.Error()
		h.metrics.verifyFailures.WithLabelValues(reason).Inc()
		h.log.Warn("stripe webhook rejected", "reason", reason, "remote", c.ClientIP())
		h.answer(c, http.StatusBadRequest, OutcomeBadSignature, gin.H{"error": reason})
		return
	}

	// The signature says Stripe sent it: from here on nothing is answered
	// 4xx, which would only have Stripe retry for days and then disable the
	// endpoint. What cannot be read reaches ops instead.
	ev, err := stripeevent.Read(body, h.opts.ExpectedLivemode)
	if _, handled := workflows.RouteOf(ev.Type); !handled && ev.Type != "" {
		h.metrics.ignored.WithLabelValues(ev.Type).Inc()
		h.log.Info("stripe event ignored", "event_id", ev.ID, "type", ev.Type)
		h.answer(c, http.StatusOK, OutcomeIgnored, gin.H{"event_id": ev.ID})
		return
	}
	if err != nil || ev.Unreadable != "" {
		typ := ev.Type
		if typ == "" {
			typ = unknownType
		}
		h.metrics.unreadable.WithLabelValues(typ).Inc()
	}
	if err != nil {
		// No usable event ID, so no workflow: this line and the counter
		// are all that is left of the event.
		h.log.Error("stripe event unreadable and without a usable event ID; not handled", "reason", err.Error(),
			"type", ev.Type, "created", ev.Created, "api_version", ev.APIVersion, "bytes", len(body))
		h.answer(c, http.StatusOK, OutcomeUnreadableNoID, gin.H{"reason": err.Error()})
		return
	}
	wrongMode := workflows.WrongMode(ev)
	if h.opts.Observe != nil && ev.Unreadable == "" && !wrongMode {
		h.opts.Observe(ev)
	}

	// The start is not tied to the caller's connection: once begun, it
	// runs to an answer from Temporal or to its own deadline.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), h.opts.StartTimeout)
	defer cancel()
	began := time.Now()
	duplicate, err := Start(ctx, h.temporal, ev, h.opts.TaskQueue)
	elapsed := time.Since(began).Seconds()
	switch {
	case err != nil:
		h.metrics.startLatency.WithLabelValues("error").Observe(elapsed)
		h.log.Error("stripe event not handed to temporal; stripe will deliver again", "event_id", ev.ID, "type", ev.Type, "error", err)
		c.Header("Retry-After", "30")
		h.answer(c, http.StatusServiceUnavailable, OutcomeTemporalDown, gin.H{"error": "temporal unavailable, retry later"})
	case duplicate:
		h.metrics.startLatency.WithLabelValues("duplicate").Observe(elapsed)
		h.metrics.duplicates.Inc()
		h.log.Info("stripe event already taken", "event_id", ev.ID, "type", ev.Type)
		h.answer(c, http.StatusOK, OutcomeDuplicate, gin.H{"event_id": ev.ID, "workflow_id": workflows.EventWorkflowID(ev.ID)})
	case ev.Unreadable != "":
		h.metrics.startLatency.WithLabelValues("started").Observe(elapsed)
		h.log.Warn("stripe event unreadable; started for its workflow to alert ops", "event_id", ev.ID, "type", ev.Type, "reason", ev.Unreadable)
		h.answer(c, http.StatusOK, OutcomeUnreadable, gin.H{"event_id": ev.ID, "workflow_id": workflows.EventWorkflowID(ev.ID), "reason": ev.Unreadable})
	case wrongMode:
		h.metrics.startLatency.WithLabelValues("started").Observe(elapsed)
		h.log.Warn("stripe event of the other mode than the API key; started for its workflow to alert ops", "event_id", ev.ID, "type", ev.Type, "livemode", ev.Livemode)
		h.answer(c, http.StatusOK, OutcomeWrongMode, gin.H{"event_id": ev.ID, "workflow_id": workflows.EventWorkflowID(ev.ID)})
	default:
		h.metrics.startLatency.WithLabelValues("started").Observe(elapsed)
		h.log.Info("stripe event started", "event_id", ev.ID, "type", ev.Type, "customer", ev.CustomerID)
		h.answer(c, http.StatusOK, OutcomeStarted, gin.H{"event_id": ev.ID, "workflow_id": workflows.EventWorkflowID(ev.ID)})
	}
}

// Starter is the part of the Temporal client that starts workflows.
type Starter interface {
	ExecuteWorkflow(ctx context.Context, options client.StartWorkflowOptions, workflow any, args ...any) (client.WorkflowRun, error)
}

// Start hands a verified event to Temporal: it starts the event's
// workflow with StartOptions, or reports a duplicate when a workflow with
// the event's ID exists (running, or closed and still retained). The
// webhook and reconciliation both start events through it, so that either
// finds an event the other took.
func Start(ctx context.Context, t Starter, ev workflows.StripeEvent, taskQueue string) (duplicate bool, err error) {
	_, err = t.ExecuteWorkflow(ctx, StartOptions(ev, taskQueue), workflows.StripeEventWorkflowName,
		workflows.StripeEventInput{Event: ev})
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return true, nil
	}
	return false, err
}

// StartOptions are the options an event's workflow is started with, by the
// webhook and by anything else that hands events to dunning.
func StartOptions(ev workflows.StripeEvent, taskQueue string) client.StartWorkflowOptions {
	var attrs []temporal.SearchAttributeUpdate
	if ev.Type != "" {
		attrs = append(attrs, workflows.StripeEventTypeKey.ValueSet(ev.Type))
	}
	summary := fmt.Sprintf("Stripe %s (%s)", ev.Type, ev.ObjectID)
	if ev.CustomerID != "" {
		attrs = append(attrs, workflows.StripeCustomerIDKey.ValueSet(ev.CustomerID))
		summary = fmt.Sprintf("Stripe %s for %s (%s)", ev.Type, ev.CustomerID, ev.ObjectID)
	}
	if ev.Unreadable != "" {
		summary = "Unreadable Stripe event " + ev.ID
		if ev.Type != "" {
			summary += " (" + ev.Type + ")"
		}
	}
	return client.StartWorkflowOptions{
		ID:                    workflows.EventWorkflowID(ev.ID),
		TaskQueue:             taskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		// Without this the SDK quietly returns the running execution, and
		// a duplicate delivery could not be told from a first one.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(attrs...),
		StaticSummary:                            summary,
		// Where the client that starts also runs a worker on the task
		// queue (`dunning dev`), the server hands the workflow's first
		// task back with the start, to that worker, without a poll. The
		// SDK asks for it only when such a worker has a free slot, so a
		// webhook on its own starts as before.
		EnableEagerStart: true,
	}
}

func (h *handler) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), h.opts.StartTimeout)
	defer cancel()
	if _, err := h.temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "temporal unavailable"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// NewServer wraps h in an HTTP server with every timeout set.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       config.WebhookReadTimeout,
		WriteTimeout:      config.WebhookWriteTimeout,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// Serve runs srv until ctx is cancelled, then shuts it down gracefully,
// letting requests in flight finish for up to grace.
func Serve(ctx context.Context, srv *http.Server, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("webhook server on %s: %w", srv.Addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down webhook server: %w", err)
	}
	return nil
}
