package orders

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/ledger.golden.jsonl from the ledger writer")

// goldenLedger is testdata/ledger.golden.jsonl: one line of each outcome.
// harness/verify's TestReadLedgerGolden reads the same file, so the writer
// here and the chaos verifier's reader are pinned to the same bytes.
const goldenLedger = "testdata/ledger.golden.jsonl"

var goldenLines = []LedgerLine{
	{OrderID: "0b9d2f4e-6a3c-4d0e-9f1a-2c3b4d5e6f70", IdempotencyKey: "r1:baseline:s1:i1", UserID: "u-17",
		Expect: "complete", Code: 202, AcceptedAt: "2026-11-25T10:00:00.512345678Z", Outcome: OutcomeAcked,
		SentAt: "2026-11-25T10:00:00.4Z", Ms: 112.5, Attempts: 1, TotalCents: 4599,
		Items: []LedgerItem{{SKU: "SKU-00001", Qty: 2, PriceCents: 1999}, {SKU: "SKU-00042", Qty: 1, PriceCents: 601}}, AckTotalCents: 4599,
		Scenario: "baseline"},
	{IdempotencyKey: "r1:baseline:s1:i2", UserID: "u-3", Expect: "declined", Code: 400,
		Outcome: OutcomeRejected, SentAt: "2026-11-25T10:00:01Z", Ms: 3.25, Attempts: 1,
		Error: "shippingAddress.country: required", Scenario: "baseline"},
	{IdempotencyKey: "r1:chaos:s1:i3", UserID: "u-9000", Expect: "out_of_stock",
		Outcome: OutcomeUnknown, SentAt: "2026-11-25T10:00:02.000001Z", Ms: 10000, Attempts: 2,
		TotalCents: 120, Items: []LedgerItem{{SKU: "SKU-OOS", Qty: 1, PriceCents: 120}}, Error: "request timeout"},
}

// TestLedgerGolden writes goldenLines through the ledger every VU uses and
// compares the bytes with the golden file. Run with -update after a
// deliberate format change, then make harness/verify read it.
func TestLedgerGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	var ls ledgers
	l, err := ls.open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range goldenLines {
		if err := l.write(line); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(goldenLedger, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenLedger)
	if err != nil {
		t.Fatalf("%v (run go test -run TestLedgerGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("ledger bytes changed:\ngot:\n%s\nwant (%s):\n%s", got, goldenLedger, want)
	}
}
