// Package vault keeps customers' payment tokens out of the platform's
// events. The Orders service puts an order's token here in the transaction
// that accepts the order, and the order.created event carries only an
// opaque reference; Payments takes the token out when it charges, in the
// transaction that records the charge. So the token is never in an outbox
// row, a Kafka record, a workflow's input or history, or a log, and it is
// gone once used.
//
// It owns the vault schema of the stampede database: one table,
//
//	payment_tokens(ref PK, token, created_at)
//
// written by Orders (Put) and read by Payments (Take) only. It must never be
// read by anything else, nor log a token.
package vault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Schema is the PostgreSQL schema the vault owns.
const Schema = "vault"

// RefPrefix starts every reference: "pref_" and 32 hex digits, random.
const RefPrefix = "pref_"

// ErrUnknownRef is a reference the vault does not hold: never issued, or
// already taken by a charge.
var ErrUnknownRef = errors.New("vault: unknown or already used payment reference")

// DB is what the vault needs of a pool or a transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Ensure creates the vault's schema and table when missing. Orders and
// Payments both call it at start; an advisory lock keeps two first starts
// from racing on the catalog.
func Ensure(ctx context.Context, db interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('vault:ensure', 0))"); err != nil {
			return fmt.Errorf("vault: lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS vault;
			CREATE TABLE IF NOT EXISTS vault.payment_tokens (
				ref        text PRIMARY KEY,
				token      text NOT NULL,
				created_at timestamptz NOT NULL DEFAULT now()
			)`); err != nil {
			return fmt.Errorf("vault: create table: %w", err)
		}
		return nil
	})
}

// Put stores token and returns its new reference. Call it in the
// transaction that makes the reference public (the order and its outbox
// rows), so a reference is never seen without its token.
func Put(ctx context.Context, db DB, token string) (string, error) {
	b := make([]byte, 16)
	rand.Read(b)
	ref := RefPrefix + hex.EncodeToString(b)
	if _, err := db.Exec(ctx, "INSERT INTO vault.payment_tokens (ref, token) VALUES ($1, $2)", ref, token); err != nil {
		return "", fmt.Errorf("vault: put: %w", err)
	}
	return ref, nil
}

// Take returns the token of ref and deletes it: call it in the transaction
// that records the charge, so a token serves one charge and a charge that
// rolls back leaves it for its retry.
func Take(ctx context.Context, db DB, ref string) (string, error) {
	if !ValidRef(ref) {
		return "", ErrUnknownRef
	}
	var token string
	err := db.QueryRow(ctx, "DELETE FROM vault.payment_tokens WHERE ref = $1 RETURNING token", ref).Scan(&token)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrUnknownRef
	}
	if err != nil {
		return "", fmt.Errorf("vault: take: %w", err)
	}
	return token, nil
}

// ValidRef reports whether s has the shape of a reference Put returns.
func ValidRef(s string) bool {
	h, ok := strings.CutPrefix(s, RefPrefix)
	if !ok || len(h) != 32 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}
