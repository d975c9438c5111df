package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// StripeMockKey is a test-mode secret key that stripe-mock accepts.
const StripeMockKey = "sk_test_123"

// stripeMockStartTimeout bounds how long stripe-mock may take to load its
// OpenAPI spec and answer.
const stripeMockStartTimeout = 20 * time.Second

// StartStripeMock starts the pinned stripe-mock on a free loopback port,
// waits until it answers, stops it when the test ends, and returns its base
// URL (http://127.0.0.1:port), to be used as the Stripe API base URL.
//
// stripe-mock checks every request against Stripe's OpenAPI spec and
// answers with fixture objects; it keeps no state.
func StartStripeMock(t testing.TB) string {
	t.Helper()
	bin := Tool(t, "STRIPE_MOCK", "stripe-mock")
	addr := FreeAddress(t)
	// stripe-mock also serves HTTPS, on 12112 unless told otherwise, and
	// exits if that port is taken: give it a port of its own choosing.
	cmd := exec.Command(bin, "-http-addr", addr, "-https-addr", "127.0.0.1:0")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = dieWithTest()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start stripe-mock %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Kill()
		<-exited
	}
	t.Cleanup(stop)

	base := "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), stripeMockStartTimeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	var lastErr error
	for {
		status, err := stripeMockReady(ctx, hc, base)
		if err == nil && status == http.StatusOK {
			return base
		}
		lastErr = err
		if err == nil {
			lastErr = fmt.Errorf("GET /v1/customers answered %d", status)
		}
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("stripe-mock exited before answering (%v); its output:\n%s", err, out)
		case <-ctx.Done():
			stop()
			t.Fatalf("stripe-mock at %s did not answer within %s (last: %v); its output:\n%s",
				addr, stripeMockStartTimeout, lastErr, out)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func stripeMockReady(ctx context.Context, hc *http.Client, base string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/customers", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+StripeMockKey)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// syncBuffer collects a child process's output for failure messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
