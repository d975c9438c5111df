package workflows

import (
	"math"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"dunning/activities"
	"dunning/amberflo"
)

// reportMemoChange adds the RecoveryMemo upsert (a command) to lives that
// follow the money rules. Metrics issue no command and need no version.
const reportMemoChange = "report-memo"

// moneyOnceChange counts the money of an invoice once, however many of
// the life's intents pay it, and recovered money as what paid (not what
// was owed) in the amount metrics.
const moneyOnceChange = "money-once"

// The facts a recovery counts, each once: the SDK emits nothing while it
// replays, so a fact counted when it happened is not counted again.

// countStarted counts a life that opens.
func (r *recovery) countStarted(ctx workflow.Context) {
	workflow.GetMetricsHandler(ctx).Counter(MetricRecoveriesStarted).Inc(1)
}

// countFailed counts the amount of an intent recorded for the first time.
// An intent for an invoice another intent of the life already owes
// counts only what it owes beyond it.
func (r *recovery) countFailed(ctx workflow.Context, in *Intent) {
	amount := in.Amount
	if before, ok := owedBefore(&r.s, in); ok && r.version(ctx, moneyOnceChange, 1) == 1 {
		amount = max(in.Amount-before, 0)
	}
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{TagCurrency: strings.ToLower(in.Currency)}).
		Counter(MetricFailedAmount).Inc(amount)
}

// owedBefore is the largest amount the life's other intents of in's
// invoice owe, and whether there is any.
func owedBefore(s *RecoveryState, in *Intent) (int64, bool) {
	var most int64
	found := false
	for _, o := range s.Intents {
		if o != in && in.InvoiceID != "" && o.InvoiceID == in.InvoiceID && strings.EqualFold(o.Currency, in.Currency) {
			most, found = max(most, o.Amount), true
		}
	}
	return most, found
}

// countAttempt counts one confirm dunning made and what Stripe answered.
func (r *recovery) countAttempt(ctx workflow.Context, res activities.RetryResult, err error) {
	result, class := attemptLabels(res, err)
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{TagResult: result, TagDeclineClass: class}).
		Counter(MetricPaymentAttempts).Inc(1)
}

// countEnded counts the end of a life: its outcome, the money paid, and
// for a recovery the time from the first failure.
func (r *recovery) countEnded(ctx workflow.Context) {
	h := workflow.GetMetricsHandler(ctx)
	o := endOutcome(&r.s, r.version(ctx, moneyOnceChange, 1) == 1)
	h.WithTags(map[string]string{TagOutcome: string(o)}).Counter(MetricRecoveriesEnded).Inc(1)
	if r.version(ctx, moneyOnceChange, 1) == 1 {
		for _, m := range CountOnce(intentMoney(r.s.Intents)) {
			if m.Recovered > 0 {
				h.WithTags(map[string]string{TagCurrency: m.Currency}).Counter(MetricRecoveredAmount).Inc(m.Recovered)
			}
		}
	} else {
		for _, p := range paidByCurrency(&r.s) {
			h.WithTags(map[string]string{TagCurrency: p.currency}).Counter(MetricRecoveredAmount).Inc(p.amount)
		}
	}
	if o.Recovered() {
		h.Timer(MetricTimeToRecover).Record(timeToRecover(&r.s, workflow.Now(ctx)))
	}
}

// attemptLabels are the result and decline_class of one confirm.
func attemptLabels(res activities.RetryResult, err error) (string, string) {
	if methodRefused(err) {
		return AttemptMethodRefused, DeclineClassNone
	}
	if err != nil {
		return AttemptError, DeclineClassNone
	}
	switch res.Outcome {
	case activities.RetrySucceeded:
		return AttemptSucceeded, DeclineClassNone
	case activities.RetryProcessing:
		return AttemptProcessing, DeclineClassNone
	case activities.RetryRequiresAction:
		return AttemptRequiresAction, declineClass(res.Decline)
	}
	return AttemptDeclined, declineClass(res.Decline)
}

func declineClass(d activities.Decline) string {
	if c := activities.ClassifyDecline(d).Class; c != "" {
		return string(c)
	}
	return DeclineClassNone
}

// isRetry reports whether a resolution's why names a retry round of
// dunning's: paid by dunning's own confirm.
func isRetry(why string) bool {
	return why == whyCardUpdate || why == whyOperator || why == whyHeld || why == whyJoined || strings.HasPrefix(why, whyScheduled)
}

// lastPaid is the intent paid last, or nil.
func lastPaid(s *RecoveryState) *Intent {
	var last *Intent
	for _, in := range s.Intents {
		if in.State == IntentPaid && (last == nil || !in.ResolvedAt.Before(last.ResolvedAt)) {
			last = in
		}
	}
	return last
}

// endOutcome is how a life that ended ended. A recovery is by retry when
// the intent paid last was paid by one of dunning's confirms, by card
// update when that confirm came of a card update, else by the customer
// (who paid, or whose invoice was marked paid for money taken outside
// Stripe). With creditForgives, a life whose paid invoices Stripe says
// were paid without money (credit notes, the credit balance) was
// forgiven, not recovered: waived, as an invoice written off in Stripe.
func endOutcome(s *RecoveryState, creditForgives bool) Outcome {
	switch s.Stage {
	case StageWaived:
		return OutcomeWaived
	case StageDeprovisioned:
		return OutcomeDeprovisioned
	}
	if creditForgives && paidWithoutMoney(s) {
		return OutcomeWaived
	}
	last := lastPaid(s)
	switch {
	case last == nil:
		return OutcomeRecoveredByCustomer
	case last.ResolvedBy == whyCardUpdate:
		return OutcomeRecoveredByCardUpdate
	case isRetry(last.ResolvedBy):
		return OutcomeRecoveredByRetry
	}
	return OutcomeRecoveredByCustomer
}

// paidWithoutMoney reports whether intents were paid, and Stripe said of
// each that no money paid it.
func paidWithoutMoney(s *RecoveryState) bool {
	some := false
	for _, in := range s.Intents {
		if in.State != IntentPaid {
			continue
		}
		if in.PaidAmount == nil || *in.PaidAmount > 0 {
			return false
		}
		some = true
	}
	return some
}

// timeToRecover runs from the first failure to the last payment (now when
// none is dated).
func timeToRecover(s *RecoveryState, now time.Time) time.Duration {
	end := now
	if last := lastPaid(s); last != nil && !last.ResolvedAt.IsZero() {
		end = last.ResolvedAt
	}
	return max(end.Sub(s.FirstFailureAt), 0)
}

type currencyAmount struct {
	currency string
	amount   int64
}

// paidByCurrency sums the intents paid, per lower-case currency, in the
// order the currencies first appear.
func paidByCurrency(s *RecoveryState) []currencyAmount {
	var paid []currencyAmount
	for _, in := range s.Intents {
		if in.State != IntentPaid {
			continue
		}
		c := strings.ToLower(in.Currency)
		i := slices.IndexFunc(paid, func(p currencyAmount) bool { return p.currency == c })
		if i < 0 {
			paid = append(paid, currencyAmount{currency: c})
			i = len(paid) - 1
		}
		paid[i].amount += in.Amount
	}
	return paid
}

// IntentMoney is the money of one intent, for CountOnce.
type IntentMoney struct {
	// Invoice is the Stripe invoice the intent pays, "" for none.
	Invoice  string
	Currency string
	// Amount is what the intent owed; Paid whether it was paid, and
	// PaidAmount the money kept of what paid it (nil: Amount stands for
	// it, unless PaidUnknown says that nobody knows it).
	Amount      int64
	Paid        bool
	PaidAmount  *int64
	PaidUnknown bool
}

// CurrencyMoney is the money of one (lower-case) currency, in minor
// units: what failed, and of it what was recovered (money kept), what
// was credited (settled without money kept: credit notes, the credit
// balance, refunds), and what was settled for a sum nobody reported
// (Unknown).
type CurrencyMoney struct {
	Currency  string
	Failed    int64
	Recovered int64
	Credited  int64
	Unknown   int64
}

// CountOnce sums the money per currency, in the order the currencies
// first appear. The intents of one invoice (a failed intent, then a new
// one after the first was canceled) owe its money once: the largest
// amount among them counts, and the largest paid. What was recovered is
// the money kept, not what was owed: an invoice a credit note or credit
// balance paid, or whose payment was refunded, recovers only what was
// kept, maybe nothing, and the rest of it was credited. A debt settled
// for a sum nobody reported is neither: it counts as unknown.
func CountOnce(ms []IntentMoney) []CurrencyMoney {
	type key struct{ currency, invoice string }
	type debt struct {
		failed, recovered int64
		paid, paidUnknown bool
	}
	var out []CurrencyMoney
	at := func(c string) *CurrencyMoney {
		i := slices.IndexFunc(out, func(m CurrencyMoney) bool { return m.Currency == c })
		if i < 0 {
			out = append(out, CurrencyMoney{Currency: c})
			i = len(out) - 1
		}
		return &out[i]
	}
	add := func(cm *CurrencyMoney, d debt) {
		cm.Failed += d.failed
		switch {
		case d.paid:
			cm.Recovered += d.recovered
			cm.Credited += max(d.failed-d.recovered, 0)
		case d.paidUnknown:
			cm.Unknown += d.failed
		}
	}
	invoices := map[key]*debt{}
	var order []key
	for _, m := range ms {
		c := strings.ToLower(m.Currency)
		cm := at(c)
		d := debt{failed: m.Amount}
		switch {
		case m.Paid && m.PaidAmount != nil:
			d.paid, d.recovered = true, max(*m.PaidAmount, 0)
		case m.Paid && m.PaidUnknown:
			d.paidUnknown = true
		case m.Paid:
			d.paid, d.recovered = true, m.Amount
		}
		if m.Invoice == "" {
			add(cm, d)
			continue
		}
		k := key{c, m.Invoice}
		inv := invoices[k]
		if inv == nil {
			inv = &debt{}
			invoices[k] = inv
			order = append(order, k)
		}
		inv.failed = max(inv.failed, d.failed)
		if d.paid {
			inv.paid, inv.recovered = true, max(inv.recovered, d.recovered)
		}
		inv.paidUnknown = inv.paidUnknown || d.paidUnknown
	}
	for _, k := range order {
		add(at(k.currency), *invoices[k])
	}
	return out
}

// intentMoney is the money of a life's intents, for CountOnce.
func intentMoney(ins []*Intent) []IntentMoney {
	out := make([]IntentMoney, 0, len(ins))
	for _, in := range ins {
		out = append(out, IntentMoney{Invoice: in.InvoiceID, Currency: in.Currency, Amount: in.Amount,
			Paid: in.State == IntentPaid, PaidAmount: in.PaidAmount, PaidUnknown: in.PaidAmountUnknown})
	}
	return out
}

// AmberfloPaid is the money kept of an intent that Amberflo found
// settled, as Intent.PaidAmount and PaidAmountUnknown: the Amberflo
// invoice's total in minor units of the intent's currency, and no more
// than the intent owed (the Amberflo invoice may bill more than this
// one payment), when Amberflo said SETTLED with a readable total.
// Otherwise nobody said how much: NOT_NEEDED (no payment was needed),
// no total, a total that is not a sum of money. That is reported as
// unknown, never guessed from what the intent owed.
func AmberfloPaid(inv activities.AmberfloInvoice, owed int64, currency string) (*int64, bool) {
	if amberflo.PaymentStatus(inv.PaymentStatus).Normal() != amberflo.PaymentSettled || !inv.AmountKnown {
		return nil, true
	}
	minor, ok := minorUnits(inv.Amount, currency)
	if !ok {
		return nil, true
	}
	paid := min(minor, owed)
	return &paid, false
}

// minorUnits converts an amount in major units of currency (49.5 USD)
// to minor units (4950), rounded to the nearest; false for an amount
// that is negative, not finite, or too large to be money.
func minorUnits(major float64, currency string) (int64, bool) {
	c := strings.ToUpper(currency)
	scale := 100.0
	switch {
	case zeroDecimal[c]:
		scale = 1
	case threeDecimal[c]:
		scale = 1000
	}
	v := math.Round(major * scale)
	if math.IsNaN(v) || v < 0 || v > 1e15 {
		return 0, false
	}
	return int64(v), true
}

// threeDecimal are the currencies whose minor unit is a thousandth.
var threeDecimal = map[string]bool{"BHD": true, "JOD": true, "KWD": true, "OMR": true, "TND": true}

// maxMemoIntents bounds the intents a memo lists.
const maxMemoIntents = 50

// memoOf is the RecoveryMemo of a life as it stands.
func memoOf(s *RecoveryState, terminal, creditForgives bool, now time.Time) RecoveryMemo {
	m := RecoveryMemo{Lifecycle: s.Lifecycle, FirstFailureAt: s.FirstFailureAt, Stage: s.Stage}
	if terminal {
		m.Outcome, m.EndedAt = endOutcome(s, creditForgives), now
	}
	for _, in := range s.Intents {
		if len(m.Intents) == maxMemoIntents {
			break
		}
		mi := MemoIntent{ID: in.ID, Amount: in.Amount, Currency: strings.ToLower(in.Currency), State: in.State,
			DeclineCode: in.LastDecline, ResolvedAt: in.ResolvedAt, Invoice: in.InvoiceID, PaidAmount: in.PaidAmount,
			PaidAmountUnknown: in.PaidAmountUnknown}
		if in.Decline != nil {
			mi.DeclineClass = string(in.Decline.Class)
		}
		m.Intents = append(m.Intents, mi)
	}
	return m
}

func sameMemo(a, b RecoveryMemo) bool {
	return a.Lifecycle == b.Lifecycle && a.FirstFailureAt.Equal(b.FirstFailureAt) && a.Stage == b.Stage &&
		a.Outcome == b.Outcome && a.EndedAt.Equal(b.EndedAt) && slices.EqualFunc(a.Intents, b.Intents, sameMemoIntent)
}

func sameMemoIntent(a, b MemoIntent) bool {
	pa, pb := a.PaidAmount, b.PaidAmount
	a.PaidAmount, b.PaidAmount = nil, nil
	return a == b && (pa == nil) == (pb == nil) && (pa == nil || *pa == *pb)
}

// upsertMemo keeps the life's RecoveryMemo current, upserting only what
// changed since the last upsert of this run.
func (r *recovery) upsertMemo(ctx workflow.Context) error {
	if r.s.FirstFailureAt.IsZero() || r.version(ctx, reportMemoChange, 1) < 1 {
		return nil
	}
	terminal := r.terminal()
	m := memoOf(&r.s, terminal, terminal && r.version(ctx, moneyOnceChange, 1) == 1, workflow.Now(ctx))
	if r.memo != nil && sameMemo(*r.memo, m) {
		return nil
	}
	if err := workflow.UpsertMemo(ctx, map[string]any{RecoveryMemoKey: m}); err != nil {
		return err
	}
	r.memo = &m
	return nil
}

// FormatMoney formats minor units for people, e.g. "USD 49.00".
func FormatMoney(amount int64, currency string) string { return money(amount, currency) }
