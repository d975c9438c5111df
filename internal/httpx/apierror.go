package httpx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// messageMax bounds APIError.Message: an excerpt of an answer, or what went
// wrong on the way.
const messageMax = 200

// ErrNotFound is matched (errors.Is) by an *APIError for a 404. A client
// may return it, wrapped, for its peer's other ways of saying "nothing
// there", such as an empty answer.
var ErrNotFound = errors.New("not found")

// APIError is a call to a peer that got no usable answer: an error status,
// a success whose body could not be read, or (StatusCode 0) no answer at
// all. Build it with StatusError, Unreadable or NoAnswer, so that
// Retryable always follows the same rule.
type APIError struct {
	// Peer names who was called: "amberflo", "control plane", …
	Peer string
	// Op is the request, e.g. "GET /customers/acme"; empty when the
	// request's path must not be shown (a webhook URL is a credential).
	Op string
	// StatusCode is the HTTP status of the answer; 0 when none arrived
	// (network error, timeout).
	StatusCode int
	// Message is a short excerpt of the answer, or what went wrong on the
	// way. It never holds a secret the client redacts.
	Message string
	// Retryable is true when the same call may succeed later: no answer,
	// 408, 429 or 5xx.
	Retryable bool
	// RetryAfter is the peer's Retry-After on a retryable answer, when it
	// sent a usable one (at most a year: see RetryAfter). Nothing waits on
	// it today; a caller that schedules a retry by it should cap it first.
	RetryAfter time.Duration
	// Err is the underlying error: the transport's, or the decoder's for
	// an unreadable answer.
	Err error
}

// newAPIError returns the error for a call to peer that got status (0: no
// answer) and did not succeed. Whether it is retryable is decided here and
// only here, from the status: no answer, 408, 429 and 5xx are; any other
// status, including a 2xx whose body was unreadable, is not.
func newAPIError(peer, op string, status int, message string, err error) *APIError {
	retryable := status == 0 || status == http.StatusRequestTimeout ||
		status == http.StatusTooManyRequests || status >= 500
	return &APIError{Peer: peer, Op: op, StatusCode: status, Message: message, Retryable: retryable, Err: err}
}

// StatusError returns the error for an answer the client does not accept:
// resp's status, an excerpt of body (the start of the answer, already
// read) without the redact strings, and on a retryable status the
// Retry-After resp carries.
func StatusError(peer, op string, resp *http.Response, body []byte, now time.Time, redact ...string) *APIError {
	e := newAPIError(peer, op, resp.StatusCode, Excerpt(body, messageMax, redact...), nil)
	if e.Retryable {
		e.RetryAfter = RetryAfter(resp.Header.Get("Retry-After"), now)
	}
	return e
}

// Unreadable returns the error for an answer with a success status whose
// body the client cannot read or does not understand (err says why). It
// is permanent: the same question gets the same answer, so an operator
// has to look.
func Unreadable(peer, op string, status int, err error, redact ...string) *APIError {
	return newAPIError(peer, op, status, Excerpt([]byte("unreadable answer: "+err.Error()), messageMax, redact...), err)
}

// NoAnswer classifies err, a failure to get (all of) an answer from peer.
// When the caller's own ctx has ended, that is returned, wrapped: it is
// neither retryable nor permanent, and not the client's to retry.
// Otherwise it was the network or the client's own per-call timeout: a
// retryable *APIError without a status, whose message does not repeat the
// request URL.
func NoAnswer(ctx context.Context, peer, op string, err error, timeout time.Duration, redact ...string) error {
	if ctx.Err() != nil {
		what := peer
		if op != "" {
			what = op + " to " + peer
		}
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its message repeats the URL, which may be a credential
	}
	msg := Excerpt([]byte(err.Error()), messageMax, redact...)
	if timedOut(err) {
		msg = fmt.Sprintf("no answer within %s", timeout)
	}
	return newAPIError(peer, op, 0, msg, err)
}

func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

func (e *APIError) Error() string {
	s := Describe(e.Peer, e.StatusCode, e.Message, e.Retryable, e.RetryAfter)
	if e.Op == "" {
		return s
	}
	return e.Op + ": " + s
}

func (e *APIError) Unwrap() error { return e.Err }

// Is makes a 404 match ErrNotFound.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.StatusCode == http.StatusNotFound
}

// IsRetryable reports whether the call that failed with err may succeed if
// made again unchanged: a retryable *APIError in err's chain, or, where no
// client classified it, a network error. The end of the caller's own
// context is not retryable.
func IsRetryable(err error) bool {
	var e *APIError
	if errors.As(err, &e) {
		return e.Retryable
	}
	if contextEnded(err) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// IsPermanent reports whether retrying the call that failed with err
// unchanged cannot succeed: any 4xx but 408 and 429, a redirect not
// followed, an unreadable answer, a not-found, an invalid argument. An
// error that is neither retryable nor permanent is the caller's own
// context ending (cancelled, or its deadline passed).
func IsPermanent(err error) bool {
	return err != nil && !IsRetryable(err) && !contextEnded(err)
}

func contextEnded(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
