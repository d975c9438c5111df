package e2e

import (
	"fmt"
	"slices"
)

// Peers are the stand-ins for all of dunning's peers, for a stack that
// runs its processes itself (the soak): the stateful Stripe, the control
// plane, Amberflo, the ops alert webhook and the customer-notice mailer.
// The control plane and the mailer check signatures with the secrets
// given.
type Peers struct {
	Stripe   *Stripe
	Control  *ControlPlane
	Amberflo *Amberflo
	Alerts   *Alerts
	Notices  *Notices
}

// NewPeers starts every stand-in; Close stops them.
func NewPeers(controlSecret, noticeSecret string) *Peers {
	return &Peers{
		Stripe: newStripe(), Control: newControlPlane(controlSecret), Amberflo: newAmberflo(),
		Alerts: newAlerts(), Notices: newNotices(noticeSecret),
	}
}

// Env is the environment that points dunning at the stand-ins.
func (p *Peers) Env() map[string]string {
	return map[string]string{
		"STRIPE_API_KEY":      StripeKey,
		"STRIPE_API_BASE_URL": p.Stripe.URL(),
		"AMBERFLO_API_KEY":    AmberfloKey,
		"AMBERFLO_BASE_URL":   p.Amberflo.URL(),
		"CONTROL_PLANE_URL":   p.Control.URL() + ControlPlanePrefix,
		"ALERT_WEBHOOK_URL":   p.Alerts.URL() + AlertPath,
		"CUSTOMER_NOTICE_URL": p.Notices.URL() + NoticePath,
	}
}

// Problems lists, for every stand-in, the requests it found wrong as the
// real peer would have rejected them.
func (p *Peers) Problems() []string {
	var out []string
	for _, q := range []*peer{p.Stripe.peer, p.Control.peer, p.Amberflo.peer, p.Alerts.peer, p.Notices.peer} {
		for _, pr := range q.Problems() {
			out = append(out, fmt.Sprintf("%s: %s", q.name, pr))
		}
	}
	return slices.Clip(out)
}

// Close stops every stand-in.
func (p *Peers) Close() {
	for _, q := range []*peer{p.Stripe.peer, p.Control.peer, p.Amberflo.peer, p.Alerts.peer, p.Notices.peer} {
		q.Close()
	}
}
