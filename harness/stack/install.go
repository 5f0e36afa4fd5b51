package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
)

var aptUpdated sync.Once

// ensureCommand finds command on PATH (or in extraDirs), installing the
// Debian package pkg with apt-get when it is missing and we are root. When it
// cannot, the error names what is missing and the command that fixes it.
func (s *Stack) ensureCommand(ctx context.Context, command, pkg string, extraDirs ...string) (string, error) {
	if p, err := findCommand(command, extraDirs...); err == nil {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("%s is not installed: run `sudo apt-get install -y %s` (or put %s on PATH)", command, pkg, command)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("%s is not installed and apt-get is not available: install the %s package for your system", command, pkg)
	}
	if err := s.aptInstall(ctx, pkg); err != nil {
		return "", err
	}
	p, err := findCommand(command, extraDirs...)
	if err != nil {
		return "", fmt.Errorf("installed %s but still cannot find %s: %w", pkg, command, err)
	}
	return p, nil
}

func (s *Stack) aptInstall(ctx context.Context, pkgs ...string) error {
	logPath := s.LogFile("install")
	os.MkdirAll(filepath.Dir(logPath), 0o755)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	var updErr error
	aptUpdated.Do(func() {
		s.logf("%-16s apt-get update (log %s)", "install", logPath)
		cmd := exec.CommandContext(ctx, "apt-get", "update")
		cmd.Stdout, cmd.Stderr = logf, logf
		updErr = cmd.Run()
	})
	if updErr != nil {
		return fmt.Errorf("apt-get update failed (see %s): %w", logPath, updErr)
	}
	s.logf("%-16s apt-get install -y %v (log %s)", "install", pkgs, logPath)
	cmd := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("apt-get install %v failed (see %s): %w", pkgs, logPath, err)
	}
	return nil
}

func findCommand(command string, extraDirs ...string) (string, error) {
	if p, err := exec.LookPath(command); err == nil {
		return p, nil
	}
	for _, pattern := range extraDirs {
		matches, _ := filepath.Glob(filepath.Join(pattern, command))
		sort.Sort(sort.Reverse(sort.StringSlice(matches))) // newest version first
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return m, nil
			}
		}
	}
	return "", fmt.Errorf("%s not found", command)
}
