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
	} {
		if err := step.fn(ctx, ids, facts); err != nil {
			gaps = append(gaps, fmt.Sprintf("%s: %v", step.what, err))
		}
	}
	return gaps
}

func (d DBFacts) orders(ctx context.Context, ids []string, facts map[string]*Facts) error {
	rows, err := d.DB.Query(ctx, `SELECT id::text, status, failure_reason, created_at FROM orders.orders WHERE id::text = ANY($1)`, ids)
	if err != nil {
		return err
	}
	return scanEach(rows, func() error {
		var o Order
		if err := rows.Scan(&o.ID, &o.Status, &o.FailureReason, &o.CreatedAt); err != nil {
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
SELECT r.id::text, r.order_id, r.status, coalesce(ri.sku, ''), coalesce(ri.qty, 0)
FROM inventory.reservations r LEFT JOIN inventory.reservation_items ri ON ri.reservation_id = r.id
WHERE r.order_id = ANY($1) ORDER BY r.id`, ids)
	if err != nil {
		return err
	}
	index := map[string]int{} // reservation id -> position in its order's facts
	return scanEach(rows, func() error {
		var id, order, status, sku string
		var qty int64
		if err := rows.Scan(&id, &order, &status, &sku, &qty); err != nil {
			return err
		}
		f := facts[order]
		if f == nil {
			return nil
		}
		i, ok := index[id]
		if !ok {
			f.Reservations = append(f.Reservations, Reservation{ID: id, Released: status == inventory.StatusReleased, Items: map[string]int{}})
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
SELECT c.id::text, c.order_id::text, c.status, c.amount_cents, coalesce(sum(r.amount_cents), 0)::bigint, count(r.id)
FROM payments.charges c LEFT JOIN payments.refunds r ON r.charge_id = c.id
WHERE c.order_id::text = ANY($1) GROUP BY c.id, c.order_id, c.status, c.amount_cents ORDER BY c.id`, ids)
	if err != nil {
		return err
	}
	return scanEach(rows, func() error {
		var c Charge
		var order, status string
		var refunds int64
		if err := rows.Scan(&c.ID, &order, &status, &c.AmountCents, &c.RefundedCents, &refunds); err != nil {
			return err
		}
		// Money moved when the charge was captured, refunded later or not;
		// a declined row records the 402 and moved nothing.
		c.Captured = status == payment.StatusCaptured || status == payment.StatusRefunded
		c.Refunds = int(refunds)
		if f := facts[order]; f != nil {
			f.Charges = append(f.Charges, c)
		}
		return nil
	})
}

func (d DBFacts) shipments(ctx context.Context, ids []string, facts map[string]*Facts) error {
	rows, err := d.DB.Query(ctx, `SELECT id::text, order_id::text, status FROM shipping.shipments WHERE order_id::text = ANY($1) ORDER BY id`, ids)
	if err != nil {
		return err
	}
	return scanEach(rows, func() error {
		var s Shipment
		var order, status string
		if err := rows.Scan(&s.ID, &order, &status); err != nil {
			return err
		}
		s.Cancelled = status == shipping.StatusCancelled
		if f := facts[order]; f != nil {
			f.Shipments = append(f.Shipments, s)
		}
		return nil
	})
}

// deliveries reads each (template, channel) of an order's notifications and
// how many distinct messages the provider sandbox accepted for it: a resend
// the provider recognised (duplicate = true) reached nobody twice.
func (d DBFacts) deliveries(ctx context.Context, ids []string, facts map[string]*Facts) error {
	rows, err := d.DB.Query(ctx, `
SELECT d.order_id, d.template, d.channel, d.status,
       (SELECT count(*) FROM notifications.sandbox_messages m
        WHERE m.order_id = d.order_id AND m.template = d.template AND m.channel = d.channel AND NOT m.duplicate)
FROM notifications.deliveries d WHERE d.order_id = ANY($1) ORDER BY 1, 2, 3`, ids)
	if err != nil {
		return err
	}
	return scanEach(rows, func() error {
		var order string
		var dl Delivery
		var sent int64
		if err := rows.Scan(&order, &dl.Template, &dl.Channel, &dl.Outcome, &sent); err != nil {
			return err
		}
		dl.Sent = int(sent)
		if f := facts[order]; f != nil {
			f.Deliveries = append(f.Deliveries, dl)
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

// CheckStock compares the end stock with start minus the quantities held by
// the reservations of ok (and unacked) orders, plus what orders outside the
// run changed (others, may be nil): every other order of the run must have
// given its stock back.
func CheckStock(start, end Stock, verdicts []Verdict, facts map[string]*Facts, others Stock) []StockMismatch {
	held := map[string]int64{}
	for _, v := range verdicts {
		if v.Class != ClassOK && v.Class != ClassUnacked {
			continue
		}
		f := facts[v.OrderID]
		if f == nil {
			continue
		}
		for _, r := range f.Reservations {
			if r.Released {
				continue
			}
			for sku, q := range r.Items {
				held[sku] += int64(q)
			}
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

// Preshipment counts the orders whose status in the Orders service (the
// saga's projection) is still before the shipment decision.
func (d DBFacts) Preshipment(ctx context.Context, ids []string) (int, error) {
	rows, err := d.DB.Query(ctx, `SELECT status FROM orders.orders WHERE id::text = ANY($1)`, ids)
	if err != nil {
		return 0, fmt.Errorf("orders.orders: %w", err)
	}
	n := 0
	err = scanEach(rows, func() error {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		if Preshipment(s) {
			n++
		}
		return nil
	})
	return n, err
}

// Unnotified counts the orders of ids whose notifications are still under
// way: a failed or cancelled order whose failure notification the
// Notifications service has not finished (no row yet, because the task
// still waits in the queue behind the rate limit, or a row being sent or
// waiting for a retry), and any order with a notification being sent or
// retried. Auditing those now would call them "not notified" although the
// platform is still delivering.
func (d DBFacts) Unnotified(ctx context.Context, ids []string) (int, error) {
	rows, err := d.DB.Query(ctx, `
SELECT count(*) FROM orders.orders o
WHERE o.id::text = ANY($1) AND (
  (o.status IN ($2::text, $3::text) AND NOT EXISTS (
     SELECT 1 FROM notifications.notifications n
     WHERE n.order_id = o.id::text
       AND n.template = CASE o.status WHEN $3::text THEN $4::text ELSE $5::text END
       AND n.status NOT IN ($6::text, $7::text)))
  OR EXISTS (
     SELECT 1 FROM notifications.notifications n
     WHERE n.order_id = o.id::text AND n.status IN ($6::text, $7::text)))`, ids,
		order.StatusFailed, order.StatusCancelled,
		notification.TemplateOrderCancelled, notification.TemplateOrderFailed,
		notification.StatusSending, notification.StatusRetrying)
	if err != nil {
		return 0, fmt.Errorf("orders.orders, notifications.notifications: %w", err)
	}
	var n int
	err = scanEach(rows, func() error { return rows.Scan(&n) })
	return n, err
}

// ErrNotSettled is returned by WaitSettled when sagas are still undecided at its deadline.
var ErrNotSettled = errors.New("verify: sagas still before the shipment decision, or their notifications under way")

// WaitSettled polls until no order of ids is in a pre-shipment state and
// none has a notification under way (Unnotified), or the timeout passes.
// progress, when set, is told how many remain.
func (d DBFacts) WaitSettled(ctx context.Context, ids []string, timeout time.Duration, progress func(left int)) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := d.Preshipment(ctx, ids)
		if err != nil {
			return err
		}
		if n == 0 {
			if n, err = d.Unnotified(ctx, ids); err != nil {
				return err
			}
		}
		if progress != nil {
			progress(n)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %d after %s", ErrNotSettled, n, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
