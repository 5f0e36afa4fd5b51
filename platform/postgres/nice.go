package postgres

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
)

// EnvShareNice set to "0" leaves every backend at the server's niceness.
const EnvShareNice = "STAMPEDE_POSTGRES_SHARE_NICE"

// procRoot is where shareNice reads processes from.
const procRoot = "/proc"

// shareNice is the pool's AfterConnect hook; it never fails a connection.
//
// PostgreSQL serves each connection from a process of its own, which runs at
// the server's niceness whatever the client's. The stack runs the server at
// the intake's raised priority (Orders and the relay must not wait behind the
// saga's work), so the backends of clients niced below it did their clients'
// work above them: over a short chaos run, 55% of the CPU of PostgreSQL's
// client backends served clients at nice 10 or 19 (Notifications 27%,
// Inventory 17%, Shipping 9%, Payments 2%), at the level of Temporal's
// workflow starts. shareNice hands each new connection's backend its
// client's niceness, so a burst of saga work after an outage waits behind
// the intake, as the clients themselves do.
//
// It only ever lowers a backend's priority, only for a server on this
// machine (a loopback or Unix-socket connection whose backend /proc lists as
// a postgres process), and only for the one backend that does this client's
// work, for as long as the connection lives. Where the kernel refuses (a
// server owned by another user, without CAP_SYS_NICE), it changes nothing.
func shareNice(_ context.Context, conn *pgx.Conn) error {
	if !localHost(conn.Config().Host) {
		return nil
	}
	_, _ = matchNice(procRoot, os.Getpid(), int(conn.PgConn().PID()), setNice)
	return nil
}

// localHost reports whether host (a pgx connection's) is on this machine: a
// Unix socket directory or a loopback name or address.
func localHost(host string) bool {
	if strings.HasPrefix(host, "/") || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// matchNice sets the backend process's niceness to the client's, through
// setprio, when the backend (as /proc under root shows it) is a postgres
// process running at a higher priority than the client. It reports whether
// it changed anything.
func matchNice(root string, client, backend int, setprio func(pid, nice int) error) (bool, error) {
	own, _, err := procNice(root, client)
	if err != nil {
		return false, err
	}
	theirs, comm, err := procNice(root, backend)
	if err != nil {
		return false, err
	}
	if comm != "postgres" || theirs >= own {
		return false, nil
	}
	if err := setprio(backend, own); err != nil {
		return false, fmt.Errorf("postgres: nice backend %d to %d: %w", backend, own, err)
	}
	return true, nil
}

// procNice reads a process's niceness (field 19 of stat(5)) and command
// name from its /proc/<pid>/stat.
func procNice(root string, pid int) (nice int, comm string, err error) {
	comm, f, err := procStat(root, pid)
	if err != nil {
		return 0, "", err
	}
	if len(f) < 17 {
		return 0, "", fmt.Errorf("postgres: /proc/%d/stat: %d fields after the command", pid, len(f))
	}
	nice, err = strconv.Atoi(f[16])
	if err != nil {
		return 0, "", fmt.Errorf("postgres: /proc/%d/stat: nice %q: %w", pid, f[16], err)
	}
	return nice, comm, nil
}

// procStat splits a process's /proc/<pid>/stat (pid (comm) state ppid ...)
// into its command name and the fields after it, from state (field 3) on.
// The command may hold spaces and parentheses: it ends at the last ')'.
func procStat(root string, pid int) (comm string, fields []string, err error) {
	b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", nil, err
	}
	s := string(b)
	open, shut := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || shut < open {
		return "", nil, fmt.Errorf("postgres: /proc/%d/stat: no command name", pid)
	}
	return s[open+1 : shut], strings.Fields(s[shut+1:]), nil
}

// setNice sets a single-threaded process's niceness (a PostgreSQL backend).
func setNice(pid, nice int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, pid, nice)
}
