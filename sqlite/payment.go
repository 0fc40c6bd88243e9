package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/internal/rowjson"
)

const paymentCols = `id, merchant_id, livemode, amount, amount_capturable, amount_captured, amount_refunded,
	currency, status, capture_method, customer_id, reference, description, statement_descriptor,
	payment_method, processor, next_action, failure, metadata, created_at, updated_at, creation_key,
	pending_action, pending_action_key, pending_amount, pending_since, version, save_payment_method, expires_at, checkout`

// paymentMutable are the columns UpdatePayment writes, in paymentArgs order
// after the immutable ones.
const paymentSet = `amount = ?, amount_capturable = ?, amount_captured = ?, amount_refunded = ?,
	currency = ?, status = ?, capture_method = ?, customer_id = ?, reference = ?, description = ?,
	statement_descriptor = ?, payment_method = ?, processor = ?, next_action = ?, failure = ?,
	metadata = ?, updated_at = ?, pending_action = ?, pending_action_key = ?, pending_amount = ?,
	pending_since = ?, save_payment_method = ?, expires_at = ?, checkout = ?`

// paymentMutableArgs encodes the mutable fields in paymentSet order.
func paymentMutableArgs(e *enc, p *payloom.Payment) []any {
	args := []any{p.Amount, p.AmountCapturable, p.AmountCaptured, p.AmountRefunded,
		string(p.Currency), string(p.Status), string(p.CaptureMethod), p.CustomerID, p.Reference, p.Description,
		p.StatementDescriptor,
		e.json(rowjson.FromPaymentMethod(p.PaymentMethod), p.PaymentMethod == nil),
		e.json(rowjson.FromProcessor(p.Processor), p.Processor == nil),
		e.json(rowjson.FromNextAction(p.NextAction), p.NextAction == nil),
		e.json(rowjson.FromFailure(p.Failure), p.Failure == nil),
		e.metadata(p.Metadata), e.time(p.UpdatedAt), p.PendingAction, p.PendingActionKey, p.PendingAmount,
		e.time(p.PendingSince), p.SavePaymentMethod}
	return append(args, checkoutArgs(e, &p.PaymentPage)...)
}

func (t *tx) CreatePayment(ctx context.Context, p *payloom.Payment) error {
	var e enc
	args := []any{p.ID, p.MerchantID, p.Livemode, e.timeNotNull("payment created_at", p.CreatedAt),
		nullString(p.CreationKey), p.Version}
	args = append(args, paymentMutableArgs(&e, p)...)
	if e.err != nil {
		return e.err
	}
	_, err := t.exec(ctx, "payment", `INSERT INTO payments (id, merchant_id, livemode, created_at, creation_key, version,
		amount, amount_capturable, amount_captured, amount_refunded, currency, status, capture_method,
		customer_id, reference, description, statement_descriptor, payment_method, processor, next_action,
		failure, metadata, updated_at, pending_action, pending_action_key, pending_amount, pending_since,
		save_payment_method, expires_at, checkout)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	return err
}

func (t *tx) GetPayment(ctx context.Context, scope payloom.Scope, id string) (*payloom.Payment, error) {
	p, err := scanPayment(t.tx.QueryRowContext(t.c(ctx),
		`SELECT `+paymentCols+` FROM payments WHERE id = ? AND merchant_id = ? AND livemode = ?`,
		id, scope.MerchantID, scope.Livemode))
	if err != nil {
		return nil, err
	}
	return p, t.fillAttempts(ctx, []*payloom.Payment{p})
}

func (t *tx) GetPaymentByCreationKey(ctx context.Context, scope payloom.Scope, key string) (*payloom.Payment, error) {
	if key == "" {
		return nil, notFound("payment")
	}
	p, err := scanPayment(t.tx.QueryRowContext(t.c(ctx),
		`SELECT `+paymentCols+` FROM payments WHERE merchant_id = ? AND livemode = ? AND creation_key = ?`,
		scope.MerchantID, scope.Livemode, key))
	if err != nil {
		return nil, err
	}
	return p, t.fillAttempts(ctx, []*payloom.Payment{p})
}

func (t *tx) UpdatePayment(ctx context.Context, p *payloom.Payment) error {
	var e enc
	args := paymentMutableArgs(&e, p)
	if e.err != nil {
		return e.err
	}
	args = append(args, p.ID, p.MerchantID, p.Livemode, p.Version)
	res, err := t.exec(ctx, "payment", `UPDATE payments SET `+paymentSet+`, version = version + 1
		WHERE id = ? AND merchant_id = ? AND livemode = ? AND version = ?`, args...)
	if err != nil {
		return err
	}
	if err := t.versionChecked(ctx, "payment", "payments", res, p.ID, p.MerchantID, p.Livemode); err != nil {
		return err
	}
	p.Version++
	return nil
}

// versionChecked tells a stale Version (CodeConflict) from a missing row
// (CodeNotFound) after a version-guarded UPDATE.
func (t *tx) versionChecked(ctx context.Context, kind, table string, res sql.Result, id, merchantID string, livemode bool) error {
	n, err := res.RowsAffected()
	if err != nil {
		return dbError(kind, err)
	}
	if n == 1 {
		return nil
	}
	var one int
	err = t.tx.QueryRowContext(t.c(ctx), `SELECT 1 FROM `+table+` WHERE id = ? AND merchant_id = ? AND livemode = ?`,
		id, merchantID, livemode).Scan(&one)
	if err != nil {
		return dbError(kind, err)
	}
	return &payloom.Error{Code: payloom.CodeConflict, Message: kind + " was changed by another request"}
}

func (t *tx) ListPayments(ctx context.Context, scope payloom.Scope, f payloom.PaymentFilter) ([]*payloom.Payment, bool, error) {
	var where []string
	var args []any
	if f.Status != nil {
		where = append(where, "status = ?")
		args = append(args, string(*f.Status))
	}
	ps, more, err := list(ctx, t, "payment", "payments", paymentCols, scope, f.ListParams, where, args, scanPayment)
	if err != nil {
		return nil, false, err
	}
	return ps, more, t.fillAttempts(ctx, ps)
}

func (t *tx) ListStalePayments(ctx context.Context, before time.Time, limit int) ([]*payloom.Payment, error) {
	var e enc
	cutoff := e.time(before)
	if e.err != nil {
		return nil, e.err
	}
	if cutoff == nil || limit <= 0 {
		return []*payloom.Payment{}, nil
	}
	// INDEXED BY pins each branch to its partial index: without
	// statistics the planner may otherwise scan whole tables.
	rows, err := t.tx.QueryContext(t.c(ctx), `SELECT `+paymentCols+` FROM payments WHERE id IN (
			SELECT payment_id FROM attempts INDEXED BY attempts_pending WHERE status = 'pending' AND created_at < ?1
			UNION
			SELECT id FROM payments INDEXED BY payments_pending_action WHERE pending_action <> '' AND pending_since < ?1)
		ORDER BY created_at, id LIMIT ?2`, cutoff, limit)
	if err != nil {
		return nil, dbError("payment", err)
	}
	ps, err := collect(rows, "payment", scanPayment)
	if err != nil {
		return nil, err
	}
	return ps, t.fillAttempts(ctx, ps)
}

func scanPayment(row scanner) (*payloom.Payment, error) {
	var p payloom.Payment
	var currency, status, capture, metadata string
	var pm, proc, next, failure, creationKey, checkout sql.NullString
	var created, updated, pendingSince, expires sql.NullInt64
	err := row.Scan(&p.ID, &p.MerchantID, &p.Livemode, &p.Amount, &p.AmountCapturable, &p.AmountCaptured, &p.AmountRefunded,
		&currency, &status, &capture, &p.CustomerID, &p.Reference, &p.Description, &p.StatementDescriptor,
		&pm, &proc, &next, &failure, &metadata, &created, &updated, &creationKey,
		&p.PendingAction, &p.PendingActionKey, &p.PendingAmount, &pendingSince, &p.Version, &p.SavePaymentMethod, &expires, &checkout)
	if err != nil {
		return nil, dbError("payment", err)
	}
	if err := scanCheckout(&p, expires, checkout); err != nil {
		return nil, scanErr("payment", err)
	}
	p.Object = "payment"
	p.Currency = payloom.Currency(currency)
	p.Status = payloom.PaymentStatus(status)
	p.CaptureMethod = payloom.CaptureMethod(capture)
	p.CreatedAt = decTime(created)
	p.UpdatedAt = decTime(updated)
	p.PendingSince = decTime(pendingSince)
	p.CreationKey = creationKey.String
	p.Attempts = []*payloom.Attempt{}

	pmRow, err := decJSON[rowjson.PaymentMethod](pm)
	if err != nil {
		return nil, scanErr("payment", err)
	}
	p.PaymentMethod = pmRow.Domain()
	procRow, err := decJSON[rowjson.Processor](proc)
	if err != nil {
		return nil, scanErr("payment", err)
	}
	p.Processor = procRow.Domain()
	nextRow, err := decJSON[rowjson.NextAction](next)
	if err != nil {
		return nil, scanErr("payment", err)
	}
	p.NextAction = nextRow.Domain()
	failRow, err := decJSON[rowjson.Failure](failure)
	if err != nil {
		return nil, scanErr("payment", err)
	}
	p.Failure = failRow.Domain()
	if p.Metadata, err = decMetadata(metadata); err != nil {
		return nil, scanErr("payment", err)
	}
	return &p, nil
}

// Attempts.

const attemptCols = `id, payment_id, processor, status, code, decline_code, message, raw_code,
	transaction_id, duration_ms, created_at, completed_at, late_check, late_check_at`

func (t *tx) CreateAttempt(ctx context.Context, a *payloom.Attempt) error {
	var e enc
	args := []any{a.ID, a.PaymentID, a.Processor, string(a.Status), a.Code, a.DeclineCode, a.Message, a.RawCode,
		a.TransactionID, a.DurationMS, e.timeNotNull("attempt created_at", a.CreatedAt), e.timePtr(a.CompletedAt),
		string(a.LateCheck), e.time(a.LateCheckAt)}
	if e.err != nil {
		return e.err
	}
	_, err := t.exec(ctx, "attempt", `INSERT INTO attempts (`+attemptCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	return err
}

func (t *tx) UpdateAttempt(ctx context.Context, a *payloom.Attempt) error {
	var e enc
	args := []any{a.Processor, string(a.Status), a.Code, a.DeclineCode, a.Message, a.RawCode, a.TransactionID,
		a.DurationMS, e.timePtr(a.CompletedAt), string(a.LateCheck), e.time(a.LateCheckAt), a.ID}
	if e.err != nil {
		return e.err
	}
	return t.execOne(ctx, "attempt", `UPDATE attempts SET processor = ?, status = ?, code = ?, decline_code = ?,
		message = ?, raw_code = ?, transaction_id = ?, duration_ms = ?, completed_at = ?, late_check = ?,
		late_check_at = ? WHERE id = ?`, args...)
}

func (t *tx) ListLateCheckPayments(ctx context.Context, due time.Time, limit int) ([]*payloom.Payment, error) {
	var e enc
	cutoff := e.time(due)
	if e.err != nil {
		return nil, e.err
	}
	if cutoff == nil || limit <= 0 {
		return []*payloom.Payment{}, nil
	}
	rows, err := t.tx.QueryContext(t.c(ctx), `SELECT `+paymentCols+` FROM payments WHERE id IN (
			SELECT payment_id FROM attempts INDEXED BY attempts_late_check
			WHERE late_check_at IS NOT NULL AND late_check_at <= ?)
		ORDER BY created_at, id LIMIT ?`, cutoff, limit)
	if err != nil {
		return nil, dbError("payment", err)
	}
	ps, err := collect(rows, "payment", scanPayment)
	if err != nil {
		return nil, err
	}
	return ps, t.fillAttempts(ctx, ps)
}

// fillAttempts loads the attempts of ps in creation order with one query
// whose text does not depend on len(ps), so its prepared form is reused.
func (t *tx) fillAttempts(ctx context.Context, ps []*payloom.Payment) error {
	if len(ps) == 0 {
		return nil
	}
	byID := make(map[string]*payloom.Payment, len(ps))
	ids := make([]string, len(ps))
	for i, p := range ps {
		byID[p.ID] = p
		ids[i] = p.ID
	}
	var rows *sql.Rows
	var err error
	if len(ps) == 1 {
		rows, err = t.tx.QueryContext(t.c(ctx), `SELECT `+attemptCols+` FROM attempts WHERE payment_id = ?
			ORDER BY created_at, id`, ids[0])
	} else {
		idsJSON, _ := json.Marshal(ids) // strings always marshal
		rows, err = t.tx.QueryContext(t.c(ctx), `SELECT `+attemptCols+` FROM attempts
			WHERE payment_id IN (SELECT value FROM json_each(?)) ORDER BY payment_id, created_at, id`, string(idsJSON))
	}
	if err != nil {
		return dbError("attempt", err)
	}
	as, err := collect(rows, "attempt", scanAttempt)
	if err != nil {
		return err
	}
	for _, a := range as {
		if p := byID[a.PaymentID]; p != nil {
			p.Attempts = append(p.Attempts, a)
		}
	}
	return nil
}

func scanAttempt(row scanner) (*payloom.Attempt, error) {
	var a payloom.Attempt
	var status, lateCheck string
	var created, completed, lateCheckAt sql.NullInt64
	if err := row.Scan(&a.ID, &a.PaymentID, &a.Processor, &status, &a.Code, &a.DeclineCode, &a.Message, &a.RawCode,
		&a.TransactionID, &a.DurationMS, &created, &completed, &lateCheck, &lateCheckAt); err != nil {
		return nil, dbError("attempt", err)
	}
	a.Status = payloom.AttemptStatus(status)
	a.CreatedAt = decTime(created)
	a.CompletedAt = decTimePtr(completed)
	a.LateCheck = payloom.LateCheck(lateCheck)
	a.LateCheckAt = decTime(lateCheckAt)
	return &a, nil
}
