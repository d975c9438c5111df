//go:build soak

package soak

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/internal/stripeevent"
	"dunning/internal/stripefixture"
	"dunning/workflows"
)

// settings are the soak's knobs, read from the environment.
type settings struct {
	Duration time.Duration // SOAK_DURATION: traffic and faults (10m)
	// Rate is new customers per minute (SOAK_CUSTOMERS_PER_MINUTE, 20).
	Rate float64
	Seed uint64 // SOAK_SEED: the traffic's and the faults' random choices
	// Dir keeps every process's log and the database (SOAK_DIR, else
	// .data/soak/<start time> under the module root).
	Dir    string
	Binary string // DUNNING_BIN, else built from cmd/dunning
	// The short schedule: retries in seconds, grace and deprovisioning in
	// tens of seconds.
	RetrySchedule      string
	Grace, Deprovision time.Duration
	// Drain bounds the wait, after the faults stop, for every delivery to
	// be answered 200 and every recovery to end.
	Drain time.Duration
}

func loadSettings(t *testing.T) settings {
	s := settings{
		Duration: 10 * time.Minute, Rate: 20, Seed: uint64(time.Now().UnixNano()),
		RetrySchedule: "3s,10s,20s", Grace: 30 * time.Second, Deprovision: 40 * time.Second,
	}
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("SOAK_DURATION=%q: want a positive duration such as 10m", v)
		}
		s.Duration = d
	}
	if v := os.Getenv("SOAK_CUSTOMERS_PER_MINUTE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 {
			t.Fatalf("SOAK_CUSTOMERS_PER_MINUTE=%q: want a positive number", v)
		}
		s.Rate = r
	}
	if v := os.Getenv("SOAK_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SOAK_SEED=%q: want an unsigned integer", v)
		}
		s.Seed = n
	}
	s.Drain = 10*time.Minute + s.Grace + s.Deprovision
	root := moduleRoot(t)
	s.Dir = os.Getenv("SOAK_DIR")
	if s.Dir == "" {
		s.Dir = filepath.Join(root, ".data", "soak", time.Now().UTC().Format("20060102T150405Z"))
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s.Binary = os.Getenv("DUNNING_BIN")
	if s.Binary == "" {
		s.Binary = filepath.Join(s.Dir, "dunning")
		build := exec.Command("go", "build", "-o", s.Binary, "./cmd/dunning")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/dunning: %v\n%s", err, out)
		}
	}
	return s
}

func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// lockedRand is one seeded source shared by the goroutines.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newRand(seed uint64) *lockedRand {
	return &lockedRand{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (l *lockedRand) between(lo, hi time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return jitter(l.r, lo, hi)
}

func (l *lockedRand) chance(p float64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64() < p
}

func (l *lockedRand) intN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

// ---- the model: what the soak did at Stripe, customer by customer

// script names a customer's story.
type script string

const (
	neverPays   script = "never pays"     // deprovisioned
	pays        script = "pays"           // by the intent or the invoice, maybe while suspended
	newCard     script = "new card"       // dunning's retry charges it
	twoInvoices script = "two invoices"   // pays one, maybe the other
	cardsOnly   script = "expiring cards" // no failed payment at all: no recovery
	waived      script = "waived"         // an operator forgives the debt
	// debitPays pays by bank debit: processing for a while, then paid.
	debitPays script = "debit pays"
	// debitFailsAgain is told its payment failed, pays it by bank debit,
	// and the debit fails: told again, maybe paid by card in the end.
	debitFailsAgain script = "debit fails again"
	// reopens is suspended, and pays what the suspension was for while a
	// second payment, whose event Stripe delivers late, is unpaid.
	reopens script = "reopens"
)

// scriptWeight is the sum of the scripts' weights in pickScript.
const scriptWeight = 15

// pickScript draws a story: 3 never pay, 3 pay, 3 get a new card, 1 has
// two failed invoices, 1 only has cards expiring and removed, 1 is
// forgiven by an operator, 1 pays by bank debit, 1 sees a bank debit
// fail, 1 reopens a suspended life.
func pickScript(r *lockedRand) script {
	switch n := r.intN(scriptWeight); {
	case n == 14:
		return reopens
	case n == 13:
		return debitFailsAgain
	case n == 12:
		return debitPays
	case n == 11:
		return waived
	case n < 3:
		return neverPays
	case n < 6:
		return pays
	case n < 9:
		return newCard
	case n < 10:
		return twoInvoices
	default:
		return cardsOnly
	}
}

type intentModel struct {
	ID, Invoice string
	Amount      int64
	// PaidAt is when the customer paid it at Stripe (an event happened);
	// zero while unpaid that way.
	PaidAt time.Time
	// DebitAt is when a bank debit of it started (Stripe shows it
	// processing), and DebitFailedAt when that debit failed; zero if
	// none did.
	DebitAt, DebitFailedAt time.Time
}

type customerModel struct {
	ID     string
	Script script
	Start  time.Time
	// Expect is the final stage the events imply; "" for no recovery.
	Expect workflows.Stage

	mu      sync.Mutex
	Intents []*intentModel
	// WorkingCardAt is when a card that works was attached.
	WorkingCardAt time.Time
	// WaivedAt is when an operator's waiver was answered accepted.
	WaivedAt time.Time
	// CardEvent is the event that told of the working card.
	CardEvent *event
}

// paidAt is when the last of the customer's intents was paid by the
// customer, zero while any is unpaid.
func (c *customerModel) paidAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var last time.Time
	for _, in := range c.Intents {
		if in.PaidAt.IsZero() {
			return time.Time{}
		}
		if in.PaidAt.After(last) {
			last = in.PaidAt
		}
	}
	return last
}

// traffic makes customers at the configured rate and plays each one's
// story: the events happen at Stripe (the stand-in's state follows at
// once) and go to the sender.
type traffic struct {
	set    settings
	st     *stack
	snd    *sender
	r      *lockedRand
	mu     sync.Mutex
	byID   map[string]*customerModel
	all    []*customerModel
	wg     sync.WaitGroup
	errorf func(string, ...any)
	logf   func(string, ...any)
}

// run makes customers until ctx ends; their stories play on.
func (tr *traffic) run(ctx context.Context) {
	gap := time.Duration(float64(time.Minute) / tr.set.Rate)
	for {
		tr.newCustomer()
		select {
		case <-ctx.Done():
			return
		case <-time.After(tr.r.between(gap/2, gap*3/2)):
		}
	}
}

// wait waits for every story to have played to its end.
func (tr *traffic) wait() { tr.wg.Wait() }

func (tr *traffic) customers() []*customerModel {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.all)
}

type step struct {
	at time.Duration
	do func()
}

func (tr *traffic) newCustomer() {
	c := &customerModel{ID: stripefixture.NewID("cus"), Script: pickScript(tr.r), Start: time.Now()}
	tr.mu.Lock()
	tr.all = append(tr.all, c)
	tr.mu.Unlock()

	g, d := tr.set.Grace, tr.set.Deprovision
	// Late enough to reach every stage, early enough that the payment or
	// the new card is at Stripe well before deprovisioning falls due,
	// however late the deadlines run.
	late := g + d/2
	fail := func(in *intentModel) func() {
		return func() {
			tr.happen(c, workflows.EventPaymentFailed, stripefixture.Options{ObjectID: in.ID, Invoice: in.Invoice, Amount: in.Amount})
		}
	}
	pay := func(in *intentModel) func() {
		return func() {
			c.mu.Lock()
			in.PaidAt = time.Now()
			c.mu.Unlock()
			if tr.r.chance(0.5) {
				tr.happen(c, workflows.EventPaymentSucceeded, stripefixture.Options{ObjectID: in.ID, Invoice: in.Invoice, Amount: in.Amount})
			} else {
				tr.happen(c, workflows.EventInvoicePaid, stripefixture.Options{ObjectID: in.Invoice, PaymentIntent: in.ID, Amount: in.Amount})
			}
			if !c.paidAt().IsZero() {
				tr.st.peers.Amberflo.SetInvoiceStatus(c.ID, "SETTLED")
			}
		}
	}
	// debit starts a bank debit of in: Stripe confirms it, shows it
	// processing and sends payment_intent.processing. One in four is
	// lost on the way (listed by Stripe, never delivered): the debit's
	// failure event alone must then tell dunning it failed again.
	debit := func(in *intentModel) func() {
		return func() {
			c.mu.Lock()
			in.DebitAt = time.Now()
			c.mu.Unlock()
			tr.st.peers.Stripe.Process(in.ID)
			o := stripefixture.Options{ObjectID: in.ID, Invoice: in.Invoice, Amount: in.Amount}
			if tr.r.chance(0.25) {
				tr.happenUndelivered(c, workflows.EventPaymentProcessing, o)
			} else {
				tr.happen(c, workflows.EventPaymentProcessing, o)
			}
		}
	}
	// debitFails fails in's bank debit: its event names the bank account
	// that failed, as Stripe's does.
	debitFails := func(in *intentModel) func() {
		return func() {
			c.mu.Lock()
			in.DebitFailedAt = time.Now()
			c.mu.Unlock()
			tr.happen(c, workflows.EventPaymentFailed, stripefixture.Options{ObjectID: in.ID, Invoice: in.Invoice, Amount: in.Amount, PaymentMethodType: "us_bank_account"})
		}
	}
	cardEvent := func(typ string) func() {
		return func() { tr.happen(c, typ, stripefixture.Options{}) }
	}
	newIntent := func() *intentModel {
		in := &intentModel{ID: stripefixture.NewID("pi"), Invoice: stripefixture.NewID("in"), Amount: int64(500 + tr.r.intN(20000))}
		c.Intents = append(c.Intents, in)
		return in
	}

	// A card removed: a legacy Card/Source account's event, or a
	// PaymentMethod account's, whose customer is only in its previous
	// attributes.
	removed := func() string {
		if tr.r.chance(0.5) {
			return workflows.EventPaymentMethodDetached
		}
		return workflows.EventSourceDeleted
	}
	var steps []step
	add := func(at time.Duration, do func()) { steps = append(steps, step{at, do}) }
	switch c.Script {
	case neverPays:
		c.Expect = workflows.StageDeprovisioned
		in := newIntent()
		add(0, fail(in))
		if tr.r.chance(0.4) { // Stripe's own retry of the invoice fails too
			add(tr.r.between(2*time.Second, g-5*time.Second), fail(in))
		}
		if tr.r.chance(0.3) {
			add(tr.r.between(0, g), cardEvent(workflows.EventSourceExpiring))
		}
		if tr.r.chance(0.3) {
			add(tr.r.between(0, g), cardEvent(removed()))
		}
	case pays:
		c.Expect = workflows.StageRecovered
		in := newIntent()
		add(0, fail(in))
		at := tr.r.between(6*time.Second, late)
		if tr.r.chance(0.3) {
			add(tr.r.between(time.Second, 5*time.Second), fail(in))
		}
		add(at, pay(in))
	case newCard:
		c.Expect = workflows.StageRecovered
		in := newIntent()
		add(0, fail(in))
		if tr.r.chance(0.25) {
			add(tr.r.between(0, 3*time.Second), cardEvent(removed()))
		}
		types := []string{workflows.EventPaymentMethodAttached, workflows.EventPaymentMethodAutoUpd,
			workflows.EventSourceCreated, workflows.EventSourceUpdated, workflows.EventCustomerUpdated}
		typ := types[tr.r.intN(len(types))]
		add(tr.r.between(4*time.Second, late), func() {
			c.mu.Lock()
			c.WorkingCardAt = time.Now()
			c.mu.Unlock()
			ev := tr.happen(c, typ, stripefixture.Options{})
			c.mu.Lock()
			c.CardEvent = ev
			c.mu.Unlock()
		})
	case twoInvoices:
		first, second := newIntent(), newIntent()
		add(0, fail(first))
		add(tr.r.between(time.Second, 5*time.Second), fail(second))
		add(tr.r.between(6*time.Second, 15*time.Second), pay(first))
		c.Expect = workflows.StageDeprovisioned
		if tr.r.chance(0.5) {
			c.Expect = workflows.StageRecovered
			add(tr.r.between(16*time.Second, late), pay(second))
		}
	case waived:
		c.Expect = workflows.StageWaived
		in := newIntent()
		add(0, fail(in))
		add(tr.r.between(5*time.Second, late), func() { tr.waive(c) })
	case debitPays:
		// Paid by bank debit before or after the suspension; while it
		// processes nothing may be taken away, and once it succeeds the
		// customer is recovered.
		c.Expect = workflows.StageRecovered
		in := newIntent()
		add(0, fail(in))
		start := tr.r.between(4*time.Second, late)
		add(start, debit(in))
		add(start+tr.r.between(5*time.Second, 30*time.Second), pay(in))
	case debitFailsAgain:
		// Told of the failure at once, the customer pays by bank debit,
		// and the debit fails: across the retries at 10s and 20s, or
		// while suspended, across the re-check before deprovisioning
		// (which finds it processing). They are told again, given the
		// notice lead, and maybe pay by card in it.
		c.Expect = workflows.StageDeprovisioned
		in := newIntent()
		add(0, fail(in))
		pays := tr.r.chance(0.5)
		if pays {
			c.Expect = workflows.StageRecovered
		}
		if tr.r.chance(0.5) {
			// While suspended: the debit starts 6 to 12 s before the
			// deprovisioning falls due (counted from the suspension as
			// the control plane saw it) and fails 2 to 10 s after.
			lead, last := tr.r.between(6*time.Second, 12*time.Second), tr.r.between(12*time.Second, 20*time.Second)
			payIn := tr.r.between(4*time.Second, 10*time.Second)
			add(g, func() {
				suspended := tr.suspendedAt(c, 2*time.Minute)
				if suspended.IsZero() {
					// Not suspended in time: no debit; the story ends as drawn.
					if pays {
						pay(in)()
					}
					return
				}
				time.Sleep(time.Until(suspended.Add(d - lead)))
				debit(in)()
				time.Sleep(last)
				debitFails(in)()
				if pays {
					time.Sleep(payIn)
					pay(in)()
				}
			})
			break
		}
		failAt := tr.r.between(12*time.Second, 24*time.Second)
		add(tr.r.between(4*time.Second, 8*time.Second), debit(in))
		add(failAt, debitFails(in))
		if pays {
			add(failAt+tr.r.between(20*time.Second, 45*time.Second), pay(in))
		}
	case reopens:
		// Suspended for the first payment at the grace period; the second
		// fails about then, but Stripe delivers its event only after the
		// first is paid, well into the suspension.
		c.Expect = workflows.StageDeprovisioned
		first, second := newIntent(), newIntent()
		add(0, fail(first))
		release := make(chan struct{})
		add(tr.r.between(g-10*time.Second, g+5*time.Second), func() {
			tr.happenHeld(c, workflows.EventPaymentFailed, stripefixture.Options{ObjectID: second.ID, Invoice: second.Invoice, Amount: second.Amount}, release)
		})
		paid := tr.r.between(g+12*time.Second, g+20*time.Second)
		add(paid, pay(first))
		add(paid+tr.r.between(3*time.Second, 10*time.Second), func() { close(release) })
		if tr.r.chance(0.5) {
			c.Expect = workflows.StageRecovered
			add(paid+tr.r.between(8*time.Second, 35*time.Second), pay(second))
		}
	case cardsOnly:
		add(0, cardEvent(workflows.EventSourceExpiring))
		add(tr.r.between(time.Second, 10*time.Second), cardEvent(removed()))
		add(tr.r.between(10*time.Second, 20*time.Second), cardEvent(workflows.EventPaymentMethodAttached))
	}
	slices.SortStableFunc(steps, func(a, b step) int { return int(a.at - b.at) })

	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		for _, s := range steps {
			time.Sleep(time.Until(c.Start.Add(s.at)))
			s.do()
		}
	}()
}

// suspendedAt waits, at most within, for the control plane to apply the
// customer's suspension, and says when it did; zero if it did not.
func (tr *traffic) suspendedAt(c *customerModel, within time.Duration) time.Time {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for _, ap := range tr.st.peers.Control.Applied(c.ID) {
			if ap.Action == "suspend" {
				return ap.At
			}
		}
	}
	return time.Time{}
}

// waive asks for the waiver as an operator does, with the waive update,
// again (the same update ID) until Temporal answers.
func (tr *traffic) waive(c *customerModel) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		res, err := tr.waiveOnce(c)
		switch {
		case err == nil && res.Accepted:
			c.mu.Lock()
			c.WaivedAt = time.Now()
			c.mu.Unlock()
			return
		case err == nil:
			// Refused, with the reason: the customer is left to the end
			// the events imply without it.
			tr.logf("waiver for %s refused: %s", c.ID, res.Message)
			c.mu.Lock()
			c.Expect = workflows.StageDeprovisioned
			c.mu.Unlock()
			return
		case time.Now().After(deadline):
			tr.errorf("waiver for %s not answered within 2m: %v", c.ID, err)
			return
		}
		time.Sleep(2 * time.Second)
	}
}

func (tr *traffic) waiveOnce(c *customerModel) (workflows.OperatorResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var res workflows.OperatorResult
	h, err := tr.st.client().UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.RecoveryWorkflowID(c.ID), UpdateID: "soak-waive-" + c.ID, UpdateName: workflows.ControlWaive,
		Args:         []any{workflows.OperatorRequest{Reason: "goodwill (soak)", Operator: "soak"}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return res, err
	}
	return res, h.Get(ctx, &res)
}

// happen makes an event happen at Stripe now and hands it to the sender.
func (tr *traffic) happen(c *customerModel, typ string, o stripefixture.Options) *event {
	return tr.happenHeld(c, typ, o, nil)
}

// happenUndelivered makes an event happen at Stripe that never reaches
// dunning's endpoint (lost on the way): its state changes and GET
// /v1/events lists it, but nothing is delivered.
func (tr *traffic) happenUndelivered(c *customerModel, typ string, o stripefixture.Options) {
	o.Customer = c.ID
	o.ID = stripefixture.NewID("evt")
	o.Created = time.Now()
	body, err := stripefixture.Event(typ, o)
	if err != nil {
		tr.errorf("build %s for %s: %v", typ, c.ID, err)
		return
	}
	tr.st.peers.Stripe.Happened(body)
}

// happenHeld makes an event happen at Stripe now; Stripe delivers it only
// once release is closed (nil: at once), as it does an event it is slow
// to send: order is not guaranteed.
func (tr *traffic) happenHeld(c *customerModel, typ string, o stripefixture.Options, release <-chan struct{}) *event {
	o.Customer = c.ID
	o.ID = stripefixture.NewID("evt")
	o.Created = time.Now()
	body, err := stripefixture.Event(typ, o)
	if err != nil {
		tr.errorf("build %s for %s: %v", typ, c.ID, err)
		return nil
	}
	ev, err := stripeevent.Parse(body)
	if err != nil {
		tr.errorf("the fixture's %s does not parse: %v", typ, err)
		return nil
	}
	tr.st.peers.Stripe.Observe(ev)
	tr.st.peers.Stripe.Happened(body)
	e := &event{ID: ev.ID, Type: typ, Customer: c.ID, Body: body, Created: o.Created}
	tr.snd.send(e, release)
	return e
}

// ---- the sender: Stripe's deliveries

type event struct {
	ID, Type, Customer string
	Body               []byte
	Created            time.Time

	mu       sync.Mutex
	attempts []attempt
}

type attempt struct {
	At     time.Time
	Hook   string
	Status int // 0: no answer
}

func (e *event) answered200() bool { return !e.firstOK().IsZero() }

// firstOK is when a delivery of e was first answered 200; zero if never.
func (e *event) firstOK() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	var first time.Time
	for _, a := range e.attempts {
		if a.Status == http.StatusOK && (first.IsZero() || a.At.Before(first)) {
			first = a.At
		}
	}
	return first
}

// sender delivers every event to one of the two webhooks, signed as
// Stripe signs, after a short random delay (so that close events arrive
// out of order), sometimes twice (Stripe's duplicates), and again with
// back-off until one delivery is answered 200.
type sender struct {
	st         *stack
	r          *lockedRand
	hc         *http.Client
	wg         sync.WaitGroup
	maxBackoff time.Duration
	stop       chan struct{} // closed when the drain gives up
	stopOnce   sync.Once

	mu         sync.Mutex
	events     []*event
	duplicates int
}

func newSender(st *stack, r *lockedRand) *sender {
	return &sender{st: st, r: r, maxBackoff: 10 * time.Second, stop: make(chan struct{}),
		hc: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}}
}

// send delivers e once release is closed (nil: now).
func (s *sender) send(e *event, release <-chan struct{}) {
	s.mu.Lock()
	s.events = append(s.events, e)
	dup := s.r.chance(0.15)
	if dup {
		s.duplicates++
	}
	s.mu.Unlock()
	s.wg.Add(1)
	go s.deliver(e, release, s.r.between(0, 2500*time.Millisecond))
	if dup {
		s.wg.Add(1)
		go s.deliver(e, release, s.r.between(500*time.Millisecond, 15*time.Second))
	}
}

// deliver posts e after release and delay, and again with back-off (1s
// doubling to maxBackoff, Stripe's hours shortened to seconds) until
// answered 200.
func (s *sender) deliver(e *event, release <-chan struct{}, delay time.Duration) {
	defer s.wg.Done()
	if release != nil {
		select {
		case <-release:
		case <-s.stop:
			return
		}
	}
	backoff := time.Second
	for {
		select {
		case <-time.After(delay):
		case <-s.stop:
			return
		}
		hook := webhooks[s.r.intN(len(webhooks))]
		status := s.post(s.st.hooks[hook], e)
		e.mu.Lock()
		e.attempts = append(e.attempts, attempt{At: time.Now(), Hook: hook, Status: status})
		e.mu.Unlock()
		if status == http.StatusOK {
			return
		}
		delay = s.r.between(backoff/2, backoff)
		backoff = min(2*backoff, s.maxBackoff)
	}
}

func (s *sender) post(base string, e *event) int {
	req, err := stripefixture.Request(base+"/webhooks/stripe", e.Body, webhookSecret, time.Now())
	if err != nil {
		return 0
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// drain waits until every delivery is answered 200, or within passes;
// it reports whether all were.
func (s *sender) drain(within time.Duration) bool {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(within):
		s.stopOnce.Do(func() { close(s.stop) })
		<-done
		return false
	}
}

func (s *sender) all() []*event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// deliveryCounts are the summary's figures of the sender.
func (s *sender) deliveryCounts() (events, deliveries, ok, refused, unanswered, dups int) {
	for _, e := range s.all() {
		events++
		e.mu.Lock()
		for _, a := range e.attempts {
			deliveries++
			switch {
			case a.Status == http.StatusOK:
				ok++
			case a.Status == 0:
				unanswered++
			default:
				refused++
			}
		}
		e.mu.Unlock()
	}
	s.mu.Lock()
	dups = s.duplicates
	s.mu.Unlock()
	return
}

func (e *event) String() string { return fmt.Sprintf("%s %s (%s)", e.ID, e.Type, e.Customer) }
