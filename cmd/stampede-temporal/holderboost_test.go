package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// withBoost sets the boost for one test; it skips when this process may not
// raise a thread (not root, no CAP_SYS_NICE).
func withBoost(t *testing.T, by int) {
	t.Helper()
	prev := writeLockBoost.Load()
	writeLockBoost.Store(int32(by))
	boostRefused.Store(false)
	t.Cleanup(func() {
		writeLockBoost.Store(prev)
		boostRefused.Store(false)
	})
	if by > 0 {
		b := raise()
		b.restore()
		if !b.raised {
			t.Skip("this process may not raise a thread's priority (needs root or CAP_SYS_NICE)")
		}
	}
}

func serialDB(t *testing.T) *sql.DB {
	t.Helper()
	sql.Register("sqlite-boost-"+t.Name(), serialDriver{rawSQLite})
	return openWAL(t, "sqlite-boost-"+t.Name(), filepath.Join(t.TempDir(), "b.db"), 2)
}

func myNice(t *testing.T) (tid, nice int) {
	t.Helper()
	tid = syscall.Gettid()
	n, err := threadNice(tid)
	if err != nil {
		t.Fatal(err)
	}
	return tid, n
}

// The goroutine holding the write lock runs its thread above the process for
// the length of the hold, and at the process's niceness again after it.
func TestHolderRunsRaisedForTheHold(t *testing.T) {
	withBoost(t, 3)
	db := serialDB(t)
	_, before := myNice(t)

	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE n SET v = v + 1 WHERE k = 1`); err != nil {
		t.Fatal(err)
	}
	tid, during := myNice(t) // the holder is pinned: this is its thread
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	after, err := threadNice(tid)
	if err != nil {
		t.Fatal(err)
	}
	if want := max(before-3, -20); during != want || after != before {
		t.Fatalf("thread nice %d before, %d holding, %d after; want %d holding, %d after", before, during, after, want, before)
	}

	// A statement outside a transaction holds the lock while it runs; the
	// thread is back where it was after it.
	if _, err := db.Exec(`UPDATE n SET v = v + 1 WHERE k = 1`); err != nil {
		t.Fatal(err)
	}
	if n, _ := threadNice(tid); n != before {
		t.Fatalf("thread nice %d after an Exec, want %d", n, before)
	}
}

// Off, nothing moves.
func TestHolderBoostOff(t *testing.T) {
	withBoost(t, 0)
	db := serialDB(t)
	_, before := myNice(t)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, during := myNice(t); during != before {
		t.Fatalf("thread nice %d holding with the boost off, want %d", during, before)
	}
}

// database/sql rolls a transaction back from its own goroutine when the
// transaction's context ends: the holder's thread is put back all the same.
func TestHolderRestoredWhenAnotherGoroutineRollsBack(t *testing.T) {
	withBoost(t, 3)
	db := serialDB(t)
	_, before := myNice(t)
	ctx, cancel := context.WithCancel(context.Background())
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tid, during := myNice(t)
	if during == before {
		t.Fatalf("thread nice %d holding, want it raised", during)
	}
	cancel() // database/sql's watcher rolls back and the lock is given back
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := threadNice(tid)
		if err != nil {
			t.Fatal(err)
		}
		if n == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread nice %d 5 s after the rollback, want %d", n, before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = tx.Rollback() // already done: ErrTxDone
	// And the lock is free for the next writer.
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if _, err := db.ExecContext(wctx, `UPDATE n SET v = v + 1 WHERE k = 1`); err != nil {
		t.Fatalf("write after the rolled-back hold: %v", err)
	}
}
