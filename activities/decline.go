package activities

import "time"

// Decline is what Stripe reported about one failed payment attempt, read
// from the raw JSON of any API version: older versions carry only some of
// these fields, and a field absent is empty.
type Decline struct {
	// Code is last_payment_error.code (card_declined, expired_card,
	// incorrect_cvc, authentication_required, …).
	Code string `json:"code,omitempty"`
	// DeclineCode is the issuer's reason (insufficient_funds, stolen_card,
	// do_not_honor, …).
	DeclineCode string `json:"decline_code,omitempty"`
	// AdviceCode is Stripe's advice on newer API versions:
	// do_not_try_again, try_again_later, confirm_card_data.
	AdviceCode string `json:"advice_code,omitempty"`
	// NetworkAdviceCode is the card network's advice (Mastercard's
	// Merchant Advice Codes: 01, 03, 21, 24–30, …).
	NetworkAdviceCode string `json:"network_advice_code,omitempty"`
	// NetworkDeclineCode is the network's own decline code.
	NetworkDeclineCode string `json:"network_decline_code,omitempty"`
	// OutcomeReason is the charge's outcome.reason
	// (previously_declined_do_not_retry, highest_risk_level, …), where the
	// charge was read.
	OutcomeReason string `json:"outcome_reason,omitempty"`
	// PaymentMethod is the card that failed; Fingerprint identifies the
	// card itself across payment methods, when Stripe gives it.
	PaymentMethod string `json:"payment_method,omitempty"`
	Fingerprint   string `json:"fingerprint,omitempty"`
}

// DeclineClass is what a decline means for the next attempt on that card.
type DeclineClass string

// Classes of declines.
const (
	// DeclineStop: never confirmed again on that card (lost, stolen,
	// pickup, fraudulent, closed account, revoked authorization,
	// do-not-try-again advice).
	DeclineStop DeclineClass = "stop"
	// DeclineNewData: not retried until the card changes (expired,
	// incorrect number, CVC, expiry or postal code, confirm-card-data).
	DeclineNewData DeclineClass = "needs_new_data"
	// DeclineAuthentication: no off-session retry; the customer is asked to
	// authenticate.
	DeclineAuthentication DeclineClass = "needs_authentication"
	// DeclineRetryAfter: the network says when the next attempt may be
	// made (Mastercard advice codes 24–30).
	DeclineRetryAfter DeclineClass = "retry_after"
	// DeclineSoft: the schedule (insufficient funds, generic and unknown
	// codes).
	DeclineSoft DeclineClass = "soft"
)

// DeclineVerdict is a classified decline.
type DeclineVerdict struct {
	Class DeclineClass `json:"class"`
	// Reason names the field and value that decided, e.g.
	// "decline_code stolen_card".
	Reason string `json:"reason"`
	// RetryAfter is, for DeclineRetryAfter, the earliest next attempt
	// after the decline.
	RetryAfter time.Duration `json:"retry_after,omitempty"`
}
