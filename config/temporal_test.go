package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"dunning/config"
	"dunning/internal/testenv"
)

// A Temporal CLI profile of the machine running the tests does not leak
// into them.
func TestMain(m *testing.M) { os.Exit(testenv.RunWithoutUserConfig(m)) }

// pki is a CA and a client certificate signed by it, as PEM files.
type pki struct {
	dir                     string
	caPath, certPath        string
	keyPath, otherKeyPath   string
	expiredCert, expiredKey string
	certPEM, keyPEM         []byte
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	p := pki{dir: dir}
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p.caPath = write(t, dir, "ca.pem", "CERTIFICATE", caDER)

	client := func(name string, notAfter time.Time) (string, string, []byte, []byte) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return write(t, dir, name+".pem", "CERTIFICATE", der), write(t, dir, name+".key", "EC PRIVATE KEY", keyDER),
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	}
	p.certPath, p.keyPath, p.certPEM, p.keyPEM = client("dunning", time.Now().Add(time.Hour))
	_, p.otherKeyPath, _, _ = client("other", time.Now().Add(time.Hour))
	p.expiredCert, p.expiredKey, _, _ = client("expired", time.Now().Add(-time.Hour))
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func write(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func options(t *testing.T, vars map[string]string) (config.Config, client.Options) {
	t.Helper()
	c, err := config.Load(env(vars))
	if err != nil {
		t.Fatalf("Load(%v): %v", vars, err)
	}
	opts, err := c.TemporalClientOptions()
	if err != nil {
		t.Fatalf("TemporalClientOptions: %v", err)
	}
	return c, opts
}

func TestTemporalPlainByDefault(t *testing.T) {
	t.Parallel()
	c, opts := options(t, nil)
	if opts.HostPort != "127.0.0.1:7233" || opts.Namespace != "default" {
		t.Errorf("default connection = %s namespace %s, want 127.0.0.1:7233 namespace default", opts.HostPort, opts.Namespace)
	}
	if opts.ConnectionOptions.TLS != nil || opts.Credentials != nil {
		t.Errorf("default connection has TLS %v, credentials %v; want plaintext without credentials", opts.ConnectionOptions.TLS, opts.Credentials)
	}
	if got := c.TemporalSecurity(); got != "plaintext" {
		t.Errorf("TemporalSecurity = %q, want plaintext", got)
	}
}

func TestTemporalTLSOn(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"true", "1", "TRUE"} {
		c, opts := options(t, map[string]string{"TEMPORAL_TLS": v, "TEMPORAL_ADDRESS": "temporal.example.com:7233"})
		if opts.ConnectionOptions.TLS == nil || len(opts.ConnectionOptions.TLS.Certificates) != 0 {
			t.Errorf("TEMPORAL_TLS=%s: TLS %+v, want TLS with the system's roots and no client certificate", v, opts.ConnectionOptions.TLS)
		}
		if got := c.TemporalSecurity(); got != "tls" {
			t.Errorf("TEMPORAL_TLS=%s: TemporalSecurity = %q, want tls", v, got)
		}
	}
	c, opts := options(t, map[string]string{"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION": "true"})
	if opts.ConnectionOptions.TLS == nil || !opts.ConnectionOptions.TLS.InsecureSkipVerify {
		t.Errorf("TEMPORAL_TLS_DISABLE_HOST_VERIFICATION=true: TLS %+v, want TLS without host verification", opts.ConnectionOptions.TLS)
	}
	if got := c.TemporalSecurity(); got != "tls, server name not verified" {
		t.Errorf("without host verification: TemporalSecurity = %q, want it said", got)
	}
	for _, v := range []string{"false", "0"} {
		_, opts := options(t, map[string]string{"TEMPORAL_TLS": v})
		if opts.ConnectionOptions.TLS != nil {
			t.Errorf("TEMPORAL_TLS=%s: TLS on", v)
		}
	}
}

func TestTemporalAPIKey(t *testing.T) {
	t.Parallel()
	c, opts := options(t, map[string]string{
		"TEMPORAL_ADDRESS":   "us-east-1.aws.api.temporal.io:7233",
		"TEMPORAL_NAMESPACE": "billing.a1b2c",
		"TEMPORAL_API_KEY":   "key-secret",
	})
	if opts.Credentials == nil {
		t.Error("TEMPORAL_API_KEY set: no credentials")
	}
	if opts.ConnectionOptions.TLS == nil {
		t.Error("TEMPORAL_API_KEY set: TLS off; an API key goes over TLS")
	}
	if opts.HostPort != "us-east-1.aws.api.temporal.io:7233" || opts.Namespace != "billing.a1b2c" {
		t.Errorf("connection = %s namespace %s", opts.HostPort, opts.Namespace)
	}
	if got := c.TemporalSecurity(); got != "api key over tls" {
		t.Errorf("TemporalSecurity = %q, want api key over tls", got)
	}
	if s := fmt.Sprint(c.TemporalSecurity(), c.TemporalAddress, c.TemporalNamespace); strings.Contains(s, "key-secret") {
		t.Errorf("what is logged carries the key: %s", s)
	}
}

func TestTemporalMTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	c, opts := options(t, map[string]string{
		"TEMPORAL_ADDRESS":                 "billing.a1b2c.tmprl.cloud:7233",
		"TEMPORAL_NAMESPACE":               "billing.a1b2c",
		"TEMPORAL_TLS_CLIENT_CERT_PATH":    p.certPath,
		"TEMPORAL_TLS_CLIENT_KEY_PATH":     p.keyPath,
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH": p.caPath,
		"TEMPORAL_TLS_SERVER_NAME":         "frontend.internal",
	})
	tc := opts.ConnectionOptions.TLS
	if tc == nil {
		t.Fatal("client certificate set: TLS off")
	}
	if len(tc.Certificates) != 1 {
		t.Errorf("TLS has %d client certificates, want 1", len(tc.Certificates))
	}
	if tc.RootCAs == nil {
		t.Error("TEMPORAL_TLS_SERVER_CA_CERT_PATH set: the server is checked against the system's roots")
	}
	if tc.ServerName != "frontend.internal" {
		t.Errorf("ServerName = %q, want frontend.internal", tc.ServerName)
	}
	if tc.InsecureSkipVerify {
		t.Error("host verification off without TEMPORAL_TLS_DISABLE_HOST_VERIFICATION")
	}
	if got := c.TemporalSecurity(); got != "mtls" {
		t.Errorf("TemporalSecurity = %q, want mtls", got)
	}

	// The same, as PEM in the variables.
	_, opts = options(t, map[string]string{
		"TEMPORAL_TLS_CLIENT_CERT_DATA": string(p.certPEM),
		"TEMPORAL_TLS_CLIENT_KEY_DATA":  string(p.keyPEM),
	})
	if tc := opts.ConnectionOptions.TLS; tc == nil || len(tc.Certificates) != 1 {
		t.Errorf("client certificate as data: TLS %+v, want one client certificate", tc)
	}
}

func TestTemporalProfileFile(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	file := filepath.Join(t.TempDir(), "temporal.toml")
	toml := fmt.Sprintf(`
[profile.default]
address = "localhost:7233"

[profile.prod]
address = "billing.a1b2c.tmprl.cloud:7233"
namespace = "billing.a1b2c"
[profile.prod.tls]
client_cert_path = %q
client_key_path = %q

[profile.cloud]
address = "us-east-1.aws.api.temporal.io:7233"
namespace = "billing.a1b2c"
api_key = "from-file"

[profile.broken]
[profile.broken.tls]
client_key_path = %q
`, p.certPath, p.keyPath, p.keyPath)
	if err := os.WriteFile(file, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}

	_, opts := options(t, map[string]string{"TEMPORAL_CONFIG_FILE": file})
	if opts.HostPort != "localhost:7233" || opts.Namespace != "default" || opts.ConnectionOptions.TLS != nil {
		t.Errorf("default profile: %s namespace %s TLS %v, want localhost:7233, namespace default (dunning's), plaintext",
			opts.HostPort, opts.Namespace, opts.ConnectionOptions.TLS)
	}

	c, opts := options(t, map[string]string{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "prod"})
	if opts.HostPort != "billing.a1b2c.tmprl.cloud:7233" || c.TemporalNamespace != "billing.a1b2c" {
		t.Errorf("profile prod: %s namespace %s", opts.HostPort, c.TemporalNamespace)
	}
	if tc := opts.ConnectionOptions.TLS; tc == nil || len(tc.Certificates) != 1 {
		t.Errorf("profile prod: TLS %+v, want its client certificate", tc)
	}

	// Variables win over the profile.
	c, opts = options(t, map[string]string{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "cloud", "TEMPORAL_NAMESPACE": "other.a1b2c"})
	if c.TemporalNamespace != "other.a1b2c" || opts.Namespace != "other.a1b2c" || opts.Credentials == nil {
		t.Errorf("profile cloud under TEMPORAL_NAMESPACE: namespace %s/%s credentials %v", c.TemporalNamespace, opts.Namespace, opts.Credentials)
	}

	// dunning dev ignores the file.
	c, err := config.LoadLocal(env(map[string]string{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "broken"}))
	if err != nil || c.TemporalAddress != "127.0.0.1:7233" || c.Temporal.TLS != nil {
		t.Errorf("LoadLocal with a profile: %s, TLS %v, %v; want the default, plaintext", c.TemporalAddress, c.Temporal.TLS, err)
	}

	// A profile's mistakes name the file and the key.
	_, err = config.Load(env(map[string]string{"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "broken"}))
	if err == nil || !strings.Contains(err.Error(), "TEMPORAL_CONFIG_FILE: tls.client_key_path of profile \"broken\"") {
		t.Errorf("profile with a key and no certificate: %v, want an error naming the profile's tls.client_key_path", err)
	}
}

func TestTemporalBadSettings(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	missing := filepath.Join(p.dir, "missing.pem")
	notPEM := filepath.Join(p.dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badTOML := filepath.Join(p.dir, "bad.toml")
	if err := os.WriteFile(badTOML, []byte("[profile.default\naddress = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  map[string]string
		want string // the variable named first
		text string // and what the message says
	}{
		{"key without certificate", map[string]string{"TEMPORAL_TLS_CLIENT_KEY_PATH": p.keyPath},
			"TEMPORAL_TLS_CLIENT_KEY_PATH", "no client certificate"},
		{"certificate without key", map[string]string{"TEMPORAL_TLS_CLIENT_CERT_PATH": p.certPath},
			"TEMPORAL_TLS_CLIENT_CERT_PATH", "no client key"},
		{"unreadable certificate", map[string]string{"TEMPORAL_TLS_CLIENT_CERT_PATH": missing, "TEMPORAL_TLS_CLIENT_KEY_PATH": p.keyPath},
			"TEMPORAL_TLS_CLIENT_CERT_PATH", "no such file"},
		{"unreadable key", map[string]string{"TEMPORAL_TLS_CLIENT_CERT_PATH": p.certPath, "TEMPORAL_TLS_CLIENT_KEY_PATH": missing},
			"TEMPORAL_TLS_CLIENT_KEY_PATH", "no such file"},
		{"key of another certificate", map[string]string{"TEMPORAL_TLS_CLIENT_CERT_PATH": p.certPath, "TEMPORAL_TLS_CLIENT_KEY_PATH": p.otherKeyPath},
			"TEMPORAL_TLS_CLIENT_CERT_PATH", "do not make a certificate and its key"},
		{"expired certificate", map[string]string{"TEMPORAL_TLS_CLIENT_CERT_PATH": p.expiredCert, "TEMPORAL_TLS_CLIENT_KEY_PATH": p.expiredKey},
			"TEMPORAL_TLS_CLIENT_CERT_PATH", "expired"},
		{"certificate as path and data", map[string]string{"TEMPORAL_TLS_CLIENT_CERT_PATH": p.certPath, "TEMPORAL_TLS_CLIENT_CERT_DATA": string(p.certPEM),
			"TEMPORAL_TLS_CLIENT_KEY_PATH": p.keyPath}, "TEMPORAL_TLS_CLIENT_CERT_PATH", "_DATA"},
		{"unreadable CA", map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": missing},
			"TEMPORAL_TLS_SERVER_CA_CERT_PATH", "no such file"},
		{"CA not PEM", map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": notPEM},
			"TEMPORAL_TLS_SERVER_CA_CERT_PATH", "no PEM certificate"},
		{"CA data not PEM", map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT_DATA": "garbage"},
			"TEMPORAL_TLS_SERVER_CA_CERT_DATA", "no PEM certificate"},
		{"TLS neither true nor false", map[string]string{"TEMPORAL_TLS": "yes"}, "TEMPORAL_TLS", "not true or false"},
		{"host verification neither true nor false", map[string]string{"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION": "off"},
			"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION", "not true or false"},
		{"API key without TLS", map[string]string{"TEMPORAL_API_KEY": "key-secret", "TEMPORAL_TLS": "false"},
			"TEMPORAL_API_KEY", "plaintext"},
		{"client certificate without TLS", map[string]string{"TEMPORAL_TLS": "false",
			"TEMPORAL_TLS_CLIENT_CERT_PATH": p.certPath, "TEMPORAL_TLS_CLIENT_KEY_PATH": p.keyPath},
			"TEMPORAL_TLS_CLIENT_CERT_PATH", "TLS is turned off"},
		{"config file missing", map[string]string{"TEMPORAL_CONFIG_FILE": missing}, "TEMPORAL_CONFIG_FILE", "no such file"},
		{"config file not TOML", map[string]string{"TEMPORAL_CONFIG_FILE": badTOML}, "TEMPORAL_CONFIG_FILE", "bad.toml"},
		{"profile not in the file", map[string]string{"TEMPORAL_PROFILE": "prod"}, "TEMPORAL_PROFILE", "not a profile"},
		{"address without port", map[string]string{"TEMPORAL_ADDRESS": "billing.a1b2c.tmprl.cloud"}, "TEMPORAL_ADDRESS", "host:port"},
		{"address with port 0", map[string]string{"TEMPORAL_ADDRESS": "temporal:0"}, "TEMPORAL_ADDRESS", "no valid port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(env(tc.env))
			if err == nil {
				t.Fatalf("Load(%s) = nil error, want one naming %s", tc.name, tc.want)
			}
			first, _, _ := strings.Cut(err.Error(), "\n")
			if name, _, _ := strings.Cut(first, ":"); name != tc.want || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("Load error:\n%v\nwant it to name %s first and say %q", err, tc.want, tc.text)
			}
			for _, secret := range []string{"key-secret", "BEGIN"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error repeats a secret (%s):\n%v", secret, err)
				}
			}
		})
	}
}
