package main

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"os"
	"reflect"
	_ "unsafe" // go:linkname

	_ "modernc.org/sqlite" // registers "sqlite" before this package's init
)

// Temporal's SQLite plugin runs every query through database/sql without
// preparing it (sqlx Exec, Get, Select), and the modernc.org/sqlite driver
// then compiles the SQL text and throws the compiled statement away, on
// every call. In a CPU profile of this server at 10 sagas/s, compiling SQL
// (sqlite3Prepare and the parser under it) was 17.9% of the server's CPU;
// the visibility upsert, one long INSERT ... ON CONFLICT per workflow, was
// the largest. The plugin's driver name is fixed ("sqlite"), so the cache
// sits in the driver: each connection keeps its compiled statements by SQL
// text (the driver resets a statement after each use and keeps it
// compiled) and runs a query it has seen again without compiling it.
//
// database/sql has no way to wrap a registered driver, so the registry is
// reached by name (go:linkname, which the linker allows only with
// -checklinkname=0: the Makefile builds and tests this module with it).
// STAMPEDE_TEMPORAL_SQLITE_STMT_CACHE=0 leaves the statements uncached (the write lock of
// writelock.go still wraps the driver).

//go:linkname sqlDrivers database/sql.drivers
var sqlDrivers map[string]driver.Driver

// EnvStmtCache, set to 0, turns the statement cache off.
const EnvStmtCache = "STAMPEDE_TEMPORAL_SQLITE_STMT_CACHE"

// stmtCacheSize is the compiled statements one connection keeps: Temporal
// issues some hundred distinct statements; IN lists of varying length and
// visibility queries make more, which the least recently used make room for.
const stmtCacheSize = 512

// rawSQLite is the driver as modernc.org/sqlite registered it (for tests).
var rawSQLite driver.Driver

// init wraps the registered driver: the statement cache inside (unless
// turned off), the write lock (writelock.go) outside, so that a cached
// statement's Exec goes through the lock too.
func init() {
	d, ok := sqlDrivers["sqlite"]
	if !ok {
		return
	}
	rawSQLite = d
	if os.Getenv(EnvStmtCache) != "0" {
		d = stmtCacheDriver{d}
	}
	sqlDrivers["sqlite"] = serialDriver{d}
}

// stmtCacheDriver opens the wrapped driver's connections with a cache each.
type stmtCacheDriver struct{ driver.Driver }

func (d stmtCacheDriver) Open(name string) (driver.Conn, error) {
	c, err := d.Driver.Open(name)
	if err != nil {
		return nil, err
	}
	return newCachingConn(c, stmtCacheSize)
}

// cachingConn runs ExecContext and QueryContext on cached statements. Like
// every driver.Conn it is used by one goroutine at a time (database/sql
// holds the connection's lock for each call and for closing rows).
type cachingConn struct {
	connOptional
	c        driver.Conn
	exec     driver.ExecerContext
	query    driver.QueryerContext
	prep     driver.ConnPrepareContext
	max      int
	stmts    map[string]*list.Element // of *cachedStmt
	lru      list.List                // front: most recently used
	compiled int                      // statements compiled (for tests)
}

type cachedStmt struct {
	query string
	st    driver.Stmt
	exec  driver.StmtExecContext
	qry   driver.StmtQueryContext
	busy  bool // its rows are open: a second use would reset them
}

var errNotSupported = errors.New("stmtcache: the driver's connection lacks ExecContext, QueryContext or PrepareContext")

func newCachingConn(c driver.Conn, max int) (driver.Conn, error) {
	exec, ok1 := c.(driver.ExecerContext)
	query, ok2 := c.(driver.QueryerContext)
	prep, ok3 := c.(driver.ConnPrepareContext)
	if !ok1 || !ok2 || !ok3 {
		c.Close()
		return nil, errNotSupported
	}
	return &cachingConn{connOptional: connOptional{c}, c: c, exec: exec, query: query, prep: prep, max: max, stmts: map[string]*list.Element{}}, nil
}

// stmt returns the cached statement for query, compiling it on first use;
// nil when it is in use or cannot be cached (the caller goes uncached).
func (c *cachingConn) stmt(ctx context.Context, query string) *cachedStmt {
	if e, ok := c.stmts[query]; ok {
		cs := e.Value.(*cachedStmt)
		if cs.busy {
			return nil
		}
		c.lru.MoveToFront(e)
		return cs
	}
	st, err := c.prep.PrepareContext(ctx, query)
	if err != nil {
		return nil // the uncached call reports the error
	}
	c.compiled++
	exec, ok1 := st.(driver.StmtExecContext)
	qry, ok2 := st.(driver.StmtQueryContext)
	if !ok1 || !ok2 {
		st.Close()
		return nil
	}
	cs := &cachedStmt{query: query, st: st, exec: exec, qry: qry}
	c.stmts[query] = c.lru.PushFront(cs)
	for c.lru.Len() > c.max {
		c.evict(c.lru.Back())
	}
	return cs
}

func (c *cachingConn) evict(e *list.Element) {
	cs := e.Value.(*cachedStmt)
	if cs.busy {
		// Its rows still read from it: leave it until they close.
		c.lru.MoveToFront(e)
		return
	}
	c.lru.Remove(e)
	delete(c.stmts, cs.query)
	cs.st.Close()
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if cs := c.stmt(ctx, query); cs != nil {
		return cs.exec.ExecContext(ctx, args)
	}
	return c.exec.ExecContext(ctx, query, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs := c.stmt(ctx, query)
	if cs == nil {
		return c.query.QueryContext(ctx, query, args)
	}
	r, err := cs.qry.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	cs.busy = true
	return &cachedRows{Rows: r, cs: cs}, nil
}

func (c *cachingConn) Close() error {
	for e := c.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*cachedStmt).st.Close()
	}
	c.lru.Init()
	clear(c.stmts)
	return c.c.Close()
}

func (c *cachingConn) Prepare(query string) (driver.Stmt, error) { return c.c.Prepare(query) }
func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.prep.PrepareContext(ctx, query)
}
func (c *cachingConn) Begin() (driver.Tx, error) { return c.c.Begin() } //nolint:staticcheck // driver.Conn requires it

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.c.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	return c.c.Begin() //nolint:staticcheck // the driver has nothing newer
}

// connOptional passes the optional interfaces database/sql looks for on a
// connection (Pinger, SessionResetter, Validator) to the wrapped one.
type connOptional struct{ under driver.Conn }

func (o connOptional) Ping(ctx context.Context) error {
	if p, ok := o.under.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (o connOptional) ResetSession(ctx context.Context) error {
	if r, ok := o.under.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (o connOptional) IsValid() bool {
	if v, ok := o.under.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// cachedRows frees its statement for the next use when closed.
type cachedRows struct {
	driver.Rows
	cs *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.cs.busy = false
	return err
}

// The column type methods database/sql looks for on rows, passed through.

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

// What database/sql looks for on the wrapping connections.
var (
	_ driver.ConnBeginTx      = (*cachingConn)(nil)
	_ driver.Pinger           = (*cachingConn)(nil)
	_ driver.SessionResetter  = (*cachingConn)(nil)
	_ driver.Validator        = (*cachingConn)(nil)
	_ driver.ExecerContext    = (*serialConn)(nil)
	_ driver.QueryerContext   = (*serialConn)(nil)
	_ driver.ConnBeginTx      = (*serialConn)(nil)
	_ driver.Pinger           = (*serialConn)(nil)
	_ driver.SessionResetter  = (*serialConn)(nil)
	_ driver.Validator        = (*serialConn)(nil)
	_ driver.StmtExecContext  = (*serialStmt)(nil)
	_ driver.StmtQueryContext = (*serialStmt)(nil)
)
