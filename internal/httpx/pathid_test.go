package httpx

import (
	"net/url"
	"strings"
	"testing"
)

func TestPathSegment(t *testing.T) {
	for id, want := range map[string]string{
		"cus_NffrFeUfNV2Hib": "cus_NffrFeUfNV2Hib",
		"a/../b":             "a%2F..%2Fb",
		"../admin":           "..%2Fadmin",
		"%2e%2e":             "%252e%252e",
		"a?b#c":              "a%3Fb%23c",
		"org/42 ?%é":         "org%2F42%20%3F%25%C3%A9",
	} {
		got, err := PathSegment("customer ID", id)
		if err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", id, got, err, want)
			continue
		}
		// One segment, that decodes to the ID again.
		if strings.Contains(got, "/") {
			t.Errorf("%q escaped to %q, more than one segment", id, got)
		}
		if back, err := url.PathUnescape(got); err != nil || back != id {
			t.Errorf("%q escaped to %q, which reads back as %q", id, got, back)
		}
	}
	for _, bad := range []string{"", ".", ".."} {
		if _, err := PathSegment("customer ID", bad); err == nil || !strings.Contains(err.Error(), "customer ID") {
			t.Errorf("%q: %v, want it refused, naming the customer ID", bad, err)
		}
	}
}
