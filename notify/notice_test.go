package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"dunning/internal/httpx"
	"dunning/internal/sig"
	"dunning/notify"
)

const noticeSecret = "notice_test_secret_0123456789abcdefgh"

var clock = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

const noticePath = "/hooks/dunning"

// updateURL is a customer's one-click link, as PUBLIC_URL/portal/{token}.
const updateURL = "https://billing.example.com/portal/AQAAAABp0ZqAY3VzX054MbTG1w3y2LhOWHcXq0n5Pp3R0jW7yA1sQxYbVtQ"

// An ID with characters that need care in a header and in JSON.
const noticeID = `recovery-org/42 "<x>"/suspended/1`

func fullNotice() notify.Notice {
	next := time.Date(2025, 3, 17, 9, 0, 0, 0, time.FixedZone("EST", -5*3600))
	deadline := time.Date(2025, 3, 21, 0, 0, 0, 0, time.UTC)
	return notify.Notice{
		ID:               "recovery-cus_Nx1/past_due/1/notice",
		Type:             notify.PaymentFailed,
		CustomerID:       "org/42",
		StripeCustomerID: "cus_Nx1",
		Stage:            "past_due",
		AmountDue:        4999,
		Currency:         "usd",
		InvoiceURL:       "https://invoice.stripe.com/i/acct_1/test_abc",
		// As the activity makes them: the one-click link and the invoice's
		// payment page.
		UpdatePaymentMethodURL: updateURL,
		PayURL:                 "https://invoice.stripe.com/i/acct_1/test_abc",
		Card:                   &notify.Card{Brand: "visa", Last4: "4242", ExpMonth: 4, ExpYear: 2026},
		NextActionAt:           &next,
		Deadline:               &deadline,
		Reason:                 "card_declined",
		CreatedAt:              time.Date(2025, 3, 14, 15, 0, 0, 0, time.UTC),
	}
}

type noticeReceived struct {
	key    string
	target string
	header string
	raw    []byte
	body   map[string]json.RawMessage
}

// mailer is an httptest server that checks requests the way the product's
// mailer would, then answers status.
func mailer(t *testing.T, status int, answer string, header http.Header) (*httptest.Server, <-chan noticeReceived) {
	t.Helper()
	got := make(chan noticeReceived, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost {
			t.Errorf("method = %s, want POST", r.Method)
		}
		if r.URL.Path != noticePath {
			t.Errorf("path = %s, want %s", r.URL.Path, noticePath)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q, want application/json", ct)
		}
		h := r.Header.Get(notify.SignatureHeader)
		signed := sig.RequestOf(r, raw)
		if err := sig.KindCustomerNotice.Verify(h, signed, []string{noticeSecret}, 5*time.Minute, clock); err != nil {
			t.Errorf("signature does not verify with the secret: %v (header %q)", err, h)
		}
		if err := sig.KindCustomerNotice.Verify(h, signed, []string{"wrong secret, but thirty-two bytes long"}, 5*time.Minute, clock); !errors.Is(err, sig.ErrNoMatch) {
			t.Errorf("signature with a wrong secret: err = %v, want ErrNoMatch", err)
		}
		if err := sig.KindControlPlane.Verify(h, signed, []string{noticeSecret}, 5*time.Minute, clock); !errors.Is(err, sig.ErrNoMatch) {
			t.Errorf("notice signature verified as a control-plane request: err = %v, want ErrNoMatch", err)
		}
		if err := sig.Verify(h, raw, []string{noticeSecret}, 5*time.Minute, clock); err == nil {
			t.Errorf("signature verifies in Stripe's body-only v1 scheme (header %q)", h)
		}
		if signed.Target != r.URL.RequestURI() || signed.IdempotencyKey == "" {
			t.Errorf("signed target %q, key %q; want the request's %q and its Idempotency-Key", signed.Target, signed.IdempotencyKey, r.URL.RequestURI())
		}
		var body map[string]json.RawMessage
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Errorf("body is not a JSON object: %v: %s", err, raw)
		}
		var id string
		json.Unmarshal(body["id"], &id)
		key := r.Header.Get("Idempotency-Key")
		if key == "" || key != id {
			t.Errorf("Idempotency-Key = %q, body id = %q; want both set and equal", key, id)
		}
		got <- noticeReceived{key: key, target: r.RequestURI, header: h, raw: raw, body: body}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func newSender(t *testing.T, url string, timeout time.Duration) *notify.NoticeSender {
	t.Helper()
	s, err := notify.NewNoticeSender(notify.NoticeConfig{
		URL:     url,
		Secret:  noticeSecret,
		Timeout: timeout,
		Now:     func() time.Time { return clock },
	})
	if err != nil {
		t.Fatalf("NewNoticeSender: %v", err)
	}
	return s
}

// A CUSTOMER_NOTICE_URL with a query is signed with its query, escaped as
// sent: the same notice posted without it, or with another, does not
// verify.
func TestNoticeSignatureCoversQuery(t *testing.T) {
	srv, got := mailer(t, http.StatusAccepted, "", nil)
	n := fullNotice()
	n.ID = noticeID
	if err := newSender(t, srv.URL+noticePath+"?tenant=acme%20eu&v=2", time.Second).Send(context.Background(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := <-got
	if want := noticePath + "?tenant=acme%20eu&v=2"; r.target != want {
		t.Fatalf("request target %q, want %q", r.target, want)
	}
	req := sig.Request{Method: http.MethodPost, Target: r.target, IdempotencyKey: r.key, Body: r.raw}
	if err := sig.KindCustomerNotice.Verify(r.header, req, []string{noticeSecret}, 5*time.Minute, clock); err != nil {
		t.Fatalf("Verify as received: %v", err)
	}
	for _, target := range []string{noticePath, noticePath + "?tenant=acme%20us&v=2", noticePath + "?tenant=acme eu&v=2"} {
		req.Target = target
		if err := sig.KindCustomerNotice.Verify(r.header, req, []string{noticeSecret}, 5*time.Minute, clock); !errors.Is(err, sig.ErrNoMatch) {
			t.Errorf("Verify with target %q = %v, want %v", target, err, sig.ErrNoMatch)
		}
	}
}

func TestNoticeSent(t *testing.T) {
	srv, got := mailer(t, http.StatusAccepted, "", nil)
	n := fullNotice()
	n.ID = noticeID
	if err := newSender(t, srv.URL+noticePath, time.Second).Send(context.Background(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := <-got
	if r.key != noticeID {
		t.Errorf("Idempotency-Key = %q, want %q", r.key, noticeID)
	}

	// Exactly the declared fields, no more.
	wantKeys := []string{"id", "type", "customer_id", "stripe_customer_id", "stage", "amount_due", "currency",
		"invoice_url", "update_payment_method_url", "pay_url", "card", "next_action_at", "deadline", "reason", "created_at"}
	var keys []string
	for k := range r.body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	slices.Sort(wantKeys)
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("body keys = %v\nwant        %v", keys, wantKeys)
	}

	var body struct {
		ID               string `json:"id"`
		Type             string `json:"type"`
		CustomerID       string `json:"customer_id"`
		StripeCustomerID string `json:"stripe_customer_id"`
		Stage            string `json:"stage"`
		AmountDue        int64  `json:"amount_due"`
		Currency         string `json:"currency"`
		InvoiceURL       string `json:"invoice_url"`
		UpdatePMURL      string `json:"update_payment_method_url"`
		PayURL           string `json:"pay_url"`
		Card             struct {
			Brand    string `json:"brand"`
			Last4    string `json:"last4"`
			ExpMonth int    `json:"exp_month"`
			ExpYear  int    `json:"exp_year"`
		} `json:"card"`
		NextActionAt string `json:"next_action_at"`
		Deadline     string `json:"deadline"`
		Reason       string `json:"reason"`
		CreatedAt    string `json:"created_at"`
	}
	dec := json.NewDecoder(strings.NewReader(string(r.raw)))
	dec.DisallowUnknownFields() // also rejects extra fields inside card
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("decode body: %v", err)
	}
	want := body
	want.ID = noticeID
	want.Type = "payment_failed"
	want.CustomerID = "org/42"
	want.StripeCustomerID = "cus_Nx1"
	want.Stage = "past_due"
	want.AmountDue = 4999
	want.Currency = "usd"
	want.InvoiceURL = "https://invoice.stripe.com/i/acct_1/test_abc"
	want.UpdatePMURL = updateURL
	want.PayURL = "https://invoice.stripe.com/i/acct_1/test_abc"
	want.Card.Brand, want.Card.Last4, want.Card.ExpMonth, want.Card.ExpYear = "visa", "4242", 4, 2026
	want.NextActionAt = "2025-03-17T14:00:00Z"
	want.Deadline = "2025-03-21T00:00:00Z"
	want.Reason = "card_declined"
	want.CreatedAt = "2025-03-14T15:00:00Z"
	if !reflect.DeepEqual(body, want) || body.ID != noticeID {
		t.Errorf("body = %+v\nwant   %+v", body, want)
	}
}

func TestNoticeOptionalFieldsLeftOut(t *testing.T) {
	srv, got := mailer(t, http.StatusOK, "", nil)
	n := notify.Notice{ID: "n1", Type: notify.PaymentRecovered, StripeCustomerID: "cus_Nx1"}
	if err := newSender(t, srv.URL+noticePath, time.Second).Send(context.Background(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := <-got
	for _, k := range []string{"card", "next_action_at", "deadline", "links_missing_reason"} {
		if v, ok := r.body[k]; ok {
			t.Errorf("%s = %s, want it left out", k, v)
		}
	}
	// Links are always there, empty when there are none.
	for _, k := range []string{"invoice_url", "update_payment_method_url", "pay_url"} {
		if v := string(r.body[k]); v != `""` {
			t.Errorf("%s = %s, want \"\"", k, v)
		}
	}
	if string(r.body["created_at"]) != `"`+clock.Format(time.RFC3339)+`"` {
		t.Errorf("created_at = %s, want the clock's time", r.body["created_at"])
	}
}

// A notice without its one-click link says why, in links_missing_reason.
func TestNoticeSaysWhyItHasNoLink(t *testing.T) {
	for _, reason := range []string{notify.LinksNotConfigured, notify.LinksNoStripeCustomer, notify.LinksExpired} {
		t.Run(reason, func(t *testing.T) {
			srv, got := mailer(t, http.StatusOK, "", nil)
			n := fullNotice()
			n.UpdatePaymentMethodURL, n.LinksMissingReason = "", reason
			if err := newSender(t, srv.URL+noticePath, time.Second).Send(context.Background(), n); err != nil {
				t.Fatalf("Send: %v", err)
			}
			r := <-got
			if v := string(r.body["links_missing_reason"]); v != `"`+reason+`"` {
				t.Errorf("links_missing_reason = %s, want %q", v, reason)
			}
			if v := string(r.body["update_payment_method_url"]); v != `""` {
				t.Errorf("update_payment_method_url = %s, want \"\"", v)
			}
			if v := string(r.body["pay_url"]); v != `"https://invoice.stripe.com/i/acct_1/test_abc"` {
				t.Errorf("pay_url = %s, want the invoice's page", v)
			}
		})
	}
}

func TestNoticeConflictIsDelivered(t *testing.T) {
	srv, got := mailer(t, http.StatusConflict, `{"error":"already sent"}`, nil)
	if err := newSender(t, srv.URL+noticePath, time.Second).Send(context.Background(), fullNotice()); err != nil {
		t.Errorf("Send on 409 = %v, want success", err)
	}
	<-got
}

func TestNoticeErrors(t *testing.T) {
	cases := []struct {
		status     int
		header     http.Header
		retryable  bool
		retryAfter time.Duration
	}{
		{status: 400},
		{status: 401},
		{status: 403},
		{status: 404},
		{status: 429, header: http.Header{"Retry-After": {"120"}}, retryable: true, retryAfter: 2 * time.Minute},
		{status: 500, retryable: true},
		{status: 503, header: http.Header{"Retry-After": {clock.Add(time.Minute).Format(http.TimeFormat)}}, retryable: true, retryAfter: time.Minute},
	}
	for _, tc := range cases {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv, got := mailer(t, tc.status, "mailer says no; secret was "+noticeSecret, tc.header)
			err := newSender(t, srv.URL+noticePath, time.Second).Send(context.Background(), fullNotice())
			<-got
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if httpx.IsRetryable(err) != tc.retryable || httpx.IsPermanent(err) == tc.retryable {
				t.Errorf("IsRetryable = %v, IsPermanent = %v, want retryable %v (err: %v)",
					httpx.IsRetryable(err), httpx.IsPermanent(err), tc.retryable, err)
			}
			var apiErr *httpx.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err %v is not an *httpx.APIError", err)
			}
			if apiErr.Peer != notify.PeerNotices || apiErr.StatusCode != tc.status || apiErr.RetryAfter != tc.retryAfter {
				t.Errorf("APIError = %+v, want peer %s, status %d, retry after %s", apiErr, notify.PeerNotices, tc.status, tc.retryAfter)
			}
			if !strings.HasPrefix(apiErr.Message, "mailer says no") {
				t.Errorf("Message = %q, want the body excerpt", apiErr.Message)
			}
			if strings.Contains(err.Error(), noticeSecret) {
				t.Errorf("error contains the secret: %v", err)
			}
			want := fmt.Sprintf("send payment_failed notice %q: notice receiver answered %d %s: mailer says no; secret was [redacted]",
				fullNotice().ID, tc.status, http.StatusText(tc.status))
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\nwant it to say what was being done and what came back: %q", err, want)
			}
		})
	}
}

func TestNoticeTimeoutIsRetryable(t *testing.T) {
	s := newSender(t, hangingServer(t)+noticePath, 100*time.Millisecond)
	// The caller's own deadline is only a safety net: the configured
	// timeout must end the call long before it.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, fullNotice())
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Send took %s, want about the 100ms timeout", elapsed)
	}
	if err == nil || (!httpx.IsRetryable(err) || httpx.IsPermanent(err)) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a retryable deadline error", err)
	}
}

func TestInvalidNoticeNotSent(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	t.Cleanup(srv.Close)
	s := newSender(t, srv.URL, time.Second)
	const pan = "4242424242424242"
	cases := map[string]func(*notify.Notice){
		"no ID":               func(n *notify.Notice) { n.ID = "" },
		"ID with newline":     func(n *notify.Notice) { n.ID = "a\nb" },
		"non-ASCII ID":        func(n *notify.Notice) { n.ID = "é" },
		"unknown type":        func(n *notify.Notice) { n.Type = "payment_maybe" },
		"no customer":         func(n *notify.Notice) { n.CustomerID, n.StripeCustomerID = "", "" },
		"full card number":    func(n *notify.Notice) { n.Card.Last4 = pan },
		"last4 not digits":    func(n *notify.Notice) { n.Card.Last4 = "42a2" },
		"bad month":           func(n *notify.Notice) { n.Card.ExpMonth = 13 },
		"relative invoice":    func(n *notify.Notice) { n.InvoiceURL = "/i/abc" },
		"javascript invoice":  func(n *notify.Notice) { n.InvoiceURL = "javascript:alert(1)" },
		"relative portal":     func(n *notify.Notice) { n.UpdatePaymentMethodURL = "/portal/AQ" },
		"javascript portal":   func(n *notify.Notice) { n.UpdatePaymentMethodURL = "javascript:alert(1)" },
		"portal without host": func(n *notify.Notice) { n.UpdatePaymentMethodURL = "https:///portal/AQ" },
		"relative pay":        func(n *notify.Notice) { n.PayURL = "i/acct_1/test_abc" },
		"data pay":            func(n *notify.Notice) { n.PayURL = "data:text/html,<b>pay</b>" },
		"reason with a link":  func(n *notify.Notice) { n.LinksMissingReason = notify.LinksNotConfigured },
		"unknown reason": func(n *notify.Notice) {
			n.UpdatePaymentMethodURL, n.LinksMissingReason = "", "because"
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			n := fullNotice()
			mutate(&n)
			err := s.Send(context.Background(), n)
			if !errors.Is(err, notify.ErrInvalid) || !httpx.IsPermanent(err) {
				t.Errorf("err = %v, want a permanent ErrInvalid", err)
			}
			if err != nil && strings.Contains(err.Error(), pan) {
				t.Errorf("error contains the card number: %v", err)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d invalid notices were sent", n)
	}
}

func TestNewNoticeSenderValidates(t *testing.T) {
	cases := []struct {
		name string
		cfg  notify.NoticeConfig
		want string
	}{
		{"valid", notify.NoticeConfig{URL: "https://app.example.com/hooks/dunning", Secret: noticeSecret}, ""},
		{"no url", notify.NoticeConfig{Secret: noticeSecret}, "CUSTOMER_NOTICE_URL is required"},
		{"relative", notify.NoticeConfig{URL: "/hooks", Secret: noticeSecret}, "absolute http or https"},
		{"mailto", notify.NoticeConfig{URL: "mailto:ops@example.com", Secret: noticeSecret}, `scheme "mailto"`},
		{"no secret", notify.NoticeConfig{URL: "https://app.example.com/hooks"}, "CUSTOMER_NOTICE_SECRET is required"},
		{"short secret", notify.NoticeConfig{URL: "https://app.example.com/hooks", Secret: noticeSecret[:31]}, "CUSTOMER_NOTICE_SECRET is shorter than 32 bytes"},
		{"negative timeout", notify.NoticeConfig{URL: "https://app.example.com/hooks", Secret: noticeSecret, Timeout: -time.Second}, "timeout"},
		{"everything wrong", notify.NoticeConfig{}, "CUSTOMER_NOTICE_SECRET is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := notify.NewNoticeSender(tc.cfg)
			if tc.want == "" {
				if err != nil || s == nil {
					t.Fatalf("NewNoticeSender = %v, %v; want a sender", s, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), noticeSecret) {
				t.Errorf("error contains the secret: %v", err)
			}
		})
	}
}

func TestSignatureHeaderName(t *testing.T) {
	// Receivers look for this name; controlplane uses the same one.
	if notify.SignatureHeader != "Dunning-Signature" {
		t.Errorf("SignatureHeader = %q", notify.SignatureHeader)
	}
}

// A mailer that refuses a notice often repeats what it refused. The
// one-click link opens the customer's Billing Portal until it expires, so
// its token never reaches the error, which goes into the workflow's
// history and the ops alert that the notice was not delivered; the rest of
// the answer does, to say why.
func TestNoticeRefusalDoesNotRepeatTheLink(t *testing.T) {
	token := updateURL[strings.LastIndex(updateURL, "/")+1:]
	for name, answer := range map[string]string{
		// As PHP's json_encode writes it, slashes escaped.
		"escaped":  `{"error":"update_payment_method_url not on an allowed domain","value":"https:\/\/billing.example.com\/portal\/` + token + `"}`,
		"as sent":  `{"errors":[{"field":"update_payment_method_url","value":"` + updateURL + `","message":"not allowed"}]}`,
		"the path": `422 Unprocessable: link /portal/` + token + ` not allowed`,
	} {
		t.Run(name, func(t *testing.T) {
			srv, got := mailer(t, http.StatusUnprocessableEntity, answer, nil)
			err := newSender(t, srv.URL+noticePath, time.Second).Send(context.Background(), fullNotice())
			<-got
			if err == nil {
				t.Fatal("Send succeeded, want the refusal")
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("the refusal repeats the link's token: %v", err)
			}
			if !strings.Contains(err.Error(), "not") || !httpx.IsPermanent(err) {
				t.Errorf("error %v: want the mailer's reason, permanent", err)
			}
		})
	}
}
