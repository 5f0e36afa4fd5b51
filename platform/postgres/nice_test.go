package postgres

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// fakeProc writes /proc/<pid>/stat files under a temporary root, each with
// the given command name and niceness in field 19.
func fakeProc(t *testing.T, procs map[int][2]string) string {
	t.Helper()
	root := t.TempDir()
	for pid, p := range procs {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
		// majflt cmajflt utime stime cutime cstime priority nice threads ...
		stat := fmt.Sprintf("%d (%s) S 1 1 1 0 -1 4194304 10 0 0 0 5 3 0 0 20 %s 1 0 100 1000 10\n", pid, p[0], p[1])
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestMatchNice(t *testing.T) {
	const client, backend = 100, 200
	tests := []struct {
		name        string
		clientNice  string
		backendComm string
		backendNice string
		want        int // the niceness set, -100 for none
	}{
		{"background client lowers its backend", "19", "postgres", "-5", 19},
		{"services client lowers its backend", "10", "postgres", "-5", 10},
		{"intake client leaves it", "-5", "postgres", "-5", -100},
		{"never raises a backend", "0", "postgres", "5", -100},
		{"not a postgres process", "19", "pgbouncer", "-5", -100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeProc(t, map[int][2]string{
				client:  {"stampede", tt.clientNice},
				backend: {tt.backendComm, tt.backendNice},
			})
			got := -100
			changed, err := matchNice(root, client, backend, func(pid, nice int) error {
				if pid != backend {
					t.Errorf("set the niceness of pid %d, want the backend %d", pid, backend)
				}
				got = nice
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || changed != (tt.want != -100) {
				t.Errorf("set %d (changed %v), want %d", got, changed, tt.want)
			}
		})
	}
}

func TestMatchNiceErrors(t *testing.T) {
	root := fakeProc(t, map[int][2]string{1: {"stampede", "19"}, 2: {"postgres", "-5"}})
	refused := errors.New("operation not permitted")
	if changed, err := matchNice(root, 1, 2, func(int, int) error { return refused }); changed || !errors.Is(err, refused) {
		t.Errorf("refused setpriority: changed %v, err %v; want false and the kernel's error", changed, err)
	}
	// A backend that ended before it could be read changes nothing.
	if changed, err := matchNice(root, 1, 3, func(int, int) error { t.Error("set a missing process"); return nil }); changed || err == nil {
		t.Errorf("missing backend: changed %v, err %v; want false and an error", changed, err)
	}
}

func TestProcNiceReadsOddCommandNames(t *testing.T) {
	// A command name may hold spaces and parentheses; the fields count from
	// the last ')'.
	root := fakeProc(t, map[int][2]string{7: {"we (ird) name", "-20"}})
	nice, comm, err := procNice(root, 7)
	if err != nil || nice != -20 || comm != "we (ird) name" {
		t.Errorf("procNice = %d, %q, %v; want -20, %q", nice, comm, err, "we (ird) name")
	}
	if err := os.WriteFile(filepath.Join(root, "7", "stat"), []byte("7 (short) S 1 2 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := procNice(root, 7); err == nil {
		t.Error("a truncated stat parsed without error")
	}
}

func TestProcNiceOfThisProcess(t *testing.T) {
	// The real /proc: field 19 is what the kernel says this process runs at.
	nice, _, err := procNice(procRoot, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if want, err := getNice(); err != nil || nice != want {
		t.Errorf("procNice(self) = %d, getpriority says %d (%v)", nice, want, err)
	}
}

func TestLocalHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1":           true,
		"::1":                 true,
		"localhost":           true,
		"/var/run/postgresql": true,
		"10.0.0.5":            false,
		"db.example.com":      false,
		"":                    false,
	} {
		if got := localHost(host); got != want {
			t.Errorf("localHost(%q) = %v, want %v", host, got, want)
		}
	}
}

// getNice asks the kernel for this thread's niceness (the raw system call
// answers 20 - nice on Linux).
func getNice() (int, error) {
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	return 20 - p, err
}
