package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"dunning/config"
	"dunning/worker"
)

// TemporalOptions shape the dev server StartDevServer starts.
type TemporalOptions struct {
	// DBFilename keeps the server's state in a SQLite file (in WAL mode),
	// so that a server started again on the same file and address finds
	// every workflow, timer and task where the last one left them. Empty
	// keeps the state in memory.
	DBFilename string
	// LogPath is the file the server's output is appended to; required.
	LogPath string
	// Metrics serves the server's own Prometheus metrics on a free port
	// (DevServer.PersistenceOps reads them).
	Metrics bool
}

// devServerStartTimeout bounds how long a dev server may take to answer.
const devServerStartTimeout = time.Minute

// DevServer is a Temporal dev server process that a test starts, stops and
// starts again, with a client on it and dunning's namespace set up as
// StartTemporal sets it up.
type DevServer struct {
	Address   string
	Namespace string
	Client    client.Client
	proc      *Process
	// metrics is the server's /metrics URL, with TemporalOptions.Metrics.
	metrics string
}

// StartDevServer starts `temporal server start-dev` on addr (host:port)
// and waits until it answers; it is stopped when the test ends. With addr
// empty it takes a free port, and another if the server cannot start on
// it (a port taken in between). A server that exits before it answers
// fails the test at once, with its output.
//
// Unlike StartTemporal it keeps hold of the process, so that a test can
// stop the server and start it again on the same address and database
// file (StartDevServer again with o.DBFilename).
func StartDevServer(t testing.TB, addr string, o TemporalOptions) *DevServer {
	t.Helper()
	return onFreePort(t, addr, func(a string) (*DevServer, error) { return startDevServer(t, a, o) })
}

func startDevServer(t testing.TB, addr string, o TemporalOptions) (*DevServer, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", addr, err)
	}
	args := []string{"server", "start-dev", "--ip", host, "--port", port, "--namespace", "default", "--headless",
		"--log-level", "warn", "--dynamic-config-value", "frontend.enableServerVersionCheck=false"}
	if o.DBFilename != "" {
		args = append(args, "--db-filename", o.DBFilename,
			"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=1")
	}
	metrics := ""
	if o.Metrics {
		ma := FreeAddress(t)
		_, mport, _ := net.SplitHostPort(ma)
		args = append(args, "--metrics-port", mport)
		metrics = "http://" + net.JoinHostPort(host, mport) + "/metrics"
	}
	proc := StartProcess(t, "temporal dev server "+addr, o.LogPath, os.Environ(), Tool(t, "TEMPORAL_CLI", "temporal"), args...)

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), devServerStartTimeout)
	defer cancel()
	var c client.Client
	for {
		dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
		c, err = client.DialContext(dctx, client.Options{HostPort: addr, Namespace: "default", Logger: tlog.NewStructuredLogger(logger)})
		dcancel()
		if err == nil {
			break
		}
		select {
		case <-proc.Exited():
			return nil, fmt.Errorf("exited on %s before answering (%v); its output:\n%s", addr, proc.Err(), tailOf(o.LogPath, 30))
		case <-ctx.Done():
			_ = proc.Kill()
			return nil, fmt.Errorf("no answer on %s within %s (last: %v); its output:\n%s", addr, devServerStartTimeout, err, tailOf(o.LogPath, 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
	d := &DevServer{Address: addr, Namespace: "default", Client: c, proc: proc, metrics: metrics}
	t.Cleanup(d.Stop)
	if err := worker.SetupNamespace(ctx, c, d.Namespace, config.MinRetention, logger); err != nil {
		d.Stop()
		return nil, fmt.Errorf("set up namespace on %s: %w", addr, err)
	}
	return d, nil
}

// Stop closes the client and stops the server the way Ctrl-C does,
// waiting for it to exit; calling it again does nothing.
func (d *DevServer) Stop() {
	if !d.proc.Running() {
		return
	}
	d.Client.Close()
	_ = d.proc.Signal(os.Interrupt, 30*time.Second)
}

// Running reports whether the server process has not exited.
func (d *DevServer) Running() bool { return d.proc.Running() }

// Pid is the server process's ID.
func (d *DevServer) Pid() int { return d.proc.Pid() }

// Kill ends the server with SIGKILL, as a crash or an OOM kill would,
// closing the client first; the database file is left as the crash left
// it, for StartDevServer to start on again.
func (d *DevServer) Kill() error {
	if !d.proc.Running() {
		return nil
	}
	d.Client.Close()
	return d.proc.Kill()
}

// tailOf returns the last n lines of a file, for failure messages.
func tailOf(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Process is a child process a test started, with its output in a file.
// It is killed when the test ends, if still running.
type Process struct {
	// Name says what it is in test output, e.g. "worker".
	Name string
	// LogPath is the file its stdout and stderr go to; every start of the
	// same name appends to it.
	LogPath string

	cmd    *exec.Cmd
	exited chan struct{}
	mu     sync.Mutex
	err    error
}

// StartProcess starts bin with args and exactly the environment env
// (KEY=VALUE), its output appended to logPath.
func StartProcess(t testing.TB, name, logPath string, env []string, bin string, args ...string) *Process {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("%s: open log: %v", name, err)
	}
	fmt.Fprintf(f, "---- %s started %s\n", name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = dieWithTest()
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s (%s): %v", name, bin, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(f, "---- %s exited %s: %v\n", name, time.Now().Format(time.RFC3339Nano), err)
		f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.exited)
	}()
	t.Cleanup(func() { _ = p.Kill() })
	return p
}

// Pid is the process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is how the process ended; nil while it runs or after a clean exit.
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Kill ends the process with SIGKILL, as a crash or an OOM kill would, and
// waits for it to be gone. Killing an exited process does nothing.
func (p *Process) Kill() error {
	if !p.Running() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.Name, err)
	}
	<-p.exited
	return nil
}

// Stop asks the process to end with SIGTERM and waits up to grace, then
// kills it. It reports an error when the process had to be killed.
func (p *Process) Stop(grace time.Duration) error {
	return p.Signal(syscall.SIGTERM, grace)
}

// Send sends sig to the process and returns at once; Exited says when it
// is gone.
func (p *Process) Send(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", p.Name, err)
	}
	return nil
}

// Signal sends sig to the process and waits up to grace for it to exit,
// then kills it. It reports an error when the process had to be killed.
func (p *Process) Signal(sig os.Signal, grace time.Duration) error {
	if !p.Running() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", p.Name, err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
		_ = p.Kill()
		return fmt.Errorf("%s did not exit within %s of %v; killed", p.Name, grace, sig)
	}
}

// dieWithTest has a process started for a test killed when the test
// binary dies, also where no cleanup runs (a `go test -timeout` panic, a
// SIGKILL), so that no server outlives its test.
func dieWithTest() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
