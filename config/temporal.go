package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
)

// The connection to Temporal is read the way Temporal's own CLI and SDKs
// read it (go.temporal.io/sdk/contrib/envconfig): a profile of a TOML file
// (TEMPORAL_CONFIG_FILE, else the user's temporalio/temporal.toml;
// TEMPORAL_PROFILE, else "default"), then these variables over it. Where
// neither says, dunning's defaults apply.
const (
	DefaultTemporalAddress   = "127.0.0.1:7233"
	DefaultTemporalNamespace = "default"
)

// TemporalConnectionVars are the variables, beyond TEMPORAL_ADDRESS and
// TEMPORAL_NAMESPACE, that say how to reach Temporal: security (TLS, mTLS,
// API key), the profile file and the gRPC authority.
var TemporalConnectionVars = []string{
	"TEMPORAL_CONFIG_FILE", "TEMPORAL_PROFILE", "TEMPORAL_API_KEY", "TEMPORAL_CLIENT_AUTHORITY",
	"TEMPORAL_TLS", "TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_CERT_DATA",
	"TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_CLIENT_KEY_DATA",
	"TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_TLS_SERVER_CA_CERT_DATA",
	"TEMPORAL_TLS_SERVER_NAME", "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION",
}

// TemporalClientOptions are the SDK client options for the configured
// connection: address, namespace, TLS and client certificate, API key,
// authority. The caller adds its logger, metrics and the like. Load has
// already checked them, so an error here means a file changed since.
func (c Config) TemporalClientOptions() (client.Options, error) {
	opts, err := c.Temporal.ToClientOptions(envconfig.ToClientOptionsRequest{})
	if err != nil {
		return client.Options{}, fmt.Errorf("temporal connection: %w", err)
	}
	return opts, nil
}

// TemporalSecurity says how the connection to Temporal is protected, for
// the startup log: "plaintext", "tls", "mtls", "api key over tls" or
// "mtls and api key", with ", server name not verified" when
// TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is on.
func (c Config) TemporalSecurity() string {
	t := c.Temporal.TLS
	tlsOn := (t != nil && !t.Disabled) || (t == nil && c.Temporal.APIKey != "")
	if !tlsOn {
		return "plaintext"
	}
	mtls := t != nil && (t.ClientCertPath != "" || len(t.ClientCertData) > 0)
	s := "tls"
	switch {
	case mtls && c.Temporal.APIKey != "":
		s = "mtls and api key"
	case mtls:
		s = "mtls"
	case c.Temporal.APIKey != "":
		s = "api key over tls"
	}
	if t != nil && t.DisableHostVerification {
		s += ", server name not verified"
	}
	return s
}

// envLookup gives envconfig the variables through getenv. An empty value
// is unset, as everywhere else in dunning. Only the connection's variables
// are read: not the remote codec's (TEMPORAL_CODEC_*, for the UI and the
// CLI; dunning's payloads are not encoded by a codec server), nor the gRPC
// metadata variables (TEMPORAL_GRPC_META_*, which getenv cannot list; a
// profile's grpc_meta applies).
type envLookup struct{ getenv func(string) string }

func (e envLookup) LookupEnv(name string) (string, bool) {
	if name != "TEMPORAL_ADDRESS" && name != "TEMPORAL_NAMESPACE" && !slices.Contains(TemporalConnectionVars, name) {
		return "", false
	}
	v := strings.TrimSpace(e.getenv(name))
	return v, v != ""
}

func (envLookup) Environ() []string { return nil }

// temporal reads the connection to Temporal into c.Temporal, and its
// address and namespace into c.TemporalAddress and c.TemporalNamespace.
// useFile false skips the profile file (dunning dev, whose server is its
// own).
func (r *reader) temporal(c *Config, useFile bool) {
	env := envLookup{r.getenv}
	var prof envconfig.ClientConfigProfile
	file, profile := r.str("TEMPORAL_CONFIG_FILE", ""), r.str("TEMPORAL_PROFILE", "")
	where := file
	if where == "" {
		where = envconfig.DefaultConfigFilePath()
	}
	if where == "" {
		where = "the Temporal configuration file (none: no user configuration folder)"
	}
	if useFile {
		if file != "" {
			// envconfig takes a missing file for an empty one; a file
			// named on purpose must be there.
			if _, err := os.Stat(file); err != nil {
				r.fail("TEMPORAL_CONFIG_FILE", "%v", err)
				return
			}
		}
		conf, err := envconfig.LoadClientConfig(envconfig.LoadClientConfigOptions{ConfigFilePath: file, EnvLookup: env})
		if err != nil {
			r.fail("TEMPORAL_CONFIG_FILE", "%s: %v", where, err)
			return
		}
		name := profile
		if name == "" {
			name = envconfig.DefaultConfigFileProfile
		}
		if p := conf.Profiles[name]; p != nil {
			prof = *p
			if p.TLS != nil {
				t := *p.TLS
				prof.TLS = &t
			}
		} else if profile != "" {
			r.fail("TEMPORAL_PROFILE", "%q is not a profile of %s", profile, where)
			return
		}
		profile = name
	}
	for _, name := range []string{"TEMPORAL_TLS", "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"} {
		switch v := strings.ToLower(r.str(name, "")); v {
		case "", "true", "false", "1", "0":
		default:
			r.fail(name, "%q is not true or false", v)
		}
	}
	if err := prof.ApplyEnvVars(env); err != nil {
		r.fail("TEMPORAL_ADDRESS", "%v", err)
		return
	}
	// Where each setting came from, for the messages: the variable, or
	// the profile's key in the file.
	src := func(name, key string) string {
		if r.str(name, "") != "" {
			return name + ":"
		}
		return fmt.Sprintf("TEMPORAL_CONFIG_FILE: %s of profile %q in %s", key, profile, where)
	}
	fail := func(source, format string, args ...any) {
		r.errs = append(r.errs, fmt.Errorf("%s "+format, append([]any{source}, args...)...))
	}
	before := len(r.errs)

	if prof.Address == "" {
		prof.Address = DefaultTemporalAddress
	}
	if prof.Namespace == "" {
		prof.Namespace = DefaultTemporalNamespace
	}
	if _, port, err := net.SplitHostPort(prof.Address); err != nil {
		fail(src("TEMPORAL_ADDRESS", "address"), "%q is not host:port", prof.Address)
	} else if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		fail(src("TEMPORAL_ADDRESS", "address"), "%q has no valid port", prof.Address)
	}
	if strings.ContainsAny(prof.Namespace, " \t\n/") {
		fail(src("TEMPORAL_NAMESPACE", "namespace"), "%q must not contain spaces or slashes", prof.Namespace)
	}
	c.TemporalAddress, c.TemporalNamespace = prof.Address, prof.Namespace

	t := prof.TLS
	if t != nil && t.Disabled {
		// envconfig would drop these silently and dial in plaintext.
		if prof.APIKey != "" {
			fail(src("TEMPORAL_API_KEY", "api_key"), "is set but TLS is turned off (%s): the key would cross the network in plaintext; "+
				"drop the TLS setting, or the key", strings.TrimSuffix(src("TEMPORAL_TLS", "tls.disabled"), ":"))
		}
		for _, s := range []struct {
			set       bool
			name, key string
		}{
			{t.ClientCertPath != "", "TEMPORAL_TLS_CLIENT_CERT_PATH", "tls.client_cert_path"},
			{len(t.ClientCertData) > 0, "TEMPORAL_TLS_CLIENT_CERT_DATA", "tls.client_cert_data"},
			{t.ClientKeyPath != "", "TEMPORAL_TLS_CLIENT_KEY_PATH", "tls.client_key_path"},
			{len(t.ClientKeyData) > 0, "TEMPORAL_TLS_CLIENT_KEY_DATA", "tls.client_key_data"},
			{t.ServerCACertPath != "", "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "tls.server_ca_cert_path"},
			{len(t.ServerCACertData) > 0, "TEMPORAL_TLS_SERVER_CA_CERT_DATA", "tls.server_ca_cert_data"},
			{t.ServerName != "", "TEMPORAL_TLS_SERVER_NAME", "tls.server_name"},
		} {
			if s.set {
				fail(src(s.name, s.key), "is set but TLS is turned off (%s); drop one of them",
					strings.TrimSuffix(src("TEMPORAL_TLS", "tls.disabled"), ":"))
			}
		}
	}
	if t != nil && !t.Disabled {
		r.temporalTLS(t, src, fail)
	}
	c.Temporal = prof
	if len(r.errs) == before {
		if _, err := c.TemporalClientOptions(); err != nil {
			fail("TEMPORAL_TLS:", "%v", err)
		}
	}
}

// temporalTLS checks the TLS settings envconfig would otherwise fail on
// at the first dial, or not at all: each message names the variable (or
// the profile's key) at fault.
func (r *reader) temporalTLS(t *envconfig.ClientConfigTLS, src func(name, key string) string, fail func(source, format string, args ...any)) {
	certPath := src("TEMPORAL_TLS_CLIENT_CERT_PATH", "tls.client_cert_path")
	certData := src("TEMPORAL_TLS_CLIENT_CERT_DATA", "tls.client_cert_data")
	keyPath := src("TEMPORAL_TLS_CLIENT_KEY_PATH", "tls.client_key_path")
	keyData := src("TEMPORAL_TLS_CLIENT_KEY_DATA", "tls.client_key_data")
	caPath := src("TEMPORAL_TLS_SERVER_CA_CERT_PATH", "tls.server_ca_cert_path")
	caData := src("TEMPORAL_TLS_SERVER_CA_CERT_DATA", "tls.server_ca_cert_data")

	// read gives a setting's PEM, from its file or as given.
	read := func(path string, data []byte, pathSrc string) ([]byte, bool) {
		switch {
		case path != "" && len(data) > 0:
			fail(pathSrc, "is set and so is the same setting's _DATA form; give one of them")
			return nil, false
		case path != "":
			b, err := os.ReadFile(path)
			if err != nil {
				fail(pathSrc, "%v", err)
				return nil, false
			}
			return b, true
		case len(data) > 0:
			return data, true
		}
		return nil, false
	}
	cert, haveCert := read(t.ClientCertPath, t.ClientCertData, certPath)
	key, haveKey := read(t.ClientKeyPath, t.ClientKeyData, keyPath)
	certGiven := t.ClientCertPath != "" || len(t.ClientCertData) > 0
	keyGiven := t.ClientKeyPath != "" || len(t.ClientKeyData) > 0
	if t.ClientCertPath == "" {
		certPath = certData
	}
	if t.ClientKeyPath == "" {
		keyPath = keyData
	}
	if t.ServerCACertPath == "" {
		caPath = caData
	}
	switch {
	case certGiven && !keyGiven:
		fail(certPath, "is set but no client key is: set TEMPORAL_TLS_CLIENT_KEY_PATH to the certificate's private key")
	case keyGiven && !certGiven:
		fail(keyPath, "is set but no client certificate is: set TEMPORAL_TLS_CLIENT_CERT_PATH to the key's certificate")
	case haveCert && haveKey:
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			fail(certPath, "and the client key do not make a certificate and its key: %v", err)
			break
		}
		if leaf, err := x509.ParseCertificate(pair.Certificate[0]); err == nil && time.Now().After(leaf.NotAfter) {
			fail(certPath, "the client certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	if ca, ok := read(t.ServerCACertPath, t.ServerCACertData, caPath); ok {
		if !x509.NewCertPool().AppendCertsFromPEM(ca) {
			fail(caPath, "holds no PEM certificate")
		}
	}
}
