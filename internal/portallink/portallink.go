// Package portallink makes and checks the customer's one-click link to
// update a payment method: PUBLIC_URL/portal/{token}, where the token names
// a Stripe customer and an expiry, signed with PORTAL_LINK_SECRET. The
// webhook opens a Stripe Billing Portal session for that customer when the
// link is followed; portal sessions expire within minutes, so only the
// token ever goes into an email.
//
// A token is the unpadded base64url encoding of
//
//	version   1 byte     1
//	expires   8 bytes    Unix seconds, big-endian
//	customer  5–255 bytes the Stripe customer ID, cus_ and letters and digits
//	mac       32 bytes   HMAC-SHA256 over "dunning portal link\x00" and the bytes above
//
// It holds nothing but the customer ID and the expiry, neither secret. The
// MAC covers the version and the customer, so a token opens the portal of
// the one customer it was made for; it is compared in constant time, with
// every configured secret (the first signs), so that the secret can be
// rotated without breaking links already sent. A token may be followed any
// number of times until it expires: each click gets a fresh portal session.
package portallink

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// PathPrefix is where links are served, under PUBLIC_URL.
const PathPrefix = "/portal/"

// Version is the token format made by Sign.
const Version = 1

// MinSecretLen is the shortest secret accepted, in bytes: 32 random bytes
// hex-encoded (`openssl rand -hex 32`) are 64.
const MinSecretLen = 32

// DefaultTTL is how long a link opens the portal; MaxTTL bounds it.
const (
	DefaultTTL = 720 * time.Hour
	MaxTTL     = 2160 * time.Hour
)

const (
	macLen         = sha256.Size
	headerLen      = 1 + 8
	minCustomerLen = len("cus_") + 1
	maxCustomerLen = 255
	// maxTokenLen is the longest token that can decode to a valid one.
	maxTokenLen = (headerLen+maxCustomerLen+macLen)*4/3 + 1
	domain      = "dunning portal link\x00"
)

// Errors of Verify. Only ErrExpired comes with the link it names.
var (
	// ErrMalformed: not a token of a known version.
	ErrMalformed = errors.New("portal link malformed")
	// ErrForged: well formed, but no secret signed it (tampered with, or
	// signed with a secret no longer configured).
	ErrForged = errors.New("portal link signature does not match")
	// ErrExpired: signed, and past its expiry.
	ErrExpired = errors.New("portal link expired")
)

// Link is what a valid token says.
type Link struct {
	Customer string    // the Stripe customer ID
	Expires  time.Time // the first instant it no longer opens the portal
}

// Signer makes tokens with the first of its secrets and accepts tokens
// made with any of them. It is safe for concurrent use.
type Signer struct {
	keys [][]byte
	ids  []string // KeyID of each key
}

// NewSigner returns a Signer for secrets, the first signing. The error
// never repeats a secret.
func NewSigner(secrets []string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, errors.New("portal link: no secret")
	}
	s := &Signer{}
	for i, sec := range secrets {
		if len(sec) < MinSecretLen {
			return nil, fmt.Errorf("portal link: secret %d of %d is shorter than %d bytes", i+1, len(secrets), MinSecretLen)
		}
		s.keys = append(s.keys, []byte(sec))
		s.ids = append(s.ids, keyID([]byte(sec)))
	}
	return s, nil
}

// keyID names a secret without revealing it: the start of its HMAC over
// a fixed message.
func keyID(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("dunning portal link key id"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// Sign returns the token for customer, valid until expires (to the second).
func (s *Signer) Sign(customer string, expires time.Time) (string, error) {
	return s.sign(s.keys[0], customer, expires)
}

func (s *Signer) sign(key []byte, customer string, expires time.Time) (string, error) {
	if !ValidCustomer(customer) {
		return "", fmt.Errorf("portal link: %q is not a Stripe customer ID", customer)
	}
	b := make([]byte, headerLen, headerLen+len(customer)+macLen)
	b[0] = Version
	binary.BigEndian.PutUint64(b[1:], uint64(expires.Unix()))
	b = append(b, customer...)
	b = append(b, mac(key, b)...)
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Verify checks token at now. It returns ErrMalformed, ErrForged, or
// ErrExpired with the link; nothing is trusted before the MAC matches.
func (s *Signer) Verify(token string, now time.Time) (Link, error) {
	if len(token) > maxTokenLen || strings.Trim(token, base64URLAlphabet) != "" {
		return Link{}, ErrMalformed
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(b) < headerLen+minCustomerLen+macLen || b[0] != Version {
		return Link{}, ErrMalformed
	}
	payload, sum := b[:len(b)-macLen], b[len(b)-macLen:]
	ok := false
	for _, k := range s.keys {
		// Every secret is tried, so that the time taken does not say which.
		ok = hmac.Equal(mac(k, payload), sum) || ok
	}
	if !ok {
		return Link{}, ErrForged
	}
	link := Link{
		Customer: string(payload[headerLen:]),
		Expires:  time.Unix(int64(binary.BigEndian.Uint64(payload[1:headerLen])), 0),
	}
	if !ValidCustomer(link.Customer) {
		// Signed, so made by a Signer that checked it: a secret is shared
		// with something else.
		return Link{}, ErrMalformed
	}
	if !now.Before(link.Expires) {
		return link, ErrExpired
	}
	return link, nil
}

func mac(key, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(domain))
	m.Write(payload)
	return m.Sum(nil)
}

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// ValidCustomer reports whether id has the shape of a Stripe customer ID:
// cus_ then letters and digits, at most 255 bytes.
func ValidCustomer(id string) bool {
	rest, ok := strings.CutPrefix(id, "cus_")
	if !ok || rest == "" || len(id) > maxCustomerLen {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Links makes the links that notices carry: PUBLIC_URL/portal/{token}.
type Links struct {
	base   string
	signer *Signer
	ttl    time.Duration
}

// NewLinks returns the links of publicURL (PUBLIC_URL, an absolute http(s)
// URL without query or fragment), signed with secrets, each opening the
// portal for ttl.
func NewLinks(publicURL string, secrets []string, ttl time.Duration) (*Links, error) {
	if ttl <= 0 || ttl > MaxTTL {
		return nil, fmt.Errorf("portal link: lifetime %s is not between 0 and %s", ttl, MaxTTL)
	}
	if err := CheckPublicURL(publicURL); err != nil {
		return nil, fmt.Errorf("portal link: PUBLIC_URL %w", err)
	}
	s, err := NewSigner(secrets)
	if err != nil {
		return nil, err
	}
	return &Links{base: strings.TrimRight(publicURL, "/"), signer: s, ttl: ttl}, nil
}

// URL returns the customer's link for a notice decided at decided, and
// when it expires: decided plus the lifetime. The same notice gets the
// same link on every attempt to send it.
func (l *Links) URL(customer string, decided time.Time) (string, time.Time, error) {
	expires := time.Unix(decided.Add(l.ttl).Unix(), 0)
	token, err := l.signer.Sign(customer, expires)
	if err != nil {
		return "", time.Time{}, err
	}
	return l.base + PathPrefix + token, expires, nil
}

// Made is what a link was made from: enough to make the very same link
// again, on a later attempt to send its notice, and nothing secret (the
// secret that signed is named by an ID derived from it). The link itself
// is not in it: it opens the customer's portal.
type Made struct {
	Base    string    `json:"base"`    // PUBLIC_URL
	Expires time.Time `json:"expires"` // the token's expiry
	Key     string    `json:"key"`     // the ID of the secret that signed
}

// ErrKeyGone: the secret that made a link is no longer configured, so the
// link can neither be made again nor followed.
var ErrKeyGone = errors.New("portal link: the secret that signed it is no longer configured")

// Make is URL, with what the link was made from.
func (l *Links) Make(customer string, decided time.Time) (string, Made, error) {
	link, expires, err := l.URL(customer, decided)
	if err != nil {
		return "", Made{}, err
	}
	return link, Made{Base: l.base, Expires: expires, Key: l.signer.ids[0]}, nil
}

// Again makes the link m describes for customer, byte for byte the one
// Make returned, whatever PUBLIC_URL, the lifetime or the order of the
// secrets are now; ErrKeyGone when the secret that signed it is no longer
// among them.
func (l *Links) Again(customer string, m Made) (string, error) {
	i := slices.Index(l.signer.ids, m.Key)
	if i < 0 {
		return "", ErrKeyGone
	}
	if err := CheckPublicURL(m.Base); err != nil {
		return "", fmt.Errorf("portal link: base %w", err)
	}
	token, err := l.signer.sign(l.signer.keys[i], customer, m.Expires)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(m.Base, "/") + PathPrefix + token, nil
}

// CheckPublicURL says what is wrong with u as PUBLIC_URL, if anything: it
// must be an absolute http or https URL without query or fragment. The
// error does not repeat u.
func CheckPublicURL(u string) error {
	p, err := url.Parse(u)
	switch {
	case err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "":
		return errors.New("is not an absolute http(s) URL")
	case p.RawQuery != "" || p.ForceQuery || p.Fragment != "" || strings.HasSuffix(u, "#"):
		return errors.New("must not have a query or a fragment")
	}
	return nil
}
