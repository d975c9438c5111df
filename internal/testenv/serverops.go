package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// PersistenceOps counts the requests a Temporal server made of its
// persistence, by operation: its persistence_requests and
// visibility_persistence_requests counters, summed over their other
// labels. On a SQLite dev server each goes to the one database behind a
// single writer, so they are what a workload costs the server.
type PersistenceOps map[string]float64

// PersistenceOps reads the server's counters; the server must have been
// started with TemporalOptions.Metrics.
func (d *DevServer) PersistenceOps(ctx context.Context) (PersistenceOps, error) {
	if d.metrics == "" {
		return nil, errors.New("the dev server was started without metrics")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.metrics, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", d.metrics, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.metrics, err)
	}
	ops := PersistenceOps{}
	for _, name := range []string{"persistence_requests", "visibility_persistence_requests"} {
		for _, m := range mfs[name].GetMetric() {
			op := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" {
					op = l.GetValue()
				}
			}
			ops[op] += m.GetCounter().GetValue()
		}
	}
	return ops, nil
}

// Since is what was counted after before.
func (p PersistenceOps) Since(before PersistenceOps) PersistenceOps {
	out := PersistenceOps{}
	for op, n := range p {
		if d := n - before[op]; d > 0 {
			out[op] = d
		}
	}
	return out
}

// Add adds more to p.
func (p PersistenceOps) Add(more PersistenceOps) {
	for op, n := range more {
		p[op] += n
	}
}

// Table lists, an operation a line in name order, p per one of n and
// base per one of baseN.
func (p PersistenceOps) Table(n float64, base PersistenceOps, baseN float64) string {
	var ops []string
	for op := range p {
		ops = append(ops, op)
	}
	for op := range base {
		if _, ok := p[op]; !ok {
			ops = append(ops, op)
		}
	}
	slices.Sort(ops)
	var b strings.Builder
	for _, op := range ops {
		kind := "read"
		if IsWrite(op) {
			kind = "write"
		}
		fmt.Fprintf(&b, "  %-36s %-5s %6.2f (%.2f)\n", op, kind, p[op]/n, base[op]/baseN)
	}
	return b.String()
}

// writePrefixes begin the operations that write: creations, updates,
// completions and deletions of executions and tasks, the shard's
// updates, and every visibility record.
var writePrefixes = []string{"Create", "Update", "Upsert", "Record", "Complete", "RangeComplete", "Delete", "RangeDelete", "Append", "Put", "Save"}

// IsWrite reports whether op writes.
func IsWrite(op string) bool {
	for _, p := range writePrefixes {
		if strings.HasPrefix(op, p) {
			return true
		}
	}
	return false
}

// Writes totals the operations that write.
func (p PersistenceOps) Writes() float64 { return p.sum(true) }

// Reads totals the operations that only read.
func (p PersistenceOps) Reads() float64 { return p.sum(false) }

func (p PersistenceOps) sum(writes bool) float64 {
	var n float64
	for op, c := range p {
		if IsWrite(op) == writes {
			n += c
		}
	}
	return n
}
