package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/config"
	"dunning/internal/report"
)

// runReport prints how much dunning recovered for the recoveries whose
// first failure falls in the window, from one visibility listing of the
// recoveries' memos (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, and the rest of
// the connection as the worker reads it: TEMPORAL_TLS_*, TEMPORAL_API_KEY,
// TEMPORAL_PROFILE).
func runReport(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(out)
	since := fs.String("since", "720h", "start of the window: a duration back from now (720h) or a time (2026-11-01 or RFC 3339)")
	until := fs.String("until", "", "end of the window, as --since; now when empty")
	format := fs.String("format", report.FormatText, "text, json or csv")
	if err := fs.Parse(args); err != nil {
		return err
	}
	now := time.Now()
	w, err := reportWindow(now, *since, *until)
	if err != nil {
		return err
	}
	if *format != report.FormatText && *format != report.FormatJSON && *format != report.FormatCSV {
		return fmt.Errorf("--format %q: want text, json or csv", *format)
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	opts, err := clientOptions(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return fmt.Errorf("connect to temporal at %s: %w", cfg.TemporalAddress, err)
	}
	defer c.Close()
	return writeReport(ctx, c, w, *format, out)
}

// writeReport lists the recoveries and writes their report.
func writeReport(ctx context.Context, c client.Client, w report.Window, format string, out io.Writer) error {
	runs, err := report.List(ctx, c, w.Since)
	if err != nil {
		return err
	}
	return report.Write(out, report.Build(w, runs), format)
}

// reportWindow reads --since and --until.
func reportWindow(now time.Time, since, until string) (report.Window, error) {
	s, err := pointInTime(now, since)
	if err != nil {
		return report.Window{}, fmt.Errorf("--since: %w", err)
	}
	u := now
	if until != "" {
		if u, err = pointInTime(now, until); err != nil {
			return report.Window{}, fmt.Errorf("--until: %w", err)
		}
	}
	if !s.Before(u) {
		return report.Window{}, fmt.Errorf("--since %s is not before --until %s", s.Format(time.RFC3339), u.Format(time.RFC3339))
	}
	return report.Window{Since: s, Until: u}, nil
}

// pointInTime reads a duration back from now, a date or an RFC 3339 time.
func pointInTime(now time.Time, v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, time.DateOnly} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (720h) nor a time (2026-11-01, RFC 3339)", v)
}
