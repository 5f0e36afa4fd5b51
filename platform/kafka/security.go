package kafka

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/stampede-dev/stampede/platform/config"
)

// How every Stampede process reaches a cluster that wants TLS or SASL (the
// README's "Using your own infrastructure" lists them):
//
//	STAMPEDE_KAFKA_TLS=1                   TLS with the system's roots
//	STAMPEDE_KAFKA_TLS_CA=ca.pem           ... or these CAs (turns TLS on)
//	STAMPEDE_KAFKA_TLS_CERT, _KEY          a client certificate (mutual TLS)
//	STAMPEDE_KAFKA_TLS_SERVER_NAME         the name the broker's certificate carries
//	STAMPEDE_KAFKA_SASL_MECHANISM          SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN (PLAIN only with TLS)
//	STAMPEDE_KAFKA_SASL_USER               default "stampede"
//	STAMPEDE_KAFKA_SASL_PASSWORD           or the file .stampede/secrets/kafka-sasl-password
const (
	EnvTLS           = "STAMPEDE_KAFKA_TLS"
	EnvSASLMechanism = "STAMPEDE_KAFKA_SASL_MECHANISM"
	EnvSASLUser      = "STAMPEDE_KAFKA_SASL_USER"
)

// DefaultSASLUser is the SCRAM user the stack creates on its SASL listener.
const DefaultSASLUser = "stampede"

// Security is how a client authenticates to the brokers and protects the
// connection: nil fields mean plaintext and no SASL.
type Security struct {
	TLS  *tls.Config
	SASL sasl.Mechanism
}

// SCRAM returns the SCRAM mechanism named (SCRAM-SHA-256 or SCRAM-SHA-512)
// for user and password.
func SCRAM(mechanism, user, password string) (sasl.Mechanism, error) {
	a := scram.Auth{User: user, Pass: password}
	switch strings.ToUpper(mechanism) {
	case "SCRAM-SHA-256":
		return a.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return a.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("%s=%q: want SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN", EnvSASLMechanism, mechanism)
}

// SecurityFromEnv reads the STAMPEDE_KAFKA_TLS* and STAMPEDE_KAFKA_SASL_*
// variables. Errors name the variable; the password never appears in one.
func SecurityFromEnv() (Security, error) {
	var sec Security
	tlsCfg, err := config.TLSFromEnv(EnvTLS)
	if err != nil {
		return sec, err
	}
	sec.TLS = tlsCfg
	mech := os.Getenv(EnvSASLMechanism)
	if mech == "" {
		return sec, nil
	}
	user := config.Env(EnvSASLUser, DefaultSASLUser)
	pass, err := config.Secret(config.SecretKafkaSASLPassword)
	if err != nil {
		return sec, fmt.Errorf("%s=%s needs a password: %w", EnvSASLMechanism, mech, err)
	}
	if strings.EqualFold(mech, "PLAIN") {
		if sec.TLS == nil {
			return sec, fmt.Errorf("%s=PLAIN sends the password as it is: set %s=1 (or %s_CA) too", EnvSASLMechanism, EnvTLS, EnvTLS)
		}
		sec.SASL = plain.Auth{User: user, Pass: pass}.AsMechanism()
		return sec, nil
	}
	sec.SASL, err = SCRAM(mech, user, pass)
	return sec, err
}

// Opts returns the client options of sec.
func (sec Security) Opts() []kgo.Opt {
	var opts []kgo.Opt
	if sec.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(sec.TLS.Clone()))
	}
	if sec.SASL != nil {
		opts = append(opts, kgo.SASL(sec.SASL))
	}
	return opts
}

// securityOpts are the options BaseOpts adds from the environment. A
// configuration that cannot be used (a CA file missing, an unknown
// mechanism) makes every connection fail with the error that names the
// variable, rather than silently connecting in plaintext.
func securityOpts() []kgo.Opt {
	sec, err := SecurityFromEnv()
	if err != nil {
		err = fmt.Errorf("kafka security settings: %w", err)
		return []kgo.Opt{kgo.Dialer(func(context.Context, string, string) (net.Conn, error) { return nil, err })}
	}
	return sec.Opts()
}
