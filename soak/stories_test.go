//go:build soak

package soak

import (
	"slices"
	"strings"
	"time"

	"dunning/e2e"
	"dunning/workflows"
)

// The paths the bank-debit and reopening stories are for, as the summary
// counts them: reached, or kept from by the timing (a fault, a slow
// delivery), in which case the story's own rules do not apply.
const (
	pathDebitSeen     = "debit_seen_in_flight" // dunning read the debit processing
	pathDebitUnseen   = "debit_unseen"         // no read while it processed
	pathToldAgain     = "failed_again_told"
	pathAgainUntested = "failed_again_untested" // not told before the debit
	pathReopened      = "reopened"
	pathNotReopened   = "not_reopened" // not suspended when the first payment was paid
)

var storyPaths = []string{pathDebitSeen, pathDebitUnseen, pathToldAgain, pathAgainUntested, pathReopened, pathNotReopened}

// unseenDebitTakenFirst reports whether a debit-fails-again customer's
// debit failed without dunning having read it processing, and the
// customer was deprovisioned before paying by card. Its processing event
// (or, lost, the failure's bank-debit type) tells dunning it failed
// again, with a notice and its lead (debit-failure-told): such a
// customer was taken away from without a word, a violation.
func unseenDebitTakenFirst(st *stack, cm *customerModel, readsOf map[string][]e2e.Request) bool {
	if cm.Script != debitFailsAgain {
		return false
	}
	cm.mu.Lock()
	in := *cm.Intents[0]
	cm.mu.Unlock()
	if in.DebitAt.IsZero() || in.DebitFailedAt.IsZero() || in.PaidAt.IsZero() {
		return false
	}
	if _, seen := lastReadBetween(readsOf[in.ID], in.DebitAt, in.DebitFailedAt); seen {
		return false
	}
	for _, r := range st.peers.Control.Requests(func(r e2e.Request) bool { return r.Customer == cm.ID }) {
		if r.Kind == "deprovision" && r.At.Before(in.PaidAt) {
			return true
		}
	}
	return false
}

// auditStory checks the rules that every customer's notices of a
// payment of its own must keep (the deadline they tell, and no take-away
// before it), and those of the stories of a payment in flight and of a
// reopened life.
func auditStory(a *audit, tr *traffic, st *stack, cm *customerModel, v recoveryView, readsOf map[string][]e2e.Request, settledAt map[string]time.Time) {
	msgs := st.peers.Notices.Messages(cm.ID)
	var takes []takeAway
	for _, r := range st.peers.Control.Requests(func(r e2e.Request) bool { return r.Customer == cm.ID }) {
		if r.Kind == "suspend" || r.Kind == "deprovision" {
			takes = append(takes, takeAway{Kind: r.Kind, At: r.At, Key: r.Key})
		}
	}
	lead := min(72*time.Hour, tr.set.Grace/2)
	for _, p := range leadProblems(msgs, takes, settledAt, lead) {
		a.add(vNoticeLead, "%s (%s): %s; stages %v", cm.ID, cm.Script, p, v.stages)
	}

	cm.mu.Lock()
	var intents []intentModel
	for _, in := range cm.Intents {
		intents = append(intents, *in)
	}
	cm.mu.Unlock()
	own := func(intent string, again bool) []e2e.Message {
		var out []e2e.Message
		for _, m := range msgs {
			if id, ag, ok := noticeIntent(m.Key); ok && m.Kind == "payment_failed" && id == intent && ag == again {
				out = append(out, m)
			}
		}
		return out
	}
	keys := func(ms []e2e.Message) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Key+" (decided "+m.Created.Format("15:04:05")+")")
		}
		return out
	}

	switch cm.Script {
	case debitPays, debitFailsAgain:
		in := intents[0]
		if in.DebitAt.IsZero() {
			return
		}
		// In flight from the debit until it failed or was paid.
		end := in.DebitFailedAt
		if end.IsZero() {
			end = in.PaidAt
		}
		if end.IsZero() {
			end = time.Now()
		}
		for _, t := range takes {
			if !t.At.After(in.DebitAt) || !t.At.Before(end) {
				continue
			}
			if rd, ok := lastReadBetween(readsOf[in.ID], in.DebitAt, t.At); ok {
				a.add(vTakenInFlight, "%s (%s): debit of %s processing from %s, read so %s, then %s %s (key %s); stages %v", cm.ID, cm.Script,
					in.ID, in.DebitAt.Format("15:04:05.000"), rd.At.Format("15:04:05.000"), t.Kind, t.At.Format("15:04:05.000"), t.Key, v.stages)
			}
		}
		_, seen := lastReadBetween(readsOf[in.ID], in.DebitAt, end)
		if seen {
			a.paths[pathDebitSeen]++
		} else {
			a.paths[pathDebitUnseen]++
		}
		if cm.Script != debitFailsAgain {
			return
		}
		again := own(in.ID, true)
		if len(again) > 1 {
			a.add(vToldAgain, "%s (%s): %s failed again once, told by %d notices %v", cm.ID, cm.Script, in.ID, len(again), keys(again))
		}
		toldFirst := false
		for _, m := range msgs {
			if m.Kind == "payment_failed" && strings.HasSuffix(m.Key, ":past_due:notice") && m.Created.Before(in.DebitAt.Truncate(time.Second)) {
				toldFirst = true
			}
		}
		if !toldFirst {
			a.paths[pathAgainUntested]++
			tr.logf("%s (%s): failed again untested (not told before the debit; seen in flight %v); debit %s, failed %s, notices %v, stages %v",
				cm.ID, cm.Script, seen, in.DebitAt.Format("15:04:05.000"), in.DebitFailedAt.Format("15:04:05.000"), keys(msgs), v.stages)
			return
		}
		// Seen processing by a read or not: its processing event, or its
		// failure's bank-debit type, says it failed again.
		a.paths[pathToldAgain]++
		switch {
		case len(again) == 0:
			a.add(vToldAgain, "%s (%s): told of %s, paid it by debit %s (read processing %v), the debit failed %s: never told it failed again; notices %v, stages %v",
				cm.ID, cm.Script, in.ID, in.DebitAt.Format("15:04:05.000"), seen, in.DebitFailedAt.Format("15:04:05.000"), keys(msgs), v.stages)
		case again[0].Created.Add(time.Second).Before(in.DebitFailedAt):
			a.add(vToldAgain, "%s (%s): notice %s decided %s, before the debit failed %s", cm.ID, cm.Script,
				again[0].Key, again[0].Created.Format("15:04:05"), in.DebitFailedAt.Format("15:04:05.000"))
		}
	case reopens:
		second := intents[1]
		told := own(second.ID, false)
		reopened := false
		for i := 1; i < len(v.stages); i++ {
			if v.stages[i-1] == workflows.StageSuspended && v.stages[i] == workflows.StagePastDue {
				reopened = true
			}
		}
		if !reopened {
			// The recovery had the payment of what the suspension was
			// for while the customer was suspended, and decided to tell
			// the second payment only after that: on that state it
			// reopens (the account given back, the second payment told
			// past due with its lead), whatever came first.
			first := intents[0]
			paidSig, ok := v.paidSignalled[first.ID]
			suspendedThen := slices.ContainsFunc(takes, func(t takeAway) bool { return t.Kind == "suspend" && t.At.Before(paidSig) })
			if ok && suspendedThen && len(told) > 0 && told[0].Created.After(paidSig) {
				a.add(vReopen, "%s (%s): suspended, signalled %s paid at %s, then told %s (notice decided %s, deadline %s) without giving the account back; stages %v",
					cm.ID, cm.Script, first.ID, paidSig.Format("15:04:05.000"), second.ID, told[0].Created.Format(time.TimeOnly),
					told[0].Deadline.Format(time.TimeOnly), v.stages)
			}
			a.paths[pathNotReopened]++
			tr.logf("%s (%s): not reopened; stages %v, notices %v", cm.ID, cm.Script, v.stages, keys(msgs))
			if len(told) > 1 {
				a.add(vNotice, "%s (%s): %s told by %d notices %v", cm.ID, cm.Script, second.ID, len(told), keys(told))
			}
			return
		}
		a.paths[pathReopened]++
		if all := append(told, own(second.ID, true)...); len(all) != 1 {
			a.add(vReopen, "%s (%s): reopened (stages %v); %s, unpaid and not told when the first was paid, told by %d notices %v; want one",
				cm.ID, cm.Script, v.stages, second.ID, len(all), keys(all))
		}
	}
}
