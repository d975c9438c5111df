// Package httpx holds what dunning's outbound HTTP clients share: reading
// a peer's error answer safely and its Retry-After header, and APIError,
// the one error for a call to a peer that got no usable answer, with the
// one rule for whether retrying it may help (IsRetryable, IsPermanent).
package httpx

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Excerpt returns a short, single-line excerpt of a peer's answer, at most
// limit bytes (plus an ellipsis), with every redact string (a secret, a
// webhook URL) replaced, should the peer echo it.
func Excerpt(b []byte, limit int, redact ...string) string {
	s := strings.ToValidUTF8(string(b), "")
	for _, r := range redact {
		if r != "" {
			s = strings.ReplaceAll(s, r, "[redacted]")
		}
	}
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	return Truncate(s, limit)
}

// Truncate cuts s to at most n bytes without splitting a character, and
// marks the cut with an ellipsis.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// RetryAfter parses a Retry-After header, delay seconds or an HTTP date;
// 0 when absent, unreadable, past, or more than a year away.
func RetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs <= 0 || secs > int64(365*24*time.Hour/time.Second) {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// Describe says in one line how a peer answered: "<peer> answered 503
// Service Unavailable: <message> (retryable, retry after 30s)", or
// "<peer> unreachable: …" when there was no answer (status 0).
func Describe(peer string, status int, message string, retryable bool, retryAfter time.Duration) string {
	var b strings.Builder
	b.WriteString(peer)
	if status == 0 {
		b.WriteString(" unreachable")
	} else {
		fmt.Fprintf(&b, " answered %d %s", status, http.StatusText(status))
	}
	if message != "" {
		b.WriteString(": ")
		b.WriteString(message)
	}
	if retryable {
		b.WriteString(" (retryable")
		if retryAfter > 0 {
			fmt.Fprintf(&b, ", retry after %s", retryAfter)
		}
		b.WriteString(")")
	}
	return b.String()
}
