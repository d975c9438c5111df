package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"dunning/internal/portallink"
)

// DevPortalLinkSecret signs portal links when PORTAL_LINK_SECRET is not
// set. It is only ever used by `dunning dev` and `dunning portal-link`.
const DevPortalLinkSecret = "dunning_local_development_portal_link_secret"

// devPortalDefaults points portal links at the local webhook, signed with
// the dev secret, where the environment does not say otherwise. It reports
// whether the dev secret is used.
func devPortalDefaults() (devSecret bool) {
	if os.Getenv("PUBLIC_URL") == "" {
		os.Setenv("PUBLIC_URL", devPublicURL(envOr("HTTP_ADDR", ":8080")))
	}
	if os.Getenv("PORTAL_LINK_SECRET") == "" {
		os.Setenv("PORTAL_LINK_SECRET", DevPortalLinkSecret)
	}
	return os.Getenv("PORTAL_LINK_SECRET") == DevPortalLinkSecret
}

// devPublicURL is where a browser on this machine reaches a webhook
// listening on addr.
func devPublicURL(addr string) string {
	host := hostOf(addr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, portOf(addr))
}

// runPortalLink prints a customer's one-click link, as notices carry it:
// with PUBLIC_URL, PORTAL_LINK_SECRET (its first entry) and
// PORTAL_LINK_TTL, or, when neither of the first two is set, the local
// stack's.
func runPortalLink(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("portal-link", flag.ContinueOnError)
	fs.SetOutput(out)
	customer := fs.String("customer", "", "Stripe customer ID (cus_…); required")
	ttl := fs.Duration("ttl", 0, "lifetime of the link; PORTAL_LINK_TTL (720h) when zero")
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: dunning portal-link --customer cus_… [--ttl 720h]\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *customer == "" {
		fs.Usage()
		return errors.New("--customer is required")
	}
	dev := false
	if os.Getenv("PUBLIC_URL") == "" && os.Getenv("PORTAL_LINK_SECRET") == "" {
		dev = devPortalDefaults()
	}
	if *ttl == 0 {
		d, err := time.ParseDuration(envOr("PORTAL_LINK_TTL", portallink.DefaultTTL.String()))
		if err != nil {
			return fmt.Errorf("PORTAL_LINK_TTL: %w", err)
		}
		*ttl = d
	}
	secret := strings.TrimSpace(strings.Split(os.Getenv("PORTAL_LINK_SECRET"), ",")[0])
	links, err := portallink.NewLinks(strings.TrimSpace(os.Getenv("PUBLIC_URL")), []string{secret}, *ttl)
	if err != nil {
		return err
	}
	link, expires, err := links.URL(*customer, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(out, link)
	fmt.Fprintf(out, "  customer  %s\n", *customer)
	fmt.Fprintf(out, "  expires   %s\n", expires.UTC().Format(time.RFC3339))
	if dev {
		fmt.Fprintf(out, "  signed    with the dev secret (PUBLIC_URL and PORTAL_LINK_SECRET are not set)\n")
	}
	fmt.Fprintf(out, "  follow it: curl -i '%s'   (303, Location: the Stripe Billing Portal session)\n", link)
	return nil
}
