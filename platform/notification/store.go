package notification

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Outcomes of a delivery (one channel of one notification).
const (
	OutcomePending   = "pending"
	OutcomeSending   = "sending"
	OutcomeDelivered = "delivered"
	OutcomeFailed    = "failed"
	OutcomeSkipped   = "skipped"
)

// Statuses of a notification.
const (
	StatusQueued    = "queued" // in the queue, not yet picked up
	StatusSending   = "sending"
	StatusRetrying  = "retrying"
	StatusDelivered = "delivered"
	StatusSkipped   = "skipped" // no channel to reach the user on
	StatusDead      = "dead"    // attempts exhausted with a channel still failed
)

// Delivery is the state of one channel of a notification.
type Delivery struct {
	Channel     Channel    `json:"channel"`
	Outcome     string     `json:"outcome"`
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"lastError,omitempty"`
	DeliveredAt *time.Time `json:"deliveredAt,omitempty"`
}

// Notification is one (order, template) with its channels.
type Notification struct {
	OrderID          string     `json:"orderId"`
	Template         string     `json:"template"`
	UserID           string     `json:"userId"`
	CorrelationID    string     `json:"correlationId,omitempty"`
	Status           string     `json:"status"`
	Attempts         int        `json:"attempts"`
	RequestedAt      time.Time  `json:"requestedAt"`
	FirstDeliveredAt *time.Time `json:"firstDeliveredAt,omitempty"`
	TaskState        string     `json:"taskState,omitempty"` // asynq's view: pending, active, retry, archived, completed
	Channels         []Delivery `json:"channels"`
}

// deliveryKey identifies one channel of one notification.
type deliveryKey struct {
	OrderID  string
	Template string
	Channel  Channel
}

// Ledger is what the worker needs to remember about deliveries so that a
// retry re-sends only failed channels and no channel is sent twice.
type Ledger interface {
	// Open records an attempt of the notification, creates its missing
	// delivery rows (skipped where the user has no address) and returns the
	// user's contact, every delivery, and the channels newly skipped.
	Open(ctx context.Context, p Payload) (Contact, []Delivery, []Channel, error)
	// Claim takes a pending or failed delivery (or one whose claim is older
	// than stale) for owner; otherwise it returns the current outcome.
	Claim(ctx context.Context, k deliveryKey, owner string, stale time.Duration) (claimed bool, outcome string, err error)
	// Settle records the outcome of owner's claim; first reports that this is
	// the first channel of the notification delivered.
	Settle(ctx context.Context, k deliveryKey, owner, outcome, lastErr string) (first bool, err error)
	// Finish sets the status of the notification.
	Finish(ctx context.Context, orderID, template, status string) error
}

// Store is the notifications schema in PostgreSQL.
type Store struct{ db *pgxpool.Pool }

var (
	_ Ledger   = (*Store)(nil)
	_ Recorder = (*Store)(nil)
)

// NewStore returns the store on db (search_path = the notifications schema).
func NewStore(db *pgxpool.Pool) *Store { return &Store{db: db} }

// Ping checks the database.
func (s *Store) Ping(ctx context.Context) error { return s.db.Ping(ctx) }

// Open implements Ledger. Its statements go in one round trip.
func (s *Store) Open(ctx context.Context, p Payload) (Contact, []Delivery, []Channel, error) {
	data, _ := json.Marshal(p.Data)
	if p.Data == nil {
		data = []byte("{}")
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO notifications (order_id, template, user_id, correlation_id, data, status, attempts, requested_at)
		VALUES ($1, $2, $3, $4, $5, 'sending', 1, $6)
		ON CONFLICT (order_id, template) DO UPDATE SET attempts = notifications.attempts + 1, status = 'sending', updated_at = now()`,
		p.OrderID, p.Template, p.UserID, p.CorrelationID, data, p.RequestedAt)
	b.Queue(`SELECT coalesce(email, ''), coalesce(phone, ''), coalesce(push_token, '') FROM contacts WHERE user_id = $1`, p.UserID)
	b.Queue(`INSERT INTO deliveries (order_id, template, channel, status)
		SELECT $1, $2, v.ch, CASE WHEN coalesce(CASE v.ch WHEN 'email' THEN c.email WHEN 'push' THEN c.push_token ELSE c.phone END, '') = ''
			THEN 'skipped' ELSE 'pending' END
		FROM (VALUES ('email'), ('push'), ('sms')) AS v(ch) LEFT JOIN contacts c ON c.user_id = $3
		ON CONFLICT DO NOTHING RETURNING channel, status`, p.OrderID, p.Template, p.UserID)
	b.Queue(`SELECT channel, status, attempts, last_error, delivered_at FROM deliveries
		WHERE order_id = $1 AND template = $2 ORDER BY array_position(ARRAY['email','push','sms'], channel)`, p.OrderID, p.Template)
	br := s.db.SendBatch(ctx, b)
	defer br.Close()

	c := Contact{UserID: p.UserID}
	if _, err := br.Exec(); err != nil {
		return c, nil, nil, fmt.Errorf("notification: record attempt: %w", err)
	}
	err := br.QueryRow().Scan(&c.Email, &c.Phone, &c.PushToken)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return c, nil, nil, fmt.Errorf("notification: read contact: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return c, nil, nil, fmt.Errorf("notification: create deliveries: %w", err)
	}
	var skipped []Channel
	for rows.Next() {
		var ch, st string
		if err := rows.Scan(&ch, &st); err != nil {
			return c, nil, nil, fmt.Errorf("notification: create deliveries: %w", err)
		}
		if st == OutcomeSkipped {
			skipped = append(skipped, Channel(ch))
		}
	}
	if err := rows.Err(); err != nil {
		return c, nil, nil, fmt.Errorf("notification: create deliveries: %w", err)
	}
	ds, err := scanDeliveries(br.Query())
	if err != nil {
		return c, nil, nil, fmt.Errorf("notification: read deliveries: %w", err)
	}
	return c, ds, skipped, nil
}

func scanDeliveries(rows pgx.Rows, err error) ([]Delivery, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ds []Delivery
	for rows.Next() {
		var d Delivery
		if err := rows.Scan(&d.Channel, &d.Outcome, &d.Attempts, &d.LastError, &d.DeliveredAt); err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, rows.Err()
}

// Claim implements Ledger.
func (s *Store) Claim(ctx context.Context, k deliveryKey, owner string, stale time.Duration) (bool, string, error) {
	var attempts int
	err := s.db.QueryRow(ctx, `UPDATE deliveries SET status = 'sending', attempts = attempts + 1, claimed_by = $4, claimed_at = now(), updated_at = now()
		WHERE order_id = $1 AND template = $2 AND channel = $3
		AND (status IN ('pending', 'failed') OR (status = 'sending' AND claimed_at < now() - make_interval(secs => $5)))
		RETURNING attempts`, k.OrderID, k.Template, string(k.Channel), owner, stale.Seconds()).Scan(&attempts)
	if err == nil {
		return true, OutcomeSending, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, "", fmt.Errorf("notification: claim %s: %w", k.Channel, err)
	}
	var outcome string
	if err := s.db.QueryRow(ctx, `SELECT status FROM deliveries WHERE order_id = $1 AND template = $2 AND channel = $3`,
		k.OrderID, k.Template, string(k.Channel)).Scan(&outcome); err != nil {
		return false, "", fmt.Errorf("notification: read %s: %w", k.Channel, err)
	}
	return false, outcome, nil
}

// Settle implements Ledger.
func (s *Store) Settle(ctx context.Context, k deliveryKey, owner, outcome, lastErr string) (bool, error) {
	var first bool
	err := s.db.QueryRow(ctx, `WITH d AS (
			UPDATE deliveries SET status = $5, last_error = $6, updated_at = now(),
				delivered_at = CASE WHEN $5 = 'delivered' THEN now() END
			WHERE order_id = $1 AND template = $2 AND channel = $3 AND claimed_by = $4 AND status = 'sending'
			RETURNING 1)
		, n AS (
			UPDATE notifications SET first_delivered_at = now()
			WHERE order_id = $1 AND template = $2 AND $5 = 'delivered' AND first_delivered_at IS NULL AND EXISTS (SELECT 1 FROM d)
			RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM n)`, k.OrderID, k.Template, string(k.Channel), owner, outcome, lastErr).Scan(&first)
	if err != nil {
		return false, fmt.Errorf("notification: record %s %s: %w", k.Channel, outcome, err)
	}
	return first, nil
}

// Finish implements Ledger.
func (s *Store) Finish(ctx context.Context, orderID, template, status string) error {
	if _, err := s.db.Exec(ctx, `UPDATE notifications SET status = $3, updated_at = now() WHERE order_id = $1 AND template = $2`,
		orderID, template, status); err != nil {
		return fmt.Errorf("notification: set status %s: %w", status, err)
	}
	return nil
}

// Accept implements Recorder: the sandbox's record of accepted messages.
func (s *Store) Accept(ctx context.Context, m Message, processID string, receivedAt, acceptedAt time.Time) (bool, error) {
	const insert = `INSERT INTO sandbox_messages (idempotency_key, order_id, template, channel, recipient, process_id, received_at, accepted_at, duplicate)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	tag, err := s.db.Exec(ctx, insert+` ON CONFLICT (idempotency_key) WHERE NOT duplicate DO NOTHING`,
		m.IdempotencyKey, m.OrderID, m.Template, string(m.Channel), m.To, processID, receivedAt, acceptedAt, false)
	if err != nil {
		return false, err
	}
	if tag.RowsAffected() == 1 {
		return false, nil
	}
	_, err = s.db.Exec(ctx, insert, m.IdempotencyKey, m.OrderID, m.Template, string(m.Channel), m.To, processID, receivedAt, acceptedAt, true)
	return true, err
}

// PutContact creates or replaces a user's contact.
func (s *Store) PutContact(ctx context.Context, c Contact) error {
	_, err := s.db.Exec(ctx, `INSERT INTO contacts (user_id, email, phone, push_token) VALUES ($1, nullif($2, ''), nullif($3, ''), nullif($4, ''))
		ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, phone = excluded.phone, push_token = excluded.push_token, updated_at = now()`,
		c.UserID, c.Email, c.Phone, c.PushToken)
	if err != nil {
		return fmt.Errorf("notification: put contact %s: %w", c.UserID, err)
	}
	return nil
}

// Contact returns a user's contact; ok is false when there is none.
func (s *Store) Contact(ctx context.Context, userID string) (Contact, bool, error) {
	c := Contact{UserID: userID}
	err := s.db.QueryRow(ctx, `SELECT coalesce(email, ''), coalesce(phone, ''), coalesce(push_token, '') FROM contacts WHERE user_id = $1`,
		userID).Scan(&c.Email, &c.Phone, &c.PushToken)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("notification: read contact %s: %w", userID, err)
	}
	return c, true, nil
}

// SeedContacts gives users prefix1..prefixN an email and a push token, and
// every one but each tenth a phone (so the demo shows skipped SMS). It never
// overwrites a contact that exists.
func (s *Store) SeedContacts(ctx context.Context, prefix string, n int) error {
	if n <= 0 {
		return nil
	}
	_, err := s.db.Exec(ctx, `INSERT INTO contacts (user_id, email, phone, push_token)
		SELECT $1 || g, $1 || g || '@example.test', CASE WHEN g % 10 = 0 THEN NULL ELSE '+1555' || lpad(g::text, 7, '0') END, 'push-' || $1 || g
		FROM generate_series(1, $2::int) AS g
		ON CONFLICT (user_id) DO NOTHING`, prefix, n)
	if err != nil {
		return fmt.Errorf("notification: seed %d contacts: %w", n, err)
	}
	return nil
}

// ByOrder returns every notification of an order with its channels.
func (s *Store) ByOrder(ctx context.Context, orderID string) ([]Notification, error) {
	rows, err := s.db.Query(ctx, `SELECT n.template, n.user_id, n.correlation_id, n.status, n.attempts, n.requested_at, n.first_delivered_at,
			d.channel, d.status, d.attempts, d.last_error, d.delivered_at
		FROM notifications n LEFT JOIN deliveries d ON d.order_id = n.order_id AND d.template = n.template
		WHERE n.order_id = $1
		ORDER BY n.requested_at, n.template, array_position(ARRAY['email','push','sms'], d.channel)`, orderID)
	if err != nil {
		return nil, fmt.Errorf("notification: list %s: %w", orderID, err)
	}
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		var n Notification
		var ch, outcome, lastErr *string
		var attempts *int
		var delivered *time.Time
		if err := rows.Scan(&n.Template, &n.UserID, &n.CorrelationID, &n.Status, &n.Attempts, &n.RequestedAt, &n.FirstDeliveredAt,
			&ch, &outcome, &attempts, &lastErr, &delivered); err != nil {
			return nil, fmt.Errorf("notification: list %s: %w", orderID, err)
		}
		if len(out) == 0 || out[len(out)-1].Template != n.Template {
			n.OrderID = orderID
			n.Channels = []Delivery{}
			out = append(out, n)
		}
		if ch != nil {
			last := &out[len(out)-1]
			last.Channels = append(last.Channels, Delivery{Channel: Channel(*ch), Outcome: *outcome, Attempts: *attempts, LastError: *lastErr, DeliveredAt: delivered})
		}
	}
	return out, rows.Err()
}
