package testenv

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
)

// A dev server whose port is taken says so and exits; the start gives up
// on its word (the context cancelled, not timed out) and reports it, so
// that StartTemporal can try another port at once.
func TestATakenPortEndsTheStartWithTheServersWords(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv, err := startSDKDevServer(t, ln.Addr().String())
	if err == nil {
		_ = srv.Stop()
		t.Fatal("a dev server started on a taken port")
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("error %v; want the start ended on the server's own words", err)
	}
}
