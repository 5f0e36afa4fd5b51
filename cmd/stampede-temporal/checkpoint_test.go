package main

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
)

// A writer that never checkpoints leaves its WAL to the checkpointer, which
// copies all of it; the writer's next commit then starts the WAL over.
func TestCheckpointerCopiesTheWAL(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "t.db")
	w, err := sql.Open("sqlite", "file:"+file+"?_pragma=journal_mode(wal)&_pragma=synchronous(normal)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	if _, err := w.ExecContext(ctx, `CREATE TABLE t (x INTEGER PRIMARY KEY, pad TEXT)`); err != nil {
		t.Fatal(err)
	}
	insert := func(n int) {
		t.Helper()
		for range n {
			if _, err := w.ExecContext(ctx, `INSERT INTO t (pad) VALUES (printf('%.3000c', 'x'))`); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert(1500) // past the 1000 pages a default connection would checkpoint at

	cp, err := newCheckpointer([]string{file}, checkpointEvery, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	s, err := cp.checkpoint(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	if s.busy != 0 || s.frames < 1500 || s.copied != s.frames {
		t.Fatalf("checkpoint: %+v; want every frame of a WAL the writer never checkpointed copied", s)
	}
	insert(1)
	if s, err = cp.checkpoint(ctx, file); err != nil || s.frames > 10 {
		t.Fatalf("after the next commit: %+v, %v; want the WAL started over", s, err)
	}
	var n int
	if err := w.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 1501 {
		t.Fatalf("count = %d, %v", n, err)
	}
}
