package activities_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	stripeclient "github.com/stripe/stripe-go/v76/client"
	"go.temporal.io/sdk/client"

	"dunning/activities"
	"dunning/internal/portallink"
	"dunning/internal/sig"
	"dunning/notify"
	"dunning/webhook"
)

const (
	publicURL       = "https://billing.example.com/dunning"
	portalSecret    = "portal-secret-for-activity-tests-000000001"
	portalReturnURL = "https://app.example.com/settings/billing"
	// The session Stripe opens; its answer, as Stripe gives it.
	portalSessionURL = "https://billing.stripe.com/p/session/test_YWNjdF8xT3FQb3J0YWwsX1Bx"
	portalSession    = `{"id":"bps_1OqPortal","object":"billing_portal.session","configuration":"bpc_1OqPortal","created":1773489600,` +
		`"customer":"cus_PdunningAcme01","flow":{"type":"payment_method_update","after_completion":{"type":"redirect",` +
		`"redirect":{"return_url":"` + portalReturnURL + `"},"hosted_confirmation":null}},"livemode":false,"locale":null,` +
		`"on_behalf_of":null,"return_url":"` + portalReturnURL + `","url":"` + portalSessionURL + `"}`
)

// linkActivities sends notices to the peer at mailerURL, with portal links
// under publicURL.
func linkActivities(t *testing.T, mailerURL string) *activities.Activities {
	t.Helper()
	acts := noticeActivities(t, mailerURL)
	links, err := portallink.NewLinks(publicURL, []string{portalSecret}, 720*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	acts.PortalLinks = links
	return acts
}

// noTemporal stands in for Temporal in a webhook that only opens portals.
type noTemporal struct{}

func (noTemporal) ExecuteWorkflow(context.Context, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	return nil, errors.New("not in this test")
}

func (noTemporal) CheckHealth(context.Context, *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	return nil, errors.New("not in this test")
}

// portalWebhook is the webhook as `dunning webhook` runs it with the same
// PORTAL_LINK_SECRET, asking the Stripe at stripeURL for sessions.
func portalWebhook(t *testing.T, stripeURL string) http.Handler {
	t.Helper()
	signer, err := portallink.NewSigner([]string{portalSecret})
	if err != nil {
		t.Fatal(err)
	}
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL: stripe.String(stripeURL), MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	api := stripeclient.New("sk_test_portal", &stripe.Backends{API: backend, Connect: backend, Uploads: backend})
	h, err := webhook.NewHandler(noTemporal{}, webhook.Options{
		Secrets: []string{"whsec_unused"}, Tolerance: time.Minute, MaxBody: 1 << 16, StartTimeout: time.Second,
		TaskQueue: "dunning", Logger: quietLogger(),
		Portal: &webhook.Portal{Links: signer, Sessions: api.BillingPortalSessions, ReturnURL: portalReturnURL},
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// The link in a notice, followed, opens the Billing Portal of the customer
// the notice is for, and of no other.
func TestNoticeLinkOpensTheCustomersPortal(t *testing.T) {
	mailer := newPeer(t, answer{http.StatusAccepted, `{}`})
	acts := linkActivities(t, mailer.URL)
	stripeAPI := newPeer(t, answer{http.StatusOK, portalSession})
	hook := portalWebhook(t, stripeAPI.URL)

	links := map[string]string{} // by customer
	for _, customer := range []string{customerID, "cus_PdunningOther01"} {
		in := noticeInput()
		in.Key = "notice/recovery-" + customer + "/payment_failed/1"
		in.StripeCustomerID = customer
		in.CreatedAt = time.Now().Add(-time.Hour).Truncate(time.Second)
		if _, err := acts.Notice(context.Background(), in); err != nil {
			t.Fatalf("Notice: %v", err)
		}
	}
	for _, r := range mailer.seen.list() {
		wantSigned(t, r, sig.KindCustomerNotice, noticeSecret)
		body := jsonBody(t, r)
		link, _ := body["update_payment_method_url"].(string)
		if !strings.HasPrefix(link, publicURL+portallink.PathPrefix) {
			t.Fatalf("update_payment_method_url = %q, want a link under PUBLIC_URL/portal/", link)
		}
		if reason, ok := body["links_missing_reason"]; ok {
			t.Errorf("links_missing_reason = %v with the link there", reason)
		}
		if body["pay_url"] != noticeInput().InvoiceURL {
			t.Errorf("pay_url = %v, want the Stripe hosted invoice %s", body["pay_url"], noticeInput().InvoiceURL)
		}
		links[body["stripe_customer_id"].(string)] = link
	}
	if len(links) != 2 || links[customerID] == links["cus_PdunningOther01"] {
		t.Fatalf("links %v, want one for each customer", links)
	}

	for customer, link := range links {
		u, err := url.Parse(link)
		if err != nil {
			t.Fatal(err)
		}
		// The proxy strips PUBLIC_URL's path prefix; the webhook sees /portal/{token}.
		req := httptest.NewRequest(http.MethodGet, strings.TrimPrefix(u.Path, "/dunning"), nil)
		rec := httptest.NewRecorder()
		hook.ServeHTTP(rec, req)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != portalSessionURL {
			t.Fatalf("following %s's link: %d Location %q, want 303 to the session: %s", customer, rec.Code, rec.Header().Get("Location"), rec.Body)
		}
		reqs := stripeAPI.seen.list()
		last := reqs[len(reqs)-1]
		if last.Path != "/v1/billing_portal/sessions" || last.Form.Get("customer") != customer ||
			last.Form.Get("flow_data[type]") != "payment_method_update" ||
			last.Form.Get("flow_data[after_completion][redirect][return_url]") != portalReturnURL {
			t.Errorf("following %s's link asked Stripe %s %v, want a payment-method-update session for %s", customer, last, last.Form, customer)
		}
	}

	// A retried notice carries the same link: one key, one body.
	in := noticeInput()
	in.CreatedAt = time.Now().Add(-time.Hour).Truncate(time.Second)
	in.Key = "notice/recovery-" + customerID + "/payment_failed/1"
	if _, err := acts.Notice(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	all := mailer.seen.list()
	if got := jsonBody(t, all[len(all)-1])["update_payment_method_url"]; got != links[customerID] {
		t.Errorf("the same notice sent again carries %v, want %s", got, links[customerID])
	}
}

// Without a link, a notice says why.
func TestNoticeWithoutLinkSaysWhy(t *testing.T) {
	recent := time.Now().Add(-time.Minute).Truncate(time.Second)
	for _, tc := range []struct {
		name   string
		links  bool
		change func(*activities.NoticeInput)
		want   string
	}{
		{"not configured", false, func(in *activities.NoticeInput) { in.CreatedAt = recent }, notify.LinksNotConfigured},
		{"no Stripe customer", true, func(in *activities.NoticeInput) { in.StripeCustomerID, in.CreatedAt = "", recent }, notify.LinksNoStripeCustomer},
		{"not a Stripe customer ID", true, func(in *activities.NoticeInput) { in.StripeCustomerID, in.CreatedAt = "acct-42", recent }, notify.LinksNoStripeCustomer},
		// Decided longer ago than the link lives: sending it now would
		// send a dead link.
		{"decided beyond the lifetime", true, func(in *activities.NoticeInput) { in.CreatedAt = time.Now().Add(-721 * time.Hour) }, notify.LinksExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, answer{http.StatusAccepted, `{}`})
			acts := noticeActivities(t, p.URL)
			if tc.links {
				acts = linkActivities(t, p.URL)
			}
			in := noticeInput()
			tc.change(&in)
			if _, err := acts.Notice(context.Background(), in); err != nil {
				t.Fatalf("Notice: %v", err)
			}
			body := jsonBody(t, p.only(t))
			if body["update_payment_method_url"] != "" || body["links_missing_reason"] != tc.want {
				t.Errorf("update_payment_method_url %v, links_missing_reason %v; want none, because %s",
					body["update_payment_method_url"], body["links_missing_reason"], tc.want)
			}
		})
	}
}

func TestNoticePayURL(t *testing.T) {
	const hosted = "https://invoice.stripe.com/i/acct_1OqTest/test_YWNjdF8x"
	for _, tc := range []struct {
		name, pay, invoice string
		want               string // pay_url sent
	}{
		{"the Stripe invoice's hosted page", hosted, "https://app.amberflo.io/invoices/acct-42/2025-06", hosted},
		{"from the invoice link when that is Stripe's", "", hosted, hosted},
		{"not from an Amberflo invoice link", "", "https://app.amberflo.io/invoices/acct-42/2025-06", ""},
		{"not from a look-alike host", "", "https://invoice.stripe.com.example.net/i/x", ""},
		{"not from plain http", "", "http://invoice.stripe.com/i/x", ""},
		{"none at all", "", "", ""},
		{"a path is left out", "/i/acct_1/test", hosted, hosted},
		{"javascript is left out", "javascript:alert(1)", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, answer{http.StatusAccepted, `{}`})
			in := noticeInput()
			in.PayURL, in.InvoiceURL = tc.pay, tc.invoice
			if _, err := noticeActivities(t, p.URL).Notice(context.Background(), in); err != nil {
				t.Fatalf("Notice: %v", err)
			}
			if got := jsonBody(t, p.only(t))["pay_url"]; got != tc.want {
				t.Errorf("pay_url = %v, want %q", got, tc.want)
			}
		})
	}
}
