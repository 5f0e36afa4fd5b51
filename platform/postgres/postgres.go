// Package postgres connects a service to its own schema of the stampede
// database and applies that service's migrations at start.
//
// A service only ever sees its own schema (search_path); it must never
// reach into another service's tables. (The vault schema, platform/vault,
// is the one shared store: Orders puts payment tokens, Payments takes them.)
package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var schemaName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Open connects to url with search_path set to schema (created if missing),
// waiting up to wait for the server to accept connections.
func Open(ctx context.Context, url, schema string, maxConns int32, wait time.Duration) (*pgxpool.Pool, error) {
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("postgres: bad schema name %q", schema)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.ConnConfig.RuntimeParams["application_name"] = "stampede-" + schema
	if os.Getenv(EnvShareNice) != "0" {
		cfg.AfterConnect = shareNice
	}

	deadline := time.Now().Add(wait)
	for {
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err == nil {
			if err = pool.Ping(ctx); err == nil {
				if _, err = pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err == nil {
					return pool, nil
				}
			}
			pool.Close()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("postgres: connect to %s: %w", redact(url), err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Migrate applies, in name order, every NNN_*.sql file of migrations not yet
// recorded in the schema's schema_migrations table, each in its own
// transaction. Concurrent starts of the same service serialise on an
// advisory lock, so a migration runs once.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, migrations fs.FS) error {
	names, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		return fmt.Errorf("postgres: list migrations: %w", err)
	}
	sort.Strings(names)

	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate %s: %w", schema, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtextextended($1, 0))", "migrate:"+schema); err != nil {
		return fmt.Errorf("postgres: lock migrations of %s: %w", schema, err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock(hashtextextended($1, 0))", "migrate:"+schema)

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("postgres: create schema_migrations in %s: %w", schema, err)
	}
	for _, name := range names {
		var done bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)", name).Scan(&done); err != nil {
			return fmt.Errorf("postgres: check migration %s: %w", name, err)
		}
		if done {
			continue
		}
		sql, err := fs.ReadFile(migrations, name)
		if err != nil {
			return fmt.Errorf("postgres: read migration %s: %w", name, err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (name) VALUES ($1)", name)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: apply migration %s/%s: %w", schema, name, err)
		}
	}
	return nil
}

// redact hides the password of a URL for error messages.
func redact(url string) string {
	at := strings.LastIndex(url, "@")
	scheme := strings.Index(url, "://")
	if at < 0 || scheme < 0 {
		return url
	}
	userinfo := url[scheme+3 : at]
	if i := strings.Index(userinfo, ":"); i >= 0 {
		return url[:scheme+3] + userinfo[:i] + ":***" + url[at:]
	}
	return url
}
