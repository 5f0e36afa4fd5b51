package stack

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/stampede-dev/stampede/platform/config"
)

// rotatedOnDown are the secrets a full `stampede down` deletes, so the next
// up writes new ones: nothing that holds data depends on them. The
// PostgreSQL and Redis passwords stay with their data (`down --wipe`
// removes both).
var rotatedOnDown = []string{config.SecretServiceToken, config.SecretUserTokenKey}

// SecretsDir is where the stack keeps its secrets: Home/secrets, or
// STAMPEDE_SECRETS_DIR.
func (s *Stack) SecretsDir() string {
	if d := os.Getenv(config.EnvSecretsDir); d != "" {
		return d
	}
	return filepath.Join(s.Home, "secrets")
}

// EnsureSecrets writes every secret of config.Secrets that is missing, each
// 32 random bytes (base64url) in a file of mode 0600 in a directory of mode
// 0700, and refuses a secret file others may read (as every process would).
// It never prints one.
func (s *Stack) EnsureSecrets() error {
	dir := s.SecretsDir()
	// The home first, traversable: PostgreSQL's own user reaches its data
	// through it (MkdirAll would give it the secrets' 0700).
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	for _, name := range config.Secrets {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); err == nil {
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("secret %s: %w", name, err)
		}
		if err := writeSecret(path, randomSecret()); err != nil {
			return fmt.Errorf("secret %s: %w", name, err)
		}
		s.logf("%-16s generated %s (mode 0600)", "secrets", path)
	}
	for _, name := range config.Secrets {
		path := filepath.Join(dir, name)
		st, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("secret %s: %w", name, err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return fmt.Errorf("secret %s: %s has mode %#o: others may have read it; rotate it (delete the file, see README: Security) or chmod 600 it", name, path, st.Mode().Perm())
		}
	}
	return nil
}

// RotateOnDown deletes the secrets a full down rotates; with wipe also the
// passwords of the data it wiped.
func (s *Stack) RotateOnDown(wipe bool) error {
	names := rotatedOnDown
	if wipe {
		names = config.Secrets
	}
	var errs []error
	for _, name := range names {
		if err := os.Remove(filepath.Join(s.SecretsDir(), name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		s.logf("%-16s service token and user-token key removed: the next up writes new ones", "secrets")
	}
	return errors.Join(errs...)
}

func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics rather than return weak bytes)
	return base64.RawURLEncoding.EncodeToString(b)
}

// writeSecret writes v to path, mode 0600 from its first byte on (a
// temporary file renamed into place, so no reader sees half of it).
func writeSecret(path, v string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(v + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// scramVerifier returns PostgreSQL's SCRAM-SHA-256 verifier of password
// (RFC 5802, as pg_authid stores it), so the launcher can set a role's
// password without the password itself reaching the server, or its log if
// the statement fails.
func scramVerifier(password string) (string, error) {
	const iterations = 4096
	salt := make([]byte, 16)
	rand.Read(salt)
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	server := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(server)), nil
}
