package idempotency

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var errReused = errors.New("test: key reused")

var scope = Scope{Name: "svc", Reused: errReused}

// fakeTx is the part of a transaction the package uses: Exec records what
// ran, QueryRow answers from stored rows. The embedded nil pgx.Tx panics on
// anything else, so a new use shows here first.
type fakeTx struct {
	pgx.Tx
	execs  []string // the SQL and first argument of each Exec
	args   [][]any  // the arguments of each Exec
	keyRow []any    // request_hash, status_code, response of the stored key; nil: none
	closed bool     // closed_orders has the order
	err    error    // QueryRow's error, when set
}

func (f *fakeTx) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	line := sql
	if len(args) > 0 {
		if s, ok := args[0].(string); ok {
			line += " " + s
		}
	}
	f.execs = append(f.execs, line)
	f.args = append(f.args, args)
	return pgconn.CommandTag{}, nil
}

func (f *fakeTx) QueryRow(_ context.Context, sql string, _ ...any) pgx.Row {
	switch {
	case f.err != nil:
		return row{err: f.err}
	case strings.Contains(sql, "FROM idempotency_keys"):
		if f.keyRow == nil {
			return row{err: pgx.ErrNoRows}
		}
		return row{vals: f.keyRow}
	case strings.Contains(sql, "FROM closed_orders"):
		return row{vals: []any{f.closed}}
	}
	return row{err: errors.New("fakeTx: unexpected query " + sql)}
}

type row struct {
	vals []any
	err  error
}

func (r row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	for i, d := range dest {
		reflect.ValueOf(d).Elem().Set(reflect.ValueOf(r.vals[i]))
	}
	return nil
}

type body struct {
	OrderID string `json:"orderId"`
	Qty     int    `json:"qty"`
}

func TestHash(t *testing.T) {
	a, b := body{"o-1", 1}, body{"o-1", 2}
	if got, want := len(Hash(a)), 32; got != want {
		t.Fatalf("len(Hash) = %d, want %d (sha256)", got, want)
	}
	if string(Hash(a)) != string(Hash(body{"o-1", 1})) {
		t.Error("Hash of equal bodies differs")
	}
	if string(Hash(a)) == string(Hash(b)) {
		t.Error("Hash of different bodies is the same")
	}
}

func TestBegin(t *testing.T) {
	first := body{"o-1", 1}
	now := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		tx      *fakeTx
		wantErr error
		want    Result
	}{
		{name: "ok/new key", tx: &fakeTx{}, want: Result{}},
		{
			name: "ok/same body replays the first answer",
			tx:   &fakeTx{keyRow: []any{Hash(first), http.StatusCreated, json.RawMessage(`{"id":"r-1"}`)}},
			want: Result{Code: http.StatusCreated, Body: json.RawMessage(`{"id":"r-1"}`), Replayed: true, Outcome: OutcomeReplayed},
		},
		{
			name:    "err/other body is the scope's error",
			tx:      &fakeTx{keyRow: []any{Hash(body{"o-1", 2}), http.StatusCreated, json.RawMessage(`{}`)}},
			wantErr: errReused,
		},
		{name: "err/read fails", tx: &fakeTx{err: errors.New("conn reset")}, wantErr: errors.New("read idempotency key: conn reset")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := scope.Begin(context.Background(), tt.tx, "k-1", "o-1", first, now)
			if tt.wantErr != nil {
				if err == nil || err.Error() != tt.wantErr.Error() {
					t.Fatalf("Begin err = %v, want %v", err, tt.wantErr)
				}
				if errors.Is(tt.wantErr, errReused) && !errors.Is(err, errReused) {
					t.Fatalf("Begin err = %v, want errors.Is %v", err, errReused)
				}
				return
			}
			if err != nil {
				t.Fatalf("Begin: %v", err)
			}
			if !reflect.DeepEqual(r.Result, tt.want) {
				t.Errorf("Result = %+v, want %+v", r.Result, tt.want)
			}
			// The key's lock, then the order's: every path takes them in this order.
			lock := "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
			if want := []string{lock + " svc-key:k-1", lock + " svc-order:o-1"}; !reflect.DeepEqual(tt.tx.execs, want) {
				t.Errorf("execs = %q, want %q", tt.tx.execs, want)
			}
		})
	}
}

func TestRecord(t *testing.T) {
	now := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	req := body{"o-1", 1}
	tests := []struct {
		name   string
		record func(context.Context, *Request) error
		want   Result
	}{
		{
			name: "ok/record",
			record: func(ctx context.Context, r *Request) error {
				return r.Record(ctx, http.StatusCreated, body{"o-1", 1}, "reserved")
			},
			want: Result{Code: http.StatusCreated, Body: json.RawMessage(`{"orderId":"o-1","qty":1}`), Outcome: "reserved"},
		},
		{
			name: "ok/record replay",
			record: func(ctx context.Context, r *Request) error {
				return r.RecordReplay(ctx, http.StatusCreated, map[string]int{"n": 1})
			},
			want: Result{Code: http.StatusCreated, Body: json.RawMessage(`{"n":1}`), Replayed: true, Outcome: OutcomeReplayed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := &fakeTx{}
			r, err := scope.Begin(context.Background(), tx, "k-1", "o-1", req, now)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.record(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.Result, tt.want) {
				t.Errorf("Result = %+v, want %+v", r.Result, tt.want)
			}
			got := tx.args[len(tx.args)-1]
			want := []any{"k-1", "o-1", Hash(req), tt.want.Code, []byte(tt.want.Body), now}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("insert args = %v, want %v", got, want)
			}
		})
	}
}

func TestRefuseClosed(t *testing.T) {
	for _, closed := range []bool{false, true} {
		tx := &fakeTx{closed: closed}
		r, err := scope.Begin(context.Background(), tx, "k-1", "o-1", body{"o-1", 1}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.RefuseClosed(context.Background(), "order_closed")
		if err != nil {
			t.Fatal(err)
		}
		if got != closed {
			t.Errorf("closed %v: RefuseClosed = %v, want %v", closed, got, closed)
		}
		want := Result{}
		if closed {
			want = Result{Code: http.StatusConflict, Body: json.RawMessage(`{"error":"order_closed","orderId":"o-1"}`), Outcome: "order_closed"}
		}
		if !reflect.DeepEqual(r.Result, want) {
			t.Errorf("closed %v: Result = %+v, want %+v", closed, r.Result, want)
		}
		if got, want := len(tx.execs), 2+map[bool]int{false: 0, true: 1}[closed]; got != want {
			t.Errorf("closed %v: %d statements, want %d (two locks, the insert only when closed)", closed, got, want)
		}
	}
}

func TestMigrationIsTable(t *testing.T) {
	if Migration.SQL != Table {
		t.Error("Migration.SQL is not Table")
	}
	// Both statements must be safe on a schema that has the tables from its
	// first migration (created before the tables moved here).
	if got, want := strings.Count(Table, "CREATE TABLE IF NOT EXISTS"), strings.Count(Table, "CREATE TABLE"); got != want || got != 2 {
		t.Errorf("Table has %d CREATE TABLE IF NOT EXISTS of %d CREATE TABLE, want 2 of 2", got, want)
	}
}

func TestStamp(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))
	tests := []struct {
		name, cid, want string
	}{
		{"ok/given", "c-1", "c-1"},
		{"ok/none: the order's", "", "o-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now, cid := Stamp(at, tt.cid, "o-1")
			if want := time.Date(2025, 1, 2, 2, 4, 5, 123456000, time.UTC); now != want || cid != tt.want {
				t.Errorf("got %v %q, want %v %q", now, cid, want, tt.want)
			}
		})
	}
}
