package main

import (
	"io"
	"log/slog"
	"testing"

	"dunning/config"
)

// Every process dials with the configured connection and dunning's logger.
func TestClientOptionsCarryTheConnection(t *testing.T) {
	vars := map[string]string{"TEMPORAL_ADDRESS": "temporal.internal:7233", "TEMPORAL_NAMESPACE": "billing",
		"TEMPORAL_TLS": "true", "TEMPORAL_TLS_SERVER_NAME": "frontend.internal", "TEMPORAL_CONFIG_FILE": ""}
	cfg, err := config.LoadLocal(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	opts, err := clientOptions(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if opts.HostPort != "temporal.internal:7233" || opts.Namespace != "billing" {
		t.Errorf("options lead to %s namespace %s", opts.HostPort, opts.Namespace)
	}
	if opts.ConnectionOptions.TLS == nil || opts.ConnectionOptions.TLS.ServerName != "frontend.internal" {
		t.Errorf("TLS %+v, want TLS checking the server as frontend.internal", opts.ConnectionOptions.TLS)
	}
	if opts.Logger == nil {
		t.Error("no logger: the SDK would log on its own")
	}
}
