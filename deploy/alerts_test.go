package deploy

import (
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// temporalServerSeries are the Temporal server's metrics the alert rules
// read, with the labels the rules use, as the server v1.29.1 names them on
// its Prometheus endpoint (framework tally, timerType histogram:
// deploy/temporal/compose.yaml). Each is defined in the server's
// common/metrics/metric_defs.go and recorded where noted.
var temporalServerSeries = map[string][]string{
	// ApproximateBacklogAgeSeconds, a gauge per task queue
	// (service/matching/db.go).
	"approximate_backlog_age_seconds": {"namespace", "taskqueue"},
	// TaskScheduleToStartLatency, a timer per task queue, for workflow
	// and activity tasks (service/history/api/recordworkflowtaskstarted,
	// recordactivitytaskstarted).
	"task_schedule_to_start_latency_bucket": {"namespace", "taskqueue", "le"},
	// PersistenceRequests and PersistenceFailures, counters per operation
	// (common/persistence/persistence_metric_clients.go).
	"persistence_requests": {"operation"},
	"persistence_errors":   {"operation"},
	// WorkflowFailedCount, WorkflowTimeoutCount, WorkflowTerminateCount,
	// counters per namespace (service/history/workflow/metrics.go).
	"workflow_failed":    {"namespace"},
	"workflow_timeout":   {"namespace"},
	"workflow_terminate": {"namespace"},
	// WorkflowTaskAttempt, a dimensionless histogram
	// (service/history/workflow/workflow_task_state_machine.go).
	"workflow_task_attempt_bucket": {"namespace", "le"},
}

// mustAlertOn are the metrics whose trouble someone must hear of.
var mustAlertOn = []string{
	"dunning_webhook_requests_total", "dunning_webhook_start_seconds_bucket", "dunning_webhook_unreadable_total",
	"dunning_portal_requests_total", "dunning_reconcile_runs_total", "dunning_reconcile_events_total",
	"dunning_recoveries_ended_total", "dunning_payment_attempts_total", "dunning_recoveries_in_stage", "up",
	"approximate_backlog_age_seconds", "task_schedule_to_start_latency_bucket", "persistence_errors",
	"workflow_failed", "workflow_task_attempt_bucket",
}

// Every alerting rule is one Prometheus loads (rulefmt, as promtool check
// rules does), reads only metrics that exist, with their labels and
// label values, and says how bad and what it means; Prometheus loads the
// file.
func TestAlertRules(t *testing.T) {
	p := project(t)
	cfg := loadPrometheusConfig(t, p)
	var file string
	for _, rf := range cfg.RuleFiles {
		local, ok := mountedFile(t, p.Services["prometheus"], rf)
		if !ok {
			t.Errorf("prometheus.yml loads rules from %s, which no read-only volume of the prometheus service mounts", rf)
			continue
		}
		file = local
	}
	if len(cfg.RuleFiles) != 1 || file == "" {
		t.Fatalf("prometheus.yml loads rule files %v; want deploy/prometheus/alerts.yml, mounted", cfg.RuleFiles)
	}
	if abs, want := mustAbs(t, file), mustAbs(t, filepath.Join(root, "deploy", "prometheus", "alerts.yml")); abs != want {
		t.Errorf("prometheus loads rules from %s, want %s", abs, want)
	}

	groups, errs := rulefmt.ParseFile(file, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, err := range errs {
		t.Errorf("Prometheus would refuse the rules: %v", err)
	}
	if groups == nil {
		t.FailNow()
	}

	known := registeredSeries(t)
	for _, name := range prometheusSeries {
		known[name] = series{family: name, labels: map[string][]string{}}
	}
	for name, ls := range temporalServerSeries {
		s := series{family: name, labels: map[string][]string{}}
		for _, l := range ls {
			s.labels[l] = nil
		}
		known[name] = s
	}
	used := map[string]bool{}
	names := map[string]bool{}
	rules := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			rules++
			where := g.Name + "/" + r.Alert
			if r.Alert == "" {
				t.Errorf("group %s: a rule that is no alert (%q); this file holds alerts", g.Name, r.Record)
				continue
			}
			if names[r.Alert] {
				t.Errorf("alert %s twice", r.Alert)
			}
			names[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", where, s)
			}
			if strings.TrimSpace(r.Annotations["summary"]) == "" {
				t.Errorf("%s has no summary", where)
			}
			for _, problem := range checkQuery(r.Expr, known, used) {
				t.Errorf("%s: %s\n\t%s", where, problem, r.Expr)
			}
		}
	}
	if rules == 0 {
		t.Fatal("no alert rules")
	}
	for _, name := range mustAlertOn {
		if !used[name] {
			t.Errorf("no alert reads %s", name)
		}
	}
	for name := range temporalServerSeries {
		if !used[name] {
			t.Errorf("temporalServerSeries lists %s, which no alert reads", name)
		}
	}
}

// The rule checks catch a rule Prometheus would refuse and one that reads
// a metric nobody exports.
func TestAlertChecksCatchMistakes(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	for _, c := range []struct{ rules, want string }{
		{"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(rate(up[5m])\n", "parse error"},
		{"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    for: soon\n", "not a valid duration"},
		{"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    annotations:\n      summary: '{{ $labels.job'\n", "template"},
	} {
		_, errs := rulefmt.Parse([]byte(c.rules), false, model.UTF8Validation, p, slog.New(slog.NewTextHandler(io.Discard, nil)))
		var got []string
		for _, err := range errs {
			got = append(got, err.Error())
		}
		if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, c.want) }) {
			t.Errorf("rules %q: errors %q, want one saying %q", c.rules, got, c.want)
		}
	}
	known := registeredSeries(t)
	if problems := checkQuery(`sum(rate(persistence_errors[5m])) > 0`, known, map[string]bool{}); len(problems) == 0 {
		t.Error("a Temporal server metric not listed in temporalServerSeries passed the check")
	}
}
