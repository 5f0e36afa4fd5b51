//go:build integration

package postgres

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
)

// The backend that serves a connection runs at the client's niceness when
// the client's is the lower priority, at the server's otherwise: against the
// stack's PostgreSQL (run at the intake's nice -5), a test at nice 0 gets a
// backend at 0, where it used to get one at -5.
func TestBackendTakesTheClientsNiceness(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := Open(ctx, config.PostgresURL(), "nice_it", 2, 5*time.Second)
	if err != nil {
		t.Fatalf("the stack's PostgreSQL is not reachable (run with `make test`): %v", err)
	}
	defer pool.Close()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()

	backend := int(conn.Conn().PgConn().PID())
	server, err := parentOf(backend)
	if err != nil {
		t.Fatalf("backend %d: %v", backend, err)
	}
	serverNice, comm, err := procNice(procRoot, server)
	if err != nil || comm != "postgres" {
		t.Fatalf("server %d: %q, %v; want a postgres process", server, comm, err)
	}
	own, _, err := procNice(procRoot, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := procNice(procRoot, backend)
	if err != nil {
		t.Fatal(err)
	}
	if want := max(own, serverNice); got != want {
		t.Errorf("backend %d runs at nice %d; want %d (client %d, server %d)", backend, got, want, own, serverNice)
	}
	t.Logf("client nice %d, server nice %d, backend nice %d", own, serverNice, got)
}

// parentOf reads a process's parent pid, field 4 of /proc/<pid>/stat.
func parentOf(pid int) (int, error) {
	_, f, err := procStat(procRoot, pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 2 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command", pid, len(f))
	}
	return strconv.Atoi(f[1])
}
