package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/payloom/payloom"
)

// The vault's key management: key-encryption keys, the wrapped data keys of
// the merchants, and the re-encryption of cards. Write transactions are
// exclusive on SQLite, so the checks that PostgreSQL needs row locks for
// (a data key is only ever wrapped by the primary KEK, a KEK is retired
// only when nothing uses it) hold by running in the same transaction.

const vaultKEKCols = `id, check_value, is_primary, created_at, retired_at`

func (t *tx) CreateVaultKEK(ctx context.Context, k *payloom.VaultKEK) error {
	if k.ID == "" {
		return errors.New("sqlite: a vault KEK needs an ID")
	}
	var e enc
	args := []any{k.ID, blob(k.CheckValue), k.Primary, e.timeNotNull("vault KEK created_at", k.CreatedAt), e.timePtr(k.RetiredAt)}
	if e.err != nil {
		return e.err
	}
	if k.Primary && k.RetiredAt != nil {
		return errors.New("sqlite: a retired vault KEK cannot be primary")
	}
	// ON CONFLICT DO NOTHING covers the primary key and the one-primary
	// index alike.
	return t.insertNew(ctx, "vault KEK", `INSERT INTO vault_keks (`+vaultKEKCols+`) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, args...)
}

func (t *tx) GetVaultKEK(ctx context.Context, id string) (*payloom.VaultKEK, error) {
	return scanVaultKEK(t.tx.QueryRowContext(t.c(ctx), `SELECT `+vaultKEKCols+` FROM vault_keks WHERE id = ?`, id))
}

func (t *tx) ListVaultKEKs(ctx context.Context) ([]*payloom.VaultKEK, error) {
	rows, err := t.tx.QueryContext(t.c(ctx), `SELECT `+vaultKEKCols+` FROM vault_keks ORDER BY created_at, id`)
	if err != nil {
		return nil, dbError("vault KEK", err)
	}
	defer rows.Close()
	out := []*payloom.VaultKEK{}
	for rows.Next() {
		k, err := scanVaultKEK(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("vault KEK", err)
	}
	return out, nil
}

func scanVaultKEK(row scanner) (*payloom.VaultKEK, error) {
	var k payloom.VaultKEK
	var created, retired sql.NullInt64
	if err := row.Scan(&k.ID, &k.CheckValue, &k.Primary, &created, &retired); err != nil {
		return nil, dbError("vault KEK", err)
	}
	k.CheckValue = nonNilBytes(k.CheckValue)
	k.CreatedAt = decTime(created)
	k.RetiredAt = decTimePtr(retired)
	return &k, nil
}

// PromoteVaultKEK clears the old primary before setting the new one: the
// one-primary index is checked row by row.
func (t *tx) PromoteVaultKEK(ctx context.Context, id string) error {
	k, err := t.GetVaultKEK(ctx, id)
	if err != nil {
		return err
	}
	if k.RetiredAt != nil {
		return &payloom.Error{Code: payloom.CodeConflict, Message: "vault KEK " + id + " is retired"}
	}
	if _, err := t.exec(ctx, "vault KEK", `UPDATE vault_keks SET is_primary = 0 WHERE is_primary = 1 AND id <> ?`, id); err != nil {
		return err
	}
	return t.execOne(ctx, "vault KEK", `UPDATE vault_keks SET is_primary = 1 WHERE id = ?`, id)
}

func (t *tx) RetireVaultKEK(ctx context.Context, id string, at time.Time) error {
	var e enc
	atV := e.timeNotNull("vault KEK retired_at", at)
	if e.err != nil {
		return e.err
	}
	k, err := t.GetVaultKEK(ctx, id)
	if err != nil {
		return err
	}
	switch {
	case k.RetiredAt != nil:
		return nil
	case k.Primary:
		return &payloom.Error{Code: payloom.CodeConflict, Message: "vault KEK " + id + " is the primary key"}
	}
	deks, err := t.countVaultDEKsOf(ctx, id)
	if err != nil {
		return err
	}
	cards, err := t.CountCardsByKeyID(ctx, id)
	if err != nil {
		return err
	}
	if deks > 0 || cards > 0 {
		return &payloom.Error{Code: payloom.CodeConflict, Message: "vault KEK " + id + " is still in use"}
	}
	return t.execOne(ctx, "vault KEK", `UPDATE vault_keks SET retired_at = ? WHERE id = ?`, atV, id)
}

// Data keys.

const vaultDEKCols = `id, merchant_id, kek_id, wrapped, version, created_at, updated_at`

// checkPrimary returns CodeConflict unless kekID names the primary KEK.
func (t *tx) checkPrimary(ctx context.Context, kekID string) error {
	var primary bool
	err := t.tx.QueryRowContext(t.c(ctx), `SELECT is_primary FROM vault_keks WHERE id = ?`, kekID).Scan(&primary)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return dbError("vault KEK", err)
	}
	if !primary {
		return &payloom.Error{Code: payloom.CodeConflict, Message: "vault KEK " + kekID + " is not the primary key"}
	}
	return nil
}

func (t *tx) CreateVaultDEK(ctx context.Context, d *payloom.VaultDEK) error {
	if d.ID == "" || d.MerchantID == "" {
		return errors.New("sqlite: a vault DEK needs an ID and a merchant")
	}
	var e enc
	args := []any{d.ID, d.MerchantID, d.KEKID, blob(d.Wrapped), d.Version,
		e.timeNotNull("vault DEK created_at", d.CreatedAt), e.timeNotNull("vault DEK updated_at", d.UpdatedAt)}
	if e.err != nil {
		return e.err
	}
	if err := t.checkPrimary(ctx, d.KEKID); err != nil {
		return err
	}
	return t.insertNew(ctx, "vault DEK", `INSERT INTO vault_deks (`+vaultDEKCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, args...)
}

func (t *tx) GetVaultDEK(ctx context.Context, id string) (*payloom.VaultDEK, error) {
	return scanVaultDEK(t.tx.QueryRowContext(t.c(ctx), `SELECT `+vaultDEKCols+` FROM vault_deks WHERE id = ?`, id))
}

func (t *tx) GetVaultDEKByMerchant(ctx context.Context, merchantID string) (*payloom.VaultDEK, error) {
	return scanVaultDEK(t.tx.QueryRowContext(t.c(ctx), `SELECT `+vaultDEKCols+` FROM vault_deks WHERE merchant_id = ?`, merchantID))
}

func scanVaultDEK(row scanner) (*payloom.VaultDEK, error) {
	var d payloom.VaultDEK
	var created, updated sql.NullInt64
	if err := row.Scan(&d.ID, &d.MerchantID, &d.KEKID, &d.Wrapped, &d.Version, &created, &updated); err != nil {
		return nil, dbError("vault DEK", err)
	}
	d.Wrapped = nonNilBytes(d.Wrapped)
	d.CreatedAt = decTime(created)
	d.UpdatedAt = decTime(updated)
	return &d, nil
}

func (t *tx) RewrapVaultDEK(ctx context.Context, d *payloom.VaultDEK) error {
	var e enc
	updated := e.timeNotNull("vault DEK updated_at", d.UpdatedAt)
	if e.err != nil {
		return e.err
	}
	if err := t.checkPrimary(ctx, d.KEKID); err != nil {
		return err
	}
	res, err := t.exec(ctx, "vault DEK", `UPDATE vault_deks SET kek_id = ?, wrapped = ?, updated_at = ?, version = version + 1
		WHERE id = ? AND version = ?`, d.KEKID, blob(d.Wrapped), updated, d.ID, d.Version)
	if err != nil {
		return err
	}
	if err := t.changedOne(ctx, res, "vault DEK", `SELECT 1 FROM vault_deks WHERE id = ?`, d.ID); err != nil {
		return err
	}
	d.Version++
	return nil
}

// changedOne turns a compare-and-set UPDATE that hit no row into
// CodeConflict when the row exists (stale version) or CodeNotFound.
func (t *tx) changedOne(ctx context.Context, res sql.Result, kind, existsQuery string, args ...any) error {
	n, err := res.RowsAffected()
	if err != nil {
		return dbError(kind, err)
	}
	if n == 1 {
		return nil
	}
	var one int
	if err := t.tx.QueryRowContext(t.c(ctx), existsQuery, args...).Scan(&one); err != nil {
		return dbError(kind, err)
	}
	return &payloom.Error{Code: payloom.CodeConflict, Message: kind + " was changed concurrently"}
}

func (t *tx) ListVaultDEKsNotWrappedBy(ctx context.Context, kekID string, limit int) ([]*payloom.VaultDEK, error) {
	if limit <= 0 {
		return nil, errors.New("sqlite: ListVaultDEKsNotWrappedBy needs a positive limit")
	}
	rows, err := t.tx.QueryContext(t.c(ctx), `SELECT `+vaultDEKCols+` FROM vault_deks WHERE kek_id <> ? ORDER BY id LIMIT ?`, kekID, limit)
	if err != nil {
		return nil, dbError("vault DEK", err)
	}
	defer rows.Close()
	out := []*payloom.VaultDEK{}
	for rows.Next() {
		d, err := scanVaultDEK(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("vault DEK", err)
	}
	return out, nil
}

func (t *tx) CountVaultDEKs(ctx context.Context) (map[string]int, error) {
	rows, err := t.tx.QueryContext(t.c(ctx), `SELECT kek_id, count(*) FROM vault_deks GROUP BY kek_id`)
	if err != nil {
		return nil, dbError("vault DEK", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, dbError("vault DEK", err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("vault DEK", err)
	}
	return out, nil
}

func (t *tx) countVaultDEKsOf(ctx context.Context, kekID string) (int, error) {
	var n int
	if err := t.tx.QueryRowContext(t.c(ctx), `SELECT count(*) FROM vault_deks WHERE kek_id = ?`, kekID).Scan(&n); err != nil {
		return 0, dbError("vault DEK", err)
	}
	return n, nil
}

// Cards by encryption key.

func (t *tx) ListCardsByKeyID(ctx context.Context, keyID string, limit int) ([]*payloom.Card, error) {
	if limit <= 0 {
		return nil, errors.New("sqlite: ListCardsByKeyID needs a positive limit")
	}
	rows, err := t.tx.QueryContext(t.c(ctx), `SELECT `+cardCols+` FROM cards WHERE key_id = ? ORDER BY id LIMIT ?`, keyID, limit)
	if err != nil {
		return nil, dbError("card", err)
	}
	defer rows.Close()
	out := []*payloom.Card{}
	for rows.Next() {
		c, err := scanVaultCard(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("card", err)
	}
	return out, nil
}

func (t *tx) CountCardsByKeyID(ctx context.Context, keyID string) (int, error) {
	var n int
	if err := t.tx.QueryRowContext(t.c(ctx), `SELECT count(*) FROM cards WHERE key_id = ?`, keyID).Scan(&n); err != nil {
		return 0, dbError("card", err)
	}
	return n, nil
}

func (t *tx) ReencryptCard(ctx context.Context, c *payloom.Card, oldKeyID string) error {
	if c.KeyID == "" {
		return errors.New("sqlite: ReencryptCard needs the new key ID")
	}
	res, err := t.exec(ctx, "card", `UPDATE cards SET ciphertext = ?, key_id = ? WHERE id = ? AND key_id = ?`,
		blob(c.Ciphertext), c.KeyID, c.ID, oldKeyID)
	if err != nil {
		return err
	}
	return t.changedOne(ctx, res, "card", `SELECT 1 FROM cards WHERE id = ?`, c.ID)
}

// scanVaultCard reads a row of cardCols.
func scanVaultCard(row scanner) (*payloom.Card, error) {
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
