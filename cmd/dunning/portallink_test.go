package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"dunning/internal/portallink"
)

// `dunning portal-link` prints the link a notice would carry: with the
// local stack's settings when nothing is configured, else with the
// configured ones, and it opens the customer's portal until it expires.
func TestPortalLinkCommand(t *testing.T) {
	for _, tc := range []struct {
		name           string
		env            map[string]string
		prefix, secret string
		devNote        string // said when the dev secret signs
		ttl            time.Duration
	}{
		{"local stack", map[string]string{"HTTP_ADDR": ":9090"}, "http://127.0.0.1:9090/portal/", DevPortalLinkSecret, "dev secret", 720 * time.Hour},
		{"configured", map[string]string{
			"PUBLIC_URL":         "https://billing.example.com/",
			"PORTAL_LINK_SECRET": "configured-portal-secret-0123456789abcdef, old-portal-secret-0123456789abcdef00",
			"PORTAL_LINK_TTL":    "48h",
		}, "https://billing.example.com/portal/", "configured-portal-secret-0123456789abcdef", "", 48 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"PUBLIC_URL", "PORTAL_LINK_SECRET", "PORTAL_LINK_TTL", "HTTP_ADDR"} {
				t.Setenv(k, tc.env[k])
			}
			var out bytes.Buffer
			if err := runPortalLink([]string{"--customer", "cus_PortalCmd0001"}, &out); err != nil {
				t.Fatalf("portal-link: %v\n%s", err, out.String())
			}
			link, rest, _ := strings.Cut(out.String(), "\n")
			token, ok := strings.CutPrefix(link, tc.prefix)
			if !ok {
				t.Fatalf("first line %q, want a link under %s", link, tc.prefix)
			}
			s, err := portallink.NewSigner([]string{tc.secret})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Verify(token, time.Now())
			if err != nil || got.Customer != "cus_PortalCmd0001" {
				t.Fatalf("the link's token = %+v, %v; want one for cus_PortalCmd0001", got, err)
			}
			if d := time.Until(got.Expires); d < tc.ttl-time.Minute || d > tc.ttl {
				t.Errorf("expires in %s, want %s", d, tc.ttl)
			}
			if !strings.Contains(rest, "curl -i '"+link+"'") || strings.Contains(rest, "dev secret") != (tc.devNote != "") {
				t.Errorf("output does not say how to follow it or which secret signed it:\n%s", out.String())
			}
		})
	}

	t.Run("no customer", func(t *testing.T) {
		var out bytes.Buffer
		if err := runPortalLink(nil, &out); err == nil || !strings.Contains(err.Error(), "--customer") {
			t.Errorf("portal-link without --customer = %v, want an error naming it", err)
		}
		if err := runPortalLink([]string{"--customer", "acct-42"}, &out); err == nil {
			t.Error("portal-link for a non-Stripe ID made a link")
		}
	})
}
