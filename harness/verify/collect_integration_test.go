//go:build integration

package verify

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/inventory"
	"github.com/stampede-dev/stampede/platform/notification"
	"github.com/stampede-dev/stampede/platform/order"
	"github.com/stampede-dev/stampede/platform/payment"
	"github.com/stampede-dev/stampede/platform/postgres"
	"github.com/stampede-dev/stampede/platform/shipping"
)

// fixtureDB creates (once) a database of its own on the stack's PostgreSQL
// and applies every service's real migrations to fresh schemas, so the
// collectors' SQL is checked against the tables the services really make.
func fixtureDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, config.PostgresURL())
	if err != nil {
		t.Fatalf("the stack's PostgreSQL is not reachable: %v", err)
	}
	const name = "stampede_verify_test"
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("create database: %v", err)
	}
	admin.Close(ctx)
	u, err := url.Parse(config.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	for _, s := range []struct {
		schema string
		fs     fs.FS
	}{
		{order.Schema, order.Migrations()},
		{inventory.Schema, inventory.Migrations()},
		{payment.Schema, payment.Migrations()},
		{shipping.Schema, shipping.Migrations()},
		{notification.Schema, notification.Migrations()},
	} {
		p, err := postgres.Open(ctx, u.String(), s.schema, 2, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Exec(ctx, "DROP SCHEMA "+s.schema+" CASCADE; CREATE SCHEMA "+s.schema); err != nil {
			t.Fatalf("reset %s: %v", s.schema, err)
		}
		if err := postgres.Migrate(ctx, p, s.schema, s.fs); err != nil {
			t.Fatalf("migrate %s: %v", s.schema, err)
		}
		p.Close()
	}
	pool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestCollectorsOnTheServicesRealTables(t *testing.T) {
	db := fixtureDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const (
		okID   = "00000000-0000-0000-0000-00000000000a"
		compID = "00000000-0000-0000-0000-00000000000b"
		dupID  = "00000000-0000-0000-0000-00000000000c"
	)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	now := time.Now()
	for _, o := range []struct{ id, status, key string }{{okID, "in_transit", "k-ok"}, {compID, "failed", "k-comp"}, {dupID, "shipped", "k-dup"}} {
		exec(`INSERT INTO orders.orders (id, user_id, currency, total_cents, items, shipping_address, payment_method, status, correlation_id, idempotency_key, created_at, updated_at)
VALUES ($1, 'u', 'EUR', 1000, '[]', '{}', 'tok_visa', $2, $5, $3, $4, $4)`, o.id, o.status, o.key, now, o.id)
	}
	exec(`INSERT INTO inventory.stock (sku, warehouse_id, on_hand, reserved) VALUES ('SKU-1', 'w', 10, 2), ('SKU-2', 'w', 5, 0)`)
	exec(`INSERT INTO inventory.reservations (id, order_id, idempotency_key, status, created_at, released_at) VALUES
('10000000-0000-0000-0000-000000000001', $1, 'r1', 'reserved', now(), NULL),
('10000000-0000-0000-0000-000000000002', $2, 'r2', 'released', now(), now()),
('10000000-0000-0000-0000-000000000003', $3, 'r3', 'reserved', now(), NULL)`, okID, compID, dupID)
	exec(`INSERT INTO inventory.reservation_items (reservation_id, line, sku, qty, warehouse_id) VALUES
('10000000-0000-0000-0000-000000000001', 1, 'SKU-1', 2, 'w'), ('10000000-0000-0000-0000-000000000001', 2, 'SKU-2', 1, 'w'),
('10000000-0000-0000-0000-000000000002', 1, 'SKU-1', 3, 'w')`)
	exec(`INSERT INTO payments.charges (id, order_id, idempotency_key, status, amount_cents, currency, created_at) VALUES
('20000000-0000-0000-0000-000000000001', $1, 'c1', 'captured', 1000, 'EUR', now()),
('20000000-0000-0000-0000-000000000002', $2, 'c2', 'refunded', 1000, 'EUR', now()),
('20000000-0000-0000-0000-000000000003', $3, 'c3', 'captured', 1000, 'EUR', now())`, okID, compID, dupID)
	exec(`INSERT INTO payments.refunds (id, charge_id, order_id, amount_cents, currency, created_at) VALUES
('30000000-0000-0000-0000-000000000002', '20000000-0000-0000-0000-000000000002', $1, 1000, 'EUR', now())`, compID)
	exec(`INSERT INTO shipping.shipments (id, order_id, idempotency_key, content_hash, status, tracking_number, items, address, created_at) VALUES
('40000000-0000-0000-0000-000000000001', $1, 's1', '\x00', 'created', 't1', '[]', '{}', now()),
('40000000-0000-0000-0000-000000000003', $2, 's3', '\x00', 'created', 't3', '[]', '{}', now())`, okID, dupID)
	exec(`INSERT INTO notifications.deliveries (order_id, template, channel, status) VALUES
($1, 'order-shipped', 'email', 'delivered'), ($2, 'order-failed', 'email', 'delivered'), ($3, 'order-shipped', 'email', 'delivered')`, okID, compID, dupID)
	exec(`INSERT INTO notifications.contacts (user_id, email) VALUES ('u', 'a@x')`)
	exec(`INSERT INTO notifications.sandbox_messages (idempotency_key, order_id, template, channel, recipient, process_id, received_at, accepted_at, duplicate) VALUES
('m1', $1, 'order-shipped', 'email', 'a@x', 'p', now(), now(), false),
('m1', $1, 'order-shipped', 'email', 'a@x', 'p', now(), now(), true),
('m2', $2, 'order-failed', 'email', 'a@x', 'p', now(), now(), false),
('m3', $3, 'order-shipped', 'email', 'a@x', 'p', now(), now(), false),
('m3-again', $3, 'order-shipped', 'email', 'a@x', 'p', now(), now(), false)`, okID, compID, dupID)

	d := DBFacts{DB: db}
	attempts := []Attempt{
		{LedgerLine: LedgerLine{OrderID: okID, Expect: ExpectComplete, Outcome: OutcomeAcked}},
		{LedgerLine: LedgerLine{OrderID: compID, Expect: ExpectDeclined, Outcome: OutcomeAcked}},
		{LedgerLine: LedgerLine{IdempotencyKey: "k-dup", Expect: ExpectComplete, Outcome: OutcomeUnknown}},
		{LedgerLine: LedgerLine{IdempotencyKey: "never-arrived", Expect: ExpectComplete, Outcome: OutcomeUnknown}},
	}
	if err := d.Resolve(ctx, attempts); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if attempts[2].OrderID != dupID || attempts[3].OrderID != "" {
		t.Fatalf("resolve by idempotency key: got %q and %q, want %s and nothing", attempts[2].OrderID, attempts[3].OrderID, dupID)
	}
	facts := map[string]*Facts{okID: {}, compID: {}, dupID: {}}
	if gaps := d.Fill(ctx, facts); len(gaps) > 0 {
		t.Fatalf("fill: %v", gaps)
	}
	ok := facts[okID]
	if ok.Order == nil || ok.Order.Status != "in_transit" || ok.Order.UserID != "u" || ok.Order.TotalCents != 1000 || len(ok.Reservations) != 1 || ok.Reservations[0].Items["SKU-1"] != 2 ||
		len(ok.Charges) != 1 || !ok.Charges[0].Captured || len(ok.Shipments) != 1 || len(ok.Deliveries) != 1 || ok.Received["order-shipped"]["email"] != 1 ||
		ok.Contact == nil || !ok.Contact.Email || ok.Contact.SMS {
		t.Errorf("ok order facts: %+v", ok)
	}
	comp := facts[compID]
	if len(comp.Charges) != 1 || !comp.Charges[0].Captured || comp.Charges[0].RefundedCents != 1000 || comp.Charges[0].Refunds != 1 || comp.Charges[0].LastRefundAt.IsZero() ||
		!comp.Reservations[0].Released || comp.Reservations[0].ReleasedAt.IsZero() {
		t.Errorf("compensated order facts: %+v", comp)
	}
	// The provider accepted two messages under two keys: received twice.
	if got := facts[dupID].Received["order-shipped"]["email"]; got != 2 {
		t.Errorf("twice-sent notification: received %d, want 2", got)
	}

	// Classify with Temporal's side (read from the history in a real run) stubbed.
	running := []Workflow{{RunID: "r", Status: "Running"}}
	facts[okID].Workflows, facts[dupID].Workflows = running, running
	facts[compID].Workflows = []Workflow{{RunID: "r", Status: "Completed"}}
	facts[compID].History = &History{Start: now, Closed: "Completed", Steps: []StepRun{{Activity: "Reserve", Attempts: 1},
		{Activity: "Charge", Attempts: 1, Failed: true, Business: true, Message: "card_declined", Start: now, End: now}}}
	want := map[string]string{okID: ClassOK, compID: ClassCompensated, dupID: ClassDuplicated, "": ClassRejected}
	lines := map[string]LedgerLine{okID: {TotalCents: 1000, Items: []LedgerItem{{SKU: "SKU-1", Qty: 2}, {SKU: "SKU-2", Qty: 1}}}}
	for _, a := range attempts {
		f := Facts{}
		if p := facts[a.OrderID]; p != nil {
			f = *p
		}
		if l, ok := lines[a.OrderID]; ok {
			a.TotalCents, a.Items = l.TotalCents, l.Items
		}
		if got := Classify(a.LedgerLine, f, Env{}); got.Class != want[a.OrderID] {
			t.Errorf("%s: got %s (%v), want %s", a.OrderID, got.Class, got.Reasons, want[a.OrderID])
		}
	}

	// Nothing beyond the ledger, but an order and a charge nobody placed.
	orphanID := "00000000-0000-0000-0000-00000000000f"
	exec(`INSERT INTO payments.charges (id, order_id, idempotency_key, status, amount_cents, currency, created_at) VALUES
('20000000-0000-0000-0000-00000000000f', $1, 'c-orphan', 'captured', 1000, 'EUR', now())`, orphanID)
	orphans, err := d.Orphans(ctx, now.Add(-time.Minute), []string{okID, compID, dupID}, []string{orphanID})
	if err != nil || fmt.Sprint(orphans) != fmt.Sprintf("[{charge 20000000-0000-0000-0000-00000000000f (order %s)} {workflow order-%s}]", orphanID, orphanID) {
		t.Errorf("orphans: got %v, %v; want the charge and the workflow of %s", orphans, err, orphanID)
	}

	stock, err := d.ReadStock(ctx)
	if err != nil || stock["SKU-1"] != 8 || stock["SKU-2"] != 5 {
		t.Errorf("stock: got %v, %v; want SKU-1 8, SKU-2 5", stock, err)
	}
	pre, err := d.undecided(ctx, []string{okID, compID, dupID})
	if err != nil || len(pre) != 0 {
		t.Errorf("undecided: got %v, %v; want none", pre, err)
	}
	exec(`INSERT INTO notifications.notifications (order_id, template, user_id, status, requested_at) VALUES
($1, 'order-shipped', 'u', 'delivered', now()), ($2, 'order-shipped', 'u', 'delivered', now())`, okID, dupID)

	// The failed order's notification: still queued (no row), then
	// waiting for a retry, then delivered. Only the last is settled.
	ids := []string{okID, compID, dupID}
	for _, step := range []struct {
		sql  string
		want int
	}{
		{``, 1},
		{`INSERT INTO notifications.notifications (order_id, template, user_id, status, requested_at) VALUES ($1, 'order-failed', 'u', 'retrying', now())`, 1},
		{`UPDATE notifications.notifications SET status = 'delivered' WHERE order_id = $1`, 0},
	} {
		if step.sql != "" {
			exec(step.sql, compID)
		}
		if n, err := d.Unnotified(ctx, ids); err != nil || n != step.want {
			t.Errorf("unnotified after %q: got %d, %v; want %d", step.sql, n, err, step.want)
		}
	}
}
