package worker_test

import (
	"os"
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
	dir := os.Getenv("DUNNING_RECORD_HISTORIES")
	if dir == "" {
		t.Skip("set DUNNING_RECORD_HISTORIES to a folder to record histories into")
	}
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
