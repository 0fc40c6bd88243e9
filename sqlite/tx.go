package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/payloom/payloom"
)

// tx implements payloom.Tx on one database/sql transaction. Statements go
// straight to the driver, whose per-connection cache reuses their prepared
// form.
type tx struct {
	tx *sql.Tx
	// detach is set inside Update: statements then ignore the caller's
	// cancellation. The driver answers a canceled context with
	// sqlite3_interrupt, which can roll back the whole transaction, and
	// in a group commit that transaction holds other callers' work too.
	// (It also saves the driver a goroutine per statement.)
	detach bool
}

// c returns the context for one statement of fn's transaction.
func (t *tx) c(ctx context.Context) context.Context {
	if t.detach {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

var _ payloom.Tx = (*tx)(nil)

func (t *tx) exec(ctx context.Context, kind, q string, args ...any) (sql.Result, error) {
	res, err := t.tx.ExecContext(t.c(ctx), q, args...)
	if err != nil {
		return nil, dbError(kind, err)
	}
	return res, nil
}

// execOne runs an UPDATE that must hit one row, else CodeNotFound.
func (t *tx) execOne(ctx context.Context, kind, q string, args ...any) error {
	res, err := t.exec(ctx, kind, q, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbError(kind, err)
	}
	if n == 0 {
		return notFound(kind)
	}
	return nil
}

// insertNew runs an INSERT ... ON CONFLICT DO NOTHING: zero rows means the
// key exists, reported as CodeAlreadyExists without a failed statement.
func (t *tx) insertNew(ctx context.Context, kind, q string, args ...any) error {
	res, err := t.exec(ctx, kind, q, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbError(kind, err)
	}
	if n == 0 {
		return &payloom.Error{Code: payloom.CodeAlreadyExists, Message: kind + " already exists"}
	}
	return nil
}

// Merchants.

const merchantCols = `id, name, min_amount, max_amount, idempotency_key_optional, created_at`

func (t *tx) CreateMerchant(ctx context.Context, m *payloom.Merchant) error {
	var e enc
	args := []any{m.ID, m.Name, m.MinAmount, m.MaxAmount, m.IdempotencyKeyOptional,
		e.timeNotNull("merchant created_at", m.CreatedAt)}
	if e.err != nil {
		return e.err
	}
	_, err := t.exec(ctx, "merchant", `INSERT INTO merchants (`+merchantCols+`) VALUES (?, ?, ?, ?, ?, ?)`, args...)
	return err
}

func (t *tx) GetMerchant(ctx context.Context, id string) (*payloom.Merchant, error) {
	row := t.tx.QueryRowContext(t.c(ctx), `SELECT `+merchantCols+` FROM merchants WHERE id = ?`, id)
	var m payloom.Merchant
	var created sql.NullInt64
	if err := row.Scan(&m.ID, &m.Name, &m.MinAmount, &m.MaxAmount, &m.IdempotencyKeyOptional, &created); err != nil {
		return nil, dbError("merchant", err)
	}
	m.CreatedAt = decTime(created)
	return &m, nil
}

func (t *tx) UpdateMerchant(ctx context.Context, m *payloom.Merchant) error {
	return t.execOne(ctx, "merchant",
		`UPDATE merchants SET name = ?, min_amount = ?, max_amount = ?, idempotency_key_optional = ? WHERE id = ?`,
		m.Name, m.MinAmount, m.MaxAmount, m.IdempotencyKeyOptional, m.ID)
}

func (t *tx) CountMerchants(ctx context.Context) (int, error) {
	var n int
	if err := t.tx.QueryRowContext(t.c(ctx), `SELECT count(*) FROM merchants`).Scan(&n); err != nil {
		return 0, dbError("merchant", err)
	}
	return n, nil
}

// API keys.

const apiKeyCols = `id, merchant_id, platform, livemode, lookup, hash, last4, created_at, revoked_at, permissions`

func (t *tx) CreateAPIKey(ctx context.Context, k *payloom.APIKey) error {
	var e enc
	args := []any{k.ID, nullString(k.MerchantID), k.Platform, k.Livemode, k.Lookup, blob(k.Hash), k.Last4,
		e.timeNotNull("api key created_at", k.CreatedAt), e.timePtr(k.RevokedAt), payloom.JoinPermissions(k.Permissions)}
	if e.err != nil {
		return e.err
	}
	_, err := t.exec(ctx, "api key", `INSERT INTO api_keys (`+apiKeyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	return err
}

func (t *tx) GetAPIKey(ctx context.Context, id string) (*payloom.APIKey, error) {
	return scanAPIKey(t.tx.QueryRowContext(t.c(ctx), `SELECT `+apiKeyCols+` FROM api_keys WHERE id = ?`, id))
}

func (t *tx) GetAPIKeyByLookup(ctx context.Context, lookup string) (*payloom.APIKey, error) {
	return scanAPIKey(t.tx.QueryRowContext(t.c(ctx), `SELECT `+apiKeyCols+` FROM api_keys WHERE lookup = ?`, lookup))
}

func scanAPIKey(row scanner) (*payloom.APIKey, error) {
	var k payloom.APIKey
	var merchant sql.NullString
	var created, revoked sql.NullInt64
	var perms string
	if err := row.Scan(&k.ID, &merchant, &k.Platform, &k.Livemode, &k.Lookup, &k.Hash, &k.Last4, &created, &revoked, &perms); err != nil {
		return nil, dbError("api key", err)
	}
	k.Permissions = decPermissions(perms)
	k.MerchantID = merchant.String
	k.Hash = nonNilBytes(k.Hash)
	k.CreatedAt = decTime(created)
	k.RevokedAt = decTimePtr(revoked)
	return &k, nil
}

func (t *tx) UpdateAPIKey(ctx context.Context, k *payloom.APIKey) error {
	var e enc
	revoked := e.timePtr(k.RevokedAt)
	if e.err != nil {
		return e.err
	}
	return t.execOne(ctx, "api key", `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, revoked, k.ID)
}

// Cards.

const cardCols = `id, merchant_id, livemode, token, brand, first6, last4, exp_month, exp_year,
	fingerprint, holder_name, ciphertext, key_id, created_at, country`

func (t *tx) CreateCard(ctx context.Context, c *payloom.Card) error {
	var e enc
	s := &c.Summary
	args := []any{c.ID, c.MerchantID, c.Livemode, s.Token, string(s.Brand), s.First6, s.Last4, s.ExpMonth, s.ExpYear,
		s.Fingerprint, s.HolderName, blob(c.Ciphertext), c.KeyID, e.timeNotNull("card created_at", c.CreatedAt), s.Country}
	if e.err != nil {
		return e.err
	}
	_, err := t.exec(ctx, "card", `INSERT INTO cards (`+cardCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	return err
}

func (t *tx) GetCard(ctx context.Context, scope payloom.Scope, id string) (*payloom.Card, error) {
	row := t.tx.QueryRowContext(t.c(ctx), `SELECT `+cardCols+` FROM cards WHERE id = ? AND merchant_id = ? AND livemode = ?`,
		id, scope.MerchantID, scope.Livemode)
	var c payloom.Card
	s := &c.Summary
	var brand string
	var created sql.NullInt64
	if err := row.Scan(&c.ID, &c.MerchantID, &c.Livemode, &s.Token, &brand, &s.First6, &s.Last4, &s.ExpMonth, &s.ExpYear,
		&s.Fingerprint, &s.HolderName, &c.Ciphertext, &c.KeyID, &created, &s.Country); err != nil {
		return nil, dbError("card", err)
	}
	s.Brand = payloom.CardBrand(brand)
	c.Ciphertext = nonNilBytes(c.Ciphertext)
	c.CreatedAt = decTime(created)
	return &c, nil
}

// Sandbox operations.

func (t *tx) CreateSandboxOperation(ctx context.Context, op *payloom.SandboxOperation) error {
	var e enc
	args := []any{op.Key, op.Kind, op.TransactionID, op.Amount, string(op.Currency), blob(op.Result),
		e.timeNotNull("sandbox operation created_at", op.CreatedAt)}
	if e.err != nil {
		return e.err
	}
	return t.insertNew(ctx, "sandbox operation",
		`INSERT INTO sandbox_operations (key, kind, transaction_id, amount, currency, result, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, args...)
}

func (t *tx) GetSandboxOperation(ctx context.Context, key string) (*payloom.SandboxOperation, error) {
	row := t.tx.QueryRowContext(t.c(ctx),
		`SELECT key, kind, transaction_id, amount, currency, result, created_at FROM sandbox_operations WHERE key = ?`, key)
	var op payloom.SandboxOperation
	var currency string
	var created sql.NullInt64
	if err := row.Scan(&op.Key, &op.Kind, &op.TransactionID, &op.Amount, &currency, &op.Result, &created); err != nil {
		return nil, dbError("sandbox operation", err)
	}
	op.Currency = payloom.Currency(currency)
	op.Result = nonNilBytes(op.Result)
	op.CreatedAt = decTime(created)
	return &op, nil
}

func (t *tx) CountSandboxOperations(ctx context.Context, kind, transactionID string) (int, error) {
	var n int
	var err error
	if transactionID == "" {
		err = t.tx.QueryRowContext(t.c(ctx), `SELECT count(*) FROM sandbox_operations WHERE kind = ?`, kind).Scan(&n)
	} else {
		err = t.tx.QueryRowContext(t.c(ctx), `SELECT count(*) FROM sandbox_operations WHERE kind = ? AND transaction_id = ?`,
			kind, transactionID).Scan(&n)
	}
	if err != nil {
		return 0, dbError("sandbox operation", err)
	}
	return n, nil
}

// scanErr wraps a decoding failure of a row.
func scanErr(kind string, err error) error {
	return fmt.Errorf("sqlite: read %s: %w", kind, err)
}
