// Package report computes what dunning recovered, from the RecoveryMemo
// every recovery keeps in its memo: one visibility listing, no
// per-workflow reads, so that it stays fast at 100,000 recoveries.
// Recoveries begun before dunning kept the memo are counted apart, by
// stage, as recoveries without figures.
package report

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"dunning/workflows"
)

// Window selects the recoveries whose first failure is in [Since, Until).
type Window struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
}

// Contains reports whether t is in the window.
func (w Window) Contains(t time.Time) bool { return !t.Before(w.Since) && t.Before(w.Until) }

// Report is what dunning recovered in a window.
type Report struct {
	Window Window `json:"window"`
	// Recoveries counts the lives (one customer's recovery from a first
	// failure to its end) whose first failure is in the window.
	Recoveries int `json:"recoveries"`
	Recovered  int `json:"recovered"`
	InProgress int `json:"in_progress"`
	// Stopped counts the lives whose last run was terminated, failed,
	// timed out or canceled before it reached an outcome: an operator or
	// an error ended them in Temporal, not dunning. They stay in the
	// denominator and are neither in progress nor recovered.
	Stopped int `json:"stopped"`
	// RecoveryRate is Recovered / Recoveries; in-progress recoveries stay
	// in the denominator.
	RecoveryRate   float64           `json:"recovery_rate"`
	Outcomes       []Count           `json:"outcomes"`
	Currencies     []CurrencyFigures `json:"currencies"`
	TimeToRecover  TimeToRecover     `json:"time_to_recover"`
	DeclineCodes   []DeclineFigures  `json:"decline_codes"`
	DeclineClasses []DeclineFigures  `json:"decline_classes"`
	// WithoutFigures are the recoveries that keep no memo; none of the
	// figures above counts them.
	WithoutFigures WithoutFigures `json:"without_figures"`
}

// WithoutFigures counts the lives whose runs keep no RecoveryMemo: begun
// before dunning kept one, or so new that nothing is recorded yet. Their
// amounts, outcomes and first failures are not known; visibility still
// says how many there are and in which stage each stands (or ended).
// They are selected by the start of the run that holds the life's end,
// the nearest to the first failure visibility knows.
type WithoutFigures struct {
	Count int `json:"count"`
	// Stages counts them by RecoveryStage, in the order of the stages'
	// lifecycle, "none" for a run that has not set it; stages with none
	// left out.
	Stages []Count `json:"stages"`
}

// Count is a number of recoveries under a name.
type Count struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// CurrencyFigures are the money of one currency, in minor units.
type CurrencyFigures struct {
	Currency           string `json:"currency"`
	FailedCustomers    int    `json:"failed_customers"`
	FailedAmount       int64  `json:"failed_amount"`
	RecoveredCustomers int    `json:"recovered_customers"`
	// RecoveredAmount is the money kept of what failed. Of the rest,
	// CreditedAmount was settled without money kept (credit notes, the
	// credit balance, refunds) and UnknownAmount was found settled for a
	// sum nobody reported; neither is recovered money.
	RecoveredAmount int64 `json:"recovered_amount"`
	CreditedAmount  int64 `json:"credited_amount"`
	UnknownAmount   int64 `json:"settled_unknown_amount"`
	// RecoveryRate is RecoveredAmount / FailedAmount.
	RecoveryRate float64 `json:"recovery_rate"`
}

// TimeToRecover is over the recovered recoveries, first failure to the
// last payment (nearest-rank percentiles).
type TimeToRecover struct {
	Count   int     `json:"count"`
	MedianS float64 `json:"median_seconds"`
	P90S    float64 `json:"p90_seconds"`
}

// DeclineFigures count the intents that last declined with one code or
// class, and how many of them were paid in the end.
type DeclineFigures struct {
	Name    string `json:"name"`
	Intents int    `json:"intents"`
	Paid    int    `json:"paid"`
	// PaidRate is Paid / Intents.
	PaidRate float64 `json:"paid_rate"`
}

// None names an intent without a decline code or class.
const None = "none"

// Build is the report of the runs listed for window w: the figures of
// the lives that keep a memo, and the count of those that keep none.
func Build(w Window, runs []Run) Report {
	latest := latestRuns(runs)
	memos := make([]workflows.RecoveryMemo, 0, len(latest))
	stopped := map[string]bool{}
	for _, r := range latest {
		memos = append(memos, *r.Memo)
		if r.Memo.Outcome == "" && stoppedStatus(r.Status) {
			stopped[r.Memo.Lifecycle] = true
		}
	}
	rep := compute(w, memos, stopped)
	rep.WithoutFigures = withoutFigures(w, runs)
	return rep
}

// stoppedStatus reports whether a run closed in a way that ends its
// life without an outcome: no next run carries it on.
func stoppedStatus(st enumspb.WorkflowExecutionStatus) bool {
	switch st {
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED,
		enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return true
	}
	return false
}

// stageOrder is the order in which stages are listed.
var stageOrder = []workflows.Stage{workflows.StagePastDue, workflows.StageSuspended, workflows.StageRecovered,
	workflows.StageWaived, workflows.StageDeprovisioned}

// withoutFigures counts the lives of the runs in w that keep no memo.
// A run that continued as new in a stage that does not end a life
// handed the life on to its next run, which counts it (with figures
// when it keeps a memo); every other run holds a life's end or its
// present, and counts once.
func withoutFigures(w Window, runs []Run) WithoutFigures {
	stages := map[workflows.Stage]int{}
	var wf WithoutFigures
	for _, r := range runs {
		if r.Memo != nil || !w.Contains(r.StartedAt) {
			continue
		}
		if r.Status == enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW && !endsLife(r.Stage) {
			continue
		}
		wf.Count++
		stages[r.Stage]++
	}
	wf.Stages = []Count{}
	for _, st := range append(slices.Clone(stageOrder), "") {
		if n := stages[st]; n > 0 {
			wf.Stages = append(wf.Stages, Count{Name: cmp.Or(string(st), None), Count: n})
			delete(stages, st)
		}
	}
	// Stages this version does not know, by name.
	for _, st := range slices.Sorted(maps.Keys(stages)) {
		wf.Stages = append(wf.Stages, Count{Name: string(st), Count: stages[st]})
	}
	return wf
}

// endsLife reports whether a life in stage st has ended.
func endsLife(st workflows.Stage) bool {
	return st == workflows.StageRecovered || st == workflows.StageWaived || st == workflows.StageDeprovisioned
}

// Latest keeps, of the memos of the runs of one life, the one of the
// newest run: runs continued-as-new share a life. Runs without a memo
// are left out (Build counts them apart).
func Latest(runs []Run) []workflows.RecoveryMemo {
	latest := latestRuns(runs)
	memos := make([]workflows.RecoveryMemo, len(latest))
	for i, r := range latest {
		memos[i] = *r.Memo
	}
	return memos
}

// latestRuns keeps the newest run of each life that keeps a memo, by
// lifecycle.
func latestRuns(runs []Run) []Run {
	byLife := map[string]Run{}
	for _, r := range runs {
		if r.Memo == nil || r.Memo.Lifecycle == "" {
			continue
		}
		if prev, ok := byLife[r.Memo.Lifecycle]; !ok || r.StartedAt.After(prev.StartedAt) ||
			(r.StartedAt.Equal(prev.StartedAt) && prev.Memo.Outcome == "") {
			byLife[r.Memo.Lifecycle] = r
		}
	}
	out := slices.Collect(maps.Values(byLife))
	slices.SortFunc(out, func(a, b Run) int { return cmp.Compare(a.Memo.Lifecycle, b.Memo.Lifecycle) })
	return out
}

// customerOf is the customer a life belongs to: its lifecycle is
// "recovery-<customer>@<unix>".
func customerOf(m workflows.RecoveryMemo) string {
	id, _, _ := strings.Cut(m.Lifecycle, "@")
	return id
}

// Compute makes the report of the lives whose first failure is in w.
func Compute(w Window, memos []workflows.RecoveryMemo) Report { return compute(w, memos, nil) }

// compute is Compute with the lives, by lifecycle, that were stopped
// before an outcome.
func compute(w Window, memos []workflows.RecoveryMemo, stopped map[string]bool) Report {
	rep := Report{Window: w, Currencies: []CurrencyFigures{}, WithoutFigures: WithoutFigures{Stages: []Count{}}}
	outcomes := map[workflows.Outcome]int{}
	type cur struct {
		CurrencyFigures
		failed, recovered map[string]bool
	}
	currencies := map[string]*cur{}
	codes, classes := map[string]*DeclineFigures{}, map[string]*DeclineFigures{}
	var times []time.Duration
	for _, m := range memos {
		if !w.Contains(m.FirstFailureAt) {
			continue
		}
		rep.Recoveries++
		recovered := m.Outcome.Recovered()
		switch {
		case m.Outcome == "" && stopped[m.Lifecycle]:
			rep.Stopped++
		case m.Outcome == "":
			rep.InProgress++
		case recovered:
			rep.Recovered++
			times = append(times, timeToRecover(m))
		}
		if m.Outcome != "" {
			outcomes[m.Outcome]++
		}
		customer := customerOf(m)
		for _, mo := range workflows.CountOnce(intentMoney(m.Intents)) {
			c := currencies[mo.Currency]
			if c == nil {
				c = &cur{CurrencyFigures: CurrencyFigures{Currency: mo.Currency}, failed: map[string]bool{}, recovered: map[string]bool{}}
				currencies[mo.Currency] = c
			}
			c.failed[customer] = true
			c.FailedAmount += mo.Failed
			c.RecoveredAmount += mo.Recovered
			c.CreditedAmount += mo.Credited
			c.UnknownAmount += mo.Unknown
			if recovered {
				c.recovered[customer] = true
			}
		}
		for _, in := range m.Intents {
			count(codes, cmp.Or(in.DeclineCode, None), in.State == workflows.IntentPaid)
			count(classes, cmp.Or(in.DeclineClass, None), in.State == workflows.IntentPaid)
		}
	}
	rep.RecoveryRate = ratio(float64(rep.Recovered), float64(rep.Recoveries))
	for _, o := range workflows.Outcomes {
		rep.Outcomes = append(rep.Outcomes, Count{Name: string(o), Count: outcomes[o]})
	}
	for _, c := range currencies {
		c.FailedCustomers, c.RecoveredCustomers = len(c.failed), len(c.recovered)
		c.RecoveryRate = ratio(float64(c.RecoveredAmount), float64(c.FailedAmount))
		rep.Currencies = append(rep.Currencies, c.CurrencyFigures)
	}
	slices.SortFunc(rep.Currencies, func(a, b CurrencyFigures) int {
		return cmp.Or(cmp.Compare(b.FailedAmount, a.FailedAmount), cmp.Compare(a.Currency, b.Currency))
	})
	rep.DeclineCodes, rep.DeclineClasses = sorted(codes), sorted(classes)
	slices.Sort(times)
	rep.TimeToRecover = TimeToRecover{Count: len(times), MedianS: percentile(times, 0.5).Seconds(), P90S: percentile(times, 0.9).Seconds()}
	return rep
}

// intentMoney is the money of a memo's intents: a memo kept before
// dunning noted the invoice and the money that paid counts each intent,
// and its amount as paid, as it always did.
func intentMoney(ins []workflows.MemoIntent) []workflows.IntentMoney {
	out := make([]workflows.IntentMoney, 0, len(ins))
	for _, in := range ins {
		out = append(out, workflows.IntentMoney{Invoice: in.Invoice, Currency: in.Currency, Amount: in.Amount,
			Paid: in.State == workflows.IntentPaid, PaidAmount: in.PaidAmount, PaidUnknown: in.PaidAmountUnknown})
	}
	return out
}

// timeToRecover runs from the first failure to the last payment, or to
// the end where no payment is dated.
func timeToRecover(m workflows.RecoveryMemo) time.Duration {
	var last time.Time
	for _, in := range m.Intents {
		if in.State == workflows.IntentPaid && in.ResolvedAt.After(last) {
			last = in.ResolvedAt
		}
	}
	if last.IsZero() {
		last = m.EndedAt
	}
	return max(last.Sub(m.FirstFailureAt), 0)
}

func count(m map[string]*DeclineFigures, name string, paid bool) {
	f := m[name]
	if f == nil {
		f = &DeclineFigures{Name: name}
		m[name] = f
	}
	f.Intents++
	if paid {
		f.Paid++
	}
}

func sorted(m map[string]*DeclineFigures) []DeclineFigures {
	out := make([]DeclineFigures, 0, len(m))
	for _, f := range m {
		f.PaidRate = ratio(float64(f.Paid), float64(f.Intents))
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b DeclineFigures) int {
		return cmp.Or(cmp.Compare(b.Intents, a.Intents), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// percentile is the nearest-rank percentile of sorted durations (0 when
// there are none).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
