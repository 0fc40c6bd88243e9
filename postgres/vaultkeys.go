package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/payloom/payloom"
)

// The vault's key management: key-encryption keys, the wrapped data keys of
// the merchants, and the re-encryption of cards.
//
// Two promises rest on row locks here, at READ COMMITTED:
//
//   - A data key is only ever written wrapped by the primary KEK:
//     CreateVaultDEK and RewrapVaultDEK take a share lock on the primary's
//     row (inside Update) before they write, and PromoteVaultKEK updates
//     that row, so a promotion waits for every write under the old primary
//     to commit, and a write that waited for a promotion sees the row as
//     promoted and refuses.
//   - A KEK is retired only when nothing uses it: RetireVaultKEK requires
//     a KEK that is not primary, which (by the first promise) means every
//     data key written under it has committed and is counted.

const vaultKEKCols = `id, check_value, is_primary, created_at, retired_at`

func (t *tx) CreateVaultKEK(ctx context.Context, k *payloom.VaultKEK) error {
	if k.ID == "" {
		return errors.New("postgres: a vault KEK needs an ID")
	}
	if k.Primary && k.RetiredAt != nil {
		return errors.New("postgres: a retired vault KEK cannot be primary")
	}
	var e enc
	args := []any{k.ID, blob(k.CheckValue), k.Primary, e.timeNotNull("vault KEK created_at", k.CreatedAt), e.timePtr(k.RetiredAt)}
	if e.err != nil {
		return e.err
	}
	// insertNew's ON CONFLICT DO NOTHING covers the primary key and the
	// one-primary index alike.
	return t.insertNew(ctx, "vault KEK", `INSERT INTO vault_keks (`+vaultKEKCols+`) VALUES ($1, $2, $3, $4, $5)`, args...)
}

func (t *tx) GetVaultKEK(ctx context.Context, id string) (*payloom.VaultKEK, error) {
	return t.scanVaultKEK(t.tx.QueryRow(ctx, `SELECT `+vaultKEKCols+` FROM vault_keks WHERE id = $1`+t.forUpdate(), id))
}

func (t *tx) ListVaultKEKs(ctx context.Context) ([]*payloom.VaultKEK, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+vaultKEKCols+` FROM vault_keks ORDER BY created_at, id`)
	if err != nil {
		return nil, t.dbError("vault KEK", err)
	}
	defer rows.Close()
	out := []*payloom.VaultKEK{}
	for rows.Next() {
		k, err := t.scanVaultKEK(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, t.dbError("vault KEK", err)
	}
	return out, nil
}

func (t *tx) scanVaultKEK(row rowScanner) (*payloom.VaultKEK, error) {
	var k payloom.VaultKEK
	var created, retired pgtype.Timestamptz
	if err := row.Scan(&k.ID, &k.CheckValue, &k.Primary, &created, &retired); err != nil {
		return nil, t.dbError("vault KEK", err)
	}
	k.CheckValue = nonNilBytes(k.CheckValue)
	k.CreatedAt = decTime(created)
	k.RetiredAt = decTimePtr(retired)
	return &k, nil
}

// PromoteVaultKEK checks the KEK (locking its row, so that a concurrent
// retirement waits), then clears the old primary before setting the new
// one: a unique index is checked row by row, not at the end of the
// statement.
func (t *tx) PromoteVaultKEK(ctx context.Context, id string) error {
	k, err := t.GetVaultKEK(ctx, id)
	if err != nil {
		return err
	}
	if k.RetiredAt != nil {
		return &payloom.Error{Code: payloom.CodeConflict, Message: "vault KEK " + id + " is retired"}
	}
	if _, err := t.exec(ctx, "vault KEK", `UPDATE vault_keks SET is_primary = false WHERE is_primary AND id <> $1`, id); err != nil {
		return err
	}
	return t.execOne(ctx, "vault KEK", `UPDATE vault_keks SET is_primary = true WHERE id = $1 AND retired_at IS NULL`, id)
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
	// One statement, so that the row stays as checked: the row lock taken
	// above keeps promotions out, and the counts run after it.
	tag, err := t.exec(ctx, "vault KEK", `UPDATE vault_keks SET retired_at = $2
		WHERE id = $1 AND NOT is_primary AND retired_at IS NULL
		AND NOT EXISTS (SELECT 1 FROM vault_deks WHERE kek_id = $1)
		AND NOT EXISTS (SELECT 1 FROM cards WHERE key_id = $1)`, id, atV)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return &payloom.Error{Code: payloom.CodeConflict, Message: "vault KEK " + id + " is still in use"}
	}
	return nil
}

// Data keys.

const vaultDEKCols = `id, merchant_id, kek_id, wrapped, version, created_at, updated_at`

// checkPrimary returns CodeConflict unless kekID names the primary KEK.
// Inside Update it share-locks the row until commit, so that a promotion
// waits for this transaction (see the file comment).
func (t *tx) checkPrimary(ctx context.Context, kekID string) error {
	lock := ""
	if t.update {
		lock = " FOR SHARE"
	}
	var primary bool
	err := t.tx.QueryRow(ctx, `SELECT is_primary FROM vault_keks WHERE id = $1`+lock, kekID).Scan(&primary)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return t.dbError("vault KEK", err)
	}
	if !primary {
		return &payloom.Error{Code: payloom.CodeConflict, Message: "vault KEK " + kekID + " is not the primary key"}
	}
	return nil
}

func (t *tx) CreateVaultDEK(ctx context.Context, d *payloom.VaultDEK) error {
	if d.ID == "" || d.MerchantID == "" {
		return errors.New("postgres: a vault DEK needs an ID and a merchant")
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
	return t.insertNew(ctx, "vault DEK", `INSERT INTO vault_deks (`+vaultDEKCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`, args...)
}

func (t *tx) GetVaultDEK(ctx context.Context, id string) (*payloom.VaultDEK, error) {
	return t.scanVaultDEK(t.tx.QueryRow(ctx, `SELECT `+vaultDEKCols+` FROM vault_deks WHERE id = $1`+t.forUpdate(), id))
}

func (t *tx) GetVaultDEKByMerchant(ctx context.Context, merchantID string) (*payloom.VaultDEK, error) {
	return t.scanVaultDEK(t.tx.QueryRow(ctx, `SELECT `+vaultDEKCols+` FROM vault_deks WHERE merchant_id = $1`+t.forUpdate(), merchantID))
}

func (t *tx) scanVaultDEK(row rowScanner) (*payloom.VaultDEK, error) {
	var d payloom.VaultDEK
	var created, updated pgtype.Timestamptz
	if err := row.Scan(&d.ID, &d.MerchantID, &d.KEKID, &d.Wrapped, &d.Version, &created, &updated); err != nil {
		return nil, t.dbError("vault DEK", err)
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
	tag, err := t.exec(ctx, "vault DEK", `UPDATE vault_deks SET kek_id = $1, wrapped = $2, updated_at = $3, version = version + 1
		WHERE id = $4 AND version = $5`, d.KEKID, blob(d.Wrapped), updated, d.ID, d.Version)
	if err != nil {
		return err
	}
	if err := t.changedOne(ctx, tag, "vault DEK", `SELECT 1 FROM vault_deks WHERE id = $1`, d.ID); err != nil {
		return err
	}
	d.Version++
	return nil
}

// changedOne turns a compare-and-set UPDATE that hit no row into
// CodeConflict when the row exists (another writer changed it first) or
// CodeNotFound.
func (t *tx) changedOne(ctx context.Context, tag pgconn.CommandTag, kind, existsQuery string, args ...any) error {
	if tag.RowsAffected() == 1 {
		return nil
	}
	var one int
	if err := t.tx.QueryRow(ctx, existsQuery, args...).Scan(&one); err != nil {
		return t.dbError(kind, err)
	}
	return &payloom.Error{Code: payloom.CodeConflict, Message: kind + " was changed concurrently"}
}

func (t *tx) ListVaultDEKsNotWrappedBy(ctx context.Context, kekID string, limit int) ([]*payloom.VaultDEK, error) {
	if limit <= 0 {
		return nil, errors.New("postgres: ListVaultDEKsNotWrappedBy needs a positive limit")
	}
	rows, err := t.tx.Query(ctx, `SELECT `+vaultDEKCols+` FROM vault_deks WHERE kek_id <> $1 ORDER BY id LIMIT $2`+t.forUpdate(),
		kekID, limit)
	if err != nil {
		return nil, t.dbError("vault DEK", err)
	}
	defer rows.Close()
	out := []*payloom.VaultDEK{}
	for rows.Next() {
		d, err := t.scanVaultDEK(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, t.dbError("vault DEK", err)
	}
	return out, nil
}

func (t *tx) CountVaultDEKs(ctx context.Context) (map[string]int, error) {
	rows, err := t.tx.Query(ctx, `SELECT kek_id, count(*) FROM vault_deks GROUP BY kek_id`)
	if err != nil {
		return nil, t.dbError("vault DEK", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, t.dbError("vault DEK", err)
		}
		out[id] = int(n)
	}
	if err := rows.Err(); err != nil {
		return nil, t.dbError("vault DEK", err)
	}
	return out, nil
}

// Cards by encryption key.

func (t *tx) ListCardsByKeyID(ctx context.Context, keyID string, limit int) ([]*payloom.Card, error) {
	if limit <= 0 {
		return nil, errors.New("postgres: ListCardsByKeyID needs a positive limit")
	}
	rows, err := t.tx.Query(ctx, `SELECT `+cardCols+` FROM cards WHERE key_id = $1 ORDER BY id LIMIT $2`+t.forUpdate(), keyID, limit)
	if err != nil {
		return nil, t.dbError("card", err)
	}
	defer rows.Close()
	out := []*payloom.Card{}
	for rows.Next() {
		c, err := t.scanVaultCard(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, t.dbError("card", err)
	}
	return out, nil
}

func (t *tx) CountCardsByKeyID(ctx context.Context, keyID string) (int, error) {
	var n int64
	if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM cards WHERE key_id = $1`, keyID).Scan(&n); err != nil {
		return 0, t.dbError("card", err)
	}
	return int(n), nil
}

func (t *tx) ReencryptCard(ctx context.Context, c *payloom.Card, oldKeyID string) error {
	if c.KeyID == "" {
		return errors.New("postgres: ReencryptCard needs the new key ID")
	}
	tag, err := t.exec(ctx, "card", `UPDATE cards SET ciphertext = $1, key_id = $2 WHERE id = $3 AND key_id = $4`,
		blob(c.Ciphertext), c.KeyID, c.ID, oldKeyID)
	if err != nil {
		return err
	}
	return t.changedOne(ctx, tag, "card", `SELECT 1 FROM cards WHERE id = $1`, c.ID)
}

// scanVaultCard reads a row of cardCols.
func (t *tx) scanVaultCard(row rowScanner) (*payloom.Card, error) {
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
