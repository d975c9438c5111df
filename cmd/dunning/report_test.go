package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"

	"dunning/internal/report"
	"dunning/internal/testenv"
)

func TestReportWindow(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		since, until string
		want         report.Window
		err          bool
	}{
		{"720h", "", report.Window{Since: now.Add(-720 * time.Hour), Until: now}, false},
		{"2026-11-01", "2026-12-01", report.Window{Since: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}, false},
		{"2026-11-01T06:00:00+01:00", "24h", report.Window{Since: time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC), Until: now.Add(-24 * time.Hour)}, false},
		{"2026-12-02", "", report.Window{}, true}, // after --until
		{"last month", "", report.Window{}, true},
		{"720h", "yesterday", report.Window{}, true},
	} {
		got, err := reportWindow(now, tc.since, tc.until)
		if (err != nil) != tc.err || !got.Since.Equal(tc.want.Since) || !got.Until.Equal(tc.want.Until) {
			t.Errorf("--since %q --until %q: %v, %v; want %v (error %v)", tc.since, tc.until, got, err, tc.want, tc.err)
		}
	}
}

// On a namespace without recoveries the report says so, in every format.
func TestReportOnAnEmptyNamespace(t *testing.T) {
	tmp := testenv.StartTemporal(t)
	w := report.Window{Since: time.Now().Add(-time.Hour), Until: time.Now()}
	for format, want := range map[string]string{
		report.FormatText: `(?m)^Recoveries +0$`,
		report.FormatJSON: `"recoveries": 0,`,
		report.FormatCSV:  `(?m)^summary,recoveries,,0$`,
	} {
		var out bytes.Buffer
		if err := writeReport(context.Background(), tmp.Client, w, format, &out); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("%s report lacks %q:\n%s", format, want, out.String())
		}
	}
}
