package sqlite

import (
	"context"
	"database/sql"
	"time"

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
	_, err := t.exec(ctx, "refund", `INSERT INTO refunds (`+refundCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	return err
}

func (t *tx) GetRefund(ctx context.Context, scope payloom.Scope, id string) (*payloom.Refund, error) {
	return scanRefund(t.tx.QueryRowContext(t.c(ctx),
		`SELECT `+refundCols+` FROM refunds WHERE id = ? AND merchant_id = ? AND livemode = ?`,
		id, scope.MerchantID, scope.Livemode))
}

func (t *tx) GetRefundByCreationKey(ctx context.Context, scope payloom.Scope, key string) (*payloom.Refund, error) {
	if key == "" {
		return nil, notFound("refund")
	}
	return scanRefund(t.tx.QueryRowContext(t.c(ctx),
		`SELECT `+refundCols+` FROM refunds WHERE merchant_id = ? AND livemode = ? AND creation_key = ?`,
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
	res, err := t.exec(ctx, "refund", `UPDATE refunds SET amount = ?, currency = ?, status = ?, reason = ?,
		transaction_id = ?, failure = ?, metadata = ?, updated_at = ?, version = version + 1
		WHERE id = ? AND merchant_id = ? AND livemode = ? AND version = ?`, args...)
	if err != nil {
		return err
	}
	if err := t.versionChecked(ctx, "refund", "refunds", res, r.ID, r.MerchantID, r.Livemode); err != nil {
		return err
	}
	r.Version++
	return nil
}

func (t *tx) ListRefunds(ctx context.Context, scope payloom.Scope, f payloom.RefundFilter) ([]*payloom.Refund, bool, error) {
	var where []string
	var args []any
	if f.PaymentID != nil {
		where = append(where, "payment_id = ?")
		args = append(args, *f.PaymentID)
	}
	return list(ctx, t, "refund", "refunds", refundCols, scope, f.ListParams, where, args, scanRefund)
}

func (t *tx) ListStaleRefunds(ctx context.Context, before time.Time, limit int) ([]*payloom.Refund, error) {
	var e enc
	cutoff := e.time(before)
	if e.err != nil {
		return nil, e.err
	}
	if cutoff == nil || limit <= 0 {
		return []*payloom.Refund{}, nil
	}
	rows, err := t.tx.QueryContext(t.c(ctx), `SELECT `+refundCols+` FROM refunds
		WHERE status = 'pending' AND created_at < ? ORDER BY created_at, id LIMIT ?`, cutoff, limit)
	if err != nil {
		return nil, dbError("refund", err)
	}
	return collect(rows, "refund", scanRefund)
}

func scanRefund(row scanner) (*payloom.Refund, error) {
	var r payloom.Refund
	var currency, status, metadata string
	var failure, creationKey sql.NullString
	var created, updated sql.NullInt64
	if err := row.Scan(&r.ID, &r.MerchantID, &r.Livemode, &r.PaymentID, &r.Amount, &currency, &status, &r.Reason,
		&r.TransactionID, &failure, &metadata, &created, &updated, &creationKey, &r.Version); err != nil {
		return nil, dbError("refund", err)
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
