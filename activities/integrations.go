package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"dunning/amberflo"
	"dunning/controlplane"
	"dunning/internal/httpx"
	"dunning/internal/portallink"
	"dunning/notify"
)

// AmberfloInput names an Amberflo customer (the product's ID).
type AmberfloInput struct {
	CustomerID string `json:"customer_id"`
}

// AmberfloInvoice is the latest Amberflo invoice of a customer.
type AmberfloInvoice struct {
	Found bool   `json:"found"`
	URI   string `json:"uri,omitempty"`
	// Amount is the invoice's total (totalBill.totalPrice), in major
	// units of the plan's currency, when AmountKnown: Amberflo gave a
	// number. Otherwise nobody knows it, and Amount zero says nothing.
	Amount        float64 `json:"amount"`
	AmountKnown   bool    `json:"amount_known,omitempty"`
	PaymentStatus string  `json:"payment_status,omitempty"`
	Paid          bool    `json:"paid"`
	DryRun        bool    `json:"dry_run,omitempty"`
}

// LatestInvoice looks up the customer's latest Amberflo invoice with its
// payment status. No invoice is a result (Found false), not an error; so
// are a paid and an unpaid invoice. A payment status that says neither is
// an error (see invoiceAnswer).
func (a *Activities) LatestInvoice(ctx context.Context, in AmberfloInput) (AmberfloInvoice, error) {
	if a.Amberflo == nil {
		a.logger(ctx).Info("dry run: amberflo not configured; invoice not looked up", "customer", in.CustomerID)
		return AmberfloInvoice{DryRun: true}, nil
	}
	inv, err := a.Amberflo.LatestInvoice(ctx, in.CustomerID)
	if errors.Is(err, amberflo.ErrNotFound) {
		return AmberfloInvoice{}, nil
	}
	if err != nil {
		return AmberfloInvoice{}, classify(err, ErrAmberfloRejected)
	}
	return invoiceAnswer(inv, fmt.Sprintf("latest invoice %q of customer %q", inv.URI, in.CustomerID))
}

// invoiceAnswer is an Amberflo invoice as a result, when its payment
// status says whether the money is owed: paid (SETTLED, NOT_NEEDED) or
// unpaid (FAILED, REQUIRES_ACTION, PRE_PAYMENT), in any case. Otherwise
// it is an error naming what Amberflo answered, for which nothing is
// charged and nothing taken away:
//   - PENDING (a payment in flight) and UNKNOWN (Amberflo does not know
//     yet): retryable, of type ErrAmberfloPending or ErrAmberfloUnknown;
//     the workflow asks again later and tells ops when that lasts.
//   - no status, or one Amberflo does not document: a non-retryable
//     ErrAmberfloRejected; the workflow pauses for an operator.
//
// what names the invoice in the error.
func invoiceAnswer(inv amberflo.Invoice, what string) (AmberfloInvoice, error) {
	status := inv.PaymentStatus.Normal()
	res := AmberfloInvoice{Found: true, URI: inv.URI, Amount: inv.TotalPrice, AmountKnown: inv.TotalKnown, PaymentStatus: string(status)}
	switch inv.State() {
	case amberflo.StatePaid:
		res.Paid = true
		return res, nil
	case amberflo.StateUnpaid:
		return res, nil
	case amberflo.StateInFlight:
		return AmberfloInvoice{}, temporal.NewApplicationError(fmt.Sprintf(
			"amberflo: %s: payment %s, in flight: not charged, nothing taken away until it settles", what, status), ErrAmberfloPending)
	case amberflo.StateUnknown:
		return AmberfloInvoice{}, temporal.NewApplicationError(fmt.Sprintf(
			"amberflo: %s: payment %s, Amberflo does not know whether it is paid: not charged, nothing taken away until it does", what, status), ErrAmberfloUnknown)
	}
	got := fmt.Sprintf("payment status %q", string(inv.PaymentStatus))
	if strings.TrimSpace(string(inv.PaymentStatus)) == "" {
		got = "no payment status (paymentStatus missing or null)"
	}
	return AmberfloInvoice{}, classify(fmt.Errorf(
		"amberflo: %s: %s, not one Amberflo documents: not charged, nothing taken away", what, got), ErrAmberfloRejected)
}

// AmberfloPeriodInput names the Amberflo invoice that bills a usage period.
type AmberfloPeriodInput struct {
	CustomerID  string    `json:"customer_id"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
}

// InvoiceForPeriod looks up the customer's Amberflo invoice for the
// period a Stripe invoice bills: a settled newer invoice says nothing of an
// older debt, and an unpaid newer one nothing of a paid older one. No
// matching invoice is a result (Found false). A 4xx or an unreadable answer
// is a non-retryable ErrAmberfloRejected; so is a payment status that is
// not one Amberflo documents. PENDING and UNKNOWN are retryable errors
// (see invoiceAnswer).
func (a *Activities) InvoiceForPeriod(ctx context.Context, in AmberfloPeriodInput) (AmberfloInvoice, error) {
	if a.Amberflo == nil {
		a.logger(ctx).Info("dry run: amberflo not configured; invoice not looked up", "customer", in.CustomerID)
		return AmberfloInvoice{DryRun: true}, nil
	}
	invs, err := a.Amberflo.Invoices(ctx, in.CustomerID)
	if err != nil {
		return AmberfloInvoice{}, classify(err, ErrAmberfloRejected)
	}
	inv, ok := amberflo.InvoiceFor(invs, in.PeriodStart, in.PeriodEnd)
	if !ok {
		return AmberfloInvoice{}, nil
	}
	return invoiceAnswer(inv, fmt.Sprintf("invoice %q of customer %q for %s…%s", inv.URI, in.CustomerID,
		in.PeriodStart.UTC().Format(time.DateOnly), in.PeriodEnd.UTC().Format(time.DateOnly)))
}

// DeactivateResult says what deprovisioning did to the Amberflo
// customer. Changed: it was enabled and is now disabled (false: it already
// was). Offboarded: its lifecycle stage was moved to OFFBOARDED now;
// AlreadyOffboarded: it was OFFBOARDED already. A result with neither of
// the last two was recorded before dunning set the stage.
type DeactivateResult struct {
	Changed           bool `json:"changed"`
	Offboarded        bool `json:"offboarded,omitempty"`
	AlreadyOffboarded bool `json:"already_offboarded,omitempty"`
	DryRun            bool `json:"dry_run,omitempty"`
}

// DeactivateCustomer takes the customer out of Amberflo's live customers:
// it disables it (read, modify, write: Amberflo's PUT replaces the whole
// record), then moves its lifecycle stage to OFFBOARDED, which Amberflo
// never moves back. Each step is skipped when already done, so a retry
// after the first step succeeded and the second failed finishes the job;
// already disabled and already OFFBOARDED are success. A refusal of the
// first step is a non-retryable ErrAmberfloRejected (nothing was changed:
// the customer is not offboarded either); a refusal of the second is a
// non-retryable ErrAmberfloOffboardRejected, whose message says that the
// customer was deactivated but its stage not moved.
func (a *Activities) DeactivateCustomer(ctx context.Context, in AmberfloInput) (DeactivateResult, error) {
	if a.Amberflo == nil {
		a.logger(ctx).Info("dry run: amberflo not configured; customer not deactivated nor moved to OFFBOARDED", "customer", in.CustomerID)
		return DeactivateResult{DryRun: true}, nil
	}
	_, changed, err := a.Amberflo.DeactivateCustomer(ctx, in.CustomerID)
	if err != nil {
		return DeactivateResult{}, classify(err, ErrAmberfloRejected)
	}
	moved, err := a.Amberflo.SetLifecycleStage(ctx, in.CustomerID, amberflo.StageOffboarded)
	if err != nil {
		if !httpx.IsPermanent(err) {
			return DeactivateResult{}, err // retried: the customer is disabled already, the retry only moves the stage
		}
		return DeactivateResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("customer %q deactivated, not offboarded: %v", in.CustomerID, err), ErrAmberfloOffboardRejected, err)
	}
	return DeactivateResult{Changed: changed, Offboarded: moved, AlreadyOffboarded: !moved}, nil
}

// DisableResult says what the deactivation step of deprovisioning did to
// the Amberflo customer: Changed, it was enabled and is now disabled
// (false: it already was).
type DisableResult struct {
	Changed bool `json:"changed"`
	DryRun  bool `json:"dry_run,omitempty"`
}

// DisableCustomer disables the customer in Amberflo (read, modify, write:
// Amberflo's PUT replaces the whole record), and nothing else: unlike
// DeactivateCustomer it leaves the lifecycle stage alone, so that the
// workflow can decide the move to OFFBOARDED, which Amberflo never takes
// back, on the state after this step however long it took. Disabling is
// reversible (enabled:true). Already disabled is success. A refusal is a
// non-retryable ErrAmberfloRejected; no answer is retried.
func (a *Activities) DisableCustomer(ctx context.Context, in AmberfloInput) (DisableResult, error) {
	if a.Amberflo == nil {
		a.logger(ctx).Info("dry run: amberflo not configured; customer not deactivated", "customer", in.CustomerID)
		return DisableResult{DryRun: true}, nil
	}
	_, changed, err := a.Amberflo.DeactivateCustomer(ctx, in.CustomerID)
	if err != nil {
		return DisableResult{}, classify(err, ErrAmberfloRejected)
	}
	return DisableResult{Changed: changed}, nil
}

// OffboardResult says what the last step of deprovisioning did to the
// Amberflo customer's lifecycle stage: Moved to OFFBOARDED now (false: it
// was there already).
type OffboardResult struct {
	Moved  bool `json:"moved"`
	DryRun bool `json:"dry_run,omitempty"`
}

// OffboardCustomer moves the customer's lifecycle stage to OFFBOARDED,
// which Amberflo never moves back; the workflow asks for it only once it
// has found, after the deactivation, that the money is still owed.
// Already OFFBOARDED is success. A refusal is a non-retryable
// ErrAmberfloOffboardRejected whose message says the stage was not moved;
// no answer is retried.
func (a *Activities) OffboardCustomer(ctx context.Context, in AmberfloInput) (OffboardResult, error) {
	if a.Amberflo == nil {
		a.logger(ctx).Info("dry run: amberflo not configured; customer not moved to OFFBOARDED", "customer", in.CustomerID)
		return OffboardResult{DryRun: true}, nil
	}
	moved, err := a.Amberflo.SetLifecycleStage(ctx, in.CustomerID, amberflo.StageOffboarded)
	if err != nil {
		if !httpx.IsPermanent(err) {
			return OffboardResult{}, err
		}
		return OffboardResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("customer %q not moved to OFFBOARDED: %v", in.CustomerID, err), ErrAmberfloOffboardRejected, err)
	}
	return OffboardResult{Moved: moved}, nil
}

// ControlPlaneInput asks the product's control plane for one action.
type ControlPlaneInput struct {
	Action           string    `json:"action"` // suspend, resume, deprovision
	CustomerID       string    `json:"customer_id"`
	StripeCustomerID string    `json:"stripe_customer_id"`
	IdempotencyKey   string    `json:"idempotency_key"`
	Reason           string    `json:"reason"`
	WorkflowID       string    `json:"workflow_id"`
	AmountDue        int64     `json:"amount_due"`
	Currency         string    `json:"currency"`
	RequestedAt      time.Time `json:"requested_at"`
}

// ControlPlaneResult is a successful action.
type ControlPlaneResult struct {
	AlreadyApplied bool `json:"already_applied,omitempty"`
	DryRun         bool `json:"dry_run,omitempty"`
}

// ControlPlane performs a suspend, resume or deprovision. 2xx and 409 are
// success; another 4xx is a non-retryable ErrControlPlaneRejected, which
// the workflow turns into a pause for an operator; 5xx is retried.
func (a *Activities) ControlPlane(ctx context.Context, in ControlPlaneInput) (ControlPlaneResult, error) {
	if a.Control == nil {
		a.logger(ctx).Info("dry run: control plane not configured; nothing done", "action", in.Action,
			"customer", in.CustomerID, "idempotency_key", in.IdempotencyKey)
		return ControlPlaneResult{DryRun: true}, nil
	}
	res, err := a.Control.Do(ctx, controlplane.Request{
		Action: controlplane.Action(in.Action), CustomerID: in.CustomerID, StripeCustomerID: in.StripeCustomerID,
		IdempotencyKey: in.IdempotencyKey, Reason: in.Reason, WorkflowID: in.WorkflowID,
		AmountDue: in.AmountDue, Currency: in.Currency, RequestedAt: in.RequestedAt,
	})
	if err != nil {
		return ControlPlaneResult{}, classify(err, ErrControlPlaneRejected)
	}
	return ControlPlaneResult{AlreadyApplied: res.AlreadyApplied}, nil
}

// AlertInput is one ops alert.
type AlertInput struct {
	Key              string   `json:"key"`
	Severity         string   `json:"severity"` // info, warning, critical
	Title            string   `json:"title"`
	Text             string   `json:"text"`
	CustomerID       string   `json:"customer_id,omitempty"`
	StripeCustomerID string   `json:"stripe_customer_id,omitempty"`
	WorkflowID       string   `json:"workflow_id,omitempty"`
	Fields           []string `json:"fields,omitempty"` // label, value, label, value…
}

// NotifyResult says whether a notification went out.
type NotifyResult struct {
	DryRun bool `json:"dry_run,omitempty"`
}

// Alert sends an ops alert to the Slack-compatible webhook, or logs it.
func (a *Activities) Alert(ctx context.Context, in AlertInput) (NotifyResult, error) {
	if a.Alerts == nil {
		a.logger(ctx).Warn("ops alert (no ALERT_WEBHOOK_URL; logged only)", "key", in.Key, "severity", in.Severity,
			"title", in.Title, "text", in.Text, "stripe_customer", in.StripeCustomerID)
		return NotifyResult{DryRun: true}, nil
	}
	al := notify.Alert{Key: in.Key, Severity: notify.Severity(in.Severity), Title: in.Title, Text: in.Text,
		CustomerID: in.CustomerID, StripeCustomerID: in.StripeCustomerID, WorkflowID: in.WorkflowID}
	for i := 0; i+1 < len(in.Fields); i += 2 {
		al.Fields = append(al.Fields, notify.Field{Label: in.Fields[i], Value: in.Fields[i+1]})
	}
	if err := a.Alerts.Send(ctx, al); err != nil {
		return NotifyResult{}, classify(err, ErrNotifyRejected)
	}
	return NotifyResult{}, nil
}

// NoticeInput is one customer notice. PayURL is where the customer pays
// the invoice, the Stripe invoice's hosted_invoice_url; empty, InvoiceURL
// is used when it is a Stripe hosted invoice page.
type NoticeInput struct {
	Key              string     `json:"key"`
	Type             string     `json:"type"`
	CustomerID       string     `json:"customer_id"`
	StripeCustomerID string     `json:"stripe_customer_id"`
	Stage            string     `json:"stage,omitempty"`
	AmountDue        int64      `json:"amount_due,omitempty"`
	Currency         string     `json:"currency,omitempty"`
	InvoiceURL       string     `json:"invoice_url,omitempty"`
	PayURL           string     `json:"pay_url,omitempty"`
	CardBrand        string     `json:"card_brand,omitempty"`
	CardLast4        string     `json:"card_last4,omitempty"`
	CardExpMonth     int        `json:"card_exp_month,omitempty"`
	CardExpYear      int        `json:"card_exp_year,omitempty"`
	NextActionAt     *time.Time `json:"next_action_at,omitempty"`
	Deadline         *time.Time `json:"deadline,omitempty"`
	Reason           string     `json:"reason,omitempty"`
	CreatedAt        time.Time  `json:"created_at"`
}

// Notice sends a signed customer notice to the product's mailer, or logs it.
// Every notice carries the customer's link to update their payment method
// (made here, where PUBLIC_URL and the secret are, not in the workflow),
// or the reason it has none, and the invoice's payment page when known.
func (a *Activities) Notice(ctx context.Context, in NoticeInput) (NotifyResult, error) {
	if a.Notices == nil {
		a.logger(ctx).Info("customer notice (no CUSTOMER_NOTICE_URL; logged only)", "key", in.Key, "type", in.Type,
			"stripe_customer", in.StripeCustomerID, "stage", in.Stage)
		return NotifyResult{DryRun: true}, nil
	}
	in = repairNotice(in, a.logger(ctx))
	pin := a.noticePin(ctx, in)
	if in.CreatedAt.IsZero() {
		in.CreatedAt = pin.Decided
	}
	n := notify.Notice{ID: in.Key, Type: notify.NoticeType(in.Type), CustomerID: in.CustomerID,
		StripeCustomerID: in.StripeCustomerID, Stage: in.Stage, AmountDue: in.AmountDue, Currency: in.Currency,
		InvoiceURL: in.InvoiceURL, PayURL: in.PayURL, NextActionAt: in.NextActionAt, Deadline: in.Deadline,
		Reason: in.Reason, CreatedAt: in.CreatedAt}
	if n.PayURL == "" && stripeHostedInvoice(in.InvoiceURL) {
		n.PayURL = in.InvoiceURL
	}
	n.UpdatePaymentMethodURL, n.LinksMissingReason = a.pinnedLink(ctx, in, pin)
	if in.CardLast4 != "" {
		n.Card = &notify.Card{Brand: in.CardBrand, Last4: in.CardLast4, ExpMonth: in.CardExpMonth, ExpYear: in.CardExpYear}
	}
	if err := a.Notices.Send(ctx, n); err != nil {
		return NotifyResult{}, classify(err, ErrNotifyRejected)
	}
	return NotifyResult{}, nil
}

// noticePin is what the first attempt at a notice decided that the
// clock or the worker's configuration could change: when it was decided
// (for a notice scheduled without CreatedAt) and its link to update the
// payment method, or why it has none. Every later attempt of the same
// activity, on any worker, reads it from the heartbeat Temporal hands it
// and sends the same body under the same idempotency key: one key, one
// request, across a PORTAL_LINK_SECRET rotation, a changed PUBLIC_URL or
// PORTAL_LINK_TTL, or a link that expired while the mailer was down. It
// holds what makes the link, not the link, which opens the customer's
// portal and has no place in Temporal's UI.
type noticePin struct {
	Decided time.Time        `json:"decided"`
	Missing string           `json:"missing,omitempty"`
	Link    *portallink.Made `json:"link,omitempty"`
}

// noticePin returns the pin of an earlier attempt, or decides it, and
// records it as this attempt's heartbeat (again, so that the attempt after
// this one finds it too) before anything is sent. A local activity has no
// heartbeat: it decides afresh.
func (a *Activities) noticePin(ctx context.Context, in NoticeInput) noticePin {
	inActivity := activity.IsActivity(ctx)
	var pin noticePin
	if inActivity && activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &pin); err != nil || pin.Decided.IsZero() {
			a.logger(ctx).Warn("notice: the earlier attempt's link is unreadable; deciding it again", "key", in.Key, "error", fmt.Sprint(err))
			pin = noticePin{}
		}
	}
	if pin.Decided.IsZero() {
		pin = a.decideLink(ctx, in)
	}
	if inActivity {
		activity.RecordHeartbeat(ctx, pin)
	}
	return pin
}

// decideLink is the notice's link to update the payment method, or why it
// has none. It expires PORTAL_LINK_TTL after the notice was decided.
func (a *Activities) decideLink(ctx context.Context, in NoticeInput) noticePin {
	now := a.now()
	pin := noticePin{Decided: in.CreatedAt}
	if pin.Decided.IsZero() {
		pin.Decided = now.UTC().Truncate(time.Second)
	}
	if a.PortalLinks == nil {
		pin.Missing = notify.LinksNotConfigured
		return pin
	}
	if in.StripeCustomerID == "" {
		pin.Missing = notify.LinksNoStripeCustomer
		return pin
	}
	_, made, err := a.PortalLinks.Make(in.StripeCustomerID, pin.Decided)
	switch {
	case err != nil:
		a.logger(ctx).Warn("notice sent without its portal link", "key", in.Key, "error", err)
		pin.Missing = notify.LinksNoStripeCustomer
	case !made.Expires.After(now):
		a.logger(ctx).Warn("notice sent without its portal link: decided longer than PORTAL_LINK_TTL ago", "key", in.Key, "decided", pin.Decided)
		pin.Missing = notify.LinksExpired
	default:
		pin.Link = &made
	}
	return pin
}

// pinnedLink makes the link pin describes: the same on every attempt.
// Only when the worker can no longer make it (links turned off, or the
// secret that signed it removed, which also stops it opening) does the
// notice go out with what the worker has now, and that is logged as an
// error: a receiver that compares bodies refuses it, which reaches ops.
func (a *Activities) pinnedLink(ctx context.Context, in NoticeInput, pin noticePin) (link, missing string) {
	if pin.Link == nil {
		return "", pin.Missing
	}
	if a.PortalLinks == nil {
		a.logger(ctx).Error("notice sent again without the link an earlier attempt carried: portal links are no longer configured", "key", in.Key)
		return "", notify.LinksNotConfigured
	}
	link, err := a.PortalLinks.Again(in.StripeCustomerID, *pin.Link)
	if err != nil {
		// The secret is gone, so the earlier link no longer opens: one
		// with today's secret, for the same lifetime, does.
		a.logger(ctx).Error("notice sent again with another link than an earlier attempt: that link can no longer be made", "key", in.Key, "error", err)
		if link, _, err = a.PortalLinks.Make(in.StripeCustomerID, pin.Decided); err != nil {
			return "", notify.LinksNoStripeCustomer
		}
		return link, ""
	}
	if !pin.Link.Expires.After(a.now()) {
		// The same body as before, under the same key; the customer's
		// click finds the "link expired" page, which sends them to the
		// newest email or support.
		a.logger(ctx).Warn("notice sent again after its portal link expired", "key", in.Key, "expired", pin.Link.Expires)
	}
	return link, ""
}

// stripeHostedInvoice reports whether u is a Stripe hosted invoice page,
// where the customer can pay.
func stripeHostedInvoice(u string) bool {
	p, err := url.Parse(u)
	return err == nil && p.Scheme == "https" && p.Host == "invoice.stripe.com" && len(p.Path) > 1
}

// classify turns a peer's error into a Temporal one: a permanent error
// (httpx.IsPermanent: a rejection, an unreadable answer, an invalid
// request) becomes a non-retryable application error of errType, for the
// workflow to act on; anything else (no answer, 408, 429, 5xx, the
// activity's own context ending) is returned as is, for Temporal to retry.
func classify(err error, errType string) error {
	if !httpx.IsPermanent(err) {
		return err
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprint(err), errType, err)
}

// repairNotice leaves out the optional fields of a notice that the mailer
// would refuse, so that a cosmetic fault never costs the customer the
// notice: an invoice or payment link that is not an absolute http(s) URL
// (Amberflo may give a path), a card whose last four are not four digits or
// whose expiry month is not a month.
func repairNotice(in NoticeInput, log *slog.Logger) NoticeInput {
	if in.InvoiceURL != "" && !notify.AbsoluteURL(in.InvoiceURL) {
		log.Warn("notice sent without its invoice link: not an absolute URL", "key", in.Key)
		in.InvoiceURL = ""
	}
	if in.PayURL != "" && !notify.AbsoluteURL(in.PayURL) {
		log.Warn("notice sent without its payment link: not an absolute URL", "key", in.Key)
		in.PayURL = ""
	}
	if in.CardLast4 != "" && (len(in.CardLast4) != 4 || strings.Trim(in.CardLast4, "0123456789") != "") ||
		in.CardExpMonth < 0 || in.CardExpMonth > 12 {
		log.Warn("notice sent without its card details: not valid", "key", in.Key)
		in.CardBrand, in.CardLast4, in.CardExpMonth, in.CardExpYear = "", "", 0, 0
	}
	return in
}
