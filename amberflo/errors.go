package amberflo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrNotFound means Amberflo has no such customer, or no invoice for it.
// It matches both an empty answer and an HTTP 404 (errors.Is).
var ErrNotFound = errors.New("not found")

// APIError is a call to Amberflo that got no usable answer: a non-2xx
// status, or no response at all (StatusCode 0: network error or timeout).
type APIError struct {
	Op         string // method and escaped path, e.g. "GET /customers/acme"
	StatusCode int    // 0 when no response arrived
	Message    string // short excerpt of the response body, or what went wrong
	Retryable  bool   // network errors, timeouts, 408, 429 and 5xx
	// RetryAfter is the server's Retry-After on a retryable status; 0 when
	// it sent none.
	RetryAfter time.Duration
	Err        error // underlying transport error, if any
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
		if e.Message != "" {
			b.WriteString(": ")
		}
	}
	b.WriteString(e.Message)
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.Err }

// Is makes a 404 match ErrNotFound.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.StatusCode == http.StatusNotFound
}

// IsRetryable reports whether err is worth retrying unchanged: a network
// error, a timeout, 408, 429 or 5xx. The end of the caller's own context is
// not retryable.
func IsRetryable(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Retryable
}

// IsPermanent reports whether retrying err unchanged cannot succeed: any
// other 4xx, a not-found, an invalid argument or an unreadable answer. An
// error that is neither retryable nor permanent is the caller's context
// ending.
func IsPermanent(err error) bool {
	if err == nil || IsRetryable(err) {
		return false
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// maxRetryAfter caps an absurd Retry-After.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(min(max(s, 0), int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// excerpt returns the start of a response body on one line, short enough
// for an error message.
func excerpt(body string) string {
	const limit = 200
	s := strings.Join(strings.Fields(body), " ")
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
