package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Secrets the stack generates (harness/stack, on `stampede up`) and every
// process reads at start. Each is a file of SecretsDir, mode 0600, or the
// value of its environment variable (SecretEnv: for containers and CI, where
// there is no .stampede/). None is ever printed, logged or passed on a
// command line.
const (
	// SecretServiceToken is the bearer token internal callers (the saga's
	// activities, the harness, the tests) present to Inventory, Payments,
	// Shipping, Notifications, the analytics rules API and the Orders API.
	// A full `stampede down` deletes it, so the next up rotates it.
	SecretServiceToken = "service-token"
	// SecretUserTokenKey is the HMAC key of user tokens (`stampede token
	// user ID`); rotated with the service token.
	SecretUserTokenKey = "user-token-key"
	// SecretPostgresPassword is the password of the postgres role of the
	// stack's PostgreSQL (SCRAM-SHA-256); kept with the data.
	SecretPostgresPassword = "postgres-password"
	// SecretRedisPassword is the stack's Redis requirepass; kept with the data.
	SecretRedisPassword = "redis-password"
	// SecretKafkaSASLPassword is the SCRAM password of the Kafka user
	// (STAMPEDE_KAFKA_SASL_USER, default "stampede"): the stack creates that
	// user on its SASL listener with this password.
	SecretKafkaSASLPassword = "kafka-sasl-password"
)

// Secrets lists every secret the stack generates, in the order up writes them.
var Secrets = []string{SecretServiceToken, SecretUserTokenKey, SecretPostgresPassword, SecretRedisPassword, SecretKafkaSASLPassword}

// EnvHome is the state directory of the stack (.stampede by default).
const EnvHome = "STAMPEDE_HOME"

// EnvSecretsDir moves the secrets out of STAMPEDE_HOME/secrets.
const EnvSecretsDir = "STAMPEDE_SECRETS_DIR"

// Home returns the stack's state directory.
func Home() string { return Env(EnvHome, ".stampede") }

// SecretsDir returns the directory holding the secret files.
func SecretsDir() string { return Env(EnvSecretsDir, filepath.Join(Home(), "secrets")) }

// SecretPath returns the file of the secret name.
func SecretPath(name string) string { return filepath.Join(SecretsDir(), name) }

// SecretEnv returns the environment variable that carries the secret name
// instead of its file: STAMPEDE_SERVICE_TOKEN, STAMPEDE_POSTGRES_PASSWORD, ...
func SecretEnv(name string) string {
	return "STAMPEDE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Secret returns the value of the secret name: its environment variable, or
// else its file. A file that others than its owner may read is refused, as
// ssh refuses a private key: the secret may already be out.
func Secret(name string) (string, error) {
	if v := os.Getenv(SecretEnv(name)); v != "" {
		return v, nil
	}
	path := SecretPath(name)
	st, err := os.Stat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return "", fmt.Errorf("secret %s: no %s and %s is not set (`stampede up` writes it)", name, path, SecretEnv(name))
		}
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("secret %s: %s has mode %#o: others may read it; want 0600 (chmod 600 %s)", name, path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("secret %s: %s is empty", name, path)
	}
	return v, nil
}

// MinTokenLen is the shortest service token or user-token key accepted: the
// stack's are 43 characters (32 random bytes, base64url).
const MinTokenLen = 32

// ServiceToken returns the service token, refusing one too short to be random.
func ServiceToken() (string, error) {
	tok, err := Secret(SecretServiceToken)
	if err != nil {
		return "", err
	}
	if len(tok) < MinTokenLen {
		return "", fmt.Errorf("secret %s: %d characters; want at least %d random ones", SecretServiceToken, len(tok), MinTokenLen)
	}
	return tok, nil
}

// UserTokenKey returns the key user tokens are signed with.
func UserTokenKey() ([]byte, error) {
	k, err := Secret(SecretUserTokenKey)
	if err != nil {
		return nil, err
	}
	if len(k) < MinTokenLen {
		return nil, fmt.Errorf("secret %s: %d characters; want at least %d random ones", SecretUserTokenKey, len(k), MinTokenLen)
	}
	return []byte(k), nil
}

// RedactURL hides the password of a URL (postgres://u:xxxxx@host/db), for
// every place a URL is shown: --help defaults, logs, status, errors.
// Anything that is not a URL with a password comes back unchanged.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); !has {
		return s
	}
	return u.Redacted()
}

// EnvAllowedHosts lists the Host header values the HTTP services answer
// (comma-separated; "*" answers any, for containers whose network is the
// boundary). By default a service answers 127.0.0.1:PORT and localhost:PORT
// only, so a page on another origin that resolves its own name to loopback
// (DNS rebinding) is turned away.
const EnvAllowedHosts = "STAMPEDE_ALLOWED_HOSTS"

// DefaultHosts returns the Host values a service on ports answers by default.
func DefaultHosts(ports ...int) []string {
	var out []string
	for _, p := range ports {
		out = append(out, fmt.Sprintf("%s:%d", Host, p), fmt.Sprintf("localhost:%d", p))
	}
	return out
}

// TLSFromEnv returns the TLS configuration the environment variables named
// after prefix describe, or nil when they ask for none:
//
//	PREFIX              1/true turns TLS on with the system's roots (0/false off)
//	PREFIX_CA           PEM file of the CAs to trust instead (turns TLS on)
//	PREFIX_CERT, _KEY   PEM files of a client certificate and its key (mutual TLS)
//	PREFIX_SERVER_NAME  the name to verify the server's certificate against
//
// e.g. TLSFromEnv("STAMPEDE_KAFKA_TLS"). Errors name the variable.
func TLSFromEnv(prefix string) (*tls.Config, error) {
	on := false
	if v := os.Getenv(prefix); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: want true or false", prefix, v)
		}
		if !b {
			return nil, nil
		}
		on = true
	}
	ca, cert, key := os.Getenv(prefix+"_CA"), os.Getenv(prefix+"_CERT"), os.Getenv(prefix+"_KEY")
	if !on && ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: os.Getenv(prefix + "_SERVER_NAME")}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("%s_CA: %w", prefix, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s_CA: %s holds no PEM certificate", prefix, ca)
		}
		cfg.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("%s_CERT and %s_KEY: set both or neither", prefix, prefix)
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%s_CERT, %s_KEY: %w", prefix, prefix, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
