package activities_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"dunning/activities"
	"dunning/internal/portallink"
	"dunning/notify"
)

const portalSecretNew = "portal-secret-for-activity-tests-000000002"

// attemptWorker is one worker's Activities for a notice: its
// configuration and its clocks.
type attemptWorker struct {
	publicURL string
	secrets   []string
	ttl       time.Duration
	now       time.Time
}

func (w attemptWorker) activities(t *testing.T, mailerURL string) *activities.Activities {
	t.Helper()
	n, err := notify.NewNoticeSender(notify.NoticeConfig{URL: mailerURL + "/mailer/notices", Secret: noticeSecret,
		Timeout: 5 * time.Second, Now: func() time.Time { return w.now }})
	if err != nil {
		t.Fatal(err)
	}
	links, err := portallink.NewLinks(w.publicURL, w.secrets, w.ttl)
	if err != nil {
		t.Fatal(err)
	}
	return &activities.Activities{Notices: n, PortalLinks: links, Log: quietLogger(), Now: func() time.Time { return w.now }}
}

// One notice, one body: an attempt of the Notice activity after the first
// (the mailer did not answer, or the worker was restarted) sends exactly
// the body the first sent under the same idempotency key, whatever
// changed on the worker in between. The mailer may have acted on the
// first; a receiver that compares bodies (as Stripe does) refuses another
// one under the same key, and one that does not may send two different
// emails. Temporal hands the first attempt's heartbeat to the next.
func TestNoticeRetrySendsTheSameBody(t *testing.T) {
	decided := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	first := attemptWorker{publicURL, []string{portalSecret}, 720 * time.Hour, decided.Add(time.Second)}
	for _, tc := range []struct {
		name      string
		noCreated bool // a notice scheduled by workflow code that did not set CreatedAt
		second    attemptWorker
	}{
		{"nothing changed", false, first},
		{"PORTAL_LINK_SECRET rotated (new first)", false,
			attemptWorker{publicURL, []string{portalSecretNew, portalSecret}, 720 * time.Hour, decided.Add(time.Minute)}},
		{"the link expired while the mailer was down", false,
			attemptWorker{publicURL, []string{portalSecret}, 720 * time.Hour, decided.Add(721 * time.Hour)}},
		{"PORTAL_LINK_TTL changed", false,
			attemptWorker{publicURL, []string{portalSecret}, 168 * time.Hour, decided.Add(time.Minute)}},
		{"PUBLIC_URL changed", false,
			attemptWorker{"https://pay.example.com", []string{portalSecret}, 720 * time.Hour, decided.Add(time.Minute)}},
		{"no CreatedAt, retried later", true,
			attemptWorker{publicURL, []string{portalSecret}, 720 * time.Hour, decided.Add(10 * time.Minute)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mailer := newPeer(t, answer{http.StatusServiceUnavailable, `{"error":"try later"}`}, answer{http.StatusAccepted, `{}`})
			in := noticeInput()
			in.CreatedAt = decided
			if tc.noCreated {
				in.CreatedAt = time.Time{}
			}

			var suite testsuite.WorkflowTestSuite
			env1 := suite.NewTestActivityEnvironment()
			lastBeat := lastHeartbeat(t, env1)
			acts1 := first.activities(t, mailer.URL)
			env1.RegisterActivity(acts1)
			if _, err := env1.ExecuteActivity(acts1.Notice, in); err == nil {
				t.Fatal("first attempt succeeded against a mailer answering 503")
			}

			env2 := suite.NewTestActivityEnvironment()
			heartbeat := lastBeat()
			if heartbeat != nil {
				env2.SetHeartbeatDetails(heartbeat)
			}
			acts2 := tc.second.activities(t, mailer.URL)
			env2.RegisterActivity(acts2)
			if _, err := env2.ExecuteActivity(acts2.Notice, in); err != nil {
				t.Fatalf("second attempt: %v", err)
			}

			sent := mailer.seen.list()
			if len(sent) != 2 {
				t.Fatalf("mailer got %d requests, want 2", len(sent))
			}
			if sent[0].IdempotencyKey != sent[1].IdempotencyKey || string(sent[0].Body) != string(sent[1].Body) {
				t.Errorf("the same notice sent twice with different bodies under key %q:\n first %s\nsecond %s",
					sent[0].IdempotencyKey, sent[0].Body, sent[1].Body)
			}
			link, _ := jsonBody(t, sent[0])["update_payment_method_url"].(string)
			if link == "" {
				t.Fatalf("first attempt carried no link: %s", sent[0].Body)
			}
			// What Temporal keeps of the attempt (and shows in its UI)
			// does not open the customer's portal.
			if token := link[strings.LastIndex(link, "/")+1:]; strings.Contains(string(heartbeat), token) ||
				strings.Contains(string(heartbeat), portalSecret) {
				t.Errorf("heartbeat details %s hold the link's token or the secret", heartbeat)
			}
		})
	}
}
