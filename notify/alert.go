package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// AlertConfig configures an Alerter.
type AlertConfig struct {
	// WebhookURL is the Slack-compatible incoming webhook
	// (ALERT_WEBHOOK_URL). It is a credential: errors never repeat it.
	WebhookURL string
	// Timeout bounds one Send; zero means DefaultTimeout.
	Timeout time.Duration
	// HTTPClient sends the requests; nil means a new http.Client with the
	// default transport. Redirects are never followed.
	HTTPClient *http.Client
}

// Validate reports what is wrong with c, if anything.
func (c AlertConfig) Validate() error {
	_, err := endpointURL("ALERT_WEBHOOK_URL", c.WebhookURL)
	errs := []error{err}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout must not be negative, got %s", c.Timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("alert config: %w", err)
	}
	return nil
}

// Alerter posts ops alerts to a Slack-compatible incoming webhook. It is
// safe for concurrent use.
type Alerter struct {
	p *poster
}

// NewAlerter returns an Alerter for cfg, or the reason cfg is not usable.
func NewAlerter(cfg AlertConfig) (*Alerter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, _ := endpointURL("", cfg.WebhookURL)
	// The URL is the credential; its path (Slack's /services/T…/B…/token)
	// is redacted too, should a receiver ever echo it.
	redact := []string{cfg.WebhookURL}
	if len(u.Path) > 1 {
		redact = append(redact, u.Path)
	}
	return &Alerter{p: newPoster(PeerAlerts, cfg.WebhookURL, cfg.HTTPClient, cfg.Timeout, nil, redact...)}, nil
}

// Severity says how urgently ops should look.
type Severity string

// The severities.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Field is one labelled value shown with an alert.
type Field struct {
	Label string
	Value string
}

// Alert is one message for ops. Put IDs in it, never personal data beyond
// them, and never a secret or a card number.
type Alert struct {
	// Key is the idempotency key, sent as Idempotency-Key and shown in the
	// message so that a human can spot a duplicate. Required.
	Key string
	// Severity is info, warning or critical; empty means info.
	Severity Severity
	// Title is the one-line headline. Required.
	Title string
	// Text is the body, in Slack mrkdwn; &, < and > are escaped.
	Text             string
	CustomerID       string
	StripeCustomerID string
	WorkflowID       string
	// Fields are shown in order after the IDs above; empty values are
	// left out.
	Fields []Field
}

func (a Alert) validate() error {
	var errs []error
	if err := checkKey("key", a.Key); err != nil {
		errs = append(errs, err)
	}
	switch a.Severity {
	case "", SeverityInfo, SeverityWarning, SeverityCritical:
	default:
		errs = append(errs, fmt.Errorf("unknown severity %q", a.Severity))
	}
	if strings.TrimSpace(a.Title) == "" {
		errs = append(errs, errors.New("title is required"))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
}

// Send posts a, once. The error, if any, says what was being done;
// httpx.IsRetryable tells whether trying again may help.
func (s *Alerter) Send(ctx context.Context, a Alert) error {
	if err := s.send(ctx, a); err != nil {
		return fmt.Errorf("send alert %q: %w", a.Key, err)
	}
	return nil
}

func (s *Alerter) send(ctx context.Context, a Alert) error {
	if err := a.validate(); err != nil {
		return err
	}
	payload, err := json.Marshal(slackMessage(a))
	if err != nil {
		return fmt.Errorf("encode alert: %w", err)
	}
	h := http.Header{}
	h.Set(IdempotencyHeader, a.Key)
	_, err = s.p.post(ctx, payload, h, false, nil)
	return err
}

// Slack's Block Kit limits, counted in characters.
const (
	maxHeaderText   = 150
	maxSectionText  = 3000
	maxFieldText    = 2000
	fieldsPerBlock  = 10
	maxFieldBlocks  = 4
	maxFallbackText = 300
	maxLabel        = 100 // so that a field keeps room for its value
)

type slackText struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackPayload struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

// slackMessage lays a out as an incoming-webhook message: a fallback line
// for notifications, a header, the text, the fields, and a context line.
func slackMessage(a Alert) slackPayload {
	sev := a.Severity
	if sev == "" {
		sev = SeverityInfo
	}
	title := oneLine(a.Title)

	fallback := "[" + strings.ToUpper(string(sev)) + "] " + title
	if who := firstNonEmpty(a.StripeCustomerID, a.CustomerID); who != "" {
		fallback += " (" + oneLine(who) + ")"
	}
	msg := slackPayload{Text: truncateEscaped(escape(fallback), maxFallbackText)}

	msg.Blocks = append(msg.Blocks, slackBlock{
		Type: "header",
		Text: &slackText{Type: "plain_text", Text: truncateRunes(emoji(sev)+" "+title, maxHeaderText), Emoji: true},
	})
	if strings.TrimSpace(a.Text) != "" {
		msg.Blocks = append(msg.Blocks, slackBlock{
			Type: "section",
			Text: &slackText{Type: "mrkdwn", Text: truncateEscaped(escape(a.Text), maxSectionText)},
		})
	}

	fields := []Field{
		{"Customer", a.CustomerID},
		{"Stripe customer", a.StripeCustomerID},
		{"Workflow", a.WorkflowID},
	}
	fields = append(fields, a.Fields...)
	var texts []slackText
	for _, f := range fields {
		if strings.TrimSpace(f.Value) == "" {
			continue
		}
		label := ""
		if l := truncateRunes(oneLine(f.Label), maxLabel); l != "" {
			label = "*" + escape(l) + "*\n"
		}
		texts = append(texts, slackText{Type: "mrkdwn", Text: label + truncateEscaped(escape(f.Value), maxFieldText-utf8.RuneCountInString(label))})
	}
	if max := fieldsPerBlock * maxFieldBlocks; len(texts) > max {
		dropped := len(texts) - (max - 1)
		texts = append(texts[:max-1], slackText{Type: "mrkdwn", Text: fmt.Sprintf("*…*\n%d more fields not shown", dropped)})
	}
	for len(texts) > 0 {
		n := min(len(texts), fieldsPerBlock)
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Fields: texts[:n]})
		texts = texts[n:]
	}

	msg.Blocks = append(msg.Blocks, slackBlock{
		Type: "context",
		Elements: []slackText{{
			Type: "mrkdwn",
			Text: truncateEscaped("severity: "+string(sev)+" · key: "+escape(oneLine(a.Key)), maxSectionText),
		}},
	})
	return msg
}

func emoji(s Severity) string {
	switch s {
	case SeverityCritical:
		return ":rotating_light:"
	case SeverityWarning:
		return ":warning:"
	}
	return ":information_source:"
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// oneLine folds whitespace, newlines included, into single spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// escape escapes the three characters Slack's mrkdwn reserves.
var escape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// truncateRunes cuts s to at most n characters, ending with "…" when cut.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// truncateEscaped is truncateRunes for escaped text: it does not leave a
// partial entity such as "&am" behind.
func truncateEscaped(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	cut := string([]rune(s)[:n-1])
	if i := strings.LastIndexByte(cut, '&'); i >= 0 && !strings.Contains(cut[i:], ";") {
		cut = cut[:i]
	}
	return cut + "…"
}
