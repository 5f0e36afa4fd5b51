package stack

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stampede-dev/stampede/platform/config"
)

func readSecrets(t *testing.T, s *Stack) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range config.Secrets {
		b, err := os.ReadFile(filepath.Join(s.SecretsDir(), name))
		if err == nil {
			out[name] = string(b)
		}
	}
	return out
}

// up writes each secret once, random, 0600 in a 0700 directory; a full down
// rotates the tokens and keeps the data's passwords, down --wipe rotates all.
func TestSecretsLifecycle(t *testing.T) {
	t.Setenv(config.EnvSecretsDir, "")
	s := &Stack{Home: t.TempDir()}
	if err := s.EnsureSecrets(); err != nil {
		t.Fatal(err)
	}
	first := readSecrets(t, s)
	if len(first) != len(config.Secrets) {
		t.Fatalf("wrote %d secrets, want %d", len(first), len(config.Secrets))
	}
	seen := map[string]bool{}
	for name, v := range first {
		if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}\n$`).MatchString(v) || seen[v] {
			t.Errorf("%s = %q: want 32 fresh random bytes, base64url", name, v)
		}
		seen[v] = true
		st, _ := os.Stat(filepath.Join(s.SecretsDir(), name))
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %#o, want 0600", name, st.Mode().Perm())
		}
	}
	if st, _ := os.Stat(s.SecretsDir()); st.Mode().Perm() != 0o700 {
		t.Errorf("secrets dir: mode %#o, want 0700", st.Mode().Perm())
	}
	if err := s.EnsureSecrets(); err != nil {
		t.Fatal(err)
	}
	if again := readSecrets(t, s); !equal(again, first) {
		t.Fatal("a second up changed the secrets")
	}

	if err := s.RotateOnDown(false); err != nil {
		t.Fatal(err)
	}
	s.EnsureSecrets()
	rotated := readSecrets(t, s)
	for _, name := range config.Secrets {
		changed := rotated[name] != first[name]
		want := name == config.SecretServiceToken || name == config.SecretUserTokenKey
		if changed != want {
			t.Errorf("%s changed across a full down: %v, want %v", name, changed, want)
		}
	}
	s.RotateOnDown(true)
	s.EnsureSecrets()
	for name, v := range readSecrets(t, s) {
		if v == rotated[name] {
			t.Errorf("%s kept across down --wipe", name)
		}
	}

	os.Chmod(filepath.Join(s.SecretsDir(), config.SecretRedisPassword), 0o644)
	if err := s.EnsureSecrets(); err == nil || !strings.Contains(err.Error(), config.SecretRedisPassword) {
		t.Fatalf("EnsureSecrets with a 0644 secret = %v, want a refusal naming it", err)
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestTrustedHBA(t *testing.T) {
	for _, tt := range []struct {
		name, hba string
		want      bool
	}{
		{"ok/scram", pgHBA, false},
		{"ok/trust in a comment", "# trust nobody\nlocal all all scram-sha-256\n", false},
		{"err/initdb --auth=trust", "local   all   all   trust\nhost all all 127.0.0.1/32 trust\n", true},
		{"err/one trust line", "local all all scram-sha-256\nhost all all 127.0.0.1/32 trust\n", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "pg_hba.conf"), []byte(tt.hba), 0o600)
			if got, err := trustedHBA(dir); err != nil || got != tt.want {
				t.Fatalf("trustedHBA = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestSCRAMVerifierShape(t *testing.T) {
	v, err := scramVerifier("pw")
	if err != nil {
		t.Fatal(err)
	}
	// What pg_authid holds: SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey.
	if !regexp.MustCompile(`^SCRAM-SHA-256\$4096:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$`).MatchString(v) {
		t.Fatalf("verifier %q", v)
	}
	if w, _ := scramVerifier("pw"); w == v {
		t.Fatal("two verifiers share a salt")
	}
}
