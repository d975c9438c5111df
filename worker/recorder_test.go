package worker_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	sdkworker "go.temporal.io/sdk/worker"

	"dunning/activities"
	"dunning/e2e"
	"dunning/internal/stripefixture"
	"dunning/internal/testenv"
	"dunning/webhook"
	"dunning/worker"
)

// recordDir is the folder DUNNING_RECORD_HISTORIES names for the
// recorders to write histories into; without it the recorder is skipped.
func recordDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("DUNNING_RECORD_HISTORIES")
	if dir == "" {
		t.Skip("set DUNNING_RECORD_HISTORIES to a folder to record histories into")
	}
	return dir
}

// dryRecorder starts a Temporal dev server and a worker on task queue q
// with every workflow and the activities dry (no peer configured). The
// caller registers the activities it answers itself, then starts the
// worker.
func dryRecorder(t *testing.T, q string) (*testenv.Temporal, sdkworker.Worker) {
	t.Helper()
	tmp := testenv.StartTemporal(t)
	w := sdkworker.New(tmp.Client, q, sdkworker.Options{})
	worker.RegisterWorkflows(w)
	w.RegisterActivity(&activities.Activities{Temporal: tmp.Client, TaskQueue: q, Log: slog.Default()})
	return tmp, w
}

// deprovisionRecorder starts a Temporal dev server, dunning's worker (its
// stages one or two seconds apart) and webhook, against the e2e stand-ins
// of every peer, and returns them with a function that posts a signed
// Stripe event to the webhook. name tells the stand-ins' secrets apart.
func deprovisionRecorder(t *testing.T, name string) (*testenv.Temporal, *e2e.Peers, func(string, stripefixture.Options)) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tmp := testenv.StartTemporal(t)
	peers := e2e.NewPeers("control-secret-for-the-"+name+"-record-0123456789", "notice-secret-for-the-"+name+"-record-0123456789")
	t.Cleanup(peers.Close)
	env := peers.Env("http://127.0.0.1:1")
	env["DUNNING_RETRY_SCHEDULE"], env["DUNNING_GRACE_PERIOD"], env["DUNNING_DEPROVISION_AFTER"] = "1s", "2s", "2s"
	cfg := tmp.Config(t, env)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, tmp.Client, cfg, log) }()
	t.Cleanup(func() { cancel(); <-done })
	h, err := webhook.NewHandler(tmp.Client, webhook.Options{
		Secrets: []string{e2e.WebhookSecret}, Tolerance: 5 * time.Minute, MaxBody: 512 << 10, StartTimeout: 5 * time.Second,
		TaskQueue: cfg.TemporalTaskQueue, Logger: log, Observe: peers.Stripe.Observe,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	send := func(typ string, o stripefixture.Options) {
		t.Helper()
		body, err := stripefixture.Event(typ, o)
		if err != nil {
			t.Fatal(err)
		}
		req, err := stripefixture.Request(srv.URL+webhook.PathStripe, body, e2e.WebhookSecret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("webhook answered %d to %s", resp.StatusCode, typ)
		}
	}
	return tmp, peers, send
}
