package portallink_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"dunning/internal/portallink"
)

const (
	secret    = "portal-link-test-secret-0123456789abcdef"
	oldSecret = "portal-link-old-secret-fedcba9876543210"
	customer  = "cus_PortalLink0001"
)

var now = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

func signer(t *testing.T, secrets ...string) *portallink.Signer {
	t.Helper()
	s, err := portallink.NewSigner(secrets)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

func sign(t *testing.T, s *portallink.Signer, customer string, expires time.Time) string {
	t.Helper()
	tok, err := s.Sign(customer, expires)
	if err != nil {
		t.Fatalf("Sign(%q): %v", customer, err)
	}
	return tok
}

// raw decodes a token into its bytes, to tamper with.
func raw(t *testing.T, token string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		t.Fatalf("token %q is not unpadded base64url: %v", token, err)
	}
	return b
}

func encode(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestRoundTrip(t *testing.T) {
	s := signer(t, secret)
	expires := now.Add(720 * time.Hour)
	tok := sign(t, s, customer, expires)
	if strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Errorf("token %q is not URL-safe base64", tok)
	}
	// Compact: version, expiry, the ID and the MAC, no more.
	if want := len(encode(make([]byte, 1+8+len(customer)+32))); len(tok) != want {
		t.Errorf("token is %d characters, want %d", len(tok), want)
	}
	if strings.Contains(tok, customer) || strings.Contains(tok, secret) {
		t.Errorf("token %q carries the customer or the secret in clear", tok)
	}
	link, err := s.Verify(tok, now)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if link.Customer != customer || !link.Expires.Equal(expires) {
		t.Errorf("Verify = %+v, want %s until %s", link, customer, expires)
	}
	// Valid up to the last second before its expiry.
	if _, err := s.Verify(tok, expires.Add(-time.Nanosecond)); err != nil {
		t.Errorf("Verify a moment before expiry: %v", err)
	}
	// The same inputs make the same token: a notice sent again carries the
	// same link.
	if again := sign(t, s, customer, expires); again != tok {
		t.Errorf("signing again gave %q, want %q", again, tok)
	}
}

func TestExpired(t *testing.T) {
	s := signer(t, secret)
	expires := now.Add(time.Hour)
	tok := sign(t, s, customer, expires)
	for _, at := range []time.Time{expires, expires.Add(time.Second), expires.Add(1000 * time.Hour)} {
		link, err := s.Verify(tok, at)
		if !errors.Is(err, portallink.ErrExpired) {
			t.Errorf("Verify at %s = %v, want ErrExpired", at, err)
		}
		// The customer is known, for the log.
		if link.Customer != customer {
			t.Errorf("expired link names %q, want %q", link.Customer, customer)
		}
	}
	// An expired token with a wrong MAC is a forgery, not an expiry.
	b := raw(t, tok)
	b[len(b)-1] ^= 1
	if _, err := s.Verify(encode(b), expires.Add(time.Hour)); !errors.Is(err, portallink.ErrForged) {
		t.Errorf("expired and tampered: %v, want ErrForged", err)
	}
}

func TestTampered(t *testing.T) {
	s := signer(t, secret)
	tok := sign(t, s, customer, now.Add(time.Hour))
	b := raw(t, tok)
	macAt := len(b) - 32
	for _, tc := range []struct {
		name   string
		change func([]byte) []byte
		want   error
	}{
		{"expiry extended", func(b []byte) []byte { b[5]++; return b }, portallink.ErrForged},
		{"expiry far out", func(b []byte) []byte { b[1] = 0x7f; return b }, portallink.ErrForged},
		{"customer changed", func(b []byte) []byte { b[9+len("cus_")] = 'Q'; return b }, portallink.ErrForged},
		{"customer cut short", func(b []byte) []byte { return append(b[:macAt-1:macAt-1], b[macAt:]...) }, portallink.ErrForged},
		{"MAC flipped", func(b []byte) []byte { b[macAt+7] ^= 0x40; return b }, portallink.ErrForged},
		{"MAC cut", func(b []byte) []byte { return b[:len(b)-1] }, portallink.ErrForged},
		{"MAC zeroed", func(b []byte) []byte { clear(b[macAt:]); return b }, portallink.ErrForged},
		{"version 0", func(b []byte) []byte { b[0] = 0; return b }, portallink.ErrMalformed},
		{"version 2", func(b []byte) []byte { b[0] = 2; return b }, portallink.ErrMalformed},
		{"too short", func(b []byte) []byte { return b[:1+8+4+32] }, portallink.ErrMalformed},
		{"empty", func([]byte) []byte { return nil }, portallink.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed := tc.change(append([]byte(nil), b...))
			link, err := s.Verify(encode(changed), now)
			if !errors.Is(err, tc.want) {
				t.Errorf("Verify = %+v, %v; want %v", link, err, tc.want)
			}
			if link != (portallink.Link{}) {
				t.Errorf("a refused token gave link %+v", link)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	s := signer(t, secret)
	tok := sign(t, s, customer, now.Add(time.Hour))
	for name, bad := range map[string]string{
		"empty":              "",
		"padded":             tok + "=",
		"standard base64":    strings.NewReplacer("-", "+", "_", "/").Replace(tok) + "+/",
		"with a newline":     tok[:10] + "\n" + tok[10:],
		"with a space":       tok[:10] + " " + tok[10:],
		"percent-encoded":    tok[:10] + "%41" + tok[10:],
		"a path":             tok + "/x",
		"one character more": tok + "A",
		"not base64":         "not a token!",
		"huge":               strings.Repeat("A", 100_000),
		"unicode":            tok[:10] + "é" + tok[10:],
		"version as text":    "v1." + tok,
	} {
		if _, err := s.Verify(bad, now); !errors.Is(err, portallink.ErrMalformed) && !errors.Is(err, portallink.ErrForged) {
			t.Errorf("%s: Verify = %v, want ErrMalformed or ErrForged", name, err)
		}
	}
	if _, err := s.Verify("###", now); !errors.Is(err, portallink.ErrMalformed) {
		t.Errorf("Verify(###) = %v, want ErrMalformed", err)
	}
}

func TestWrongSecret(t *testing.T) {
	tok := sign(t, signer(t, secret), customer, now.Add(time.Hour))
	if _, err := signer(t, "another-secret-of-sufficient-length-000").Verify(tok, now); !errors.Is(err, portallink.ErrForged) {
		t.Errorf("Verify with another secret = %v, want ErrForged", err)
	}
}

func TestRotation(t *testing.T) {
	before := signer(t, oldSecret)
	during := signer(t, secret, oldSecret)
	after := signer(t, secret)
	old := sign(t, before, customer, now.Add(time.Hour))
	fresh := sign(t, during, customer, now.Add(time.Hour))

	// During the rotation links of either secret open; new ones are signed
	// with the first.
	for name, tok := range map[string]string{"old": old, "new": fresh} {
		if _, err := during.Verify(tok, now); err != nil {
			t.Errorf("%s link during the rotation: %v", name, err)
		}
	}
	if _, err := after.Verify(fresh, now); err != nil {
		t.Errorf("a link signed during the rotation, after it: %v", err)
	}
	if _, err := after.Verify(old, now); !errors.Is(err, portallink.ErrForged) {
		t.Errorf("an old link once the old secret is gone: %v, want ErrForged", err)
	}
}

// A token opens the portal of its own customer only: the customer is in
// the MAC, so splicing one customer's MAC onto another's ID fails.
func TestCustomerBound(t *testing.T) {
	s := signer(t, secret)
	expires := now.Add(time.Hour)
	a := raw(t, sign(t, s, "cus_AliceAAAAAAAAAA", expires))
	b := raw(t, sign(t, s, "cus_BobBBBBBBBBBBBB", expires))
	spliced := append(append([]byte(nil), b[:len(b)-32]...), a[len(a)-32:]...)
	if link, err := s.Verify(encode(spliced), now); !errors.Is(err, portallink.ErrForged) {
		t.Errorf("Bob's ID with Alice's MAC = %+v, %v; want ErrForged", link, err)
	}
	for name, want := range map[string][]byte{"cus_AliceAAAAAAAAAA": a, "cus_BobBBBBBBBBBBBB": b} {
		link, err := s.Verify(encode(want), now)
		if err != nil || link.Customer != name {
			t.Errorf("Verify = %+v, %v; want %s", link, err, name)
		}
	}
}

func TestSignRefusesWhatIsNotACustomer(t *testing.T) {
	s := signer(t, secret)
	for _, id := range []string{"", "cus_", "acct-42", "pi_3Oabc", "cus_abc/def", "cus_abc def", "cus_" + strings.Repeat("a", 252), "CUS_abc"} {
		if tok, err := s.Sign(id, now.Add(time.Hour)); err == nil {
			t.Errorf("Sign(%q) = %q, want an error", id, tok)
		}
	}
	if _, err := s.Sign("cus_"+strings.Repeat("a", 251), now.Add(time.Hour)); err != nil {
		t.Errorf("Sign of a 255-byte ID: %v", err)
	}
}

func TestNewSignerRefusesWeakSecrets(t *testing.T) {
	for name, secrets := range map[string][]string{
		"none":         nil,
		"empty":        {""},
		"short":        {"too-short"},
		"one of two":   {secret, "tiny-9f3"},
		"31 bytes":     {strings.Repeat("x", portallink.MinSecretLen-1)},
		"empty second": {secret, ""},
	} {
		_, err := portallink.NewSigner(secrets)
		if err == nil {
			t.Errorf("%s: NewSigner accepted %q", name, secrets)
			continue
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q repeats a secret", name, err)
			}
		}
	}
}

func TestLinks(t *testing.T) {
	l, err := portallink.NewLinks("https://billing.example.com/dunning/", []string{secret}, 720*time.Hour)
	if err != nil {
		t.Fatalf("NewLinks: %v", err)
	}
	decided := time.Date(2026, 3, 14, 12, 0, 0, 500, time.UTC)
	link, expires, err := l.URL(customer, decided)
	if err != nil {
		t.Fatalf("URL: %v", err)
	}
	token, ok := strings.CutPrefix(link, "https://billing.example.com/dunning/portal/")
	if !ok {
		t.Fatalf("link %q is not under PUBLIC_URL/portal/", link)
	}
	if want := time.Date(2026, 4, 13, 12, 0, 0, 0, time.UTC); !expires.Equal(want) {
		t.Errorf("expires %s, want %s (720h after the notice was decided)", expires, want)
	}
	got, err := signer(t, secret).Verify(token, decided.Add(719*time.Hour))
	if err != nil || got.Customer != customer || !got.Expires.Equal(expires) {
		t.Errorf("the link's token = %+v, %v", got, err)
	}
	// The same notice, sent again later, carries the same link.
	if again, _, _ := l.URL(customer, decided); again != link {
		t.Errorf("URL again = %q, want %q", again, link)
	}

	for name, tc := range map[string]struct {
		base string
		ttl  time.Duration
	}{
		"relative":       {"/portal", time.Hour},
		"no scheme":      {"billing.example.com", time.Hour},
		"ftp":            {"ftp://billing.example.com", time.Hour},
		"query":          {"https://billing.example.com/?a=b", time.Hour},
		"fragment":       {"https://billing.example.com/#x", time.Hour},
		"zero lifetime":  {"https://billing.example.com", 0},
		"too long lived": {"https://billing.example.com", portallink.MaxTTL + time.Hour},
	} {
		if _, err := portallink.NewLinks(tc.base, []string{secret}, tc.ttl); err == nil {
			t.Errorf("%s: NewLinks(%q, %s) accepted", name, tc.base, tc.ttl)
		}
	}
}

func FuzzVerify(f *testing.F) {
	s, _ := portallink.NewSigner([]string{secret})
	tok, _ := s.Sign(customer, now.Add(time.Hour))
	f.Add(tok)
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, token string) {
		link, err := s.Verify(token, now)
		if err == nil && (link.Customer != customer || token != tok) {
			// Only the one token signed verifies: a second spelling of it
			// would make the token malleable.
			t.Fatalf("Verify(%q) = %+v, want only the signed token to verify", token, link)
		}
	})
}

// Again makes the link Make made, byte for byte, whatever the
// configuration became since, as long as the secret that signed it is
// still configured; what Make returns beside the link holds neither the
// token nor a secret.
func TestAgain(t *testing.T) {
	const newSecret = "0123456789abcdef0123456789abcdef-new"
	decided := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	first, err := portallink.NewLinks("https://billing.example.com", []string{oldSecret}, 720*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	link, made, err := first.Make(customer, decided)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(made)
	token := link[strings.LastIndex(link, "/")+1:]
	if strings.Contains(string(raw), token) || strings.Contains(string(raw), oldSecret) {
		t.Errorf("Made %s holds the token or the secret", raw)
	}
	var back portallink.Made
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	for name, later := range map[string]struct {
		base    string
		secrets []string
		ttl     time.Duration
	}{
		"unchanged":        {"https://billing.example.com", []string{oldSecret}, 720 * time.Hour},
		"rotated":          {"https://billing.example.com", []string{newSecret, oldSecret}, 720 * time.Hour},
		"another base":     {"https://pay.example.com/x", []string{oldSecret}, 720 * time.Hour},
		"another lifetime": {"https://billing.example.com", []string{oldSecret}, time.Hour},
	} {
		l, err := portallink.NewLinks(later.base, later.secrets, later.ttl)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := l.Again(customer, back); err != nil || got != link {
			t.Errorf("%s: Again = %q, %v; want %q", name, got, err, link)
		}
	}
	gone, err := portallink.NewLinks("https://billing.example.com", []string{newSecret}, 720*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := gone.Again(customer, back); !errors.Is(err, portallink.ErrKeyGone) {
		t.Errorf("Again without the secret that signed = %q, %v; want ErrKeyGone", got, err)
	}
}
