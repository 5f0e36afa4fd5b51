package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// openCached opens a SQLite file through the "sqlite" driver, which init
// wrapped, on one connection (as Temporal's plugin uses it).
func openCached(t *testing.T) (*sql.DB, *sql.Conn) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "t.db")+"?_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return db, conn
}

func compiled(t *testing.T, conn *sql.Conn) int {
	t.Helper()
	n := -1
	if err := conn.Raw(func(dc any) error {
		n = cachingOf(dc).compiled
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestStmtCacheCompilesEachQueryOnce(t *testing.T) {
	ctx := context.Background()
	_, conn := openCached(t)
	if _, err := conn.ExecContext(ctx, `CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := conn.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, i%10, "v"); err != nil {
			t.Fatal(err)
		}
		var v string
		if err := conn.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = ?`, i%10).Scan(&v); err != nil || v != "v" {
			t.Fatalf("select %d: %q, %v", i, v, err)
		}
		rows, err := conn.QueryContext(ctx, `SELECT v FROM kv WHERE k = ?`, -1) // no rows
		if err != nil {
			t.Fatal(err)
		}
		if rows.Next() {
			t.Fatal("a row for k = -1")
		}
		rows.Close()
	}
	// CREATE, INSERT, SELECT: three compilations for 301 statements run.
	if n := compiled(t, conn); n != 3 {
		t.Errorf("%d statements compiled, want 3", n)
	}
	var count int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM kv`).Scan(&count); err != nil || count != 10 {
		t.Fatalf("count = %d, %v; want 10", count, err)
	}
}

// A query whose rows are still open when the same text runs again goes
// uncached: both read their own rows.
func TestStmtCacheNestedUseOfOneQuery(t *testing.T) {
	ctx := context.Background()
	_, conn := openCached(t)
	conn.ExecContext(ctx, `CREATE TABLE n (x INTEGER)`)
	for i := range 3 {
		conn.ExecContext(ctx, `INSERT INTO n VALUES (?)`, i)
	}
	const q = `SELECT x FROM n WHERE x >= ? ORDER BY x`
	outer, err := conn.QueryContext(ctx, q, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for outer.Next() {
		var x int
		outer.Scan(&x)
		inner, err := conn.QueryContext(ctx, q, x)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for inner.Next() {
			n++
		}
		inner.Close()
		got = append(got, x*10+n)
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	outer.Close()
	if want := []int{3, 12, 21}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Closed, the cached statement serves again.
	var x int
	if err := conn.QueryRowContext(ctx, q, 2).Scan(&x); err != nil || x != 2 {
		t.Fatalf("after close: %d, %v", x, err)
	}
}

func TestStmtCacheTransactionsAndErrors(t *testing.T) {
	ctx := context.Background()
	db, conn := openCached(t)
	conn.ExecContext(ctx, `CREATE TABLE t (x INTEGER PRIMARY KEY)`)
	conn.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (?)`, 1); err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("after rollback: %d rows, %v", n, err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO t VALUES (?)`, 1); err != nil {
		t.Fatal(err)
	}
	// A constraint error from a cached statement, then the same statement again.
	if _, err := db.ExecContext(ctx, `INSERT INTO t VALUES (?)`, 1); err == nil {
		t.Fatal("duplicate key inserted")
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO t VALUES (?)`, 2); err != nil {
		t.Fatalf("after a failed use: %v", err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO nowhere VALUES (1)`); err == nil {
		t.Fatal("no error for a missing table")
	}
}

func TestStmtCacheEvictsTheLeastRecentlyUsed(t *testing.T) {
	ctx := context.Background()
	_, conn := openCached(t)
	if err := conn.Raw(func(dc any) error { cachingOf(dc).max = 2; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`SELECT 1`, `SELECT 2`, `SELECT 1`, `SELECT 3`, `SELECT 1`, `SELECT 2`} {
		var x int
		if err := conn.QueryRowContext(ctx, q).Scan(&x); err != nil {
			t.Fatal(err)
		}
	}
	// 1, 2, (1 cached), 3 evicts 2, (1 cached), 2 again.
	if n := compiled(t, conn); n != 4 {
		t.Errorf("%d compiled, want 4", n)
	}
	conn.Raw(func(dc any) error {
		if l := cachingOf(dc).lru.Len(); l != 2 {
			t.Errorf("%d cached, want 2", l)
		}
		return nil
	})
}

// cachingOf is the statement cache under the write lock's connection.
func cachingOf(dc any) *cachingConn {
	return dc.(*serialConn).c.(*cachingConn)
}
