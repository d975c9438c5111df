package workflows

import (
	"testing"
	"time"
)

// After dunning's own confirm declined, a failure event replaces the
// intent's decline only when it was created no earlier than the ordering
// time ownDeclineOrder gives.
func TestOwnDeclineOrder(t *testing.T) {
	sent := day0.Add(time.Hour) // by the workflow's clock
	for _, tc := range []struct {
		name       string
		last       time.Time // the newest event applied before the confirm
		declinedAt time.Time // the charge's created, zero when not read
		event      time.Time // a failure event's created, delivered after
		want       time.Time
		replaces   bool
	}{
		{"stop decline, charge not read: an event from before the confirm is older",
			day0, time.Time{}, day0.Add(30 * time.Minute), sent, false},
		{"stop decline, charge not read: an event after the confirm replaces it",
			day0, time.Time{}, sent.Add(time.Minute), sent, true},
		{"an event from the same second as the send is older",
			day0, time.Time{}, sent.Add(-time.Second), sent, false},
		{"Stripe's clock behind the workflow's: its time stands, a later event replaces",
			day0, sent.Add(-2 * time.Minute), sent.Add(-time.Minute), sent.Add(-2 * time.Minute), true},
		{"Stripe's clock behind the workflow's: an event before the charge is older",
			day0, sent.Add(-2 * time.Minute), sent.Add(-3 * time.Minute), sent.Add(-2 * time.Minute), false},
		{"Stripe's clock ahead: its time stands",
			day0, sent.Add(2 * time.Minute), sent.Add(time.Minute), sent.Add(2 * time.Minute), false},
		{"an event applied while the confirm ran is newer than its send: kept",
			sent.Add(time.Minute), time.Time{}, sent.Add(30 * time.Second), sent.Add(time.Minute), false},
		{"an event newer than the charge applied while it ran: kept",
			sent.Add(time.Minute), sent.Add(10 * time.Second), sent.Add(2 * time.Minute), sent.Add(time.Minute), true},
		{"a first life with nothing applied yet",
			time.Time{}, time.Time{}, day0, sent, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ownDeclineOrder(tc.last, tc.declinedAt, sent)
			if !got.Equal(tc.want) {
				t.Errorf("ownDeclineOrder(%v, %v, %v) = %v, want %v", tc.last, tc.declinedAt, sent, got, tc.want)
			}
			// As applyFailed tells an older event: created before it.
			if replaces := !tc.event.Before(got); replaces != tc.replaces {
				t.Errorf("event created %v replaces = %v, want %v", tc.event, replaces, tc.replaces)
			}
		})
	}
}
