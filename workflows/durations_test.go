package workflows_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"dunning/activities"
	"dunning/workflows"
)

// What the Temporal UI shows of a recovery's input and status reads as
// people write durations, and what histories hold from before still reads.
func TestDurationsReadAsPeopleWriteThem(t *testing.T) {
	in := workflows.RecoveryInput{StripeCustomerID: "cus_1", Settings: workflows.RecoverySettings{
		RetrySchedule: []time.Duration{24 * time.Hour, 72 * time.Hour}, GracePeriod: 168 * time.Hour,
		DeprovisionAfter: 336 * time.Hour, CardUpdateDebounce: time.Second, MaxGraceExtension: 720 * time.Hour,
		InFlightAlertAfter: 90 * time.Minute, MaxAttemptsPerCard: 8,
	}, State: &workflows.RecoveryState{StripeCustomerID: "cus_1", PausedTotal: 2 * time.Hour, Stage: workflows.StagePastDue,
		Intents: []*workflows.Intent{{ID: "pi_1", State: workflows.IntentOpen,
			Decline: &activities.DeclineVerdict{Class: activities.DeclineRetryAfter, Reason: "network_advice_code 25", RetryAfter: 24 * time.Hour}}}}}
	in.State.Settings = in.Settings
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"retry_schedule":["24h","72h"]`, `"grace_period":"168h"`, `"deprovision_after":"336h"`,
		`"card_update_debounce":"1s"`, `"in_flight_alert_after":"1h30m"`, `"paused_total":"2h"`, `"retry_after":"24h"`, `"max_attempts_per_card":8`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("JSON lacks %s:\n%s", want, raw)
		}
	}
	var back workflows.RecoveryInput
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, in) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", back.State, in.State)
	}

	// As a history written before holds it.
	old := `{"stripe_customer_id":"cus_1","settings":{"retry_schedule":[86400000000000],"grace_period":604800000000000,
		"deprovision_after":1209600000000000,"card_update_debounce":10000000000,"max_grace_extension":2592000000000000}}`
	var prev workflows.RecoveryInput
	if err := json.Unmarshal([]byte(old), &prev); err != nil {
		t.Fatal(err)
	}
	if s := prev.Settings; len(s.RetrySchedule) != 1 || s.RetrySchedule[0] != 24*time.Hour || s.GracePeriod != 168*time.Hour ||
		s.CardUpdateDebounce != 10*time.Second || s.MaxGraceExtension != 720*time.Hour {
		t.Errorf("old form read as %+v", s)
	}
	// A reconciliation by hand, as docs/operations.md starts one, and as
	// the schedule's input was written before.
	for raw, want := range map[string]workflows.ReconcileInput{
		`{"lookback":"72h","overlap":"10m","full":true}`:                    {Lookback: 72 * time.Hour, Overlap: 10 * time.Minute, Full: true},
		`{"lookback":259200000000000,"overlap":600000000000}`:               {Lookback: 72 * time.Hour, Overlap: 10 * time.Minute},
		`{"lookback":"1h","starting_after":"evt_1","progress":{"found":3}}`: {Lookback: time.Hour, StartingAfter: "evt_1", Progress: &workflows.ReconcileResult{Found: 3}},
		`{"lookback":"72h","retention":"168h"}`:                             {Lookback: 72 * time.Hour, Retention: 168 * time.Hour},
	} {
		var got workflows.ReconcileInput
		if err := json.Unmarshal([]byte(raw), &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s read as %+v (%v), want %+v", raw, got, err, want)
		}
		back, _ := json.Marshal(got)
		if !strings.Contains(string(back), `"lookback":"`) || (want.Overlap != 0 && !strings.Contains(string(back), `"overlap":"10m"`)) ||
			(want.Retention != 0 && !strings.Contains(string(back), `"retention":"168h"`)) {
			t.Errorf("%+v written as %s", got, back)
		}
	}
	for _, v := range []any{&workflows.CardExpiryInput{}, &workflows.ReconcileInput{}} {
		if err := json.Unmarshal([]byte(`{"reminder_before":604800000000000,"lookback":"72h"}`), v); err != nil {
			t.Errorf("%T: %v", v, err)
		}
	}
}
