package stripeevent_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dunning/activities"
	"dunning/internal/stripeevent"
	"dunning/workflows"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// Failed-payment events as three API versions and a legacy Sources
// integration shape them, written from Stripe's documented objects: the
// decline comes out whole from each, and means what it says.
func TestParseDeclineOfEachAPIVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file    string
		want    workflows.PaymentIntentInfo
		verdict activities.DeclineVerdict
	}{{
		// Before 2022-11-15 the intent lists its charges; the charge that
		// failed says Stripe blocked it, the issuer having asked never to
		// retry this card. No advice codes in this version.
		file: "payment_failed_2020-08-27.json",
		want: workflows.PaymentIntentInfo{ID: "pi_1HqOld2020Intent01", Amount: 4900, Currency: "usd", Status: "requires_payment_method",
			InvoiceID: "in_1HqOld2020Invoice1", PaymentMethodID: "pm_1HqOld2020Card0001", FailureCode: "card_declined",
			DeclineCode: "generic_decline", FailureMessage: "Your card was declined.",
			Decline: activities.Decline{Code: "card_declined", DeclineCode: "generic_decline",
				OutcomeReason: "previously_declined_do_not_retry", PaymentMethod: "pm_1HqOld2020Card0001",
				Fingerprint: "Old2020FingerPrnt", Charge: "ch_1HqOld2020Charge02", IntentStatus: "requires_payment_method",
				Created: time.Unix(1710417599, 0).UTC()}, FailedPaymentMethodType: "card"}, // the failed charge's created
		verdict: activities.DeclineVerdict{Class: activities.DeclineStop, Reason: "outcome_reason previously_declined_do_not_retry"},
	}, {
		// latest_charge is an ID: no outcome to read.
		file: "payment_failed_2023-10-16.json",
		want: workflows.PaymentIntentInfo{ID: "pi_3OqMid2023Intent01", Amount: 12000, Currency: "eur", Status: "requires_payment_method",
			InvoiceID: "in_1OqMid2023Invoice1", PaymentMethodID: "pm_1OqMid2023Card0001", FailureCode: "card_declined",
			DeclineCode: "insufficient_funds", FailureMessage: "Your card has insufficient funds.",
			Decline: activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentMethod: "pm_1OqMid2023Card0001",
				Fingerprint: "Mid2023FingerPrt", Charge: "ch_3OqMid2023Charge01", IntentStatus: "requires_payment_method"}, FailedPaymentMethodType: "card"},
		verdict: activities.DeclineVerdict{Class: activities.DeclineSoft, Reason: "decline_code insufficient_funds"},
	}, {
		// basil: no invoice on the intent; Stripe's advice and
		// Mastercard's: retry after an hour.
		file: "payment_failed_2025-03-31.basil.json",
		want: workflows.PaymentIntentInfo{ID: "pi_3RqNew2025Intent01", Amount: 2500, Currency: "gbp", Status: "requires_payment_method",
			PaymentMethodID: "pm_1RqNew2025Card0001", FailureCode: "card_declined",
			DeclineCode: "insufficient_funds", FailureMessage: "Your card has insufficient funds.",
			Decline: activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", AdviceCode: "try_again_later",
				NetworkAdviceCode: "24", NetworkDeclineCode: "51", PaymentMethod: "pm_1RqNew2025Card0001",
				Fingerprint: "New2025FingerPrt", Charge: "ch_3RqNew2025Charge01", IntentStatus: "requires_payment_method"}, FailedPaymentMethodType: "card"},
		verdict: activities.DeclineVerdict{Class: activities.DeclineRetryAfter, Reason: "network_advice_code 24", RetryAfter: time.Hour},
	}, {
		// A Sources integration: the card is in last_payment_error.source,
		// and the intent's status has its old name.
		file: "payment_failed_2019-02-19.source.json",
		want: workflows.PaymentIntentInfo{ID: "pi_1EqLegacyIntent001", Amount: 990, Currency: "usd", Status: "requires_source",
			InvoiceID: "in_1EqLegacyInvoice01", PaymentMethodID: "card_1EqLegacyCard0001", FailureCode: "card_declined",
			DeclineCode: "lost_card", FailureMessage: "Your card was declined.",
			Decline: activities.Decline{Code: "card_declined", DeclineCode: "lost_card", PaymentMethod: "card_1EqLegacyCard0001",
				Fingerprint: "LegacyFingerPrnt", Charge: "ch_1EqLegacyCharge001", IntentStatus: "requires_source"}},
		verdict: activities.DeclineVerdict{Class: activities.DeclineStop, Reason: "decline_code lost_card"},
	}} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			ev, err := stripeevent.Parse(readFixture(t, tc.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if ev.PaymentIntent == nil {
				t.Fatal("PaymentIntent = nil")
			}
			if *ev.PaymentIntent != tc.want {
				t.Errorf("PaymentIntent =\n %+v\nwant\n %+v", *ev.PaymentIntent, tc.want)
			}
			if got := activities.ClassifyDecline(ev.PaymentIntent.Decline); got != tc.verdict {
				t.Errorf("ClassifyDecline = %+v, want %+v", got, tc.verdict)
			}
		})
	}
}

// changed returns d changed by f.
func changed(d activities.Decline, f func(d *activities.Decline)) activities.Decline {
	f(&d)
	return d
}

// The ugly shapes: nulls, absent fields, IDs where objects were, objects
// where IDs were, charges that are not the one that failed.
func TestParseDeclineShapes(t *testing.T) {
	t.Parallel()
	basil := readFixture(t, "payment_failed_2025-03-31.basil.json")
	old := readFixture(t, "payment_failed_2020-08-27.json")
	// What the fixtures say, as parsed.
	basilDecline := activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", AdviceCode: "try_again_later",
		NetworkAdviceCode: "24", NetworkDeclineCode: "51", PaymentMethod: "pm_1RqNew2025Card0001",
		Fingerprint: "New2025FingerPrt", Charge: "ch_3RqNew2025Charge01", IntentStatus: "requires_payment_method"}
	oldDecline := activities.Decline{Code: "card_declined", DeclineCode: "generic_decline", PaymentMethod: "pm_1HqOld2020Card0001",
		Fingerprint: "Old2020FingerPrnt", Charge: "ch_1HqOld2020Charge02", IntentStatus: "requires_payment_method"}

	lpe := func(ev map[string]any) map[string]any { return dataObject(ev)["last_payment_error"].(map[string]any) }
	chargeObj := func(id, reason string) map[string]any {
		return map[string]any{"id": id, "object": "charge", "status": "failed",
			"outcome": map[string]any{"type": "blocked", "reason": reason, "network_status": "not_sent_to_network",
				"advice_code": "do_not_try_again", "network_advice_code": nil, "network_decline_code": nil, "risk_level": "highest"},
			"payment_method": "pm_fromCharge", "payment_method_details": map[string]any{"type": "card",
				"card": map[string]any{"fingerprint": "ChargeFingerPrnt", "brand": "visa"}}}
	}
	for _, tc := range []struct {
		name string
		body []byte
		want activities.Decline
	}{{
		name: "advice fields null",
		body: mutate(t, basil, func(ev map[string]any) {
			e := lpe(ev)
			e["advice_code"], e["network_advice_code"], e["network_decline_code"], e["charge"], e["decline_code"] = nil, nil, nil, nil, nil
		}),
		want: changed(basilDecline, func(d *activities.Decline) {
			d.AdviceCode, d.NetworkAdviceCode, d.NetworkDeclineCode, d.Charge, d.DeclineCode = "", "", "", "", ""
		}),
	}, {
		name: "advice fields absent",
		body: mutate(t, basil, func(ev map[string]any) {
			e := lpe(ev)
			for _, k := range []string{"advice_code", "network_advice_code", "network_decline_code", "charge", "payment_method", "doc_url"} {
				delete(e, k)
			}
		}),
		want: activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", IntentStatus: "requires_payment_method"},
	}, {
		name: "payment_method null",
		body: mutate(t, basil, func(ev map[string]any) { lpe(ev)["payment_method"] = nil }),
		want: changed(basilDecline, func(d *activities.Decline) { d.PaymentMethod, d.Fingerprint = "", "" }),
	}, {
		name: "payment_method as an ID",
		body: mutate(t, basil, func(ev map[string]any) { lpe(ev)["payment_method"] = "pm_1RqNew2025Card0001" }),
		want: changed(basilDecline, func(d *activities.Decline) { d.Fingerprint = "" }),
	}, {
		name: "payment_method without card details",
		body: mutate(t, basil, func(ev map[string]any) {
			lpe(ev)["payment_method"] = map[string]any{"id": "pm_1RqNew2025Link001", "object": "payment_method", "type": "link", "card": nil}
		}),
		want: changed(basilDecline, func(d *activities.Decline) { d.PaymentMethod, d.Fingerprint = "pm_1RqNew2025Link001", "" }),
	}, {
		// What the error says stands; the charge fills the rest.
		name: "charge expanded in last_payment_error",
		body: mutate(t, basil, func(ev map[string]any) {
			lpe(ev)["charge"] = chargeObj("ch_3RqNew2025Charge01", "highest_risk_level")
		}),
		want: changed(basilDecline, func(d *activities.Decline) { d.OutcomeReason = "highest_risk_level" }),
	}, {
		name: "charge expanded, and nothing else said",
		body: mutate(t, basil, func(ev map[string]any) {
			e := lpe(ev)
			e["charge"], e["advice_code"], e["payment_method"] = chargeObj("ch_3RqNew2025Charge01", "previously_declined_do_not_retry"), nil, nil
		}),
		want: changed(basilDecline, func(d *activities.Decline) {
			d.AdviceCode, d.OutcomeReason = "do_not_try_again", "previously_declined_do_not_retry"
			d.PaymentMethod, d.Fingerprint = "pm_fromCharge", "ChargeFingerPrnt"
		}),
	}, {
		name: "latest_charge expanded",
		body: mutate(t, basil, func(ev map[string]any) {
			dataObject(ev)["latest_charge"] = chargeObj("ch_3RqNew2025Charge01", "highest_risk_level")
		}),
		want: changed(basilDecline, func(d *activities.Decline) { d.OutcomeReason = "highest_risk_level" }),
	}, {
		// A later charge (a customer's own payment on the hosted page)
		// says nothing of the decline.
		name: "latest_charge expanded but another charge",
		body: mutate(t, basil, func(ev map[string]any) {
			dataObject(ev)["latest_charge"] = chargeObj("ch_3RqNew2025Other01", "highest_risk_level")
		}),
		want: basilDecline,
	}, {
		name: "charges listed oldest first",
		body: mutate(t, old, func(ev map[string]any) {
			list := dataObject(ev)["charges"].(map[string]any)
			data := list["data"].([]any)
			list["data"] = []any{data[1], data[0]}
		}),
		want: changed(oldDecline, func(d *activities.Decline) {
			d.OutcomeReason, d.Created = "previously_declined_do_not_retry", time.Unix(1710417599, 0).UTC()
		}),
	}, {
		name: "charges of an unexpected shape are left unread",
		body: mutate(t, old, func(ev map[string]any) { dataObject(ev)["charges"] = "ch_1HqOld2020Charge02" }),
		want: oldDecline,
	}, {
		name: "a charge in the list of an unexpected shape is left unread",
		body: mutate(t, old, func(ev map[string]any) {
			dataObject(ev)["charges"].(map[string]any)["data"] = []any{"ch_1HqOld2020Charge02", 7, nil}
		}),
		want: oldDecline,
	}, {
		// Kept as sent: ClassifyDecline compares them normalised.
		name: "values as Stripe might space and case them",
		body: mutate(t, basil, func(ev map[string]any) {
			e := lpe(ev)
			e["advice_code"], e["network_advice_code"] = "DO_NOT_TRY_AGAIN", " 03 "
		}),
		want: changed(basilDecline, func(d *activities.Decline) { d.AdviceCode, d.NetworkAdviceCode = "DO_NOT_TRY_AGAIN", " 03 " }),
	}, {
		name: "intent needs authentication",
		body: mutate(t, basil, func(ev map[string]any) {
			dataObject(ev)["status"] = "requires_action"
			e := lpe(ev)
			e["code"], e["decline_code"], e["advice_code"], e["network_advice_code"] = "authentication_required", "authentication_required", nil, nil
		}),
		want: changed(basilDecline, func(d *activities.Decline) {
			d.Code, d.DeclineCode, d.AdviceCode, d.NetworkAdviceCode = "authentication_required", "authentication_required", "", ""
			d.IntentStatus = "requires_action"
		}),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev, err := stripeevent.Parse(tc.body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			pi := ev.PaymentIntent
			if pi == nil {
				t.Fatal("PaymentIntent = nil")
			}
			if pi.Decline != tc.want {
				t.Errorf("Decline =\n %+v\nwant\n %+v", pi.Decline, tc.want)
			}
			// The fields from before stay as they were.
			if pi.FailureCode != tc.want.Code || pi.DeclineCode != tc.want.DeclineCode {
				t.Errorf("FailureCode, DeclineCode = %q, %q; want %q, %q", pi.FailureCode, pi.DeclineCode, tc.want.Code, tc.want.DeclineCode)
			}
		})
	}
}

// A last_payment_error of the wrong shape is an unreadable event, as
// before; its reason names the field and repeats nothing.
func TestParseDeclineWrongShapes(t *testing.T) {
	t.Parallel()
	const canary = "CANARYx7q9"
	basil := readFixture(t, "payment_failed_2025-03-31.basil.json")
	for name, edit := range map[string]func(e map[string]any){
		"code as a number":           func(e map[string]any) { e["code"] = 402 },
		"advice_code as an object":   func(e map[string]any) { e["advice_code"] = map[string]any{"x": canary} },
		"payment_method as a number": func(e map[string]any) { e["payment_method"] = 42 },
		"charge as a list":           func(e map[string]any) { e["charge"] = []any{canary} },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			body := mutate(t, basil, func(ev map[string]any) { edit(dataObject(ev)["last_payment_error"].(map[string]any)) })
			ev, err := stripeevent.Parse(body)
			if err == nil {
				t.Fatalf("Parse = %+v, nil; want an error", ev.PaymentIntent)
			}
			if msg := err.Error(); !strings.Contains(msg, "last_payment_error") || strings.Contains(msg, canary) {
				t.Errorf("error %q, want it to name last_payment_error and repeat nothing", msg)
			}
			if ev.ID != "evt_3RqNew2025Failed01" {
				t.Errorf("envelope ID = %q, want the event still named", ev.ID)
			}
		})
	}
}

// The decline survives the trip through Temporal's JSON: what the
// workflow gets is what the event said; an intent without an error adds
// nothing to the payload.
func TestDeclineRoundTrip(t *testing.T) {
	t.Parallel()
	ev, err := stripeevent.Parse(readFixture(t, "payment_failed_2025-03-31.basil.json"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var back workflows.StripeEvent
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back.PaymentIntent == nil || *back.PaymentIntent != *ev.PaymentIntent {
		t.Errorf("after a round trip: %+v, want %+v", back.PaymentIntent, ev.PaymentIntent)
	}
	plain, err := json.Marshal(workflows.PaymentIntentInfo{ID: "pi_1", Amount: 1, Currency: "usd"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(plain), `"decline"`) {
		t.Errorf("an intent without a decline encodes as %s, want no decline field", plain)
	}
}

// A bank debit that fails days after the customer paid, as Stripe sends
// it (us_bank_account on 2024-06-20, and the same for a SEPA Direct
// Debit): the intent's payment_method is null after the failure, the way
// to pay that failed is in last_payment_error.payment_method with its
// type, the code is the attempt's, not a card's, and the ACH return is on
// the charge. The type says the failure is a delayed notification; a
// card's decline is not.
func TestParseDelayedNotificationFailure(t *testing.T) {
	t.Parallel()
	ach := readFixture(t, "payment_failed_2024-06-20.us_bank_account.json")
	lpe := func(ev map[string]any) map[string]any { return dataObject(ev)["last_payment_error"].(map[string]any) }
	achIntent := workflows.PaymentIntentInfo{ID: "pi_3PqAch2024Intent01", Amount: 4900, Currency: "usd", Status: "requires_payment_method",
		InvoiceID: "in_1PqAch2024Invoice1", PaymentMethodID: "pm_1PqAch2024Bank0001", FailureCode: "payment_intent_payment_attempt_failed",
		FailureMessage: "The latest payment attempt of this PaymentIntent has failed or been canceled, and the attached payment method has been removed. You can try confirming again with a new payment method.",
		Decline: activities.Decline{Code: "payment_intent_payment_attempt_failed", PaymentMethod: "pm_1PqAch2024Bank0001",
			IntentStatus: "requires_payment_method"},
		FailedPaymentMethodType: "us_bank_account"}
	intent := func(f func(pi *workflows.PaymentIntentInfo)) workflows.PaymentIntentInfo {
		pi := achIntent
		f(&pi)
		return pi
	}
	for _, tc := range []struct {
		name    string
		body    []byte
		want    workflows.PaymentIntentInfo
		delayed bool
	}{
		{"us_bank_account", ach, achIntent, true},
		{"sepa_debit", mutate(t, ach, func(ev map[string]any) {
			pm := lpe(ev)["payment_method"].(map[string]any)
			delete(pm, "us_bank_account")
			pm["id"], pm["type"] = "pm_1PqSepa2024Debit01", "sepa_debit"
			pm["sepa_debit"] = map[string]any{"bank_code": "37040044", "country": "DE", "fingerprint": "Sepa2024FingerPr", "last4": "3000"}
			dataObject(ev)["currency"] = "eur"
		}), intent(func(pi *workflows.PaymentIntentInfo) {
			pi.Currency, pi.PaymentMethodID, pi.Decline.PaymentMethod, pi.FailedPaymentMethodType = "eur", "pm_1PqSepa2024Debit01", "pm_1PqSepa2024Debit01", "sepa_debit"
		}), true},
		// The payment method given by ID: only the failed charge names
		// the type.
		{"type on the charge alone", mutate(t, ach, func(ev map[string]any) {
			e := lpe(ev)
			e["payment_method"], e["charge"] = "pm_1PqAch2024Bank0001", "py_3PqAch2024Charge01"
		}), intent(func(pi *workflows.PaymentIntentInfo) {
			pi.Decline.Charge, pi.Decline.Created = "py_3PqAch2024Charge01", time.Unix(1718900100, 0).UTC()
		}), true},
		{"payment method null", mutate(t, ach, func(ev map[string]any) { lpe(ev)["payment_method"] = nil }),
			intent(func(pi *workflows.PaymentIntentInfo) {
				pi.PaymentMethodID, pi.Decline.PaymentMethod, pi.FailedPaymentMethodType = "", "", ""
			}), false},
		{"a card's decline", mutate(t, ach, func(ev map[string]any) {
			e := lpe(ev)
			e["code"], e["decline_code"], e["type"], e["message"] = "card_declined", "insufficient_funds", "card_error", "Your card has insufficient funds."
			e["payment_method"] = map[string]any{"id": "pm_1PqCard2024Visa001", "object": "payment_method", "type": "card",
				"card": map[string]any{"brand": "visa", "fingerprint": "Card2024FingerPr", "last4": "4242"}}
		}), intent(func(pi *workflows.PaymentIntentInfo) {
			pi.PaymentMethodID, pi.FailureCode, pi.DeclineCode, pi.FailureMessage = "pm_1PqCard2024Visa001", "card_declined", "insufficient_funds", "Your card has insufficient funds."
			pi.Decline = activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", PaymentMethod: "pm_1PqCard2024Visa001",
				Fingerprint: "Card2024FingerPr", IntentStatus: "requires_payment_method"}
			pi.FailedPaymentMethodType = "card"
		}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev, err := stripeevent.Parse(tc.body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if ev.PaymentIntent == nil {
				t.Fatal("PaymentIntent = nil")
			}
			if *ev.PaymentIntent != tc.want {
				t.Errorf("PaymentIntent =\n %+v\nwant\n %+v", *ev.PaymentIntent, tc.want)
			}
			if got := activities.DelayedNotification(ev.PaymentIntent.FailedPaymentMethodType); got != tc.delayed {
				t.Errorf("DelayedNotification(%q) = %v, want %v", ev.PaymentIntent.FailedPaymentMethodType, got, tc.delayed)
			}
		})
	}
}
