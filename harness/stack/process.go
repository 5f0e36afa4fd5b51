package stack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
)

// pidFile is where the pid of a started process is recorded.
func (s *Stack) pidFile(name string) string { return filepath.Join(s.Home, "run", name+".pid") }

// LogFile is the log of a component.
func (s *Stack) LogFile(name string) string { return filepath.Join(s.Home, "logs", name+".log") }

// DataDir is the data directory of a component. PostgreSQL's is data/pg, as
// its own tools and docs call a cluster directory.
func (s *Stack) DataDir(name string) string {
	if name == "postgres" {
		name = "pg"
	}
	return filepath.Join(s.Home, "data", name)
}

// readPid returns the recorded pid of name, or 0 when none is recorded or
// the recorded process is gone (or is not the one we started).
func (s *Stack) readPid(name string) int {
	b, err := os.ReadFile(s.pidFile(name))
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 0
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil || pid <= 0 {
		return 0
	}
	if !alive(pid) {
		return 0
	}
	// Guard against pid reuse: the start time must match what we recorded.
	if len(fields) > 1 && fields[1] != startTime(pid) {
		return 0
	}
	return pid
}

func (s *Stack) writePid(name string, pid int) error {
	if err := os.MkdirAll(filepath.Dir(s.pidFile(name)), 0o755); err != nil {
		return err
	}
	return os.WriteFile(s.pidFile(name), []byte(fmt.Sprintf("%d %s\n", pid, startTime(pid))), 0o644)
}

// alive reports whether pid is a running process (a zombie counts as gone).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no procfs: trust kill(0)
	}
	// The state follows the parenthesised command name, which may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return true
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// startTime returns the kernel start time of pid (field 22 of /proc/pid/stat), or "".
func startTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// start launches cmd detached in its own process group, with stdout and
// stderr appended to the component's log, and records its pid.
func (s *Stack) start(name string, cmd *exec.Cmd, cred *syscall.Credential) error {
	logPath := s.LogFile(name)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log of %s: %w", name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "\n=== stampede: starting %s at %s: %s\n", name, time.Now().Format(time.RFC3339), strings.Join(cmd.Args, " "))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Stdin = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	if err := s.writePid(name, pid); err != nil {
		cmd.Process.Kill()
		return fmt.Errorf("record pid of %s: %w", name, err)
	}
	// Reap the child if it dies while we are still running (e.g. during the
	// readiness wait), so it does not linger as a zombie that looks alive.
	go cmd.Wait()
	return nil
}

// stop sends SIGTERM to the process group of name, waits up to grace, then
// SIGKILLs it. It reports whether something was running.
func (s *Stack) stop(name string, grace time.Duration) (bool, error) {
	pid := s.readPid(name)
	defer os.Remove(s.pidFile(name))
	if pid == 0 {
		return false, nil
	}
	signalGroup(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return true, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	signalGroup(pid, syscall.SIGKILL)
	for i := 0; i < 50 && alive(pid); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if alive(pid) {
		return true, fmt.Errorf("%s (pid %d) did not stop after SIGKILL", name, pid)
	}
	return true, nil
}

// Kill sends sig to the process of name (not its group), as the chaos
// harness does to crash a component. It returns the pid.
func (s *Stack) Kill(name string, sig syscall.Signal) (int, error) {
	pid := s.readPid(name)
	if pid == 0 {
		return 0, fmt.Errorf("%s is not running", name)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return pid, fmt.Errorf("signal %s (pid %d): %w", name, pid, err)
	}
	return pid, nil
}

// Pid returns the pid of a running component, or 0.
func (s *Stack) Pid(name string) int { return s.readPid(name) }

func signalGroup(pid int, sig syscall.Signal) {
	if err := syscall.Kill(-pid, sig); err != nil {
		syscall.Kill(pid, sig)
	}
}

// portFree reports an error naming the port when something listens on it.
func portFree(name string, port int) error {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: port %d is already in use (set %s to move it, or stop what holds it: `ss -ltnp 'sport = :%d'`)",
			name, port, portEnvHint(name), port)
	}
	ln.Close()
	return nil
}

// Tail returns the last n lines of a component's log.
func (s *Stack) Tail(name string, n int) string {
	f, err := os.Open(s.LogFile(name))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 256<<10 {
		f.Seek(st.Size()-256<<10, io.SeekStart)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// portEnvHint names the env var that moves a component's port; members of a
// family ("orchestrator-2") share their family's.
func portEnvHint(name string) string {
	return config.PortEnv(strings.ReplaceAll(group(name), "-", "_"))
}
