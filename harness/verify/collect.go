package verify

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stampede-dev/stampede/platform/inventory"
	"github.com/stampede-dev/stampede/platform/notification"
	"github.com/stampede-dev/stampede/platform/order"
	"github.com/stampede-dev/stampede/platform/payment"
	"github.com/stampede-dev/stampede/platform/shipping"
)

// Attempt is one ledger line as xk6-orders writes it: the LedgerLine the
// classifier needs plus the timing the report draws.
type Attempt struct {
	LedgerLine
	SentAt   time.Time `json:"sentAt"`
	Ms       float64   `json:"ms"`
	Attempts int       `json:"attempts"`
	Error    string    `json:"error,omitempty"`
}

// rawLine is an Attempt as it reads on disk: its times are strings that are
// empty when unknown (acceptedAt of an unacknowledged placement), so they
// shadow the Attempt's times; every other field decodes straight into it.
type rawLine struct {
	*Attempt
	AcceptedAt string `json:"acceptedAt"`
	SentAt     string `json:"sentAt"`
}

// ReadLedger reads a k6 ledger (JSON lines). A line that does not parse is
// an error naming its line number: a ledger the verifier cannot read proves
// nothing.
func ReadLedger(path string) ([]Attempt, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	defer f.Close()
	var out []Attempt
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var a Attempt
		r := rawLine{Attempt: &a}
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("ledger %s line %d: %w", path, n, err)
		}
		switch r.Outcome {
		case OutcomeAcked, OutcomeRejected, OutcomeUnknown:
		default:
			return nil, fmt.Errorf("ledger %s line %d: outcome %q: want acked, rejected or unknown", path, n, r.Outcome)
		}
		if r.AcceptedAt != "" {
			if a.AcceptedAt, err = time.Parse(time.RFC3339Nano, r.AcceptedAt); err != nil {
				return nil, fmt.Errorf("ledger %s line %d: acceptedAt: %w", path, n, err)
			}
		}
		if r.SentAt != "" {
			if a.SentAt, err = time.Parse(time.RFC3339Nano, r.SentAt); err != nil {
				return nil, fmt.Errorf("ledger %s line %d: sentAt: %w", path, n, err)
			}
		}
		if r.Outcome == OutcomeAcked && r.OrderID == "" {
			return nil, fmt.Errorf("ledger %s line %d: acked without an orderId", path, n)
		}
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	return out, nil
}

// Tables are every table the audit reads: a store without one of them
// cannot be judged.
var Tables = []string{
	"orders.orders", "orders.outbox", "inventory.stock", "inventory.reservations", "inventory.reservation_items",
	"payments.charges", "payments.refunds", "shipping.shipments",
	"notifications.notifications", "notifications.deliveries", "notifications.sandbox_messages", "notifications.contacts",
}

// querier is the part of a pgx pool the collectors use.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

var _ querier = (*pgxpool.Pool)(nil)

// DBFacts reads the services' PostgreSQL stores.
type DBFacts struct {
	DB querier
}

// Resolve fills in the order id of unacknowledged placements whose
// idempotency key reached the Orders service, so they are audited too.
func (d DBFacts) Resolve(ctx context.Context, attempts []Attempt) error {
	var keys []string
	for _, a := range attempts {
		if a.OrderID == "" && a.IdempotencyKey != "" {
			keys = append(keys, a.IdempotencyKey)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	rows, err := d.DB.Query(ctx, `SELECT idempotency_key, id::text FROM orders.orders WHERE idempotency_key = ANY($1)`, keys)
	if err != nil {
		return fmt.Errorf("orders.orders by idempotency key: %w", err)
	}
	byKey := map[string]string{}
	for rows.Next() {
		var k, id string
		if err := rows.Scan(&k, &id); err != nil {
			return err
		}
		byKey[k] = id
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("orders.orders by idempotency key: %w", err)
	}
	for i := range attempts {
		if attempts[i].OrderID == "" {
			attempts[i].OrderID = byKey[attempts[i].IdempotencyKey]
		}
	}
	return nil
}

// Fill reads every store for the orders in facts (keyed by order id). Each
// store that cannot be read is reported in the returned gaps and the others
// are still read: a missing store must fail the run, loudly, by name.
func (d DBFacts) Fill(ctx context.Context, facts map[string]*Facts) (gaps []string) {
	ids := make([]string, 0, len(facts))
	for id := range facts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, step := range []struct {
		what string
		fn   func(context.Context, []string, map[string]*Facts) error
	}{
		{"orders.orders", d.orders},
		{"inventory.reservations", d.reservations},
		{"payments.charges", d.charges},
		{"shipping.shipments", d.shipments},
		{"notifications.deliveries", d.deliveries},
		{"notifications.sandbox_messages", d.received},
		{"notifications.contacts", d.contacts}, // after orders: by their users
	} {
		if err := step.fn(ctx, ids, facts); err != nil {
			gaps = append(gaps, fmt.Sprintf("%s: %v", step.what, err))
		}
	}
	return gaps
}

func (d DBFacts) orders(ctx context.Context, ids []string, facts map[string]*Facts) error {
	rows, err := d.DB.Query(ctx, `SELECT id::text, user_id, status, failure_reason, total_cents, created_at FROM orders.orders WHERE id::text = ANY($1)`, ids)
	if err != nil {
		return err
	}
	return scanEach(rows, func() error {
		var o Order
		if err := rows.Scan(&o.ID, &o.UserID, &o.Status, &o.FailureReason, &o.TotalCents, &o.CreatedAt); err != nil {
			return err
		}
		if f := facts[o.ID]; f != nil {
			f.Order = &o
		}
		return nil
	})
}

func (d DBFacts) reservations(ctx context.Context, ids []string, facts map[string]*Facts) error {
	rows, err := d.DB.Query(ctx, `
SELECT r.id::text, r.order_id, r.status, r.created_at, r.released_at, coalesce(ri.sku, ''), coalesce(ri.qty, 0)
FROM inventory.reservations r LEFT JOIN inventory.reservation_items ri ON ri.reservation_id = r.id
WHERE r.order_id = ANY($1) ORDER BY r.id`, ids)
	if err != nil {
		return err
	}
	index := map[string]int{} // reservation id -> position in its order's facts
	return scanEach(rows, func() error {
		var id, order, status, sku string
		var created time.Time
		var released *time.Time
		var qty int64
		if err := rows.Scan(&id, &order, &status, &created, &released, &sku, &qty); err != nil {
			return err
		}
		f := facts[order]
		if f == nil {
			return nil
		}
		i, ok := index[id]
		if !ok {
			r := Reservation{ID: id, Released: status == inventory.StatusReleased, Items: map[string]int{}, CreatedAt: created}
			if released != nil {
				r.ReleasedAt = *released
			}
			f.Reservations = append(f.Reservations, r)
			i = len(f.Reservations) - 1
			index[id] = i
		}
		if sku != "" {
			f.Reservations[i].Items[sku] += int(qty)
		}
		return nil
	})
}

func (d DBFacts) charges(ctx context.Context, ids []string, facts map[string]*Facts) error {
	rows, err := d.DB.Query(ctx, `
SELECT c.id::text, c.order_id::text, c.status, c.amount_cents, c.created_at,
       coalesce(sum(r.amount_cents), 0)::bigint, count(r.id), max(r.created_at)
FROM payments.charges c LEFT JOIN payments.refunds r ON r.charge_id = c.id
WHERE c.order_id::text = ANY($1) GROUP BY c.id, c.order_id, c.status, c.amount_cents, c.created_at ORDER BY c.id`, ids)
	if err != nil {
		return err
	}
	return scanEach(rows, func() error {
		var c Charge
		var order, status string
		var refunds int64
		var lastRefund *time.Time
		if err := rows.Scan(&c.ID, &order, &status, &c.AmountCents, &c.CreatedAt, &c.RefundedCents, &refunds, &lastRefund); err != nil {
			return err
		}
		// Money moved when the charge was captured, refunded later or not;
		// a declined row records the 402 and moved nothing.
		c.Captured = status == payment.StatusCaptured || status == payment.StatusRefunded
		c.Declined = status == payment.StatusDeclined
		c.Refunds = int(refunds)
		if lastRefund != nil {
			c.LastRefundAt = *lastRefund
		}
		if f := facts[order]; f != nil {
			f.Charges = append(f.Charges, c)
		}
		return nil
	})
}

func (d DBFacts) shipments(ctx context.Context, ids []string, facts map[string]*Facts) error {
	rows, err := d.DB.Query(ctx, `SELECT id::text, order_id::text, status, cancelled_at FROM shipping.shipments WHERE order_id::text = ANY($1) ORDER BY id`, ids)
	if err != nil {
		return err
	}
	return scanEach(rows, func() error {
		var s Shipment
		var order, status string
		var cancelled *time.Time
		if err := rows.Scan(&s.ID, &order, &status, &cancelled); err != nil {
			return err
		}
		s.Cancelled = status == shipping.StatusCancelled
		s.Delivered = status == shipping.StatusDelivered
		if cancelled != nil {
			s.CancelledAt = *cancelled
		}
		if f := facts[order]; f != nil {
			f.Shipments = append(f.Shipments, s)
		}
		return nil
	})
}

// deliveries reads the Notifications service's record of each (template,
// channel): its outcome there, which explains a message never received.
func (d DBFacts) deliveries(ctx context.Context, ids []string, facts map[string]*Facts) error {
	rows, err := d.DB.Query(ctx, `SELECT order_id, template, channel, status FROM notifications.deliveries WHERE order_id = ANY($1) ORDER BY 1, 2, 3`, ids)
	if err != nil {
		return err
	}
	return scanEach(rows, func() error {
		var order string
		var dl Delivery
		if err := rows.Scan(&order, &dl.Template, &dl.Channel, &dl.Outcome); err != nil {
			return err
		}
		if f := facts[order]; f != nil {
			f.Deliveries = append(f.Deliveries, dl)
		}
		return nil
	})
}

// received counts what the channel sandbox accepted, by template and
// channel: a message it recognised as a resend of one it had (duplicate)
// reached nobody twice; one under another key did.
func (d DBFacts) received(ctx context.Context, ids []string, facts map[string]*Facts) error {
	rows, err := d.DB.Query(ctx, `SELECT order_id, template, channel, count(*) FROM notifications.sandbox_messages
WHERE order_id = ANY($1) AND NOT duplicate GROUP BY 1, 2, 3`, ids)
	if err != nil {
		return err
	}
	return scanEach(rows, func() error {
		var order, tpl, ch string
		var n int64
		if err := rows.Scan(&order, &tpl, &ch, &n); err != nil {
			return err
		}
		if f := facts[order]; f != nil {
			if f.Received == nil {
				f.Received = map[string]map[string]int{}
			}
			if f.Received[tpl] == nil {
				f.Received[tpl] = map[string]int{}
			}
			f.Received[tpl][ch] = int(n)
		}
		return nil
	})
}

// contacts reads which channels each order's user has an address on.
func (d DBFacts) contacts(ctx context.Context, _ []string, facts map[string]*Facts) error {
	byUser := map[string][]*Facts{}
	for _, f := range facts {
		if f.Order != nil {
			byUser[f.Order.UserID] = append(byUser[f.Order.UserID], f)
		}
	}
	users := make([]string, 0, len(byUser))
	for u := range byUser {
		users = append(users, u)
	}
	rows, err := d.DB.Query(ctx, `SELECT user_id, coalesce(email, '') <> '', coalesce(push_token, '') <> '', coalesce(phone, '') <> ''
FROM notifications.contacts WHERE user_id = ANY($1)`, users)
	if err != nil {
		return err
	}
	return scanEach(rows, func() error {
		var user string
		var c Contact
		if err := rows.Scan(&user, &c.Email, &c.Push, &c.SMS); err != nil {
			return err
		}
		for _, f := range byUser[user] {
			cc := c
			f.Contact = &cc
		}
		return nil
	})
}

func scanEach(rows pgx.Rows, fn func() error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Stock is available quantity per SKU (on_hand - reserved).
type Stock map[string]int64

// ReadStock reads inventory.stock.
func (d DBFacts) ReadStock(ctx context.Context) (Stock, error) {
	rows, err := d.DB.Query(ctx, `SELECT sku, on_hand - reserved FROM inventory.stock`)
	if err != nil {
		return nil, fmt.Errorf("inventory.stock: %w", err)
	}
	return scanStock(rows, false)
}

// scanStock reads rows of (sku, quantity); with skipZero it leaves out the
// SKUs whose quantity is 0.
func scanStock(rows pgx.Rows, skipZero bool) (Stock, error) {
	out := Stock{}
	err := scanEach(rows, func() error {
		var sku string
		var n int64
		if err := rows.Scan(&sku, &n); err != nil {
			return err
		}
		if n != 0 || !skipZero {
			out[sku] = n
		}
		return nil
	})
	return out, err
}

// StockMismatch is a SKU whose end stock is not start minus what ok orders hold.
type StockMismatch struct {
	SKU   string `json:"sku"`
	Start int64  `json:"start"`
	Held  int64  `json:"held"` // by ok orders of the run
	// Others is what orders outside the run changed meanwhile.
	Others int64 `json:"others"`
	Want   int64 `json:"want"`
	Got    int64 `json:"got"`
}

// OthersDelta is how much orders outside the run (ids) changed available
// stock since since: reservations they made and still hold count negative,
// reservations made before and released since count positive. On a stack
// nobody else uses it is empty; on a shared one it keeps their orders out
// of this run's stock check.
func (d DBFacts) OthersDelta(ctx context.Context, since time.Time, ids []string) (Stock, error) {
	rows, err := d.DB.Query(ctx, `
SELECT ri.sku, sum(CASE
	WHEN r.created_at >= $1 AND r.status = $3::text THEN -ri.qty
	WHEN r.created_at < $1 AND r.status = $4::text AND r.released_at >= $1 THEN ri.qty
	ELSE 0 END)::bigint
FROM inventory.reservations r JOIN inventory.reservation_items ri ON ri.reservation_id = r.id
WHERE NOT (r.order_id = ANY($2)) AND (r.created_at >= $1 OR r.released_at >= $1)
GROUP BY ri.sku`, since, ids, inventory.StatusReserved, inventory.StatusReleased)
	if err != nil {
		return nil, fmt.Errorf("inventory.reservations of other orders: %w", err)
	}
	return scanStock(rows, true)
}

// CheckStock compares the end stock with start minus what the orders the
// stores show succeeded hold, counted from the ledger's items (what the
// client ordered, not the platform's reservation rows), plus what orders
// outside the run changed (others, may be nil): every other order of the
// run must have given its stock back.
func CheckStock(start, end Stock, verdicts []Verdict, lines map[string]LedgerLine, others Stock) []StockMismatch {
	held := map[string]int64{}
	for _, v := range verdicts {
		if !v.Holds {
			continue
		}
		for _, it := range lines[v.OrderID].Items {
			held[it.SKU] += int64(it.Qty)
		}
	}
	var out []StockMismatch
	for sku, s := range start {
		want := s - held[sku] + others[sku]
		if got, ok := end[sku]; !ok || got != want {
			out = append(out, StockMismatch{SKU: sku, Start: s, Held: held[sku], Others: others[sku], Want: want, Got: end[sku]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SKU < out[j].SKU })
	return out
}

// undecided returns the orders of ids whose status in the Orders service
// (the projection) is still before the shipment decision.
func (d DBFacts) undecided(ctx context.Context, ids []string) ([]string, error) {
	rows, err := d.DB.Query(ctx, `SELECT id::text, status FROM orders.orders WHERE id::text = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("orders.orders: %w", err)
	}
	var out []string
	err = scanEach(rows, func() error {
		var id, s string
		if err := rows.Scan(&id, &s); err != nil {
			return err
		}
		if Preshipment(s) {
			out = append(out, id)
		}
		return nil
	})
	return out, err
}

// Unnotified counts the orders of ids whose notifications are still under
// way: an order whose status (in the Orders service) calls for a
// notification that the Notifications service has not finished (no row
// yet, because the task still waits in the queue behind the rate limit, or
// a row queued, being sent or waiting for a retry), and any order with a
// notification under way. Auditing those now would call them "not
// notified" although the platform is still delivering.
func (d DBFacts) Unnotified(ctx context.Context, ids []string) (int, error) {
	rows, err := d.DB.Query(ctx, `
WITH o AS (SELECT id::text AS id, status FROM orders.orders WHERE id::text = ANY($1)),
     done AS (SELECT order_id, template FROM notifications.notifications
              WHERE order_id = ANY($1) AND status NOT IN ($2::text, $3::text, $4::text))
SELECT count(*) FROM o WHERE
  EXISTS (SELECT 1 FROM notifications.notifications n WHERE n.order_id = o.id AND n.status IN ($2::text, $3::text, $4::text))
  OR (o.status IN ($5::text, $6::text, $7::text) AND NOT EXISTS (SELECT 1 FROM done WHERE done.order_id = o.id AND done.template = $8::text))
  OR (o.status = $7::text AND NOT EXISTS (SELECT 1 FROM done WHERE done.order_id = o.id AND done.template = $9::text))
  OR (o.status = $10::text AND NOT EXISTS (SELECT 1 FROM done WHERE done.order_id = o.id AND done.template = $11::text))
  OR (o.status = $12::text AND NOT EXISTS (SELECT 1 FROM done WHERE done.order_id = o.id AND done.template = $13::text))`, ids,
		notification.StatusQueued, notification.StatusSending, notification.StatusRetrying,
		order.StatusShipped, order.StatusInTransit, order.StatusDelivered,
		notification.TemplateOrderShipped, notification.TemplateDeliveryConfirmed,
		order.StatusFailed, notification.TemplateOrderFailed,
		order.StatusCancelled, notification.TemplateOrderCancelled)
	if err != nil {
		return 0, fmt.Errorf("orders.orders, notifications.notifications: %w", err)
	}
	var n int
	err = scanEach(rows, func() error { return rows.Scan(&n) })
	return n, err
}

// ErrNotSettled is returned by WaitSettled when orders are still undecided at its deadline.
var ErrNotSettled = errors.New("verify: orders still before the shipment decision, or their notifications under way")

// Settle says what else the audit waits for after the load, beside the
// Orders service's statuses: each part it reads from outside the platform.
type Settle struct {
	Platform string // PlatformRest: nothing runs after the request, and nothing is notified
	// Running lists the orders whose workflow still runs (Temporal
	// visibility). An order shown before its shipment decision whose
	// workflow has closed is settled: its view is stale, which the audit
	// reports; only a running one is waited for.
	Running func(ctx context.Context) (map[string]bool, error)
	// Busy says why sagas may still start or statuses still land (the
	// outbox not drained, a consumer group behind), or "" when none can.
	Busy func(ctx context.Context) (string, error)
}

// WaitSettled polls until no order of ids can still change (see Settle) and
// none has a notification under way, or the timeout passes. progress, when
// set, is told how many remain and why.
func (d DBFacts) WaitSettled(ctx context.Context, ids []string, timeout time.Duration, s Settle, progress func(left int, why string)) error {
	deadline := time.Now().Add(timeout)
	for {
		n, why, err := d.unsettled(ctx, ids, s)
		if err != nil {
			return err
		}
		if progress != nil {
			progress(n, why)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %d after %s (%s)", ErrNotSettled, n, timeout, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (d DBFacts) unsettled(ctx context.Context, ids []string, s Settle) (int, string, error) {
	if s.Platform == PlatformRest {
		return 0, "", nil
	}
	if s.Busy != nil {
		why, err := s.Busy(ctx)
		if err != nil {
			return 0, "", err
		}
		if why != "" {
			return len(ids), why, nil
		}
	}
	pre, err := d.undecided(ctx, ids)
	if err != nil {
		return 0, "", err
	}
	if len(pre) > 0 && s.Running != nil {
		running, err := s.Running(ctx)
		if err != nil {
			return 0, "", err
		}
		n := 0
		for _, id := range pre {
			if running[id] {
				n++
			}
		}
		if n > 0 {
			return n, "sagas before their shipment decision", nil
		}
	} else if len(pre) > 0 {
		return len(pre), "orders before their shipment decision", nil
	}
	n, err := d.Unnotified(ctx, ids)
	if err != nil {
		return 0, "", err
	}
	if n > 0 {
		return n, "notifications under way", nil
	}
	return 0, "", nil
}

// Orphan is something a store holds that no ledger line asked for.
type Orphan struct {
	Kind string `json:"kind"` // order, workflow, reservation, charge, shipment
	ID   string `json:"id"`
}

// Orphans finds what the stores hold from since on that the run's ledger
// (ids) does not account for: orders, and reservations, charges and
// shipments of orders that are neither the run's nor older than since.
// workflows are the order ids of workflows Temporal started since then
// that belong to no order of the run; those of older orders are left out.
func (d DBFacts) Orphans(ctx context.Context, since time.Time, ids, workflows []string) ([]Orphan, error) {
	rows, err := d.DB.Query(ctx, `
WITH older AS (SELECT id::text AS id FROM orders.orders WHERE created_at < $1)
SELECT 'order', id::text FROM orders.orders WHERE created_at >= $1 AND NOT (id::text = ANY($2))
UNION ALL
SELECT 'reservation', id::text || ' (order ' || order_id || ')' FROM inventory.reservations
 WHERE created_at >= $1 AND NOT (order_id = ANY($2)) AND order_id NOT IN (SELECT id FROM older)
UNION ALL
SELECT 'charge', id::text || ' (order ' || order_id::text || ')' FROM payments.charges
 WHERE created_at >= $1 AND NOT (order_id::text = ANY($2)) AND order_id::text NOT IN (SELECT id FROM older)
UNION ALL
SELECT 'shipment', id::text || ' (order ' || order_id::text || ')' FROM shipping.shipments
 WHERE created_at >= $1 AND NOT (order_id::text = ANY($2)) AND order_id::text NOT IN (SELECT id FROM older)
UNION ALL
SELECT 'workflow', 'order-' || w FROM unnest($3::text[]) AS w WHERE w NOT IN (SELECT id FROM older)
ORDER BY 1, 2`, since, ids, workflows)
	if err != nil {
		return nil, fmt.Errorf("orders, reservations, charges, shipments not in the ledger: %w", err)
	}
	var out []Orphan
	err = scanEach(rows, func() error {
		var o Orphan
		if err := rows.Scan(&o.Kind, &o.ID); err != nil {
			return err
		}
		out = append(out, o)
		return nil
	})
	return out, err
}
