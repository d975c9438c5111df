package workflows

import (
	"encoding/json"
	"time"

	"dunning/internal/jsondur"
)

// The structs here hold durations; in JSON (what the Temporal UI shows of
// inputs, results and the status) they read as people write them, "168h",
// and read back from that or from the nanosecond integers of histories
// written before.

type plainSettings RecoverySettings

type settingsJSON struct {
	*plainSettings
	RetrySchedule      []jsondur.D `json:"retry_schedule"`
	GracePeriod        jsondur.D   `json:"grace_period"`
	DeprovisionAfter   jsondur.D   `json:"deprovision_after"`
	CardUpdateDebounce jsondur.D   `json:"card_update_debounce"`
	MaxGraceExtension  jsondur.D   `json:"max_grace_extension"`
	InFlightAlertAfter jsondur.D   `json:"in_flight_alert_after,omitempty"`
	RecheckAlertAfter  jsondur.D   `json:"recheck_alert_after,omitempty"`
}

// MarshalJSON writes the settings with readable durations.
func (s RecoverySettings) MarshalJSON() ([]byte, error) {
	p := plainSettings(s)
	return json.Marshal(settingsJSON{
		plainSettings: &p, RetrySchedule: jsondur.Of(s.RetrySchedule), GracePeriod: jsondur.D(s.GracePeriod),
		DeprovisionAfter: jsondur.D(s.DeprovisionAfter), CardUpdateDebounce: jsondur.D(s.CardUpdateDebounce),
		MaxGraceExtension: jsondur.D(s.MaxGraceExtension), InFlightAlertAfter: jsondur.D(s.InFlightAlertAfter),
		RecheckAlertAfter: jsondur.D(s.RecheckAlertAfter),
	})
}

// UnmarshalJSON reads either form.
func (s *RecoverySettings) UnmarshalJSON(b []byte) error {
	w := settingsJSON{plainSettings: (*plainSettings)(s)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	s.RetrySchedule, s.GracePeriod = jsondur.To(w.RetrySchedule), time.Duration(w.GracePeriod)
	s.DeprovisionAfter, s.CardUpdateDebounce = time.Duration(w.DeprovisionAfter), time.Duration(w.CardUpdateDebounce)
	s.MaxGraceExtension, s.InFlightAlertAfter = time.Duration(w.MaxGraceExtension), time.Duration(w.InFlightAlertAfter)
	s.RecheckAlertAfter = time.Duration(w.RecheckAlertAfter)
	return nil
}

type plainState RecoveryState

type stateJSON struct {
	*plainState
	PausedTotal jsondur.D `json:"paused_total,omitempty"`
}

// MarshalJSON writes the state with readable durations.
func (s RecoveryState) MarshalJSON() ([]byte, error) {
	p := plainState(s)
	return json.Marshal(stateJSON{plainState: &p, PausedTotal: jsondur.D(s.PausedTotal)})
}

// UnmarshalJSON reads either form.
func (s *RecoveryState) UnmarshalJSON(b []byte) error {
	w := stateJSON{plainState: (*plainState)(s)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	s.PausedTotal = time.Duration(w.PausedTotal)
	return nil
}

type plainExpiryInput CardExpiryInput

type expiryInputJSON struct {
	*plainExpiryInput
	ReminderBefore jsondur.D `json:"reminder_before"`
}

// MarshalJSON writes the input with a readable duration.
func (in CardExpiryInput) MarshalJSON() ([]byte, error) {
	p := plainExpiryInput(in)
	return json.Marshal(expiryInputJSON{plainExpiryInput: &p, ReminderBefore: jsondur.D(in.ReminderBefore)})
}

// UnmarshalJSON reads either form.
func (in *CardExpiryInput) UnmarshalJSON(b []byte) error {
	w := expiryInputJSON{plainExpiryInput: (*plainExpiryInput)(in)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	in.ReminderBefore = time.Duration(w.ReminderBefore)
	return nil
}

type plainReconcileInput ReconcileInput

type reconcileInputJSON struct {
	*plainReconcileInput
	Lookback  jsondur.D `json:"lookback"`
	Overlap   jsondur.D `json:"overlap,omitempty"`
	Retention jsondur.D `json:"retention,omitempty"`
}

// MarshalJSON writes the input with readable durations, so that an
// operator's run by hand takes {"lookback": "72h", "full": true}.
func (in ReconcileInput) MarshalJSON() ([]byte, error) {
	p := plainReconcileInput(in)
	return json.Marshal(reconcileInputJSON{plainReconcileInput: &p, Lookback: jsondur.D(in.Lookback), Overlap: jsondur.D(in.Overlap),
		Retention: jsondur.D(in.Retention)})
}

// UnmarshalJSON reads either form.
func (in *ReconcileInput) UnmarshalJSON(b []byte) error {
	w := reconcileInputJSON{plainReconcileInput: (*plainReconcileInput)(in)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	in.Lookback, in.Overlap, in.Retention = time.Duration(w.Lookback), time.Duration(w.Overlap), time.Duration(w.Retention)
	return nil
}
