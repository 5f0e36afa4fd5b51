package main

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
	"sync"
)

// Temporal's SQLite plugin gives each database file one connection unless
// told otherwise, so every read waited behind every write and the other way
// round. In a short chaos run at 20 sagas/s the server read mutable state
// (GetWorkflowExecution, ~7 ms each, 60 a second) and history branches
// beside its writes: about 0.8 s of SQL per second on that one connection,
// and a workflow start queued behind it (start p99 200-470 ms after a
// Payments outage while the persistence p99 of CreateWorkflowExecution was
// 20-44 ms).
//
// More connections let reads run beside the writer (WAL mode gives each
// read a snapshot), but two connections writing at once fail: a deferred
// transaction that read before another connection committed gets
// SQLITE_BUSY_SNAPSHOT (517, "database is locked") at its first write, which
// no busy timeout cures. That is how four plain connections went (145 errors
// in one run, see README "Chaos"). So every write to a file goes through one
// lock of this process: a transaction holds it from BEGIN to COMMIT or
// ROLLBACK, a statement outside a transaction (Exec) holds it while it runs.
// Queries outside a transaction run without it. The lock is a channel so a
// caller whose context ends stops waiting for it.

// EnvSQLiteConns is the environment variable of --sqlite-conns.
const EnvSQLiteConns = "STAMPEDE_TEMPORAL_SQLITE_CONNS"

// defaultSQLiteConns: one writer at a time, reads beside it.
const defaultSQLiteConns = 4

// writeLocks holds one lock per database file, keyed by the part of the
// DSN before its parameters.
var writeLocks = struct {
	sync.Mutex
	m map[string]chan struct{}
}{m: map[string]chan struct{}{}}

func writeLockFor(dsn string) chan struct{} {
	file, _, _ := strings.Cut(dsn, "?")
	writeLocks.Lock()
	defer writeLocks.Unlock()
	l, ok := writeLocks.m[file]
	if !ok {
		l = make(chan struct{}, 1)
		writeLocks.m[file] = l
	}
	return l
}

// serialDriver opens connections that write one at a time per file.
type serialDriver struct{ driver.Driver }

func (d serialDriver) Open(name string) (driver.Conn, error) {
	c, err := d.Driver.Open(name)
	if err != nil {
		return nil, err
	}
	exec, ok1 := c.(driver.ExecerContext)
	query, ok2 := c.(driver.QueryerContext)
	prep, ok3 := c.(driver.ConnPrepareContext)
	begin, ok4 := c.(driver.ConnBeginTx)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		c.Close()
		return nil, errors.New("writelock: the driver's connection lacks ExecContext, QueryContext, PrepareContext or BeginTx")
	}
	return &serialConn{connOptional: connOptional{c}, c: c, exec: exec, query: query, prep: prep, begin: begin, w: writeLockFor(name)}, nil
}

// serialConn is one connection; like every driver.Conn it is used by one
// goroutine at a time.
type serialConn struct {
	connOptional
	c     driver.Conn
	exec  driver.ExecerContext
	query driver.QueryerContext
	prep  driver.ConnPrepareContext
	begin driver.ConnBeginTx
	w     chan struct{} // the file's write lock
	tx    *serialTx     // open transaction: it holds w
	held  boost         // the holder's thread raised while it holds w (holderboost.go)
}

func (c *serialConn) lock(ctx context.Context) error {
	select {
	case c.w <- struct{}{}:
		c.held = raise()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *serialConn) unlock() {
	b := c.held
	c.held = boost{}
	b.restore()
	<-c.w
}

func (c *serialConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.tx != nil {
		return c.exec.ExecContext(ctx, query, args)
	}
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	defer c.unlock()
	return c.exec.ExecContext(ctx, query, args)
}

func (c *serialConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.query.QueryContext(ctx, query, args)
}

func (c *serialConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	tx, err := c.begin.BeginTx(ctx, opts)
	if err != nil {
		c.unlock()
		return nil, err
	}
	c.tx = &serialTx{Tx: tx, c: c}
	return c.tx, nil
}

func (c *serialConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// PrepareContext prepares on the connection; a prepared statement's Exec
// outside a transaction takes the lock like the connection's.
func (c *serialConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.prep.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &serialStmt{Stmt: st, c: c}, nil
}

func (c *serialConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *serialConn) Close() error {
	if c.tx != nil {
		// database/sql closes a connection with a transaction open only
		// when the transaction's context ended: give the lock back.
		c.tx.end()
	}
	return c.c.Close()
}

// serialTx gives the lock back once, at its commit or rollback.
type serialTx struct {
	driver.Tx
	c *serialConn
}

func (t *serialTx) Commit() error {
	defer t.end()
	return t.Tx.Commit()
}

func (t *serialTx) Rollback() error {
	defer t.end()
	return t.Tx.Rollback()
}

func (t *serialTx) end() {
	if t.c.tx == t {
		t.c.tx = nil
		t.c.unlock()
	}
}

// serialStmt is a prepared statement of a serialConn.
type serialStmt struct {
	driver.Stmt
	c *serialConn
}

func (s *serialStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if s.c.tx == nil {
		if err := s.c.lock(ctx); err != nil {
			return nil, err
		}
		defer s.c.unlock()
	}
	if e, ok := s.Stmt.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	return nil, errors.New("writelock: the driver's statement lacks ExecContext")
}

func (s *serialStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	return nil, errors.New("writelock: the driver's statement lacks QueryContext")
}
