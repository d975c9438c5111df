package devstripe_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// answer is what the dev Stripe said to one request.
type answer struct {
	status   int
	replayed bool
	raw      string
	obj      map[string]any
}

// errorOf returns the error's type, code and message.
func (a answer) errorOf() (typ, code, msg string) {
	e, _ := a.obj["error"].(map[string]any)
	typ, _ = e["type"].(string)
	code, _ = e["code"].(string)
	msg, _ = e["message"].(string)
	return typ, code, msg
}

// postWithKey POSTs a form, written out as given so that tests choose the
// order of its parameters, under an Idempotency-Key.
func (st *stack) postWithKey(t *testing.T, path, form, key string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, st.url+path, strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer sk_test_123")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var raw strings.Builder
	var obj map[string]any
	if err := json.NewDecoder(io.TeeReader(resp.Body, &raw)).Decode(&obj); err != nil {
		t.Fatalf("POST %s: answer is not a JSON object: %v", path, err)
	}
	return answer{status: resp.StatusCode, replayed: resp.Header.Get("Idempotent-Replayed") == "true", raw: raw.String(), obj: obj}
}

func (st *stack) intentStatus(t *testing.T, intent string) any {
	t.Helper()
	_, pi := st.call(t, http.MethodGet, "/v1/payment_intents/"+intent, nil)
	return pi["status"]
}

// A key sent again with other parameters, or to another endpoint, is
// refused with 400 idempotency_error and charges nothing; it never gets
// the first answer, which would hide a request that broke "one key, one
// request".
func TestKeyWithOtherParametersIsRefused(t *testing.T) {
	st := newStack(t)
	st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))
	st.dev.Observe(attachedEvent("cus_1", "pm_good"))
	confirm := "/v1/payment_intents/pi_1/confirm"

	if a := st.postWithKey(t, confirm, "payment_method=pm_bad&off_session=true", "k1"); a.status != http.StatusPaymentRequired {
		t.Fatalf("first confirm with the failing card: %d %s, want 402", a.status, a.raw)
	}
	for name, tc := range map[string]struct{ path, form string }{
		"another card":        {confirm, "payment_method=pm_good&off_session=true"},
		"a parameter less":    {confirm, "payment_method=pm_bad"},
		"a parameter more":    {confirm, "payment_method=pm_bad&off_session=true&expand[0]=latest_charge"},
		"another endpoint":    {"/v1/payment_intents/pi_1", "metadata[note]=x"},
		"another intent path": {"/v1/payment_intents/pi_1/cancel", "payment_method=pm_bad&off_session=true"},
	} {
		t.Run(name, func(t *testing.T) {
			a := st.postWithKey(t, tc.path, tc.form, "k1")
			typ, code, msg := a.errorOf()
			if a.status != http.StatusBadRequest || typ != "idempotency_error" || code != "" || a.replayed ||
				!strings.Contains(msg, "Keys for idempotent requests can only be used") || !strings.Contains(msg, "'k1'") {
				t.Errorf("%d replayed=%v %s; want 400 idempotency_error naming the key", a.status, a.replayed, a.raw)
			}
		})
	}
	if s := st.intentStatus(t, "pi_1"); s != "requires_payment_method" {
		t.Errorf("intent status %v after the refused requests, want requires_payment_method (nothing charged)", s)
	}
	if up := st.upstreamSaw(); len(up) != 0 {
		t.Errorf("upstream saw %v, want the refused requests answered here", up)
	}
}

// The same request under the same key, its parameters in any order, gets
// the first answer again, a decline included, for 24 hours, even when the
// card would now be charged; after that the key makes a new request.
func TestKeyReplaysTheFirstAnswerFor24Hours(t *testing.T) {
	st := newStack(t)
	now := time.Date(2026, 5, 5, 9, 0, 0, 0, time.UTC)
	st.dev.SetNow(func() time.Time { return now })
	st.dev.Observe(failedEvent("cus_1", "pi_1", "pm_bad"))
	confirm := "/v1/payment_intents/pi_1/confirm"

	first := st.postWithKey(t, confirm, "payment_method=pm_bad&off_session=true", "k1")
	if first.status != http.StatusPaymentRequired || first.replayed {
		t.Fatalf("first confirm: %d replayed=%v %s, want a 402 of its own", first.status, first.replayed, first.raw)
	}
	if !st.dev.Approve("pm_bad") {
		t.Fatal("Approve: card not known")
	}
	now = now.Add(24*time.Hour - time.Second)
	again := st.postWithKey(t, confirm, "off_session=true&payment_method=pm_bad", "k1")
	if again.status != first.status || again.raw != first.raw || !again.replayed {
		t.Errorf("same request, parameters reordered, a day less a second later: %d replayed=%v\n%s\nwant the first answer replayed\n%s",
			again.status, again.replayed, again.raw, first.raw)
	}
	if s := st.intentStatus(t, "pi_1"); s != "requires_payment_method" {
		t.Errorf("intent status %v after the replay, want requires_payment_method (the card approved since was not charged)", s)
	}

	now = now.Add(time.Second)
	if late := st.postWithKey(t, confirm, "payment_method=pm_bad&off_session=true", "k1"); late.status != http.StatusOK || late.replayed || late.obj["status"] != "succeeded" {
		t.Errorf("the key 24 hours on: %d replayed=%v %s, want a new request, charged", late.status, late.replayed, late.raw)
	}
}
