package kafka

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/config"
)

// securityEnv sets the STAMPEDE_KAFKA_* variables of env (and clears the
// others) with the SASL password in a fresh secrets directory.
func securityEnv(t *testing.T, env map[string]string, password string) {
	t.Helper()
	home := t.TempDir()
	t.Setenv(config.EnvHome, home)
	t.Setenv(config.SecretEnv(config.SecretKafkaSASLPassword), "")
	if password != "" {
		os.MkdirAll(filepath.Join(home, "secrets"), 0o700)
		if err := os.WriteFile(config.SecretPath(config.SecretKafkaSASLPassword), []byte(password), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{EnvTLS, EnvTLS + "_CA", EnvTLS + "_CERT", EnvTLS + "_KEY", EnvTLS + "_SERVER_NAME", EnvSASLMechanism, EnvSASLUser} {
		t.Setenv(k, env[k])
	}
}

func TestSecurityFromEnv(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		password string
		tls      bool
		sasl     string
		wantErr  string
	}{
		{name: "ok/nothing set: plaintext", env: map[string]string{}},
		{name: "ok/scram-sha-256", env: map[string]string{EnvSASLMechanism: "SCRAM-SHA-256"}, password: "pw", sasl: "SCRAM-SHA-256"},
		{name: "ok/scram-sha-512 over tls", env: map[string]string{EnvSASLMechanism: "scram-sha-512", EnvTLS: "1"}, password: "pw", tls: true, sasl: "SCRAM-SHA-512"},
		{name: "ok/plain over tls", env: map[string]string{EnvSASLMechanism: "PLAIN", EnvTLS: "true"}, password: "pw", tls: true, sasl: "PLAIN"},
		{name: "err/plain without tls", env: map[string]string{EnvSASLMechanism: "PLAIN"}, password: "pw", wantErr: EnvTLS},
		{name: "err/unknown mechanism", env: map[string]string{EnvSASLMechanism: "GSSAPI"}, password: "pw", wantErr: EnvSASLMechanism},
		{name: "err/no password", env: map[string]string{EnvSASLMechanism: "SCRAM-SHA-256"}, wantErr: "STAMPEDE_KAFKA_SASL_PASSWORD"},
		{name: "err/missing CA", env: map[string]string{EnvTLS + "_CA": "/nonexistent.pem"}, wantErr: EnvTLS + "_CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			securityEnv(t, tt.env, tt.password)
			sec, err := SecurityFromEnv()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				if tt.password != "" && strings.Contains(err.Error(), tt.password) {
					t.Fatalf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (sec.TLS != nil) != tt.tls {
				t.Errorf("TLS = %v, want %v", sec.TLS != nil, tt.tls)
			}
			got := ""
			if sec.SASL != nil {
				got = sec.SASL.Name()
			}
			if got != tt.sasl {
				t.Errorf("SASL = %q, want %q", got, tt.sasl)
			}
		})
	}
}

// BaseOpts authenticates with the environment's SCRAM settings: a broker
// that requires SCRAM takes a record with the right password and refuses
// the client, saying why, with a wrong one. A settings error fails every
// connection instead of falling back to plaintext.
func TestBaseOptsSCRAM(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", "stampede", "right-password"), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Ping (what readiness checks do) reports the broker's refusal; a
	// produce would wait for metadata until its deadline.
	produce := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := Ping(ctx, c.ListenAddrs()); err != nil {
			return err
		}
		cl, err := kgo.NewClient(BaseOpts("sasl-test", c.ListenAddrs())...)
		if err != nil {
			return err
		}
		defer cl.Close()
		return cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr()
	}
	tests := []struct {
		name     string
		env      map[string]string
		password string
		wantErr  string
	}{
		{name: "ok/right password", env: map[string]string{EnvSASLMechanism: "SCRAM-SHA-256"}, password: "right-password"},
		// kfake hangs up on a failed SCRAM exchange (a real broker names it:
		// sasl_integration_test.go).
		{name: "err/wrong password", env: map[string]string{EnvSASLMechanism: "SCRAM-SHA-256"}, password: "wrong-password"},
		{name: "err/no sasl", env: map[string]string{}, wantErr: ""},
		{name: "err/bad settings never fall back", env: map[string]string{EnvSASLMechanism: "NOPE"}, password: "right-password", wantErr: EnvSASLMechanism},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			securityEnv(t, tt.env, tt.password)
			err := produce()
			switch {
			case tt.name == "ok/right password":
				if err != nil {
					t.Fatalf("produce: %v", err)
				}
			case err == nil:
				t.Fatal("produce succeeded")
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("produce: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
