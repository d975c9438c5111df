package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"dunning/internal/stripefixture"
	"dunning/workflows"
)

// runSendEvent builds a real-shaped Stripe event, signs it with the
// configured secret and posts it to the webhook: the local stand-in for
// `stripe trigger`.
func runSendEvent(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("send-event", flag.ContinueOnError)
	fs.SetOutput(out)
	url := fs.String("url", "http://"+displayAddr(envOr("HTTP_ADDR", ":8080"))+"/webhooks/stripe", "webhook URL")
	customer := fs.String("customer", "", "Stripe customer ID (cus_…); random when empty")
	id := fs.String("id", "", "event ID (evt_…); random when empty")
	object := fs.String("object", "", "ID of data.object (pi_…, in_…, card_…, pm_…); random when empty")
	invoice := fs.String("invoice", "", "invoice behind a payment intent (in_…); random when empty")
	intent := fs.String("payment-intent", "", "payment intent behind an invoice (pi_…), for invoice.paid; random when empty")
	amount := fs.Int64("amount", 4900, "amount in minor units")
	currency := fs.String("currency", "usd", "currency")
	apiVersion := fs.String("api-version", stripefixture.APIVersion, "the event's api_version")
	secret := fs.String("secret", "", "signing secret; STRIPE_WEBHOOK_SECRET's first entry, or the dev secret, when empty")
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: dunning send-event TYPE [flags]\n\nhandled types:\n  %s\n\nflags:\n",
			strings.Join(workflows.HandledEventTypes(), "\n  "))
		fs.PrintDefaults()
	}
	// The type comes first, flags after it, as in the README.
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs.Usage()
		return fmt.Errorf("an event type is required")
	}
	eventType := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *secret == "" {
		*secret = strings.TrimSpace(strings.Split(os.Getenv("STRIPE_WEBHOOK_SECRET"), ",")[0])
	}
	if *secret == "" {
		*secret = DevWebhookSecret
	}

	body, err := stripefixture.Event(eventType, stripefixture.Options{
		ID: *id, Customer: *customer, ObjectID: *object, Amount: *amount, Currency: *currency, APIVersion: *apiVersion,
		Invoice: *invoice, PaymentIntent: *intent,
	})
	if err != nil {
		return err
	}
	req, err := stripefixture.Request(*url, body, *secret, time.Now())
	if err != nil {
		return err
	}
	req = req.WithContext(ctx)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("post event to %s: %w", *url, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))

	var ev struct {
		ID   string `json:"id"`
		Data struct {
			Object struct {
				ID       string `json:"id"`
				Customer string `json:"customer"`
			} `json:"object"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &ev)
	fmt.Fprintf(out, "%s %s -> %s\n", eventType, ev.ID, resp.Status)
	fmt.Fprintf(out, "  object      %s\n", ev.Data.Object.ID)
	if _, handled := workflows.RouteOf(eventType); handled {
		fmt.Fprintf(out, "  workflow    %s\n", workflows.EventWorkflowID(ev.ID))
	}
	fmt.Fprintf(out, "  response    %s\n", strings.TrimSpace(string(answer)))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
