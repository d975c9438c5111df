package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/stripe/stripe-go/v76"
	stripeclient "github.com/stripe/stripe-go/v76/client"

	"dunning/workflows"
)

// defaultEndpointDescription is the description of an endpoint that
// stripe-setup creates without --description.
const defaultEndpointDescription = "dunning: payment recovery (Temporal)"

// stripeSetupOptions says which endpoint stripe-setup configures, through
// which client.
type stripeSetupOptions struct {
	// Stripe is the API client; see newStripeAPI.
	Stripe *stripeclient.API
	// URL is the webhook endpoint's URL, e.g. https://…/webhooks/stripe.
	URL string
	// Description is set on the endpoint when not empty; an endpoint that
	// is created without one gets defaultEndpointDescription.
	Description string
}

// runStripeSetup parses the flags of `dunning stripe-setup` and configures
// the Stripe webhook endpoint.
func runStripeSetup(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("stripe-setup", flag.ContinueOnError)
	fs.SetOutput(out)
	endpointURL := fs.String("url", "", "the webhook's public URL, https://…/webhooks/stripe (required)")
	// The key's default is read after parsing so that usage never prints it.
	apiKey := fs.String("api-key", "", "Stripe secret key (default $STRIPE_API_KEY)")
	apiBase := fs.String("api-base", "", "Stripe API base URL (default $STRIPE_API_BASE_URL, else "+stripe.APIURL+")")
	description := fs.String("description", "", "the endpoint's description (default on create: \""+defaultEndpointDescription+"\"; on update: left as it is)")
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: dunning stripe-setup --url https://…/webhooks/stripe [flags]\n\n"+
			"Creates or updates the Stripe webhook endpoint with that URL so that it sends\n"+
			"exactly the event types dunning handles, rendered as API version %s:\n  %s\n\nflags:\n",
			stripe.APIVersion, strings.Join(workflows.HandledEventTypes(), "\n  "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil // usage was asked for and printed
	} else if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *endpointURL == "" {
		fs.Usage()
		return errors.New("--url is required")
	}
	key := *apiKey
	if key == "" {
		key = os.Getenv("STRIPE_API_KEY")
	}
	if key == "" {
		return errors.New("no Stripe API key: set STRIPE_API_KEY or pass --api-key")
	}
	base := *apiBase
	if base == "" {
		base = envOr("STRIPE_API_BASE_URL", stripe.APIURL)
	}
	if err := checkAPIBase(base); err != nil {
		return err
	}
	return stripeSetup(ctx, stripeSetupOptions{
		Stripe:      newStripeAPI(key, base),
		URL:         *endpointURL,
		Description: *description,
	}, out)
}

// newStripeAPI builds a Stripe client on base, the way the worker does:
// no retries of its own, and no logging (errors are returned).
func newStripeAPI(key, base string) *stripeclient.API {
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(base),
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	return stripeclient.New(key, &stripe.Backends{API: backend, Connect: backend, Uploads: backend})
}

// stripeSetup creates or updates the webhook endpoint with opts.URL so that
// it sends exactly workflows.HandledEventTypes, and reports what it did to
// out. Running it again changes nothing that is already right.
func stripeSetup(ctx context.Context, opts stripeSetupOptions, out io.Writer) error {
	if opts.Stripe == nil {
		return errors.New("stripe-setup: no Stripe client")
	}
	if err := checkEndpointURL(opts.URL); err != nil {
		return err
	}
	want := workflows.HandledEventTypes()

	matches, err := endpointsWithURL(ctx, opts.Stripe, opts.URL)
	if err != nil {
		return err
	}
	if len(matches) == 0 {
		return createEndpoint(ctx, opts, want, out)
	}
	return updateEndpoint(ctx, opts, matches[0], matches[1:], want, out)
}

// endpointsWithURL lists every webhook endpoint of the account, page by
// page, and returns those whose URL is u, in Stripe's order.
func endpointsWithURL(ctx context.Context, api *stripeclient.API, u string) ([]*stripe.WebhookEndpoint, error) {
	params := &stripe.WebhookEndpointListParams{}
	params.Context = ctx
	var matches []*stripe.WebhookEndpoint
	it := api.WebhookEndpoints.List(params)
	for it.Next() {
		if ep := it.WebhookEndpoint(); ep.URL == u {
			matches = append(matches, ep)
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list Stripe webhook endpoints: %w", err)
	}
	return matches, nil
}

func createEndpoint(ctx context.Context, opts stripeSetupOptions, want []string, out io.Writer) error {
	description := opts.Description
	if description == "" {
		description = defaultEndpointDescription
	}
	params := &stripe.WebhookEndpointParams{
		URL:           stripe.String(opts.URL),
		EnabledEvents: stripe.StringSlice(want),
		APIVersion:    stripe.String(stripe.APIVersion),
		Description:   stripe.String(description),
	}
	params.Context = ctx
	ep, err := opts.Stripe.WebhookEndpoints.New(params)
	if err != nil {
		return fmt.Errorf("create Stripe webhook endpoint for %s: %w", opts.URL, err)
	}
	fmt.Fprintf(out, "created webhook endpoint %s%s\n", ep.ID, modeOf(ep))
	printEndpoint(out, ep)
	if ep.Secret == "" {
		fmt.Fprintf(out, "\nStripe returned no signing secret; reveal it in the Dashboard (Developers → Webhooks → %s)\n"+
			"and set it as STRIPE_WEBHOOK_SECRET where `dunning webhook` runs.\n", ep.ID)
		return nil
	}
	fmt.Fprintf(out, "\nsigning secret (Stripe shows it only now), to set where `dunning webhook` runs:\n"+
		"  STRIPE_WEBHOOK_SECRET=%s\n"+
		"While another secret is still in use, list both, comma-separated: STRIPE_WEBHOOK_SECRET=whsec_new,whsec_old\n", ep.Secret)
	return nil
}

func updateEndpoint(ctx context.Context, opts stripeSetupOptions, ep *stripe.WebhookEndpoint, others []*stripe.WebhookEndpoint, want []string, out io.Writer) error {
	params := &stripe.WebhookEndpointParams{}
	params.Context = ctx
	var changes []string

	have := slices.Sorted(slices.Values(ep.EnabledEvents))
	have = slices.Compact(have)
	if !slices.Equal(have, want) {
		params.EnabledEvents = stripe.StringSlice(want)
		added, removed := setDiff(want, have), setDiff(have, want)
		if len(added) > 0 {
			changes = append(changes, "events added: "+strings.Join(added, ", "))
		}
		if len(removed) > 0 {
			changes = append(changes, "events removed: "+strings.Join(removed, ", "))
		}
	}
	if ep.Status == "disabled" {
		params.Disabled = stripe.Bool(false)
		changes = append(changes, "re-enabled (it was disabled)")
	}
	if opts.Description != "" && opts.Description != ep.Description {
		params.Description = stripe.String(opts.Description)
		changes = append(changes, fmt.Sprintf("description set to %q", opts.Description))
	}

	if len(changes) == 0 {
		fmt.Fprintf(out, "unchanged webhook endpoint %s%s: it already sends exactly the handled events\n", ep.ID, modeOf(ep))
	} else {
		updated, err := opts.Stripe.WebhookEndpoints.Update(ep.ID, params)
		if err != nil {
			return fmt.Errorf("update Stripe webhook endpoint %s: %w", ep.ID, err)
		}
		ep = updated
		fmt.Fprintf(out, "updated webhook endpoint %s%s\n", ep.ID, modeOf(ep))
		for _, c := range changes {
			fmt.Fprintf(out, "  - %s\n", c)
		}
	}
	printEndpoint(out, ep)
	fmt.Fprintln(out, "\nThe signing secret is unchanged (Stripe returns it only on create); STRIPE_WEBHOOK_SECRET stays as it is.")

	if ep.APIVersion != stripe.APIVersion {
		version := ep.APIVersion
		if version == "" {
			version = "the account's default version"
		}
		fmt.Fprintf(out, "\nWARNING: API version mismatch: endpoint %s renders events as %s, not %s.\n"+
			"Stripe cannot change the API version of an existing endpoint: a new endpoint is needed.\n"+
			"dunning decodes events of any version, so this one keeps working meanwhile. To switch without losing events:\n"+
			"  1. add a new endpoint for this URL with API version %s (Dashboard → Developers → Webhooks),\n"+
			"  2. set STRIPE_WEBHOOK_SECRET to the new secret and the old one, comma-separated\n"+
			"     (an event delivered by both endpoints is handled once: its ID is the workflow ID),\n"+
			"  3. delete %s, then run stripe-setup again.\n",
			ep.ID, version, stripe.APIVersion, stripe.APIVersion, ep.ID)
	}
	if len(others) > 0 {
		ids := make([]string, len(others))
		for i, o := range others {
			ids[i] = o.ID
		}
		fmt.Fprintf(out, "\nWARNING: %d more endpoint(s) have this URL and were left as they are: %s\n"+
			"Each sends its own copy of every event, signed with its own secret. Delete the extra ones\n"+
			"in the Dashboard (Developers → Webhooks), or they may fail signature checks and be disabled by Stripe.\n",
			len(others), strings.Join(ids, ", "))
	}
	return nil
}

func printEndpoint(out io.Writer, ep *stripe.WebhookEndpoint) {
	version := ep.APIVersion
	if version == "" {
		version = "(account default)"
	}
	fmt.Fprintf(out, "  url:          %s\n  status:       %s\n  api version:  %s\n  events:\n", ep.URL, ep.Status, version)
	for _, e := range slices.Sorted(slices.Values(ep.EnabledEvents)) {
		fmt.Fprintf(out, "    %s\n", e)
	}
}

func modeOf(ep *stripe.WebhookEndpoint) string {
	if ep.Livemode {
		return " (live mode)"
	}
	return " (test mode)"
}

// setDiff returns the elements of a that are not in b.
func setDiff(a, b []string) []string {
	var d []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			d = append(d, s)
		}
	}
	return d
}

// checkEndpointURL accepts an absolute https URL, or http on the local host
// (for tests and stripe-mock only: Stripe itself delivers to https only).
func checkEndpointURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("--url %q is not a URL: %w", raw, err)
	}
	if !u.IsAbs() || u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("--url %q must be an absolute URL such as https://dunning.example.com/webhooks/stripe", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" {
			return fmt.Errorf("--url %q must use https: Stripe delivers webhooks only to https URLs (http is allowed for localhost and 127.0.0.1 only)", raw)
		}
	default:
		return fmt.Errorf("--url %q must use https, not %q", raw, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("--url %q must not carry a user or password", u.Redacted())
	}
	if u.Fragment != "" {
		return fmt.Errorf("--url %q must not have a #fragment", raw)
	}
	return nil
}

// checkAPIBase rejects an API base URL that stripe-go could not call.
func checkAPIBase(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("API base URL %q (--api-base or STRIPE_API_BASE_URL) must be an absolute http(s) URL such as %s", raw, stripe.APIURL)
	}
	return nil
}
