package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/payloom/payloom"
)

const idempotencyCols = `id, merchant_id, livemode, key, fingerprint, method, path, locked_until, lock_token,
	response_code, response_body, completed_at, created_at`

// CreateIdempotencyKey claims (scope, Key) through the unique index. When
// another transaction holds an uncommitted claim on the same key, the
// INSERT waits for it and then either inserts (it rolled back) or reports
// CodeAlreadyExists (it committed): exactly one claim wins, at any
// isolation level. ON CONFLICT DO NOTHING keeps the transaction usable.
func (t *tx) CreateIdempotencyKey(ctx context.Context, k *payloom.IdempotencyKey) error {
	var e enc
	args := []any{k.ID, k.MerchantID, k.Livemode, k.Key, k.Fingerprint, k.Method, k.Path, e.time(k.LockedUntil),
		k.LockToken, k.ResponseCode, blob(k.ResponseBody), e.timePtr(k.CompletedAt),
		e.timeNotNull("idempotency key created_at", k.CreatedAt)}
	if e.err != nil {
		return e.err
	}
	return t.insertNew(ctx, "idempotency key", insertIdempotencyKeySQL, append([]any{t.prepared}, args...)...)
}

var (
	insertIdempotencyKeySQL = keyed(`INSERT INTO idempotency_keys (` + idempotencyCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`)
	getIdempotencyKeySQL = keyedLockable(`SELECT `+idempotencyCols+` FROM idempotency_keys
		WHERE merchant_id = $1 AND livemode = $2 AND key = $3`, "idempotency_keys_scope_key")
	updateIdempotencyKeySQL = keyed(`UPDATE idempotency_keys SET locked_until = $1, lock_token = $2,
		response_code = $3, response_body = $4, completed_at = $5 WHERE id = $6`, "idempotency_keys_pkey")
	completeIdempotencyKeySQL = keyed(`UPDATE idempotency_keys SET locked_until = NULL, lock_token = '',
		response_code = $1, response_body = $2, completed_at = $3
		WHERE id = $4 AND lock_token = $5 AND lock_token <> '' AND completed_at IS NULL`, "idempotency_keys_pkey")
	deleteIdempotencyKeySQL = keyed(`DELETE FROM idempotency_keys
		WHERE id = $1 AND (merchant_id, livemode) IS NOT DISTINCT FROM ($2, $3)`, "idempotency_keys_pkey")
)

func (t *tx) GetIdempotencyKey(ctx context.Context, scope payloom.Scope, key string) (*payloom.IdempotencyKey, error) {
	row := t.tx.QueryRow(ctx, t.pick(getIdempotencyKeySQL), t.prepared, scope.MerchantID, scope.Livemode, key)
	var k payloom.IdempotencyKey
	var locked, completed, created pgtype.Timestamptz
	if err := row.Scan(&k.ID, &k.MerchantID, &k.Livemode, &k.Key, &k.Fingerprint, &k.Method, &k.Path, &locked,
		&k.LockToken, &k.ResponseCode, &k.ResponseBody, &completed, &created); err != nil {
		return nil, t.dbError("idempotency key", err)
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
	return t.execOne(ctx, "idempotency key", updateIdempotencyKeySQL, append([]any{t.prepared}, args...)...)
}

func (t *tx) CompleteIdempotencyKey(ctx context.Context, k *payloom.IdempotencyKey, token string) error {
	var e enc
	args := []any{k.ResponseCode, blob(k.ResponseBody), e.timePtr(k.CompletedAt), k.ID, token}
	if e.err != nil {
		return e.err
	}
	return t.execOne(ctx, "idempotency key", completeIdempotencyKeySQL, append([]any{t.prepared}, args...)...)
}

func (t *tx) DeleteIdempotencyKey(ctx context.Context, k *payloom.IdempotencyKey) error {
	return t.execOne(ctx, "idempotency key", deleteIdempotencyKeySQL, t.prepared, k.ID, k.MerchantID, k.Livemode)
}

// DeleteIdempotencyKeysBefore runs on every node at once without waiting on
// or deadlocking with the others: rows another transaction holds (another
// node's purge, or a request) are skipped and left to the next purge.
func (t *tx) DeleteIdempotencyKeysBefore(ctx context.Context, before time.Time, limit int) (int64, error) {
	if before.IsZero() || limit <= 0 {
		return 0, nil
	}
	tag, err := t.exec(ctx, "idempotency key", `DELETE FROM idempotency_keys WHERE id IN (
		SELECT id FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2
		FOR UPDATE SKIP LOCKED)`, before, limit)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
