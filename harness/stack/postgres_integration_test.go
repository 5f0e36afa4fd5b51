//go:build integration

package stack

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stampede-dev/stampede/platform/config"
)

// A data directory made before SCRAM (initdb --auth=trust, as stampede up
// once did) is moved to SCRAM-SHA-256 by the next up: afterwards a client
// without the password, or with a wrong one, is refused, and the stack's
// URL gets in. The cluster runs on a free port of its own, not the stack's.
func TestTrustClusterMovesToSCRAM(t *testing.T) {
	home, err := os.MkdirTemp("", "stampede-trust-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	os.Chmod(home, 0o755) // PostgreSQL's own user reaches its data through it
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	t.Setenv(config.EnvHome, home)
	t.Setenv(config.EnvSecretsDir, "")
	t.Setenv(config.EnvPostgresURL, "")
	t.Setenv(config.SecretEnv(config.SecretPostgresPassword), "")
	t.Setenv(config.PortEnv(config.Postgres), strconv.Itoa(port))

	s := &Stack{Home: home, Components: []Component{Postgres()}}
	dir := s.DataDir(config.Postgres)
	initdb, err := findCommand("initdb", pgBinDirs)
	if err != nil {
		t.Fatalf("initdb: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cred, err := postgresUser(dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(initdb, "-D", dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("initdb --auth=trust: %v\n%s", err, out)
	}
	if trust, _ := trustedHBA(dir); !trust {
		t.Fatal("initdb --auth=trust made no trust rule: the test proves nothing")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() { s.Down(nil, false) })
	if err := s.Up(ctx, nil); err != nil {
		t.Fatalf("up on a trust cluster: %v", err)
	}
	if trust, err := trustedHBA(dir); err != nil || trust {
		t.Fatalf("pg_hba.conf after up: trust %v, %v", trust, err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for name, url := range map[string]string{
		"no password":    "postgres://postgres@" + addr + "/stampede?sslmode=disable",
		"wrong password": "postgres://postgres:wrong@" + addr + "/stampede?sslmode=disable",
	} {
		if conn, err := pgx.Connect(ctx, url); err == nil {
			conn.Close(ctx)
			t.Errorf("%s: let in", name)
		} else if !strings.Contains(err.Error(), "28P01") && !strings.Contains(err.Error(), "password") {
			t.Errorf("%s: %v, want a password refusal", name, err)
		}
	}
	conn, err := pgx.Connect(ctx, config.PostgresURL())
	if err != nil {
		t.Fatalf("the stack's URL after the move: %v", err)
	}
	defer conn.Close(ctx)
	var verifier string
	if err := conn.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'").Scan(&verifier); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(verifier, "SCRAM-SHA-256$4096:") {
		t.Fatalf("postgres role's password: %.20q, want a SCRAM verifier", verifier)
	}
	if log, _ := os.ReadFile(filepath.Join(home, "logs", "postgres.log")); strings.Contains(string(log), mustSecret(t)) {
		t.Fatal("PostgreSQL's log shows the password")
	}
}

func mustSecret(t *testing.T) string {
	t.Helper()
	pw, err := config.Secret(config.SecretPostgresPassword)
	if err != nil {
		t.Fatal(err)
	}
	return pw
}
