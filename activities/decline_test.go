package activities_test

import (
	"strings"
	"testing"
	"time"

	"dunning/activities"
)

const (
	stop     = activities.DeclineStop
	newData  = activities.DeclineNewData
	authn    = activities.DeclineAuthentication
	retryAft = activities.DeclineRetryAfter
	soft     = activities.DeclineSoft
	day      = 24 * time.Hour
)

// declineRow is one row of the classification table: a decline and the
// verdict it must get.
type declineRow struct {
	name   string
	d      activities.Decline
	class  activities.DeclineClass
	reason string
	after  time.Duration
}

// cardDeclined is a decline as Stripe reports most issuer declines.
func cardDeclined(declineCode string) activities.Decline {
	return activities.Decline{Code: "card_declined", DeclineCode: declineCode}
}

func declineTable() []declineRow {
	var rows []declineRow
	// Every known decline code, as card_declined's decline_code.
	for class, codes := range map[activities.DeclineClass][]string{
		stop: {"lost_card", "stolen_card", "pickup_card", "fraudulent", "merchant_blacklist", "restricted_card",
			"security_violation", "revocation_of_all_authorizations", "revocation_of_authorization", "stop_payment_order",
			"invalid_account", "card_not_supported", "currency_not_supported", "transaction_not_allowed", "not_permitted",
			"service_not_allowed", "do_not_try_again", "testmode_decline"},
		newData: {"expired_card", "incorrect_number", "invalid_number", "incorrect_cvc", "invalid_cvc",
			"invalid_expiry_month", "invalid_expiry_year", "incorrect_zip", "incorrect_pin", "invalid_pin",
			"new_account_information_available"},
		authn: {"authentication_required", "offline_pin_required", "online_or_offline_pin_required"},
		soft: {"insufficient_funds", "generic_decline", "do_not_honor", "processing_error", "try_again_later",
			"reenter_transaction", "issuer_not_available", "approve_with_id", "call_issuer", "card_velocity_exceeded",
			"withdrawal_count_limit_exceeded", "no_action_taken", "duplicate_transaction", "invalid_amount", "pin_try_exceeded"},
	} {
		for _, c := range codes {
			rows = append(rows, declineRow{"decline_code " + c, cardDeclined(c), class, "decline_code " + c, 0})
		}
	}
	rows = append(rows,
		// Error codes that come without a decline code.
		declineRow{"code expired_card", activities.Decline{Code: "expired_card"}, newData, "code expired_card", 0},
		declineRow{"code incorrect_number", activities.Decline{Code: "incorrect_number"}, newData, "code incorrect_number", 0},
		declineRow{"code invalid_number", activities.Decline{Code: "invalid_number"}, newData, "code invalid_number", 0},
		declineRow{"code incorrect_cvc", activities.Decline{Code: "incorrect_cvc"}, newData, "code incorrect_cvc", 0},
		declineRow{"code invalid_cvc", activities.Decline{Code: "invalid_cvc"}, newData, "code invalid_cvc", 0},
		declineRow{"code invalid_expiry_month", activities.Decline{Code: "invalid_expiry_month"}, newData, "code invalid_expiry_month", 0},
		declineRow{"code invalid_expiry_year", activities.Decline{Code: "invalid_expiry_year"}, newData, "code invalid_expiry_year", 0},
		declineRow{"code incorrect_zip", activities.Decline{Code: "incorrect_zip"}, newData, "code incorrect_zip", 0},
		declineRow{"code incorrect_address", activities.Decline{Code: "incorrect_address"}, newData, "code incorrect_address", 0},
		declineRow{"code authentication_required", activities.Decline{Code: "authentication_required"}, authn, "code authentication_required", 0},
		declineRow{"code payment_intent_authentication_failure", activities.Decline{Code: "payment_intent_authentication_failure"},
			authn, "code payment_intent_authentication_failure", 0},
		declineRow{"code processing_error", activities.Decline{Code: "processing_error"}, soft, "code processing_error", 0},
		declineRow{"code account_closed", activities.Decline{Code: "account_closed"}, stop, "code account_closed", 0},
		declineRow{"code debit_not_authorized", activities.Decline{Code: "debit_not_authorized"}, stop, "code debit_not_authorized", 0},
		declineRow{"code card_decline_rate_limit_exceeded", activities.Decline{Code: "card_decline_rate_limit_exceeded"},
			retryAft, "code card_decline_rate_limit_exceeded", day},
		declineRow{"code card_declined alone", activities.Decline{Code: "card_declined"}, soft, "code card_declined", 0},
		// Stripe's own advice.
		declineRow{"advice do_not_try_again", activities.Decline{AdviceCode: "do_not_try_again"}, stop, "advice_code do_not_try_again", 0},
		declineRow{"advice confirm_card_data", activities.Decline{AdviceCode: "confirm_card_data"}, newData, "advice_code confirm_card_data", 0},
		declineRow{"advice try_again_later without a MAC", edit(cardDeclined("do_not_honor"), func(d *activities.Decline) {
			d.AdviceCode = "try_again_later"
		}), soft, "decline_code do_not_honor", 0},
		declineRow{"advice try_again_later alone", activities.Decline{AdviceCode: "try_again_later"}, soft, "advice_code try_again_later", 0},
		// Mastercard's Merchant Advice Codes.
		declineRow{"MAC 01", activities.Decline{NetworkAdviceCode: "01"}, newData, "network_advice_code 01", 0},
		declineRow{"MAC 02", activities.Decline{NetworkAdviceCode: "02"}, soft, "network_advice_code 02", 0},
		declineRow{"MAC 03", activities.Decline{NetworkAdviceCode: "03"}, stop, "network_advice_code 03", 0},
		declineRow{"MAC 21", activities.Decline{NetworkAdviceCode: "21"}, stop, "network_advice_code 21", 0},
		declineRow{"MAC 24", activities.Decline{NetworkAdviceCode: "24"}, retryAft, "network_advice_code 24", time.Hour},
		declineRow{"MAC 25", activities.Decline{NetworkAdviceCode: "25"}, retryAft, "network_advice_code 25", day},
		declineRow{"MAC 26", activities.Decline{NetworkAdviceCode: "26"}, retryAft, "network_advice_code 26", 2 * day},
		declineRow{"MAC 27", activities.Decline{NetworkAdviceCode: "27"}, retryAft, "network_advice_code 27", 4 * day},
		declineRow{"MAC 28", activities.Decline{NetworkAdviceCode: "28"}, retryAft, "network_advice_code 28", 6 * day},
		declineRow{"MAC 29", activities.Decline{NetworkAdviceCode: "29"}, retryAft, "network_advice_code 29", 8 * day},
		declineRow{"MAC 30", activities.Decline{NetworkAdviceCode: "30"}, retryAft, "network_advice_code 30", 10 * day},
		declineRow{"MAC unknown", activities.Decline{NetworkAdviceCode: "99"}, soft, "unknown network_advice_code 99", 0},
		// The charge's outcome.
		declineRow{"outcome previously_declined_do_not_retry", activities.Decline{Code: "card_declined", DeclineCode: "generic_decline",
			OutcomeReason: "previously_declined_do_not_retry"}, stop, "outcome_reason previously_declined_do_not_retry", 0},
		declineRow{"outcome highest_risk_level (Radar block)", activities.Decline{Code: "card_declined", DeclineCode: "fraudulent",
			OutcomeReason: "highest_risk_level"}, stop, "decline_code fraudulent", 0},
		declineRow{"outcome highest_risk_level alone", activities.Decline{OutcomeReason: "highest_risk_level"}, stop, "outcome_reason highest_risk_level", 0},
		declineRow{"outcome elevated_risk_level says nothing", edit(cardDeclined("insufficient_funds"), func(d *activities.Decline) {
			d.OutcomeReason = "elevated_risk_level"
		}), soft, "decline_code insufficient_funds", 0},
		// The intent's status.
		declineRow{"intent requires_action", activities.Decline{IntentStatus: "requires_action"}, authn, "intent_status requires_action", 0},
		declineRow{"intent requires_payment_method says nothing", edit(cardDeclined("insufficient_funds"), func(d *activities.Decline) {
			d.IntentStatus = "requires_payment_method"
		}), soft, "decline_code insufficient_funds", 0},
		// Unknown and empty.
		declineRow{"nothing at all", activities.Decline{}, soft, "no decline code", 0},
		declineRow{"a future decline code", cardDeclined("quantum_entanglement_detected"), soft, "unknown decline_code quantum_entanglement_detected", 0},
		declineRow{"a future error code", activities.Decline{Code: "card_fell_in_the_sea"}, soft, "unknown code card_fell_in_the_sea", 0},
		declineRow{"a future advice code", activities.Decline{AdviceCode: "wait_for_the_moon"}, soft, "unknown advice_code wait_for_the_moon", 0},
		declineRow{"a future decline code with advice to stop", edit(cardDeclined("quantum_entanglement_detected"), func(d *activities.Decline) {
			d.AdviceCode = "do_not_try_again"
		}), stop, "advice_code do_not_try_again", 0},
		// Precedence: the strongest says.
		declineRow{"MAC 03 beats insufficient funds", edit(cardDeclined("insufficient_funds"), func(d *activities.Decline) {
			d.NetworkAdviceCode = "03"
		}), stop, "network_advice_code 03", 0},
		declineRow{"MAC 21 beats advice to try again later", edit(cardDeclined("do_not_honor"), func(d *activities.Decline) {
			d.NetworkAdviceCode, d.AdviceCode = "21", "try_again_later"
		}), stop, "network_advice_code 21", 0},
		declineRow{"stop beats needs_authentication", activities.Decline{Code: "authentication_required", DeclineCode: "authentication_required",
			AdviceCode: "do_not_try_again"}, stop, "advice_code do_not_try_again", 0},
		declineRow{"stop beats needs_new_data", edit(cardDeclined("expired_card"), func(d *activities.Decline) {
			d.OutcomeReason = "previously_declined_do_not_retry"
		}), stop, "outcome_reason previously_declined_do_not_retry", 0},
		declineRow{"stop beats retry_after", edit(cardDeclined("stolen_card"), func(d *activities.Decline) {
			d.NetworkAdviceCode = "30"
		}), stop, "decline_code stolen_card", 0},
		declineRow{"the first stop names the reason", edit(cardDeclined("stolen_card"), func(d *activities.Decline) {
			d.NetworkAdviceCode, d.AdviceCode = "03", "do_not_try_again"
		}), stop, "decline_code stolen_card", 0},
		declineRow{"needs_authentication beats needs_new_data", activities.Decline{Code: "authentication_required", AdviceCode: "confirm_card_data"},
			authn, "code authentication_required", 0},
		declineRow{"requires_action beats insufficient funds", edit(cardDeclined("insufficient_funds"), func(d *activities.Decline) {
			d.IntentStatus = "requires_action"
		}), authn, "intent_status requires_action", 0},
		declineRow{"needs_authentication beats retry_after", activities.Decline{Code: "authentication_required", NetworkAdviceCode: "25"},
			authn, "code authentication_required", 0},
		declineRow{"MAC 01 beats insufficient funds", edit(cardDeclined("insufficient_funds"), func(d *activities.Decline) {
			d.NetworkAdviceCode = "01"
		}), newData, "network_advice_code 01", 0},
		declineRow{"needs_new_data beats retry_after", edit(cardDeclined("expired_card"), func(d *activities.Decline) {
			d.NetworkAdviceCode = "24"
		}), newData, "decline_code expired_card", 0},
		declineRow{"retry_after beats soft", edit(cardDeclined("insufficient_funds"), func(d *activities.Decline) {
			d.NetworkAdviceCode, d.AdviceCode = "26", "try_again_later"
		}), retryAft, "network_advice_code 26", 2 * day},
		declineRow{"of two waits the longer", activities.Decline{Code: "card_decline_rate_limit_exceeded", NetworkAdviceCode: "27"},
			retryAft, "network_advice_code 27", 4 * day},
		declineRow{"of two waits the longer, the other way", activities.Decline{Code: "card_decline_rate_limit_exceeded", NetworkAdviceCode: "24"},
			retryAft, "code card_decline_rate_limit_exceeded", day},
		declineRow{"a known soft code names the reason before card_declined", activities.Decline{Code: "card_declined", AdviceCode: "try_again_later"},
			soft, "advice_code try_again_later", 0},
		declineRow{"an unknown decline code names the reason before card_declined", cardDeclined("brand_new_code"),
			soft, "unknown decline_code brand_new_code", 0},
		declineRow{"a known soft code beats an unknown one", edit(cardDeclined("brand_new_code"), func(d *activities.Decline) {
			d.AdviceCode = "try_again_later"
		}), soft, "advice_code try_again_later", 0},
		declineRow{"network_decline_code alone says nothing", activities.Decline{NetworkDeclineCode: "05"}, soft, "no decline code", 0},
		// Normalised: trimmed, in lower case; a one-digit MAC is two.
		declineRow{"upper case", activities.Decline{Code: "CARD_DECLINED", DeclineCode: "STOLEN_CARD"}, stop, "decline_code stolen_card", 0},
		declineRow{"spaces", activities.Decline{Code: " card_declined ", DeclineCode: " expired_card\n"}, newData, "decline_code expired_card", 0},
		declineRow{"advice in mixed case", activities.Decline{AdviceCode: " Do_Not_Try_Again"}, stop, "advice_code do_not_try_again", 0},
		declineRow{"MAC with spaces", activities.Decline{NetworkAdviceCode: " 24 "}, retryAft, "network_advice_code 24", time.Hour},
		declineRow{"MAC of one digit", activities.Decline{NetworkAdviceCode: "3"}, stop, "network_advice_code 03", 0},
		declineRow{"outcome in upper case", activities.Decline{OutcomeReason: "PREVIOUSLY_DECLINED_DO_NOT_RETRY"}, stop,
			"outcome_reason previously_declined_do_not_retry", 0},
		declineRow{"status in upper case", activities.Decline{IntentStatus: "REQUIRES_ACTION"}, authn, "intent_status requires_action", 0},
	)
	return rows
}

// edit returns d changed by f, for rows that add to a base decline.
func edit(d activities.Decline, f func(*activities.Decline)) activities.Decline {
	f(&d)
	return d
}

func TestClassifyDecline(t *testing.T) {
	seen := map[string]bool{}
	for _, row := range declineTable() {
		if seen[row.name] {
			t.Fatalf("two rows named %q", row.name)
		}
		seen[row.name] = true
		t.Run(row.name, func(t *testing.T) {
			got := activities.ClassifyDecline(row.d)
			want := activities.DeclineVerdict{Class: row.class, Reason: row.reason, RetryAfter: row.after}
			if got != want {
				t.Errorf("ClassifyDecline(%+v) = %+v, want %+v", row.d, got, want)
			}
		})
	}
}

// The customer's wording names what to do, never what the bank said.
func TestDeclineNoticeReason(t *testing.T) {
	wording := map[activities.DeclineClass]string{
		stop:     "use another card",
		newData:  "update your card details",
		authn:    "confirm the payment with your bank",
		retryAft: "we will try again",
		soft:     "we will try again",
		"":       "we will try again",
	}
	for class, want := range wording {
		got := activities.DeclineNoticeReason(activities.DeclineVerdict{Class: class})
		if !strings.Contains(strings.ToLower(got), want) {
			t.Errorf("DeclineNoticeReason(%q) = %q, want it to say %q", class, got, want)
		}
	}
	if a, b := activities.DeclineNoticeReason(activities.DeclineVerdict{Class: retryAft}),
		activities.DeclineNoticeReason(activities.DeclineVerdict{Class: soft}); a != b {
		t.Errorf("retry_after says %q and soft %q; the customer sees one schedule", a, b)
	}
	// No stop leaks its reason: every stop row's wording is the one
	// generic sentence, and names none of the issuer's words.
	generic := activities.DeclineNoticeReason(activities.DeclineVerdict{Class: stop})
	leaks := []string{"fraud", "lost", "stolen", "pick", "blacklist", "black list", "security", "revok", "revocation",
		"restricted", "closed", "risk", "radar", "previously", "do not try", "not_", "_", "advice", "mastercard"}
	for _, row := range declineTable() {
		v := activities.ClassifyDecline(row.d)
		if v.Class != stop {
			continue
		}
		got := activities.DeclineNoticeReason(v)
		if got != generic {
			t.Errorf("%s: wording %q, want the generic %q", row.name, got, generic)
		}
		for _, w := range leaks {
			if strings.Contains(strings.ToLower(got), w) {
				t.Errorf("%s: wording %q names %q", row.name, got, w)
			}
		}
		if strings.Contains(got, v.Reason) {
			t.Errorf("%s: wording %q repeats the reason %q", row.name, got, v.Reason)
		}
	}
}
