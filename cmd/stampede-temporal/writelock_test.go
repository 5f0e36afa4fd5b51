package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// openWAL opens file through driverName with the server's SQLite settings
// and conns connections.
func openWAL(t *testing.T, driverName, file string, conns int) *sql.DB {
	t.Helper()
	db, err := sql.Open(driverName, "file:"+file+"?_pragma=journal_mode(wal)&_pragma=synchronous(normal)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS n (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT OR IGNORE INTO n (k, v) VALUES (1, 0)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// readThenWrite runs what Temporal's writes do: a transaction that reads
// (the shard's range check) before it writes. It returns the errors.
func readThenWrite(db *sql.DB, workers, each int) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := func() error {
					tx, err := db.Begin()
					if err != nil {
						return err
					}
					defer tx.Rollback()
					var v int
					if err := tx.QueryRow(`SELECT v FROM n WHERE k = 1`).Scan(&v); err != nil {
						return err
					}
					time.Sleep(time.Millisecond) // another writer commits meanwhile
					if _, err := tx.Exec(`UPDATE n SET v = ? WHERE k = 1`, v+1); err != nil {
						return err
					}
					return tx.Commit()
				}()
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errs
}

// TestWriteLockSerialisesWriters: with four connections, transactions that
// read and then write all commit, and none loses an update. Through the
// driver without the lock the same work fails (the 517 errors four plain
// connections gave on the stack), so the test can tell.
func TestWriteLockSerialisesWriters(t *testing.T) {
	const workers, each = 4, 25
	db := openWAL(t, "sqlite", filepath.Join(t.TempDir(), "locked.db"), 4)
	if errs := readThenWrite(db, workers, each); len(errs) > 0 {
		t.Fatalf("%d of %d transactions failed, first: %v", len(errs), workers*each, errs[0])
	}
	var v int
	if err := db.QueryRow(`SELECT v FROM n WHERE k = 1`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != workers*each {
		t.Errorf("counter = %d, want %d: an update was lost", v, workers*each)
	}

	sql.Register("sqlite-unlocked-test", rawSQLite)
	raw := openWAL(t, "sqlite-unlocked-test", filepath.Join(t.TempDir(), "raw.db"), 4)
	if errs := readThenWrite(raw, workers, each); len(errs) == 0 {
		t.Errorf("without the lock every transaction committed: the test would not see a missing lock")
	} else {
		t.Logf("without the lock: %d of %d failed, e.g. %v", len(errs), workers*each, errs[0])
	}
}

// TestQueriesRunBesideAnOpenTransaction: a query on another connection
// answers while a transaction holds the lock; a write outside it waits, and
// gives up when its context ends.
func TestQueriesRunBesideAnOpenTransaction(t *testing.T) {
	db := openWAL(t, "sqlite", filepath.Join(t.TempDir(), "beside.db"), 3)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE n SET v = 7 WHERE k = 1`); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var v int
	if err := db.QueryRowContext(ctx, `SELECT v FROM n WHERE k = 1`).Scan(&v); err != nil {
		t.Fatalf("query beside the transaction: %v", err)
	}
	if v != 0 {
		t.Errorf("query saw %d before the commit, want 0", v)
	}

	wctx, wcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer wcancel()
	if _, err := db.ExecContext(wctx, `UPDATE n SET v = 9 WHERE k = 1`); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("write beside the transaction: err = %v, want it to wait for the lock until its deadline", err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(ctx, `UPDATE n SET v = v + 1 WHERE k = 1`)
		done <- err
	}()
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("write after the commit: %v", err)
	}
	if err := db.QueryRow(`SELECT v FROM n WHERE k = 1`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != 8 {
		t.Errorf("v = %d, want 8 (7 committed, then +1)", v)
	}
}

func TestWriteLockIsPerFile(t *testing.T) {
	dir := t.TempDir()
	a, b := writeLockFor("file:"+dir+"/a.db?x=1"), writeLockFor("file:"+dir+"/a.db?y=2")
	c := writeLockFor(fmt.Sprintf("file:%s/b.db", dir))
	if a != b {
		t.Error("two DSNs of one file got two locks")
	}
	if a == c {
		t.Error("two files share a lock")
	}
}
