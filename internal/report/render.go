package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"dunning/workflows"
)

// Formats the report is written in.
const (
	FormatText = "text"
	FormatJSON = "json"
	FormatCSV  = "csv"
)

// Write writes rep in format.
func Write(w io.Writer, rep Report, format string) error {
	switch format {
	case FormatText:
		return writeText(w, rep)
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case FormatCSV:
		return writeCSV(w, rep)
	}
	return fmt.Errorf("unknown format %q (text, json or csv)", format)
}

func pct(r float64) string { return strconv.FormatFloat(100*r, 'f', 1, 64) + "%" }

// Days writes a duration the way people read times to recover: "2d 4h",
// "3h 20m", "45m", and "12s" under a minute (a card updated at once).
func Days(d time.Duration) string {
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd %dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func writeText(w io.Writer, rep Report) error {
	// Each block is aligned on its own; a blank line ends a block.
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) {
		if format == "" {
			_ = tw.Flush()
			tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		}
		fmt.Fprintf(tw, format+"\n", args...)
	}
	p("Recoveries with a first failure from %s to %s", rep.Window.Since.UTC().Format(time.RFC3339), rep.Window.Until.UTC().Format(time.RFC3339))
	p("")
	p("Recoveries\t%d", rep.Recoveries)
	p("Recovered\t%d\t(%s by count)", rep.Recovered, pct(rep.RecoveryRate))
	p("In progress\t%d", rep.InProgress)
	if rep.Stopped > 0 {
		p("Stopped\t%d\t(terminated or failed in Temporal before an outcome)", rep.Stopped)
	}
	if wf := rep.WithoutFigures; wf.Count > 0 {
		stages := make([]string, len(wf.Stages))
		for i, s := range wf.Stages {
			stages[i] = fmt.Sprintf("%s %d", s.Name, s.Count)
		}
		p("Without figures\t%d  (begun before recoveries kept them; not counted above: %s)", wf.Count, strings.Join(stages, ", "))
	}
	if rep.TimeToRecover.Count > 0 {
		p("Time to recover\tmedian %s\tp90 %s", Days(seconds(rep.TimeToRecover.MedianS)), Days(seconds(rep.TimeToRecover.P90S)))
	}
	p("")
	p("Currency\tFailed customers\tFailed\tRecovered customers\tRecovered\tRate by amount\tCredited\tSettled, amount unknown")
	for _, c := range rep.Currencies {
		p("%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s", strings.ToUpper(c.Currency), c.FailedCustomers, workflows.FormatMoney(c.FailedAmount, c.Currency),
			c.RecoveredCustomers, workflows.FormatMoney(c.RecoveredAmount, c.Currency), pct(c.RecoveryRate),
			workflows.FormatMoney(c.CreditedAmount, c.Currency), workflows.FormatMoney(c.UnknownAmount, c.Currency))
	}
	p("")
	p("Outcome\tRecoveries")
	for _, o := range rep.Outcomes {
		p("%s\t%d", o.Name, o.Count)
	}
	p("in progress\t%d", rep.InProgress)
	if rep.Stopped > 0 {
		p("stopped\t%d", rep.Stopped)
	}
	for _, sec := range []struct {
		title string
		rows  []DeclineFigures
	}{{"Decline code", rep.DeclineCodes}, {"Decline class", rep.DeclineClasses}} {
		p("")
		p("%s\tIntents\tPaid\tRate", sec.title)
		for _, d := range sec.rows {
			p("%s\t%d\t%d\t%s", d.Name, d.Intents, d.Paid, pct(d.PaidRate))
		}
	}
	return tw.Flush()
}

// writeCSV writes one figure a row: section, name, currency, value
// (amounts in minor units, rates as fractions, times in seconds); the
// recoveries without figures last, by stage.
func writeCSV(w io.Writer, rep Report) error {
	cw := csv.NewWriter(w)
	row := func(section, name, currency string, v any) {
		_ = cw.Write([]string{section, name, currency, fmt.Sprint(v)})
	}
	row("section", "name", "currency", "value")
	row("window", "since", "", rep.Window.Since.UTC().Format(time.RFC3339))
	row("window", "until", "", rep.Window.Until.UTC().Format(time.RFC3339))
	row("summary", "recoveries", "", rep.Recoveries)
	row("summary", "recovered", "", rep.Recovered)
	row("summary", "in_progress", "", rep.InProgress)
	row("summary", "stopped", "", rep.Stopped)
	row("summary", "recovery_rate", "", rep.RecoveryRate)
	row("time_to_recover", "count", "", rep.TimeToRecover.Count)
	row("time_to_recover", "median_seconds", "", rep.TimeToRecover.MedianS)
	row("time_to_recover", "p90_seconds", "", rep.TimeToRecover.P90S)
	for _, c := range rep.Currencies {
		row("currency", "failed_customers", c.Currency, c.FailedCustomers)
		row("currency", "failed_amount", c.Currency, c.FailedAmount)
		row("currency", "recovered_customers", c.Currency, c.RecoveredCustomers)
		row("currency", "recovered_amount", c.Currency, c.RecoveredAmount)
		row("currency", "recovery_rate", c.Currency, c.RecoveryRate)
		row("currency", "credited_amount", c.Currency, c.CreditedAmount)
		row("currency", "settled_unknown_amount", c.Currency, c.UnknownAmount)
	}
	for _, o := range rep.Outcomes {
		row("outcome", o.Name, "", o.Count)
	}
	for _, d := range rep.DeclineCodes {
		row("decline_code_intents", d.Name, "", d.Intents)
		row("decline_code_paid", d.Name, "", d.Paid)
	}
	for _, d := range rep.DeclineClasses {
		row("decline_class_intents", d.Name, "", d.Intents)
		row("decline_class_paid", d.Name, "", d.Paid)
	}
	row("without_figures", "count", "", rep.WithoutFigures.Count)
	for _, s := range rep.WithoutFigures.Stages {
		row("without_figures_stage", s.Name, "", s.Count)
	}
	cw.Flush()
	return cw.Error()
}
