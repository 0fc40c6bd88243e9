package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/internal/rowjson"
)

const paymentCols = `id, merchant_id, livemode, amount, amount_capturable, amount_captured, amount_refunded,
	currency, status, capture_method, customer_id, reference, description, statement_descriptor,
	payment_method, processor, next_action, failure, metadata, created_at, updated_at, creation_key,
	pending_action, pending_action_key, pending_amount, pending_since, version, save_payment_method, expires_at, checkout`

// paymentMutableCols are the columns UpdatePayment writes, in
// paymentMutableArgs order.
var paymentMutableCols = []string{"amount", "amount_capturable", "amount_captured", "amount_refunded",
	"currency", "status", "capture_method", "customer_id", "reference", "description",
	"statement_descriptor", "payment_method", "processor", "next_action", "failure",
	"metadata", "updated_at", "pending_action", "pending_action_key", "pending_amount",
	"pending_since", "save_payment_method", "expires_at", "checkout"}

// paymentMutableArgs encodes the mutable fields in paymentMutableCols order.
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

// placeholders returns "$from, $from+1, ..." for n arguments.
func placeholders(from, n int) string {
	var a args = make(args, from-1)
	ps := make([]string, n)
	for i := range ps {
		ps[i] = a.arg(nil)
	}
	return strings.Join(ps, ", ")
}

// setList returns "col1 = $from, col2 = $from+1, ...".
func setList(cols []string, from int) string {
	var a args = make(args, from-1)
	sets := make([]string, len(cols))
	for i, c := range cols {
		sets[i] = c + " = " + a.arg(nil)
	}
	return strings.Join(sets, ", ")
}

var (
	insertPaymentSQL = keyed(`INSERT INTO payments (id, merchant_id, livemode, created_at, creation_key, version, ` +
		strings.Join(paymentMutableCols, ", ") + `) VALUES (` + placeholders(1, 6+len(paymentMutableCols)) + `)`)
	updatePaymentSQL = keyed(`UPDATE payments SET `+setList(paymentMutableCols, 1)+`, version = version + 1
		WHERE id = $`+strconv.Itoa(len(paymentMutableCols)+1)+
		` AND (merchant_id, livemode) IS NOT DISTINCT FROM ($`+strconv.Itoa(len(paymentMutableCols)+2)+
		`, $`+strconv.Itoa(len(paymentMutableCols)+3)+`) AND version = $`+strconv.Itoa(len(paymentMutableCols)+4),
		"payments_pkey")
	getPaymentByCreationKeySQL = keyedLockable(`SELECT `+paymentCols+` FROM payments
		WHERE merchant_id = $1 AND livemode = $2 AND creation_key = $3`, "payments_creation_key")
	getPaymentSQL = keyedLockable(`SELECT `+paymentCols+` FROM payments
		WHERE id = $1 AND (merchant_id, livemode) IS NOT DISTINCT FROM ($2, $3)`, "payments_pkey")
	insertAttemptSQL = keyed(`INSERT INTO attempts (` + attemptCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`)
	updateAttemptSQL = keyed(`UPDATE attempts SET processor = $1, status = $2, code = $3, decline_code = $4,
		message = $5, raw_code = $6, transaction_id = $7, duration_ms = $8, completed_at = $9, late_check = $10,
		late_check_at = $11 WHERE id = $12`, "attempts_pkey")
	// paymentAttemptsSQL reads one payment's attempts; the attempts of
	// several (lists) are read with ANY, planned for the number of ids.
	paymentAttemptsSQL = keyed(`SELECT `+attemptCols+` FROM attempts WHERE payment_id = $1
		ORDER BY payment_id, created_at, id`, "attempts_payment")
)

func (t *tx) CreatePayment(ctx context.Context, p *payloom.Payment) error {
	var e enc
	args := []any{p.ID, p.MerchantID, p.Livemode, e.timeNotNull("payment created_at", p.CreatedAt),
		nullString(p.CreationKey), p.Version}
	args = append(args, paymentMutableArgs(&e, p)...)
	if e.err != nil {
		return e.err
	}
	return t.insertNew(ctx, "payment", insertPaymentSQL, append([]any{t.prepared}, args...)...)
}

func (t *tx) GetPayment(ctx context.Context, scope payloom.Scope, id string) (*payloom.Payment, error) {
	p, err := t.scanPayment(t.tx.QueryRow(ctx, t.pick(getPaymentSQL), t.prepared, id, scope.MerchantID, scope.Livemode))
	if err != nil {
		return nil, err
	}
	return p, t.fillAttempts(ctx, []*payloom.Payment{p})
}

func (t *tx) GetPaymentByCreationKey(ctx context.Context, scope payloom.Scope, key string) (*payloom.Payment, error) {
	if key == "" {
		return nil, notFound("payment")
	}
	p, err := t.scanPayment(t.tx.QueryRow(ctx, t.pick(getPaymentByCreationKeySQL), t.prepared,
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
	tag, err := t.exec(ctx, "payment", updatePaymentSQL, append([]any{t.prepared}, args...)...)
	if err != nil {
		return err
	}
	if err := t.versionChecked(ctx, "payment", "payments", tag.RowsAffected(), p.ID, p.MerchantID, p.Livemode); err != nil {
		return err
	}
	p.Version++
	return nil
}

// versionChecked tells a stale Version (CodeConflict) from a missing row
// (CodeNotFound) after a version-guarded UPDATE.
func (t *tx) versionChecked(ctx context.Context, kind, table string, n int64, id, merchantID string, livemode bool) error {
	if n == 1 {
		return nil
	}
	var one int
	err := t.tx.QueryRow(ctx, `SELECT 1 FROM `+table+` WHERE id = $1 AND merchant_id = $2 AND livemode = $3`,
		id, merchantID, livemode).Scan(&one)
	if err != nil {
		return t.dbError(kind, err)
	}
	return &payloom.Error{Code: payloom.CodeConflict, Message: kind + " was changed by another request"}
}

func (t *tx) ListPayments(ctx context.Context, scope payloom.Scope, f payloom.PaymentFilter) ([]*payloom.Payment, bool, error) {
	var a args
	var where []string
	if f.Status != nil {
		where = append(where, "status = "+a.arg(string(*f.Status)))
	}
	ps, more, err := list(ctx, t, "payment", "payments", paymentCols, scope, f.ListParams, a, where, t.scanPayment)
	if err != nil {
		return nil, false, err
	}
	return ps, more, t.fillAttempts(ctx, ps)
}

// ListStalePayments, inside Update, locks the rows it returns and skips
// rows another transaction holds: recovery loops running on every node
// split the stale payments between them instead of working on the same ones,
// and leave alone a payment a live request is working on.
func (t *tx) ListStalePayments(ctx context.Context, before time.Time, limit int) ([]*payloom.Payment, error) {
	if before.IsZero() || limit <= 0 {
		return []*payloom.Payment{}, nil
	}
	lock := ""
	if t.update {
		lock = " FOR NO KEY UPDATE SKIP LOCKED"
	}
	// Both branches match a partial index.
	rows, err := t.tx.Query(ctx, `SELECT `+paymentCols+` FROM payments WHERE id IN (
			SELECT payment_id FROM attempts WHERE status = 'pending' AND created_at < $1
			UNION
			SELECT id FROM payments WHERE pending_action <> '' AND pending_since < $1)
		ORDER BY created_at, id LIMIT $2`+lock, before, limit)
	if err != nil {
		return nil, t.dbError("payment", err)
	}
	ps, err := collect(t, rows, "payment", t.scanPayment)
	if err != nil {
		return nil, err
	}
	return ps, t.fillAttempts(ctx, ps)
}

func (t *tx) scanPayment(row rowScanner) (*payloom.Payment, error) {
	var p payloom.Payment
	var currency, status, capture string
	var pm, proc, next, failure, metadata, checkout []byte
	var creationKey pgtype.Text
	var created, updated, pendingSince, expires pgtype.Timestamptz
	err := row.Scan(&p.ID, &p.MerchantID, &p.Livemode, &p.Amount, &p.AmountCapturable, &p.AmountCaptured, &p.AmountRefunded,
		&currency, &status, &capture, &p.CustomerID, &p.Reference, &p.Description, &p.StatementDescriptor,
		&pm, &proc, &next, &failure, &metadata, &created, &updated, &creationKey,
		&p.PendingAction, &p.PendingActionKey, &p.PendingAmount, &pendingSince, &p.Version, &p.SavePaymentMethod, &expires, &checkout)
	if err != nil {
		return nil, t.dbError("payment", err)
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
	return t.insertNew(ctx, "attempt", insertAttemptSQL, append([]any{t.prepared}, args...)...)
}

func (t *tx) UpdateAttempt(ctx context.Context, a *payloom.Attempt) error {
	var e enc
	args := []any{a.Processor, string(a.Status), a.Code, a.DeclineCode, a.Message, a.RawCode, a.TransactionID,
		a.DurationMS, e.timePtr(a.CompletedAt), string(a.LateCheck), e.time(a.LateCheckAt), a.ID}
	if e.err != nil {
		return e.err
	}
	return t.execOne(ctx, "attempt", updateAttemptSQL, append([]any{t.prepared}, args...)...)
}

// ListLateCheckPayments, inside Update, locks the rows it returns and
// skips rows another transaction holds, like ListStalePayments.
func (t *tx) ListLateCheckPayments(ctx context.Context, due time.Time, limit int) ([]*payloom.Payment, error) {
	if due.IsZero() || limit <= 0 {
		return []*payloom.Payment{}, nil
	}
	lock := ""
	if t.update {
		lock = " FOR NO KEY UPDATE SKIP LOCKED"
	}
	// The subquery matches the partial index attempts_late_check.
	rows, err := t.tx.Query(ctx, `SELECT `+paymentCols+` FROM payments WHERE id IN (
			SELECT payment_id FROM attempts WHERE late_check_at IS NOT NULL AND late_check_at <= $1)
		ORDER BY created_at, id LIMIT $2`+lock, due, limit)
	if err != nil {
		return nil, t.dbError("payment", err)
	}
	ps, err := collect(t, rows, "payment", t.scanPayment)
	if err != nil {
		return nil, err
	}
	return ps, t.fillAttempts(ctx, ps)
}

// fillAttempts loads the attempts of ps in creation order with one query.
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
	var rows pgx.Rows
	var err error
	if len(ids) == 1 {
		rows, err = t.tx.Query(ctx, paymentAttemptsSQL, t.prepared, ids[0])
	} else {
		rows, err = t.tx.Query(ctx, `SELECT `+attemptCols+` FROM attempts WHERE payment_id = ANY($1)
			ORDER BY payment_id, created_at, id`, ids)
	}
	if err != nil {
		return t.dbError("attempt", err)
	}
	as, err := collect(t, rows, "attempt", t.scanAttempt)
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

func (t *tx) scanAttempt(row rowScanner) (*payloom.Attempt, error) {
	var a payloom.Attempt
	var status, lateCheck string
	var created, completed, lateCheckAt pgtype.Timestamptz
	if err := row.Scan(&a.ID, &a.PaymentID, &a.Processor, &status, &a.Code, &a.DeclineCode, &a.Message, &a.RawCode,
		&a.TransactionID, &a.DurationMS, &created, &completed, &lateCheck, &lateCheckAt); err != nil {
		return nil, t.dbError("attempt", err)
	}
	a.Status = payloom.AttemptStatus(status)
	a.CreatedAt = decTime(created)
	a.CompletedAt = decTimePtr(completed)
	a.LateCheck = payloom.LateCheck(lateCheck)
	a.LateCheckAt = decTime(lateCheckAt)
	return &a, nil
}
