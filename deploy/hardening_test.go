package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"

	"dunning/internal/testenv"
)

// writable are the paths each service writes to, as its image and its
// command need: the data it keeps (a volume) or scratch (a tmpfs). Every
// other path of every container is read-only.
var writable = map[string][]string{
	// PGDATA, and the socket and lock directory.
	"postgresql": {"/var/lib/postgresql/data", "/var/run/postgresql"},
	// --storage.tsdb.path.
	"prometheus": {"/prometheus"},
	// The database, plugins and sessions; its log folder.
	"grafana": {"/var/lib/grafana", "/var/log/grafana"},
	// Caddy's data and autosaved configuration.
	"webhook-proxy": {"/data", "/config"},
	// deploy/temporal-ui/start.sh writes the UI's configuration here.
	"temporal-ui": {"/tmp"},
}

// Every container runs on a read-only root file system, with every Linux
// capability dropped and no privilege gain; what a service must write is
// a volume or a tmpfs.
func TestEveryContainerIsHardened(t *testing.T) {
	eachSetup(t, checkEveryContainerIsHardened)
}

func checkEveryContainerIsHardened(t *testing.T, p *types.Project) {
	for name, s := range p.Services {
		if !s.ReadOnly {
			t.Errorf("service %s: read_only is not set; its root file system must be read-only", name)
		}
		if !slices.Equal(s.CapDrop, []string{"ALL"}) {
			t.Errorf("service %s drops capabilities %v, want [ALL]", name, s.CapDrop)
		}
		if len(s.CapAdd) > 0 || s.Privileged {
			t.Errorf("service %s adds capabilities %v (privileged %v); none are needed", name, s.CapAdd, s.Privileged)
		}
		if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("service %s: security_opt %v lacks no-new-privileges:true", name, s.SecurityOpt)
		}
		for _, path := range writable[name] {
			if !writableAt(s, path) {
				t.Errorf("service %s writes to %s, which is neither a writable volume nor a tmpfs", name, path)
			}
		}
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind && !v.ReadOnly {
				t.Errorf("service %s mounts %s writable; files from the repository are mounted read-only", name, v.Source)
			}
		}
	}
	for name, path := range map[string]string{"postgresql": "/var/lib/postgresql/data", "prometheus": "/prometheus", "grafana": "/var/lib/grafana"} {
		if !volumeAt(p.Services[name], path) {
			t.Errorf("service %s keeps its data in %s, which is not a writable volume: it would be lost with the container", name, path)
		}
	}
	if got := flagValue(p.Services["prometheus"].Command, "--storage.tsdb.path"); got != "/prometheus" {
		t.Errorf("prometheus stores its data in %q, not in its volume /prometheus", got)
	}
	// PostgreSQL's entrypoint changes owners and users only when started
	// as root, which needs capabilities the container does not have.
	if u := p.Services["postgresql"].User; u == "" || u == "root" || u == "0" {
		t.Errorf("postgresql runs as %q; with no capabilities it must start as its own user (postgres)", u)
	}
}

func writableAt(s types.ServiceConfig, path string) bool {
	for _, m := range s.Tmpfs {
		if target, _, _ := strings.Cut(m, ":"); target == path {
			return true
		}
	}
	for _, v := range s.Volumes {
		if v.Target == path && !v.ReadOnly {
			return true
		}
	}
	return false
}

func volumeAt(s types.ServiceConfig, path string) bool {
	for _, v := range s.Volumes {
		if v.Target == path && v.Type == types.VolumeTypeVolume && !v.ReadOnly {
			return true
		}
	}
	return false
}

// The worker gets WORKER_STOP_TIMEOUT to let running activities finish;
// Docker must not kill it before.
func TestWorkerStopsWithinItsGracePeriod(t *testing.T) {
	eachSetup(t, func(t *testing.T, p *types.Project) {
		cfg, err := serviceConfig(p, "worker")
		if err != nil {
			t.Fatal(err)
		}
		grace := p.Services["worker"].StopGracePeriod
		if grace == nil {
			t.Fatal("the worker has no stop_grace_period: Docker's 10s default would cut its drain short")
		}
		// The margin covers the process' own shutdown after the drain.
		if g := time.Duration(*grace); g < cfg.WorkerStopTimeout+10*time.Second {
			t.Errorf("the worker's stop_grace_period %s does not exceed WORKER_STOP_TIMEOUT %s by 10s", g, cfg.WorkerStopTimeout)
		}
	})
}

// The Temporal server renders deploy/temporal/compose.yaml from its
// service's environment into what the rest of the stack expects:
// PostgreSQL for persistence and visibility in the databases the schema
// job sets up, the frontend reachable as temporal:7233 on the compose
// network, its metrics where Prometheus scrapes them.
func TestTemporalServerConfig(t *testing.T) {
	eachSetup(t, checkTemporalServerConfig)
}

func checkTemporalServerConfig(t *testing.T, p *types.Project) {
	s := p.Services["temporal"]
	dir := flagValue(s.Entrypoint, "--config")
	if s.Entrypoint[0] != "temporal-server" || dir == "" || flagValue(s.Entrypoint, "--env") != "compose" || s.Entrypoint[len(s.Entrypoint)-1] != "start" {
		t.Fatalf("temporal runs %v; want temporal-server --config <dir> --env compose … start", s.Entrypoint)
	}
	file, ok := mountedFile(t, s, dir+"/compose.yaml")
	if !ok {
		t.Fatalf("temporal reads %s/compose.yaml, which no read-only volume mounts", dir)
	}
	cmd := exec.Command(testenv.Tool(t, "TEMPORAL_SERVER", "temporal-server"),
		"--root", "/", "--config", filepath.Dir(file), "--env", strings.TrimSuffix(filepath.Base(file), ".yaml"), "render-config")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range environment(s) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("temporal-server render-config on %s: %v\n%s", file, err, out)
	}
	var cfg struct {
		Persistence struct {
			DefaultStore    string `yaml:"defaultStore"`
			VisibilityStore string `yaml:"visibilityStore"`
			DataStores      map[string]struct {
				SQL *struct {
					PluginName   string `yaml:"pluginName"`
					DatabaseName string `yaml:"databaseName"`
					ConnectAddr  string `yaml:"connectAddr"`
					User         string `yaml:"user"`
				} `yaml:"sql"`
			} `yaml:"datastores"`
		} `yaml:"persistence"`
		Global struct {
			Metrics struct {
				Prometheus struct {
					ListenAddress string `yaml:"listenAddress"`
				} `yaml:"prometheus"`
			} `yaml:"metrics"`
		} `yaml:"global"`
		Services map[string]struct {
			RPC struct {
				GRPCPort        int    `yaml:"grpcPort"`
				BindOnIP        string `yaml:"bindOnIP"`
				BindOnLocalHost bool   `yaml:"bindOnLocalHost"`
			} `yaml:"rpc"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("rendered config: %v\n%s", err, out)
	}
	// render-config leaves passwords out: the template must take both
	// from POSTGRES_PWD, which carries POSTGRES_PASSWORD (checked above).
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), `password: "{{ env "POSTGRES_PWD" }}"`); n != 2 {
		t.Errorf("%s takes the password of %d of its 2 stores from POSTGRES_PWD", file, n)
	}
	pg := environment(p.Services["postgresql"])
	schema := environment(p.Services["temporal-schema"])
	for store, db := range map[string]string{cfg.Persistence.DefaultStore: schema["TEMPORAL_DB"], cfg.Persistence.VisibilityStore: schema["TEMPORAL_VISIBILITY_DB"]} {
		ds := cfg.Persistence.DataStores[store].SQL
		if ds == nil {
			t.Errorf("store %s is not SQL", store)
			continue
		}
		if ds.PluginName != "postgres12" || ds.ConnectAddr != "postgresql:5432" || ds.DatabaseName != db || ds.User != pg["POSTGRES_USER"] {
			t.Errorf("store %s: plugin %q at %q database %q as %q; want postgres12 at postgresql:5432, database %q (temporal-schema), as %q",
				store, ds.PluginName, ds.ConnectAddr, ds.DatabaseName, ds.User, db, pg["POSTGRES_USER"])
		}
	}
	if got, want := cfg.Global.Metrics.Prometheus.ListenAddress, environment(s)["PROMETHEUS_ENDPOINT"]; got != want || want == "" {
		t.Errorf("the server's metrics listen on %q, Prometheus scrapes PROMETHEUS_ENDPOINT %q", got, want)
	}
	fe := cfg.Services["frontend"].RPC
	if fe.GRPCPort != 7233 || fe.BindOnIP != "0.0.0.0" {
		t.Errorf("the frontend listens on %s:%d; the stack reaches it as temporal:7233", fe.BindOnIP, fe.GRPCPort)
	}
	for _, name := range []string{"history", "matching", "worker"} {
		if rpc, ok := cfg.Services[name]; !ok || !rpc.RPC.BindOnLocalHost {
			t.Errorf("service %s of the server is not kept on the container's loopback: %+v", name, rpc)
		}
	}
	for _, port := range s.Ports {
		if port.Target != 7233 {
			t.Errorf("temporal publishes port %d; only the frontend, on loopback", port.Target)
		}
	}
}

// deploy/temporal-ui/start.sh writes the UI's configuration from the
// service's environment and starts the UI server on it.
func TestTemporalUIStartScript(t *testing.T) {
	p := project(t)
	s := p.Services["temporal-ui"]
	if len(s.Entrypoint) != 2 || s.Entrypoint[0] != "/bin/sh" {
		t.Fatalf("temporal-ui runs %v, want [/bin/sh <script>]", s.Entrypoint)
	}
	script, ok := mountedFile(t, s, s.Entrypoint[1])
	if !ok {
		t.Fatalf("temporal-ui runs %s, which no read-only volume mounts", s.Entrypoint[1])
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "ui-server")
	// A stand-in for the UI server: records its arguments and the
	// configuration it is pointed at.
	if err := os.WriteFile(fake, []byte(`#!/bin/sh
echo "$*" > "$FAKE_ARGS"
cat "$4/$6.yaml" > "$FAKE_CONFIG"
`), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", script)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TEMPORAL_UI_SERVER=" + fake, "TEMPORAL_UI_CONFIG_DIR=" + filepath.Join(dir, "config"),
		"FAKE_ARGS=" + filepath.Join(dir, "args"), "FAKE_CONFIG=" + filepath.Join(dir, "rendered")}
	for k, v := range environment(s) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "rendered"))
	if err != nil {
		t.Fatalf("the UI server was not started on a configuration: %v", err)
	}
	var cfg struct {
		TemporalGRPCAddress string `yaml:"temporalGrpcAddress"`
		Port                int    `yaml:"port"`
		EnableUI            bool   `yaml:"enableUi"`
		DefaultNamespace    string `yaml:"defaultNamespace"`
		CORS                struct {
			AllowOrigins []string `yaml:"allowOrigins"`
		} `yaml:"cors"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("UI configuration: %v\n%s", err, raw)
	}
	env := environment(s)
	worker := environment(p.Services["worker"])
	if cfg.TemporalGRPCAddress != worker["TEMPORAL_ADDRESS"] || !cfg.EnableUI || cfg.DefaultNamespace != worker["TEMPORAL_NAMESPACE"] ||
		!slices.Equal(cfg.CORS.AllowOrigins, []string{env["TEMPORAL_CORS_ORIGINS"]}) {
		t.Errorf("UI configuration:\n%s\nwant Temporal at %s, namespace %s, origin %s", raw, worker["TEMPORAL_ADDRESS"], worker["TEMPORAL_NAMESPACE"], env["TEMPORAL_CORS_ORIGINS"])
	}
	if len(s.Ports) != 1 || int(s.Ports[0].Target) != cfg.Port {
		t.Errorf("the UI listens on %d, temporal-ui publishes %+v", cfg.Port, s.Ports)
	}
}
