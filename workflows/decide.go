package workflows

import (
	"time"
)

// This file holds the recovery's decisions as pure functions over its
// state: what may be taken away now, what is owed, when to wake. The
// workflow applies signals and updates, calls activities, and asks these
// again after every wait.

// unsettled reports whether an intent still stands between the customer
// and recovery: open (unpaid) or in flight (a payment processing).
func unsettled(in *Intent) bool { return in.State == IntentOpen || in.State == IntentInFlight }

// unpaidCount counts the open intents: money owed and not on its way.
func unpaidCount(s *RecoveryState) int {
	n := 0
	for _, in := range s.Intents {
		if in.State == IntentOpen {
			n++
		}
	}
	return n
}

// unsettledCount counts the intents open or in flight.
func unsettledCount(s *RecoveryState) int {
	n := 0
	for _, in := range s.Intents {
		if unsettled(in) {
			n++
		}
	}
	return n
}

// Take-away steps.
const (
	takeSuspend     = "suspend"
	takeDeprovision = "deprovision"
	// takeCharge names a confirm under way, for operators' answers.
	takeCharge = "charge"
)

// blockTakeAway says why the step that takes something away (suspend or
// deprovision) must not happen now, on the state as it is after every
// signal and update accepted so far; "" when it may. It is asked before
// the re-check and again after it, since an operator or a payment may
// have acted while the re-check ran.
func blockTakeAway(s *RecoveryState, step string, now time.Time) string {
	switch {
	case s.Waive != nil:
		return "waived by an operator"
	case s.Paused:
		return "paused: " + s.PausedReason
	case unsettledCount(s) == 0:
		return "nothing is owed any more"
	case unpaidCount(s) == 0:
		return "every owed payment is in flight"
	case !s.RecheckAt.IsZero() && now.Before(s.RecheckAt):
		return "the last re-check got no answer; trying again at " + s.RecheckAt.UTC().Format(time.RFC3339)
	}
	switch step {
	case takeSuspend:
		if s.Stage != StagePastDue {
			return "stage is " + string(s.Stage)
		}
		if s.SuspendAt.IsZero() || now.Before(s.SuspendAt) {
			return "suspension moved to " + s.SuspendAt.UTC().Format(time.RFC3339)
		}
	case takeDeprovision:
		if s.Stage != StageSuspended {
			return "stage is " + string(s.Stage)
		}
		if s.DeprovisionAt.IsZero() || now.Before(s.DeprovisionAt) {
			return "deprovisioning moved to " + s.DeprovisionAt.UTC().Format(time.RFC3339)
		}
	}
	return ""
}

// blockCharge says why an intent must not be confirmed now; "" when it
// may. Asked before the owed check and again right before the confirm.
func blockCharge(s *RecoveryState, in *Intent) string {
	switch {
	case s.Waive != nil:
		return "waived by an operator"
	case s.Paused:
		return "paused: " + s.PausedReason
	case s.Stage != StagePastDue && s.Stage != StageSuspended:
		return "stage is " + string(s.Stage)
	case in == nil:
		return "unknown intent"
	case in.State != IntentOpen:
		return "intent is " + string(in.State)
	case in.NeedsAction:
		return "the customer must authenticate this payment"
	}
	return ""
}

// retryable lists the IDs of the intents a retry round would try now.
func retryable(s *RecoveryState) []string {
	var ids []string
	for _, in := range s.Intents {
		if blockCharge(s, in) == "" {
			ids = append(ids, in.ID)
		}
	}
	return ids
}

// inFlightAlertDue returns the in-flight intents that have been
// processing past the bound without ops being told, and the earliest time
// another one will be due (zero when none).
func inFlightAlertDue(s *RecoveryState, now time.Time) ([]*Intent, time.Time) {
	bound := s.Settings.InFlightAlertAfter
	if bound <= 0 {
		bound = DefaultInFlightAlertAfter
	}
	var due []*Intent
	var next time.Time
	for _, in := range s.Intents {
		if in.State != IntentInFlight || in.InFlightAlerted || in.InFlightSince.IsZero() {
			continue
		}
		at := in.InFlightSince.Add(bound)
		if !now.Before(at) {
			due = append(due, in)
		} else if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return due, next
}

// recheckAlertAfter is the bound after which unanswered re-checks alert.
func recheckAlertAfter(s *RecoveryState) time.Duration {
	if s.Settings.RecheckAlertAfter > 0 {
		return s.Settings.RecheckAlertAfter
	}
	return DefaultRecheckAlertAfter
}

// controlKeyIndex is the instance number of the next call of an action:
// each suspend, resume or deprovision of a life has its own key, and a
// retried call of the same instance keeps it.
func controlKeyIndex(s *RecoveryState, action string) int {
	return s.ControlCalls[action]
}

// anyWaived reports whether any intent was forgiven.
func anyWaived(s *RecoveryState) bool {
	for _, in := range s.Intents {
		if in.State == IntentWaived {
			return true
		}
	}
	return false
}

// forgivenOnly reports whether a life that has nothing unsettled left got
// there without any payment: every intent waived or canceled, at least one
// waived.
func forgivenOnly(s *RecoveryState) bool {
	waived := false
	for _, in := range s.Intents {
		switch in.State {
		case IntentWaived:
			waived = true
		case IntentCanceled:
		default:
			return false
		}
	}
	return waived
}
