// Package jsondur writes durations in JSON as people write them ("168h",
// "1h30m", "500ms") rather than as nanosecond integers, and reads both
// forms, so that what the Temporal UI shows of a workflow's input, result
// and status reads at a glance while histories written before still
// decode.
package jsondur

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// D is a time.Duration in JSON.
type D time.Duration

// MarshalJSON writes the duration as Format does.
func (d D) MarshalJSON() ([]byte, error) { return json.Marshal(Format(time.Duration(d))) }

// UnmarshalJSON reads a Go duration string or a number of nanoseconds.
func (d *D) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = D(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = D(n)
	return nil
}

// Format writes d without its zero units: 168h, 1h30m, 40s, 500ms, 0s.
func Format(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Of converts a list for JSON.
func Of(ds []time.Duration) []D {
	if ds == nil {
		return nil
	}
	out := make([]D, len(ds))
	for i, d := range ds {
		out[i] = D(d)
	}
	return out
}

// To converts a list back.
func To(ds []D) []time.Duration {
	if ds == nil {
		return nil
	}
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = time.Duration(d)
	}
	return out
}
