package activities

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"time"

	"dunning/internal/jsondur"
)

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
	// Charge is the ID of the charge that failed (last_payment_error.charge),
	// where its outcome can be read.
	Charge string `json:"charge,omitempty"`
	// IntentStatus is the intent's status after the decline, where known:
	// requires_action means the bank wants the customer to authenticate.
	IntentStatus string `json:"intent_status,omitempty"`
	// Created is when the charge that failed was made, by Stripe's clock
	// (the charge's created), where the charge was read; zero otherwise.
	Created time.Time `json:"created,omitzero"`
}

// DelayedNotification reports whether a way to pay of this type
// (a PaymentMethod's or Source's type) is one whose outcome Stripe learns
// days after the payment was made, a bank debit: the intent goes
// processing first, and its failure comes later, when the customer
// believes they have paid. A card's decline is known at once, on the page
// where the customer pays.
func DelayedNotification(paymentMethodType string) bool {
	switch paymentMethodType {
	case "us_bank_account", "ach_debit", "sepa_debit", "bacs_debit", "au_becs_debit", "acss_debit", "nz_bank_account", "sofort":
		return true
	}
	return false
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

// declineCodes classes the values of last_payment_error.code and
// decline_code; Stripe uses the same names in both (expired_card,
// authentication_required, …), so one table serves both fields. A value
// not listed is unknown and falls to the schedule.
var declineCodes = map[string]DeclineClass{
	// The issuer will never approve this card for this merchant: lost,
	// stolen, closed or restricted, revoked by the cardholder, or a card
	// that cannot make this kind of payment at all. Visa fines a retry.
	"lost_card":                        DeclineStop,
	"stolen_card":                      DeclineStop,
	"pickup_card":                      DeclineStop,
	"fraudulent":                       DeclineStop,
	"merchant_blacklist":               DeclineStop,
	"restricted_card":                  DeclineStop,
	"security_violation":               DeclineStop,
	"revocation_of_all_authorizations": DeclineStop,
	"revocation_of_authorization":      DeclineStop,
	"stop_payment_order":               DeclineStop,
	"invalid_account":                  DeclineStop, // the card or account is closed
	"account_closed":                   DeclineStop, // error code: the bank account is closed
	"debit_not_authorized":             DeclineStop, // error code: the account holder revoked the debit
	"card_not_supported":               DeclineStop, // this card never makes this kind of payment
	"currency_not_supported":           DeclineStop, // nor in this currency
	"transaction_not_allowed":          DeclineStop,
	"not_permitted":                    DeclineStop,
	"service_not_allowed":              DeclineStop,
	"do_not_try_again":                 DeclineStop, // deprecated decline code, now advice_code
	"testmode_decline":                 DeclineStop, // a test card in live mode

	// The card needs new data from the customer: a retry with what is on
	// file fails the same way.
	"expired_card":                      DeclineNewData,
	"incorrect_number":                  DeclineNewData,
	"invalid_number":                    DeclineNewData,
	"incorrect_cvc":                     DeclineNewData,
	"invalid_cvc":                       DeclineNewData,
	"invalid_expiry_month":              DeclineNewData,
	"invalid_expiry_year":               DeclineNewData,
	"incorrect_zip":                     DeclineNewData,
	"incorrect_address":                 DeclineNewData,
	"incorrect_pin":                     DeclineNewData,
	"invalid_pin":                       DeclineNewData,
	"new_account_information_available": DeclineNewData,

	// The bank wants the cardholder: no off-session retry can do it.
	"authentication_required":               DeclineAuthentication,
	"payment_intent_authentication_failure": DeclineAuthentication,
	"offline_pin_required":                  DeclineAuthentication,
	"online_or_offline_pin_required":        DeclineAuthentication,

	// Stripe: "You can try to charge this card again after 24 hours."
	"card_decline_rate_limit_exceeded": DeclineRetryAfter,

	// Soft: the schedule may try again.
	"insufficient_funds":              DeclineSoft,
	"generic_decline":                 DeclineSoft,
	"do_not_honor":                    DeclineSoft,
	"processing_error":                DeclineSoft,
	"try_again_later":                 DeclineSoft,
	"reenter_transaction":             DeclineSoft,
	"issuer_not_available":            DeclineSoft,
	"approve_with_id":                 DeclineSoft,
	"call_issuer":                     DeclineSoft,
	"card_velocity_exceeded":          DeclineSoft,
	"withdrawal_count_limit_exceeded": DeclineSoft,
	"no_action_taken":                 DeclineSoft,
	"duplicate_transaction":           DeclineSoft,
	"invalid_amount":                  DeclineSoft,
	"pin_try_exceeded":                DeclineSoft,
	"card_declined":                   DeclineSoft, // the generic code; decline_code says more
}

// codeRetryAfter is the wait a retry_after code asks for.
var codeRetryAfter = map[string]time.Duration{"card_decline_rate_limit_exceeded": 24 * time.Hour}

// adviceCodes classes Stripe's advice_code.
var adviceCodes = map[string]DeclineClass{
	"do_not_try_again":  DeclineStop,
	"confirm_card_data": DeclineNewData,
	"try_again_later":   DeclineSoft,
}

// macRetryAfter is Mastercard's Merchant Advice Codes 24–30: retry after
// the wait, not before.
var macRetryAfter = map[string]time.Duration{
	"24": time.Hour,
	"25": 24 * time.Hour,
	"26": 2 * 24 * time.Hour,
	"27": 4 * 24 * time.Hour,
	"28": 6 * 24 * time.Hour,
	"29": 8 * 24 * time.Hour,
	"30": 10 * 24 * time.Hour,
}

// macClasses classes the other Mastercard Merchant Advice Codes that
// speak of retries: 01 new account information, 02 try again later, 03 do
// not try again, 21 payment cancellation (the cardholder stopped this
// merchant's recurring payments).
var macClasses = map[string]DeclineClass{
	"01": DeclineNewData,
	"02": DeclineSoft,
	"03": DeclineStop,
	"21": DeclineStop,
}

// outcomeReasons classes a charge's outcome.reason. Any other reason
// (elevated_risk_level, rule, …) says nothing about retrying.
var outcomeReasons = map[string]DeclineClass{
	// Stripe blocks a card an issuer said never to retry.
	"previously_declined_do_not_retry": DeclineStop,
	// Radar's default block rule blocked the payment as of the highest
	// risk; it blocks this card again on every retry, and repeated
	// blocked attempts look like card testing. Another card is needed.
	"highest_risk_level": DeclineStop,
}

// ClassifyDecline decides what a decline means for the next attempt on
// that card. Every field has its say and the strongest wins: stop, then
// needs_authentication, then needs_new_data, then retry_after (the longest
// wait, where two ask), else soft. Among equals the first of decline_code,
// code, advice_code, network_advice_code, outcome_reason, intent_status
// names the reason; a known code names it before an unknown or the generic
// card_declined. Values are compared trimmed and in lower case.
func ClassifyDecline(d Decline) DeclineVerdict {
	var best declineSignal
	consider := func(s declineSignal) {
		if s.class == "" {
			return
		}
		switch {
		case best.class == "", s.stronger(best):
			best = s
		case s.class == DeclineRetryAfter && best.class == DeclineRetryAfter && s.after > best.after:
			best = s
		}
	}
	consider(codeSignal("decline_code", d.DeclineCode))
	consider(codeSignal("code", d.Code))
	consider(tableSignal("advice_code", norm(d.AdviceCode), adviceCodes, true))
	mac := normMAC(d.NetworkAdviceCode)
	if after, ok := macRetryAfter[mac]; ok {
		consider(declineSignal{class: DeclineRetryAfter, reason: "network_advice_code " + mac, after: after})
	} else {
		consider(tableSignal("network_advice_code", mac, macClasses, true))
	}
	consider(tableSignal("outcome_reason", norm(d.OutcomeReason), outcomeReasons, false))
	if s := norm(d.IntentStatus); s == "requires_action" {
		consider(declineSignal{class: DeclineAuthentication, reason: "intent_status " + s})
	}
	if best.class == "" {
		return DeclineVerdict{Class: DeclineSoft, Reason: "no decline code"}
	}
	v := DeclineVerdict{Class: best.class, Reason: best.reason}
	if best.class == DeclineRetryAfter {
		v.RetryAfter = best.after
	}
	return v
}

// declineSignal is what one field says.
type declineSignal struct {
	class  DeclineClass
	reason string
	after  time.Duration
	// weak: an unknown value, or the generic card_declined; any known
	// value of the same class says more.
	weak bool
}

var classRank = map[DeclineClass]int{
	DeclineSoft: 1, DeclineRetryAfter: 2, DeclineNewData: 3, DeclineAuthentication: 4, DeclineStop: 5,
}

func (s declineSignal) stronger(than declineSignal) bool {
	if r, o := classRank[s.class], classRank[than.class]; r != o {
		return r > o
	}
	return than.weak && !s.weak
}

func codeSignal(field, value string) declineSignal {
	v := norm(value)
	s := tableSignal(field, v, declineCodes, true)
	s.after = codeRetryAfter[v]
	s.weak = s.weak || v == "card_declined"
	return s
}

// tableSignal looks a value up; an unknown one is a weak soft signal when
// unknown is set, and nothing otherwise. An empty value says nothing.
func tableSignal(field, value string, table map[string]DeclineClass, unknown bool) declineSignal {
	if value == "" {
		return declineSignal{}
	}
	if c, ok := table[value]; ok {
		return declineSignal{class: c, reason: field + " " + value}
	}
	if !unknown {
		return declineSignal{}
	}
	return declineSignal{class: DeclineSoft, reason: "unknown " + field + " " + value, weak: true}
}

func norm(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// normMAC writes a Merchant Advice Code as its two digits ("3" is "03").
func normMAC(s string) string {
	s = strings.TrimSpace(s)
	if len(s) == 1 && s[0] >= '0' && s[0] <= '9' {
		return "0" + s
	}
	return s
}

// DeclineNoticeReason is what to tell the customer about a decline of
// that class. It never repeats the issuer's reason: a stop reads as a
// plain decline, whatever the bank said (fraud, lost, stolen, …), since a
// notice can reach someone other than the cardholder.
func DeclineNoticeReason(v DeclineVerdict) string {
	switch v.Class {
	case DeclineStop:
		return "Your bank declined the payment. Please use another card."
	case DeclineNewData:
		return "Your bank declined the payment because your card details are out of date or incorrect. Please update your card details."
	case DeclineAuthentication:
		return "Your bank asks you to confirm the payment. Please confirm the payment with your bank."
	}
	return "Your bank declined the payment. We will try again; you can also update your card."
}

// DeclineOf reads a decline from a Stripe error object as the API sends it
// (an API error's "error", or an intent's last_payment_error), of any API
// version: a field a version lacks stays empty, null is empty, charge and
// payment_method may each be an ID or an object, and a legacy card is
// named in source instead of payment_method. An expanded charge fills, from
// its outcome, what the error itself does not say.
func DeclineOf(stripeError []byte) (Decline, error) {
	var e struct {
		Code               string                        `json:"code"`
		DeclineCode        string                        `json:"decline_code"`
		AdviceCode         string                        `json:"advice_code"`
		NetworkAdviceCode  string                        `json:"network_advice_code"`
		NetworkDeclineCode string                        `json:"network_decline_code"`
		Charge             expandable[chargeJSON]        `json:"charge"`
		PaymentMethod      expandable[paymentMethodJSON] `json:"payment_method"`
		Source             expandable[paymentMethodJSON] `json:"source"`
		PaymentIntent      expandable[struct {
			Status string `json:"status"`
		}] `json:"payment_intent"`
	}
	if err := json.Unmarshal(stripeError, &e); err != nil {
		return Decline{}, err
	}
	d := Decline{
		Code: e.Code, DeclineCode: e.DeclineCode, AdviceCode: e.AdviceCode,
		NetworkAdviceCode: e.NetworkAdviceCode, NetworkDeclineCode: e.NetworkDeclineCode,
		Charge: e.Charge.ID, PaymentMethod: e.PaymentMethod.ID,
	}
	if pm := e.PaymentMethod.Obj; pm != nil {
		d.Fingerprint = pm.fingerprint()
	}
	if d.PaymentMethod == "" && e.Source.ID != "" {
		d.PaymentMethod = e.Source.ID
		if src := e.Source.Obj; src != nil {
			d.Fingerprint = src.fingerprint()
		}
	}
	if pi := e.PaymentIntent.Obj; pi != nil {
		d.IntentStatus = pi.Status
	}
	if c := e.Charge.Obj; c != nil {
		d = d.withCharge(*c)
	}
	return d, nil
}

// WithCharge fills, from a Charge object as the API sends it, what the
// decline does not say yet: the outcome's reason and advice, the payment
// method and the card's fingerprint. Older API versions, and the error of
// an off-session confirm, leave these out of the error itself. A charge
// other than the decline's own is ignored.
func (d Decline) WithCharge(charge []byte) (Decline, error) {
	var c chargeJSON
	if err := json.Unmarshal(charge, &c); err != nil {
		return d, err
	}
	if d.Charge != "" && c.ID != d.Charge {
		return d, nil
	}
	return d.withCharge(c), nil
}

// withCharge fills from a charge what the decline does not say yet.
func (d Decline) withCharge(c chargeJSON) Decline {
	if d.Charge == "" {
		d.Charge = c.ID
	}
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	if o := c.Outcome; o != nil {
		fill(&d.OutcomeReason, o.Reason)
		fill(&d.AdviceCode, o.AdviceCode)
		fill(&d.NetworkAdviceCode, o.NetworkAdviceCode)
		fill(&d.NetworkDeclineCode, o.NetworkDeclineCode)
	}
	fill(&d.PaymentMethod, c.PaymentMethod)
	if d.Created.IsZero() && c.Created > 0 {
		d.Created = time.Unix(c.Created, 0).UTC()
	}
	if pd := c.PaymentMethodDetails; pd != nil && pd.Card != nil {
		fill(&d.Fingerprint, pd.Card.Fingerprint)
	}
	return d
}

// chargeJSON is what a decline needs of a Charge.
type chargeJSON struct {
	ID      string `json:"id"`
	Created int64  `json:"created"`
	Outcome *struct {
		Reason             string `json:"reason"`
		AdviceCode         string `json:"advice_code"`
		NetworkAdviceCode  string `json:"network_advice_code"`
		NetworkDeclineCode string `json:"network_decline_code"`
	} `json:"outcome"`
	PaymentMethod        string `json:"payment_method"`
	PaymentMethodDetails *struct {
		Card *struct {
			Fingerprint string `json:"fingerprint"`
		} `json:"card"`
	} `json:"payment_method_details"`
}

// paymentMethodJSON is what a decline needs of the way to pay: a
// PaymentMethod or a Source (card.fingerprint), or a legacy Card or bank
// account (fingerprint).
type paymentMethodJSON struct {
	Fingerprint string `json:"fingerprint"`
	Card        *struct {
		Fingerprint string `json:"fingerprint"`
	} `json:"card"`
}

func (p paymentMethodJSON) fingerprint() string {
	if p.Card != nil && p.Card.Fingerprint != "" {
		return p.Card.Fingerprint
	}
	return p.Fingerprint
}

// expandable is a Stripe field that is an ID, an expanded object, or null.
type expandable[T any] struct {
	ID  string
	Obj *T
}

func (x *expandable[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*x = expandable[T]{}
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		return json.Unmarshal(b, &x.ID)
	case len(b) > 0 && b[0] == '{':
		var id struct {
			ID string `json:"id"`
		}
		obj := new(T)
		if err := json.Unmarshal(b, &id); err != nil {
			return err
		}
		if err := json.Unmarshal(b, obj); err != nil {
			return err
		}
		x.ID, x.Obj = id.ID, obj
		return nil
	}
	return &json.UnmarshalTypeError{Value: "value", Type: reflect.TypeFor[string]()}
}

type plainVerdict DeclineVerdict

type verdictJSON struct {
	*plainVerdict
	RetryAfter jsondur.D `json:"retry_after,omitempty"`
}

// MarshalJSON writes the wait as people write it ("24h"), for the UI.
func (v DeclineVerdict) MarshalJSON() ([]byte, error) {
	p := plainVerdict(v)
	return json.Marshal(verdictJSON{plainVerdict: &p, RetryAfter: jsondur.D(v.RetryAfter)})
}

// UnmarshalJSON reads "24h" or nanoseconds.
func (v *DeclineVerdict) UnmarshalJSON(b []byte) error {
	w := verdictJSON{plainVerdict: (*plainVerdict)(v)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	v.RetryAfter = time.Duration(w.RetryAfter)
	return nil
}
