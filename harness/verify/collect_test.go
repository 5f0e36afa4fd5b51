package verify

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestReadLedger(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "ledger.jsonl")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := `{"orderId":"o1","idempotencyKey":"k1","userId":"u1","expect":"complete","code":201,"acceptedAt":"2026-11-25T10:00:00.5Z","outcome":"acked","sentAt":"2026-11-25T10:00:00.4Z","ms":100.5,"attempts":1}
{"orderId":"","idempotencyKey":"k2","userId":"u2","expect":"declined","code":0,"acceptedAt":"","outcome":"unknown","sentAt":"2026-11-25T10:00:01Z","ms":10000,"attempts":2,"error":"timeout"}

`
	got, err := ReadLedger(write(ok))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if len(got) != 2 || got[0].OrderID != "o1" || got[0].AcceptedAt.IsZero() || got[0].Ms != 100.5 ||
		got[1].Outcome != OutcomeUnknown || !got[1].AcceptedAt.IsZero() || got[1].Attempts != 2 {
		t.Errorf("got %+v", got)
	}
	for name, body := range map[string]string{
		"err/not json":         "{\n",
		"err/unknown outcome":  `{"outcome":"maybe"}`,
		"err/acked without id": `{"outcome":"acked","orderId":""}`,
		"err/bad acceptedAt":   `{"outcome":"acked","orderId":"x","acceptedAt":"yesterday"}`,
	} {
		if _, err := ReadLedger(write(body)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%s: got %v, want an error naming line 1", name, err)
		}
	}
}

// The stock gate counts what the orders the stores show succeeded hold
// from the ledger's items (what was ordered), never from the platform's
// reservation rows: a hold with no reservation behind it is a leak too.
func TestCheckStock(t *testing.T) {
	lines := map[string]LedgerLine{
		"ok":   {Items: []LedgerItem{{SKU: "A", Qty: 2}}},
		"comp": {Items: []LedgerItem{{SKU: "A", Qty: 5}}},
		"leak": {Items: []LedgerItem{{SKU: "B", Qty: 1}}},
	}
	vs := []Verdict{{OrderID: "ok", Class: ClassOK, Holds: true}, {OrderID: "comp", Class: ClassCompensated}, {OrderID: "leak", Class: ClassInconsistent}}
	start := Stock{"A": 10, "B": 10}
	if got := CheckStock(start, Stock{"A": 8, "B": 10}, vs, lines, nil); len(got) != 0 {
		t.Errorf("stock back: got mismatches %+v, want none", got)
	}
	got := CheckStock(start, Stock{"A": 8, "B": 9}, vs, lines, nil)
	if len(got) != 1 || got[0].SKU != "B" || got[0].Want != 10 || got[0].Got != 9 {
		t.Errorf("leaked unit of B: got %+v, want one mismatch on B (want 10, got 9)", got)
	}
	// Another client reserved one B meanwhile: not this run's leak.
	if got := CheckStock(start, Stock{"A": 8, "B": 9}, vs, lines, Stock{"B": -1}); len(got) != 0 {
		t.Errorf("others' reservation: got mismatches %+v, want none", got)
	}
	// An ok order that is inconsistent for another reason (a wrong amount)
	// still holds its stock: one finding does not turn into two.
	vs[0].Class = ClassInconsistent
	if got := CheckStock(start, Stock{"A": 8, "B": 10}, vs, lines, nil); len(got) != 0 {
		t.Errorf("held by an inconsistent but shipped order: got mismatches %+v, want none", got)
	}
}

// TestReadLedgerGolden reads the ledger lines xk6-orders' TestLedgerGolden
// pins byte for byte: if the writer's format drifts (and its golden file
// with it) or this reader's does, one of the two tests fails.
func TestReadLedgerGolden(t *testing.T) {
	got, err := ReadLedger(filepath.Join("..", "..", "xk6-orders", "orders", "testdata", "ledger.golden.jsonl"))
	if err != nil {
		t.Fatalf("read the ledger xk6-orders writes: %v", err)
	}
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	want := []Attempt{
		{LedgerLine: LedgerLine{OrderID: "0b9d2f4e-6a3c-4d0e-9f1a-2c3b4d5e6f70", IdempotencyKey: "r1:baseline:s1:i1", UserID: "u-17",
			Expect: ExpectComplete, Code: 202, AcceptedAt: at("2026-11-25T10:00:00.512345678Z"), Outcome: OutcomeAcked,
			TotalCents: 4599, Items: []LedgerItem{{SKU: "SKU-00001", Qty: 2, PriceCents: 1999}, {SKU: "SKU-00042", Qty: 1, PriceCents: 601}}},
			SentAt: at("2026-11-25T10:00:00.4Z"), Ms: 112.5, Attempts: 1},
		{LedgerLine: LedgerLine{IdempotencyKey: "r1:baseline:s1:i2", UserID: "u-3", Expect: ExpectDeclined, Code: 400, Outcome: OutcomeRejected},
			SentAt: at("2026-11-25T10:00:01Z"), Ms: 3.25, Attempts: 1, Error: "shippingAddress.country: required"},
		{LedgerLine: LedgerLine{IdempotencyKey: "r1:chaos:s1:i3", UserID: "u-9000", Expect: ExpectOutOfStock, Outcome: OutcomeUnknown,
			TotalCents: 120, Items: []LedgerItem{{SKU: "SKU-OOS", Qty: 1, PriceCents: 120}}},
			SentAt: at("2026-11-25T10:00:02.000001Z"), Ms: 10000, Attempts: 2, Error: "request timeout"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

// stockRows is pgx.Rows over in-memory (sku, quantity) rows.
type stockRows struct {
	pgx.Rows // unused methods panic
	rows     [][2]any
	i        int
}

func (r *stockRows) Next() bool { r.i++; return r.i <= len(r.rows) }
func (r *stockRows) Scan(dst ...any) error {
	*dst[0].(*string), *dst[1].(*int64) = r.rows[r.i-1][0].(string), r.rows[r.i-1][1].(int64)
	return nil
}
func (r *stockRows) Err() error { return nil }
func (r *stockRows) Close()     {}

func TestScanStock(t *testing.T) {
	rows := [][2]any{{"A", int64(3)}, {"B", int64(0)}, {"C", int64(-2)}}
	for _, tc := range []struct {
		name     string
		skipZero bool
		want     Stock
	}{
		{"ok/stock keeps zero", false, Stock{"A": 3, "B": 0, "C": -2}},
		{"ok/delta skips zero", true, Stock{"A": 3, "C": -2}},
	} {
		got, err := scanStock(&stockRows{rows: rows}, tc.skipZero)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}
