package report_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"dunning/internal/report"
	"dunning/workflows"
)

func day(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }

func intent(id string, amount int64, currency string, state workflows.IntentState, code, class string, resolved time.Time) workflows.MemoIntent {
	return workflows.MemoIntent{ID: id, Amount: amount, Currency: currency, State: state, DeclineCode: code, DeclineClass: class, ResolvedAt: resolved}
}

// The figures below are worked out by hand from these lives.
func lives() []report.Run {
	const paid, open, waived = workflows.IntentPaid, workflows.IntentOpen, workflows.IntentWaived
	memo := func(life string, ff time.Time, o workflows.Outcome, in ...workflows.MemoIntent) *workflows.RecoveryMemo {
		return &workflows.RecoveryMemo{Lifecycle: life, FirstFailureAt: ff, Outcome: o, Intents: in}
	}
	return []report.Run{
		// A, as its first run left it (continued as new since), and as it ended.
		{StartedAt: day(2), Memo: memo("recovery-cus_a@1", day(2), "", intent("pi_a1", 1000, "usd", open, "insufficient_funds", "soft", time.Time{}))},
		{StartedAt: day(2).Add(time.Hour), Memo: memo("recovery-cus_a@1", day(2), workflows.OutcomeRecoveredByRetry,
			intent("pi_a1", 1000, "usd", paid, "insufficient_funds", "soft", day(2).Add(2*time.Hour)))},
		// B: two intents in two currencies, paid by the customer, the last after 48h.
		{StartedAt: day(3), Memo: memo("recovery-cus_b@2", day(3), workflows.OutcomeRecoveredByCustomer,
			intent("pi_b1", 3000, "usd", paid, "expired_card", "needs_new_data", day(4)),
			intent("pi_b2", 500, "eur", paid, "", "", day(5)))},
		{StartedAt: day(4), Memo: memo("recovery-cus_c@3", day(4), workflows.OutcomeDeprovisioned,
			intent("pi_c1", 2000, "usd", open, "insufficient_funds", "soft", time.Time{}))},
		{StartedAt: day(5), Memo: memo("recovery-cus_d@4", day(5), workflows.OutcomeWaived,
			intent("pi_d1", 1500, "eur", waived, "do_not_honor", "soft", day(6)))},
		// E: customer a again, still in progress.
		{StartedAt: day(20), Memo: memo("recovery-cus_a@5", day(20), "",
			intent("pi_e1", 4000, "usd", open, "insufficient_funds", "soft", time.Time{}))},
		// F: first failure before the window.
		{StartedAt: day(1).Add(-20 * 24 * time.Hour), Memo: memo("recovery-cus_f@6", day(1).Add(-20*24*time.Hour), workflows.OutcomeRecoveredByRetry,
			intent("pi_f1", 9999, "usd", paid, "insufficient_funds", "soft", day(1)))},
		{StartedAt: day(10), Memo: memo("recovery-cus_g@7", day(10), workflows.OutcomeRecoveredByCardUpdate,
			intent("pi_g1", 5000, "jpy", paid, "generic_decline", "soft", day(10).Add(10*time.Hour)))},
	}
}

func TestCompute(t *testing.T) {
	w := report.Window{Since: day(1), Until: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	got := report.Compute(w, report.Latest(lives()))
	want := report.Report{
		Window: w, Recoveries: 6, Recovered: 3, InProgress: 1, RecoveryRate: 0.5,
		Outcomes: []report.Count{{Name: "recovered_by_retry", Count: 1}, {Name: "recovered_by_card_update", Count: 1}, {Name: "recovered_by_customer", Count: 1}, {Name: "waived", Count: 1}, {Name: "deprovisioned", Count: 1}},
		Currencies: []report.CurrencyFigures{
			{Currency: "usd", FailedCustomers: 3, FailedAmount: 10000, RecoveredCustomers: 2, RecoveredAmount: 4000, RecoveryRate: 0.4},
			{Currency: "jpy", FailedCustomers: 1, FailedAmount: 5000, RecoveredCustomers: 1, RecoveredAmount: 5000, RecoveryRate: 1},
			{Currency: "eur", FailedCustomers: 2, FailedAmount: 2000, RecoveredCustomers: 1, RecoveredAmount: 500, RecoveryRate: 0.25},
		},
		// 2h, 10h, 48h: nearest rank.
		TimeToRecover: report.TimeToRecover{Count: 3, MedianS: 10 * 3600, P90S: 48 * 3600},
		DeclineCodes: []report.DeclineFigures{
			{Name: "insufficient_funds", Intents: 3, Paid: 1, PaidRate: 1.0 / 3},
			{Name: "do_not_honor", Intents: 1, Paid: 0, PaidRate: 0},
			{Name: "expired_card", Intents: 1, Paid: 1, PaidRate: 1},
			{Name: "generic_decline", Intents: 1, Paid: 1, PaidRate: 1},
			{Name: "none", Intents: 1, Paid: 1, PaidRate: 1},
		},
		DeclineClasses: []report.DeclineFigures{
			{Name: "soft", Intents: 5, Paid: 2, PaidRate: 0.4},
			{Name: "needs_new_data", Intents: 1, Paid: 1, PaidRate: 1},
			{Name: "none", Intents: 1, Paid: 1, PaidRate: 1},
		},
		WithoutFigures: report.WithoutFigures{Stages: []report.Count{}},
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		wj, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("report\n%s\nwant\n%s", g, wj)
	}
}

func TestComputeEmptyWindow(t *testing.T) {
	got := report.Compute(report.Window{Since: day(25), Until: day(26)}, report.Latest(lives()))
	if got.Recoveries != 0 || got.RecoveryRate != 0 || got.TimeToRecover.Count != 0 || len(got.Currencies) != 0 {
		t.Fatalf("empty window: %+v", got)
	}
}

func TestWriteFormats(t *testing.T) {
	rep := report.Compute(report.Window{Since: day(1), Until: day(30)}, report.Latest(lives()))
	var text bytes.Buffer
	if err := report.Write(&text, rep, report.FormatText); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Recovered        3  (50.0% by count)", "median 10h 0m", "p90 2d 0h",
		"USD       3                 USD 100.00  2                    USD 40.00  40.0%", "JPY 5000", "insufficient_funds  3        1     33.3%",
		"in progress               1"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text lacks %q:\n%s", s, text.String())
		}
	}
	var js bytes.Buffer
	if err := report.Write(&js, rep, report.FormatJSON); err != nil {
		t.Fatal(err)
	}
	var back report.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Recovered != 3 || back.Currencies[0].RecoveredAmount != 4000 {
		t.Errorf("json %v: %s", err, js.String())
	}
	var cs bytes.Buffer
	if err := report.Write(&cs, rep, report.FormatCSV); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&cs).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rows {
		if len(r) != 4 {
			t.Fatalf("row %v: want 4 fields", r)
		}
		if r[0] == "currency" && r[1] == "recovered_amount" && r[2] == "usd" && r[3] == "4000" {
			found = true
		}
	}
	if !found {
		t.Errorf("csv lacks currency,recovered_amount,usd,4000:\n%v", rows)
	}
	if err := report.Write(&cs, rep, "xml"); err == nil {
		t.Error("format xml accepted")
	}
}

// Runs that keep no memo, as a release before the memo left them: each
// life counted once, by the run that holds its end or its present, in
// its stage; none of them in the figures.
func TestWithoutFigures(t *testing.T) {
	const (
		running   = enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
		completed = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
		continued = enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW
		ended     = enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED
	)
	bare := func(id string, start time.Time, status enumspb.WorkflowExecutionStatus, stage workflows.Stage) report.Run {
		return report.Run{WorkflowID: id, StartedAt: start, Status: status, Stage: stage}
	}
	runs := append(lives(),
		// Recovered before the memo.
		bare("recovery-cus_p", day(3), completed, workflows.StageRecovered),
		// Continued as new mid-life; the next run keeps a memo and
		// counts the life with its figures.
		bare("recovery-cus_q", day(4), continued, workflows.StagePastDue),
		report.Run{WorkflowID: "recovery-cus_q", StartedAt: day(5), Status: completed, Memo: &workflows.RecoveryMemo{
			Lifecycle: "recovery-cus_q@4", FirstFailureAt: day(4), Outcome: workflows.OutcomeRecoveredByRetry, Intents: []workflows.MemoIntent{
				intent("pi_q1", 700, "gbp", workflows.IntentPaid, "insufficient_funds", "soft", day(5))}}},
		// Deprovisioned, then continued as new into the customer's next life.
		bare("recovery-cus_r", day(6), continued, workflows.StageDeprovisioned),
		// Still running on the old code, suspended.
		bare("recovery-cus_s", day(7), running, workflows.StageSuspended),
		// Just started: no stage yet.
		bare("recovery-cus_t", day(8), running, ""),
		// Ended by hand while past due.
		bare("recovery-cus_u", day(9), ended, workflows.StagePastDue),
		// Before the window.
		bare("recovery-cus_v", day(1).Add(-time.Hour), completed, workflows.StageWaived),
	)
	w := report.Window{Since: day(1), Until: day(30)}
	got := report.Build(w, runs)
	want := report.WithoutFigures{Count: 5, Stages: []report.Count{
		{Name: "past_due", Count: 1}, {Name: "suspended", Count: 1}, {Name: "recovered", Count: 1},
		{Name: "deprovisioned", Count: 1}, {Name: "none", Count: 1}}}
	if !reflect.DeepEqual(got.WithoutFigures, want) {
		t.Errorf("without figures %+v, want %+v", got.WithoutFigures, want)
	}
	// The figures are those of the memos alone: the six lives of
	// TestCompute and cus_q's.
	if got.Recoveries != 7 || got.Recovered != 4 || got.Outcomes[0] != (report.Count{Name: "recovered_by_retry", Count: 2}) {
		t.Errorf("figures: %d recoveries, %d recovered, outcomes %v; want 7, 4, two by retry", got.Recoveries, got.Recovered, got.Outcomes)
	}

	var text bytes.Buffer
	if err := report.Write(&text, got, report.FormatText); err != nil {
		t.Fatal(err)
	}
	line := "Without figures  5  (begun before recoveries kept them; not counted above: past_due 1, suspended 1, recovered 1, deprovisioned 1, none 1)"
	if !strings.Contains(text.String(), line) {
		t.Errorf("text lacks %q:\n%s", line, text.String())
	}
	var cs bytes.Buffer
	if err := report.Write(&cs, got, report.FormatCSV); err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{"without_figures,count,,5", "without_figures_stage,suspended,,1", "without_figures_stage,none,,1"} {
		if !strings.Contains(cs.String(), row+"\n") {
			t.Errorf("csv lacks %s:\n%s", row, cs.String())
		}
	}
	// Without such runs the text says nothing of them.
	text.Reset()
	if err := report.Write(&text, report.Build(w, lives()), report.FormatText); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text.String(), "Without figures") {
		t.Errorf("text speaks of recoveries without figures where there are none:\n%s", text.String())
	}
}

// A life whose last run an operator terminated, or that failed, before
// an outcome is stopped: in the denominator, neither in progress nor
// recovered. A run that continued as new hands its life on and stops
// nothing; a life that ended with an outcome before its run was
// terminated keeps the outcome.
func TestStoppedLives(t *testing.T) {
	memo := func(life string, o workflows.Outcome) *workflows.RecoveryMemo {
		return &workflows.RecoveryMemo{Lifecycle: life, FirstFailureAt: day(2), Outcome: o,
			Intents: []workflows.MemoIntent{intent("pi_"+life, 1000, "usd", workflows.IntentOpen, "", "", time.Time{})}}
	}
	run := func(status enumspb.WorkflowExecutionStatus, start time.Time, m *workflows.RecoveryMemo) report.Run {
		return report.Run{WorkflowID: "recovery-" + m.Lifecycle, StartedAt: start, Status: status, Memo: m}
	}
	runs := []report.Run{
		run(enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, day(2), memo("terminated", "")),
		run(enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, day(2), memo("failed", "")),
		run(enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, day(2), memo("timed-out", "")),
		run(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, day(2), memo("running", "")),
		// Continued as new, and its next run still runs: in progress.
		run(enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW, day(2), memo("continued", "")),
		run(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, day(3), memo("continued", "")),
		// Waived, then its run terminated while it was closing.
		run(enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, day(2), memo("waived", workflows.OutcomeWaived)),
	}
	got := report.Build(report.Window{Since: day(1), Until: day(30)}, runs)
	if got.Recoveries != 6 || got.Stopped != 3 || got.InProgress != 2 || got.Recovered != 0 {
		t.Errorf("%d recoveries, %d stopped, %d in progress, %d recovered; want 6, 3, 2, 0",
			got.Recoveries, got.Stopped, got.InProgress, got.Recovered)
	}
	var text, cs bytes.Buffer
	if err := report.Write(&text, got, report.FormatText); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^Stopped +3 +\(terminated`).MatchString(text.String()) || !regexp.MustCompile(`(?m)^stopped +3$`).MatchString(text.String()) {
		t.Errorf("text does not show the stopped lives:\n%s", text.String())
	}
	if err := report.Write(&cs, got, report.FormatCSV); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cs.String(), "summary,stopped,,3\n") {
		t.Errorf("csv lacks the stopped lives:\n%s", cs.String())
	}
	// Compute alone (no statuses) counts them in progress.
	if c := report.Compute(got.Window, report.Latest(runs)); c.Stopped != 0 || c.InProgress != 5 {
		t.Errorf("Compute: %d stopped, %d in progress; want 0, 5", c.Stopped, c.InProgress)
	}
}

func TestDays(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 1500 * time.Millisecond: "1s", 59 * time.Second: "59s", time.Minute: "1m", 45*time.Minute + 30*time.Second: "45m",
		time.Hour: "1h 0m", 3*time.Hour + 20*time.Minute: "3h 20m", 24 * time.Hour: "1d 0h", 52 * time.Hour: "2d 4h",
	} {
		if got := report.Days(d); got != want {
			t.Errorf("Days(%s) = %q, want %q", d, got, want)
		}
	}
}

// Recovered money is the money that paid, and an invoice's money counts
// once however many intents tried to collect it; a memo kept before
// dunning noted either reads as it always did.
func TestComputeCountsWhatPaidEachInvoiceOnce(t *testing.T) {
	const paid, canceled = workflows.IntentPaid, workflows.IntentCanceled
	amount := func(n int64) *int64 { return &n }
	run := func(life string, d int, o workflows.Outcome, in ...workflows.MemoIntent) report.Run {
		return report.Run{StartedAt: day(d), Status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED,
			Memo: &workflows.RecoveryMemo{Lifecycle: life, FirstFailureAt: day(d), Outcome: o, Intents: in}}
	}
	runs := []report.Run{
		// A: the invoice was credited in full; nothing was paid.
		run("recovery-cus_a@1", 2, workflows.OutcomeRecoveredByCustomer,
			workflows.MemoIntent{ID: "pi_a1", Invoice: "in_a", Amount: 4900, Currency: "usd", State: paid, ResolvedAt: day(3), PaidAmount: amount(0)}),
		// B: a first intent canceled, a second for the same invoice paid.
		run("recovery-cus_b@2", 2, workflows.OutcomeRecoveredByRetry,
			workflows.MemoIntent{ID: "pi_b1", Invoice: "in_b", Amount: 3000, Currency: "usd", State: canceled, ResolvedAt: day(3)},
			workflows.MemoIntent{ID: "pi_b2", Invoice: "in_b", Amount: 3000, Currency: "usd", State: paid, ResolvedAt: day(4), PaidAmount: amount(3000)}),
		// C: half credited, half paid.
		run("recovery-cus_c@3", 2, workflows.OutcomeRecoveredByCustomer,
			workflows.MemoIntent{ID: "pi_c1", Invoice: "in_c", Amount: 2000, Currency: "usd", State: paid, ResolvedAt: day(3), PaidAmount: amount(1000)}),
		// D: an old memo, without invoice or money paid.
		run("recovery-cus_d@4", 2, workflows.OutcomeRecoveredByRetry,
			workflows.MemoIntent{ID: "pi_d1", Amount: 100, Currency: "usd", State: paid, ResolvedAt: day(3)}),
		// E: found settled in Amberflo, which did not say for how much.
		run("recovery-cus_e@5", 2, workflows.OutcomeRecoveredByCustomer,
			workflows.MemoIntent{ID: "pi_e1", Invoice: "in_e", Amount: 700, Currency: "usd", State: paid, ResolvedAt: day(3), PaidAmountUnknown: true}),
	}
	w := report.Window{Since: day(1), Until: day(10)}
	got := report.Build(w, runs).Currencies
	// What was credited (A's 4900, C's 1000) and what was settled for an
	// unknown sum (E's 700) is not recovered money, and is said apart.
	want := []report.CurrencyFigures{{Currency: "usd", FailedCustomers: 5, FailedAmount: 4900 + 3000 + 2000 + 100 + 700,
		RecoveredCustomers: 5, RecoveredAmount: 0 + 3000 + 1000 + 100, CreditedAmount: 4900 + 1000, UnknownAmount: 700,
		RecoveryRate: 4100.0 / 10700}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("currencies\n got %+v\nwant %+v", got, want)
	}
	var out bytes.Buffer
	if err := report.Write(&out, report.Build(w, runs), report.FormatJSON); err != nil {
		t.Fatal(err)
	}
	var back report.Report
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || !reflect.DeepEqual(back.Currencies, want) {
		t.Errorf("json report currencies %+v (%v), want %+v", back.Currencies, err, want)
	}
}
