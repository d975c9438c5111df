// Package testenv starts the real peers that dunning's integration tests
// run against: a Temporal dev server from the pinned CLI that `make tools`
// builds, set up the way `dunning dev` sets up its own.
package testenv

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"dunning/config"
	"dunning/worker"
)

// Tool returns the path of a pinned tool: from the environment variable
// env (which the Makefile sets), or found under .tools/bin of the module
// root. A test that needs a missing tool fails: integration tests are part
// of `make test` and must not be skipped quietly.
func Tool(t testing.TB, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, ".tools", "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("%s not found: run `make tools` (or set %s)", name, env)
		}
		dir = parent
	}
}

// Temporal is a running dev server with a client on it.
type Temporal struct {
	Address   string
	Namespace string
	Client    client.Client
	server    *testsuite.DevServer
}

// FreeAddress returns a loopback address nothing listens on right now.
func FreeAddress(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// StartTemporal starts a dev server on a free port, with dunning's search
// attributes and retention set up, and stops it when the test ends.
func StartTemporal(t testing.TB) *Temporal {
	t.Helper()
	return StartTemporalAt(t, "")
}

// StartTemporalAt starts a dev server on addr (host:port), or, with addr
// empty, on a free port, and on another if it does not come up there (its
// port taken between FreeAddress and its start, by another test binary's
// server).
func StartTemporalAt(t testing.TB, addr string) *Temporal {
	t.Helper()
	return onFreePort(t, addr, func(a string) (*Temporal, error) {
		srv, err := startSDKDevServer(t, a)
		if err != nil {
			return nil, err
		}
		return setUpTemporal(t, a, srv), nil
	})
}

// onFreePort starts a dev server with start on addr or, with addr empty,
// on a free port, and on another (three in all) when it cannot start on
// one; the last failure fails the test.
func onFreePort[T any](t testing.TB, addr string, start func(addr string) (T, error)) T {
	t.Helper()
	attempts := 1
	if addr == "" {
		attempts = 3
	}
	for i := 1; ; i++ {
		a := addr
		if a == "" {
			a = FreeAddress(t)
		}
		v, err := start(a)
		if err == nil {
			return v
		}
		if i == attempts {
			t.Fatalf("temporal dev server: %v", err)
		}
		t.Logf("temporal dev server did not start (%v); trying another port", err)
	}
}

// startSDKDevServer starts the SDK's dev server on addr; its error carries
// the end of what the server wrote, which says why it did not come up.
func startSDKDevServer(t testing.TB, addr string) (*testsuite.DevServer, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A server whose port is taken exits at once, but the SDK would wait
	// out its whole timeout for it: its own words end the wait.
	out := &tailBuffer{max: 4 << 10, watch: "address already in use", seen: cancel}
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath: Tool(t, "TEMPORAL_CLI", "temporal"),
		ClientOptions: &client.Options{
			HostPort:  addr,
			Namespace: "default",
			Logger:    tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		},
		LogLevel: "error",
		Stdout:   io.Discard,
		Stderr:   out,
	})
	if err != nil {
		return nil, fmt.Errorf("start temporal dev server on %s: %w (its output: %q)", addr, err, out.String())
	}
	return srv, nil
}

// setUpTemporal sets dunning's namespace up on a server that answers.
func setUpTemporal(t testing.TB, addr string, srv *testsuite.DevServer) *Temporal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	tmp := &Temporal{Address: addr, Namespace: "default", Client: srv.Client(), server: srv}
	t.Cleanup(tmp.Stop)
	if err := worker.SetupNamespace(ctx, tmp.Client, tmp.Namespace, config.MinRetention, logger); err != nil {
		t.Fatalf("set up namespace: %v", err)
	}
	return tmp
}

// Stop stops the server; calling it again does nothing.
func (tmp *Temporal) Stop() {
	if tmp.server == nil {
		return
	}
	tmp.Client.Close()
	_ = tmp.server.Stop()
	tmp.server = nil
}

// Config returns a dunning config pointed at this server.
func (tmp *Temporal) Config(t testing.TB, env map[string]string) config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) string {
		switch k {
		case "TEMPORAL_ADDRESS":
			return tmp.Address
		case "TEMPORAL_NAMESPACE":
			return tmp.Namespace
		}
		return env[k]
	})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// String names the server in test output.
func (tmp *Temporal) String() string { return fmt.Sprintf("temporal dev server at %s", tmp.Address) }

// RunWithoutUserConfig runs a test binary's tests with the user's
// configuration folder pointed at an empty one, so that a Temporal CLI
// profile on the machine running them (~/.config/temporalio/temporal.toml)
// does not leak into them. For TestMain: os.Exit(RunWithoutUserConfig(m)).
func RunWithoutUserConfig(m *testing.M) int {
	dir, err := os.MkdirTemp("", "dunning-test-config")
	if err != nil {
		fmt.Fprintln(os.Stderr, "test configuration folder:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Setenv("XDG_CONFIG_HOME", dir)
	return m.Run()
}

// tailBuffer keeps the last max bytes written to it, from any goroutine,
// and calls seen once when they first hold watch.
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	b     []byte
	watch string
	seen  func()
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = w.b[len(w.b)-w.max:]
	}
	if w.seen != nil && w.watch != "" && strings.Contains(string(w.b), w.watch) {
		w.seen()
		w.seen = nil
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}
