//go:build integration

// Package scenarios holds the k6 scripts; this test runs one for real.
package scenarios

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/order"
	"github.com/stampede-dev/stampede/platform/stacktest"
)

// TestBlackFridayShortRun runs scenarios/black-friday.js for about 20 s
// against the running stack with bin/k6, then audits the ledger against the
// Orders service's own table: every acked line's order exists, and every
// order carrying this run's idempotency keys is in the ledger.
func TestBlackFridayShortRun(t *testing.T) {
	root := stacktest.Root(t)
	k6 := filepath.Join(root, "bin", "k6")
	if _, err := os.Stat(k6); err != nil {
		t.Fatalf("bin/k6 not built (make k6): %v", err)
	}
	dir := t.TempDir()
	run := fmt.Sprintf("it%d", time.Now().UnixNano())
	ledger := filepath.Join(dir, "ledger.jsonl")
	summary := filepath.Join(dir, "summary.json")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k6, "run", "--no-color", "--quiet", "--summary-export", summary, "scenarios/black-friday.js")
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"DURATION=20s", "BASE_RATE=4", "SEED=7", "RUN_ID="+run, "LEDGER="+ledger,
		"ORDERS_URL="+stacktest.URL("orders"), "K6_WEB_DASHBOARD=false",
		"ORDERS_TOKEN_FILE="+config.SecretPath(config.SecretServiceToken),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("k6 run failed: %v\n%s", err, out)
	}

	var sum struct {
		Metrics map[string]map[string]any `json:"metrics"`
	}
	b, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatalf("summary: %v", err)
	}
	// k6 reports dropped_iterations only once one is dropped.
	if d, ok := sum.Metrics["dropped_iterations"]; ok && d["count"].(float64) != 0 {
		t.Errorf("dropped_iterations = %v, want 0", d["count"])
	}
	placed := sum.Metrics["orders_placed"]
	if placed == nil || placed["count"].(float64) < 100 {
		t.Errorf("orders_placed = %v, want at least 100 in 20 s at 4..20/s", placed)
	}

	acked := map[string]string{} // order id -> idempotency key
	lines := 0
	f, err := os.Open(ledger)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines++
		var l struct{ OrderID, IdempotencyKey, Outcome string }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("ledger line %d: %v: %s", lines, err, sc.Text())
		}
		if l.Outcome == "acked" {
			if l.OrderID == "" {
				t.Errorf("ledger line %d: acked without an order id", lines)
			}
			acked[l.OrderID] = l.IdempotencyKey
		}
	}
	if len(acked) == 0 {
		t.Fatal("no acked line in the ledger")
	}

	db := stacktest.DB(t, order.Schema)
	rows, err := db.Query(ctx, `SELECT id::text, idempotency_key FROM orders WHERE idempotency_key LIKE $1`, run+":%")
	if err != nil {
		t.Fatal(err)
	}
	inDB := map[string]string{}
	for rows.Next() {
		var id, key string
		if err := rows.Scan(&id, &key); err != nil {
			t.Fatal(err)
		}
		inDB[id] = key
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id, key := range acked {
		if dbKey, ok := inDB[id]; !ok {
			t.Errorf("acked order %s (key %s) does not exist in the Orders service", id, key)
		} else if dbKey != key {
			t.Errorf("order %s: ledger key %s, stored key %s", id, key, dbKey)
		}
	}
	for id, key := range inDB {
		if _, ok := acked[id]; !ok {
			t.Errorf("order %s (key %s) exists but is missing from the ledger's acked lines", id, key)
		}
	}
	t.Logf("%d ledger lines, %d acked, %d orders of run %s in the Orders service", lines, len(acked), len(inDB), run)
}
