package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The worker's container health check: `dunning healthcheck --url` passes
// on 200 and fails, naming the URL, on anything else or no answer.
func TestHealthcheckURL(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	ctx := context.Background()

	if err := runHealthcheck(ctx, []string{"--url", srv.URL + "/metrics"}); err != nil {
		t.Fatalf("healthy endpoint: %v", err)
	}
	status = http.StatusServiceUnavailable
	if err := runHealthcheck(ctx, []string{"--url", srv.URL + "/metrics"}); err == nil || !strings.Contains(err.Error(), "/metrics") {
		t.Fatalf("503: got %v, want an error naming the URL", err)
	}
	srv.Close()
	if err := runHealthcheck(ctx, []string{"--url", srv.URL + "/metrics"}); err == nil {
		t.Fatal("closed endpoint: no error")
	}
}

// Without --url it probes the webhook's /healthz on HTTP_ADDR.
func TestHealthcheckDefaultsToWebhook(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	t.Setenv("HTTP_ADDR", strings.TrimPrefix(srv.URL, "http://"))
	if err := runHealthcheck(context.Background(), nil); err != nil {
		t.Fatalf("webhook /healthz: %v", err)
	}
}
