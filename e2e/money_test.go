package e2e

// The money rules on the real binaries: Stripe re-checks that take their
// time while an operator acts, money settled outside Stripe's events,
// payments in flight, and a mailer that refuses notices. Each peer must see
// exactly the calls the rules allow.

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/activities"
	"dunning/internal/stripefixture"
	"dunning/workflows"
)

func (s *Stack) operator(customer, control string, in any) workflows.OperatorResult {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := s.Client().UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.RecoveryWorkflowID(customer), UpdateName: control,
		Args: []any{in}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		s.t.Fatalf("%s %s: %v", control, customer, err)
	}
	var out workflows.OperatorResult
	if err := h.Get(ctx, &out); err != nil {
		s.t.Fatalf("%s %s: %v", control, customer, err)
	}
	return out
}

// Rule 1: Stripe is slow to answer the re-check before suspension, and an
// operator waives the debt meanwhile. The waiver is answered done and is
// done: no suspension, the invoice written off in Stripe.
func TestWaiveDuringSlowRecheck(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1h", "DUNNING_GRACE_PERIOD": "4s", "DUNNING_DEPROVISION_AFTER": "1h",
	}})
	customer := stripefixture.NewID("cus")
	ev := s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer})
	intent := ev.Parsed.ObjectID
	s.Eventually("past-due notice", 20*time.Second, func() bool { return s.Notices.Kinds(customer)["payment_failed"] == 1 })
	recheck := s.Stripe.HoldNext(MethodPath(http.MethodGet, "/v1/payment_intents/"+intent))
	select {
	case <-recheck.Arrived():
	case <-time.After(30 * time.Second):
		t.Fatal("the re-check before suspension never reached Stripe")
	}
	out := s.operator(customer, workflows.ControlWaive, workflows.OperatorRequest{Reason: "goodwill", Operator: "e2e"})
	if !out.Accepted {
		t.Fatalf("waive: %+v", out)
	}
	recheck.Release()
	if res := s.Recovery(customer, 30*time.Second); res.Stage != workflows.StageWaived {
		t.Fatalf("recovery ended %s (%s), want waived", res.Stage, res.Summary)
	}
	s.Check(customer, Expect{
		Notices: map[string]int{"payment_failed": 1, "payment_waived": 1},
		Alerts:  map[string]int{"past_due": 1, "waived": 1},
		Charges: map[string]int{intent: 0},
	})
	if n := len(s.Stripe.Requests(func(r Request) bool { return r.Kind == "mark uncollectible" && r.Handled == http.StatusOK })); n != 1 {
		t.Errorf("invoice marked uncollectible %d times, want once", n)
	}
}

// Rule 2: the month the failed payment bills is settled in Amberflo (a bank
// transfer) while the month in progress is not: never charged, never
// suspended.
func TestSettledInAmberfloIsNeverCharged(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1s,2s", "DUNNING_GRACE_PERIOD": "4s", "DUNNING_DEPROVISION_AFTER": "1h",
	}})
	customer := stripefixture.NewID("cus")
	s.Amberflo.SetInvoiceStatus(customer, "SETTLED")
	ev := s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer})
	if res := s.Recovery(customer, 30*time.Second); res.Stage != workflows.StageRecovered {
		t.Fatalf("recovery ended %s (%s), want recovered", res.Stage, res.Summary)
	}
	if c := s.Stripe.Confirms(ev.Parsed.ObjectID); len(c) != 0 {
		t.Fatalf("confirms of an invoice settled in Amberflo:\n%s", lines(c))
	}
	s.Check(customer, Expect{Notices: map[string]int{"payment_failed": 1, "payment_recovered": 1}, Alerts: map[string]int{"past_due": 1, "recovered": 1}})
}

// Rule 3: the customer starts a bank debit: the intent is processing. It is
// not retried, nothing is suspended at the deadline, and its success ends
// the recovery.
func TestPaymentInFlightIsWaitedFor(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "4s,5s", "DUNNING_GRACE_PERIOD": "6s", "DUNNING_DEPROVISION_AFTER": "1h",
	}})
	customer := stripefixture.NewID("cus")
	ev := s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer})
	intent := ev.Parsed.ObjectID
	s.Eventually("past-due notice", 20*time.Second, func() bool { return s.Notices.Kinds(customer)["payment_failed"] == 1 })
	s.Stripe.SetIntentStatus(intent, "processing")
	if c := s.Stripe.Confirms(intent); len(c) != 0 {
		t.Skipf("the machine is too slow for this schedule: a retry ran before the payment went in flight:\n%s", lines(c))
	}
	// Past both retries and the grace period.
	time.Sleep(9 * time.Second)
	st := s.Status(customer)
	if st.Stage != workflows.StagePastDue || len(st.Intents) != 1 || st.Intents[0].State != workflows.IntentInFlight {
		t.Fatalf("status: stage %s intents %+v; want past due with the payment in flight", st.Stage, st.Intents)
	}
	if c := s.Stripe.Confirms(intent); len(c) != 0 {
		t.Fatalf("confirms of a payment in flight:\n%s", lines(c))
	}
	s.Stripe.SetIntentStatus(intent, "succeeded")
	s.Send(workflows.EventPaymentSucceeded, stripefixture.Options{Customer: customer, ObjectID: intent})
	if res := s.Recovery(customer, 30*time.Second); res.Stage != workflows.StageRecovered {
		t.Fatalf("recovery ended %s (%s), want recovered", res.Stage, res.Summary)
	}
	s.Check(customer, Expect{
		Notices: map[string]int{"payment_failed": 1, "payment_recovered": 1},
		Alerts:  map[string]int{"past_due": 1, "recovered": 1},
	})
}

// Rule 9: the mailer refuses the past-due notice for good. Ops hear of it
// at once; the recovery goes on and later notices are still sent.
func TestRefusedNoticeReachesOps(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1h", "DUNNING_GRACE_PERIOD": "3s", "DUNNING_DEPROVISION_AFTER": "1h",
	}})
	customer := stripefixture.NewID("cus")
	s.Notices.FailNext(1, http.StatusUnprocessableEntity, func(r *http.Request) bool { return true })
	s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer})
	s.WaitStage(customer, workflows.StageSuspended, 30*time.Second)
	s.Eventually("undelivered-notice alert", 20*time.Second, func() bool { return s.Alerts.Kinds(customer)["undelivered"] == 1 })
	out := s.operator(customer, workflows.ControlWaive, workflows.OperatorRequest{Reason: "end of test", Operator: "e2e"})
	if !out.Accepted || !strings.Contains(out.Message, "resumed") {
		t.Errorf("waive while suspended: %+v", out)
	}
	if res := s.Recovery(customer, 30*time.Second); res.Stage != workflows.StageWaived {
		t.Fatalf("recovery ended %s, want waived", res.Stage)
	}
	s.Check(customer, Expect{
		Control: map[string]int{"suspend": 1, "resume": 1},
		Notices: map[string]int{"account_suspended": 1, "account_resumed": 1},
		Alerts:  map[string]int{"past_due": 1, "undelivered": 1, "suspended": 1, "waived": 1},
	})
}

// Rule 4: once waived, an intent is never charged again: neither when
// Stripe's own retry fails later without the mark (a new life reads the
// waiver from Stripe), nor when the event carries the mark (nothing
// starts).
func TestWaivedIntentStaysForgiven(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1s,2s", "DUNNING_GRACE_PERIOD": "1h", "DUNNING_DEPROVISION_AFTER": "1h",
	}})
	customer, intent, invoice := stripefixture.NewID("cus"), stripefixture.NewID("pi"), stripefixture.NewID("in")
	s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent, Invoice: invoice})
	s.Eventually("past-due notice", 20*time.Second, func() bool { return s.Notices.Kinds(customer)["payment_failed"] == 1 })
	if out := s.operator(customer, workflows.ControlWaive, workflows.OperatorRequest{Reason: "goodwill", Operator: "e2e"}); !out.Accepted {
		t.Fatalf("waive: %+v", out)
	}
	if res := s.Recovery(customer, 30*time.Second); res.Stage != workflows.StageWaived {
		t.Fatalf("first life ended %s", res.Stage)
	}
	confirmed := len(s.Stripe.Confirms(intent))

	// Stripe's retry fails, the event predating the mark.
	late := s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent, Invoice: invoice})
	if res := s.EventResult(late.ID, 20*time.Second); !strings.Contains(res.Outcome, "told") {
		t.Fatalf("late failure: %s", res.Outcome)
	}
	// The second life reads the waiver from Stripe and ends at once,
	// waived, having told no one (the first life told of the waiver) and
	// charged nothing.
	second := s.Recovery(customer, 30*time.Second)
	if st := s.Status(customer); second.Stage != workflows.StageWaived || len(st.Intents) != 1 || st.Intents[0].State != workflows.IntentWaived {
		t.Fatalf("second life ended %s with intents %+v; want waived from what Stripe holds", second.Stage, st.Intents)
	}
	// And with the mark: nothing starts.
	marked := s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent, Invoice: invoice,
		Metadata: map[string]string{"dunning_waived": "recovery-" + customer + ": goodwill"}})
	if res := s.EventResult(marked.ID, 20*time.Second); !strings.Contains(res.Outcome, "waived") {
		t.Fatalf("marked failure: %s", res.Outcome)
	}
	time.Sleep(3 * time.Second) // past both retry delays of any life it might have opened
	if n := len(s.Stripe.Confirms(intent)); n != confirmed {
		t.Fatalf("%d confirms after the waiver, want none", n-confirmed)
	}
	s.Check(customer, Expect{
		Notices: map[string]int{"payment_failed": 1, "payment_waived": 1},
		Alerts:  map[string]int{"past_due": 1, "waived": 1},
	})
}

// Rule 6: money that arrives after deprovisioning reaches ops, with the
// customer, the intent and the amount.
func TestMoneyAfterDeprovisioningReachesOps(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1s", "DUNNING_GRACE_PERIOD": "2s", "DUNNING_DEPROVISION_AFTER": "2s",
	}})
	customer, intent := stripefixture.NewID("cus"), stripefixture.NewID("pi")
	s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent})
	if res := s.Recovery(customer, 60*time.Second); res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("recovery ended %s", res.Stage)
	}
	paid := s.Send(workflows.EventPaymentSucceeded, stripefixture.Options{Customer: customer, ObjectID: intent})
	if res := s.EventResult(paid.ID, 20*time.Second); !strings.HasPrefix(res.Outcome, "money after the end") {
		t.Fatalf("payment after deprovisioning: %s", res.Outcome)
	}
	s.Eventually("late-money alert", 20*time.Second, func() bool { return s.Alerts.Kinds(customer)["late-money"] == 1 })
}

// Rule 11: a new card is tried within seconds of its event.
func TestCardUpdateRetriedWithinSeconds(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1h", "DUNNING_GRACE_PERIOD": "2h", "DUNNING_DEPROVISION_AFTER": "1h",
		"DUNNING_CARD_UPDATE_DEBOUNCE": "",
	}})
	customer, intent := stripefixture.NewID("cus"), stripefixture.NewID("pi")
	s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent})
	s.Eventually("past-due notice", 20*time.Second, func() bool { return s.Notices.Kinds(customer)["payment_failed"] == 1 })
	sent := time.Now()
	s.Send(workflows.EventPaymentMethodAttached, stripefixture.Options{Customer: customer})
	s.Eventually("charge with the new card", 20*time.Second, func() bool { return s.Stripe.Charges(intent) == 1 })
	if took := time.Since(sent); took > 3*time.Second {
		t.Errorf("charged %s after the card event, want within 3s", took)
	}
}

// Rule 5: no answer from Stripe at the re-check before suspension means
// no suspension and, past the bound, one alert; an unreadable answer from
// Amberflo pauses the recovery for an operator. Either way the control
// plane is never called.
func TestNoFreshAnswerNoSuspension(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1h", "DUNNING_GRACE_PERIOD": "3s", "DUNNING_DEPROVISION_AFTER": "1h",
		"DUNNING_RECHECK_ALERT_AFTER": "2s",
	}})
	silent, garbled := stripefixture.NewID("cus"), stripefixture.NewID("cus")
	silentIntent := s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: silent}).Parsed.ObjectID
	s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: garbled})
	for _, c := range []string{silent, garbled} {
		s.Eventually("past-due notice for "+c, 20*time.Second, func() bool { return s.Notices.Kinds(c)["payment_failed"] == 1 })
	}
	s.Stripe.Always(http.StatusServiceUnavailable, MethodPath(http.MethodGet, "/v1/payment_intents/"+silentIntent))
	// A 200 whose body is not a list of invoices.
	s.Amberflo.Always(http.StatusOK, func(r *http.Request) bool {
		return r.URL.Path == "/payments/billing/customer-product-invoice/all" && r.URL.Query().Get("customerId") == garbled
	})

	s.Eventually("paused for an operator", 30*time.Second, func() bool { return s.Status(garbled).Paused })
	for deadline := time.Now().Add(30 * time.Second); s.Alerts.Kinds(silent)["unanswered"] != 1; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			st := s.Status(silent)
			t.Fatalf("no unanswered alert within 30s; stage %s, next %+v, actions:\n%s", st.Stage, st.Next, lines(actionLines(st.Actions)))
		}
	}
	time.Sleep(3 * time.Second) // more re-checks go unanswered; still one alert
	for _, c := range []string{silent, garbled} {
		if st := s.Status(c); st.Stage != workflows.StagePastDue {
			t.Errorf("%s: stage %s without a fresh answer, want past_due", c, st.Stage)
		}
	}
	s.Check(silent, Expect{Notices: map[string]int{"payment_failed": 1}, Alerts: map[string]int{"past_due": 1, "unanswered": 1}})
	s.Check(garbled, Expect{Notices: map[string]int{"payment_failed": 1}, Alerts: map[string]int{"past_due": 1, "paused": 1}})
	s.Stripe.Heal()
	s.Amberflo.Heal()
}

type actionLine workflows.Action

func (a actionLine) String() string {
	return a.At.Format("15:04:05.000") + " " + a.Kind + " " + a.Detail + ": " + a.Outcome
}

func actionLines(as []workflows.Action) []actionLine {
	out := make([]actionLine, len(as))
	for i, a := range as {
		out[i] = actionLine(a)
	}
	return out
}

// Card rules on the real binaries: a stolen card is confirmed once and
// never again, whatever the schedule says; an address edit charges
// nothing; a new card is charged once, at once.
func TestCardRulesOnTheRealBinaries(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1s,2s,3s", "DUNNING_GRACE_PERIOD": "1h", "DUNNING_DEPROVISION_AFTER": "1h",
	}})
	customer, intent := stripefixture.NewID("cus"), stripefixture.NewID("pi")
	ev := s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent})
	stolen := ev.Parsed.PaymentIntent.PaymentMethodID
	s.Stripe.SetDecline(stolen, activities.Decline{Code: "card_declined", DeclineCode: "stolen_card"})
	s.Eventually("the first retry", 20*time.Second, func() bool { return len(s.Stripe.Confirms(intent)) == 1 })
	time.Sleep(4 * time.Second) // past the two other scheduled retries
	if c := s.Stripe.Confirms(intent); len(c) != 1 {
		t.Fatalf("confirms after a stop decline:\n%s", lines(c))
	}
	st := s.Status(customer)
	if len(st.Cards) != 1 || !st.Cards[0].Stopped || st.Cards[0].Held == "" || len(st.Cards[0].Attempts) < 1 {
		t.Errorf("status cards %+v, want the stolen card stopped, with why", st.Cards)
	}
	for range 3 {
		s.Send(workflows.EventSourceUpdated, stripefixture.Options{Customer: customer, ObjectID: stolen})
	}
	time.Sleep(3 * time.Second)
	if c := s.Stripe.Confirms(intent); len(c) != 1 {
		t.Fatalf("confirms after address edits of the stopped card:\n%s", lines(c))
	}
	fresh := stripefixture.NewID("pm")
	sent := time.Now()
	s.Send(workflows.EventPaymentMethodAttached, stripefixture.Options{Customer: customer, ObjectID: fresh})
	if res := s.Recovery(customer, 20*time.Second); res.Stage != workflows.StageRecovered {
		t.Fatalf("recovery ended %s, want recovered by the new card", res.Stage)
	}
	if took := time.Since(sent); took > 5*time.Second {
		t.Errorf("the new card was charged %s after its event", took)
	}
	c := s.Stripe.Confirms(intent)
	if len(c) != 2 || s.Stripe.Charges(intent) != 1 {
		t.Fatalf("confirms:\n%s\nwant the stolen card once, then the new card once, charged", lines(c))
	}
}

// The one click: the link in a notice leads, through a 303, to a Stripe
// Billing Portal session of that customer, in the payment-method-update
// flow, back to the product afterwards; the notice also carries the
// invoice's page.
func TestNoticeLinkOpensThePortal(t *testing.T) {
	s := Start(t, Options{Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1h", "DUNNING_GRACE_PERIOD": "1h", "DUNNING_DEPROVISION_AFTER": "1h",
	}})
	customer := stripefixture.NewID("cus")
	s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer})
	s.Eventually("past-due notice", 20*time.Second, func() bool { return s.Notices.Kinds(customer)["payment_failed"] == 1 })
	var notice Message
	for _, m := range s.Notices.Messages(customer) {
		if m.Kind == "payment_failed" {
			notice = m
		}
	}
	if !strings.HasPrefix(notice.UpdateURL, s.webhookBase+"/portal/") || !strings.HasPrefix(notice.PayURL, "https://invoice.stripe.com/") {
		t.Fatalf("notice links: update %q, pay %q", notice.UpdateURL, notice.PayURL)
	}
	noFollow := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(notice.UpdateURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "https://billing.stripe.com/p/session/") {
		t.Fatalf("link answered %d to %q, want 303 to a portal session", resp.StatusCode, resp.Header.Get("Location"))
	}
	sessions := s.Stripe.Requests(func(r Request) bool { return r.Kind == "portal session" })
	if len(sessions) != 1 {
		t.Fatalf("portal sessions:\n%s", lines(sessions))
	}
	form, err := url.ParseQuery(string(sessions[0].Body))
	if err != nil {
		t.Fatal(err)
	}
	if form.Get("customer") != customer || form.Get("flow_data[type]") != "payment_method_update" ||
		form.Get("flow_data[after_completion][redirect][return_url]") != PortalReturnURL {
		t.Fatalf("portal session for %v, want %s in the payment-method-update flow back to %s", form, customer, PortalReturnURL)
	}
	// A link tampered with opens nothing, and asks Stripe nothing.
	resp, err = noFollow.Get(notice.UpdateURL[:len(notice.UpdateURL)-2] + "xx")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || len(s.Stripe.Requests(func(r Request) bool { return r.Kind == "portal session" })) != 1 {
		t.Fatalf("tampered link answered %d", resp.StatusCode)
	}
}
