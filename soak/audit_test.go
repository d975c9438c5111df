//go:build soak

package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"dunning/e2e"
	"dunning/workflows"
)

// The violations the audit counts, in the order the summary names them.
const (
	vLostEvent        = "lost_event"         // answered 200, no event workflow
	vUndelivered      = "undelivered"        // never answered 200 within the drain
	vWrongStage       = "wrong_stage"        // final stage not the one the events imply
	vRecoveredOwing   = "recovered_owing"    // a life ended recovered with a failure it knew of unpaid
	vUndrained        = "undrained"          // recovery still running after the drain
	vControlRepeated  = "control_repeated"   // an action applied more than once for one step
	vControlMissing   = "control_missing"    // a stage change without its action
	vActionAfterPaid  = "action_after_paid"  // suspend or deprovision after dunning could see the payment
	vKeyReused        = "key_reused"         // one idempotency key, other parameters
	vConfirmAfterPaid = "confirm_after_paid" // confirm after dunning could see the intent paid or waived
	vChargedTwice     = "charged_twice"      // an intent charged more than once
	vNotice           = "notice"             // a stage change without exactly one notice
	vAlert            = "alert"              // a stage change without exactly one ops alert
	vPeerProblem      = "peer_problem"       // a request the real peer would have rejected
	vProcessExit      = "process_exit"       // a dunning process exited without being killed
	vNoticeLead       = "notice_lead"        // a payment's own notice with a short lead, or a take-away before its deadline
	vTakenInFlight    = "taken_in_flight"    // suspend or deprovision after dunning read the owed payment processing
	vToldAgain        = "told_again"         // a told payment that failed again after processing, not told once
	vReopen           = "reopen"             // a reopened life whose other payment was not told once
)

var violationKinds = []string{vLostEvent, vUndelivered, vWrongStage, vRecoveredOwing, vUndrained, vControlRepeated, vControlMissing,
	vActionAfterPaid, vKeyReused, vConfirmAfterPaid, vChargedTwice, vNotice, vAlert, vPeerProblem, vProcessExit,
	vNoticeLead, vTakenInFlight, vToldAgain, vReopen}

// audit is the findings: every violation with what shows it.
type audit struct {
	found map[string][]string
	// final counts customers by the stage their recovery ended in
	// ("none" without a recovery).
	final map[string]int
	// lateCards counts the new cards told of only after deprovisioning
	// fell due (the customer then ends deprovisioned).
	lateCards int
	// paths counts the stories that reached the path they are for (a
	// debit seen in flight, a failure again told, a life reopened), and
	// those the timing kept from it.
	paths map[string]int
}

func (a *audit) add(kind, format string, args ...any) {
	a.found[kind] = append(a.found[kind], fmt.Sprintf(format, args...))
}

func (a *audit) total() int {
	n := 0
	for _, v := range a.found {
		n += len(v)
	}
	return n
}

// recoveryView is what Temporal says of a customer's recovery.
type recoveryView struct {
	exists  bool
	running bool
	final   workflows.Stage
	// stages are the values RecoveryStage took, in order, over every run.
	stages []workflows.Stage
	runs   []runView
	// paidSignalled is when the recovery was first signalled that an
	// intent was paid, by intent.
	paidSignalled map[string]time.Time
}

// runView is one run of the recovery (a life, or part of one when it
// continued as new).
type runView struct {
	id string
	// failedBefore are the intents whose failure the run had been told
	// of (started with, or signalled) before the workflow task that set
	// the stage recovered.
	failedBefore []string
	// passedOn are the failures it handed to the next life as it ended
	// (continue-as-new with them pending): they came in after the life
	// had settled, and are the next life's to recover.
	passedOn []string
	// last is the stage it ended in, ended when it closed.
	last  workflows.Stage
	ended time.Time
}

func keyword(p *commonpb.Payload) string {
	var s string
	if p == nil || converter.GetDefaultDataConverter().FromPayload(p, &s) != nil {
		return ""
	}
	return s
}

func readRecovery(ctx context.Context, c client.Client, customer string) (recoveryView, error) {
	v := recoveryView{paidSignalled: map[string]time.Time{}}
	id := workflows.RecoveryWorkflowID(customer)
	desc, err := c.DescribeWorkflow(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return v, nil
	}
	if err != nil {
		return v, fmt.Errorf("describe %s: %w", id, err)
	}
	info := desc.RawResponse.GetWorkflowExecutionInfo()
	v.exists = true
	v.running = info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	v.final = workflows.Stage(keyword(info.GetSearchAttributes().GetIndexedFields()[workflows.RecoveryStageKey.GetName()]))
	// Every run of the customer's recovery, oldest first: the runs of a
	// life that continued as new, and the lives that began as executions
	// of their own after an earlier one completed.
	ids, err := runsOf(ctx, c, id, info.GetExecution().GetRunId())
	if err != nil {
		return v, err
	}
	var runs []runView
	var stagesOf [][]workflows.Stage
	for _, run := range ids {
		rv := runView{id: run}
		var stages []workflows.Stage
		type signalled struct {
			event  int64
			intent string
		}
		var failed []signalled
		it := c.GetWorkflowHistory(ctx, id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return v, fmt.Errorf("history of %s run %s: %w", id, run, err)
			}
			var fields map[string]*commonpb.Payload
			switch {
			case ev.GetWorkflowExecutionStartedEventAttributes() != nil:
				a := ev.GetWorkflowExecutionStartedEventAttributes()
				fields = a.GetSearchAttributes().GetIndexedFields()
				// A run started with failures (the first of a customer with
				// none going, or those pending at the end of the life
				// before) was told of them as it began.
				var in workflows.RecoveryInput
				if err := converter.GetDefaultDataConverter().FromPayloads(a.GetInput(), &in); err == nil {
					for _, f := range in.Pending {
						failed = append(failed, signalled{ev.GetEventId(), f.Intent.ID})
					}
				}
			case ev.GetUpsertWorkflowSearchAttributesEventAttributes() != nil:
				fields = ev.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()
			case ev.GetWorkflowExecutionSignaledEventAttributes() != nil:
				a := ev.GetWorkflowExecutionSignaledEventAttributes()
				if a.GetSignalName() == workflows.SignalPaymentFailed && len(a.GetInput().GetPayloads()) == 1 {
					var f workflows.PaymentFailedSignal
					if err := converter.GetDefaultDataConverter().FromPayload(a.GetInput().GetPayloads()[0], &f); err == nil {
						failed = append(failed, signalled{ev.GetEventId(), f.Intent.ID})
					}
				}
				if a.GetSignalName() == workflows.SignalPaid && len(a.GetInput().GetPayloads()) == 1 {
					var p workflows.PaidSignal
					if err := converter.GetDefaultDataConverter().FromPayload(a.GetInput().GetPayloads()[0], &p); err == nil && p.IntentID != "" {
						if at, seen := v.paidSignalled[p.IntentID]; !seen || ev.GetEventTime().AsTime().Before(at) {
							v.paidSignalled[p.IntentID] = ev.GetEventTime().AsTime()
						}
					}
				}
			case ev.GetWorkflowExecutionContinuedAsNewEventAttributes() != nil:
				rv.ended = ev.GetEventTime().AsTime()
				var next workflows.RecoveryInput
				if err := converter.GetDefaultDataConverter().FromPayloads(ev.GetWorkflowExecutionContinuedAsNewEventAttributes().GetInput(), &next); err == nil && next.State == nil {
					for _, f := range next.Pending {
						rv.passedOn = append(rv.passedOn, f.Intent.ID)
					}
				}
			case ev.GetWorkflowExecutionCompletedEventAttributes() != nil:
				rv.ended = ev.GetEventTime().AsTime()
			}
			if s := keyword(fields[workflows.RecoveryStageKey.GetName()]); s != "" {
				stages = append(stages, workflows.Stage(s))
				rv.last = workflows.Stage(s)
				if up := ev.GetUpsertWorkflowSearchAttributesEventAttributes(); up != nil && rv.last == workflows.StageRecovered {
					// The task that decided saw every signal before it started.
					started := up.GetWorkflowTaskCompletedEventId() - 1
					rv.failedBefore = nil
					for _, f := range failed {
						if f.event < started {
							rv.failedBefore = append(rv.failedBefore, f.intent)
						}
					}
				}
			}
		}
		runs = append(runs, rv)
		stagesOf = append(stagesOf, stages)
	}
	v.runs = runs
	for _, r := range stagesOf {
		for _, s := range r {
			if len(v.stages) == 0 || v.stages[len(v.stages)-1] != s {
				v.stages = append(v.stages, s)
			}
		}
	}
	return v, nil
}

// intentPath returns the intent a Stripe request is about, if any.
func intentPath(r e2e.Request) string {
	parts := strings.Split(strings.Trim(r.Path, "/"), "/")
	if len(parts) >= 3 && parts[0] == "v1" && parts[1] == "payment_intents" {
		return parts[2]
	}
	return ""
}

func clean(r e2e.Request) bool { return r.Fault == "" && r.Status == http.StatusOK }

// runAudit checks what the peers saw against the model.
func runAudit(ctx context.Context, st *stack, tr *traffic, snd *sender) *audit {
	a := &audit{found: map[string][]string{}, final: map[string]int{}, paths: map[string]int{}}
	c := st.client()

	// Every delivery answered 200 has its event workflow.
	for _, e := range snd.all() {
		if !e.answered200() {
			a.add(vUndelivered, "%s: never answered 200 (%d attempts)", e, len(e.attempts))
			continue
		}
		_, err := c.DescribeWorkflow(ctx, workflows.EventWorkflowID(e.ID), "")
		if err != nil {
			a.add(vLostEvent, "%s answered 200 but its workflow: %v", e, err)
		}
	}

	stripeReqs := st.peers.Stripe.Requests(nil)
	readsOf := map[string][]e2e.Request{}    // clean reads by intent
	confirmsOf := map[string][]e2e.Request{} // by intent
	byKey := map[string]map[string]bool{}    // confirm key -> path+body
	waivedAt := map[string]time.Time{}       // when dunning wrote a waiver to Stripe
	for _, r := range stripeReqs {
		in := intentPath(r)
		switch {
		case r.Kind == "read intent" && clean(r):
			readsOf[in] = append(readsOf[in], r)
		case r.Kind == "update intent" && clean(r) && strings.Contains(string(r.Body), "dunning_waived"):
			if _, ok := waivedAt[in]; !ok {
				waivedAt[in] = r.At
			}
		case r.Kind == "confirm":
			confirmsOf[in] = append(confirmsOf[in], r)
			if byKey[r.Key] == nil {
				byKey[r.Key] = map[string]bool{}
			}
			byKey[r.Key][r.Path+"?"+string(r.Body)] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		if len(byKey[k]) > 1 {
			a.add(vKeyReused, "Stripe key %q sent with %d different requests: %v", k, len(byKey[k]), slices.Sorted(maps.Keys(byKey[k])))
		}
	}
	// paidAt: when an intent was paid, by the customer (the model) or by
	// dunning's charge (the first confirm Stripe answered 200 itself).
	paidAt := map[string]time.Time{}
	for _, cm := range tr.customers() {
		cm.mu.Lock()
		for _, in := range cm.Intents {
			if !in.PaidAt.IsZero() {
				paidAt[in.ID] = in.PaidAt
			}
		}
		cm.mu.Unlock()
	}
	for in, confirms := range confirmsOf {
		charges := 0
		for _, r := range confirms {
			if r.Handled == http.StatusOK && !r.Replayed {
				charges++
				if p, ok := paidAt[in]; !ok || r.At.Before(p) {
					paidAt[in] = r.At
				}
			}
		}
		if charges > 1 {
			a.add(vChargedTwice, "intent %s charged %d times", in, charges)
		}
	}
	// settledAt: paid, or forgiven by a waiver dunning wrote to Stripe.
	settledAt := maps.Clone(paidAt)
	for in, w := range waivedAt {
		if p, ok := settledAt[in]; !ok || w.Before(p) {
			settledAt[in] = w
		}
	}
	// A confirm after a read that could see the intent paid or waived.
	for in, confirms := range confirmsOf {
		p, ok := settledAt[in]
		if !ok {
			continue
		}
		for _, r := range confirms {
			if !r.At.After(p) || (r.Handled == http.StatusOK && !r.Replayed) || r.Replayed {
				continue
			}
			if rd, ok := lastReadBetween(readsOf[in], p, r.At); ok {
				a.add(vConfirmAfterPaid, "intent %s paid or waived %s, read so %s, confirmed again %s (key %s)",
					in, p.Format(time.StampMilli), rd.At.Format(time.StampMilli), r.At.Format(time.StampMilli), r.Key)
			}
		}
	}

	// Control plane: one key, one request; each step once.
	controlByKey := map[string]map[string]bool{}
	for _, r := range st.peers.Control.Requests(nil) {
		var body map[string]any
		_ = json.Unmarshal(r.Body, &body)
		delete(body, "requested_at") // the time of each attempt
		raw, _ := json.Marshal(body)
		if controlByKey[r.Key] == nil {
			controlByKey[r.Key] = map[string]bool{}
		}
		controlByKey[r.Key][r.Path+" "+string(raw)] = true
	}
	for _, k := range slices.Sorted(maps.Keys(controlByKey)) {
		if len(controlByKey[k]) > 1 {
			a.add(vKeyReused, "control-plane key %q sent with %d different requests: %v", k, len(controlByKey[k]), slices.Sorted(maps.Keys(controlByKey[k])))
		}
	}

	for _, cm := range tr.customers() {
		v, err := readRecovery(ctx, c, cm.ID)
		if err != nil {
			a.add(vWrongStage, "%s (%s): %v", cm.ID, cm.Script, err)
			continue
		}
		switch {
		case !v.exists:
			a.final["none"]++
		case v.running:
			a.final["running"]++
		default:
			a.final[string(v.final)]++
		}
		cm.mu.Lock()
		expect, cardEvent := cm.Expect, cm.CardEvent
		cm.mu.Unlock()
		// A new card told of after deprovisioning fell due comes too late:
		// nothing was paid, and the card alone is no reason to hold back.
		if cm.Script == newCard && v.final == workflows.StageDeprovisioned && cardEvent != nil {
			if ok := cardEvent.firstOK(); ok.IsZero() || ok.After(cm.Start.Add(tr.set.Grace+tr.set.Deprovision-10*time.Second)) {
				expect = workflows.StageDeprovisioned
				a.lateCards++
			}
		}
		if expect == workflows.StageRecovered && v.final == workflows.StageDeprovisioned && unseenDebitTakenFirst(st, cm, readsOf) {
			a.add(vToldAgain, "%s (%s): its debit failed unseen by a read, and it was deprovisioned before paying by card; notices %v, stages %v",
				cm.ID, cm.Script, st.peers.Notices.Kinds(cm.ID), v.stages)
		}
		if v.running {
			a.add(vUndrained, "%s (%s): recovery still running in stage %s", cm.ID, cm.Script, v.final)
		} else if v.final != expect {
			a.add(vWrongStage, "%s (%s): recovery ended %q, the events imply %q; stages %v", cm.ID, cm.Script, v.final, expect, v.stages)
		}

		gotNotice, gotAlert := st.peers.Notices.Kinds(cm.ID), st.peers.Alerts.Kinds(cm.ID)
		// A failure that joins a life after its customer was told of the
		// first is told by a payment_failed notice of its own, keyed by
		// its intent (joined-failure-told), and so is a told payment that
		// fails again after it was in flight (failed-again-told); the
		// stages imply the life's one notice, so those are counted apart.
		gotNotice["payment_failed"] -= joinedFailureNotices(st.peers.Notices.Messages(cm.ID))
		want, wantAction, problem := expectations(v.stages, gotNotice, gotAlert)
		if problem != "" {
			a.add(vNotice, "%s (%s): %s", cm.ID, cm.Script, problem)
		}
		for _, k := range stageNotices {
			if gotNotice[k] != want["notice "+k] {
				a.add(vNotice, "%s (%s): %d %q notices, stages %v imply %d", cm.ID, cm.Script, gotNotice[k], k, v.stages, want["notice "+k])
			}
		}
		for _, k := range stageAlerts {
			if gotAlert[k] != want["alert "+k] {
				a.add(vAlert, "%s (%s): %d %q alerts, stages %v imply %d", cm.ID, cm.Script, gotAlert[k], k, v.stages, want["alert "+k])
			}
		}
		// A life ends recovered only when nothing it was told of is owed,
		// but for the failures it handed to the next life, which opens at
		// once with them.
		for _, run := range v.runs {
			if run.last != workflows.StageRecovered || run.ended.IsZero() {
				continue
			}
			for _, in := range run.failedBefore {
				if slices.Contains(run.passedOn, in) {
					continue
				}
				if p, ok := paidAt[in]; !ok || p.After(run.ended) {
					a.add(vRecoveredOwing, "%s (%s): run %s ended recovered at %s while intent %s, whose failure it had been told of before deciding, was unpaid",
						cm.ID, cm.Script, run.id, run.ended.Format(time.StampMilli), in)
				}
			}
		}
		applied := st.peers.Control.Applied(cm.ID)
		gotAction := map[string]int{}
		for _, ap := range applied {
			gotAction[ap.Action]++
		}
		for _, k := range []string{"suspend", "resume", "deprovision"} {
			switch {
			case gotAction[k] > wantAction[k]:
				a.add(vControlRepeated, "%s (%s): %s applied %d times (keys %v), stages %v imply %d", cm.ID, cm.Script, k, gotAction[k], keysOf(applied, k), v.stages, wantAction[k])
			case gotAction[k] < wantAction[k]:
				a.add(vControlMissing, "%s (%s): %s applied %d times, stages %v imply %d", cm.ID, cm.Script, k, gotAction[k], v.stages, wantAction[k])
			}
		}

		auditStory(a, tr, st, cm, v, readsOf, settledAt)

		// Nothing taken away once dunning could see the customer paid
		// (or forgiven).
		cm.mu.Lock()
		var last string
		var paid time.Time
		all := len(cm.Intents) > 0
		for _, in := range cm.Intents {
			p, ok := settledAt[in.ID]
			if !ok {
				all = false
				break
			}
			if p.After(paid) {
				paid, last = p, in.ID
			}
		}
		cm.mu.Unlock()
		if !all {
			continue
		}
		for _, r := range st.peers.Control.Requests(func(r e2e.Request) bool { return r.Customer == cm.ID }) {
			if (r.Kind != "suspend" && r.Kind != "deprovision") || !r.At.After(paid) {
				continue
			}
			if rd, ok := lastReadBetween(readsOf[last], paid, r.At); ok {
				a.add(vActionAfterPaid, "%s (%s): settled %s (intent %s read so %s), then %s %s (key %s)", cm.ID, cm.Script,
					paid.Format(time.StampMilli), last, rd.At.Format(time.StampMilli), r.Kind, r.At.Format(time.StampMilli), r.Key)
			}
		}
	}

	for _, p := range st.peers.Problems() {
		a.add(vPeerProblem, "%s", p)
	}
	st.mu.Lock()
	for name, n := range st.exits {
		a.add(vProcessExit, "%s exited %d times without being killed (log %s)", name, n, st.dir+"/"+name+".log")
	}
	st.mu.Unlock()
	return a
}

func keysOf(applied []e2e.Applied, action string) []string {
	var out []string
	for _, ap := range applied {
		if ap.Action == action {
			out = append(out, ap.Key)
		}
	}
	return out
}

// runsOf lists every run of workflow id, oldest first, from visibility;
// latest, the run described, is among them even when visibility has not
// caught up with it.
func runsOf(ctx context.Context, c client.Client, id, latest string) ([]string, error) {
	type run struct {
		id      string
		started time.Time
	}
	var found []run
	seen := map[string]bool{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = '%s'", id), NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("list the runs of %s: %w", id, err)
		}
		for _, e := range resp.GetExecutions() {
			if r := e.GetExecution().GetRunId(); !seen[r] {
				seen[r] = true
				found = append(found, run{r, e.GetStartTime().AsTime()})
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	slices.SortStableFunc(found, func(a, b run) int { return a.started.Compare(b.started) })
	ids := make([]string, 0, len(found)+1)
	for _, r := range found {
		ids = append(ids, r.id)
	}
	if !seen[latest] {
		ids = append(ids, latest)
	}
	return ids, nil
}

// joinedFailureNotices counts the payment_failed notices keyed by an
// intent ("<life>:past_due:<intent>:notice", or
// "<life>:past_due:<intent>:again:<n>:notice" for a told payment that
// failed again after it was in flight), not by the life
// ("<life>:past_due:notice").
func joinedFailureNotices(msgs []e2e.Message) int {
	n := 0
	for _, m := range msgs {
		if m.Kind == "payment_failed" && !strings.HasSuffix(m.Key, ":past_due:notice") && strings.Contains(m.Key, ":past_due:") {
			n++
		}
	}
	return n
}
