package workflows_test

import (
	"testing"
	"time"

	"dunning/workflows"
)

// From API version 2025-03-31.basil an intent names no invoice and an
// invoice names no intent: the failure arrives without its invoice, the
// invoice.paid without its intent. Stripe's own read (at the pinned
// version) links the two, and the payment is the recovery's at once.
func TestBasilInvoicePaidMeetsIntentWithoutInvoice(t *testing.T) {
	rt := newRecoveryTest(t)
	first := failed("evt_basil_failed", "pi_1", t0)
	first.Intent.InvoiceID = "" // basil: no invoice on the intent
	paidAt := 90 * time.Minute
	rt.at(paidAt, func() {
		rt.w.set(func() { rt.w.invoiceState["in_pi_1"] = "paid" })
		rt.env.SignalWorkflow(workflows.SignalPaid, workflows.PaidSignal{EventID: "evt_basil_paid", Created: t0.Add(paidAt),
			InvoiceID: "in_pi_1", Source: workflows.EventInvoicePaid}) // basil: no payment_intent on the invoice
	})
	res := rt.runFrom(input(), first)
	if res.Stage != workflows.StageRecovered {
		t.Fatalf("stage %s, want recovered", res.Stage)
	}
	if ended := rt.env.Now().Sub(t0); ended != paidAt {
		t.Errorf("recovered at +%s, want at the invoice.paid (+%s): the payment did not meet its intent", ended, paidAt)
	}
	// The life's result names the invoice too: an invoice.paid after its
	// end is told by it (LateMoney), whatever the event's version.
	if len(res.Intents) != 1 || res.Intents[0].InvoiceID != "in_pi_1" {
		t.Errorf("result intents %+v, want pi_1 with its invoice in_pi_1", res.Intents)
	}
	if len(rt.w.retries) != 1 {
		t.Errorf("%d retries, want only the one before the payment", len(rt.w.retries))
	}
}
