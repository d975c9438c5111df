package soak

import (
	"fmt"
	"strings"
	"time"

	"dunning/e2e"
	"dunning/workflows"
)

// stageEffects are, for a change of stage, the customer notice and the
// ops alert it brings, and the control-plane action it is.
func stageEffects(from, to workflows.Stage) (notice, alert, action string) {
	switch to {
	case workflows.StagePastDue:
		if from == workflows.StageSuspended {
			// The life reopened: the customer paid what the suspension was
			// for and is given back the account, while a failure found
			// meanwhile keeps it going (unpaid-elsewhere-before-resumed).
			return "account_resumed", "reopened", "resume"
		}
		return "payment_failed", "past_due", ""
	case workflows.StageSuspended:
		return "account_suspended", "suspended", "suspend"
	case workflows.StageDeprovisioned:
		return "account_deprovisioned", "deprovisioned", "deprovision"
	case workflows.StageRecovered:
		if from == workflows.StageSuspended {
			return "account_resumed", "recovered", "resume"
		}
		return "payment_recovered", "recovered", ""
	case workflows.StageWaived:
		if from == workflows.StageSuspended {
			return "account_resumed", "waived", "resume"
		}
		return "payment_waived", "waived", ""
	}
	return "", "", ""
}

// The notices and alerts that changes of stage bring.
var (
	stageNotices = []string{"payment_failed", "account_suspended", "account_deprovisioned", "account_resumed", "payment_recovered", "payment_waived"}
	stageAlerts  = []string{"past_due", "suspended", "deprovisioned", "recovered", "waived", "reopened"}
)

// expectations are what the stages a customer's recovery went through
// call for: notices ("notice <type>") and alerts ("alert <kind>") by
// count, and control-plane actions.
//
// A life begins past_due and is announced (notice and alert) once money
// is found owed; one that ends before that, paid at its first check (an
// old event) or waived at once, tells the customer nothing: quiet when
// recovered, with the ops alert alone when waived. The lives announced
// are counted from the past-due notices and alerts received, and only
// lives that went straight from past_due to recovered or waived may be
// quiet; problem says when the count does not fit.
func expectations(stages []workflows.Stage, gotNotice, gotAlert map[string]int) (want, actions map[string]int, problem string) {
	want, actions = map[string]int{}, map[string]int{}
	var short []workflows.Stage // how each short life ended, in order
	lives := 0
	from := workflows.Stage("")
	for i, to := range stages {
		if to == workflows.StagePastDue && from != workflows.StageSuspended {
			lives++
			if i+1 < len(stages) && (stages[i+1] == workflows.StageRecovered || stages[i+1] == workflows.StageWaived) {
				short = append(short, stages[i+1])
			}
		}
		n, al, ac := stageEffects(from, to)
		want["notice "+n]++
		want["alert "+al]++
		if ac != "" {
			actions[ac]++
		}
		from = to
	}
	announced := max(gotNotice["payment_failed"], gotAlert["past_due"])
	quiet := lives - announced
	if quiet < 0 || quiet > len(short) {
		problem = fmt.Sprintf("%d lives %v, %d announced (%d past-due notices, %d alerts); only a life that ends at its first check may be silent",
			lives, stages, announced, gotNotice["payment_failed"], gotAlert["past_due"])
		quiet = max(0, min(quiet, len(short)))
	}
	for _, end := range short[:quiet] {
		want["notice payment_failed"]--
		want["alert past_due"]--
		if end == workflows.StageRecovered {
			want["notice payment_recovered"]--
			want["alert recovered"]--
		} else {
			want["notice payment_waived"]--
		}
	}
	return want, actions, problem
}

// lastReadBetween finds the last of reads strictly between after and
// before.
func lastReadBetween(reads []e2e.Request, after, before time.Time) (e2e.Request, bool) {
	var found e2e.Request
	ok := false
	for _, r := range reads {
		if r.At.After(after) && r.At.Before(before) {
			found, ok = r, true
		}
	}
	return found, ok
}

// noticeIntent reads the payment a payment_failed notice of its own is
// about from its key ("<life>:past_due:<intent>:notice", or
// "<life>:past_due:<intent>:again:<n>:notice" for a told payment that
// failed again after it was in flight); ok is false for the life's own
// notice ("<life>:past_due:notice") and any other key.
func noticeIntent(key string) (intent string, again, ok bool) {
	_, rest, found := strings.Cut(key, ":past_due:")
	if !found {
		return "", false, false
	}
	parts := strings.Split(rest, ":")
	switch {
	case len(parts) == 2 && parts[1] == "notice" && parts[0] != "":
		return parts[0], false, true
	case len(parts) == 4 && parts[1] == "again" && parts[3] == "notice" && parts[0] != "":
		return parts[0], true, true
	}
	return "", false, false
}

// takeAway is a suspension or deprovisioning request seen by the control
// plane.
type takeAway struct {
	Kind string
	At   time.Time
	Key  string
}

// leadProblems checks the payment_failed notices of one payment's own
// against the take-aways: each tells a deadline no sooner than lead after
// it was decided (a second of rounding allowed: the notice carries whole
// seconds), and nothing is taken away before that deadline while the
// payment is unpaid (settled: when it was paid or forgiven, zero if
// never).
func leadProblems(msgs []e2e.Message, takes []takeAway, settled map[string]time.Time, lead time.Duration) []string {
	var out []string
	for _, m := range msgs {
		intent, _, ok := noticeIntent(m.Key)
		if m.Kind != "payment_failed" || !ok {
			continue
		}
		if m.Deadline.IsZero() || m.Created.IsZero() {
			out = append(out, fmt.Sprintf("notice %s tells no deadline", m.Key))
			continue
		}
		if got := m.Deadline.Sub(m.Created); got < lead-time.Second {
			out = append(out, fmt.Sprintf("notice %s, decided %s, tells the deadline %s: %s, want at least %s",
				m.Key, m.Created.Format(time.TimeOnly), m.Deadline.Format(time.TimeOnly), got, lead))
		}
		for _, t := range takes {
			if !t.At.After(m.Created) || !t.At.Before(m.Deadline) {
				continue
			}
			if p := settled[intent]; !p.IsZero() && p.Before(t.At) {
				continue
			}
			out = append(out, fmt.Sprintf("%s at %s (key %s), before the deadline %s that notice %s (decided %s) told, %s unpaid",
				t.Kind, t.At.Format("15:04:05.000"), t.Key, m.Deadline.Format(time.TimeOnly), m.Key, m.Created.Format(time.TimeOnly), intent))
		}
	}
	return out
}
