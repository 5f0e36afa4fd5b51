package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func secretsHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv(EnvHome, home)
	if err := os.MkdirAll(filepath.Join(home, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	return home
}

func writeSecret(t *testing.T, name, value string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(SecretPath(name), []byte(value+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(SecretPath(name), mode); err != nil {
		t.Fatal(err)
	}
}

func TestSecret(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		mode    os.FileMode
		env     string
		want    string
		wantErr string
	}{
		{name: "ok/file", file: "from-file", mode: 0o600, want: "from-file"},
		{name: "ok/env wins", file: "from-file", mode: 0o600, env: "from-env", want: "from-env"},
		{name: "ok/env without file", env: "from-env", want: "from-env"},
		{name: "err/missing names file and env", wantErr: "STAMPEDE_REDIS_PASSWORD"},
		{name: "err/readable by others", file: "x", mode: 0o644, wantErr: "want 0600"},
		{name: "err/readable by group", file: "x", mode: 0o640, wantErr: "want 0600"},
		{name: "err/empty file", file: " ", mode: 0o600, wantErr: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secretsHome(t)
			if tt.file != "" {
				writeSecret(t, SecretRedisPassword, tt.file, tt.mode)
			}
			t.Setenv(SecretEnv(SecretRedisPassword), tt.env)
			got, err := Secret(SecretRedisPassword)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Secret = %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Secret = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestServiceTokenRefusesShortOnes(t *testing.T) {
	secretsHome(t)
	writeSecret(t, SecretServiceToken, "short", 0o600)
	if _, err := ServiceToken(); err == nil || !strings.Contains(err.Error(), "at least") {
		t.Fatalf("ServiceToken() = %v, want a refusal of a short token", err)
	}
}

func TestURLsCarryGeneratedPasswords(t *testing.T) {
	secretsHome(t)
	t.Setenv(EnvPortOffset, "")
	t.Setenv(EnvPostgresURL, "")
	t.Setenv(EnvRedisURL, "")
	writeSecret(t, SecretPostgresPassword, "pg-secret/+", 0o600)
	writeSecret(t, SecretRedisPassword, "redis-secret", 0o600)
	if got, want := PostgresURL(), "postgres://postgres:pg-secret%2F+@127.0.0.1:5432/stampede?sslmode=disable"; got != want {
		t.Errorf("PostgresURL() = %q, want %q", got, want)
	}
	if got, want := RedisURL(), "redis://:redis-secret@127.0.0.1:6379/0"; got != want {
		t.Errorf("RedisURL() = %q, want %q", got, want)
	}
	for _, u := range []string{PostgresURL(), RedisURL(), PostgresAdminURL()} {
		if r := RedactURL(u); strings.Contains(r, "secret") || !strings.Contains(r, "xxxxx") {
			t.Errorf("RedactURL(%q) = %q", u, r)
		}
	}
	t.Setenv(EnvPostgresURL, "postgres://app:given@db.internal/stampede")
	if got := PostgresURL(); got != "postgres://app:given@db.internal/stampede" {
		t.Errorf("PostgresURL() with %s = %q", EnvPostgresURL, got)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:pw@h/db":       "postgres://u:xxxxx@h/db",
		"redis://:pw@h:1/0":          "redis://:xxxxx@h:1/0",
		"postgres://u@h/db":          "postgres://u@h/db",
		"127.0.0.1:9092,10.0.0.1:1":  "127.0.0.1:9092,10.0.0.1:1",
		"not a url %zz with :pw@ in": "not a url %zz with :pw@ in",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// --help never shows a generated password among the defaults.
func TestUsageRedactsDefaultURLs(t *testing.T) {
	secretsHome(t)
	writeSecret(t, SecretPostgresPassword, "pg-secret-value", 0o600)
	fs := NewFlagSet("stampede serve x", "")
	var u string
	fs.StringVar(&u, "postgres-url", EnvPostgresURL, PostgresURL(), "PostgreSQL URL")
	var out bytes.Buffer
	fs.PrintUsage(&out)
	if strings.Contains(out.String(), "pg-secret-value") || !strings.Contains(out.String(), "postgres:xxxxx@") {
		t.Fatalf("usage:\n%s", out.String())
	}
}

func TestTLSFromEnv(t *testing.T) {
	const p = "STAMPEDE_TEST_TLS"
	tests := []struct {
		name    string
		env     map[string]string
		on      bool
		wantErr string
	}{
		{name: "ok/off by default", env: map[string]string{}},
		{name: "ok/off explicitly", env: map[string]string{p: "false", p + "_CA": "/nonexistent"}},
		{name: "ok/on with system roots", env: map[string]string{p: "true", p + "_SERVER_NAME": "kafka.internal"}, on: true},
		{name: "err/bad bool", env: map[string]string{p: "yes please"}, wantErr: p},
		{name: "err/missing CA file", env: map[string]string{p + "_CA": "/nonexistent/ca.pem"}, wantErr: p + "_CA"},
		{name: "err/CA without PEM", env: map[string]string{p + "_CA": "secrets_test.go"}, wantErr: "no PEM"},
		{name: "err/cert without key", env: map[string]string{p: "1", p + "_CERT": "c.pem"}, wantErr: "set both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{p, p + "_CA", p + "_CERT", p + "_KEY", p + "_SERVER_NAME"} {
				t.Setenv(k, tt.env[k])
			}
			cfg, err := TLSFromEnv(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("TLSFromEnv = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || (cfg != nil) != tt.on {
				t.Fatalf("TLSFromEnv = %v, %v; want on=%v", cfg, err, tt.on)
			}
			if cfg != nil && cfg.ServerName != tt.env[p+"_SERVER_NAME"] {
				t.Errorf("ServerName = %q", cfg.ServerName)
			}
		})
	}
}
