package webhook_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"dunning/internal/stripefixture"
	"dunning/webhook"
	"dunning/workflows"
)

// nopTemporal accepts every start at once and keeps nothing, so that the
// benchmark measures the webhook's own work.
type nopTemporal struct{}

func (nopTemporal) ExecuteWorkflow(_ context.Context, opts client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	return fakeRun{id: opts.ID}, nil
}

func (nopTemporal) CheckHealth(context.Context, *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	return &client.CheckHealthResponse{}, nil
}

// BenchmarkWebhook measures one delivery of a handled event: read the body,
// verify the signature, decode the event, build the start request, answer.
// Bodies are built and signed once, outside the timed loop; the handler's
// clock is fixed at the signing time so the signatures stay valid.
func BenchmarkWebhook(b *testing.B) {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	h, err := webhook.NewHandler(nopTemporal{}, webhook.Options{
		Secrets:      []string{secret},
		Tolerance:    5 * time.Minute,
		MaxBody:      512 << 10,
		StartTimeout: 5 * time.Second,
		TaskQueue:    taskQueue,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registry:     prometheus.NewRegistry(),
		Now:          func() time.Time { return now },
	})
	if err != nil {
		b.Fatal(err)
	}

	type delivery struct {
		body   []byte
		header http.Header
	}
	var deliveries []delivery
	for _, typ := range workflows.HandledEventTypes() {
		body, err := stripefixture.Event(typ, stripefixture.Options{Created: now})
		if err != nil {
			b.Fatal(err)
		}
		header := http.Header{}
		header.Set("Content-Type", "application/json; charset=utf-8")
		header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
		header.Set(webhook.SignatureHeader, stripefixture.Sign(body, now, secret))
		deliveries = append(deliveries, delivery{body: body, header: header})
	}
	base := httptest.NewRequest(http.MethodPost, webhook.PathStripe, nil)

	// Every delivery is accepted before timing starts.
	for _, d := range deliveries {
		req := base.Clone(context.Background())
		req.Header, req.Body, req.ContentLength = d.header, io.NopCloser(bytes.NewReader(d.body)), int64(len(d.body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"status":"started"`)) {
			b.Fatalf("delivery answered %d: %s", rec.Code, rec.Body)
		}
	}

	var bodyReader bytes.Reader
	req := *base
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d := deliveries[i%len(deliveries)]
		bodyReader.Reset(d.body)
		req.Header, req.Body, req.ContentLength = d.header, io.NopCloser(&bodyReader), int64(len(d.body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, &req)
		if rec.Code != http.StatusOK {
			b.Fatalf("delivery answered %d: %s", rec.Code, rec.Body)
		}
	}
}
