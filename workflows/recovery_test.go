package workflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/stripe/stripe-go/v76"

	"dunning/activities"
	"dunning/amberflo"
	"dunning/workflows"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

const customer = "cus_RecoveryTest01"

var settings = workflows.RecoverySettings{
	RetrySchedule:      []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour},
	GracePeriod:        10 * time.Hour,
	DeprovisionAfter:   20 * time.Hour,
	CardUpdateDebounce: time.Minute,
	MaxGraceExtension:  48 * time.Hour,
}

// world fakes Stripe, Amberflo, the control plane and the notification
// webhooks, and records every call the workflow makes.
type world struct {
	mu sync.Mutex
	// paidIntents are paid in Stripe; a retry or a status read sees it.
	paidIntents map[string]bool
	// succeedOnAttempt: a retry of that attempt number succeeds.
	succeedOnAttempt int
	amberfloPaid     bool
	// rejectControl makes the control plane reject an action once with a
	// permanent error.
	rejectControl map[string]int

	// Stripe as the owed check reads it: an intent's status (default
	// requires_payment_method, succeeded when in paidIntents), its
	// payment_method (set while it requires action: the card the bank
	// asks to authenticate; null after a decline), its invoice's status
	// (default open), the customer's default payment method, and whether
	// an owed check answers at all.
	intentStatus map[string]string
	intentPM     map[string]string
	invoiceState map[string]string
	defaultPM    string
	// detached are payment methods the customer removed: the owed check
	// passes over the card that failed once it is detached (as IntentOwed
	// reads it), and Stripe refuses a confirm with one (as the dev Stripe
	// does: 400 invalid_request_error on payment_method).
	detached map[string]bool
	owedErr  func(intentID string) error
	// stripeDry: no Stripe key, as the activities answer then.
	stripeDry bool
	// checkDelay is how long Stripe and Amberflo take to answer a check.
	checkDelay time.Duration
	// controlDelay is how long the control plane takes to act;
	// chargeDelay how long Stripe takes to answer a confirm.
	controlDelay time.Duration
	chargeDelay  time.Duration
	// Amberflo's invoices by the start of the period they bill; every
	// intent's invoice bills the period starting at its entry in
	// periods (default: the 30 days before t0).
	amberfloByPeriod map[time.Time]string
	periods          map[string]time.Time
	amberfloErr      error
	// amberflo, when set, answers the Amberflo invoice check with the real
	// activity and its real client, against whatever server it points at.
	amberflo *activities.Activities

	// previous is how the customer's last life ended, as Temporal keeps it.
	previous *workflows.RecoveryResult

	// retryHook, when it reports true, answers a confirm in place of the
	// world (after the key check); rejectNotice refuses notices for good.
	retryHook    func(activities.RetryInput) (activities.RetryResult, error, bool)
	rejectNotice map[string]bool
	// slowAlerts: an alert whose title begins with a key takes that long.
	slowAlerts map[string]time.Duration
	// forgiveErr, when set, is Stripe's answer to every ForgiveIntent.
	forgiveErr error
	// noticeErrs answer the next notices, one each, before the mailer
	// takes any.
	noticeErrs []error
	// noticeDelayAll is how long the mailer takes to answer every notice;
	// noticeDelay how long it takes to take the first notice of a type
	// (an outage its retries ride through).
	noticeDelayAll time.Duration
	noticeDelay    map[string]time.Duration
	// readsMeet, when set, holds each of the first failure's reads
	// (customer, previous life, owed check) until it returns.
	readsMeet func()

	// declines says how each payment method declines (default: soft,
	// insufficient funds); now is the test clock.
	declines map[string]activities.Decline
	// fingerprints gives a payment method the fingerprint of a card
	// (default "fp_" + its ID): two payment methods of one card share it.
	fingerprints map[string]string
	now          func() time.Time
	retryTimes   []time.Time

	retries []activities.RetryInput
	// refused are the confirms Stripe refused for a detached payment
	// method: nothing charged.
	refused   []activities.RetryInput
	keyParams map[string]string
	attempts  map[string]int
	// chargeOutcomes are the outcome.reason of charges by ID, as a read
	// of the charge shows it; until chargeDownUntil Stripe answers no
	// read; chargeReads are the charges read.
	// Until profileDownUntil Stripe answers no read of the customer.
	profileDownUntil time.Time
	chargeOutcomes   map[string]string
	chargeDownUntil  time.Time
	chargeReads      []string
	controls         []activities.ControlPlaneInput
	// controlTries is every request the control plane received, the
	// refused ones too.
	controlTries []activities.ControlPlaneInput
	notices      []activities.NoticeInput
	alerts       []activities.AlertInput
	deactive     []string
	// deactivate, when set, answers DeactivateCustomer (default: the
	// customer disabled and moved to OFFBOARDED now).
	deactivate func(activities.AmberfloInput) (activities.DeactivateResult, error)
	// disable and offboard, when set, answer DisableCustomer and
	// OffboardCustomer (default: disabled now, moved to OFFBOARDED now);
	// disableDelay is how long the deactivation takes (an Amberflo
	// outage retried through). offboarded lists the customers moved to
	// OFFBOARDED, by either activity.
	disable      func(activities.AmberfloInput) (activities.DisableResult, error)
	offboard     func(activities.AmberfloInput) (activities.OffboardResult, error)
	disableDelay time.Duration
	offboarded   []string
	forgiven     []activities.ForgiveInput
	checks       []string
	failures     []string

	// unpaid are the customer's failed payments as Stripe lists them
	// (one paid since, in paidIntents, is not listed); unpaidErr, when
	// set, answers each list in their place; unpaidDelay is how long a
	// list takes; unpaidReads counts the lists asked for.
	unpaid      []activities.UnpaidPayment
	unpaidErr   func() error
	unpaidDelay time.Duration
	unpaidReads int

	// credits are the credit notes issued on an open invoice, by invoice
	// (every intent owes 4900); refunded what was refunded of the charge
	// that paid an intent, by intent.
	credits  map[string]int64
	refunded map[string]int64
}

func newWorld() *world {
	return &world{paidIntents: map[string]bool{}, rejectControl: map[string]int{}, intentStatus: map[string]string{}, intentPM: map[string]string{},
		invoiceState: map[string]string{}, defaultPM: "pm_1", detached: map[string]bool{}, amberfloByPeriod: map[time.Time]string{},
		periods: map[string]time.Time{}, credits: map[string]int64{}, refunded: map[string]int64{}, declines: map[string]activities.Decline{}, chargeOutcomes: map[string]string{}, rejectNotice: map[string]bool{}, keyParams: map[string]string{}, attempts: map[string]int{}}
}

// period is the usage period the intent's invoice bills.
func (w *world) period(intentID string) (time.Time, time.Time) {
	start, ok := w.periods[intentID]
	if !ok {
		start = t0.Add(-30 * 24 * time.Hour)
	}
	return start, start.Add(30 * 24 * time.Hour)
}

// owed answers as the IntentOwed activity does, from the world's Stripe,
// through the same decision.
func (w *world) owed(in activities.OwedInput) (activities.Owed, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.checks = append(w.checks, in.IntentID)
	if w.stripeDry {
		// As the activity answers without a Stripe key.
		return activities.Owed{Verdict: activities.OwedYes, Status: "unknown", Why: "stripe not configured", DryRun: true}, nil
	}
	if w.owedErr != nil {
		if err := w.owedErr(in.IntentID); err != nil {
			return activities.Owed{}, err
		}
	}
	status := firstOf(w.intentStatus[in.IntentID], "requires_payment_method")
	if w.paidIntents[in.IntentID] {
		status = "succeeded"
	}
	invID := "in_" + in.IntentID
	// Amounts as Stripe keeps them: a credit note on the open invoice
	// lowers what is due and the intent's amount with it; a paid invoice
	// paid what was due; a refund shows on the charge that paid.
	due := max(4900-w.credits[invID], 0)
	pi := &stripe.PaymentIntent{ID: in.IntentID, Status: stripe.PaymentIntentStatus(status), Amount: due,
		Invoice: &stripe.Invoice{ID: invID, Status: stripe.InvoiceStatus(firstOf(w.invoiceState[invID], "open")),
			Total: 4900, AmountDue: due, AmountRemaining: due, PrePaymentCreditNotesAmount: w.credits[invID]}}
	if pi.Status == stripe.PaymentIntentStatusRequiresAction {
		// As Stripe shows an intent the bank wants authenticated: what
		// to do next, and no last_payment_error (null) when nothing was
		// declined, as after a debit that asks for 3-D Secure.
		pi.NextAction = &stripe.PaymentIntentNextAction{Type: stripe.PaymentIntentNextActionTypeUseStripeSDK}
	}
	if pi.Status == stripe.PaymentIntentStatusSucceeded {
		pi.AmountReceived = due
		pi.LatestCharge = &stripe.Charge{ID: "ch_" + in.IntentID, Amount: due, AmountRefunded: w.refunded[in.IntentID]}
	}
	if pi.Status == stripe.PaymentIntentStatusSucceeded || pi.Invoice.Status == stripe.InvoiceStatusPaid {
		pi.Invoice.Status, pi.Invoice.AmountPaid, pi.Invoice.AmountRemaining = stripe.InvoiceStatusPaid, due, 0
	}
	if w.invoiceState[invID] == "uncollectible" {
		pi.Metadata = map[string]string{activities.WaivedMetadataKey: "waived"}
	}
	o := activities.OwedVerdict(pi, "")
	o.InvoiceID = invID
	o.PeriodStart, o.PeriodEnd = w.period(in.IntentID)
	o.PayURL = "https://invoice.stripe.com/i/" + invID
	if (o.Verdict == activities.OwedYes || o.Verdict == activities.OwedActionRequired) && !in.SkipCharge {
		failed := firstOf(w.intentPM[in.IntentID], in.FailedPaymentMethod)
		o.PaymentMethod, o.PaymentMethodSource, o.Passed = activities.ChargeMethodExcept(in.Removed, w.defaultPM, failed, "")
		if o.PaymentMethodSource == "the payment method that failed" && w.detached[o.PaymentMethod] && o.Verdict == activities.OwedYes {
			// The read of the card that failed finds it no longer theirs.
			o.PaymentMethod, o.PaymentMethodSource = "", ""
		}
		o = activities.ActionFor(o, w.intentPM[in.IntentID])
		if o.PaymentMethod != "" {
			o.Fingerprint = w.fingerprint(o.PaymentMethod)
		}
	}
	return o, nil
}

// fingerprint is the fingerprint of the card a payment method charges.
func (w *world) fingerprint(pm string) string {
	if fp := w.fingerprints[pm]; fp != "" {
		return fp
	}
	return "fp_" + pm
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func (w *world) install(env *testsuite.TestWorkflowEnvironment) {
	env.RegisterActivity(acts)
	env.OnActivity(acts.CustomerProfile, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CustomerInput) (activities.CustomerProfile, error) {
			w.meet()
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.now().Before(w.profileDownUntil) {
				return activities.CustomerProfile{}, errors.New("stripe answered 503")
			}
			return activities.CustomerProfile{CustomerID: "acme-" + in.StripeCustomerID, DefaultPaymentMethod: w.defaultPM}, nil
		})
	env.OnActivity(acts.ChargeDecline, mock.Anything, mock.Anything).Return(
		func(_ context.Context, d activities.Decline) (activities.Decline, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.chargeReads = append(w.chargeReads, d.Charge)
			if w.now().Before(w.chargeDownUntil) {
				return d, errors.New("stripe answered 503")
			}
			d.OutcomeReason = firstOf(w.chargeOutcomes[d.Charge], "issuer_declined")
			return d, nil
		})
	env.OnActivity(acts.IntentOwed, mock.Anything, mock.Anything).After(w.checkDelay).Return(
		func(_ context.Context, in activities.OwedInput) (activities.Owed, error) {
			w.meet()
			return w.owed(in)
		})
	env.OnActivity(acts.InvoiceForPeriod, mock.Anything, mock.Anything).After(w.checkDelay).Return(
		func(ctx context.Context, in activities.AmberfloPeriodInput) (activities.AmberfloInvoice, error) {
			if w.amberflo != nil {
				return w.amberflo.InvoiceForPeriod(ctx, in)
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.amberfloErr != nil {
				return activities.AmberfloInvoice{}, w.amberfloErr
			}
			status, ok := w.amberfloByPeriod[in.PeriodStart]
			if w.amberfloPaid {
				status, ok = "SETTLED", true
			}
			if !ok {
				return activities.AmberfloInvoice{}, nil
			}
			paid := amberflo.PaymentStatus(status).Paid()
			return activities.AmberfloInvoice{Found: true, URI: "/invoices/" + in.PeriodStart.Format("2006-01"), Amount: 49, PaymentStatus: status, Paid: paid}, nil
		})
	env.OnActivity(acts.EndedRecovery, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EndedRecoveryInput) (activities.EndedRecovery, error) {
			w.meet()
			w.mu.Lock()
			defer w.mu.Unlock()
			if !in.Previous || w.previous == nil {
				return activities.EndedRecovery{}, nil
			}
			raw, err := json.Marshal(w.previous)
			return activities.EndedRecovery{Found: true, Result: raw, Status: "Completed"}, err
		})
	env.OnActivity(acts.UnpaidPayments, mock.Anything, mock.Anything).After(w.unpaidDelay).Return(
		func(_ context.Context, in activities.UnpaidInput) (activities.Unpaid, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.unpaidReads++
			if w.unpaidErr != nil {
				if err := w.unpaidErr(); err != nil {
					return activities.Unpaid{}, err
				}
			}
			var out activities.Unpaid
			for _, p := range w.unpaid {
				if !w.paidIntents[p.IntentID] {
					out.Payments = append(out.Payments, p)
				}
			}
			return out, nil
		})
	env.OnActivity(acts.ForgiveIntent, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ForgiveInput) (activities.ForgiveResult, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.forgiven = append(w.forgiven, in)
			if w.forgiveErr != nil {
				return activities.ForgiveResult{}, w.forgiveErr
			}
			if w.paidIntents[in.IntentID] {
				return activities.ForgiveResult{Outcome: activities.ForgivePaid, Detail: "intent succeeded"}, nil
			}
			w.invoiceState["in_"+in.IntentID] = "uncollectible"
			return activities.ForgiveResult{Outcome: activities.ForgiveDone, Detail: "invoice marked uncollectible"}, nil
		})
	env.OnActivity(acts.PaymentIntentStatus, mock.Anything, mock.Anything).After(w.checkDelay).Return(
		func(_ context.Context, in activities.IntentInput) (activities.IntentStatus, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.paidIntents[in.IntentID] {
				return activities.IntentStatus{Status: "succeeded", Paid: true}, nil
			}
			return activities.IntentStatus{Status: "requires_payment_method"}, nil
		})
	env.OnActivity(acts.RetryPayment, mock.Anything, mock.Anything).After(w.chargeDelay).Return(
		func(_ context.Context, in activities.RetryInput) (activities.RetryResult, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			// Without a payment method chosen by the workflow, the activity
			// charges the customer's default as it reads it now.
			pm := firstOf(in.PaymentMethodID, w.defaultPM)
			// Stripe answers 400 to a key sent again with other parameters.
			if prev, ok := w.keyParams[in.IdempotencyKey]; ok && prev != pm {
				w.failures = append(w.failures, "idempotency key "+in.IdempotencyKey+" sent with "+prev+" and "+pm)
				return activities.RetryResult{}, temporal.NewNonRetryableApplicationError("idempotency key reused", activities.ErrStripeRejected, nil)
			}
			if _, seen := w.keyParams[in.IdempotencyKey]; !seen {
				w.attempts[in.IntentID]++
			}
			w.keyParams[in.IdempotencyKey] = pm
			if w.retryHook != nil {
				if res, err, ok := w.retryHook(in); ok {
					return res, err
				}
			}
			if w.detached[pm] {
				w.refused = append(w.refused, in)
				return activities.RetryResult{}, temporal.NewNonRetryableApplicationError(
					"confirm payment intent "+in.IntentID+": stripe rejected the request (400 invalid_request_error): The provided PaymentMethod was previously used with a PaymentIntent without Customer attachment, shared with a connected account without Customer attachment, or was detached from a Customer. It may not be used again.",
					activities.ErrStripeRejected, nil,
					activities.StripeRefusal{Status: 400, Type: "invalid_request_error", Param: "payment_method"})
			}
			w.retries = append(w.retries, in)
			if w.paidIntents[in.IntentID] {
				return activities.RetryResult{Outcome: activities.RetryAlreadyPaid}, nil
			}
			if st := w.intentStatus[in.IntentID]; st == "processing" || st == "canceled" {
				w.failures = append(w.failures, "confirm of "+in.IntentID+" while "+st)
			}
			if w.succeedOnAttempt > 0 && w.attempts[in.IntentID] == w.succeedOnAttempt {
				w.paidIntents[in.IntentID] = true
				// Stripe took what the intent asks now: less after a credit
				// note on its invoice.
				received := max(4900-w.credits["in_"+in.IntentID], 0)
				return activities.RetryResult{Outcome: activities.RetrySucceeded, Status: "succeeded", AmountReceived: received}, nil
			}
			d, ok := w.declines[pm]
			if !ok {
				d = activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds"}
			}
			d.PaymentMethod, d.Fingerprint = pm, w.fingerprint(pm)
			// A decline leaves the intent waiting for a payment method.
			if w.intentStatus[in.IntentID] == "requires_action" {
				w.intentStatus[in.IntentID] = "requires_payment_method"
			}
			delete(w.intentPM, in.IntentID)
			w.retryTimes = append(w.retryTimes, w.now())
			return activities.RetryResult{Outcome: activities.RetryDeclined, DeclineCode: d.DeclineCode, PaymentMethod: pm, Decline: d}, nil
		})
	env.OnActivity(acts.LatestInvoice, mock.Anything, mock.Anything).After(w.checkDelay).Return(
		func(_ context.Context, in activities.AmberfloInput) (activities.AmberfloInvoice, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			status := "FAILED"
			if w.amberfloPaid {
				status = "SETTLED"
			}
			return activities.AmberfloInvoice{Found: true, URI: "inv-" + in.CustomerID, Amount: 49, PaymentStatus: status, Paid: w.amberfloPaid}, nil
		})
	// The one activity of lives recorded before the deactivation and the
	// stage move were two steps: as slow as the deactivation, and it
	// moves the stage too.
	env.OnActivity(acts.DeactivateCustomer, mock.Anything, mock.Anything).After(w.disableDelay).Return(
		func(_ context.Context, in activities.AmberfloInput) (activities.DeactivateResult, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.deactive = append(w.deactive, in.CustomerID)
			res, err := activities.DeactivateResult{Changed: true, Offboarded: true}, error(nil)
			if w.deactivate != nil {
				res, err = w.deactivate(in)
			}
			if err == nil && res.Offboarded {
				w.offboarded = append(w.offboarded, in.CustomerID)
			}
			return res, err
		})
	env.OnActivity(acts.DisableCustomer, mock.Anything, mock.Anything).After(w.disableDelay).Return(
		func(_ context.Context, in activities.AmberfloInput) (activities.DisableResult, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.deactive = append(w.deactive, in.CustomerID)
			if w.disable != nil {
				return w.disable(in)
			}
			return activities.DisableResult{Changed: true}, nil
		})
	env.OnActivity(acts.OffboardCustomer, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AmberfloInput) (activities.OffboardResult, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.offboarded = append(w.offboarded, in.CustomerID)
			if w.offboard != nil {
				return w.offboard(in)
			}
			return activities.OffboardResult{Moved: true}, nil
		})
	env.OnActivity(acts.ControlPlane, mock.Anything, mock.Anything).After(w.controlDelay).Return(
		func(_ context.Context, in activities.ControlPlaneInput) (activities.ControlPlaneResult, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.controlTries = append(w.controlTries, in)
			if w.rejectControl[in.Action] > 0 {
				w.rejectControl[in.Action]--
				return activities.ControlPlaneResult{}, temporal.NewNonRetryableApplicationError("403 forbidden", activities.ErrControlPlaneRejected, nil)
			}
			w.controls = append(w.controls, in)
			return activities.ControlPlaneResult{}, nil
		})
	notice := func(_ context.Context, in activities.NoticeInput) (activities.NotifyResult, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.rejectNotice[in.Type] {
			return activities.NotifyResult{}, temporal.NewNonRetryableApplicationError("mailer answered 422", activities.ErrNotifyRejected, nil)
		}
		if len(w.noticeErrs) > 0 {
			err := w.noticeErrs[0]
			w.noticeErrs = w.noticeErrs[1:]
			return activities.NotifyResult{}, err
		}
		w.notices = append(w.notices, in)
		return activities.NotifyResult{}, nil
	}
	for typ, d := range w.noticeDelay {
		env.OnActivity(acts.Notice, mock.Anything, mock.MatchedBy(func(in activities.NoticeInput) bool { return in.Type == typ })).After(d).Return(notice).Once()
	}
	env.OnActivity(acts.Notice, mock.Anything, mock.Anything).After(w.noticeDelayAll).Return(notice)
	alert := func(_ context.Context, in activities.AlertInput) (activities.NotifyResult, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.alerts = append(w.alerts, in)
		return activities.NotifyResult{}, nil
	}
	// The slow alerts are registered first, so that they match before the
	// general answer.
	for prefix, d := range w.slowAlerts {
		env.OnActivity(acts.Alert, mock.Anything, mock.MatchedBy(func(in activities.AlertInput) bool {
			return strings.HasPrefix(in.Title, prefix)
		})).After(d).Return(alert)
	}
	env.OnActivity(acts.Alert, mock.Anything, mock.Anything).Return(alert)
}

func (w *world) meet() {
	w.mu.Lock()
	f := w.readsMeet
	w.mu.Unlock()
	if f != nil {
		f()
	}
}

func (w *world) controlActions() []string {
	var out []string
	for _, c := range w.controls {
		out = append(out, c.Action)
	}
	return out
}

func (w *world) noticeTypes() []string {
	var out []string
	for _, n := range w.notices {
		out = append(out, n.Type)
	}
	return out
}

type recoveryTest struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment
	w   *world
	// startedWith opens the life with its failure in the run's input
	// (openWithReads), not in a signal.
	startedWith bool
}

func newRecoveryTest(t *testing.T, opts ...func(*world)) *recoveryTest {
	return newRecoveryTestIn(t, &testsuite.WorkflowTestSuite{}, opts...)
}

// newRecoveryTestIn is newRecoveryTest in a suite set up by the caller
// (with a metrics handler, say).
func newRecoveryTestIn(t *testing.T, suite *testsuite.WorkflowTestSuite, opts ...func(*world)) *recoveryTest {
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.RecoveryWorkflowID(customer)})
	w := newWorld()
	w.now = env.Now
	for _, o := range opts {
		o(w)
	}
	w.install(env)
	return &recoveryTest{t: t, env: env, w: w}
}

func failed(eventID, intent string, created time.Time) workflows.PaymentFailedSignal {
	return workflows.PaymentFailedSignal{EventID: eventID, Created: created, Intent: workflows.PaymentIntentInfo{
		ID: intent, Amount: 4900, Currency: "usd", InvoiceID: "in_" + intent, DeclineCode: "insufficient_funds"}}
}

// at runs fn d after the start.
func (rt *recoveryTest) at(d time.Duration, fn func()) {
	rt.env.RegisterDelayedCallback(fn, d)
}

func (rt *recoveryTest) signal(d time.Duration, name string, payload any) {
	rt.at(d, func() { rt.env.SignalWorkflow(name, payload) })
}

func (rt *recoveryTest) status() workflows.RecoveryState {
	rt.t.Helper()
	v, err := rt.env.QueryWorkflow(workflows.StatusQuery)
	if err != nil {
		rt.t.Fatalf("status query: %v", err)
	}
	var s workflows.RecoveryState
	if err := v.Get(&s); err != nil {
		rt.t.Fatal(err)
	}
	return s
}

// run starts the recovery with its first failure at 0 and returns the
// result.
func (rt *recoveryTest) run(in workflows.RecoveryInput) workflows.RecoveryResult {
	rt.t.Helper()
	return rt.runFrom(in, failed("evt_first", "pi_1", t0))
}

// runFrom starts the recovery with first at 0 and returns the result.
func (rt *recoveryTest) runFrom(in workflows.RecoveryInput, first workflows.PaymentFailedSignal) workflows.RecoveryResult {
	rt.t.Helper()
	rt.signal(0, workflows.SignalPaymentFailed, first)
	return rt.runWith(in)
}

// runWith runs the recovery started with in and returns the result.
func (rt *recoveryTest) runWith(in workflows.RecoveryInput) workflows.RecoveryResult {
	rt.t.Helper()
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, in)
	if !rt.env.IsWorkflowCompleted() {
		rt.t.Fatal("recovery did not complete")
	}
	if err := rt.env.GetWorkflowError(); err != nil {
		rt.t.Fatalf("recovery failed: %v", err)
	}
	var res workflows.RecoveryResult
	if err := rt.env.GetWorkflowResult(&res); err != nil {
		rt.t.Fatal(err)
	}
	for _, f := range rt.w.failures {
		rt.t.Errorf("Stripe would have refused: %s", f)
	}
	return res
}

func input() workflows.RecoveryInput {
	return workflows.RecoveryInput{StripeCustomerID: customer, Settings: settings}
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

func TestRecoveredOnScheduledRetry(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.w.succeedOnAttempt = 2
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
	if len(rt.w.retries) != 2 {
		t.Fatalf("%d retries, want 2 (the first declined, the second paid)", len(rt.w.retries))
	}
	if !strings.HasPrefix(rt.w.retries[0].IdempotencyKey, workflows.RetryIdempotencyPrefix+":recovery-") ||
		rt.w.retries[0].IdempotencyKey == rt.w.retries[1].IdempotencyKey {
		t.Errorf("idempotency keys %q, %q", rt.w.retries[0].IdempotencyKey, rt.w.retries[1].IdempotencyKey)
	}
	if want := []string{"payment_failed", "payment_retry_failed", "payment_recovered"}; !equal(rt.w.noticeTypes(), want) {
		t.Errorf("notices %v, want %v", rt.w.noticeTypes(), want)
	}
	if len(rt.w.controls) != 0 {
		t.Errorf("control plane called: %v", rt.w.controlActions())
	}
}

func TestRecoveredAtOnceAfterCardUpdate(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.w.succeedOnAttempt = 1
	// A burst of card events becomes one retry, well before the first
	// scheduled one.
	for i, d := range []time.Duration{10 * time.Minute, 10*time.Minute + 5*time.Second, 10*time.Minute + 20*time.Second} {
		rt.signal(d, workflows.SignalCardUpdated, workflows.CardUpdatedSignal{EventID: fmt.Sprintf("evt_card_%d", i), Created: t0.Add(d), Source: "payment_method.attached"})
	}
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered || len(rt.w.retries) != 1 {
		t.Fatalf("stage %s after %d retries, want recovered after 1", res.Stage, len(rt.w.retries))
	}
	if now := rt.env.Now(); now.Sub(t0) >= time.Hour {
		t.Errorf("recovered at +%s, want before the first scheduled retry", now.Sub(t0))
	}
}

func TestPaidByCustomerBetweenRetries(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.signal(90*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", Created: t0.Add(90 * time.Minute), IntentID: "pi_1", Source: "payment_intent.succeeded"})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered || len(rt.w.retries) != 1 {
		t.Fatalf("stage %s after %d retries, want recovered after the one retry before the payment", res.Stage, len(rt.w.retries))
	}
}

func TestPaidJustBeforeSuspensionIsNotSuspended(t *testing.T) {
	rt := newRecoveryTest(t)
	// The customer pays moments before the deadline; no event reaches us
	// in time, only the re-check can tell.
	rt.at(10*time.Hour-time.Second, func() {
		rt.w.mu.Lock()
		rt.w.paidIntents["pi_1"] = true
		rt.w.mu.Unlock()
	})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
	if len(rt.w.controls) != 0 {
		t.Fatalf("control plane called %v; a paid customer is never suspended", rt.w.controlActions())
	}
}

func TestAmberfloSettledBeforeSuspensionIsNotSuspended(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.at(9*time.Hour, func() { rt.w.mu.Lock(); rt.w.amberfloPaid = true; rt.w.mu.Unlock() })
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered || len(rt.w.controls) != 0 {
		t.Fatalf("stage %s, control plane %v; want recovered with no control-plane call", res.Stage, rt.w.controlActions())
	}
}

func TestSuspendedThenPaidIsResumed(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.at(11*time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended || s.Next.Kind != workflows.NextDeprovision {
			t.Errorf("at +11h: stage %s next %s, want suspended, deprovision next", s.Stage, s.Next.Kind)
		}
	})
	rt.signal(12*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", Created: t0.Add(12 * time.Hour), InvoiceID: "in_pi_1", Source: "invoice.paid"})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
	if want := []string{"suspend", "resume"}; !equal(rt.w.controlActions(), want) {
		t.Fatalf("control plane %v, want %v", rt.w.controlActions(), want)
	}
	if rt.w.controls[0].IdempotencyKey == rt.w.controls[1].IdempotencyKey || rt.w.controls[0].CustomerID != "acme-"+customer {
		t.Errorf("control calls %+v", rt.w.controls)
	}
	if !strings.Contains(strings.Join(rt.w.noticeTypes(), ","), "account_suspended,account_resumed") {
		t.Errorf("notices %v", rt.w.noticeTypes())
	}
}

func TestNeverPaidIsDeprovisioned(t *testing.T) {
	rt := newRecoveryTest(t)
	res := rt.run(input())
	if res.Stage != workflows.StageDeprovisioned {
		t.Fatalf("stage %s, want deprovisioned", res.Stage)
	}
	if want := []string{"suspend", "deprovision"}; !equal(rt.w.controlActions(), want) {
		t.Fatalf("control plane %v, want %v", rt.w.controlActions(), want)
	}
	if len(rt.w.deactive) != 1 || rt.w.deactive[0] != "acme-"+customer {
		t.Errorf("amberflo deactivations %v", rt.w.deactive)
	}
	if len(rt.w.retries) != len(settings.RetrySchedule) {
		t.Errorf("%d retries, want one per scheduled delay", len(rt.w.retries))
	}
	if got := rt.env.Now().Sub(t0); got < 30*time.Hour {
		t.Errorf("deprovisioned at +%s, before grace (10h) + deprovision delay (20h)", got)
	}
	var critical int
	for _, a := range rt.w.alerts {
		if a.Severity == "critical" {
			critical++
		}
	}
	if critical != 1 {
		t.Errorf("%d critical alerts, want the one for deprovisioning", critical)
	}
}

func TestTwoIntentsOnePaid(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.signal(5*time.Minute, workflows.SignalPaymentFailed, failed("evt_second", "pi_2", t0.Add(5*time.Minute)))
	rt.signal(20*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid1", Created: t0.Add(20 * time.Minute), IntentID: "pi_1", Source: "payment_intent.succeeded"})
	rt.at(30*time.Minute, func() {
		s := rt.status()
		if s.Stage != workflows.StagePastDue || len(s.Intents) != 2 || s.Intents[0].State != workflows.IntentPaid || s.Intents[1].State != workflows.IntentOpen {
			t.Errorf("at +30m: stage %s intents %+v, want past_due with pi_1 paid and pi_2 open", s.Stage, s.Intents)
		}
	})
	rt.signal(40*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid2", Created: t0.Add(40 * time.Minute), IntentID: "pi_2", Source: "payment_intent.succeeded"})
	if res := rt.run(input()); res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
}

func TestDuplicateAndOutOfOrderEvents(t *testing.T) {
	rt := newRecoveryTest(t)
	// The same event delivered twice, and an older failure after a newer one.
	rt.signal(time.Minute, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	rt.signal(2*time.Minute, workflows.SignalPaymentFailed, failed("evt_newer", "pi_1", t0.Add(2*time.Minute)))
	older := failed("evt_older", "pi_1", t0.Add(time.Minute))
	older.Intent.DeclineCode = "expired_card"
	rt.signal(3*time.Minute, workflows.SignalPaymentFailed, older)
	rt.at(4*time.Minute, func() {
		s := rt.status()
		if len(s.Intents) != 1 || !s.Intents[0].LastEventAt.Equal(t0.Add(2*time.Minute)) || s.Intents[0].LastDecline != "insufficient_funds" {
			t.Errorf("intents %+v, want one intent left at the newer event", s.Intents)
		}
		if n := strings.Count(fmt.Sprint(s.AppliedEvents), "evt_first"); n != 1 {
			t.Errorf("evt_first applied %d times", n)
		}
	})
	// A failure that arrives after the intent was paid does not reopen it.
	rt.signal(5*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", Created: t0.Add(5 * time.Minute), IntentID: "pi_1", Source: "payment_intent.succeeded"})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered || len(rt.w.retries) != 0 {
		t.Fatalf("stage %s, %d retries", res.Stage, len(rt.w.retries))
	}
	if n := strings.Count(strings.Join(rt.w.noticeTypes(), ","), "payment_failed"); n != 1 {
		t.Errorf("%d past-due notices, want 1", n)
	}
}

func (rt *recoveryTest) update(d time.Duration, name string, arg any, check func(workflows.OperatorResult, error)) {
	rt.at(d, func() {
		rt.env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { check(workflows.OperatorResult{}, err) },
			OnComplete: func(v any, err error) {
				var r workflows.OperatorResult
				if res, ok := v.(workflows.OperatorResult); ok {
					r = res
				}
				check(r, err)
			},
		}, arg)
	})
}

func mustAccept(t *testing.T, what string) func(workflows.OperatorResult, error) {
	return func(r workflows.OperatorResult, err error) {
		if err != nil || !r.Accepted {
			t.Errorf("%s: %+v %v, want accepted", what, r, err)
		}
	}
}

func mustReject(t *testing.T, what string) func(workflows.OperatorResult, error) {
	return func(r workflows.OperatorResult, err error) {
		if err == nil {
			t.Errorf("%s: accepted %+v, want rejected", what, r)
		}
	}
}

func TestOperatorRetryNow(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.w.succeedOnAttempt = 1
	rt.update(5*time.Minute, workflows.ControlRetryNow, workflows.OperatorRequest{Operator: "ops@example.com"}, mustAccept(t, "retry_now"))
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered || len(rt.w.retries) != 1 || rt.env.Now().Sub(t0) > time.Hour {
		t.Fatalf("stage %s after %d retries at +%s", res.Stage, len(rt.w.retries), rt.env.Now().Sub(t0))
	}
}

func TestOperatorExtendGrace(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.update(time.Hour+30*time.Minute, workflows.ControlExtendGrace, workflows.ExtendGraceRequest{By: "72h"}, mustReject(t, "extend beyond the limit"))
	rt.update(time.Hour+30*time.Minute, workflows.ControlExtendGrace, workflows.ExtendGraceRequest{By: "-1h"}, mustReject(t, "negative extension"))
	rt.update(time.Hour+30*time.Minute, workflows.ControlExtendGrace, workflows.ExtendGraceRequest{By: "soon"}, mustReject(t, "not a duration"))
	rt.update(2*time.Hour, workflows.ControlExtendGrace, workflows.ExtendGraceRequest{By: "5h", Reason: "customer called"}, mustAccept(t, "extend 5h"))
	rt.at(14*time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StagePastDue {
			t.Errorf("at +14h stage %s, want still past_due (grace moved to +15h)", s.Stage)
		}
	})
	rt.at(16*time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended {
			t.Errorf("at +16h stage %s, want suspended", s.Stage)
		}
	})
	rt.signal(17*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Created: t0.Add(17 * time.Hour), Source: "payment_intent.succeeded"})
	if res := rt.run(input()); res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s", res.Stage)
	}
}

func TestOperatorWaive(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.update(time.Minute, workflows.ControlWaive, workflows.OperatorRequest{}, mustReject(t, "waive without a reason"))
	rt.update(11*time.Hour, workflows.ControlWaive, workflows.OperatorRequest{Reason: "goodwill", Operator: "ops"}, mustAccept(t, "waive"))
	res := rt.run(input())
	if res.Stage != workflows.StageWaived {
		t.Fatalf("stage %s, want waived", res.Stage)
	}
	// Waived while suspended: the customer gets the resources back.
	if want := []string{"suspend", "resume"}; !equal(rt.w.controlActions(), want) {
		t.Fatalf("control plane %v, want %v", rt.w.controlActions(), want)
	}
}

func TestOperatorPauseAndResume(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.update(30*time.Minute, workflows.ControlPause, workflows.OperatorRequest{Reason: "disputed"}, mustAccept(t, "pause"))
	rt.update(31*time.Minute, workflows.ControlPause, workflows.OperatorRequest{}, mustReject(t, "pause twice"))
	rt.at(20*time.Hour, func() {
		s := rt.status()
		if s.Stage != workflows.StagePastDue || !s.Paused || len(rt.w.retries) != 0 {
			t.Errorf("at +20h paused: stage %s paused %v retries %d; want nothing done", s.Stage, s.Paused, len(rt.w.retries))
		}
	})
	rt.update(20*time.Hour+30*time.Minute, workflows.ControlResume, workflows.OperatorRequest{}, mustAccept(t, "resume"))
	rt.at(21*time.Hour+5*time.Minute, func() {
		// Paused for 20h: the first retry (due +1h) moved to +21h, the
		// suspension (due +10h) to +30h.
		s := rt.status()
		if len(rt.w.retries) != 1 || s.Stage != workflows.StagePastDue {
			t.Errorf("at +21h05: %d retries, stage %s; want the first retry done and still past_due", len(rt.w.retries), s.Stage)
		}
	})
	rt.signal(22*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Created: t0.Add(22 * time.Hour), Source: "payment_intent.succeeded"})
	if res := rt.run(input()); res.Stage != workflows.StageRecovered || len(rt.w.controls) != 0 {
		t.Fatalf("stage %s, control plane %v", res.Stage, rt.w.controlActions())
	}
}

func TestOperatorControlsAsSignals(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.signal(time.Minute, workflows.ControlWaive, workflows.OperatorRequest{}) // rejected: no reason
	rt.at(2*time.Minute, func() {
		s := rt.status()
		last := s.Actions[len(s.Actions)-1]
		if !strings.HasPrefix(last.Outcome, "rejected") || s.Stage != workflows.StagePastDue {
			t.Errorf("last action %+v, stage %s; want the waiver rejected", last, s.Stage)
		}
	})
	rt.signal(3*time.Minute, workflows.ControlWaive, workflows.OperatorRequest{Reason: "duplicate charge"})
	if res := rt.run(input()); res.Stage != workflows.StageWaived {
		t.Fatalf("stage %s, want waived", res.Stage)
	}
}

func TestPermanentControlPlaneErrorPausesForAnOperator(t *testing.T) {
	rt := newRecoveryTest(t)
	rt.w.rejectControl["suspend"] = 1
	rt.at(11*time.Hour, func() {
		s := rt.status()
		if !s.Paused || s.Stage != workflows.StagePastDue || s.Next.Kind != workflows.NextPaused {
			t.Errorf("at +11h: paused %v stage %s next %s; want paused for an operator", s.Paused, s.Stage, s.Next.Kind)
		}
		found := false
		for _, a := range rt.w.alerts {
			found = found || (a.Severity == "critical" && strings.Contains(a.Title, "paused"))
		}
		if !found {
			t.Errorf("no critical alert about the pause: %+v", rt.w.alerts)
		}
	})
	rt.update(12*time.Hour, workflows.ControlResume, workflows.OperatorRequest{Operator: "ops"}, mustAccept(t, "resume"))
	rt.at(13*time.Hour, func() {
		if s := rt.status(); s.Stage != workflows.StageSuspended {
			t.Errorf("at +13h stage %s, want suspended once the operator resumed", s.Stage)
		}
	})
	rt.signal(14*time.Hour, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Created: t0.Add(14 * time.Hour), Source: "payment_intent.succeeded"})
	res := rt.run(input())
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s", res.Stage)
	}
	if want := []string{"suspend", "resume"}; !equal(rt.w.controlActions(), want) {
		t.Fatalf("control plane %v, want %v (one rejected attempt, no loop)", rt.w.controlActions(), want)
	}
}

func TestContinueAsNewKeepsState(t *testing.T) {
	rt := newRecoveryTest(t)
	in := input()
	// The server suggests continuing once the history grows long.
	rt.at(30*time.Minute, func() { rt.env.SetContinueAsNewSuggested(true) })
	rt.signal(0, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	rt.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, in)
	var can *workflow.ContinueAsNewError
	if err := rt.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("error %v, want continue-as-new", err)
	}
	var next workflows.RecoveryInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	s := next.State
	if s == nil || len(s.Intents) != 1 || s.Intents[0].ID != "pi_1" || len(s.Actions) == 0 || s.Lifecycle == "" ||
		len(s.AppliedEvents) != 1 || s.RetriesDone != 1 || next.Settings.GracePeriod != settings.GracePeriod {
		t.Fatalf("continued with %+v", next)
	}

	// The next run goes on from there: the same event again is a no-op,
	// a payment recovers it, and the history is kept.
	rt2 := newRecoveryTest(t)
	rt2.signal(time.Minute, workflows.SignalPaymentFailed, failed("evt_first", "pi_1", t0))
	rt2.signal(2*time.Minute, workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_paid", IntentID: "pi_1", Created: t0.Add(2 * time.Minute), Source: "payment_intent.succeeded"})
	rt2.env.ExecuteWorkflow(workflows.PaymentRecoveryWorkflow, next)
	var res workflows.RecoveryResult
	if err := rt2.env.GetWorkflowResult(&res); err != nil || res.Stage != workflows.StageRecovered {
		t.Fatalf("second run: %+v %v", res, err)
	}
	if n := strings.Count(strings.Join(rt2.w.noticeTypes(), ","), "payment_failed"); n != 0 {
		t.Errorf("the continued run announced the failure again (%d notices)", n)
	}
}
