package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// StripeAPIBaseURL is Stripe's own API, used when no base URL is set.
const StripeAPIBaseURL = "https://api.stripe.com"

// Stripe's limits on GET /v1/events.
const (
	maxEventsPerPage = 100
	maxEventTypes    = 20
)

// maxPageBytes bounds the events one ListEvents result carries, well under
// Temporal's payload limit: a page of large events (invoices with their
// lines) is cut short and the rest comes with the next page.
const maxPageBytes = 1 << 20

// Outcomes of handing one listed event to dunning.
const (
	// EventStarted: the event's workflow was started now; nothing had
	// taken the event before.
	EventStarted = "started"
	// EventDuplicate: the event's workflow already exists (the webhook or
	// an earlier reconciliation took it).
	EventDuplicate = "duplicate"
	// EventIgnored: dunning does not handle the event's type.
	EventIgnored = "ignored"
	// EventInvalid: the event cannot be decoded.
	EventInvalid = "invalid"
)

// Reconciler is what the reconciliation activities need: Stripe's REST API
// to list events, and a way to hand one event to dunning. The worker
// injects it, so that this package need not know the webhook or the
// workflows.
type Reconciler struct {
	// StripeBaseURL is the Stripe API; StripeAPIBaseURL when empty.
	StripeBaseURL string
	// StripeAPIKey authenticates the listing; empty means dry run.
	StripeAPIKey string
	// HTTPClient makes the calls; one with a 30s timeout when nil.
	HTTPClient *http.Client
	// Reduce decodes one raw Stripe event as the webhook does and returns
	// what dunning keeps of it, as JSON: the webhook's reduced event, which
	// carries no email, name, address or phone number, so that nothing
	// personal reaches a workflow's history. The outcome is empty for an
	// event to start, EventIgnored for a type dunning does not handle, and
	// EventInvalid, with the reason, for one that cannot be started at all.
	Reduce func(raw json.RawMessage) (event json.RawMessage, outcome string, err error)
	// StartReduced hands one event Reduce returned to dunning: it starts
	// the event's workflow, with the event ID as workflow ID, and returns
	// one of the Event* outcomes. An error with EventInvalid says the event
	// was not readable (it is counted); any other error is retried.
	StartReduced func(ctx context.Context, event json.RawMessage) (outcome string, err error)
	// StartEvent hands one raw Stripe event to dunning, as StartReduced
	// does a reduced one. Only reconciliations that listed raw events (from
	// before ListEventsInput.Reduce) still use it.
	StartEvent func(ctx context.Context, raw json.RawMessage) (outcome string, err error)
	// Known says which of the event IDs dunning already has a workflow for,
	// with one question for all of them (one visibility query), so that a
	// page of events taken long ago costs one call, not one rejected start
	// each. nil: every event is handed to StartReduced, whose start stays
	// the last word on duplicates either way.
	Known func(ctx context.Context, eventIDs []string) (map[string]bool, error)
	// Watermark returns what the last complete reconciliation left for the
	// next one (its ReconcileWatermark); a zero watermark when there is
	// none. nil: every run looks back its whole look-back.
	Watermark func(ctx context.Context) (ReconcileWatermark, error)
	// Metrics counts runs and events; nil counts nothing.
	Metrics ReconcileMetrics
}

// ReconcileMetrics counts what reconciliation does.
type ReconcileMetrics interface {
	// Run counts one reconciliation, when it lists its first page.
	Run()
	// Event counts one listed event by its outcome.
	Event(outcome string)
}

// ListEventsInput asks Stripe for one page of events, newest first.
type ListEventsInput struct {
	// Types are the event types listed (types[]); at least one.
	Types []string `json:"types"`
	// CreatedGTE and CreatedLT bound the events' created time; zero means
	// unbounded.
	CreatedGTE time.Time `json:"created_gte"`
	CreatedLT  time.Time `json:"created_lt,omitzero"`
	// StartingAfter is the last event ID of the page before.
	StartingAfter string `json:"starting_after,omitempty"`
	// Limit is the page size, at most 100; 100 when zero.
	Limit int `json:"limit,omitempty"`
	// Reduce has each event decoded here (Reconciler.Reduce) and only what
	// dunning keeps of it returned, never Stripe's raw JSON with its
	// personal data; events to ignore or that cannot be read are counted
	// and left out.
	Reduce bool `json:"reduce,omitempty"`
	// SkipKnown (with Reduce) asks Reconciler.Known about the page's events
	// and leaves out, counted as Known, those dunning already has.
	SkipKnown bool `json:"skip_known,omitempty"`
}

// EventPage is one page of events: reduced events when the listing asked
// for Reduce, else Stripe's raw JSON.
type EventPage struct {
	Events []json.RawMessage `json:"events"`
	// Ignored and Invalid count the listed events Reduce left out.
	Ignored int `json:"ignored,omitempty"`
	Invalid int `json:"invalid,omitempty"`
	// Known counts the listed events left out because dunning already has
	// their workflow (ListEventsInput.SkipKnown).
	Known   int  `json:"known,omitempty"`
	HasMore bool `json:"has_more"`
	// LastID is the ID of the last event of the page: StartingAfter of the
	// next one.
	LastID string `json:"last_id,omitempty"`
	// DryRun is set when Stripe is not configured: nothing was listed.
	DryRun bool `json:"dry_run,omitempty"`
}

// ListEvents lists one page of Stripe's events (GET /v1/events). Rate
// limits, server errors and network errors are returned for Temporal to
// retry; a request Stripe rejects is not retried.
func (a *Activities) ListEvents(ctx context.Context, in ListEventsInput) (EventPage, error) {
	if len(in.Types) == 0 || len(in.Types) > maxEventTypes {
		return EventPage{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("list events needs 1 to %d types, got %d", maxEventTypes, len(in.Types)), ErrBadInput, nil)
	}
	r := a.Reconcile
	if in.Reduce && (r == nil || r.Reduce == nil) {
		return EventPage{}, temporal.NewNonRetryableApplicationError("no event reducer configured", ErrBadInput, nil)
	}
	if r == nil || r.StripeAPIKey == "" {
		a.logger(ctx).Info("dry run: stripe not configured; no events listed", "starting_after", in.StartingAfter)
		if r != nil && r.Metrics != nil && in.StartingAfter == "" {
			r.Metrics.Run()
		}
		return EventPage{DryRun: true}, nil
	}

	base := r.StripeBaseURL
	if base == "" {
		base = StripeAPIBaseURL
	}
	q := url.Values{"types[]": in.Types}
	if !in.CreatedGTE.IsZero() {
		q.Set("created[gte]", strconv.FormatInt(in.CreatedGTE.Unix(), 10))
	}
	if !in.CreatedLT.IsZero() {
		q.Set("created[lt]", strconv.FormatInt(in.CreatedLT.Unix(), 10))
	}
	limit := in.Limit
	if limit <= 0 || limit > maxEventsPerPage {
		limit = maxEventsPerPage
	}
	q.Set("limit", strconv.Itoa(limit))
	if in.StartingAfter != "" {
		q.Set("starting_after", in.StartingAfter)
	}
	what := "list stripe events"
	if in.StartingAfter != "" {
		what += " after " + in.StartingAfter
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1/events?"+q.Encode(), nil)
	if err != nil {
		return EventPage{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v", what, err), ErrBadInput, err)
	}
	req.Header.Set("Authorization", "Bearer "+r.StripeAPIKey)
	req.Header.Set("Accept", "application/json")
	hc := r.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return EventPage{}, fmt.Errorf("%s: %w", what, err) // network: retried
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return EventPage{}, stripeHTTPError(what, resp)
	}
	var list struct {
		Object  string            `json:"object"`
		Data    []json.RawMessage `json:"data"`
		HasMore bool              `json:"has_more"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return EventPage{}, fmt.Errorf("%s: read the answer: %w", what, err) // a cut-off answer: retried
	}
	if list.Object != "list" {
		return EventPage{}, fmt.Errorf("%s: the answer is a %q, not a list", what, list.Object)
	}

	page := EventPage{HasMore: list.HasMore}
	var ids []string // of page.Events, in order
	size := 0
	for i, raw := range list.Data {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return EventPage{}, fmt.Errorf("%s: event %d: %w", what, i, err)
		}
		event := json.RawMessage(buf.Bytes())
		var ev struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(raw, &ev)
		outcome := ""
		if in.Reduce {
			var err error
			event, outcome, err = r.Reduce(buf.Bytes())
			if outcome == EventInvalid {
				a.logger(ctx).Warn("listed stripe event cannot be read; skipped", "index", i, "reason", fmt.Sprint(err))
			}
		}
		if outcome == "" {
			if len(page.Events) > 0 && size+len(event) > maxPageBytes {
				// The rest comes with the next page, after the last event kept.
				page.HasMore = true
				break
			}
			size += len(event)
			page.Events = append(page.Events, event)
			ids = append(ids, ev.ID)
		}
		switch outcome {
		case "":
		case EventIgnored:
			page.Ignored++
		case EventInvalid:
			page.Invalid++
		default:
			return EventPage{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s: event %d: unknown outcome %q", what, i, outcome), ErrBadInput, nil)
		}
		if outcome != "" && r.Metrics != nil {
			r.Metrics.Event(outcome)
		}
		if ev.ID != "" {
			page.LastID = ev.ID
		}
	}
	if page.HasMore && page.LastID == "" {
		return EventPage{}, fmt.Errorf("%s: stripe says there is more but names no event to continue after", what)
	}
	if in.Reduce && in.SkipKnown && r.Known != nil && len(page.Events) > 0 {
		if err := a.skipKnown(ctx, r, &page, ids); err != nil {
			// Every event goes on to StartEvents, whose start tells a
			// known one from a new one all the same, one call each.
			a.logger(ctx).Warn("cannot tell which listed events dunning has; starting each", "events", len(page.Events),
				"reason", err.Error())
		}
	}
	if r.Metrics != nil && in.StartingAfter == "" {
		r.Metrics.Run()
	}
	a.logger(ctx).Info("stripe events listed", "events", len(page.Events), "ignored", page.Ignored, "invalid", page.Invalid,
		"has_more", page.HasMore,
		"starting_after", in.StartingAfter, "last_id", page.LastID)
	return page, nil
}

// skipKnown leaves out of page the events whose workflow dunning already
// has, after one question to Reconciler.Known for the whole page. Events
// without an ID stay, for StartEvents to count. On an error page is left
// as it was.
func (a *Activities) skipKnown(ctx context.Context, r *Reconciler, page *EventPage, ids []string) error {
	var ask []string
	for _, id := range ids {
		if id != "" {
			ask = append(ask, id)
		}
	}
	known, err := r.Known(ctx, ask)
	if err != nil {
		return fmt.Errorf("which of %d events dunning has: %w", len(ask), err)
	}
	kept := page.Events[:0]
	for i, event := range page.Events {
		if ids[i] != "" && known[ids[i]] {
			page.Known++
			if r.Metrics != nil {
				r.Metrics.Event(EventDuplicate)
			}
			continue
		}
		kept = append(kept, event)
	}
	page.Events = kept
	return nil
}

// ReconcileWatermark is what a complete reconciliation leaves for the next
// one: To, the end of the window it listed, and CoveredFrom, how far back
// the chain of complete runs reaching To goes without a gap. Zero when
// there is none.
type ReconcileWatermark struct {
	To          time.Time `json:"to,omitzero"`
	CoveredFrom time.Time `json:"covered_from,omitzero"`
}

// LastReconcileWatermark returns the watermark of the last complete
// reconciliation (Reconciler.Watermark), zero when there is none or no
// reader is configured.
func (a *Activities) LastReconcileWatermark(ctx context.Context) (ReconcileWatermark, error) {
	r := a.Reconcile
	if r == nil || r.Watermark == nil {
		return ReconcileWatermark{}, nil
	}
	wm, err := r.Watermark(ctx)
	if err != nil {
		return ReconcileWatermark{}, fmt.Errorf("read the last reconciliation's watermark: %w", err)
	}
	a.logger(ctx).Info("last reconciliation's watermark", "to", wm.To, "covered_from", wm.CoveredFrom)
	return wm, nil
}

// stripeHTTPError classifies an error answer of Stripe's REST API the way
// classifyStripe does for stripe-go's errors.
func stripeHTTPError(what string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error struct {
			Type    string `json:"type"`
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	msg := fmt.Sprintf("%s: stripe answered %d", what, resp.StatusCode)
	if e.Error.Type != "" || e.Error.Code != "" {
		msg += fmt.Sprintf(" %s %s", e.Error.Type, e.Error.Code)
	}
	if e.Error.Message != "" {
		msg += ": " + e.Error.Message
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests,
		resp.StatusCode >= 500,
		resp.StatusCode == http.StatusConflict:
		return errors.New(msg) // retried
	}
	return temporal.NewNonRetryableApplicationError(msg, ErrStripeRejected, nil)
}

// StartEventsInput hands a page of listed events to dunning.
type StartEventsInput struct {
	Events []json.RawMessage `json:"events"`
	// Reduced says the events are reduced ones (ListEventsInput.Reduce),
	// not Stripe's raw JSON.
	Reduced bool `json:"reduced,omitempty"`
}

// StartEventsResult counts what became of each event.
type StartEventsResult struct {
	Started      int `json:"started"`
	AlreadyKnown int `json:"already_known"`
	Ignored      int `json:"ignored"`
	Invalid      int `json:"invalid"`
}

// startProgress is the heartbeat of StartEvents: how many events are done,
// and what became of them, so that a retry carries on where the last
// attempt stopped and counts each event once.
type startProgress struct {
	Done   int               `json:"done"`
	Result StartEventsResult `json:"result"`
}

// StartEvents starts the workflow of each event, with the event ID as
// workflow ID: an event dunning already has is found as a duplicate and
// changes nothing, one it never had is started now.
func (a *Activities) StartEvents(ctx context.Context, in StartEventsInput) (StartEventsResult, error) {
	if len(in.Events) == 0 {
		return StartEventsResult{}, nil
	}
	r := a.Reconcile
	var startEvent func(context.Context, json.RawMessage) (string, error)
	switch {
	case r == nil:
	case in.Reduced:
		startEvent = r.StartReduced
	default:
		startEvent = r.StartEvent
	}
	if startEvent == nil {
		return StartEventsResult{}, temporal.NewNonRetryableApplicationError("no event starter configured", ErrBadInput, nil)
	}
	inActivity := activity.IsActivity(ctx)
	var p startProgress
	if inActivity && activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &p); err != nil || p.Done > len(in.Events) {
			p = startProgress{}
		}
	}
	log := a.logger(ctx)
	for ; p.Done < len(in.Events); p.Done++ {
		raw := in.Events[p.Done]
		outcome, err := startEvent(ctx, raw)
		switch {
		case outcome == EventInvalid:
			p.Result.Invalid++
			log.Warn("listed stripe event cannot be read; skipped", "index", p.Done, "reason", fmt.Sprint(err))
		case err != nil:
			return p.Result, fmt.Errorf("start event %d of %d: %w", p.Done+1, len(in.Events), err)
		case outcome == EventStarted:
			p.Result.Started++
		case outcome == EventDuplicate:
			p.Result.AlreadyKnown++
		case outcome == EventIgnored:
			p.Result.Ignored++
		default:
			return p.Result, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("start event %d: unknown outcome %q", p.Done+1, outcome), ErrBadInput, nil)
		}
		if r.Metrics != nil {
			r.Metrics.Event(outcome)
		}
		if inActivity {
			activity.RecordHeartbeat(ctx, startProgress{Done: p.Done + 1, Result: p.Result})
		}
	}
	log.Info("listed stripe events handed to dunning", "events", len(in.Events), "started", p.Result.Started,
		"already_known", p.Result.AlreadyKnown, "ignored", p.Result.Ignored, "invalid", p.Result.Invalid)
	return p.Result, nil
}
