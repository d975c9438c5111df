package soak

import (
	"maps"
	"slices"
	"testing"
	"time"

	"dunning/e2e"
	"dunning/workflows"
)

func TestExpectations(t *testing.T) {
	const (
		pd = workflows.StagePastDue
		su = workflows.StageSuspended
		de = workflows.StageDeprovisioned
		re = workflows.StageRecovered
		wa = workflows.StageWaived
	)
	for _, c := range []struct {
		name            string
		stages          []workflows.Stage
		notices, alerts map[string]int // received
		want            map[string]int // non-zero expectations
		actions         map[string]int
		problem         bool
	}{
		{"never paid", []workflows.Stage{pd, su, de},
			map[string]int{"payment_failed": 1}, nil,
			map[string]int{"notice payment_failed": 1, "alert past_due": 1, "notice account_suspended": 1, "alert suspended": 1,
				"notice account_deprovisioned": 1, "alert deprovisioned": 1},
			map[string]int{"suspend": 1, "deprovision": 1}, false},
		{"recovered, announced", []workflows.Stage{pd, re},
			map[string]int{"payment_failed": 1}, map[string]int{"past_due": 1},
			map[string]int{"notice payment_failed": 1, "alert past_due": 1, "notice payment_recovered": 1, "alert recovered": 1},
			nil, false},
		{"paid at the first check: quiet", []workflows.Stage{pd, re}, nil, nil, nil, nil, false},
		{"resumed", []workflows.Stage{pd, su, re},
			map[string]int{"payment_failed": 1}, map[string]int{"past_due": 1},
			map[string]int{"notice payment_failed": 1, "alert past_due": 1, "notice account_suspended": 1, "alert suspended": 1,
				"notice account_resumed": 1, "alert recovered": 1},
			map[string]int{"suspend": 1, "resume": 1}, false},
		{"waived while past due", []workflows.Stage{pd, wa},
			map[string]int{"payment_failed": 1}, nil,
			map[string]int{"notice payment_failed": 1, "alert past_due": 1, "notice payment_waived": 1, "alert waived": 1},
			nil, false},
		{"waived at once: the ops alert alone", []workflows.Stage{pd, wa}, nil, nil,
			map[string]int{"alert waived": 1}, nil, false},
		{"waived while suspended", []workflows.Stage{pd, su, wa},
			map[string]int{"payment_failed": 1}, nil,
			map[string]int{"notice payment_failed": 1, "alert past_due": 1, "notice account_suspended": 1, "alert suspended": 1,
				"notice account_resumed": 1, "alert waived": 1},
			map[string]int{"suspend": 1, "resume": 1}, false},
		{"a quiet life, then a second one announced", []workflows.Stage{pd, re, pd, su, de},
			map[string]int{"payment_failed": 1}, map[string]int{"past_due": 1},
			map[string]int{"notice payment_failed": 1, "alert past_due": 1, "notice account_suspended": 1, "alert suspended": 1,
				"notice account_deprovisioned": 1, "alert deprovisioned": 1},
			map[string]int{"suspend": 1, "deprovision": 1}, false},
		{"suspended without ever being told", []workflows.Stage{pd, su, de}, nil, nil,
			map[string]int{"notice payment_failed": 1, "alert past_due": 1, "notice account_suspended": 1, "alert suspended": 1,
				"notice account_deprovisioned": 1, "alert deprovisioned": 1},
			map[string]int{"suspend": 1, "deprovision": 1}, true},
		{"told twice for one life", []workflows.Stage{pd, re},
			map[string]int{"payment_failed": 2}, nil,
			map[string]int{"notice payment_failed": 1, "alert past_due": 1, "notice payment_recovered": 1, "alert recovered": 1},
			nil, true},
		{"reopened: paid while another failure was found, suspended again, resumed", []workflows.Stage{pd, su, pd, su, re},
			map[string]int{"payment_failed": 1}, map[string]int{"past_due": 1},
			map[string]int{"notice payment_failed": 1, "alert past_due": 1, "notice account_suspended": 2, "alert suspended": 2,
				"notice account_resumed": 2, "alert reopened": 1, "alert recovered": 1},
			map[string]int{"suspend": 2, "resume": 2}, false},
		{"reopened while Stripe could not be asked, then recovered", []workflows.Stage{pd, su, pd, re},
			map[string]int{"payment_failed": 1}, map[string]int{"past_due": 1},
			map[string]int{"notice payment_failed": 1, "alert past_due": 1, "notice account_suspended": 1, "alert suspended": 1,
				"notice account_resumed": 1, "alert reopened": 1, "notice payment_recovered": 1, "alert recovered": 1},
			map[string]int{"suspend": 1, "resume": 1}, false},
		{"no recovery", nil, nil, nil, nil, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			want, actions, problem := expectations(c.stages, orEmpty(c.notices), orEmpty(c.alerts))
			if got := nonZero(want); !maps.Equal(got, orEmpty(c.want)) {
				t.Errorf("want %v, expected %v", got, orEmpty(c.want))
			}
			if !maps.Equal(actions, orEmpty(c.actions)) {
				t.Errorf("actions %v, expected %v", actions, orEmpty(c.actions))
			}
			if (problem != "") != c.problem {
				t.Errorf("problem %q, expected one: %v", problem, c.problem)
			}
		})
	}
}

func TestStageEffectsCoverEveryStage(t *testing.T) {
	for _, to := range []workflows.Stage{workflows.StagePastDue, workflows.StageSuspended, workflows.StageDeprovisioned,
		workflows.StageRecovered, workflows.StageWaived} {
		n, al, _ := stageEffects(workflows.StagePastDue, to)
		if !slices.Contains(stageNotices, n) || !slices.Contains(stageAlerts, al) {
			t.Errorf("%s: notice %q, alert %q not among those the audit counts", to, n, al)
		}
	}
}

func TestLastReadBetween(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	reads := []e2e.Request{{At: at(1), Key: "a"}, {At: at(5), Key: "b"}, {At: at(9), Key: "c"}}
	for _, c := range []struct {
		after, before int
		want          string
	}{
		{0, 10, "c"}, {0, 9, "b"}, {1, 5, ""}, {2, 6, "b"}, {9, 20, ""}, {-5, 1, ""},
	} {
		got, ok := lastReadBetween(reads, at(c.after), at(c.before))
		if (c.want == "") == ok || (ok && got.Key != c.want) {
			t.Errorf("between %ds and %ds: %q %v, want %q", c.after, c.before, got.Key, ok, c.want)
		}
	}
}

func orEmpty(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

func nonZero(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

func TestNoticeIntent(t *testing.T) {
	for _, c := range []struct {
		key, intent string
		again, ok   bool
	}{
		{"life-1:past_due:notice", "", false, false},
		{"life-1:past_due:pi_2:notice", "pi_2", false, true},
		{"life-1:past_due:pi_1:again:1:notice", "pi_1", true, true},
		{"life-1:past_due:alert", "", false, false},
		{"life-1:suspended:notice", "", false, false},
		{"life-1:past_due:pi_1:again:1:alert", "", false, false},
	} {
		intent, again, ok := noticeIntent(c.key)
		if intent != c.intent || again != c.again || ok != c.ok {
			t.Errorf("noticeIntent(%q) = %q, %v, %v; want %q, %v, %v", c.key, intent, again, ok, c.intent, c.again, c.ok)
		}
	}
}

func TestLeadProblems(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC)
	lead := 15 * time.Second
	told := func(key string, created, deadline time.Duration) e2e.Message {
		return e2e.Message{Key: key, Kind: "payment_failed", Created: t0.Add(created), Deadline: t0.Add(deadline)}
	}
	suspend := func(at time.Duration) takeAway { return takeAway{Kind: "suspend", At: t0.Add(at), Key: "k"} }
	for _, c := range []struct {
		name    string
		msgs    []e2e.Message
		takes   []takeAway
		settled map[string]time.Time
		want    int
	}{
		{"taken after the deadline", []e2e.Message{told("l:past_due:pi_2:notice", 0, 15*time.Second)}, []takeAway{suspend(16 * time.Second)}, nil, 0},
		{"taken before the deadline", []e2e.Message{told("l:past_due:pi_2:notice", 0, 15*time.Second)}, []takeAway{suspend(10 * time.Second)}, nil, 1},
		{"taken before it, paid first", []e2e.Message{told("l:past_due:pi_2:notice", 0, 15*time.Second)}, []takeAway{suspend(10 * time.Second)},
			map[string]time.Time{"pi_2": t0.Add(5 * time.Second)}, 0},
		{"paid only after", []e2e.Message{told("l:past_due:pi_2:notice", 0, 15*time.Second)}, []takeAway{suspend(10 * time.Second)},
			map[string]time.Time{"pi_2": t0.Add(11 * time.Second)}, 1},
		{"taken before the notice", []e2e.Message{told("l:past_due:pi_1:again:1:notice", 20*time.Second, 35*time.Second)}, []takeAway{suspend(10 * time.Second)}, nil, 0},
		{"short lead", []e2e.Message{told("l:past_due:pi_1:again:1:notice", 20*time.Second, 30*time.Second)}, nil, nil, 1},
		{"rounded lead", []e2e.Message{told("l:past_due:pi_1:again:1:notice", 20*time.Second, 34500*time.Millisecond)}, nil, nil, 0},
		{"no deadline", []e2e.Message{{Key: "l:past_due:pi_2:notice", Kind: "payment_failed", Created: t0}}, nil, nil, 1},
		{"the life's notice", []e2e.Message{told("l:past_due:notice", 0, 5*time.Second)}, []takeAway{suspend(time.Second)}, nil, 0},
	} {
		if got := leadProblems(c.msgs, c.takes, c.settled, lead); len(got) != c.want {
			t.Errorf("%s: %d problems %v, want %d", c.name, len(got), got, c.want)
		}
	}
}
