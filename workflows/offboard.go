package workflows

import (
	"strings"

	"go.temporal.io/sdk/workflow"

	"dunning/activities"
)

// offboardAmberflo is the Amberflo step of deprovisioning from
// offboardOnFreshStateChange on. The customer is deactivated first, which
// can be undone (enabled:true) and may take as long as an Amberflo outage
// lasts. Then the money is asked about again, as before any take-away,
// every signal and update accepted meanwhile is applied, and only if the
// money is still owed is the customer moved to OFFBOARDED, which Amberflo
// never undoes. A waiver accepted meanwhile forgives the debt here.
//
// dunning re-enables no Amberflo customer anywhere (a resume gives back
// only what a suspension took, and a suspension leaves Amberflo alone), and
// the control plane's deprovisioning, done before this step, is not undone
// either: a customer who paid or was waived meanwhile stays deactivated,
// is not OFFBOARDED, and ops are told, so that restoring the account by
// hand includes enabling the Amberflo customer again.
//
// It returns how the deprovisioning alert tells the step, and the
// operator whose waiver was carried out ("" when none was).
func (r *recovery) offboardAmberflo(ctx workflow.Context) (summary, waivedBy string) {
	in := activities.AmberfloInput{CustomerID: r.s.CustomerID}
	r.busy = takeAmberflo
	defer func() { r.busy = "" }()

	var res activities.DisableResult
	err := workflow.ExecuteActivity(activityCtx(ctx), a.DisableCustomer, in).Get(ctx, &res)
	deactivated := err == nil
	r.record(ctx, "amberflo deactivate", r.s.CustomerID, disableOutcome(res, err), res.DryRun && err == nil)
	r.drain(ctx)

	unchecked := ""
	if deactivated && blockOffboard(&r.s, "") == "" {
		unchecked = r.recheckBeforeOffboard(ctx)
		r.drain(ctx)
	}
	// From here to the decision nothing waits: no update comes between.
	r.busy = ""
	reason := blockOffboard(&r.s, unchecked)
	if req := r.s.Waive; req != nil {
		var open []*Intent
		for _, in := range r.s.Intents {
			if unsettled(in) {
				open = append(open, in)
			}
		}
		r.forgive(ctx, *req, true)
		r.s.Waive = nil
		for _, in := range open {
			if in.State == IntentPaid && r.version(ctx, waiverFindsLateMoneyChange, 1) == 1 {
				// Found paid by the waiver, after the control plane took
				// the resources back: money after the end, for ops.
				r.s.LateMoney = append(r.s.LateMoney, in.ID+" "+money(in.Amount, in.Currency)+" found paid ("+in.ResolvedBy+") after deprovisioning")
			}
		}
		if anyWaived(&r.s) {
			r.s.WaivedReason = req.Reason
			waivedBy = "operator " + firstNonEmpty(req.Operator, "(unnamed)") + " (" + req.Reason + ")"
			r.record(ctx, "operator: waive", req.Operator, "forgiven after the deprovisioning; the customer is not moved to OFFBOARDED", false)
			if r.s.PastDueNoticeSent {
				r.noticeSafe(ctx, "payment_waived", r.key("waived", "notice"), "", nil, nil, "")
			}
		} else {
			// Paid before the waiver could forgive it: money after the
			// end, which the late-money alert tells.
			r.record(ctx, "operator: waive", req.Operator, "nothing left to forgive: paid", false)
			if again := blockOffboard(&r.s, unchecked); again != "" {
				// Not moved for what the money says, not for a waiver that
				// forgave nothing.
				reason = again
			}
		}
	}

	if !deactivated {
		// Amberflo refused the deactivation: nothing was changed there,
		// and the stage is not moved on a customer still enabled.
		r.alert(ctx, "critical", r.key("amberflo-deactivate"), "Amberflo customer "+r.s.CustomerID+" not deactivated nor OFFBOARDED",
			"The customer was not deactivated in Amberflo (GET or PUT /customers), and its lifecycle stage was not moved either. "+
				"If the debt still stands, deactivate it and move it to OFFBOARDED in Amberflo. "+errText(err))
		r.s.AmberfloEnd = "The Amberflo customer was NOT deactivated nor moved to OFFBOARDED (Amberflo refused)"
		return "the Amberflo customer NOT deactivated nor moved to OFFBOARDED (see the alert)", waivedBy
	}
	done := "deactivated"
	if res.DryRun {
		done = "not called (not configured)"
	}
	if reason != "" {
		r.record(ctx, "amberflo offboard", r.s.CustomerID, "not moved to OFFBOARDED: "+reason, false)
		r.s.AmberfloEnd = "The Amberflo customer is " + done + " but was NOT moved to OFFBOARDED (" + reason + "); if the account is restored, enable it again in Amberflo"
		if waivedBy == "" && unsettledCount(&r.s) > 0 {
			// Still owed, or not known to be settled: ops decide.
			r.alert(ctx, "critical", r.key("amberflo-offboard"), "Amberflo customer "+r.s.CustomerID+" deactivated but not OFFBOARDED",
				"The customer was deactivated in Amberflo, and its lifecycle stage was not moved to OFFBOARDED (which Amberflo never undoes): "+
					reason+". Move it to OFFBOARDED in Amberflo once the debt is known to stand, or enable it again if it was paid.")
		}
		return "the Amberflo customer " + done + " but NOT moved to OFFBOARDED (" + reason + ")", waivedBy
	}

	var off activities.OffboardResult
	err = workflow.ExecuteActivity(activityCtx(ctx), a.OffboardCustomer, in).Get(ctx, &off)
	switch {
	case err != nil:
		r.record(ctx, "amberflo offboard", r.s.CustomerID, "failed: "+errText(err), false)
		r.alert(ctx, "critical", r.key("amberflo-offboard"), "Amberflo customer "+r.s.CustomerID+" deactivated but not OFFBOARDED",
			"Amberflo refused to move the lifecycle stage to OFFBOARDED (PUT /customers/stage); the customer is deactivated. "+
				"Move it to OFFBOARDED in Amberflo. "+errText(err))
		r.s.AmberfloEnd = "The Amberflo customer is deactivated but NOT OFFBOARDED (Amberflo refused the stage)"
		return "the Amberflo customer deactivated but NOT moved to OFFBOARDED (see the alert)", waivedBy
	case off.DryRun:
		r.record(ctx, "amberflo offboard", r.s.CustomerID, "not called", true)
		r.s.AmberfloEnd = "Amberflo was not called (not configured)"
		return "Amberflo not called (not configured)", waivedBy
	}
	outcome := "moved to OFFBOARDED"
	if !off.Moved {
		outcome = "already OFFBOARDED"
	}
	r.record(ctx, "amberflo offboard", r.s.CustomerID, outcome, false)
	r.s.AmberfloEnd = "The Amberflo customer is deactivated and OFFBOARDED, which Amberflo never moves back"
	return "the Amberflo customer deactivated and OFFBOARDED", waivedBy
}

// disableOutcome is the "amberflo deactivate" record of DisableCustomer's
// answer.
func disableOutcome(res activities.DisableResult, err error) string {
	switch {
	case err != nil:
		return "failed: " + errText(err)
	case res.DryRun:
		return "not called"
	case res.Changed:
		return "deactivated"
	}
	return "already inactive"
}

// recheckBeforeOffboard asks Stripe about every unsettled intent, and
// Amberflo about the invoice of each one still unpaid, as before any
// take-away, and applies the answers. It returns why there is no usable
// answer, "" when there is one. The life is deprovisioned: it does not
// wait for a later answer nor pause, the stage is simply not moved.
func (r *recovery) recheckBeforeOffboard(ctx workflow.Context) string {
	const why = "before the move to OFFBOARDED"
	var problems []string
	for _, in := range r.s.Intents {
		if !unsettled(in) {
			continue
		}
		_, err := r.checkOwed(ctx, in, why)
		if err == nil && in.State == IntentOpen {
			_, err = r.checkAmberflo(ctx, in, why)
		}
		if err != nil {
			problems = append(problems, in.ID+": "+errText(err))
		}
		if in.State == IntentPaid {
			// Paid after the control plane took the resources back: money
			// after the end, for ops, as a payment event would be.
			r.s.LateMoney = append(r.s.LateMoney, in.ID+" "+money(in.Amount, in.Currency)+" found paid ("+in.ResolvedBy+") after deprovisioning")
		}
	}
	return strings.Join(problems, "; ")
}
