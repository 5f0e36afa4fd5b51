package idempotency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stampede-dev/stampede/platform/web"
)

// fakeDB begins fakeTx transactions and remembers how each ended (the
// first of Commit and Rollback: pgx.BeginFunc rolls back after a commit,
// which does nothing).
type fakeDB struct {
	tx    *fakeTx
	ended string // "commit" or "rollback"
}

func (d *fakeDB) Begin(context.Context) (pgx.Tx, error) { return &endTx{d.tx, d}, nil }

// endTx is a fakeTx that can be committed or rolled back, as pgx.BeginFunc does.
type endTx struct {
	*fakeTx
	db *fakeDB
}

func (t *endTx) Commit(context.Context) error   { t.end("commit"); return nil }
func (t *endTx) Rollback(context.Context) error { t.end("rollback"); return nil }

func (t *endTx) end(how string) {
	if t.db.ended == "" {
		t.db.ended = how
	}
}

const lockSQL = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"

func TestDo(t *testing.T) {
	now := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	req := body{"o-1", 1}
	errWork := errors.New("stock row gone")
	created := func(_ pgx.Tx, in *Request) error {
		return in.Record(context.Background(), http.StatusCreated, req, "made")
	}
	tests := []struct {
		name      string
		keyRow    []any
		work      func(pgx.Tx, *Request) error
		want      Result
		wantErr   error
		wantWork  bool
		wantEnded string
	}{
		{"ok/new key: the work's answer", nil, created,
			Result{Code: http.StatusCreated, Body: json.RawMessage(`{"orderId":"o-1","qty":1}`), Outcome: "made"}, nil, true, "commit"},
		{"ok/repeat: the first answer, no work", []any{Hash(req), http.StatusConflict, json.RawMessage(`{"error":"x"}`)}, created,
			Result{Code: http.StatusConflict, Body: json.RawMessage(`{"error":"x"}`), Replayed: true, Outcome: OutcomeReplayed}, nil, false, "commit"},
		{"err/other body", []any{Hash(body{"o-1", 2}), http.StatusCreated, json.RawMessage(`{}`)}, created, Result{}, errReused, false, "rollback"},
		{"err/work fails: rolled back", nil, func(pgx.Tx, *Request) error { return errWork }, Result{}, errWork, true, "rollback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := &fakeDB{tx: &fakeTx{keyRow: tt.keyRow}}
			worked := false
			got, err := scope.Do(context.Background(), db, "k-1", "o-1", req, now, func(tx pgx.Tx, in *Request) error {
				worked = true
				return tt.work(tx, in)
			})
			if !errors.Is(err, tt.wantErr) || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Do = %+v, %v; want %+v, %v", got, err, tt.want, tt.wantErr)
			}
			if worked != tt.wantWork || db.ended != tt.wantEnded {
				t.Errorf("worked %v, ended %q; want %v, %q", worked, db.ended, tt.wantWork, tt.wantEnded)
			}
		})
	}
}

func TestUndoLocksClosesThenWorks(t *testing.T) {
	now := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name      string
		workErr   error
		wantEnded string
	}{
		{"ok/committed", nil, "commit"},
		{"err/work fails: rolled back, the order stays open", errors.New("x"), "rollback"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := &fakeDB{tx: &fakeTx{}}
			var execsAtWork []string
			err := scope.Undo(context.Background(), db, "o-1", "", now, func(pgx.Tx) error {
				execsAtWork = append([]string(nil), db.tx.execs...)
				return tt.workErr
			})
			if !errors.Is(err, tt.workErr) || db.ended != tt.wantEnded {
				t.Fatalf("Undo = %v, ended %q; want %v, %q", err, db.ended, tt.workErr, tt.wantEnded)
			}
			if len(execsAtWork) != 2 || execsAtWork[0] != lockSQL+" svc-order:o-1" || !strings.HasPrefix(execsAtWork[1], "INSERT INTO closed_orders") {
				t.Errorf("before the work: %q, want the order's lock then its closing", execsAtWork)
			}
		})
	}
}

func TestLockedTakesOnlyTheOrdersLock(t *testing.T) {
	db := &fakeDB{tx: &fakeTx{}}
	if err := scope.Locked(context.Background(), db, "o-1", func(pgx.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{lockSQL + " svc-order:o-1"}; !reflect.DeepEqual(db.tx.execs, want) || db.ended != "commit" {
		t.Errorf("execs %q, ended %q; want %q, commit", db.tx.execs, db.ended, want)
	}
}

// orderRow answers the order_id query of OrderOf.
type orderRow struct {
	sql string
	row row
}

func (q *orderRow) QueryRow(_ context.Context, sql string, _ ...any) pgx.Row {
	q.sql = sql
	return q.row
}

func TestOrderOf(t *testing.T) {
	errNotFound := errors.New("svc: not found")
	const id = "0c37cbf7-9527-4e2a-8fca-3364eda5ab00"
	tests := []struct {
		name, id string
		row      row
		want     string
		wantErr  string
	}{
		{"ok/found", id, row{vals: []any{"o-1"}}, "o-1", ""},
		{"err/not a UUID: no query", "r-1", row{vals: []any{"o-1"}}, "", errNotFound.Error()},
		{"err/no row", id, row{err: pgx.ErrNoRows}, "", errNotFound.Error()},
		{"err/query fails", id, row{err: errors.New("conn reset")}, "", "find charge " + id + ": conn reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &orderRow{row: tt.row}
			got, err := OrderOf(context.Background(), q, "charge", tt.id, errNotFound)
			if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && err.Error() != tt.wantErr) {
				t.Fatalf("OrderOf = %q, %v; want %q, %q", got, err, tt.want, tt.wantErr)
			}
			if tt.name == "err/not a UUID: no query" && q.sql != "" {
				t.Errorf("queried %q for an id that is not a UUID", q.sql)
			}
			if tt.name == "ok/found" && q.sql != "SELECT order_id FROM charges WHERE id = $1" {
				t.Errorf("query %q, want the charges table", q.sql)
			}
		})
	}
}

// guardRow answers Guard's query: whether the saga's step key was answered,
// whether the order is closed.
type guardRow struct {
	owned, closed bool
	err           error
	args          []any
}

func (g *guardRow) QueryRow(_ context.Context, _ string, args ...any) pgx.Row {
	g.args = args
	return row{vals: []any{g.owned, g.closed}, err: g.err}
}

// An undo of the saga's work from outside the saga is refused while the
// order is open; the saga's compensation, an order already compensated and
// work the saga did not do are let through.
func TestGuard(t *testing.T) {
	saga := Scope{Name: "payments", Saga: SagaKeys{Step: "charge", Undo: "refund"}}
	tests := []struct {
		name          string
		scope         Scope
		key           string
		owned, closed bool
		wantQuery     bool
		wantOwned     bool
	}{
		{"ok/the saga's compensation", saga, "o-1:refund", true, false, false, false},
		{"ok/no saga keys: nothing guarded", scope, "", true, false, false, false},
		{"ok/not the saga's work", saga, "", false, false, true, false},
		{"ok/compensated already", saga, "", true, true, true, false},
		{"err/by hand, no key", saga, "", true, false, true, true},
		{"err/by hand, another key", saga, "my-refund", true, false, true, true},
		{"err/the key of another order's compensation", saga, "o-2:refund", true, false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &guardRow{owned: tt.owned, closed: tt.closed}
			err := tt.scope.Guard(context.Background(), q, "o-1", tt.key)
			if got := errors.Is(err, ErrSagaOwned); got != tt.wantOwned || (err != nil && !tt.wantOwned) {
				t.Fatalf("Guard = %v, want refused: %v", err, tt.wantOwned)
			}
			if (q.args != nil) != tt.wantQuery {
				t.Errorf("queried %v, want a query: %v", q.args, tt.wantQuery)
			}
			if tt.wantQuery && (q.args[0] != "o-1:charge" || q.args[1] != "o-1") {
				t.Errorf("query args %v, want the saga's step key and the order", q.args)
			}
			var so *SagaOwnedError
			if tt.wantOwned && (!errors.As(err, &so) || so.OrderID != "o-1") {
				t.Errorf("refusal %v does not name the order", err)
			}
		})
	}
	if err := saga.Guard(context.Background(), &guardRow{err: errors.New("conn reset")}, "o-1", ""); err == nil || errors.Is(err, ErrSagaOwned) {
		t.Errorf("Guard with a failing query = %v, want the query's error", err)
	}
}

func TestRefuseSagaOwned(t *testing.T) {
	err := RefuseSagaOwned("id", fmt.Errorf("refund charge c-1: %w", &SagaOwnedError{OrderID: "o-1"}))
	var we *web.Error
	if !errors.As(err, &we) || we.Status != http.StatusConflict || we.Message != CodeSagaOwned || we.Field != "id" ||
		we.Extra["orderId"] != "o-1" || !strings.Contains(we.Extra["detail"].(string), "/v1/orders/o-1/cancel") {
		t.Fatalf("RefuseSagaOwned = %#v, want a 409 saga_owned naming id and the order", err)
	}
	other := errors.New("x")
	if got := RefuseSagaOwned("id", other); got != other {
		t.Errorf("RefuseSagaOwned(other) = %v, want it unchanged", got)
	}
	if got := RefuseSagaOwned("id", nil); got != nil {
		t.Errorf("RefuseSagaOwned(nil) = %v, want nil", got)
	}
}
