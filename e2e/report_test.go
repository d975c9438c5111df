package e2e

// How much did dunning recover, asked from outside: customers with known
// outcomes and amounts go through the webhook and the worker; then
// `dunning report` (the binary) and the worker's /metrics must give the
// figures those outcomes imply, worked out here from the scenario alone.

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"dunning/activities"
	"dunning/internal/report"
	"dunning/internal/stripefixture"
	"dunning/internal/testenv"
	"dunning/workflows"
)

// failure is one failed payment of a customer in a scenario.
type failure struct {
	amount   int64
	currency string
	// code is the decline code of the failure; class what it means, as
	// Stripe's documentation of decline codes puts it.
	code, class string
	// paid: the intent ends paid (by dunning or by the customer).
	paid bool
}

// life is one customer of a scenario and how its recovery ends; an
// empty outcome is a recovery still in progress.
type life struct {
	role     string
	outcome  workflows.Outcome
	failures []failure
	customer string
	intents  []string
}

// recoveryScenario is the set of customers the figures are checked on.
func recoveryScenario() []*life {
	return []*life{
		// Declined once more when retried now, then the funds are there
		// and the next retry on the same card is paid.
		{role: "retry", outcome: workflows.OutcomeRecoveredByRetry,
			failures: []failure{{2500, "usd", "insufficient_funds", "soft", true}}},
		// Two failed invoices, paid at once by a new card.
		{role: "card update", outcome: workflows.OutcomeRecoveredByCardUpdate,
			failures: []failure{{1200, "usd", "expired_card", "needs_new_data", true}, {800, "usd", "insufficient_funds", "soft", true}}},
		// Paid outside dunning (Stripe tells of the payment).
		{role: "customer", outcome: workflows.OutcomeRecoveredByCustomer,
			failures: []failure{{4000, "eur", "do_not_honor", "soft", true}}},
		{role: "waived", outcome: workflows.OutcomeWaived,
			failures: []failure{{3000, "jpy", "insufficient_funds", "soft", false}}},
		{role: "deprovisioned", outcome: workflows.OutcomeDeprovisioned,
			failures: []failure{{1500, "eur", "generic_decline", "soft", false}}},
		// Still in progress: bank payments in flight, neither retried nor
		// suspended for, however long the test takes.
		{role: "in flight", failures: []failure{{990, "usd", "insufficient_funds", "soft", false}}},
		{role: "in flight too", failures: []failure{{700, "jpy", "card_velocity_exceeded", "soft", false}}},
	}
}

// attempt is the result and decline_class of confirms dunning makes.
type attempt struct{ result, class string }

// scenarioAttempts are the confirms the scenario makes dunning do: the
// retry customer's declined retry and its paid one, and the new card
// paying each of the two intents.
var scenarioAttempts = map[attempt]int{
	{workflows.AttemptDeclined, string(activities.DeclineSoft)}: 1,
	{workflows.AttemptSucceeded, workflows.DeclineClassNone}:    3,
}

// expectedReport works out the report of lives by hand: plain counting
// over the scenario, nothing of dunning's.
func expectedReport(lives []*life) report.Report {
	var want report.Report
	outcomes := map[workflows.Outcome]int{}
	type money struct {
		failed, recovered   int64
		failedC, recoveredC map[string]bool
	}
	byCurrency := map[string]*money{}
	type paidOf struct{ intents, paid int }
	codes, classes := map[string]*paidOf{}, map[string]*paidOf{}
	for _, l := range lives {
		want.Recoveries++
		recovered := l.outcome == workflows.OutcomeRecoveredByRetry || l.outcome == workflows.OutcomeRecoveredByCardUpdate ||
			l.outcome == workflows.OutcomeRecoveredByCustomer
		if l.outcome == "" {
			want.InProgress++
		} else {
			outcomes[l.outcome]++
		}
		if recovered {
			want.Recovered++
		}
		for _, f := range l.failures {
			m := byCurrency[f.currency]
			if m == nil {
				m = &money{failedC: map[string]bool{}, recoveredC: map[string]bool{}}
				byCurrency[f.currency] = m
			}
			m.failed += f.amount
			m.failedC[l.role] = true
			if f.paid {
				m.recovered += f.amount
			}
			if recovered {
				m.recoveredC[l.role] = true
			}
			for k, into := range map[string]map[string]*paidOf{f.code: codes, f.class: classes} {
				if into[k] == nil {
					into[k] = &paidOf{}
				}
				into[k].intents++
				if f.paid {
					into[k].paid++
				}
			}
		}
	}
	want.RecoveryRate = float64(want.Recovered) / float64(want.Recoveries)
	for _, o := range []workflows.Outcome{workflows.OutcomeRecoveredByRetry, workflows.OutcomeRecoveredByCardUpdate,
		workflows.OutcomeRecoveredByCustomer, workflows.OutcomeWaived, workflows.OutcomeDeprovisioned} {
		want.Outcomes = append(want.Outcomes, report.Count{Name: string(o), Count: outcomes[o]})
	}
	for c, m := range byCurrency {
		want.Currencies = append(want.Currencies, report.CurrencyFigures{Currency: c,
			FailedCustomers: len(m.failedC), FailedAmount: m.failed, RecoveredCustomers: len(m.recoveredC), RecoveredAmount: m.recovered,
			RecoveryRate: float64(m.recovered) / float64(m.failed)})
	}
	// Largest failed amount first.
	slices.SortFunc(want.Currencies, func(a, b report.CurrencyFigures) int {
		return cmp.Or(cmp.Compare(b.FailedAmount, a.FailedAmount), cmp.Compare(a.Currency, b.Currency))
	})
	for _, d := range []struct {
		from map[string]*paidOf
		into *[]report.DeclineFigures
	}{{codes, &want.DeclineCodes}, {classes, &want.DeclineClasses}} {
		for name, p := range d.from {
			*d.into = append(*d.into, report.DeclineFigures{Name: name, Intents: p.intents, Paid: p.paid, PaidRate: float64(p.paid) / float64(p.intents)})
		}
		// Most intents first, then by name.
		slices.SortFunc(*d.into, func(a, b report.DeclineFigures) int {
			return cmp.Or(cmp.Compare(b.Intents, a.Intents), cmp.Compare(a.Name, b.Name))
		})
	}
	want.TimeToRecover.Count = want.Recovered
	return want
}

// TestRecoveryFiguresOnTheRealBinaries runs the scenario through the
// webhook and a worker process, then reads `dunning report` in JSON and
// CSV and the worker's /metrics.
func TestRecoveryFiguresOnTheRealBinaries(t *testing.T) {
	metricsAddr := testenv.FreeAddress(t)
	s := Start(t, Options{Env: map[string]string{
		// No scheduled retry: every confirm is one the scenario asks for.
		// The grace period leaves the other customers' actions time
		// enough on a loaded machine before anyone is deprovisioned.
		"DUNNING_RETRY_SCHEDULE": "1h", "DUNNING_GRACE_PERIOD": "15s", "DUNNING_DEPROVISION_AFTER": "2s",
		"WORKER_METRICS_ADDR": metricsAddr,
	}})
	began := time.Now()
	lives := recoveryScenario()
	for _, l := range lives {
		l.customer = stripefixture.NewID("cus")
		for _, f := range l.failures {
			intent := stripefixture.NewID("pi")
			l.intents = append(l.intents, intent)
			s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: l.customer, ObjectID: intent,
				Amount: f.amount, Currency: f.currency, DeclineCode: f.code})
		}
		if l.outcome == "" {
			s.Stripe.SetIntentStatus(l.intents[0], "processing")
		}
	}
	byRole := map[string]*life{}
	for _, l := range lives {
		byRole[l.role] = l
		if l.outcome != "" { // a payment in flight is not announced as failed
			s.Eventually("past-due notice of "+l.role, 30*time.Second, func() bool { return s.Notices.Kinds(l.customer)["payment_failed"] == 1 })
		}
		s.Eventually("every failure of "+l.role+" recorded", 30*time.Second, func() bool { return len(s.Status(l.customer).Intents) == len(l.failures) })
	}
	operator := workflows.OperatorRequest{Reason: "figures test", Operator: "e2e"}

	retry := byRole["retry"]
	if out := s.operator(retry.customer, workflows.ControlRetryNow, operator); !out.Accepted {
		t.Fatalf("retry now: %+v", out)
	}
	s.Eventually("the declined retry", 30*time.Second, func() bool { return len(s.Stripe.Confirms(retry.intents[0])) == 1 })
	declined, err := url.ParseQuery(string(s.Stripe.Confirms(retry.intents[0])[0].Body))
	if err != nil || declined.Get("payment_method") == "" {
		t.Fatalf("the declined retry names no card: %v %q", err, s.Stripe.Confirms(retry.intents[0])[0].Body)
	}
	// The operator, as in the UI, sees the decline in the recovery's
	// status before asking again.
	s.Eventually("the declined retry in the status", 30*time.Second, func() bool {
		for _, a := range s.Status(retry.customer).Actions {
			if strings.HasPrefix(a.Kind, "retry asked by an operator") && strings.HasPrefix(a.Outcome, activities.RetryDeclined) {
				return true
			}
		}
		return false
	})
	s.Stripe.Approve(declined.Get("payment_method"))
	if out := s.operator(retry.customer, workflows.ControlRetryNow, operator); !out.Accepted {
		t.Fatalf("retry now after the funds came: %+v", out)
	}

	s.Send(workflows.EventPaymentMethodAttached, stripefixture.Options{Customer: byRole["card update"].customer})

	paying := byRole["customer"]
	s.Send(workflows.EventPaymentSucceeded, stripefixture.Options{Customer: paying.customer, ObjectID: paying.intents[0],
		Amount: paying.failures[0].amount, Currency: paying.failures[0].currency})

	if out := s.operator(byRole["waived"].customer, workflows.ControlWaive, operator); !out.Accepted {
		t.Fatalf("waive: %+v", out)
	}

	stages := map[workflows.Outcome]workflows.Stage{
		workflows.OutcomeRecoveredByRetry: workflows.StageRecovered, workflows.OutcomeRecoveredByCardUpdate: workflows.StageRecovered,
		workflows.OutcomeRecoveredByCustomer: workflows.StageRecovered, workflows.OutcomeWaived: workflows.StageWaived,
		workflows.OutcomeDeprovisioned: workflows.StageDeprovisioned,
	}
	for _, l := range lives {
		if l.outcome == "" {
			continue
		}
		if res := s.Recovery(l.customer, time.Minute); res.Stage != stages[l.outcome] {
			t.Fatalf("%s: recovery ended %s (%s), want %s", l.role, res.Stage, res.Summary, stages[l.outcome])
		}
	}
	for _, l := range lives {
		if st, running := s.Stage(l.customer); l.outcome == "" && (!running || st != workflows.StagePastDue) {
			t.Fatalf("%s: stage %s (running %v), want past due and running", l.role, st, running)
		}
	}
	// Every confirm dunning made is as the scenario says.
	gotAttempts := map[attempt]int{}
	for _, l := range lives {
		for _, in := range l.intents {
			for _, c := range s.Stripe.Confirms(in) {
				switch c.Handled {
				case http.StatusOK:
					gotAttempts[attempt{workflows.AttemptSucceeded, workflows.DeclineClassNone}]++
				case http.StatusPaymentRequired:
					gotAttempts[attempt{workflows.AttemptDeclined, string(activities.DeclineSoft)}]++ // the fake Stripe declines for want of funds
				default:
					t.Errorf("%s: confirm answered %d: %s", l.role, c.Handled, c)
				}
			}
		}
	}
	if fmt.Sprint(gotAttempts) != fmt.Sprint(scenarioAttempts) {
		t.Fatalf("confirms at Stripe %v, want %v", gotAttempts, scenarioAttempts)
	}
	elapsed := time.Since(began)

	want := expectedReport(lives)
	since, until := began.Add(-time.Minute), time.Now().Add(time.Minute)
	got := s.waitReport(since, until, func(r report.Report) bool {
		return r.Recoveries == want.Recoveries && r.InProgress == want.InProgress && r.Recovered == want.Recovered
	})
	want.Window = report.Window{Since: since.Truncate(time.Second), Until: until.Truncate(time.Second)}
	checkReport(t, got, want, elapsed)
	if got.WithoutFigures.Count != 0 || len(got.WithoutFigures.Stages) != 0 {
		t.Errorf("without figures %+v, want none: every recovery keeps its memo", got.WithoutFigures)
	}

	// The CSV says the same.
	checkCSV(t, s.runReport(since, until, "csv"), got)
	text := string(s.runReport(since, until, "text"))
	for _, line := range []string{fmt.Sprintf("Recovered        %d  (%.1f%% by count)", want.Recovered, 100*want.RecoveryRate),
		fmt.Sprintf("In progress      %d", want.InProgress)} {
		if !strings.Contains(text, line) {
			t.Errorf("text report lacks %q:\n%s", line, text)
		}
	}
	t.Logf("dunning report:\n%s", text)

	// The worker's metrics count the same facts.
	var mfs map[string]*dto.MetricFamily
	s.Eventually("the in-stage gauge to count the recoveries in progress", time.Minute, func() bool {
		mfs = scrape(t, "http://"+metricsAddr+"/metrics")
		// Counted every 15s, stage by stage: wait for a count after the
		// last recovery ended.
		return value(mfs, "dunning_recoveries_in_stage", map[string]string{"stage": string(workflows.StagePastDue)}) == float64(want.InProgress) &&
			sum(mfs, "dunning_recoveries_in_stage") == float64(want.InProgress)
	})
	checkMetrics(t, mfs, lives, want)
}

// waitReport runs `dunning report --format json` until what it says
// satisfies done (visibility catches up a moment after the workflows),
// and returns it; it fails the test with the last report after 30s.
func (s *Stack) waitReport(since, until time.Time, done func(report.Report) bool) report.Report {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		raw := s.runReport(since, until, "json")
		var r report.Report
		if err := json.Unmarshal(raw, &r); err != nil {
			s.t.Fatalf("report --format json: %v\n%s", err, raw)
		}
		if done(r) {
			return r
		}
		s.checkAlive()
		if time.Now().After(deadline) {
			s.t.Fatalf("the report did not list every recovery within 30s; the last:\n%s", raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// runReport runs `dunning report` on the stack's Temporal and returns
// what it wrote.
func (s *Stack) runReport(since, until time.Time, format string) []byte {
	s.t.Helper()
	cmd := exec.Command(Binary, "report", "--since", since.UTC().Format(time.RFC3339), "--until", until.UTC().Format(time.RFC3339), "--format", format)
	cmd.Env = s.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		s.t.Fatalf("dunning report --format %s: %v\n%s", format, err, stderr.String())
	}
	return out
}

func checkReport(t *testing.T, got, want report.Report, elapsed time.Duration) {
	t.Helper()
	if !got.Window.Since.Equal(want.Window.Since) || !got.Window.Until.Equal(want.Window.Until) {
		t.Errorf("window %v, want %v", got.Window, want.Window)
	}
	if got.Recoveries != want.Recoveries || got.Recovered != want.Recovered || got.InProgress != want.InProgress || got.RecoveryRate != want.RecoveryRate {
		t.Errorf("recoveries %d, recovered %d, in progress %d, rate %v; want %d, %d, %d, %v",
			got.Recoveries, got.Recovered, got.InProgress, got.RecoveryRate, want.Recoveries, want.Recovered, want.InProgress, want.RecoveryRate)
	}
	for _, c := range []struct {
		what      string
		got, want any
	}{{"outcomes", got.Outcomes, want.Outcomes}, {"currencies", got.Currencies, want.Currencies},
		{"decline codes", got.DeclineCodes, want.DeclineCodes}, {"decline classes", got.DeclineClasses, want.DeclineClasses}} {
		g, _ := json.Marshal(c.got)
		w, _ := json.Marshal(c.want)
		if !bytes.Equal(g, w) {
			t.Errorf("%s\n%s\nwant\n%s", c.what, g, w)
		}
	}
	// Times to recover: as many as recovered, none longer than the test.
	ttr := got.TimeToRecover
	if ttr.Count != want.TimeToRecover.Count || ttr.MedianS <= 0 || ttr.MedianS > ttr.P90S || ttr.P90S > elapsed.Seconds() {
		t.Errorf("time to recover %+v; want %d recoveries, 0 < median <= p90 <= %s", ttr, want.TimeToRecover.Count, elapsed)
	}
}

// checkCSV reads the CSV report and compares each figure with the JSON
// report's.
func checkCSV(t *testing.T, raw []byte, rep report.Report) {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatalf("report --format csv does not parse: %v\n%s", err, raw)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != "section,name,currency,value" {
		t.Fatalf("csv header %v", rows[:min(1, len(rows))])
	}
	got := map[string]string{}
	for _, r := range rows[1:] {
		key := r[0] + "/" + r[1] + "/" + r[2]
		if _, dup := got[key]; dup {
			t.Errorf("csv: %s twice", key)
		}
		got[key] = r[3]
	}
	want := map[string]float64{
		"summary/recoveries/": float64(rep.Recoveries), "summary/recovered/": float64(rep.Recovered),
		"summary/in_progress/": float64(rep.InProgress), "summary/recovery_rate/": rep.RecoveryRate,
		"summary/stopped/":       float64(rep.Stopped),
		"time_to_recover/count/": float64(rep.TimeToRecover.Count), "time_to_recover/median_seconds/": rep.TimeToRecover.MedianS,
		"time_to_recover/p90_seconds/": rep.TimeToRecover.P90S,
	}
	for _, o := range rep.Outcomes {
		want["outcome/"+o.Name+"/"] = float64(o.Count)
	}
	for _, c := range rep.Currencies {
		want["currency/failed_customers/"+c.Currency] = float64(c.FailedCustomers)
		want["currency/failed_amount/"+c.Currency] = float64(c.FailedAmount)
		want["currency/recovered_customers/"+c.Currency] = float64(c.RecoveredCustomers)
		want["currency/recovered_amount/"+c.Currency] = float64(c.RecoveredAmount)
		want["currency/recovery_rate/"+c.Currency] = c.RecoveryRate
		want["currency/credited_amount/"+c.Currency] = float64(c.CreditedAmount)
		want["currency/settled_unknown_amount/"+c.Currency] = float64(c.UnknownAmount)
	}
	for _, d := range rep.DeclineCodes {
		want["decline_code_intents/"+d.Name+"/"] = float64(d.Intents)
		want["decline_code_paid/"+d.Name+"/"] = float64(d.Paid)
	}
	for _, d := range rep.DeclineClasses {
		want["decline_class_intents/"+d.Name+"/"] = float64(d.Intents)
		want["decline_class_paid/"+d.Name+"/"] = float64(d.Paid)
	}
	want["without_figures/count/"] = float64(rep.WithoutFigures.Count)
	for _, st := range rep.WithoutFigures.Stages {
		want["without_figures_stage/"+st.Name+"/"] = float64(st.Count)
	}
	for k, w := range want {
		v, err := strconv.ParseFloat(got[k], 64)
		if err != nil || math.Abs(v-w) > 1e-9*math.Max(1, math.Abs(w)) {
			t.Errorf("csv %s = %q, want %v", k, got[k], w)
		}
	}
	for _, k := range []string{"window/since/", "window/until/"} {
		if _, err := time.Parse(time.RFC3339, got[k]); err != nil {
			t.Errorf("csv %s = %q, want an RFC 3339 time", k, got[k])
		}
	}
	if len(got) != len(want)+2 {
		t.Errorf("csv has %d figures, want %d", len(got), len(want)+2)
	}
}

// scrape reads a Prometheus text exposition.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s does not parse as the Prometheus text format: %v", url, err)
	}
	return mfs
}

// value is the value of the series of name with exactly labels (a
// counter's, a gauge's, or a histogram's count); 0 when there is none.
func value(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	mf := mfs[name]
	if mf == nil {
		return 0
	}
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if fmt.Sprint(got) != fmt.Sprint(labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

// sum adds up every series of name.
func sum(mfs map[string]*dto.MetricFamily, name string) float64 {
	var total float64
	for _, m := range mfs[name].GetMetric() {
		total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return total
}

func checkMetrics(t *testing.T, mfs map[string]*dto.MetricFamily, lives []*life, want report.Report) {
	t.Helper()
	type series struct {
		name   string
		labels map[string]string
	}
	expect := map[string]float64{}
	key := func(name string, labels map[string]string) string { return name + fmt.Sprint(labels) }
	add := func(name string, labels map[string]string, v float64) { expect[key(name, labels)] += v }
	var all []series
	note := func(name string, labels map[string]string) {
		for _, s := range all {
			if key(s.name, s.labels) == key(name, labels) {
				return
			}
		}
		all = append(all, series{name, labels})
	}
	for _, l := range lives {
		add("dunning_recoveries_started_total", map[string]string{}, 1)
		note("dunning_recoveries_started_total", map[string]string{})
		if l.outcome != "" {
			add("dunning_recoveries_ended_total", map[string]string{"outcome": string(l.outcome)}, 1)
		}
		for _, f := range l.failures {
			add("dunning_failed_amount_total", map[string]string{"currency": f.currency}, float64(f.amount))
			note("dunning_failed_amount_total", map[string]string{"currency": f.currency})
			note("dunning_recovered_amount_total", map[string]string{"currency": f.currency})
			if f.paid {
				add("dunning_recovered_amount_total", map[string]string{"currency": f.currency}, float64(f.amount))
			}
		}
	}
	for _, o := range want.Outcomes {
		note("dunning_recoveries_ended_total", map[string]string{"outcome": o.Name})
	}
	for a, n := range scenarioAttempts {
		labels := map[string]string{"result": a.result, "decline_class": a.class}
		add("dunning_payment_attempts_total", labels, float64(n))
		note("dunning_payment_attempts_total", labels)
	}
	add("dunning_time_to_recover_seconds", map[string]string{}, float64(want.Recovered))
	note("dunning_time_to_recover_seconds", map[string]string{})
	for _, st := range []workflows.Stage{workflows.StagePastDue, workflows.StageSuspended} {
		labels := map[string]string{"stage": string(st)}
		if st == workflows.StagePastDue {
			add("dunning_recoveries_in_stage", labels, float64(want.InProgress))
		}
		note("dunning_recoveries_in_stage", labels)
	}
	for _, s := range all {
		if got, w := value(mfs, s.name, s.labels), expect[key(s.name, s.labels)]; got != w {
			t.Errorf("%s%v = %v, want %v", s.name, s.labels, got, w)
		}
	}
	// Nothing counted beyond the scenario.
	attempts := 0
	for _, n := range scenarioAttempts {
		attempts += n
	}
	for name, total := range map[string]float64{
		"dunning_recoveries_ended_total": float64(want.Recoveries - want.InProgress),
		"dunning_payment_attempts_total": float64(attempts),
		"dunning_recoveries_in_stage":    float64(want.InProgress),
	} {
		if got := sum(mfs, name); got != total {
			t.Errorf("sum of %s = %v, want %v", name, got, total)
		}
	}
	var failed, recovered float64
	for _, l := range lives {
		for _, f := range l.failures {
			failed += float64(f.amount)
			if f.paid {
				recovered += float64(f.amount)
			}
		}
	}
	if got := sum(mfs, "dunning_failed_amount_total"); got != failed {
		t.Errorf("sum of dunning_failed_amount_total = %v, want %v", got, failed)
	}
	if got := sum(mfs, "dunning_recovered_amount_total"); got != recovered {
		t.Errorf("sum of dunning_recovered_amount_total = %v, want %v", got, recovered)
	}
	// The histogram holds one observation per recovery, each within the test.
	if h := mfs["dunning_time_to_recover_seconds"]; h != nil && len(h.GetMetric()) == 1 {
		hist := h.GetMetric()[0].GetHistogram()
		if hist.GetSampleSum() <= 0 {
			t.Errorf("dunning_time_to_recover_seconds sum %v, want positive", hist.GetSampleSum())
		}
	} else {
		t.Errorf("dunning_time_to_recover_seconds: %v, want one histogram", h)
	}
}

// memoLessRelease is the last commit of dunning whose recoveries keep no
// RecoveryMemo: the one before the recovery metrics and the report's memo
// (report-memo).
const memoLessRelease = "e0c3dba066d061db000109f56461f1ed1eb41c4d"

// buildRelease builds the dunning binary of an earlier commit from the
// repository's history, or skips the test where the history is not at
// hand (a shallow clone, an exported tree).
func buildRelease(t *testing.T, commit string) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is needed to build an earlier release")
	}
	if out, err := exec.Command("git", "-C", root, "cat-file", "-e", commit+"^{commit}").CombinedOutput(); err != nil {
		t.Skipf("commit %s is not in the repository's history: %v %s", commit, err, out)
	}
	dir := t.TempDir()
	archive := exec.Command("sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", root, commit, dir)
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", commit, err, out)
	}
	bin := filepath.Join(dir, "dunning-"+commit[:7])
	build := exec.Command("go", "build", "-o", bin, "./cmd/dunning")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build dunning at %s: %v\n%s", commit, err, out)
	}
	return bin
}

// Recoveries begun by a release that kept no memo: the report counts
// each once, by stage, as without figures, whether it ended on that
// release, ended after the upgrade (its run replays without the memo),
// or still runs; the recoveries begun after the upgrade keep their
// figures.
func TestReportCountsRecoveriesBegunBeforeTheMemo(t *testing.T) {
	old := buildRelease(t, memoLessRelease)
	s := Start(t, Options{WorkerBinary: old, AcceptV1Signatures: true, Env: map[string]string{
		"DUNNING_RETRY_SCHEDULE": "1h", "DUNNING_GRACE_PERIOD": "1h", "DUNNING_DEPROVISION_AFTER": "1h",
	}})
	began := time.Now()
	fail := func(amount int64, currency string) (string, string) {
		customer, intent := stripefixture.NewID("cus"), stripefixture.NewID("pi")
		s.Send(workflows.EventPaymentFailed, stripefixture.Options{Customer: customer, ObjectID: intent, Amount: amount, Currency: currency})
		s.Eventually("past-due notice of "+customer, 30*time.Second, func() bool { return s.Notices.Kinds(customer)["payment_failed"] == 1 })
		return customer, intent
	}
	// On the release without the memo: one recovered by a new card, two
	// left past due.
	endedBefore, _ := fail(1100, "usd")
	s.Send(workflows.EventPaymentMethodAttached, stripefixture.Options{Customer: endedBefore})
	if res := s.Recovery(endedBefore, time.Minute); res.Stage != workflows.StageRecovered {
		t.Fatalf("recovery on the earlier release ended %s (%s)", res.Stage, res.Summary)
	}
	endedAfter, _ := fail(2200, "eur")
	running, _ := fail(3300, "usd")
	// Each has gone once round its loop on the earlier release, and waits
	// for its next retry: the upgrade finds it idle, as it finds most.
	for _, c := range []string{endedAfter, running} {
		s.Eventually("the earlier release's recovery of "+c+" idle", 30*time.Second, func() bool {
			if st := s.Status(c); st.Next.Kind != workflows.NextRetry || s.Alerts.Kinds(c)["past_due"] != 1 {
				return false
			}
			desc, err := s.Client().DescribeWorkflow(t.Context(), workflows.RecoveryWorkflowID(c), "")
			return err == nil && len(desc.RawResponse.GetPendingActivities()) == 0 && desc.RawResponse.GetPendingWorkflowTask() == nil
		})
	}

	// The upgrade: this release's worker takes over.
	s.KillWorker()
	s.StartWorker()
	s.Send(workflows.EventPaymentMethodAttached, stripefixture.Options{Customer: endedAfter})
	if res := s.Recovery(endedAfter, time.Minute); res.Stage != workflows.StageRecovered {
		t.Fatalf("recovery begun before the upgrade ended %s (%s)", res.Stage, res.Summary)
	}
	// Begun after the upgrade, paid by the customer: with figures.
	paying, intent := fail(4400, "gbp")
	s.Send(workflows.EventPaymentSucceeded, stripefixture.Options{Customer: paying, ObjectID: intent, Amount: 4400, Currency: "gbp"})
	if res := s.Recovery(paying, time.Minute); res.Stage != workflows.StageRecovered {
		t.Fatalf("recovery begun after the upgrade ended %s (%s)", res.Stage, res.Summary)
	}
	if st, ok := s.Stage(running); st != workflows.StagePastDue || !ok {
		t.Fatalf("the recovery left running: stage %s, running %v", st, ok)
	}

	since, until := began.Add(-time.Minute), time.Now().Add(time.Minute)
	wantWithout := report.WithoutFigures{Count: 3, Stages: []report.Count{{Name: "past_due", Count: 1}, {Name: "recovered", Count: 2}}}
	got := s.waitReport(since, until, func(r report.Report) bool {
		return r.Recoveries == 1 && r.WithoutFigures.Count == wantWithout.Count
	})
	if fmt.Sprint(got.WithoutFigures) != fmt.Sprint(wantWithout) {
		t.Errorf("without figures %+v, want %+v", got.WithoutFigures, wantWithout)
	}
	wantCurrencies := []report.CurrencyFigures{{Currency: "gbp", FailedCustomers: 1, FailedAmount: 4400, RecoveredCustomers: 1, RecoveredAmount: 4400, RecoveryRate: 1}}
	if got.Recoveries != 1 || got.Recovered != 1 || got.InProgress != 0 || fmt.Sprint(got.Currencies) != fmt.Sprint(wantCurrencies) ||
		got.Outcomes[2] != (report.Count{Name: string(workflows.OutcomeRecoveredByCustomer), Count: 1}) {
		t.Errorf("figures: %d recoveries, %d recovered, %d in progress, currencies %+v, outcomes %v; want only the recovery begun after the upgrade",
			got.Recoveries, got.Recovered, got.InProgress, got.Currencies, got.Outcomes)
	}
	text := string(s.runReport(since, until, "text"))
	if line := "Without figures  3  (begun before recoveries kept them; not counted above: past_due 1, recovered 2)"; !strings.Contains(text, line) {
		t.Errorf("text report lacks %q:\n%s", line, text)
	}
	t.Logf("dunning report:\n%s", text)
}
