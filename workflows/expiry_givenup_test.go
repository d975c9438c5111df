package workflows_test

import (
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"
)

// Nothing silent. The expiring event comes half an hour before the card
// expires, and the mailer is down until then: the notice is given up at
// the expiry before the hour after which a held notice reaches ops. The
// card is still relied on: the at-risk alert that ops get then must say
// that the customer was never told.
func TestCardExpiryNoticeGivenUpWithinTheHourReachesOps(t *testing.T) {
	attempts := 0
	run := runExpiryHeld(t, newCardStripe(cardDue), mailerDown(&attempts, 0), 10*time.Minute, func(env *testsuite.TestWorkflowEnvironment) {
		env.SetStartTime(cardEnd.Add(-30 * time.Minute))
	})
	if len(run.alerts) != 1 || !strings.Contains(run.alerts[0].Title, "at risk") {
		t.Fatalf("alerts %+v, want the account at risk", run.alerts)
	}
	if text := run.alerts[0].Text; !strings.Contains(text, "card_expiring") || !strings.Contains(text, "not delivered") {
		t.Errorf("at-risk alert %q; want it to say the card_expiring notice was not delivered to the customer", text)
	}
}
