package jsondur

import (
	"encoding/json"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{
		168 * time.Hour:                       "168h",
		time.Hour + 30*time.Minute:            "1h30m",
		time.Hour + 30*time.Second:            "1h0m30s",
		40 * time.Second:                      "40s",
		500 * time.Millisecond:                "500ms",
		0:                                     "0s",
		10 * time.Minute:                      "10m",
		-2 * time.Hour:                        "-2h",
		time.Hour + time.Minute + time.Second: "1h1m1s",
	} {
		if got := Format(d); got != want {
			t.Errorf("Format(%v) = %q, want %q", time.Duration(d), got, want)
		}
		if back, err := time.ParseDuration(Format(d)); err != nil || back != d {
			t.Errorf("Format(%v) = %q does not read back: %v %v", time.Duration(d), Format(d), back, err)
		}
	}
}

func TestJSONReadsBothForms(t *testing.T) {
	for in, want := range map[string]time.Duration{
		`"168h"`:          168 * time.Hour,
		`604800000000000`: 168 * time.Hour, // as histories written before have it
		`"1h30m"`:         90 * time.Minute,
		`0`:               0,
	} {
		var d D
		if err := json.Unmarshal([]byte(in), &d); err != nil || time.Duration(d) != want {
			t.Errorf("%s → %v %v, want %v", in, time.Duration(d), err, want)
		}
	}
	for _, bad := range []string{`"soon"`, `true`, `{}`} {
		var d D
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("%s read as %v, want an error", bad, time.Duration(d))
		}
	}
	out, _ := json.Marshal(struct{ G D }{D(168 * time.Hour)})
	if string(out) != `{"G":"168h"}` {
		t.Errorf("marshal = %s", out)
	}
}
