//go:build soak

package soak

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"dunning/workflows"
)

// TestSoak runs the soak: SOAK_DURATION of traffic and faults, a drain,
// the audit, one summary line; it fails on any violation.
func TestSoak(t *testing.T) {
	set := loadSettings(t)
	t.Logf("soak: %s of traffic (%.0f customers a minute), seed %d, logs in %s", set.Duration, set.Rate, set.Seed, set.Dir)
	began := time.Now()
	st := startStack(t, set)
	r := newRand(set.Seed)
	snd := newSender(st, r)
	tr := &traffic{set: set, st: st, snd: snd, r: r, byID: map[string]*customerModel{}, errorf: t.Errorf, logf: t.Logf}
	fl := &faults{st: st, r: r, logf: t.Logf, injected: map[string]int{}, busy: map[string]bool{}}

	supCtx, stopSupervisor := context.WithCancel(context.Background())
	supervised := make(chan struct{})
	go func() { st.supervise(supCtx, t.Logf); close(supervised) }()
	defer func() { stopSupervisor(); <-supervised }()

	ctx, cancel := context.WithTimeout(t.Context(), set.Duration)
	defer cancel()
	faultsDone := make(chan struct{})
	go func() { fl.run(ctx); close(faultsDone) }()
	progressDone := make(chan struct{})
	go func() { progress(ctx, t, tr, snd, fl); close(progressDone) }()
	tr.run(ctx)
	<-faultsDone
	<-progressDone

	// Drain: no more faults or customers; the stories end, every process
	// runs again, every delivery is answered, every recovery ends.
	drainBy := time.Now().Add(set.Drain)
	t.Logf("traffic and faults stopped after %s; draining (at most %s)", time.Since(began).Round(time.Second), set.Drain)
	for !st.allUp() && time.Now().Before(drainBy) {
		time.Sleep(time.Second)
	}
	st.waitReady(t, time.Until(drainBy))
	tr.wait()
	if !snd.drain(time.Until(drainBy)) {
		t.Errorf("some deliveries were still not answered 200 when the drain ended")
	}
	waitRecoveries(t, st, tr, drainBy)
	t.Logf("drained after %s", time.Since(began).Round(time.Second))

	actx, acancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer acancel()
	a := runAudit(actx, st, tr, snd)
	for _, k := range violationKinds {
		for i, f := range a.found[k] {
			if i == 20 {
				t.Errorf("%s: %d more", k, len(a.found[k])-20)
				break
			}
			t.Errorf("%s: %s", k, f)
		}
	}
	fmt.Println(summary(set, time.Since(began), tr, snd, fl, st, a))
	if n := a.total(); n > 0 {
		t.Errorf("%d violations; logs and the database in %s", n, set.Dir)
	}
}

// waitRecoveries waits until every customer's recovery has ended (or
// never began), or until the deadline.
func waitRecoveries(t *testing.T, st *stack, tr *traffic, by time.Time) {
	pending := tr.customers()
	for len(pending) > 0 && time.Now().Before(by) {
		var still []*customerModel
		for _, c := range pending {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			v, err := readRecoveryState(ctx, st, c.ID)
			cancel()
			if err != nil || v {
				still = append(still, c)
			}
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(2 * time.Second)
		}
	}
	if len(pending) > 0 {
		t.Logf("%d recoveries still running when the drain ended", len(pending))
	}
}

// readRecoveryState reports whether the customer's recovery runs.
func readRecoveryState(ctx context.Context, st *stack, customer string) (bool, error) {
	desc, err := st.client().DescribeWorkflow(ctx, workflows.RecoveryWorkflowID(customer), "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return desc.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}

// progress logs a line a minute while the soak runs.
func progress(ctx context.Context, t *testing.T, tr *traffic, snd *sender, fl *faults) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		events, deliveries, ok, refused, unanswered, _ := snd.deliveryCounts()
		fl.mu.Lock()
		faults := counts(fl.injected, faultKinds)
		fl.mu.Unlock()
		t.Logf("progress: %d customers, %d events, %d deliveries (%d 200, %d refused, %d unanswered), faults %s",
			len(tr.customers()), events, deliveries, ok, refused, unanswered, faults)
	}
}

func counts(m map[string]int, order []string) string {
	var b []string
	for _, k := range order {
		b = append(b, fmt.Sprintf("%s=%d", k, m[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(order, k) {
			b = append(b, fmt.Sprintf("%s=%d", k, m[k]))
		}
	}
	return strings.Join(b, " ")
}

// summary is the soak's one line.
func summary(set settings, took time.Duration, tr *traffic, snd *sender, fl *faults, st *stack, a *audit) string {
	events, deliveries, ok, refused, unanswered, dups := snd.deliveryCounts()
	fl.mu.Lock()
	faults := counts(fl.injected, faultKinds)
	fl.mu.Unlock()
	st.mu.Lock()
	restarts := st.restarts
	st.mu.Unlock()
	violations := map[string]int{}
	for _, k := range violationKinds {
		violations[k] = len(a.found[k])
	}
	result := "PASS"
	if a.total() > 0 {
		result = "FAIL"
	}
	return fmt.Sprintf("soak %s: %s of traffic in %s, seed %d | customers %d | events %d, deliveries %d (200 %d, refused %d, unanswered %d), duplicates %d | faults %s, restarts %d | final stage %s (late cards %d) | paths %s | violations %s",
		result, set.Duration, took.Round(time.Second), set.Seed, len(tr.customers()), events, deliveries, ok, refused, unanswered, dups,
		faults, restarts, counts(a.final, []string{"recovered", "deprovisioned", "waived", "none"}), a.lateCards, counts(a.paths, storyPaths), counts(violations, violationKinds))
}
