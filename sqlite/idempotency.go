package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/payloom/payloom"
)

const idempotencyCols = `id, merchant_id, livemode, key, fingerprint, method, path, locked_until, lock_token,
	response_code, response_body, completed_at, created_at`

// CreateIdempotencyKey claims (scope, Key). A duplicate is reported by
// ON CONFLICT DO NOTHING rather than a failed statement, so that the
// transaction carries on (on PostgreSQL a failed statement would end it).
func (t *tx) CreateIdempotencyKey(ctx context.Context, k *payloom.IdempotencyKey) error {
	var e enc
	args := []any{k.ID, k.MerchantID, k.Livemode, k.Key, k.Fingerprint, k.Method, k.Path, e.time(k.LockedUntil),
		k.LockToken, k.ResponseCode, blob(k.ResponseBody), e.timePtr(k.CompletedAt),
		e.timeNotNull("idempotency key created_at", k.CreatedAt)}
	if e.err != nil {
		return e.err
	}
	return t.insertNew(ctx, "idempotency key", `INSERT INTO idempotency_keys (`+idempotencyCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, args...)
}

func (t *tx) GetIdempotencyKey(ctx context.Context, scope payloom.Scope, key string) (*payloom.IdempotencyKey, error) {
	row := t.tx.QueryRowContext(t.c(ctx), `SELECT `+idempotencyCols+` FROM idempotency_keys
		WHERE merchant_id = ? AND livemode = ? AND key = ?`, scope.MerchantID, scope.Livemode, key)
	var k payloom.IdempotencyKey
	var locked, completed, created sql.NullInt64
	if err := row.Scan(&k.ID, &k.MerchantID, &k.Livemode, &k.Key, &k.Fingerprint, &k.Method, &k.Path, &locked,
		&k.LockToken, &k.ResponseCode, &k.ResponseBody, &completed, &created); err != nil {
		return nil, dbError("idempotency key", err)
	}
	k.LockedUntil = decTime(locked)
	k.ResponseBody = nonNilBytes(k.ResponseBody)
	k.CompletedAt = decTimePtr(completed)
	k.CreatedAt = decTime(created)
	return &k, nil
}

func (t *tx) UpdateIdempotencyKey(ctx context.Context, k *payloom.IdempotencyKey) error {
	var e enc
	args := []any{e.time(k.LockedUntil), k.LockToken, k.ResponseCode, blob(k.ResponseBody), e.timePtr(k.CompletedAt), k.ID}
	if e.err != nil {
		return e.err
	}
	return t.execOne(ctx, "idempotency key", `UPDATE idempotency_keys SET locked_until = ?, lock_token = ?,
		response_code = ?, response_body = ?, completed_at = ? WHERE id = ?`, args...)
}

func (t *tx) CompleteIdempotencyKey(ctx context.Context, k *payloom.IdempotencyKey, token string) error {
	var e enc
	args := []any{k.ResponseCode, blob(k.ResponseBody), e.timePtr(k.CompletedAt), k.ID, token}
	if e.err != nil {
		return e.err
	}
	return t.execOne(ctx, "idempotency key", `UPDATE idempotency_keys SET locked_until = NULL, lock_token = '',
		response_code = ?, response_body = ?, completed_at = ?
		WHERE id = ? AND lock_token = ? AND lock_token <> '' AND completed_at IS NULL`, args...)
}

func (t *tx) DeleteIdempotencyKey(ctx context.Context, k *payloom.IdempotencyKey) error {
	return t.execOne(ctx, "idempotency key", `DELETE FROM idempotency_keys
		WHERE id = ? AND merchant_id = ? AND livemode = ?`, k.ID, k.MerchantID, k.Livemode)
}

func (t *tx) DeleteIdempotencyKeysBefore(ctx context.Context, before time.Time, limit int) (int64, error) {
	var e enc
	cutoff := e.time(before)
	if e.err != nil {
		return 0, e.err
	}
	if cutoff == nil || limit <= 0 {
		return 0, nil
	}
	res, err := t.exec(ctx, "idempotency key", `DELETE FROM idempotency_keys WHERE id IN (
		SELECT id FROM idempotency_keys WHERE created_at < ? ORDER BY created_at LIMIT ?)`, cutoff, limit)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, dbError("idempotency key", err)
	}
	return n, nil
}
