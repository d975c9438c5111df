package workflows

import (
	"errors"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"dunning/activities"
)

func TestEndOutcome(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 3, 2, h, 0, 0, 0, time.UTC) }
	paid := func(id, by string, h int) *Intent {
		return &Intent{ID: id, State: IntentPaid, ResolvedBy: by, ResolvedAt: at(h)}
	}
	paidWith := func(in *Intent, amount int64) *Intent { in.PaidAmount = &amount; return in }
	for _, tc := range []struct {
		name    string
		stage   Stage
		intents []*Intent
		want    Outcome
	}{
		{"scheduled retry", StageRecovered, []*Intent{paid("pi_1", whyScheduled+"1", 2)}, OutcomeRecoveredByRetry},
		{"operator's retry", StageRecovered, []*Intent{paid("pi_1", whyOperator, 2)}, OutcomeRecoveredByRetry},
		{"held retry", StageRecovered, []*Intent{paid("pi_1", whyHeld, 2)}, OutcomeRecoveredByRetry},
		{"card update", StageRecovered, []*Intent{paid("pi_1", whyCardUpdate, 2)}, OutcomeRecoveredByCardUpdate},
		{"paid by a signal", StageRecovered, []*Intent{paid("pi_1", "payment_intent.succeeded", 2)}, OutcomeRecoveredByCustomer},
		{"found paid at a retry", StageRecovered, []*Intent{paid("pi_1", "customer (found paid at "+whyScheduled+"1)", 2)}, OutcomeRecoveredByCustomer},
		{"found paid by the owed check", StageRecovered, []*Intent{paid("pi_1", "stripe (succeeded, before a charge)", 2)}, OutcomeRecoveredByCustomer},
		{"amberflo settled", StageRecovered, []*Intent{paid("pi_1", "amberflo invoice SETTLED (before suspension)", 2)}, OutcomeRecoveredByCustomer},
		{"the last paid decides: retry after the customer", StageRecovered,
			[]*Intent{paid("pi_1", "invoice.paid", 1), paid("pi_2", whyScheduled+"2", 3)}, OutcomeRecoveredByRetry},
		{"the last paid decides: customer after a card update", StageRecovered,
			[]*Intent{paid("pi_1", whyCardUpdate, 3), paid("pi_2", "invoice.paid", 4)}, OutcomeRecoveredByCustomer},
		{"canceled only, recovered", StageRecovered, []*Intent{{ID: "pi_1", State: IntentCanceled}}, OutcomeRecoveredByCustomer},
		{"waived", StageWaived, []*Intent{{ID: "pi_1", State: IntentWaived}}, OutcomeWaived},
		{"deprovisioned, paid late", StageDeprovisioned, []*Intent{paid("pi_1", "invoice.paid", 9)}, OutcomeDeprovisioned},
		{"paid out of band", StageRecovered, []*Intent{paidWith(paid("pi_1", "invoice.paid (out of band)", 2), 4900)}, OutcomeRecoveredByCustomer},
		{"fully credited: forgiven, not recovered", StageRecovered, []*Intent{paidWith(paid("pi_1", "invoice.paid", 2), 0)}, OutcomeWaived},
		{"credited by the owed check", StageRecovered,
			[]*Intent{paidWith(paid("pi_1", "stripe (invoice in_1 has nothing left to pay, before a charge)", 2), 0)}, OutcomeWaived},
		{"one credited, one paid: recovered", StageRecovered,
			[]*Intent{paidWith(paid("pi_1", "invoice.paid", 2), 0), paidWith(paid("pi_2", whyScheduled+"1", 3), 4900)}, OutcomeRecoveredByRetry},
		{"credited, another paid without a known amount", StageRecovered,
			[]*Intent{paidWith(paid("pi_1", "invoice.paid", 2), 0), paid("pi_2", "invoice.paid", 3)}, OutcomeRecoveredByCustomer},
		{"credited, one canceled", StageRecovered,
			[]*Intent{{ID: "pi_1", State: IntentCanceled}, paidWith(paid("pi_2", "invoice.paid", 3), 0)}, OutcomeWaived},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := RecoveryState{Stage: tc.stage, Intents: tc.intents}
			if got := endOutcome(&s, true); got != tc.want {
				t.Errorf("outcome %s, want %s", got, tc.want)
			}
			if got := endOutcome(&s, false); got != tc.want && got != OutcomeRecoveredByCustomer && got != OutcomeRecoveredByRetry {
				t.Errorf("before money-once: outcome %s", got)
			}
		})
	}
}

func TestAttemptLabels(t *testing.T) {
	for _, tc := range []struct {
		name          string
		res           activities.RetryResult
		err           error
		result, class string
	}{
		{"succeeded", activities.RetryResult{Outcome: activities.RetrySucceeded}, nil, AttemptSucceeded, DeclineClassNone},
		{"processing", activities.RetryResult{Outcome: activities.RetryProcessing}, nil, AttemptProcessing, DeclineClassNone},
		{"soft decline", activities.RetryResult{Outcome: activities.RetryDeclined, Decline: activities.Decline{Code: "card_declined", DeclineCode: "insufficient_funds"}}, nil, AttemptDeclined, string(activities.DeclineSoft)},
		{"stop decline", activities.RetryResult{Outcome: activities.RetryDeclined, Decline: activities.Decline{Code: "card_declined", DeclineCode: "stolen_card"}}, nil, AttemptDeclined, string(activities.DeclineStop)},
		{"authentication", activities.RetryResult{Outcome: activities.RetryRequiresAction, Decline: activities.Decline{IntentStatus: "requires_action"}}, nil, AttemptRequiresAction, string(activities.DeclineAuthentication)},
		{"stripe refused", activities.RetryResult{}, errors.New("400"), AttemptError, DeclineClassNone},
		{"stripe refused another parameter", activities.RetryResult{}, temporal.NewNonRetryableApplicationError("400", activities.ErrStripeRejected, nil,
			activities.StripeRefusal{Status: 400, Type: "invalid_request_error", Param: "amount"}), AttemptError, DeclineClassNone},
		{"stripe refused the payment method: removed since it was chosen", activities.RetryResult{},
			temporal.NewNonRetryableApplicationError("400", activities.ErrStripeRejected, nil,
				activities.StripeRefusal{Status: 400, Type: "invalid_request_error", Code: "resource_missing", Param: "payment_method"}),
			AttemptMethodRefused, DeclineClassNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r, c := attemptLabels(tc.res, tc.err); r != tc.result || c != tc.class {
				t.Errorf("labels %s/%s, want %s/%s", r, c, tc.result, tc.class)
			}
		})
	}
}

func TestTimeToRecoverRunsToTheLastPayment(t *testing.T) {
	ff := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	s := RecoveryState{FirstFailureAt: ff, Intents: []*Intent{
		{State: IntentPaid, ResolvedAt: ff.Add(5 * time.Hour)},
		{State: IntentPaid, ResolvedAt: ff.Add(2 * time.Hour)},
		{State: IntentCanceled, ResolvedAt: ff.Add(9 * time.Hour)},
	}}
	if d := timeToRecover(&s, ff.Add(10*time.Hour)); d != 5*time.Hour {
		t.Errorf("time to recover %s, want 5h", d)
	}
}

func TestCountOnce(t *testing.T) {
	p := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		name string
		in   []IntentMoney
		want []CurrencyMoney
	}{
		{"nothing", nil, nil},
		{"one paid intent, amount unknown: its amount", []IntentMoney{{Invoice: "in_1", Currency: "USD", Amount: 4900, Paid: true}},
			[]CurrencyMoney{{"usd", 4900, 4900, 0, 0}}},
		{"open intent", []IntentMoney{{Invoice: "in_1", Currency: "usd", Amount: 4900}}, []CurrencyMoney{{"usd", 4900, 0, 0, 0}}},
		{"fully credited", []IntentMoney{{Invoice: "in_1", Currency: "usd", Amount: 4900, Paid: true, PaidAmount: p(0)}},
			[]CurrencyMoney{{"usd", 4900, 0, 4900, 0}}},
		{"partly credited", []IntentMoney{{Invoice: "in_1", Currency: "usd", Amount: 4900, Paid: true, PaidAmount: p(1900)}},
			[]CurrencyMoney{{"usd", 4900, 1900, 3000, 0}}},
		{"two intents of one invoice, the second paid", []IntentMoney{
			{Invoice: "in_1", Currency: "usd", Amount: 4900},
			{Invoice: "in_1", Currency: "usd", Amount: 4900, Paid: true, PaidAmount: p(4900)},
		}, []CurrencyMoney{{"usd", 4900, 4900, 0, 0}}},
		{"two intents of one invoice, both found paid", []IntentMoney{
			{Invoice: "in_1", Currency: "usd", Amount: 4900, Paid: true},
			{Invoice: "in_1", Currency: "usd", Amount: 4900, Paid: true},
		}, []CurrencyMoney{{"usd", 4900, 4900, 0, 0}}},
		{"intents without an invoice each count", []IntentMoney{
			{Currency: "usd", Amount: 100, Paid: true}, {Currency: "usd", Amount: 200},
		}, []CurrencyMoney{{"usd", 300, 100, 0, 0}}},
		{"two invoices, two currencies, in order of appearance", []IntentMoney{
			{Invoice: "in_2", Currency: "eur", Amount: 500},
			{Invoice: "in_1", Currency: "usd", Amount: 4900, Paid: true},
			{Invoice: "in_2", Currency: "EUR", Amount: 500, Paid: true, PaidAmount: p(500)},
		}, []CurrencyMoney{{"eur", 500, 500, 0, 0}, {"usd", 4900, 4900, 0, 0}}},
		{"settled for a sum nobody reported: unknown, not recovered", []IntentMoney{
			{Invoice: "in_1", Currency: "usd", Amount: 4900, Paid: true, PaidUnknown: true},
		}, []CurrencyMoney{{"usd", 4900, 0, 0, 4900}}},
		{"refunded in part after it paid: what was kept", []IntentMoney{
			{Invoice: "in_1", Currency: "usd", Amount: 4900},
			{Invoice: "in_1", Currency: "usd", Amount: 4900, Paid: true, PaidAmount: p(4000)},
		}, []CurrencyMoney{{"usd", 4900, 4000, 900, 0}}},
		{"one intent of an invoice known, another unknown: the known one", []IntentMoney{
			{Invoice: "in_1", Currency: "usd", Amount: 4900, Paid: true, PaidUnknown: true},
			{Invoice: "in_1", Currency: "usd", Amount: 4900, Paid: true, PaidAmount: p(4900)},
		}, []CurrencyMoney{{"usd", 4900, 4900, 0, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CountOnce(tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("CountOnce = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestAmberfloPaid(t *testing.T) {
	settled := func(amount float64, known bool) activities.AmberfloInvoice {
		return activities.AmberfloInvoice{Found: true, Amount: amount, AmountKnown: known, PaymentStatus: "SETTLED", Paid: true}
	}
	for _, tc := range []struct {
		name     string
		inv      activities.AmberfloInvoice
		owed     int64
		currency string
		paid     int64 // -1: unknown
	}{
		{"settled for less than the intent", settled(30.5, true), 4900, "usd", 3050},
		{"settled for what the intent owed", settled(49, true), 4900, "USD", 4900},
		{"settled for more: no more than the intent owed", settled(120, true), 4900, "usd", 4900},
		{"a fraction of a cent rounds", settled(30.505, true), 4900, "usd", 3051},
		{"settled for nothing", settled(0, true), 4900, "usd", 0},
		{"a zero-decimal currency", settled(4900, true), 5000, "jpy", 4900},
		{"a three-decimal currency", settled(1.25, true), 5000, "kwd", 1250},
		{"no total", settled(0, false), 4900, "usd", -1},
		{"a negative total", settled(-5, true), 4900, "usd", -1},
		{"NOT_NEEDED: no payment was needed", activities.AmberfloInvoice{Found: true, Amount: 49, AmountKnown: true, PaymentStatus: "NOT_NEEDED", Paid: true}, 4900, "usd", -1},
		{"settled in lower case", activities.AmberfloInvoice{Found: true, Amount: 10, AmountKnown: true, PaymentStatus: "settled", Paid: true}, 4900, "usd", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			paid, unknown := AmberfloPaid(tc.inv, tc.owed, tc.currency)
			switch {
			case tc.paid < 0 && (!unknown || paid != nil):
				t.Errorf("AmberfloPaid = %v, %v; want unknown", paid, unknown)
			case tc.paid >= 0 && (unknown || paid == nil || *paid != tc.paid):
				t.Errorf("AmberfloPaid = %v, %v; want %d", paid, unknown, tc.paid)
			}
		})
	}
}
