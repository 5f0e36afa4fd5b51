package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stampede-dev/stampede/platform/deadletter"
)

// PGStore is the outbox table of one schema. Only the instance holding the
// schema's advisory lock claims rows, so rows leave in id order even with
// several relays running; FOR UPDATE SKIP LOCKED keeps two instances from
// publishing the same row even while leadership changes hands.
type PGStore struct {
	pool   *pgxpool.Pool
	schema string
	table  string
	log    *slog.Logger

	mu     sync.Mutex
	leader *pgxpool.Conn // holds the advisory lock and LISTENs; nil when standby
}

// NewPGStore returns the store of schema's outbox table.
func NewPGStore(pool *pgxpool.Pool, schema string, log *slog.Logger) *PGStore {
	return &PGStore{
		pool:   pool,
		schema: schema,
		table:  pgx.Identifier{schema, "outbox"}.Sanitize(),
		log:    log,
	}
}

func (s *PGStore) lockKey() string { return "outbox-relay:" + s.schema }

// lead returns the leader connection, trying to become leader when standby.
func (s *PGStore) lead(ctx context.Context) (*pgxpool.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leader != nil {
		return s.leader, nil
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire leader connection: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", s.lockKey()).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("try leader lock: %w", err)
	}
	if !ok {
		conn.Release()
		return nil, nil
	}
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		conn.Conn().Close(ctx) // drops the lock with the session
		conn.Release()
		return nil, fmt.Errorf("listen: %w", err)
	}
	s.log.Info("outbox relay is leader", "outbox", s.schema)
	s.leader = conn
	return conn, nil
}

// dropLeader gives up leadership after its connection failed.
func (s *PGStore) dropLeader() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leader != nil {
		s.leader.Conn().Close(context.Background())
		s.leader.Release()
		s.leader = nil
	}
}

// Close gives up leadership.
func (s *PGStore) Close() { s.dropLeader() }

type pgBatch struct {
	tx   pgx.Tx
	rows []Row
	tbl  string
}

func (b *pgBatch) Rows() []Row { return b.rows }

func (b *pgBatch) Finish(ctx context.Context, sent []int64, dead []Dead) error {
	if _, err := b.tx.Exec(ctx, "UPDATE "+b.tbl+" SET sent_at = clock_timestamp() WHERE id = ANY($1)", sent); err != nil {
		b.tx.Rollback(ctx)
		return err
	}
	for _, d := range dead {
		if _, err := b.tx.Exec(ctx, "UPDATE "+b.tbl+" SET dead_at = clock_timestamp(), dead_reason = $2 WHERE id = $1",
			d.ID, deadletter.Reason(d.Reason)); err != nil {
			b.tx.Rollback(ctx)
			return err
		}
	}
	return b.tx.Commit(ctx)
}

func (b *pgBatch) Release(ctx context.Context) {
	if b.tx != nil {
		b.tx.Rollback(ctx)
	}
}

// Claim locks up to limit unsent rows. A standby instance claims nothing.
func (s *PGStore) Claim(ctx context.Context, limit int) (Batch, error) {
	leader, err := s.lead(ctx)
	if err != nil {
		return nil, err
	}
	if leader == nil {
		return &pgBatch{}, nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT id, event_id::text, topic, key, value, headers, created_at FROM `+s.table+`
		WHERE sent_at IS NULL AND dead_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
	if err != nil {
		tx.Rollback(ctx)
		return nil, err
	}
	b := &pgBatch{tx: tx, tbl: s.table}
	for rows.Next() {
		var r Row
		if err := rows.Scan(&r.ID, &r.EventID, &r.Topic, &r.Key, &r.Value, &r.Headers, &r.CreatedAt); err != nil {
			rows.Close()
			tx.Rollback(ctx)
			return nil, err
		}
		b.rows = append(b.rows, r)
	}
	if err := rows.Err(); err != nil {
		tx.Rollback(ctx)
		return nil, err
	}
	if len(b.rows) == 0 {
		tx.Rollback(ctx)
		b.tx = nil
		return &pgBatch{}, nil
	}
	return b, nil
}

// PGGroup claims for the outbox tables of several schemas of one database
// in one transaction: a relay step that publishes the rows of four outboxes
// costs one commit, not four. Each schema keeps its own leadership (its
// PGStore's advisory lock); a schema this instance does not lead is skipped.
type PGGroup struct {
	pool   *pgxpool.Pool
	stores []*PGStore // in the relay's source order
}

var _ Claimer = (*PGGroup)(nil)

// NewPGGroup claims for stores (in the order of the relay's sources) through
// pool, a pool of the same database.
func NewPGGroup(pool *pgxpool.Pool, stores ...*PGStore) *PGGroup {
	return &PGGroup{pool: pool, stores: stores}
}

// ClaimAll locks up to limit unsent rows of each led schema of which.
func (g *PGGroup) ClaimAll(ctx context.Context, which []int, limit int) (Claim, error) {
	var led []int
	for _, i := range which {
		leader, err := g.stores[i].lead(ctx)
		if err != nil {
			return nil, fmt.Errorf("lead %s: %w", g.stores[i].schema, err)
		}
		if leader != nil {
			led = append(led, i)
		}
	}
	c := &pgClaim{g: g, rows: map[int][]Row{}}
	if len(led) == 0 {
		return c, nil
	}
	tx, err := g.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	b := &pgx.Batch{}
	for _, i := range led {
		b.Queue(`SELECT id, event_id::text, topic, key, value, headers, created_at FROM `+g.stores[i].table+`
			WHERE sent_at IS NULL AND dead_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
	}
	br := tx.SendBatch(ctx, b)
	for _, i := range led {
		rows, err := br.Query()
		if err == nil {
			c.rows[i], err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Row, error) {
				var row Row
				err := r.Scan(&row.ID, &row.EventID, &row.Topic, &row.Key, &row.Value, &row.Headers, &row.CreatedAt)
				return row, err
			})
		}
		if err != nil {
			br.Close()
			tx.Rollback(ctx)
			return nil, fmt.Errorf("claim rows of %s: %w", g.stores[i].schema, err)
		}
		if len(c.rows[i]) == 0 {
			delete(c.rows, i)
		}
	}
	if err := br.Close(); err != nil {
		tx.Rollback(ctx)
		return nil, err
	}
	if len(c.rows) == 0 {
		tx.Rollback(ctx)
		return c, nil
	}
	c.tx = tx
	return c, nil
}

type pgClaim struct {
	g    *PGGroup
	tx   pgx.Tx // nil when nothing was claimed
	rows map[int][]Row
}

func (c *pgClaim) Rows() map[int][]Row { return c.rows }

func (c *pgClaim) Finish(ctx context.Context, sent map[int][]int64, dead map[int][]Dead) error {
	if c.tx == nil {
		return nil
	}
	b := &pgx.Batch{}
	for i, ids := range sent {
		if len(ids) > 0 {
			b.Queue("UPDATE "+c.g.stores[i].table+" SET sent_at = clock_timestamp() WHERE id = ANY($1)", ids)
		}
	}
	for i, ds := range dead {
		for _, d := range ds {
			b.Queue("UPDATE "+c.g.stores[i].table+" SET dead_at = clock_timestamp(), dead_reason = $2 WHERE id = $1",
				d.ID, deadletter.Reason(d.Reason))
		}
	}
	if err := c.tx.SendBatch(ctx, b).Close(); err != nil {
		c.tx.Rollback(ctx)
		return err
	}
	return c.tx.Commit(ctx)
}

func (c *pgClaim) Release(ctx context.Context) {
	if c.tx != nil {
		c.tx.Rollback(ctx)
	}
}

// Wait blocks until a notification for this schema arrives or poll elapses.
func (s *PGStore) Wait(ctx context.Context, poll time.Duration) error {
	s.mu.Lock()
	leader := s.leader
	s.mu.Unlock()
	if leader == nil {
		sleep(ctx, poll)
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, poll)
	defer cancel()
	for {
		n, err := leader.Conn().WaitForNotification(wctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				return nil
			}
			s.dropLeader()
			return fmt.Errorf("wait for notification: %w", err)
		}
		if n.Payload == s.schema {
			return nil
		}
	}
}

// Maintain samples the backlog into m every second and deletes rows sent more
// than retention ago every minute, until ctx is done.
func (s *PGStore) Maintain(ctx context.Context, m *Metrics, retention time.Duration) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var n, dead int64
		var age float64
		err := s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE dead_at IS NULL), count(*) FILTER (WHERE dead_at IS NOT NULL),
			coalesce(extract(epoch FROM clock_timestamp() - min(created_at) FILTER (WHERE dead_at IS NULL)), 0)
			FROM `+s.table+` WHERE sent_at IS NULL`).Scan(&n, &dead, &age)
		if err == nil && m != nil {
			m.SetBacklog(s.schema, n, time.Duration(age*float64(time.Second)))
			m.deadRows.WithLabelValues(s.schema).Set(float64(dead))
		}
		if retention > 0 && time.Since(lastPrune) > time.Minute {
			lastPrune = time.Now()
			if _, err := s.pool.Exec(ctx, "DELETE FROM "+s.table+" WHERE sent_at < clock_timestamp() - $1::interval",
				fmt.Sprintf("%d seconds", int(retention.Seconds()))); err != nil && ctx.Err() == nil {
				s.log.Warn("prune sent outbox rows", "outbox", s.schema, "err", err)
			}
		}
	}
}

// DeadRow is a dead-lettered outbox row, as `stampede deadletter list` shows it.
type DeadRow struct {
	Schema    string    `json:"schema"`
	ID        int64     `json:"id"`
	EventID   string    `json:"eventId"`
	Topic     string    `json:"topic"`
	Key       string    `json:"key"`
	Bytes     int       `json:"bytes"`
	Reason    string    `json:"reason"`
	CreatedAt time.Time `json:"createdAt"`
	DeadAt    time.Time `json:"deadAt"`
}

// Querier is what ListDead and ReplayDead need: a pool or a transaction.
type Querier interface {
	Execer
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ListDead returns up to limit dead-lettered rows of schema's outbox, oldest first.
func ListDead(ctx context.Context, db Querier, schema string, limit int) ([]DeadRow, error) {
	tbl := pgx.Identifier{schema, "outbox"}.Sanitize()
	rows, err := db.Query(ctx, `SELECT id, event_id::text, topic, key, length(value), coalesce(dead_reason, ''), created_at, dead_at
		FROM `+tbl+` WHERE dead_at IS NOT NULL AND sent_at IS NULL ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: list dead rows of %s: %w", schema, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeadRow, error) {
		d := DeadRow{Schema: schema}
		err := r.Scan(&d.ID, &d.EventID, &d.Topic, &d.Key, &d.Bytes, &d.Reason, &d.CreatedAt, &d.DeadAt)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: list dead rows of %s: %w", schema, err)
	}
	return out, nil
}

// ReplayDead gives dead-lettered rows of schema's outbox (all of them when ids
// is empty) back to the relay, which publishes them again (and dead-letters
// them again if Kafka still refuses them). It returns how many it gave back.
func ReplayDead(ctx context.Context, db Querier, schema string, ids []int64) (int64, error) {
	tbl := pgx.Identifier{schema, "outbox"}.Sanitize()
	q := `UPDATE ` + tbl + ` SET dead_at = NULL, dead_reason = NULL WHERE dead_at IS NOT NULL AND sent_at IS NULL`
	args := []any{}
	if len(ids) > 0 {
		q += ` AND id = ANY($1)`
		args = append(args, ids)
	}
	tag, err := db.Exec(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("outbox: replay dead rows of %s: %w", schema, err)
	}
	if tag.RowsAffected() > 0 {
		if _, err := db.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, schema); err != nil {
			return tag.RowsAffected(), fmt.Errorf("outbox: notify: %w", err)
		}
	}
	return tag.RowsAffected(), nil
}
