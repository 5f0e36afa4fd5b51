package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/web"
)

// fakeSecrets writes every secret with a recognisable value into a fresh
// STAMPEDE_HOME and returns the values.
func fakeSecrets(t *testing.T) map[string]string {
	t.Helper()
	home := t.TempDir()
	t.Setenv(config.EnvHome, home)
	if err := os.MkdirAll(filepath.Join(home, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{}
	for _, name := range config.Secrets {
		v := "SECRET-" + strings.ToUpper(name) + "-0123456789abcdefghijklmnopqrstuvwxyz"
		if err := os.WriteFile(config.SecretPath(name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		vals[name] = v
	}
	return vals
}

// capture runs f with stdout and stderr going to a file, and returns what it wrote.
func capture(t *testing.T, f func()) string {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = out, out
	func() {
		defer func() { os.Stdout, os.Stderr = stdout, stderr }()
		f()
	}()
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every command's and process's --help lists its defaults, URLs among them:
// none may show a secret.
func TestHelpShowsNoSecret(t *testing.T) {
	secrets := fakeSecrets(t)
	for _, tc := range []struct {
		kind  string
		table []command
	}{
		{"command", commands},
		{"serve", servers},
	} {
		for _, c := range tc.table {
			out := capture(t, func() {
				if err := c.run(context.Background(), []string{"--help"}); err != nil && !errors.Is(err, flag.ErrHelp) {
					t.Errorf("%s %s --help: %v", tc.kind, c.name, err)
				}
			})
			for name, v := range secrets {
				if strings.Contains(out, v) {
					t.Errorf("%s %s --help shows the %s", tc.kind, c.name, name)
				}
			}
		}
	}
	// The check above sees the defaults: prove it would catch one.
	out := capture(t, func() { runServe(context.Background(), []string{"orders", "--help"}) })
	if !strings.Contains(out, "postgres:xxxxx@") {
		t.Fatalf("serve orders --help shows no redacted PostgreSQL URL:\n%s", out)
	}
}

func TestTokenUser(t *testing.T) {
	secrets := fakeSecrets(t)
	users := web.NewUserTokens([]byte(secrets[config.SecretUserTokenKey]))
	tests := []struct {
		name    string
		args    []string
		user    string
		ttl     time.Duration
		wantErr string
	}{
		{name: "ok/default ttl", args: []string{"user", "u-1"}, user: "u-1", ttl: 24 * time.Hour},
		{name: "ok/ttl after the id", args: []string{"user", "u-2", "--ttl", "1h"}, user: "u-2", ttl: time.Hour},
		{name: "ok/ttl before", args: []string{"--ttl", "2h", "user", "u-3"}, user: "u-3", ttl: 2 * time.Hour},
		{name: "err/no id", args: []string{"user"}, wantErr: "usage"},
		{name: "err/service token is never printed", args: []string{"service"}, wantErr: "usage"},
		{name: "err/ttl too long", args: []string{"user", "u-1", "--ttl", "9999h"}, wantErr: "ttl"},
		{name: "err/control character", args: []string{"user", "u\x01"}, wantErr: "userId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			out := capture(t, func() { err = runToken(context.Background(), tt.args) })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tok := strings.TrimSpace(out)
			if got, err := users.Verify(tok, time.Now()); err != nil || got != tt.user {
				t.Fatalf("token %q verifies as %q, %v; want %q", tok, got, err, tt.user)
			}
			if _, err := users.Verify(tok, time.Now().Add(tt.ttl+time.Minute)); err == nil {
				t.Fatalf("token still valid after %s", tt.ttl)
			}
			for name, v := range secrets {
				if strings.Contains(out, v) {
					t.Fatalf("token output shows the %s", name)
				}
			}
		})
	}
}
