package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"dunning/webhook"
	"dunning/worker"
)

// prometheusSeries are the series Prometheus itself adds to every scrape.
var prometheusSeries = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "scrape_series_added"}

// targetLabels are the labels Prometheus adds to every scraped series
// (deploy/prometheus/prometheus.yml).
var targetLabels = []string{"job", "instance"}

// mustBeShown are the metrics the dashboards are there for: each must be
// read by some panel.
var mustBeShown = []string{
	"dunning_recoveries_started_total", "dunning_recoveries_ended_total",
	"dunning_failed_amount_total", "dunning_recovered_amount_total",
	"dunning_time_to_recover_seconds_bucket", "dunning_payment_attempts_total",
	"dunning_recoveries_in_stage",
	"dunning_webhook_requests_total", "dunning_webhook_start_seconds_bucket",
	"dunning_reconcile_runs_total", "dunning_reconcile_events_total",
	"dunning_portal_requests_total",
}

// metricInfo is what a dashboard may rely on about one metric family: its
// type, and its labels with the values they take when the code names them
// all up front (nil: any value).
type metricInfo struct {
	kind   dto.MetricType
	labels map[string][]string
}

// series is one name a query can select (a histogram's _bucket, _sum,
// _count), with the labels it carries.
type series struct {
	family string
	labels map[string][]string
}

// seriesOf expands a family into the names Prometheus stores.
func seriesOf(name string, m metricInfo, into map[string]series) {
	add := func(n string, extra ...string) {
		ls := map[string][]string{}
		for k, v := range m.labels {
			ls[k] = v
		}
		for _, e := range extra {
			ls[e] = nil
		}
		into[n] = series{family: name, labels: ls}
	}
	switch m.kind {
	case dto.MetricType_HISTOGRAM:
		add(name+"_bucket", "le")
		add(name + "_sum")
		add(name + "_count")
	case dto.MetricType_SUMMARY:
		add(name, "quantile")
		add(name + "_sum")
		add(name + "_count")
	default:
		add(name)
	}
}

// recordingRegistry registers with a real registry and remembers what was
// registered: Gather leaves out a vector none of whose children exist yet
// (dunning_webhook_start_seconds until the first event), but its
// description names it and its labels.
type recordingRegistry struct {
	*prometheus.Registry
	families map[string]metricInfo
}

func newRecordingRegistry() *recordingRegistry {
	return &recordingRegistry{Registry: prometheus.NewRegistry(), families: map[string]metricInfo{}}
}

// descPattern reads a prometheus.Desc's String(): its name and its
// variable labels.
var descPattern = regexp.MustCompile(`^Desc\{fqName: "([a-zA-Z_:][a-zA-Z0-9_:]*)", .*variableLabels: \{([^{}]*)\}\}$`)

func (r *recordingRegistry) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	kind := dto.MetricType_UNTYPED
	switch c.(type) {
	case *prometheus.CounterVec:
		kind = dto.MetricType_COUNTER
	case *prometheus.GaugeVec:
		kind = dto.MetricType_GAUGE
	case *prometheus.HistogramVec:
		kind = dto.MetricType_HISTOGRAM
	case *prometheus.SummaryVec:
		kind = dto.MetricType_SUMMARY
	}
	descs := make(chan *prometheus.Desc)
	go func() { c.Describe(descs); close(descs) }()
	for d := range descs {
		m := descPattern.FindStringSubmatch(d.String())
		if m == nil {
			return fmt.Errorf("cannot read the name of %s (has prometheus.Desc.String changed?)", d)
		}
		info := metricInfo{kind: kind, labels: map[string][]string{}}
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
				info.labels[l] = nil
			}
		}
		r.families[m[1]] = info
	}
	return nil
}

func (r *recordingRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// registeredSeries is every series the webhook and the worker register,
// from what their registries describe and gather.
func registeredSeries(t *testing.T) map[string]series {
	t.Helper()
	out := map[string]series{}
	for part, register := range map[string]func(prometheus.Registerer){
		"webhook": func(reg prometheus.Registerer) { webhook.NewMetrics(reg) },
		"worker":  func(reg prometheus.Registerer) { worker.NewMetrics(reg); worker.RegisterRecoveryMetrics(reg) },
	} {
		reg := newRecordingRegistry()
		register(reg)
		families, err := reg.Gather()
		if err != nil {
			t.Fatalf("%s metrics: %v", part, err)
		}
		if len(reg.families) == 0 {
			t.Fatalf("the %s registers no metrics", part)
		}
		// What was gathered knows its type and the label values the
		// code exports up front (every outcome, every result).
		for _, f := range families {
			info, ok := reg.families[f.GetName()]
			if !ok {
				info = metricInfo{labels: map[string][]string{}}
			}
			info.kind = f.GetType()
			for _, m := range f.GetMetric() {
				for _, lp := range m.GetLabel() {
					if !slices.Contains(info.labels[lp.GetName()], lp.GetValue()) {
						info.labels[lp.GetName()] = append(info.labels[lp.GetName()], lp.GetValue())
					}
				}
			}
			reg.families[f.GetName()] = info
		}
		for name, info := range reg.families {
			seriesOf(name, info, out)
		}
	}
	return out
}

// dashboard is the part of a Grafana dashboard JSON the checks read.
type dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []target    `json:"targets"`
	Panels     []panel     `json:"panels"` // a collapsed row's
	GridPos    *struct{}   `json:"gridPos"`
}

type target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *datasource `json:"datasource"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func loadDashboard(t *testing.T, path string) dashboard {
	t.Helper()
	var d dashboard
	decodeFile(t, path, json.Unmarshal, &d)
	return d
}

// allPanels is every panel but rows, nested ones included.
func (d dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" {
				out = append(out, p)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// datasources is every data source a panel or query names.
func (d dashboard) datasources() []datasource {
	var out []datasource
	for _, p := range d.allPanels() {
		if p.Datasource != nil {
			out = append(out, *p.Datasource)
		}
		for _, q := range p.Targets {
			if q.Datasource != nil {
				out = append(out, *q.Datasource)
			}
		}
	}
	return out
}

// grafanaVariables are Grafana's built-in interval variables, replaced by
// Grafana before a query reaches Prometheus.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "1m", "${__rate_interval}", "1m",
	"$__interval", "15s", "${__interval}", "15s",
	"$__range", "7d", "${__range}", "7d",
)

// dashboardFiles is every dashboard kept in the repository.
func dashboardFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "deploy", "grafana", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in deploy/grafana/dashboards: %v", err)
	}
	return files
}

// Every query of every panel is PromQL that Prometheus accepts, and reads
// only metrics the code registers, with their labels and label values.
func TestDashboardQueriesReadRegisteredMetrics(t *testing.T) {
	registered := registeredSeries(t)
	known := map[string]series{}
	for name, s := range registered {
		known[name] = s
	}
	for _, name := range prometheusSeries {
		known[name] = series{family: name, labels: map[string][]string{}}
	}

	used := map[string]bool{}
	for _, file := range dashboardFiles(t) {
		d := loadDashboard(t, file)
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: a provisioned dashboard needs a uid and a title", file)
		}
		titles := map[string]bool{}
		panels := d.allPanels()
		if len(panels) == 0 {
			t.Errorf("%s has no panels", file)
		}
		for _, p := range panels {
			where := fmt.Sprintf("%s: panel %q", filepath.Base(file), p.Title)
			if p.Title == "" || titles[p.Title] {
				t.Errorf("%s: panel %d has an empty or repeated title %q", file, p.ID, p.Title)
			}
			titles[p.Title] = true
			if p.GridPos == nil {
				t.Errorf("%s has no gridPos", where)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s has no query", where)
			}
			for _, q := range p.Targets {
				for _, problem := range checkQuery(q.Expr, known, used) {
					t.Errorf("%s, query %s: %s\n\t%s", where, q.RefID, problem, q.Expr)
				}
			}
		}
	}
	for _, name := range mustBeShown {
		if !used[name] {
			t.Errorf("no panel shows %s", name)
		}
	}
}

// checkQuery parses expr as Prometheus would (after Grafana's variables)
// and says what is wrong with it; it marks in used each series it reads.
func checkQuery(expr string, known map[string]series, used map[string]bool) []string {
	if strings.TrimSpace(expr) == "" {
		return []string{"empty query"}
	}
	q := grafanaVariables.Replace(expr)
	if strings.Contains(q, "$") {
		return []string{"uses a Grafana variable the dashboard does not define"}
	}
	e, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	if err != nil {
		return []string{fmt.Sprintf("not PromQL: %v", err)}
	}
	var problems []string
	parser.Inspect(e, func(node parser.Node, path []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			problems = append(problems, checkSelector(n, known, used)...)
		case *parser.AggregateExpr:
			if n.Without || len(n.Grouping) == 0 {
				break
			}
			allowed := labelsUnder(n.Expr, known)
			for _, l := range n.Grouping {
				if !allowed[l] {
					problems = append(problems, fmt.Sprintf("%s by (%s): no series it aggregates has the label %s", n.Op, strings.Join(n.Grouping, ", "), l))
				}
			}
		case *parser.Call:
			if n.Func.Name != "histogram_quantile" || len(n.Args) != 2 {
				break
			}
			if agg, ok := unwrap(n.Args[1]).(*parser.AggregateExpr); ok && (agg.Without || !slices.Contains(agg.Grouping, "le")) {
				problems = append(problems, "histogram_quantile over an aggregation that drops le")
			}
		}
		return nil
	})
	return problems
}

func unwrap(e parser.Expr) parser.Expr {
	for {
		p, ok := e.(*parser.ParenExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

// checkSelector: a known series, labels it has, values it takes.
func checkSelector(n *parser.VectorSelector, known map[string]series, used map[string]bool) []string {
	name := n.Name
	if name == "" {
		return []string{fmt.Sprintf("%s names no metric", n)}
	}
	s, ok := known[name]
	if !ok {
		return []string{fmt.Sprintf("%s is registered neither by the webhook (webhook.NewMetrics) nor by the worker (worker.NewMetrics), nor listed in pendingRecoveryMetrics", name)}
	}
	used[name] = true
	var problems []string
	for _, m := range n.LabelMatchers {
		if m.Name == model.MetricNameLabel || slices.Contains(targetLabels, m.Name) {
			continue
		}
		values, has := s.labels[m.Name]
		if !has {
			problems = append(problems, fmt.Sprintf("%s has no label %s (labels: %v)", name, m.Name, sortedKeys(s.labels)))
			continue
		}
		if values == nil || (m.Type != labels.MatchEqual && m.Type != labels.MatchRegexp) {
			continue
		}
		// A literal, or an alternation of literals: each must be a value
		// the code exports.
		alternatives := []string{m.Value}
		if m.Type == labels.MatchRegexp {
			alternatives = strings.Split(m.Value, "|")
		}
		for _, v := range alternatives {
			if m.Type == labels.MatchRegexp && regexp.QuoteMeta(v) != v {
				continue // a pattern, not a value
			}
			if !slices.Contains(values, v) {
				problems = append(problems, fmt.Sprintf("%s{%s=%q}: the code never exports %q (values: %v)", name, m.Name, m.Value, v, values))
			}
		}
	}
	return problems
}

// labelsUnder is every label a series under e may carry.
func labelsUnder(e parser.Expr, known map[string]series) map[string]bool {
	out := map[string]bool{}
	for _, l := range targetLabels {
		out[l] = true
	}
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			for l := range known[vs.Name].labels {
				out[l] = true
			}
		}
		return nil
	})
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// The checks above catch what they should: a query the parser rejects, a
// metric nobody registers, a label or value the code does not have.
func TestDashboardChecksCatchMistakes(t *testing.T) {
	known := registeredSeries(t)
	for _, c := range []struct {
		expr, want string
	}{
		{`sum(rate(dunning_webhook_requests_total[$__rate_interval]))`, ""},
		{`sum(rate(dunning_webhook_requests_total[5m])`, "not PromQL"},
		{`sum(rate(dunning_webhook_request_total[5m]))`, "registered neither"},
		{`sum by (outcome) (rate(dunning_reconcile_runs_total[5m]))`, "no series it aggregates has the label outcome"},
		{`sum(rate(dunning_webhook_requests_total{outcom="started"}[5m]))`, "has no label outcom"},
		{`sum(rate(dunning_webhook_requests_total{outcome="startd"}[5m]))`, `never exports "startd"`},
		{`sum(increase(dunning_recoveries_ended_total{outcome=~"recovered_by_retry|recovered_by_card"}[1d]))`, `never exports "recovered_by_card"`},
		{`histogram_quantile(0.9, sum by (result) (rate(dunning_webhook_start_seconds_bucket[5m])))`, "drops le"},
		{`histogram_quantile(0.9, sum by (le) (rate(dunning_webhook_start_seconds_bucket[5m])))`, ""},
		{`sum(rate(dunning_webhook_start_seconds[5m]))`, "registered neither"},
		{`sum(rate(dunning_webhook_requests_total[$foo]))`, "Grafana variable"},
		{`sum by (job) (up)`, "registered neither"}, // up only with prometheusSeries
	} {
		problems := checkQuery(c.expr, known, map[string]bool{})
		got := strings.Join(problems, "; ")
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%s: problems %q, want %q", c.expr, got, c.want)
		}
	}
}

// The dashboards are checked with the parser of the Prometheus version the
// stack runs: prom/prometheus:v3.N.P is github.com/prometheus/prometheus
// v0.3NN.P in go.mod.
func TestPrometheusImageMatchesTheParser(t *testing.T) {
	p := project(t)
	img := p.Services["prometheus"].Image
	m := regexp.MustCompile(`^prom/prometheus:v3\.(\d+)\.(\d+)$`).FindStringSubmatch(img)
	if m == nil {
		t.Fatalf("service prometheus runs %q; want an official prom/prometheus:v3.x.y", img)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("github.com/prometheus/prometheus v0.3%02s.%s", m[1], m[2])
	if !strings.Contains(string(gomod), want) {
		t.Errorf("the stack runs %s but the dashboards are parsed by go.mod's %s; want %q",
			img, regexp.MustCompile(`github.com/prometheus/prometheus v\S+`).Find(gomod), want)
	}
}
