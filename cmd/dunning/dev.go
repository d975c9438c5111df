package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"dunning/config"
	"dunning/internal/devstripe"
	"dunning/webhook"
	"dunning/worker"
	"dunning/workflows"
)

// DevWebhookSecret signs local test events when STRIPE_WEBHOOK_SECRET is
// not set. It is only ever used by `dunning dev` and `dunning send-event`.
const DevWebhookSecret = "whsec_dunning_local_development"

// devHTTPAddr is where the local webhook listens unless HTTP_ADDR says
// otherwise: loopback only, since its signing secret (DevWebhookSecret)
// is public.
const devHTTPAddr = "127.0.0.1:8080"

// devEnvDefaults sets what `dunning dev` assumes where the environment
// does not say otherwise: the webhook on loopback, signed with the dev
// secret.
func devEnvDefaults() {
	if os.Getenv("HTTP_ADDR") == "" {
		os.Setenv("HTTP_ADDR", devHTTPAddr)
	}
	if os.Getenv("STRIPE_WEBHOOK_SECRET") == "" {
		os.Setenv("STRIPE_WEBHOOK_SECRET", DevWebhookSecret)
	}
}

// checkDevConfig refuses a live Stripe key with a public dev secret:
// anyone could then sign events that move real money, or links that open
// a real customer's billing portal.
func checkDevConfig(cfg config.Config) error {
	live := cfg.StripeLivemode()
	if live == nil || !*live {
		return nil
	}
	if slices.Contains(cfg.StripeWebhookSecrets, DevWebhookSecret) {
		return errors.New("STRIPE_WEBHOOK_SECRET: the public dev secret does not go with a live STRIPE_API_KEY (sk_live_/rk_live_): " +
			"set the endpoint's own signing secret, or use a test key")
	}
	if slices.Contains(cfg.PortalLinkSecrets, DevPortalLinkSecret) {
		return errors.New("PORTAL_LINK_SECRET: the public dev secret does not go with a live STRIPE_API_KEY (sk_live_/rk_live_): " +
			"set a secret of your own, or use a test key")
	}
	return nil
}

// checkDevTemporal refuses settings for another Temporal: `dunning dev`
// starts its own dev server, in plaintext on loopback, and connects to it
// alone, so TLS, an API key or a profile cannot mean what they say.
// TEMPORAL_TLS=false says what dev does anyway.
func checkDevTemporal(getenv func(string) string) error {
	var set []string
	for _, name := range config.TemporalConnectionVars {
		v := strings.ToLower(strings.TrimSpace(getenv(name)))
		if v == "" || (name == "TEMPORAL_TLS" && (v == "false" || v == "0")) {
			continue
		}
		set = append(set, name)
	}
	if len(set) == 0 {
		return nil
	}
	return fmt.Errorf("%s: dunning dev runs its own Temporal dev server, in plaintext on loopback, and takes no TLS, API key or profile; "+
		"unset %s, or run `dunning worker` and `dunning webhook` against that Temporal instead", set[0], strings.Join(set, ", "))
}

// devStripeKey is the key sent to stripe-mock, which takes any key of a
// test key's shape.
const devStripeKey = "sk_test_123"

// devWorkerMetricsAddr is where the local worker serves /metrics unless
// WORKER_METRICS_ADDR says otherwise.
const devWorkerMetricsAddr = "127.0.0.1:9464"

// devSettings are the knobs of the local stack, each from the environment.
type devSettings struct {
	dataDir      string // DEV_DATA_DIR
	temporalCLI  string // TEMPORAL_CLI
	stripeMock   string // STRIPE_MOCK
	uiPort       int    // TEMPORAL_UI_PORT
	stripeMockAt string // STRIPE_MOCK_ADDR
}

func devSettingsFromEnv() (devSettings, error) {
	s := devSettings{
		dataDir:      envOr("DEV_DATA_DIR", ".data"),
		temporalCLI:  envOr("TEMPORAL_CLI", ".tools/bin/temporal"),
		stripeMock:   envOr("STRIPE_MOCK", ".tools/bin/stripe-mock"),
		stripeMockAt: envOr("STRIPE_MOCK_ADDR", "127.0.0.1:12111"),
	}
	port, err := strconv.Atoi(envOr("TEMPORAL_UI_PORT", "8233"))
	if err != nil || port <= 0 || port > 65535 {
		return s, fmt.Errorf("TEMPORAL_UI_PORT: %q is not a port", os.Getenv("TEMPORAL_UI_PORT"))
	}
	s.uiPort = port
	if _, _, err := net.SplitHostPort(s.stripeMockAt); err != nil {
		return s, fmt.Errorf("STRIPE_MOCK_ADDR: %q is not host:port", s.stripeMockAt)
	}
	return s, nil
}

func envOr(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

// runDev runs the whole stack in the foreground: the Temporal dev server on
// a SQLite file, stripe-mock unless a real Stripe key is set, the worker
// and the webhook. Ctrl-C stops all of it, the webhook first.
func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	devEnvDefaults()
	// Notices carry links to this webhook, which opens the dev Stripe's
	// (stripe-mock's) Billing Portal.
	devPortalDefaults()
	devStripe := os.Getenv("STRIPE_API_KEY") == ""
	s, err := devSettingsFromEnv()
	if err != nil {
		return err
	}
	if devStripe {
		// The dev Stripe is configured like any Stripe, before the config
		// is checked: a control plane set for `make run` then has a Stripe
		// to ask what is owed.
		os.Setenv("STRIPE_API_KEY", devStripeKey)
		if os.Getenv("STRIPE_API_BASE_URL") == "" {
			os.Setenv("STRIPE_API_BASE_URL", "http://"+s.stripeMockAt)
		}
	}
	if err := checkDevTemporal(os.Getenv); err != nil {
		return err
	}
	// The dev server is dunning's own: no Temporal CLI profile applies.
	cfg, err := config.LoadLocal(os.Getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	if err := checkDevConfig(cfg); err != nil {
		return err
	}
	if cfg.WorkerMetricsAddr == "" {
		cfg.WorkerMetricsAddr = devWorkerMetricsAddr
	}
	log := newLogger(cfg)

	if err := os.MkdirAll(s.dataDir, 0o755); err != nil {
		return fmt.Errorf("create data folder %s: %w", s.dataDir, err)
	}
	uiAddr := net.JoinHostPort(hostOf(cfg.TemporalAddress), strconv.Itoa(s.uiPort))
	busy := []string{cfg.TemporalAddress, uiAddr, cfg.HTTPAddr, cfg.WorkerMetricsAddr}
	if devStripe {
		busy = append(busy, s.stripeMockAt)
	}
	for _, addr := range busy {
		if err := checkFree(addr); err != nil {
			return err
		}
	}

	// Children get their own context: they are stopped after the worker
	// and the webhook, not with them.
	procCtx, stopProcs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopProcs()
	var procs []<-chan struct{}
	defer func() {
		stopProcs()
		for _, stopped := range procs {
			<-stopped
		}
	}()

	temporal, stopped, err := keepRunning(procCtx, log, "temporal dev server", s.temporalCLI, filepath.Join(s.dataDir, "temporal.log"),
		"server", "start-dev",
		"--ip", hostOf(cfg.TemporalAddress),
		"--port", portOf(cfg.TemporalAddress),
		"--ui-port", strconv.Itoa(s.uiPort),
		"--namespace", cfg.TemporalNamespace,
		"--db-filename", filepath.Join(s.dataDir, "temporal.db"),
		"--sqlite-pragma", "journal_mode=wal",
		"--sqlite-pragma", "synchronous=1",
		"--log-level", "warn",
	)
	if err != nil {
		return fmt.Errorf("start temporal dev server (run `make tools` to build it): %w", err)
	}
	procs = append(procs, stopped)

	waitCtx, cancelWait := context.WithTimeout(ctx, 3*time.Minute)
	go func() {
		// A dev server that dies while starting ends the wait at once.
		select {
		case <-temporal.done:
			cancelWait()
		case <-waitCtx.Done():
		}
	}()
	wm := newWorkerMetrics()
	c, err := dialTemporal(waitCtx, cfg, log, wm.handler)
	cancelWait()
	if err != nil {
		return fmt.Errorf("temporal dev server did not come up (see %s): %w", filepath.Join(s.dataDir, "temporal.log"), err)
	}
	defer c.Close()
	if err := worker.SetupNamespace(ctx, c, cfg.TemporalNamespace, cfg.NamespaceRetention, log); err != nil {
		return err
	}

	var dev *devstripe.Server
	var devSrv *http.Server
	if devStripe {
		// stripe-mock checks every request against Stripe's API
		// specification; in front of it, the dev Stripe keeps the state
		// the events describe, so that a retry after a card update works.
		upstream := net.JoinHostPort(hostOf(s.stripeMockAt), strconv.Itoa(portNum(s.stripeMockAt)+1))
		if err := checkFree(upstream); err != nil {
			return err
		}
		_, stopped, err := keepRunning(procCtx, log, "stripe-mock", s.stripeMock, filepath.Join(s.dataDir, "stripe-mock.log"),
			"-http-addr", upstream, "-https-addr", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("start stripe-mock (run `make tools` to build it): %w", err)
		}
		procs = append(procs, stopped)
		if err := waitHTTP(ctx, "http://"+upstream+"/v1/customers", 2*time.Minute); err != nil {
			return fmt.Errorf("stripe-mock did not come up (see %s): %w", filepath.Join(s.dataDir, "stripe-mock.log"), err)
		}
		dev = devstripe.New(&url.URL{Scheme: "http", Host: upstream}, log.With("component", "dev-stripe"))
		devSrv = &http.Server{Addr: s.stripeMockAt, Handler: dev, ReadHeaderTimeout: 5 * time.Second}
	}

	printBanner(os.Stdout, cfg, s, devStripe)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveWorker(gctx, c, cfg, log.With("component", "worker"), wm) })
	var observe func(workflows.StripeEvent)
	if dev != nil {
		observe = dev.Observe
		g.Go(func() error { return webhook.Serve(gctx, devSrv, 5*time.Second) })
	}
	g.Go(func() error { return serveWebhook(gctx, c, cfg, log, observe) })
	err = g.Wait()
	log.Info("stopping the local stack")
	return err
}

func printBanner(w io.Writer, cfg config.Config, s devSettings, devStripe bool) {
	stripe := "Stripe API (live key from STRIPE_API_KEY)"
	if devStripe {
		stripe = "http://" + s.stripeMockAt + "  (dev Stripe, backed by stripe-mock)"
	}
	var live []string
	for _, name := range slices.Sorted(maps.Keys(cfg.Live())) {
		if cfg.Live()[name] {
			live = append(live, name)
		}
	}
	if len(live) == 0 {
		live = []string{"none"}
	}
	web := displayAddr(cfg.HTTPAddr)
	ui := fmt.Sprintf("http://%s:%d/namespaces/%s/workflows", hostOf(cfg.TemporalAddress), s.uiPort, cfg.TemporalNamespace)
	fmt.Fprintf(w, "\ndunning is running locally. Ctrl-C stops all of it.\n\n")
	fmt.Fprintf(w, "  webhook         http://%s/webhooks/stripe\n", web)
	fmt.Fprintf(w, "  health          http://%s/healthz  /readyz  /metrics\n", web)
	fmt.Fprintf(w, "  worker metrics  http://%s/metrics\n", displayAddr(cfg.WorkerMetricsAddr))
	fmt.Fprintf(w, "  Temporal        %s  namespace %s  task queue %s\n", cfg.TemporalAddress, cfg.TemporalNamespace, cfg.TemporalTaskQueue)
	fmt.Fprintf(w, "  Temporal UI     %s\n", ui)
	fmt.Fprintf(w, "  Stripe API      %s\n", stripe)
	fmt.Fprintf(w, "  live            %s (the others run dry)\n", strings.Join(live, ", "))
	fmt.Fprintf(w, "  data and logs   %s\n", s.dataDir)
	fmt.Fprintf(w, "  webhook secret  %s\n", strings.Join(cfg.StripeWebhookSecrets, ","))
	if cfg.PortalLinksConfigured() {
		secret := "from PORTAL_LINK_SECRET"
		if cfg.PortalLinkSecrets[0] == DevPortalLinkSecret {
			secret = DevPortalLinkSecret
		}
		fmt.Fprintf(w, "  portal links    %s%s{token}  signed with %s\n", cfg.PublicURL, webhook.PathPortal, secret)
	}
	fmt.Fprintf(w, "\n  try it:         go run ./cmd/dunning send-event %s --customer cus_demo\n", workflows.EventPaymentFailed)
	fmt.Fprintf(w, "                  go run ./cmd/dunning portal-link --customer cus_demo\n\n")
}

func displayAddr(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "localhost" + addr
	}
	return addr
}

func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	if h == "" {
		return "127.0.0.1"
	}
	return h
}

func portNum(addr string) int {
	n, _ := strconv.Atoi(portOf(addr))
	return n
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func checkFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is already in use (another `make run` still up?): %w", addr, err)
	}
	return ln.Close()
}

// keepRunning starts a child and starts it again whenever it exits before
// ctx ends, so that a dev server killed by hand comes back (the webhook
// answers 503 meanwhile). It returns the first process and a channel that
// closes once the last one has exited after ctx ended.
func keepRunning(ctx context.Context, log *slog.Logger, name, bin, logPath string, args ...string) (*child, <-chan struct{}, error) {
	first, err := startProcess(ctx, bin, logPath, args...)
	if err != nil {
		return nil, nil, err
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for p := first; ; {
			<-p.done
			if ctx.Err() != nil {
				return
			}
			log.Error(name+" exited; starting it again in 3s", "log", logPath)
			select {
			case <-ctx.Done():
				return
			case <-time.After(3 * time.Second):
			}
			if p, err = startProcess(ctx, bin, logPath, args...); err != nil {
				log.Error("could not start "+name+" again", "error", err)
				return
			}
		}
	}()
	return first, stopped, nil
}

// child is a process the local stack started; done closes when it exits.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startProcess starts a child whose output goes to logPath. It runs in its
// own process group, so that the terminal's Ctrl-C reaches dunning alone and
// dunning stops the children in order; it is sent SIGTERM when ctx ends and
// when dunning itself dies.
func startProcess(ctx context.Context, bin, logPath string, args ...string) (*child, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", logPath, err)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

func waitHTTP(ctx context.Context, url string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+devStripeKey)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
