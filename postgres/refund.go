package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/internal/rowjson"
)

const refundCols = `id, merchant_id, livemode, payment_id, amount, currency, status, reason, transaction_id,
	failure, metadata, created_at, updated_at, creation_key, version`

func (t *tx) CreateRefund(ctx context.Context, r *payloom.Refund) error {
	var e enc
	args := []any{r.ID, r.MerchantID, r.Livemode, r.PaymentID, r.Amount, string(r.Currency), string(r.Status), r.Reason,
		r.TransactionID, e.json(rowjson.FromFailure(r.Failure), r.Failure == nil), e.metadata(r.Metadata),
		e.timeNotNull("refund created_at", r.CreatedAt), e.time(r.UpdatedAt), nullString(r.CreationKey), r.Version}
	if e.err != nil {
		return e.err
	}
	return t.insertNew(ctx, "refund", `INSERT INTO refunds (`+refundCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`, args...)
}

func (t *tx) GetRefund(ctx context.Context, scope payloom.Scope, id string) (*payloom.Refund, error) {
	return t.scanRefund(t.tx.QueryRow(ctx,
		`SELECT `+refundCols+` FROM refunds WHERE id = $1 AND merchant_id = $2 AND livemode = $3`+t.forUpdate(),
		id, scope.MerchantID, scope.Livemode))
}

func (t *tx) GetRefundByCreationKey(ctx context.Context, scope payloom.Scope, key string) (*payloom.Refund, error) {
	if key == "" {
		return nil, notFound("refund")
	}
	return t.scanRefund(t.tx.QueryRow(ctx,
		`SELECT `+refundCols+` FROM refunds WHERE merchant_id = $1 AND livemode = $2 AND creation_key = $3`+t.forUpdate(),
		scope.MerchantID, scope.Livemode, key))
}

func (t *tx) UpdateRefund(ctx context.Context, r *payloom.Refund) error {
	var e enc
	args := []any{r.Amount, string(r.Currency), string(r.Status), r.Reason, r.TransactionID,
		e.json(rowjson.FromFailure(r.Failure), r.Failure == nil), e.metadata(r.Metadata), e.time(r.UpdatedAt),
		r.ID, r.MerchantID, r.Livemode, r.Version}
	if e.err != nil {
		return e.err
	}
	tag, err := t.exec(ctx, "refund", `UPDATE refunds SET amount = $1, currency = $2, status = $3, reason = $4,
		transaction_id = $5, failure = $6, metadata = $7, updated_at = $8, version = version + 1
		WHERE id = $9 AND merchant_id = $10 AND livemode = $11 AND version = $12`, args...)
	if err != nil {
		return err
	}
	if err := t.versionChecked(ctx, "refund", "refunds", tag.RowsAffected(), r.ID, r.MerchantID, r.Livemode); err != nil {
		return err
	}
	r.Version++
	return nil
}

func (t *tx) ListRefunds(ctx context.Context, scope payloom.Scope, f payloom.RefundFilter) ([]*payloom.Refund, bool, error) {
	var a args
	var where []string
	if f.PaymentID != nil {
		where = append(where, "payment_id = "+a.arg(*f.PaymentID))
	}
	return list(ctx, t, "refund", "refunds", refundCols, scope, f.ListParams, a, where, t.scanRefund)
}

// ListStaleRefunds locks and skips like ListStalePayments.
func (t *tx) ListStaleRefunds(ctx context.Context, before time.Time, limit int) ([]*payloom.Refund, error) {
	if before.IsZero() || limit <= 0 {
		return []*payloom.Refund{}, nil
	}
	lock := ""
	if t.update {
		lock = " FOR NO KEY UPDATE SKIP LOCKED"
	}
	rows, err := t.tx.Query(ctx, `SELECT `+refundCols+` FROM refunds
		WHERE status = 'pending' AND created_at < $1 ORDER BY created_at, id LIMIT $2`+lock, before, limit)
	if err != nil {
		return nil, t.dbError("refund", err)
	}
	return collect(t, rows, "refund", t.scanRefund)
}

func (t *tx) scanRefund(row rowScanner) (*payloom.Refund, error) {
	var r payloom.Refund
	var currency, status string
	var failure, metadata []byte
	var creationKey pgtype.Text
	var created, updated pgtype.Timestamptz
	if err := row.Scan(&r.ID, &r.MerchantID, &r.Livemode, &r.PaymentID, &r.Amount, &currency, &status, &r.Reason,
		&r.TransactionID, &failure, &metadata, &created, &updated, &creationKey, &r.Version); err != nil {
		return nil, t.dbError("refund", err)
	}
	r.Object = "refund"
	r.Currency = payloom.Currency(currency)
	r.Status = payloom.RefundStatus(status)
	r.CreatedAt = decTime(created)
	r.UpdatedAt = decTime(updated)
	r.CreationKey = creationKey.String
	f, err := decJSON[rowjson.Failure](failure)
	if err != nil {
		return nil, scanErr("refund", err)
	}
	r.Failure = f.Domain()
	if r.Metadata, err = decMetadata(metadata); err != nil {
		return nil, scanErr("refund", err)
	}
	return &r, nil
}
