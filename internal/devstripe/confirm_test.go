package devstripe_test

import (
	"net/http"
	"strings"
	"testing"
)

// Stripe confirms an intent only in requires_payment_method,
// requires_confirmation or requires_action; any other is refused with 400
// payment_intent_unexpected_state, the intent in the error, and nothing
// is charged.
func TestConfirmRefusedUnlessConfirmable(t *testing.T) {
	for _, tc := range []struct {
		status  string
		refused bool
	}{
		{"canceled", true},
		{"processing", true},
		{"requires_capture", true},
		{"succeeded", true},
		{"requires_payment_method", false},
		{"requires_confirmation", false},
		{"requires_action", false},
	} {
		t.Run(tc.status, func(t *testing.T) {
			st := newStack(t)
			st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))
			st.dev.Observe(attachedEvent("cus_1", "pm_good"))
			if !st.dev.SetIntentStatus("pi_1", tc.status) {
				t.Fatal("intent not known")
			}
			a := st.postWithKey(t, "/v1/payment_intents/pi_1/confirm", "payment_method=pm_good&off_session=true", "k-"+tc.status)
			if !tc.refused {
				if a.status != http.StatusOK || a.obj["status"] != "succeeded" {
					t.Errorf("confirm of a %s intent: %d %s, want 200 succeeded", tc.status, a.status, a.raw)
				}
				return
			}
			typ, code, msg := a.errorOf()
			e, _ := a.obj["error"].(map[string]any)
			pi, _ := e["payment_intent"].(map[string]any)
			if a.status != http.StatusBadRequest || typ != "invalid_request_error" || code != "payment_intent_unexpected_state" ||
				!strings.Contains(msg, "You cannot confirm this PaymentIntent") || pi["id"] != "pi_1" || pi["status"] != tc.status {
				t.Errorf("confirm of a %s intent: %d %s; want 400 payment_intent_unexpected_state with the intent as it is", tc.status, a.status, a.raw)
			}
			if s := st.intentStatus(t, "pi_1"); s != tc.status {
				t.Errorf("intent status %v after the refused confirm, want %s", s, tc.status)
			}
		})
	}
}
