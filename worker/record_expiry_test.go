package worker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"dunning/internal/stripefixture"
	"dunning/workflows"
)

// TestRecordExpiryHistories records, as TestRecordHistories does (set
// DUNNING_RECORD_HISTORIES), card-expiry watches: one told of its card and
// ended by a card event of its customer, one told of its card and ended by
// the card's removal, and one whose event came after the card expired.
// card-expiry-hist_… were recorded on the code before
// expiry-fresh-state, which took the events at their word; the replay test
// keeps them so that the watches running at an upgrade go on as recorded.
func TestRecordExpiryHistories(t *testing.T) {
	dir := recordDir(t)
	prefix := os.Getenv("DUNNING_RECORD_PREFIX")
	if prefix == "" {
		prefix = "card-expiry-fresh"
	}
	s := startLocalStack(t, nil)
	record := func(name, workflowID string) { recordHistory(t, s.tmp, dir, name, workflowID) }

	for _, end := range []struct{ name, event string }{
		{"updated", workflows.EventPaymentMethodAttached},
		{"removed", workflows.EventSourceDeleted},
	} {
		cus, card := stripefixture.NewID("cus"), stripefixture.NewID("card")
		s.send(workflows.EventSourceExpiring, stripefixture.Options{Customer: cus, ObjectID: card})
		// The first notice goes out and the watch waits for its reminder.
		time.Sleep(3 * time.Second)
		opts := stripefixture.Options{Customer: cus}
		if end.event == workflows.EventSourceDeleted {
			opts.ObjectID = card
		}
		s.send(end.event, opts)
		id := workflows.CardExpiryWorkflowID(card)
		waitClosed(t, s, id)
		record(prefix+"_"+end.name, id)
	}

	// An expiring event for a card that expired last month (a late
	// delivery, a replay): no notice, straight to the at-risk alert
	// (expiry-late-event).
	cus, card := stripefixture.NewID("cus"), stripefixture.NewID("card")
	last := time.Now().UTC().AddDate(0, 0, -time.Now().UTC().Day())
	s.send(workflows.EventSourceExpiring, stripefixture.Options{Customer: cus, ObjectID: card, ExpMonth: int(last.Month()), ExpYear: last.Year()})
	id := workflows.CardExpiryWorkflowID(card)
	waitClosed(t, s, id)
	record(prefix+"_late", id)
}

// TestRecordExpiryNoticeCardEventHistories records, as
// TestRecordExpiryHistories does, watches that a card event reaches
// while their notice is with the mailer (expiry-notice-card-event): one
// whose mailer is down, so that the held notice is cancelled and never
// sent; one whose mailer takes the notice while the cancellation is on
// its way, so that the notice is recorded as sent, as it was.
func TestRecordExpiryNoticeCardEventHistories(t *testing.T) {
	dir := recordDir(t)
	prefix := os.Getenv("DUNNING_RECORD_PREFIX")
	if prefix == "" {
		prefix = "card-expiry-held"
	}
	var mu sync.Mutex
	down, accepted := true, 0
	mailer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		isDown := down
		mu.Unlock()
		if isDown {
			http.Error(w, `{"error":"try later"}`, http.StatusServiceUnavailable)
			return
		}
		// Slow, but it takes the notice.
		time.Sleep(4 * time.Second)
		mu.Lock()
		accepted++
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(mailer.Close)
	s := startLocalStack(t, map[string]string{"CUSTOMER_NOTICE_URL": mailer.URL, "CUSTOMER_NOTICE_SECRET": "notice-secret-for-recording-0000001"})

	for _, tc := range []struct {
		name       string
		down       bool
		wait       time.Duration
		notice     string // the outcome recorded for the notice
		acceptedBy int
	}{
		{"cancelled", true, 3 * time.Second, "not sent", 0},
		{"taken", false, 1500 * time.Millisecond, "sent", 1},
	} {
		mu.Lock()
		down = tc.down
		mu.Unlock()
		cus, card := stripefixture.NewID("cus"), stripefixture.NewID("card")
		s.send(workflows.EventSourceExpiring, stripefixture.Options{Customer: cus, ObjectID: card})
		// The notice is with the mailer when the customer adds a card.
		time.Sleep(tc.wait)
		s.send(workflows.EventPaymentMethodAttached, stripefixture.Options{Customer: cus})
		id := workflows.CardExpiryWorkflowID(card)
		waitClosed(t, s, id)
		st := expiryStatus(t, s, id)
		outcome := ""
		for _, act := range st.Actions {
			if act.Kind == "customer notice card_expiring" && (act.Outcome == "sent" || strings.HasPrefix(act.Outcome, "not sent")) {
				outcome = act.Outcome
			}
		}
		mu.Lock()
		got := accepted
		mu.Unlock()
		if !strings.HasPrefix(outcome, tc.notice) || got != tc.acceptedBy || st.Stage != workflows.CardUpdated {
			t.Fatalf("%s: notice %q, mailer took %d, stage %s; want %q, %d, %s (actions %+v)",
				tc.name, outcome, got, st.Stage, tc.notice, tc.acceptedBy, workflows.CardUpdated, st.Actions)
		}
		recordHistory(t, s.tmp, dir, prefix+"_"+tc.name, id)
	}
}

// expiryStatus is the status of the card-expiry watch id.
func expiryStatus(t *testing.T, s *localStack, id string) workflows.CardExpiryState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := s.tmp.Client.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	if err != nil {
		t.Fatalf("status of %s: %v", id, err)
	}
	var st workflows.CardExpiryState
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}
