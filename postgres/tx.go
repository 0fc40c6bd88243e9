package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/payloom/payloom"
)

// tx implements payloom.Tx on one pgx transaction.
type tx struct {
	tx pgx.Tx
	// update is set inside Update: reads of rows the transaction may
	// change take row locks.
	update bool
	// prepared runs a keyed statement (see Statement plans): passed as
	// its first argument.
	prepared pgx.QueryExecMode
	// retryErr is the first serialization failure or deadlock a statement
	// hit. The transaction is then aborted, whatever fn does with the
	// error, and Update runs fn again.
	retryErr error
}

var _ payloom.Tx = (*tx)(nil)

// dbError translates err and notes whether the transaction must be retried.
func (t *tx) dbError(kind string, err error) error {
	if err != nil && t.retryErr == nil && isRetryable(err) {
		t.retryErr = err
	}
	return dbError(kind, err)
}

// forUpdate is the locking clause for a read of a row the transaction may
// change: nothing in a read-only View; inside Update, FOR NO KEY UPDATE.
// That is the lock an UPDATE of non-key columns takes, so two writers of
// one row queue as with FOR UPDATE, but it does not block the FOR KEY SHARE
// lock a foreign key check takes on the parent row: creating an attempt,
// refund or event of a locked payment, or a payment of a locked merchant,
// does not wait for the lock holder.
func (t *tx) forUpdate() string {
	if t.update {
		return forNoKeyUpdate
	}
	return ""
}

const forNoKeyUpdate = " FOR NO KEY UPDATE"

// Statement plans.
//
// By default a statement is planned for its values on every call: Open
// makes pgx send statements unnamed (QueryExecModeCacheDescribe), and
// PostgreSQL makes a custom plan for an unnamed statement each time. That
// is right for lists and searches, whose best index depends on the values.
//
// A statement declared with keyed reads its rows through one unique index,
// or inserts one row, so one plan is right for every value. It runs as a
// named prepared statement (t.prepared as its first argument): after five
// custom plans PostgreSQL reuses a generic plan and stops planning it.
// Planning was a quarter of PostgreSQL's CPU on the payment path, where
// every statement is keyed. A keyed statement that also checks the scope
// writes it as (merchant_id, livemode) IS NOT DISTINCT FROM (...), which no
// index can serve: the generic plan is made without the values, perhaps
// before the table has statistics, and with "merchant_id = $2 AND livemode
// = $3" it could pick an index on (merchant_id, livemode, ...) and read
// every row of the merchant for one lookup. TestKeyedStatementPlans checks
// the generic plan of every keyed statement.
//
// A URL that chooses pgx's statement handling (default_query_exec_mode,
// statement_cache_capacity, description_cache_capacity) is followed for
// every statement, keyed or not, and every statement is then planned for
// its values (plan_cache_mode=force_custom_plan), unless the URL sets
// plan_cache_mode too.

// keyedStatement is a statement declared with keyed and the indexes its
// generic plan may read (none for an INSERT ... VALUES).
type keyedStatement struct {
	sql     string
	indexes []string
}

// keyedStatements lists every keyed statement, for TestKeyedStatementPlans.
var keyedStatements []keyedStatement

// keyed declares sql a keyed statement (see Statement plans) whose plan
// reads only through indexes, and returns it.
func keyed(sql string, indexes ...string) string {
	keyedStatements = append(keyedStatements, keyedStatement{sql, indexes})
	return sql
}

// lockable is a keyed read in its two forms: as is, and locking its row
// inside Update (forUpdate).
type lockable struct{ plain, locked string }

func keyedLockable(sql string, indexes ...string) lockable {
	return lockable{keyed(sql, indexes...), keyed(sql+forNoKeyUpdate, indexes...)}
}

// pick is l's form for t: locking inside Update, plain in a View.
func (t *tx) pick(l lockable) string {
	if t.update {
		return l.locked
	}
	return l.plain
}

// rowScanner is pgx.Row or pgx.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

func (t *tx) exec(ctx context.Context, kind, q string, args ...any) (pgconn.CommandTag, error) {
	tag, err := t.tx.Exec(ctx, q, args...)
	if err != nil {
		return tag, t.dbError(kind, err)
	}
	return tag, nil
}

// execOne runs an UPDATE that must hit one row, else CodeNotFound.
func (t *tx) execOne(ctx context.Context, kind, q string, args ...any) error {
	tag, err := t.exec(ctx, kind, q, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return notFound(kind)
	}
	return nil
}

// insertNew runs an INSERT ... ON CONFLICT DO NOTHING: zero rows means a
// unique key exists, reported as CodeAlreadyExists without a failed
// statement, so that the transaction stays usable (on PostgreSQL a failed
// statement aborts it).
func (t *tx) insertNew(ctx context.Context, kind, q string, args ...any) error {
	tag, err := t.exec(ctx, kind, q+` ON CONFLICT DO NOTHING`, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return alreadyExists(kind)
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
	return t.insertNew(ctx, "merchant", `INSERT INTO merchants (`+merchantCols+`) VALUES ($1, $2, $3, $4, $5, $6)`, args...)
}

var getMerchantSQL = keyedLockable(`SELECT `+merchantCols+` FROM merchants WHERE id = $1`, "merchants_pkey")

func (t *tx) GetMerchant(ctx context.Context, id string) (*payloom.Merchant, error) {
	row := t.tx.QueryRow(ctx, t.pick(getMerchantSQL), t.prepared, id)
	var m payloom.Merchant
	var created pgtype.Timestamptz
	if err := row.Scan(&m.ID, &m.Name, &m.MinAmount, &m.MaxAmount, &m.IdempotencyKeyOptional, &created); err != nil {
		return nil, t.dbError("merchant", err)
	}
	m.CreatedAt = decTime(created)
	return &m, nil
}

func (t *tx) UpdateMerchant(ctx context.Context, m *payloom.Merchant) error {
	return t.execOne(ctx, "merchant",
		`UPDATE merchants SET name = $1, min_amount = $2, max_amount = $3, idempotency_key_optional = $4 WHERE id = $5`,
		m.Name, m.MinAmount, m.MaxAmount, m.IdempotencyKeyOptional, m.ID)
}

func (t *tx) CountMerchants(ctx context.Context) (int, error) {
	var n int
	if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM merchants`).Scan(&n); err != nil {
		return 0, t.dbError("merchant", err)
	}
	return n, nil
}

// API keys.

const apiKeyCols = `id, merchant_id, platform, livemode, lookup, hash, last4, created_at, revoked_at, permissions`

func (t *tx) CreateAPIKey(ctx context.Context, k *payloom.APIKey) error {
	var e enc
	args := []any{k.ID, nullString(k.MerchantID), k.Platform, k.Livemode, k.Lookup, blob(k.Hash), k.Last4,
		e.timeNotNull("api key created_at", k.CreatedAt), e.timePtr(k.RevokedAt), permissionNames(k.Permissions)}
	if e.err != nil {
		return e.err
	}
	return t.insertNew(ctx, "api key", `INSERT INTO api_keys (`+apiKeyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, args...)
}

func (t *tx) GetAPIKey(ctx context.Context, id string) (*payloom.APIKey, error) {
	return t.scanAPIKey(t.tx.QueryRow(ctx, `SELECT `+apiKeyCols+` FROM api_keys WHERE id = $1`+t.forUpdate(), id))
}

// GetAPIKeyByLookup does not lock: it serves authentication, which only
// reads.
func (t *tx) GetAPIKeyByLookup(ctx context.Context, lookup string) (*payloom.APIKey, error) {
	return t.scanAPIKey(t.tx.QueryRow(ctx, getAPIKeyByLookupSQL, t.prepared, lookup))
}

var getAPIKeyByLookupSQL = keyed(`SELECT `+apiKeyCols+` FROM api_keys WHERE lookup = $1`, "api_keys_lookup")

func (t *tx) scanAPIKey(row rowScanner) (*payloom.APIKey, error) {
	var k payloom.APIKey
	var merchant pgtype.Text
	var created, revoked pgtype.Timestamptz
	var perms []string
	if err := row.Scan(&k.ID, &merchant, &k.Platform, &k.Livemode, &k.Lookup, &k.Hash, &k.Last4, &created, &revoked, &perms); err != nil {
		return nil, t.dbError("api key", err)
	}
	k.Permissions = make([]payloom.Permission, len(perms))
	for i, p := range perms {
		k.Permissions[i] = payloom.Permission(p)
	}
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
	return t.execOne(ctx, "api key", `UPDATE api_keys SET revoked_at = $1 WHERE id = $2`, revoked, k.ID)
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
	return t.insertNew(ctx, "card", `INSERT INTO cards (`+cardCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`, args...)
}

var getCardSQL = keyed(`SELECT `+cardCols+` FROM cards
	WHERE id = $1 AND (merchant_id, livemode) IS NOT DISTINCT FROM ($2, $3)`, "cards_pkey")

// GetCard does not lock: cards never change.
func (t *tx) GetCard(ctx context.Context, scope payloom.Scope, id string) (*payloom.Card, error) {
	row := t.tx.QueryRow(ctx, getCardSQL, t.prepared, id, scope.MerchantID, scope.Livemode)
	var c payloom.Card
	s := &c.Summary
	var brand string
	var created pgtype.Timestamptz
	if err := row.Scan(&c.ID, &c.MerchantID, &c.Livemode, &s.Token, &brand, &s.First6, &s.Last4, &s.ExpMonth, &s.ExpYear,
		&s.Fingerprint, &s.HolderName, &c.Ciphertext, &c.KeyID, &created, &s.Country); err != nil {
		return nil, t.dbError("card", err)
	}
	s.Brand = payloom.CardBrand(brand)
	c.Ciphertext = nonNilBytes(c.Ciphertext)
	c.CreatedAt = decTime(created)
	return &c, nil
}

// Sandbox operations.

const sandboxCols = `key, kind, transaction_id, amount, currency, result, created_at`

func (t *tx) CreateSandboxOperation(ctx context.Context, op *payloom.SandboxOperation) error {
	var e enc
	args := []any{op.Key, op.Kind, op.TransactionID, op.Amount, string(op.Currency), blob(op.Result),
		e.timeNotNull("sandbox operation created_at", op.CreatedAt)}
	if e.err != nil {
		return e.err
	}
	return t.insertNew(ctx, "sandbox operation", insertSandboxOperationSQL, append([]any{t.prepared}, args...)...)
}

var (
	insertSandboxOperationSQL = keyed(`INSERT INTO sandbox_operations (` + sandboxCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`)
	getSandboxOperationSQL = keyed(`SELECT `+sandboxCols+` FROM sandbox_operations WHERE key = $1`,
		"sandbox_operations_pkey")
)

// GetSandboxOperation does not lock: operations never change.
func (t *tx) GetSandboxOperation(ctx context.Context, key string) (*payloom.SandboxOperation, error) {
	row := t.tx.QueryRow(ctx, getSandboxOperationSQL, t.prepared, key)
	var op payloom.SandboxOperation
	var currency string
	var created pgtype.Timestamptz
	if err := row.Scan(&op.Key, &op.Kind, &op.TransactionID, &op.Amount, &currency, &op.Result, &created); err != nil {
		return nil, t.dbError("sandbox operation", err)
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
		err = t.tx.QueryRow(ctx, `SELECT count(*) FROM sandbox_operations WHERE kind = $1`, kind).Scan(&n)
	} else {
		err = t.tx.QueryRow(ctx, `SELECT count(*) FROM sandbox_operations WHERE kind = $1 AND transaction_id = $2`,
			kind, transactionID).Scan(&n)
	}
	if err != nil {
		return 0, t.dbError("sandbox operation", err)
	}
	return n, nil
}
