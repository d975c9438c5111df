// Package deploy checks how dunning is deployed. Without a Docker engine,
// compose_test.go loads docker-compose.yml with compose-go, as `docker
// compose` does, and holds it to what the binary and the Temporal setup
// need; cluster_test.go runs under `make test-cluster` against a real
// Temporal cluster on PostgreSQL.
package deploy

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	enumspb "go.temporal.io/api/enums/v1"
	"go.yaml.in/yaml/v3"

	"dunning/config"
	"dunning/webhook"
	dunningworker "dunning/worker"
	"dunning/workflows"
)

// root is the repository root, seen from this package's folder.
const root = ".."

// operatorSecrets stand for what an operator writes into .env: the three
// values .env.example leaves empty.
var operatorSecrets = map[string]string{
	"POSTGRES_PASSWORD":      "pg-password-from-dotenv",
	"STRIPE_WEBHOOK_SECRET":  "whsec_new_from_dotenv,whsec_old_from_dotenv",
	"GRAFANA_ADMIN_PASSWORD": "grafana-password-from-dotenv",
}

// The services of the stack, by role.
var (
	// oneShot services run to completion before what depends on them.
	oneShot = []string{"temporal-schema", "temporal-setup"}
	// longRunning services must report their health.
	longRunning = []string{"postgresql", "temporal", "temporal-ui", "worker", "webhook", "webhook-proxy", "stripe-mock", "prometheus", "grafana"}
)

// loadCompose loads docker-compose.yml as `docker compose` does with env
// in the shell's environment and, when dotEnv is set, .env.example as its
// .env (the shell's environment wins), with the given profiles active.
func loadCompose(t *testing.T, env map[string]string, dotEnv bool, profiles ...string) (*types.Project, error) {
	t.Helper()
	var pairs []string
	for k, v := range env {
		pairs = append(pairs, k+"="+v)
	}
	fns := []cli.ProjectOptionsFn{cli.WithWorkingDirectory(root), cli.WithEnv(pairs), cli.WithProfiles(profiles)}
	if dotEnv {
		fns = append(fns, cli.WithEnvFiles(filepath.Join(root, ".env.example")), cli.WithDotEnv)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")}, fns...)
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

// project is the stack as an operator who filled in .env.example runs it,
// with the dev profile active so that every service is there.
func project(t *testing.T) *types.Project {
	t.Helper()
	return projectWith(t, true)
}

// eachSetup runs check on the stack as run with .env.example filled in, and
// as run with nothing but the two secrets: the file's own defaults must
// work too.
func eachSetup(t *testing.T, check func(t *testing.T, p *types.Project)) {
	t.Run("env_example", func(t *testing.T) { check(t, projectWith(t, true)) })
	t.Run("secrets_only", func(t *testing.T) { check(t, projectWith(t, false)) })
}

func projectWith(t *testing.T, dotEnv bool) *types.Project {
	t.Helper()
	p, err := loadCompose(t, operatorSecrets, dotEnv, "dev")
	if err != nil {
		t.Fatalf("docker-compose.yml does not load with the secrets set (.env.example: %v): %v", dotEnv, err)
	}
	for _, name := range slices.Concat(oneShot, longRunning) {
		if _, ok := p.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no service %q", name)
		}
	}
	return p
}

// environment returns a service's environment as a plain map; a variable
// listed without a value is "".
func environment(s types.ServiceConfig) map[string]string {
	env := map[string]string{}
	for k, v := range s.Environment {
		env[k] = ""
		if v != nil {
			env[k] = *v
		}
	}
	return env
}

// serviceConfig is what config.Load makes of a service's environment.
func serviceConfig(p *types.Project, name string) (config.Config, error) {
	env := environment(p.Services[name])
	return config.Load(func(k string) string { return env[k] })
}

// configVars lists every variable config.Load reads.
func configVars(t *testing.T) []string {
	t.Helper()
	var names []string
	_, _ = config.Load(func(k string) string {
		names = append(names, k)
		return ""
	})
	if len(names) < 20 {
		t.Fatalf("config.Load read only %d variables: %v", len(names), names)
	}
	return names
}

func TestComposeRefusesToStartWithoutItsSecrets(t *testing.T) {
	for missing := range operatorSecrets {
		t.Run(missing, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range operatorSecrets {
				if k != missing {
					env[k] = v
				}
			}
			_, err := loadCompose(t, env, true)
			if err == nil || !strings.Contains(err.Error(), missing) {
				t.Fatalf("with %s unset, docker compose should stop with a message naming it; got %v", missing, err)
			}
		})
	}
}

// secretName matches the variables that hold credentials.
var secretName = regexp.MustCompile(`SECRET|PASSWORD|PWD|API_KEY|TOKEN`)

func TestNoSecretIsWrittenDown(t *testing.T) {
	// The raw file, before interpolation: every credential comes from the
	// environment, as ${NAME...}.
	services := rawModel(t)
	reference := regexp.MustCompile(`^\$\{[A-Z_][A-Z0-9_]*(:?[-?][^}]*)?\}$`)
	checked := 0
	for name, s := range services {
		env, _ := s["environment"].(map[string]any)
		for k, v := range env {
			if !secretName.MatchString(k) {
				continue
			}
			checked++
			if v, _ := v.(string); !reference.MatchString(v) {
				t.Errorf("service %s: %s is written into docker-compose.yml (%q); it must come from .env as ${%s}", name, k, v, k)
			}
		}
	}
	if checked < 6 {
		t.Errorf("only %d credentials found in docker-compose.yml; the check is not looking at the right place", checked)
	}

	// .env.example names every credential and leaves it empty.
	example := readEnvExample(t)
	for k, v := range example {
		if secretName.MatchString(k) && v != "" {
			t.Errorf(".env.example sets %s=%q; credentials stay empty there", k, v)
		}
	}
	// Nothing that looks like a live Stripe credential anywhere.
	live := regexp.MustCompile(`(sk|rk)_live_[A-Za-z0-9]+|whsec_[A-Za-z0-9]{16,}`)
	for _, f := range []string{"docker-compose.yml", ".env.example", "Dockerfile", "deploy/Caddyfile"} {
		raw, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if m := live.Find(raw); m != nil {
			t.Errorf("%s contains %q, which looks like a Stripe credential", f, m)
		}
	}
}

// rawModel is docker-compose.yml's services as written, before
// interpolation, YAML anchors merged.
func rawModel(t *testing.T) map[string]map[string]any {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithInterpolation(false), cli.WithProfiles([]string{"dev"}))
	if err != nil {
		t.Fatal(err)
	}
	model, err := opts.LoadModel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	services := map[string]map[string]any{}
	for name, s := range model["services"].(map[string]any) {
		services[name] = s.(map[string]any)
	}
	return services
}

// readEnvExample parses .env.example: every variable it names, commented
// out or not, with its value.
func readEnvExample(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]string{}
	assignment := regexp.MustCompile(`^#?\s*([A-Z_][A-Z0-9_]*)=(.*)$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := assignment.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
			if _, seen := vars[m[1]]; !seen || !strings.HasPrefix(sc.Text(), "#") {
				vars[m[1]] = m[2]
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vars
}

func TestEveryImageIsPinned(t *testing.T) {
	p := project(t)
	versioned := regexp.MustCompile(`^[^:@]+(:[^@]*[0-9][^@]*)?(@sha256:[0-9a-f]{64})?$`)
	for name, s := range p.AllServices() {
		if s.Build != nil {
			// Built from this checkout: the Dockerfile's bases are checked
			// in TestDockerfile.
			if s.Build.Context != mustAbs(t, root) {
				t.Errorf("service %s builds from %s, want the repository root", name, s.Build.Context)
			}
			continue
		}
		img := s.Image
		tag := ""
		if i := strings.LastIndex(img, ":"); i > strings.LastIndex(img, "/") {
			tag = img[i+1:]
		}
		if !strings.Contains(img, "@sha256:") && (tag == "" || tag == "latest" || !versioned.MatchString(img)) {
			t.Errorf("service %s: image %q is not pinned to a version", name, img)
		}
	}

	// The Temporal server, its admin tools and `make test-cluster` run the
	// same server version.
	server := strings.TrimPrefix(p.Services["temporal"].Image, "temporalio/server:")
	for _, name := range oneShot {
		if img := p.Services[name].Image; !strings.HasPrefix(img, "temporalio/admin-tools:"+server+"-") {
			t.Errorf("service %s runs %s; want the admin tools of server %s", name, img, server)
		}
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TEMPORAL_SERVER_VERSION\s*:?=\s*v(\S+)`).FindSubmatch(makefile)
	if m == nil || string(m[1]) != server {
		t.Errorf("the Makefile's TEMPORAL_SERVER_VERSION (make test-cluster) is %q; docker-compose.yml runs temporalio/server:%s", m, server)
	}
}

func mustAbs(t *testing.T, path string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// Instructions, with continuation lines joined and comments dropped.
	var lines []string
	var cur strings.Builder
	for _, l := range strings.Split(string(raw), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") || (l == "" && cur.Len() == 0) {
			continue
		}
		if more, ok := strings.CutSuffix(l, "\\"); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(l)
		if s := strings.TrimSpace(cur.String()); s != "" {
			lines = append(lines, s)
		}
		cur.Reset()
	}
	var stages [][]string // instructions per stage
	for _, l := range lines {
		if strings.HasPrefix(strings.ToUpper(l), "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			continue // ARG before the first FROM
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], l)
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages; want a build stage and a small runtime stage", len(stages))
	}
	for _, st := range stages {
		base := strings.Fields(st[0])[1]
		if !strings.Contains(base, ":") || strings.HasSuffix(base, ":latest") {
			t.Errorf("Dockerfile: %q is not pinned", st[0])
		}
	}
	build := strings.Join(stages[0], "\n")
	if !strings.Contains(build, "CGO_ENABLED=0") || !strings.Contains(build, "./cmd/dunning") {
		t.Errorf("the build stage does not build a static dunning (CGO_ENABLED=0 go build ./cmd/dunning):\n%s", build)
	}
	final := stages[len(stages)-1]
	instr := func(name string) string {
		for _, l := range slices.Backward(final) {
			if f := strings.Fields(l); strings.EqualFold(f[0], name) {
				return strings.TrimSpace(l[len(f[0]):])
			}
		}
		return ""
	}
	if base := strings.Fields(final[0])[1]; !strings.Contains(base, "distroless/static") && !strings.Contains(base, "scratch") && !strings.Contains(base, "alpine") {
		t.Errorf("runtime base %s is not a small static base", base)
	}
	if u := instr("USER"); u == "" || strings.HasPrefix(u, "root") || strings.HasPrefix(u, "0") {
		t.Errorf("the runtime stage runs as %q; want a non-root user", u)
	}
	if hc := instr("HEALTHCHECK"); !strings.Contains(hc, "dunning") || !strings.Contains(hc, "healthcheck") {
		t.Errorf("HEALTHCHECK %q does not run `dunning healthcheck`", hc)
	}
	if ep := instr("ENTRYPOINT"); !strings.Contains(ep, "/dunning") {
		t.Errorf("ENTRYPOINT %q is not the dunning binary: the command (worker, webhook) picks the part", ep)
	}
}

func TestDunningIsConfigured(t *testing.T) {
	eachSetup(t, checkDunningIsConfigured)
}

func checkDunningIsConfigured(t *testing.T, p *types.Project) {
	worker, webhook := p.Services["worker"], p.Services["webhook"]
	if worker.Image != webhook.Image {
		t.Errorf("worker runs %s and webhook %s; they are one image", worker.Image, webhook.Image)
	}
	for name, cmd := range map[string]string{"worker": "worker", "webhook": "webhook"} {
		if c := p.Services[name].Command; !slices.Equal(c, []string{cmd}) {
			t.Errorf("service %s runs command %v, want [%s]", name, c, cmd)
		}
	}

	cfgs := map[string]config.Config{}
	for _, name := range []string{"worker", "webhook"} {
		cfg, err := serviceConfig(p, name)
		if err != nil {
			t.Errorf("service %s: dunning would refuse its configuration:\n%v", name, err)
			continue
		}
		cfgs[name] = cfg
	}
	if wh, ok := cfgs["webhook"]; ok {
		if err := wh.RequireWebhookSecret(); err != nil {
			t.Errorf("service webhook: %v", err)
		}
		if !slices.Equal(wh.StripeWebhookSecrets, []string{"whsec_new_from_dotenv", "whsec_old_from_dotenv"}) {
			t.Errorf("webhook secrets %q, want both entries of STRIPE_WEBHOOK_SECRET from .env (rotation)", wh.StripeWebhookSecrets)
		}
	}
	if len(cfgs) < 2 {
		return
	}
	wk, wh := cfgs["worker"], cfgs["webhook"]

	// No half-live deployment: the worker requires every integration live,
	// so that a stack started without them refuses, naming what is missing.
	if want := slices.Sorted(maps.Keys(wk.Live())); !slices.Equal(wk.RequireLive, want) {
		t.Errorf("the worker requires %q live (DUNNING_REQUIRE_LIVE), want all: %q", wk.RequireLive, want)
	}
	if err := dunningworker.RequireLive(wk); err == nil || !strings.Contains(err.Error(), "DUNNING_REQUIRE_LIVE") {
		t.Errorf("the worker, its integrations unset, would start: %v", err)
	}

	// Both reach the Temporal frontend (the server image listens on
	// 7233), on one namespace and task queue, the namespace
	// temporal-setup prepares.
	for name, cfg := range cfgs {
		host, port, _ := net.SplitHostPort(cfg.TemporalAddress)
		if _, ok := p.Services[host]; !ok || host != "temporal" || port != "7233" {
			t.Errorf("service %s: TEMPORAL_ADDRESS=%s is not the temporal service's frontend", name, cfg.TemporalAddress)
		}
	}
	setup := environment(p.Services["temporal-setup"])
	if wk.TemporalNamespace != wh.TemporalNamespace || wk.TemporalNamespace != setup["TEMPORAL_NAMESPACE"] {
		t.Errorf("namespaces: worker %s, webhook %s, temporal-setup %s; want one", wk.TemporalNamespace, wh.TemporalNamespace, setup["TEMPORAL_NAMESPACE"])
	}
	if wk.TemporalTaskQueue != wh.TemporalTaskQueue {
		t.Errorf("task queues: worker %s, webhook %s; the webhook starts workflows on the workers' queue", wk.TemporalTaskQueue, wh.TemporalTaskQueue)
	}
	if wk.NamespaceRetention != mustDuration(t, setup["TEMPORAL_NAMESPACE_RETENTION"]) {
		t.Errorf("the worker expects retention %s, temporal-setup sets %s", wk.NamespaceRetention, setup["TEMPORAL_NAMESPACE_RETENTION"])
	}

	// The health checks probe where each part listens.
	if wk.WorkerMetricsAddr == "" {
		t.Error("the worker serves no /metrics (WORKER_METRICS_ADDR): nothing to scrape, nothing to probe")
	} else if u := probeURL(t, worker); u == nil || u.Port() != portOf(wk.WorkerMetricsAddr) || u.Path != "/metrics" {
		t.Errorf("worker health check probes %v; the worker serves /metrics on %s", u, wk.WorkerMetricsAddr)
	}
	if u := probeURL(t, webhook); u == nil || u.Port() != portOf(wh.HTTPAddr) || u.Path != "/healthz" {
		t.Errorf("webhook health check probes %v; the webhook serves /healthz on %s", u, wh.HTTPAddr)
	}
	if h, _, _ := net.SplitHostPort(wh.HTTPAddr); h != "" && h != "0.0.0.0" {
		t.Errorf("webhook listens on %s: other containers cannot reach it", wh.HTTPAddr)
	}
	caddy, err := os.ReadFile(filepath.Join(root, "deploy", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^\s*name webhook\s*$`).Match(caddy) || !regexp.MustCompile(`(?m)^\s*port `+portOf(wh.HTTPAddr)+`\s*$`).Match(caddy) {
		t.Errorf("deploy/Caddyfile does not send requests to the webhook service on port %s", portOf(wh.HTTPAddr))
	}
}

// Every variable dunning reads can be set through the stack: passed from
// .env (and documented in .env.example), or fixed in docker-compose.yml for
// the container. And every variable the file reads is documented.
func TestEveryVariableIsWiredAndDocumented(t *testing.T) {
	example := readEnvExample(t)
	passed := map[string]string{}
	for _, name := range []string{"worker", "webhook"} {
		for k, v := range rawModel(t)[name]["environment"].(map[string]any) {
			passed[k], _ = v.(string)
		}
	}
	for _, k := range configVars(t) {
		v, ok := passed[k]
		switch {
		case !ok && slices.Contains(config.TemporalConnectionVars, k):
			// TLS, API key and profile settings are for a Temporal outside
			// the stack (Temporal Cloud, an mTLS cluster); the stack's own
			// Temporal is reached on its internal network
			// (docs/operations.md, "Connecting to Temporal").
		case !ok:
			t.Errorf("%s (config/config.go) is passed to neither the worker nor the webhook", k)
		case strings.Contains(v, "${"+k):
			if _, documented := example[k]; !documented {
				t.Errorf("%s comes from .env but .env.example does not document it", k)
			}
		}
	}
	file, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)`).FindAllSubmatch(file, -1) {
		if _, ok := example[string(m[1])]; !ok {
			t.Errorf("docker-compose.yml reads ${%s}, which .env.example does not document", m[1])
		}
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%q is not a duration: %v", s, err)
	}
	return d
}

// probeURL is the URL a `dunning healthcheck --url` health check probes.
func probeURL(t *testing.T, s types.ServiceConfig) *url.URL {
	t.Helper()
	if s.HealthCheck == nil {
		return nil
	}
	test := s.HealthCheck.Test
	i := slices.Index(test, "--url")
	if i < 0 || i+1 >= len(test) || !slices.Contains(test, "healthcheck") {
		return nil
	}
	u, err := url.Parse(test[i+1])
	if err != nil {
		return nil
	}
	return u
}

func TestStackStartsInOrder(t *testing.T) {
	p := project(t)
	want := map[string]map[string]string{
		"temporal-schema": {"postgresql": types.ServiceConditionHealthy},
		"temporal":        {"temporal-schema": types.ServiceConditionCompletedSuccessfully},
		"temporal-setup":  {"temporal": types.ServiceConditionHealthy},
		"temporal-ui":     {"temporal": types.ServiceConditionHealthy},
		"worker":          {"temporal-setup": types.ServiceConditionCompletedSuccessfully},
		"webhook":         {"temporal-setup": types.ServiceConditionCompletedSuccessfully},
		"webhook-proxy":   {"webhook": types.ServiceConditionHealthy},
		"grafana":         {"prometheus": types.ServiceConditionHealthy},
	}
	for name, deps := range want {
		got := p.Services[name].DependsOn
		for dep, cond := range deps {
			if d, ok := got[dep]; !ok || d.Condition != cond {
				t.Errorf("service %s: depends_on %s %q, want condition %s", name, dep, d.Condition, cond)
			}
		}
	}
	// Generally: a one-shot service is waited for until it has completed,
	// a long-running one until it is healthy.
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			wantCond := types.ServiceConditionHealthy
			if slices.Contains(oneShot, dep) {
				wantCond = types.ServiceConditionCompletedSuccessfully
			}
			if d.Condition != wantCond {
				t.Errorf("service %s waits for %s to be %s; want %s", name, dep, d.Condition, wantCond)
			}
		}
	}
	for _, name := range oneShot {
		if r := p.Services[name].Restart; r != types.RestartPolicyNo && r != "" {
			t.Errorf("one-shot service %s has restart %q; it must run once and exit", name, r)
		}
	}

	// The order `docker compose up` follows.
	var order []string
	started := map[string]bool{}
	for len(order) < len(p.Services) {
		progress := false
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for n := range p.Services {
				if !yield(n) {
					return
				}
			}
		}) {
			if started[name] {
				continue
			}
			ready := true
			for dep := range p.Services[name].DependsOn {
				ready = ready && started[dep]
			}
			if ready {
				started[name], progress = true, true
				order = append(order, name)
			}
		}
		if !progress {
			t.Fatalf("depends_on has a cycle; started so far: %v", order)
		}
	}
	before := func(a, b string) {
		if slices.Index(order, a) > slices.Index(order, b) {
			t.Errorf("%s starts after %s (order %v)", a, b, order)
		}
	}
	for _, pair := range [][2]string{
		{"postgresql", "temporal-schema"}, {"temporal-schema", "temporal"}, {"temporal", "temporal-setup"},
		{"temporal-setup", "worker"}, {"temporal-setup", "webhook"}, {"webhook", "webhook-proxy"},
	} {
		before(pair[0], pair[1])
	}
}

func TestHealthChecksAndPorts(t *testing.T) {
	p := project(t)
	for _, name := range longRunning {
		hc := p.Services[name].HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] == "NONE" || hc.Interval == nil || hc.Retries == nil {
			t.Errorf("service %s has no health check (with interval and retries): %+v", name, hc)
		}
		if r := p.Services[name].Restart; r != types.RestartPolicyUnlessStopped && r != types.RestartPolicyAlways {
			t.Errorf("service %s restarts %q; a long-running service comes back after a crash", name, r)
		}
	}

	published := func(name string) []types.ServicePortConfig { return p.Services[name].Ports }
	// Scaled services publish nothing: a fixed host port would stop the
	// second replica.
	for _, name := range []string{"worker", "webhook"} {
		if ports := published(name); len(ports) > 0 {
			t.Errorf("service %s publishes %v; `--scale %s=N` needs it to publish none", name, ports, name)
		}
	}
	// The ports an operator and Stripe use.
	for _, c := range []struct {
		service, target, published, hostIP string
	}{
		{"webhook-proxy", "8080", "8080", ""},
		{"temporal", "7233", "7233", "127.0.0.1"},
		{"temporal-ui", "8080", "8233", "127.0.0.1"},
		{"stripe-mock", "12111", "12111", "127.0.0.1"},
		{"grafana", "3000", "3000", "127.0.0.1"},
	} {
		found := false
		for _, port := range published(c.service) {
			if strconv.FormatUint(uint64(port.Target), 10) == c.target && port.Published == c.published {
				found = true
				if port.HostIP != c.hostIP {
					t.Errorf("service %s publishes %s on %q, want %q", c.service, c.published, port.HostIP, c.hostIP)
				}
			}
		}
		if !found {
			t.Errorf("service %s does not publish %s on host port %s: %+v", c.service, c.target, c.published, published(c.service))
		}
	}

	// Only the proxy listens beyond this host; Prometheus is reached
	// through Grafana, on the compose network.
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if name != "webhook-proxy" && port.HostIP != "127.0.0.1" {
				t.Errorf("service %s publishes %s on %q; only webhook-proxy listens beyond 127.0.0.1", name, port.Published, port.HostIP)
			}
		}
	}
	if ports := published("prometheus"); len(ports) > 0 {
		t.Errorf("service prometheus publishes %v; it stays on the compose network", ports)
	}

	// stripe-mock runs under the dev profile only.
	if s := p.Services["stripe-mock"]; !slices.Equal(s.Profiles, []string{"dev"}) {
		t.Errorf("stripe-mock has profiles %v, want [dev]", s.Profiles)
	}
	plain, err := loadCompose(t, operatorSecrets, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, on := plain.Services["stripe-mock"]; on {
		t.Error("stripe-mock starts without the dev profile")
	}
	for name, s := range plain.Services {
		if len(s.Profiles) > 0 {
			t.Errorf("service %s is in profiles %v; only stripe-mock is optional", name, s.Profiles)
		}
	}
}

func TestTemporalUsesPostgreSQLForPersistenceAndVisibility(t *testing.T) {
	eachSetup(t, checkTemporalUsesPostgreSQLForPersistenceAndVisibility)
}

func checkTemporalUsesPostgreSQLForPersistenceAndVisibility(t *testing.T, p *types.Project) {
	env := environment(p.Services["temporal"])
	for k, want := range map[string]string{
		"DB": "postgres12", "POSTGRES_SEEDS": "postgresql", "DB_PORT": "5432",
		"POSTGRES_PWD": operatorSecrets["POSTGRES_PASSWORD"],
	} {
		if env[k] != want {
			t.Errorf("temporal: %s=%q, want %q", k, env[k], want)
		}
	}
	pg := environment(p.Services["postgresql"])
	if env["POSTGRES_USER"] != pg["POSTGRES_USER"] {
		t.Errorf("temporal connects as %q, postgresql creates %q", env["POSTGRES_USER"], pg["POSTGRES_USER"])
	}

	// The schema job creates and migrates exactly the databases the server
	// opens, with the server's plugin: run its script with a stand-in for
	// temporal-sql-tool that records what it is asked.
	calls := runSetupScript(t, p.Services["temporal-schema"], "TEMPORAL_SQL_TOOL", "")
	for _, db := range []struct{ name, schema string }{
		{env["DBNAME"], "postgresql/v12/temporal"},
		{env["VISIBILITY_DBNAME"], "postgresql/v12/visibility"},
	} {
		if db.name == "" {
			t.Fatalf("temporal: DBNAME and VISIBILITY_DBNAME must be set: %v", env)
		}
		prefix := "--plugin postgres12 --db " + db.name + " "
		for _, want := range []string{prefix + "create-database", prefix + "setup-schema -v 0.0", prefix + "update-schema --schema-name " + db.schema} {
			if !slices.Contains(calls, want) {
				t.Errorf("temporal-schema never ran `temporal-sql-tool %s`; it ran:\n%s", want, strings.Join(calls, "\n"))
			}
		}
	}
	schemaEnv := environment(p.Services["temporal-schema"])
	if schemaEnv["SQL_HOST"] != env["POSTGRES_SEEDS"] || schemaEnv["SQL_USER"] != env["POSTGRES_USER"] || schemaEnv["SQL_PASSWORD"] != env["POSTGRES_PWD"] {
		t.Errorf("temporal-schema connects to %s as %s; the server to %s as %s",
			schemaEnv["SQL_HOST"], schemaEnv["SQL_USER"], env["POSTGRES_SEEDS"], env["POSTGRES_USER"])
	}
}

func TestNamespaceSetupMatchesTheCode(t *testing.T) {
	eachSetup(t, checkNamespaceSetupMatchesTheCode)
}

func checkNamespaceSetupMatchesTheCode(t *testing.T, p *types.Project) {
	setup := p.Services["temporal-setup"]
	env := environment(setup)

	retention := mustDuration(t, env["TEMPORAL_NAMESPACE_RETENTION"])
	if retention < config.MinRetention {
		t.Errorf("temporal-setup sets retention %s; deduplication needs at least %s", retention, config.MinRetention)
	}
	registered := map[string]string{} // name: type, as given to the CLI
	for _, a := range strings.Split(env["DUNNING_SEARCH_ATTRIBUTES"], ",") {
		name, typ, _ := strings.Cut(strings.TrimSpace(a), "=")
		registered[name] = typ
	}
	for _, k := range workflows.SearchAttributeKeys {
		typ, ok := registered[k.GetName()]
		if !ok {
			t.Errorf("temporal-setup does not register %s (workflows/api.go)", k.GetName())
			continue
		}
		if v, err := enumspb.IndexedValueTypeFromString(typ); err != nil || v != k.GetValueType() {
			t.Errorf("temporal-setup registers %s as %q; the code uses it as %s", k.GetName(), typ, k.GetValueType())
		}
		delete(registered, k.GetName())
	}
	if len(registered) > 0 {
		t.Errorf("temporal-setup registers %v, which the code does not use", registered)
	}
	if env["TEMPORAL_ADDRESS"] != "temporal:7233" {
		t.Errorf("temporal-setup talks to %s", env["TEMPORAL_ADDRESS"])
	}

	// Run the script as the container would, with a stand-in for the
	// temporal CLI: a new namespace is created with the retention and gets
	// every attribute; a second run creates nothing new and leaves the
	// retention it finds at least as long as asked alone.
	state := filepath.Join(t.TempDir(), "namespace-exists")
	ns := env["TEMPORAL_NAMESPACE"]
	first := runSetupScript(t, setup, "TEMPORAL_CLI", state)
	mustRun := []string{"--address temporal:7233 operator namespace create --namespace " + ns + " --retention " + env["TEMPORAL_NAMESPACE_RETENTION"]}
	for _, a := range strings.Split(env["DUNNING_SEARCH_ATTRIBUTES"], ",") {
		name, typ, _ := strings.Cut(a, "=")
		mustRun = append(mustRun, "--address temporal:7233 operator search-attribute create --namespace "+ns+" --name "+name+" --type "+typ)
	}
	for _, c := range mustRun {
		if !slices.ContainsFunc(first, func(got string) bool { return strings.HasPrefix(got, c) }) {
			t.Errorf("the first run of temporal-setup never ran `temporal %s`; it ran:\n%s", c, strings.Join(first, "\n"))
		}
	}
	second := runSetupScript(t, setup, "TEMPORAL_CLI", state)
	if slices.ContainsFunc(second, func(c string) bool { return strings.Contains(c, "namespace create") }) {
		t.Errorf("a second run of temporal-setup created the namespace again:\n%s", strings.Join(second, "\n"))
	}
	update := "--address temporal:7233 operator namespace update --namespace " + ns + " --retention " + env["TEMPORAL_NAMESPACE_RETENTION"]
	for _, c := range []struct {
		have       string // the retention the server reports
		wantUpdate bool
	}{
		{fmt.Sprintf("%ds", int(retention.Seconds())), false},   // as asked
		{fmt.Sprintf("%ds", int(retention.Seconds())+1), false}, // longer: an operator's choice
		{"2592000s", false}, // 30 days
		{fmt.Sprintf("%ds", int(retention.Seconds())-1), true}, // shorter
		{"86400s", true}, // the server's default
	} {
		if err := os.WriteFile(state, []byte(c.have), 0o644); err != nil {
			t.Fatal(err)
		}
		calls := runSetupScript(t, setup, "TEMPORAL_CLI", state)
		updated := slices.ContainsFunc(calls, func(got string) bool { return strings.Contains(got, "namespace update") })
		switch {
		case c.wantUpdate && !slices.Contains(calls, update):
			t.Errorf("temporal-setup on a namespace with retention %s did not raise it with `temporal %s`:\n%s", c.have, update, strings.Join(calls, "\n"))
		case !c.wantUpdate && updated:
			t.Errorf("temporal-setup changed a retention of %s, at least the %s asked for:\n%s", c.have, retention, strings.Join(calls, "\n"))
		}
	}
}

// runSetupScript runs a one-shot service's script the way its container
// does (entrypoint /bin/sh <mounted script>, the service's environment),
// with toolVar pointing at a stand-in that records its arguments. The
// stand-in answers `namespace describe` with "not found" until a
// `namespace create` has written state, then as the CLI does with
// --output json, with the retention kept in state (as the server writes
// it, 604800s); create and update write their --retention there. It
// returns the recorded calls.
func runSetupScript(t *testing.T, s types.ServiceConfig, toolVar, state string) []string {
	t.Helper()
	if len(s.Entrypoint) != 2 || s.Entrypoint[0] != "/bin/sh" {
		t.Fatalf("service %s: entrypoint %v, want [/bin/sh <script>]", s.Name, s.Entrypoint)
	}
	script := ""
	for _, v := range s.Volumes {
		if v.Target == s.Entrypoint[1] {
			script = v.Source
			if !v.ReadOnly {
				t.Errorf("service %s mounts %s writable", s.Name, v.Source)
			}
		}
	}
	if script == "" {
		t.Fatalf("service %s runs %s, which no volume mounts", s.Name, s.Entrypoint[1])
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	if state == "" {
		state = filepath.Join(dir, "state")
	}
	fake := filepath.Join(dir, "tool")
	err := os.WriteFile(fake, []byte(`#!/bin/sh
echo "$*" >> "$FAKE_CALLS"
retention() {
  while [ $# -gt 0 ]; do
    if [ "$1" = --retention ]; then
      case "$2" in
        *h) echo "$((${2%h} * 3600))s" ;;
        *d) echo "$((${2%d} * 86400))s" ;;
        *) echo "$2" ;;
      esac
      return
    fi
    shift
  done
}
case "$*" in
  *"operator namespace describe"*)
    [ -f "$FAKE_STATE" ] || { echo "Error: namespace not found" >&2; exit 1; }
    printf '{\n  "namespaceInfo": {\n    "name": "ns"\n  },\n  "config": {\n    "workflowExecutionRetentionTtl": "%s",\n    "badBinaries": {}\n  }\n}\n' "$(cat "$FAKE_STATE")" ;;
  *"operator namespace create"*|*"operator namespace update"*) retention "$@" > "$FAKE_STATE" ;;
esac
exit 0
`), 0o755)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", script)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), toolVar + "=" + fake, "FAKE_CALLS=" + log, "FAKE_STATE=" + state}
	for k, v := range environment(s) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("service %s: %s failed: %v\n%s", s.Name, script, err, out)
	}
	raw, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("service %s: %s ran no tool: %v", s.Name, script, err)
	}
	return strings.Split(strings.TrimSpace(string(raw)), "\n")
}

// The customer's one-click link works through the stack: the worker signs
// links with what the webhook checks them with, the webhook can open a
// Stripe Billing Portal session, and the proxy passes /portal/ on and
// names the client it came from.
func TestPortalLinksAreWired(t *testing.T) {
	const publicURL = "https://billing.example.com"
	env := map[string]string{
		"PUBLIC_URL":          publicURL,
		"PORTAL_LINK_SECRET":  "portal-secret-new-from-dotenv-0123456789,portal-secret-old-from-dotenv-0123456789",
		"STRIPE_API_KEY":      "sk_test_from_dotenv",
		"STRIPE_API_BASE_URL": "http://stripe-mock:12111",
	}
	for k, v := range operatorSecrets {
		env[k] = v
	}
	p, err := loadCompose(t, env, true, "dev")
	if err != nil {
		t.Fatal(err)
	}
	cfgs := map[string]config.Config{}
	for _, name := range []string{"worker", "webhook"} {
		cfg, err := serviceConfig(p, name)
		if err != nil {
			t.Fatalf("service %s: dunning would refuse its configuration:\n%v", name, err)
		}
		if !cfg.PortalLinksConfigured() {
			t.Errorf("service %s: portal links not configured with PUBLIC_URL and PORTAL_LINK_SECRET in .env", name)
		}
		cfgs[name] = cfg
	}
	wk, wh := cfgs["worker"], cfgs["webhook"]

	// No half-live deployment: the worker requires every integration live,
	// so that a stack started without them refuses, naming what is missing.
	if want := slices.Sorted(maps.Keys(wk.Live())); !slices.Equal(wk.RequireLive, want) {
		t.Errorf("the worker requires %q live (DUNNING_REQUIRE_LIVE), want all: %q", wk.RequireLive, want)
	}
	if err := dunningworker.RequireLive(wk); err == nil || !strings.Contains(err.Error(), "DUNNING_REQUIRE_LIVE") {
		t.Errorf("the worker, its integrations unset, would start: %v", err)
	}
	if wk.PublicURL != publicURL || wh.PublicURL != wk.PublicURL || !slices.Equal(wk.PortalLinkSecrets, wh.PortalLinkSecrets) ||
		len(wh.PortalLinkSecrets) != 2 || wk.PortalLinkTTL != wh.PortalLinkTTL || wk.PortalReturnURL != wh.PortalReturnURL {
		t.Errorf("the worker signs links with %s %d secrets %s %s, the webhook checks them with %s %d secrets %s %s; want the same, both secrets of a rotation",
			wk.PublicURL, len(wk.PortalLinkSecrets), wk.PortalLinkTTL, wk.PortalReturnURL, wh.PublicURL, len(wh.PortalLinkSecrets), wh.PortalLinkTTL, wh.PortalReturnURL)
	}
	if wh.StripeAPIKey != wk.StripeAPIKey || wh.StripeAPIBaseURL != wk.StripeAPIBaseURL || wh.StripeAPIBaseURL == "" {
		t.Errorf("the webhook asks Stripe at %q (key set %v); the worker at %q: want the same Stripe",
			wh.StripeAPIBaseURL, wh.StripeAPIKey != "", wk.StripeAPIBaseURL)
	}
	// Docker gives compose networks addresses from 172.16.0.0/12 and
	// 192.168.0.0/16: the proxy's address there must be trusted.
	for _, proxy := range []string{"172.18.0.5", "172.30.1.2", "192.168.48.3"} {
		if !trusted(t, wh.WebhookTrustedProxies, proxy) {
			t.Errorf("the webhook does not believe X-Forwarded-For from webhook-proxy at %s (WEBHOOK_TRUSTED_PROXIES %v): every click would count as the proxy's", proxy, wh.WebhookTrustedProxies)
		}
	}
	if trusted(t, wh.WebhookTrustedProxies, "203.0.113.7") {
		t.Errorf("the webhook believes X-Forwarded-For from a public address (WEBHOOK_TRUSTED_PROXIES %v)", wh.WebhookTrustedProxies)
	}

	// Without them the stack still starts, with links dry.
	plain := projectWith(t, false)
	for _, name := range []string{"worker", "webhook"} {
		cfg, err := serviceConfig(plain, name)
		if err != nil || cfg.PortalLinksConfigured() {
			t.Errorf("service %s without PUBLIC_URL: links configured %v, err %v; want them dry", name, cfg.PortalLinksConfigured(), err)
		}
	}
}

func trusted(t *testing.T, networks []string, ip string) bool {
	t.Helper()
	a := net.ParseIP(ip)
	for _, n := range networks {
		if _, cidr, err := net.ParseCIDR(n); err == nil && cidr.Contains(a) {
			return true
		}
		if net.ParseIP(n).Equal(a) {
			return true
		}
	}
	return false
}

// The proxy passes on what Stripe and customers need and nothing else.
func TestProxyPassesOnlyThePublicPaths(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "deploy", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*@webhook\s+path\s+(.+)$`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("deploy/Caddyfile has no `@webhook path …` matcher")
	}
	patterns := strings.Fields(string(m[1]))
	// Caddy's path matcher: exact, or a prefix ending in *.
	passes := func(path string) bool {
		for _, p := range patterns {
			if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(path, prefix) || p == path {
				return true
			}
		}
		return false
	}
	for _, path := range []string{"/webhooks/stripe", "/healthz", "/portal/AQAAAABp0ZqAY3VzX1BvcnRhbA", "/portal/"} {
		if !passes(path) {
			t.Errorf("the proxy does not pass %s on (patterns %v)", path, patterns)
		}
	}
	for _, path := range []string{"/metrics", "/readyz", "/", "/portalx", "/webhooks/stripe/x"} {
		if passes(path) {
			t.Errorf("the proxy passes %s on (patterns %v); it stays internal", path, patterns)
		}
	}
	if !regexp.MustCompile(`(?m)^\s*trusted_proxies\s+static\s+private_ranges\s*$`).Match(raw) {
		t.Error("deploy/Caddyfile does not keep the client address a load balancer on a private network names (trusted_proxies)")
	}
}

// prometheusConfig is what deploy/prometheus/prometheus.yml says about its
// scrape targets.
type prometheusConfig struct {
	ScrapeConfigs []struct {
		JobName     string `yaml:"job_name"`
		MetricsPath string `yaml:"metrics_path"`
		DNSSD       []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
	RuleFiles []string `yaml:"rule_files"`
}

// mountedFile is the file in this repository that a service mounts at
// target (or under it): its path, and whether the mount is read-only.
func mountedFile(t *testing.T, s types.ServiceConfig, target string) (string, bool) {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if rel, err := filepath.Rel(v.Target, target); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join(v.Source, rel), v.ReadOnly
		}
	}
	return "", false
}

// flagValue is the value of --name=value in a command line.
func flagValue(cmd []string, name string) string {
	for i, a := range cmd {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(cmd) {
			return cmd[i+1]
		}
	}
	return ""
}

// loadPrometheusConfig reads the configuration the prometheus service runs
// with: the file mounted where its --config.file points.
func loadPrometheusConfig(t *testing.T, p *types.Project) prometheusConfig {
	t.Helper()
	s := p.Services["prometheus"]
	path := flagValue(s.Command, "--config.file")
	if path == "" {
		path = "/etc/prometheus/prometheus.yml" // the image's default
	}
	src, ro := mountedFile(t, s, path)
	if src == "" {
		t.Fatalf("service prometheus reads %s, which no bind mount provides", path)
	}
	if !ro {
		t.Errorf("service prometheus mounts %s writable", src)
	}
	if want := mustAbs(t, filepath.Join(root, "deploy", "prometheus", "prometheus.yml")); src != want {
		t.Errorf("service prometheus runs %s; want the repository's %s", src, want)
	}
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("service prometheus: %v", err)
	}
	var cfg prometheusConfig
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	return cfg
}

// Prometheus scrapes every replica of the webhook and the worker where
// they serve /metrics, and the Temporal server; Grafana reads Prometheus
// and shows the dashboards kept in this repository.
func TestMonitoringIsWired(t *testing.T) {
	eachSetup(t, checkMonitoringIsWired)
}

func checkMonitoringIsWired(t *testing.T, p *types.Project) {
	wk, err := serviceConfig(p, "worker")
	if err != nil {
		t.Fatal(err)
	}
	wh, err := serviceConfig(p, "webhook")
	if err != nil {
		t.Fatal(err)
	}
	temporalMetrics := environment(p.Services["temporal"])["PROMETHEUS_ENDPOINT"]
	if h, _, err := net.SplitHostPort(temporalMetrics); err != nil || (h != "" && h != "0.0.0.0") {
		t.Errorf("temporal: PROMETHEUS_ENDPOINT=%q; want the server's metrics on all interfaces, e.g. 0.0.0.0:8000", temporalMetrics)
	}

	// Each scaled service by DNS service discovery (type A: one record per
	// replica), on the port it listens on.
	want := map[string]struct{ service, port string }{
		"dunning-webhook": {"webhook", portOf(wh.HTTPAddr)},
		"dunning-worker":  {"worker", portOf(wk.WorkerMetricsAddr)},
		"temporal":        {"temporal", portOf(temporalMetrics)},
	}
	cfg := loadPrometheusConfig(t, p)
	seen := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		if seen[sc.JobName] {
			t.Errorf("prometheus.yml: job %s twice", sc.JobName)
		}
		seen[sc.JobName] = true
		for _, sd := range sc.DNSSD {
			for _, name := range sd.Names {
				if _, ok := p.Services[name]; !ok {
					t.Errorf("prometheus.yml: job %s looks up %s, which is no service of docker-compose.yml", sc.JobName, name)
				}
			}
		}
		w, ok := want[sc.JobName]
		if !ok {
			continue
		}
		if sc.MetricsPath != "" && sc.MetricsPath != webhook.PathMetrics {
			t.Errorf("prometheus.yml: job %s scrapes %s; dunning serves %s", sc.JobName, sc.MetricsPath, webhook.PathMetrics)
		}
		if len(sc.StaticConfigs) > 0 || len(sc.DNSSD) != 1 {
			t.Errorf("prometheus.yml: job %s has %d static and %d DNS configs; want one dns_sd_config, so that every replica is scraped", sc.JobName, len(sc.StaticConfigs), len(sc.DNSSD))
			continue
		}
		sd := sc.DNSSD[0]
		if !slices.Equal(sd.Names, []string{w.service}) || sd.Type != "A" || strconv.Itoa(sd.Port) != w.port {
			t.Errorf("prometheus.yml: job %s finds %v (type %q) on port %d; want service %s, type A, port %s",
				sc.JobName, sd.Names, sd.Type, sd.Port, w.service, w.port)
		}
	}
	for job := range want {
		if !seen[job] {
			t.Errorf("prometheus.yml has no job %s", job)
		}
	}

	// Prometheus and Grafana sit on the network the parts of dunning are on.
	for _, name := range []string{"prometheus", "grafana"} {
		s := p.Services[name]
		if s.NetworkMode != "" {
			t.Errorf("service %s has network_mode %q; it stays on the compose network", name, s.NetworkMode)
		}
		for _, target := range []string{"worker", "webhook", "temporal"} {
			shared := false
			for n := range s.Networks {
				_, ok := p.Services[target].Networks[n]
				shared = shared || ok
			}
			if !shared {
				t.Errorf("service %s shares no network with %s (%v, %v)", name, target, s.Networks, p.Services[target].Networks)
			}
		}
	}

	// Grafana: its admin password from .env, its data source and dashboards
	// provisioned from files in this repository.
	g := p.Services["grafana"]
	genv := environment(g)
	if genv["GF_SECURITY_ADMIN_PASSWORD"] != operatorSecrets["GRAFANA_ADMIN_PASSWORD"] {
		t.Errorf("grafana: admin password %q, want GRAFANA_ADMIN_PASSWORD from .env", genv["GF_SECURITY_ADMIN_PASSWORD"])
	}
	if genv["GF_AUTH_ANONYMOUS_ENABLED"] == "true" || genv["GF_USERS_ALLOW_SIGN_UP"] == "true" {
		t.Error("grafana lets people in without the admin's say")
	}
	for _, v := range g.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if _, err := os.Stat(v.Source); err != nil {
			t.Errorf("grafana mounts %s, which is not in the repository: %v", v.Source, err)
		}
		if rel, err := filepath.Rel(mustAbs(t, root), v.Source); err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("grafana mounts %s, outside the repository", v.Source)
		}
		if !v.ReadOnly {
			t.Errorf("grafana mounts %s writable", v.Source)
		}
	}
	provisioning := genv["GF_PATHS_PROVISIONING"]
	if provisioning == "" {
		provisioning = "/etc/grafana/provisioning" // the image's default
	}
	prov, _ := mountedFile(t, g, provisioning)
	if prov == "" {
		t.Fatalf("grafana reads its provisioning from %s, which no bind mount provides", provisioning)
	}

	sources := loadGrafanaProvisioning(t, filepath.Join(prov, "datasources")).Datasources
	if len(sources) != 1 {
		t.Fatalf("%s provisions %d data sources, want one (Prometheus)", prov, len(sources))
	}
	ds := sources[0]
	u, err := url.Parse(ds.URL)
	listen := flagValue(p.Services["prometheus"].Command, "--web.listen-address")
	if listen == "" {
		listen = "0.0.0.0:9090" // Prometheus' default
	}
	if err != nil || ds.Type != "prometheus" || u.Hostname() != "prometheus" || u.Port() != portOf(listen) {
		t.Errorf("grafana's data source %s (type %s) is not the prometheus service on %s", ds.URL, ds.Type, listen)
	}

	providers := loadGrafanaProvisioning(t, filepath.Join(prov, "dashboards")).Providers
	if len(providers) == 0 {
		t.Fatalf("%s provisions no dashboards", prov)
	}
	for _, dp := range providers {
		dir, ro := mountedFile(t, g, dp.Options.Path)
		if dir == "" || !ro {
			t.Errorf("dashboard provider %s reads %s, which no read-only bind mount provides", dp.Name, dp.Options.Path)
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		if len(files) == 0 {
			t.Errorf("dashboard provider %s reads %s (%s in the repository), which holds no dashboard", dp.Name, dp.Options.Path, dir)
		}
		for _, f := range files {
			for _, d := range loadDashboard(t, f).datasources() {
				if d.UID != ds.UID || (d.Type != "" && d.Type != ds.Type) {
					t.Errorf("%s uses data source %+v; Grafana has only %s (uid %s)", f, d, ds.Name, ds.UID)
				}
			}
		}
	}
	if home := genv["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" {
		if f, _ := mountedFile(t, g, home); f == "" {
			t.Errorf("grafana's home dashboard %s is not mounted", home)
		} else if _, err := os.Stat(f); err != nil {
			t.Errorf("grafana's home dashboard: %v", err)
		}
	}
}

// grafanaDatasource is a data source as Grafana's provisioning files give it.
type grafanaDatasource struct {
	Name string `yaml:"name"`
	UID  string `yaml:"uid"`
	Type string `yaml:"type"`
	URL  string `yaml:"url"`
}

// grafanaDashboardProvider is a dashboard provider of Grafana's
// provisioning files.
type grafanaDashboardProvider struct {
	Name    string `yaml:"name"`
	Type    string `yaml:"type"`
	Options struct {
		Path string `yaml:"path"`
	} `yaml:"options"`
}

// grafanaProvisioning is what Grafana's provisioning files in one folder
// provision, all files together.
type grafanaProvisioning struct {
	Datasources []grafanaDatasource        `yaml:"datasources"`
	Providers   []grafanaDashboardProvider `yaml:"providers"`
}

func loadGrafanaProvisioning(t *testing.T, dir string) grafanaProvisioning {
	t.Helper()
	var all grafanaProvisioning
	for _, pattern := range []string{"*.yml", "*.yaml"} {
		files, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, f := range files {
			var one grafanaProvisioning
			decodeFile(t, f, yaml.Unmarshal, &one)
			all.Datasources = append(all.Datasources, one.Datasources...)
			all.Providers = append(all.Providers, one.Providers...)
		}
	}
	return all
}

// decodeFile reads path into v with unmarshal (yaml.Unmarshal,
// json.Unmarshal).
func decodeFile(t *testing.T, path string, unmarshal func([]byte, any) error, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
