package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"
)

// defaultMaxExtension bounds one grace extension when the settings do not.
const defaultMaxExtension = 30 * 24 * time.Hour

// retryNowJudgesChargeChange judges retry_now on what a confirm would
// charge now (chargeOutlooks). A retry_now sent as a signal is judged in
// the workflow, and its verdict decides whether a retry round runs: a
// life recorded before judged it on the card last tried for each payment
// alone (lastCardHolds), and keeps doing so.
const retryNowJudgesChargeChange = "retry-now-judges-the-charge"

// validate checks an operator control against the current state without
// applying it. It serves as the update validator and guards the signal.
// It asks no version: a life that recorded none for
// retryNowJudgesChargeChange records the one it stands for now.
func (r *recovery) validate(now time.Time, name string, req OperatorRequest, ext ExtendGraceRequest) error {
	return r.validateWith(now, name, req, ext, func(byCharge, byLastCard error) error {
		if r.v.known(retryNowJudgesChargeChange, 1) == workflow.DefaultVersion {
			return byLastCard
		}
		return byCharge
	})
}

// validateSignal is validate for a control sent as a signal, in the
// workflow: where the two judgements of retry_now differ, the life's
// version of retryNowJudgesChargeChange decides, asked then.
func (r *recovery) validateSignal(ctx workflow.Context, name string, req OperatorRequest, ext ExtendGraceRequest) error {
	return r.validateWith(workflow.Now(ctx), name, req, ext, func(byCharge, byLastCard error) error {
		if (byCharge == nil) == (byLastCard == nil) {
			if r.v.known(retryNowJudgesChargeChange, 1) == workflow.DefaultVersion {
				return byLastCard
			}
			return byCharge
		}
		if r.version(ctx, retryNowJudgesChargeChange, 1) == workflow.DefaultVersion {
			return byLastCard
		}
		return byCharge
	})
}

// validateWith is validate, with judge choosing between retry_now's two
// judgements under the card rules: on what a confirm would charge now,
// and on the card last tried alone.
func (r *recovery) validateWith(now time.Time, name string, req OperatorRequest, ext ExtendGraceRequest, judge func(byCharge, byLastCard error) error) error {
	if r.terminal() && !(name == ControlWaive && r.busy == takeAmberflo) {
		return fmt.Errorf("the recovery has ended (%s)", r.s.Stage)
	}
	switch name {
	case ControlRetryNow:
		if r.openCount() == 0 {
			return errors.New("nothing is owed")
		}
		if r.s.Paused {
			return errors.New("paused: resume first")
		}
		if r.safe() && len(retryable(&r.s)) == 0 {
			return errors.New("nothing can be charged now: every owed payment is in flight or waits for the customer to authenticate")
		}
		if r.cards() {
			var byCharge, byLastCard error
			outs := chargeOutlooks(&r.s, now, r.freshData())
			if held, all := heldOutlooks(outs); all {
				msg := "held by the card-network rules: " + strings.Join(held, "; ")
				if gone := goneNote(&r.s); gone != "" {
					msg += "; " + gone
				}
				byCharge = errors.New(msg)
			}
			if held, any := lastCardHolds(&r.s, now); !any {
				byLastCard = errors.New("held by the card-network rules: " + strings.Join(held, "; "))
			}
			return judge(byCharge, byLastCard)
		}
		return nil
	case ControlExtendGrace:
		_, err := r.extension(ext)
		return err
	case ControlWaive:
		if strings.TrimSpace(req.Reason) == "" {
			return errors.New("a waiver needs a reason")
		}
		if r.safe() && unsettledCount(&r.s) == 0 && r.busy == takeConfirmRecovered {
			return errors.New("nothing dunning knows of is owed: Stripe is being asked for the customer's other unpaid payments; one it finds keeps the recovery going, and can be waived then")
		}
		if r.safe() && unsettledCount(&r.s) == 0 {
			return r.nothingOwed()
		}
		if r.busy == takeDeprovision && r.v.known(offboardOnFreshStateChange, 1) == workflow.DefaultVersion {
			return errors.New("deprovisioning is under way and cannot be undone by a waiver")
		}
		return nil
	case ControlPause:
		if r.s.Paused {
			return errors.New("already paused")
		}
		if r.busy == takeDeprovision {
			// Nothing stops it now: the Amberflo customer is deactivated
			// right after, and the life ends as deprovisioned. A pause
			// sent as a signal meanwhile is applied once the life has
			// ended, and refused as such.
			return errors.New("deprovisioning is under way and cannot be stopped: the Amberflo customer is deactivated next, " +
				"and moved to OFFBOARDED unless the debt is paid or waived meanwhile; the recovery ends as deprovisioned")
		}
		return nil
	case ControlResume:
		if !r.s.Paused {
			return errors.New("not paused")
		}
		return nil
	}
	return fmt.Errorf("unknown control %q", name)
}

// nothingOwed refuses a control that needs something owed, saying why
// the recovery has not ended: it ends at once, or its end as recovered
// is held until Stripe lists the customer's other unpaid payments.
func (r *recovery) nothingOwed() error {
	if !r.s.UnpaidHeldSince.IsZero() {
		return fmt.Errorf("nothing dunning knows of is owed, but the end as recovered is held since %s: Stripe has not listed the customer's other unpaid payments, or lists one it names no payment for; it is asked again at %s. A payment it finds then keeps the recovery going and can be waived; one without a payment is settled, voided or written off in Stripe",
			r.s.UnpaidHeldSince.UTC().Format(time.RFC3339), r.s.UnpaidReadAt.UTC().Format(time.RFC3339))
	}
	return errors.New("nothing is owed: every payment is settled, the recovery is ending")
}

func (r *recovery) extension(req ExtendGraceRequest) (time.Duration, error) {
	if req.By == "" {
		return 0, errors.New(`input must be {"by": "48h", "reason": …}`)
	}
	by, err := time.ParseDuration(req.By)
	if err != nil {
		return 0, fmt.Errorf("by: %q is not a duration such as 48h", req.By)
	}
	limit := r.s.Settings.MaxGraceExtension
	if limit <= 0 {
		limit = defaultMaxExtension
	}
	if by <= 0 || by > limit {
		return 0, fmt.Errorf("by must be positive and at most %s", limit)
	}
	if r.s.Stage != StagePastDue && r.s.Stage != StageSuspended {
		return 0, fmt.Errorf("nothing to extend in stage %s", r.s.Stage)
	}
	if r.safe() && unsettledCount(&r.s) == 0 {
		return 0, r.nothingOwed()
	}
	switch r.busy {
	case takeSuspend:
		return 0, errors.New("the suspension is under way and cannot be stopped; extend the deprovisioning once it is done")
	case takeDeprovision:
		return 0, errors.New("deprovisioning is under way and cannot be stopped")
	}
	return by, nil
}

func (r *recovery) retryNow(ctx workflow.Context, req OperatorRequest) (OperatorResult, error) {
	r.s.RetryNow = true
	if r.round != "" && r.cards() && r.v.known(retryNowJoinsRoundChange, 1) != workflow.DefaultVersion {
		// The round under way is the retry asked (retryNowTakenByRound),
		// unless it was asked after the round's charges.
		after := r.asUpdate && r.charging == "" && r.v.known(retryNowAfterChargesChange, 1) != workflow.DefaultVersion
		if after && r.retryNowSeen == nil {
			r.retryNowSeen = &retryNowSeen{confirms: r.roundConfirms}
		}
		r.record(ctx, "operator: retry now", req.Operator, "during the "+r.round+": taken by it", false)
		return OperatorResult{Accepted: true, Message: r.roundUnderWay(after)}, nil
	}
	r.record(ctx, "operator: retry now", req.Operator, "retry at once", false)
	msg := "retrying every open payment now"
	if r.cards() {
		msg = retryNowAnswer(chargeOutlooks(&r.s, workflow.Now(ctx), r.freshData()))
		if gone := goneNote(&r.s); gone != "" {
			msg += "; " + gone
		}
	}
	if r.s.NoPaymentMethod {
		msg += "; the customer had no usable payment method when last seen: Stripe is asked again, and nothing is charged unless one was added since"
	}
	return OperatorResult{Accepted: true, Message: msg}, nil
}

// roundUnderWay answers a retry_now taken while a retry round runs: the
// round, and the confirm under way in it, are the retry asked.
func (r *recovery) roundUnderWay(after bool) string {
	msg := "a " + r.round + " is under way and is the retry asked"
	if r.charging != "" {
		msg = "a charge is under way: " + r.charging + ", in a " + r.round + "; it is the retry asked"
	}
	if after {
		msg = "a " + r.round + " is under way, with no charge under way now: a charge it begins from now on is the retry asked, " +
			"and if it begins none, the retry asked runs once it ends, while something is still owed"
	}
	msg += "; once the round ends, another runs at once only if something is still owed and a card event during it changed what would be charged, and it charges only what that event changed, not the card just tried as it was"
	if r.round == whyCardUpdate {
		msg += "; if this card update's round charges nothing, because what it would charge has not changed, the retry asked runs after it"
	}
	if gone := goneNote(&r.s); gone != "" {
		msg += "; " + gone
	}
	if r.s.NoPaymentMethod {
		msg += "; the customer had no usable payment method when last seen"
	}
	return msg
}

// lastCardHolds is how retry_now was judged before
// retryNowJudgesChargeChange: which intents the card rules hold on the
// card last tried for them (whatever payment method carries it), and
// whether any may be charged at all. An intent whose card is not yet
// known is not held.
func lastCardHolds(s *RecoveryState, now time.Time) (held []string, any bool) {
	for _, id := range retryable(s) {
		in := intentByID(s, id)
		if ok, why, _ := cardAllows(card(s, in.CardKey), "", now, maxAttemptsPerCard(&s.Settings)); !ok {
			held = append(held, id+": "+why)
			continue
		}
		any = true
	}
	return held, any
}

// heldOutlooks names the intents the card rules hold whatever Stripe
// names, and reports whether that is every one (false when there are
// none).
func heldOutlooks(outs []chargeOutlook) (held []string, all bool) {
	for _, o := range outs {
		if o.kind == chargeHeld {
			held = append(held, o.intent+": "+o.why)
		}
	}
	return held, len(outs) > 0 && len(held) == len(outs)
}

// retryNowAnswer says what a retry round asked by an operator does under
// the card rules, as the charge path decides it: what is charged, what
// is charged only if Stripe names a card the rules allow, what is held.
func retryNowAnswer(outs []chargeOutlook) string {
	var now, maybe []string
	for _, o := range outs {
		switch o.kind {
		case chargeAllowed:
			now = append(now, o.intent)
		case chargeUnknown:
			maybe = append(maybe, o.intent+" ("+o.why+")")
		}
	}
	held, _ := heldOutlooks(outs)
	var parts []string
	switch {
	case len(now) > 0 && len(maybe) == 0 && len(held) == 0:
		parts = append(parts, "retrying every open payment now, within the card-network limits")
	case len(now) > 0:
		parts = append(parts, "retrying now, within the card-network limits: "+strings.Join(now, ", "))
	default:
		parts = append(parts, "asking Stripe now what each open payment would charge")
	}
	if len(maybe) > 0 {
		parts = append(parts, "what is charged depends on the card Stripe names: "+strings.Join(maybe, "; "))
	}
	if len(held) > 0 {
		parts = append(parts, "held back: "+strings.Join(held, "; "))
	}
	return strings.Join(parts, "; ")
}

// goneNote says which payment methods Stripe will not charge (removed by
// the customer, refused at a confirm), none of which a retry round
// charges, and that what Stripe charges instead is asked at the charge;
// "" when there are none.
func goneNote(s *RecoveryState) string {
	var gone []string
	for _, u := range s.Unusable {
		gone = append(gone, u.PaymentMethod+" ("+u.Why+")")
	}
	if len(gone) == 0 {
		return ""
	}
	return "not charged with what Stripe will not charge: " + strings.Join(gone, "; ") + "; what Stripe would charge now is asked at the charge"
}

func (r *recovery) extendGrace(ctx workflow.Context, req ExtendGraceRequest) (OperatorResult, error) {
	by, err := r.extension(req)
	if err != nil {
		return OperatorResult{}, err
	}
	var msg string
	if r.s.Stage == StagePastDue {
		r.s.SuspendAt = r.s.SuspendAt.Add(by)
		msg = "suspension moved to " + r.s.SuspendAt.UTC().Format(time.RFC3339)
	} else {
		r.s.DeprovisionAt = r.s.DeprovisionAt.Add(by)
		msg = "deprovisioning moved to " + r.s.DeprovisionAt.UTC().Format(time.RFC3339)
	}
	r.record(ctx, "operator: extend by "+by.String(), req.Operator+" "+req.Reason, msg, false)
	return OperatorResult{Accepted: true, Message: msg}, nil
}

func (r *recovery) requestWaive(ctx workflow.Context, req OperatorRequest) (OperatorResult, error) {
	r.s.Waive = &req
	r.record(ctx, "operator: waive", req.Operator+" "+req.Reason, "waiving", false)
	if r.busy == takeAmberflo {
		msg := "forgiving every open payment; the control plane has deprovisioned the customer already (restore by hand), " +
			"and the Amberflo customer is not moved to OFFBOARDED (the deactivation under way is not undone: if the account is restored, enable it again in Amberflo); the recovery ends as deprovisioned"
		if n := inFlightCount(&r.s); n > 0 {
			msg += fmt.Sprintf("; %d payment(s) in flight are not forgiven", n)
		}
		return OperatorResult{Accepted: true, Message: msg}, nil
	}
	if r.busy == takeDeprovision {
		// Carried out in the Amberflo step that follows the control
		// plane's call (offboardAmberflo).
		msg := "forgiving every open payment; the deprovisioning under way is not stopped: the control plane takes the resources back (restore by hand), " +
			"and the Amberflo customer is deactivated but not moved to OFFBOARDED; the recovery ends as deprovisioned"
		if n := inFlightCount(&r.s); n > 0 {
			msg += fmt.Sprintf("; %d payment(s) in flight are not forgiven", n)
		}
		return OperatorResult{Accepted: true, Message: msg}, nil
	}
	msg := "waiving every open payment; the recovery ends as waived"
	switch {
	case r.busy == takeSuspend:
		msg += "; the suspension under way is undone by a resume"
	case r.busy == takeCharge:
		msg += "; a charge already sent to Stripe may still succeed, and is then kept as paid"
	case r.s.Stage == StageSuspended:
		msg += "; the customer is resumed"
	}
	if n := inFlightCount(&r.s); n > 0 {
		msg += fmt.Sprintf("; %d payment(s) in flight are waited for: kept if they succeed, forgiven if they fail", n)
	}
	return OperatorResult{Accepted: true, Message: msg}, nil
}

func (r *recovery) pause(ctx workflow.Context, req OperatorRequest) (OperatorResult, error) {
	r.s.Paused, r.s.PausedAt = true, workflow.Now(ctx)
	r.s.PausedReason = "by an operator"
	if req.Reason != "" {
		r.s.PausedReason += ": " + req.Reason
	}
	r.record(ctx, "operator: pause", req.Operator+" "+req.Reason, "automatic actions paused", false)
	msg := "paused; deadlines move by the time spent paused"
	if r.busy != "" {
		msg += "; the " + r.busy + " already under way completes, nothing more is done automatically"
	}
	return OperatorResult{Accepted: true, Message: msg}, nil
}

func (r *recovery) resume(ctx workflow.Context, req OperatorRequest) (OperatorResult, error) {
	// The clock stops while paused: every deadline moves by the pause.
	d := workflow.Now(ctx).Sub(r.s.PausedAt)
	for _, t := range []*time.Time{&r.s.RetryAt, &r.s.JoinedRetryAt, &r.s.SuspendAt, &r.s.DeprovisionAt} {
		if !t.IsZero() {
			*t = t.Add(d)
		}
	}
	r.s.PausedTotal += d
	r.s.Paused, r.s.PausedAt, r.s.PausedReason = false, time.Time{}, ""
	r.record(ctx, "operator: resume", req.Operator+" "+req.Reason, "resumed after "+d.String(), false)
	return OperatorResult{Accepted: true, Message: "resumed; deadlines moved by " + d.String()}, nil
}

// operatorControls are the controls that take an OperatorRequest.
func (r *recovery) operatorControls() map[string]func(workflow.Context, OperatorRequest) (OperatorResult, error) {
	return map[string]func(workflow.Context, OperatorRequest) (OperatorResult, error){
		ControlRetryNow: r.retryNow, ControlWaive: r.requestWaive, ControlPause: r.pause, ControlResume: r.resume,
	}
}

// registerControls makes every control an update (validated, answered)
// and a signal of the same name (the UI's Send Signal), applied alike.
func (r *recovery) registerControls(ctx workflow.Context) error {
	for _, name := range []string{ControlRetryNow, ControlWaive, ControlPause, ControlResume} {
		handle := r.operatorControls()[name]
		err := workflow.SetUpdateHandlerWithOptions(ctx, name,
			func(ctx workflow.Context, req OperatorRequest) (OperatorResult, error) {
				r.wake = true
				r.asUpdate = true
				defer func() { r.asUpdate = false }()
				return handle(ctx, req)
			},
			workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, req OperatorRequest) error {
				return r.validate(workflow.Now(ctx), name, req, ExtendGraceRequest{})
			}})
		if err != nil {
			return fmt.Errorf("register update %s: %w", name, err)
		}
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, ControlExtendGrace,
		func(ctx workflow.Context, req ExtendGraceRequest) (OperatorResult, error) {
			r.wake = true
			return r.extendGrace(ctx, req)
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, req ExtendGraceRequest) error {
			return r.validate(workflow.Now(ctx), ControlExtendGrace, OperatorRequest{}, req)
		}})
	if err != nil {
		return fmt.Errorf("register update %s: %w", ControlExtendGrace, err)
	}
	return nil
}

// drainControls applies controls sent as signals: validated like the
// updates, and recorded when rejected.
func (r *recovery) drainControls(ctx workflow.Context) bool {
	progressed := false
	for _, name := range []string{ControlRetryNow, ControlWaive, ControlPause, ControlResume} {
		var req OperatorRequest
		for r.controls[name].ReceiveAsync(&req) {
			progressed = true
			if err := r.validateSignal(ctx, name, req, ExtendGraceRequest{}); err != nil {
				r.record(ctx, "operator: "+name, req.Operator, "rejected: "+err.Error(), false)
			} else {
				_, _ = r.operatorControls()[name](ctx, req)
			}
			req = OperatorRequest{}
		}
	}
	var ext ExtendGraceRequest
	for r.controls[ControlExtendGrace].ReceiveAsync(&ext) {
		progressed = true
		if err := r.validate(workflow.Now(ctx), ControlExtendGrace, OperatorRequest{}, ext); err != nil {
			r.record(ctx, "operator: "+ControlExtendGrace, ext.Operator, "rejected: "+err.Error(), false)
		} else {
			_, _ = r.extendGrace(ctx, ext)
		}
		ext = ExtendGraceRequest{}
	}
	return progressed
}
