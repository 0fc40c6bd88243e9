package vault

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/payloom/payloom"
)

// errNoDataKey: the merchant has no data key yet (and none is to be made).
var errNoDataKey = errors.New("vault: the merchant has no data key")

// dataKeyFor returns the merchant's data key: from the cache, else
// unwrapped from the store, else (with create) newly made and stored
// wrapped by the primary KEK.
func (v *Vault) dataKeyFor(ctx context.Context, merchantID string, create bool) (*dataKey, error) {
	if dk := v.deks.get(merchantID); dk != nil {
		return dk, nil
	}
	var row *payloom.VaultDEK
	err := v.store.View(ctx, func(tx payloom.Tx) error {
		var err error
		row, err = tx.GetVaultDEKByMerchant(ctx, merchantID)
		return err
	})
	switch {
	case err == nil:
		dk, err := v.openDEK(row)
		if err != nil {
			return nil, err
		}
		v.deks.put(dk)
		return dk, nil
	case !payloom.IsCode(err, payloom.CodeNotFound):
		return nil, fmt.Errorf("vault: read data key: %w", err)
	case !create:
		return nil, errNoDataKey
	}
	for try := 0; ; try++ {
		var dk *dataKey
		err := v.store.Update(ctx, func(tx payloom.Tx) error {
			var err error
			dk, err = v.dataKeyTx(ctx, tx, merchantID)
			return err
		})
		if err == nil {
			v.deks.put(dk)
			return dk, nil
		}
		// Another node made the merchant's key first, or a rotation
		// promoted a new KEK meanwhile: start over, which finds either.
		lostRace := payloom.IsCode(err, payloom.CodeAlreadyExists) || payloom.IsCode(err, payloom.CodeConflict)
		if !lostRace || try+1 == createDataKeyTries {
			return nil, fmt.Errorf("vault: create data key: %w", err)
		}
	}
}

// dataKeyTx returns the merchant's data key inside tx, making and storing
// one, wrapped by the primary KEK, when the merchant has none. The caller
// caches the key only once tx has committed.
func (v *Vault) dataKeyTx(ctx context.Context, tx payloom.Tx, merchantID string) (*dataKey, error) {
	row, err := tx.GetVaultDEKByMerchant(ctx, merchantID)
	if err == nil {
		return v.openDEK(row)
	}
	if !payloom.IsCode(err, payloom.CodeNotFound) {
		return nil, err
	}
	primary, err := v.primaryKEKTx(ctx, tx)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, dekSize)
	defer clear(raw)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("vault: generate data key: %w", err)
	}
	now := v.clock().UTC()
	d := &payloom.VaultDEK{
		ID:         payloom.NewID(payloom.PrefixDataKey),
		MerchantID: merchantID,
		KEKID:      primary.id,
		Version:    1,
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	d.Wrapped = primary.wrap(merchantID, d.ID, raw)
	if err := tx.CreateVaultDEK(ctx, d); err != nil {
		return nil, err
	}
	return newDataKey(d.ID, merchantID, raw), nil
}

// primaryKEKTx returns the primary key-encryption key from this node's
// keyring, after checking that its material is the one the store knows.
// On a store that knows no KEK yet (a new install, or the first start
// after the upgrade to envelope encryption), the master key becomes the
// primary KEK.
func (v *Vault) primaryKEKTx(ctx context.Context, tx payloom.Tx) (*kek, error) {
	rows, err := tx.ListVaultKEKs(ctx)
	if err != nil {
		return nil, err
	}
	var primary *payloom.VaultKEK
	for _, r := range rows {
		if r.Primary {
			primary = r
		}
	}
	if primary == nil {
		if len(rows) > 0 {
			return nil, errors.New("vault: the store has key-encryption keys but no primary one; run payloom vault rotate")
		}
		m := v.keys.master
		if err := tx.CreateVaultKEK(ctx, &payloom.VaultKEK{
			ID: m.id, CheckValue: m.check, Primary: true, CreatedAt: v.clock().UTC(),
		}); err != nil {
			return nil, err // CodeAlreadyExists: another node registered one; the caller starts over
		}
		return m, nil
	}
	k, err := v.keys.find(primary.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: it is the primary key-encryption key, which this node must have", err)
	}
	if !hmac.Equal(k.check, primary.CheckValue) {
		return nil, fmt.Errorf("vault: this node's key-encryption key %s (%s) is not the one the store knows by that ID",
			k.id, k.source)
	}
	return k, nil
}

// openDEK unwraps a stored data key.
func (v *Vault) openDEK(row *payloom.VaultDEK) (*dataKey, error) {
	k, err := v.keys.find(row.KEKID)
	if err != nil {
		return nil, fmt.Errorf("vault: data key %s of merchant %s: %w", row.ID, row.MerchantID, err)
	}
	raw, err := k.unwrap(row.MerchantID, row.ID, row.Wrapped)
	if err != nil {
		return nil, fmt.Errorf("vault: data key %s of merchant %s does not unwrap under key-encryption key %s: %w",
			row.ID, row.MerchantID, row.KEKID, err)
	}
	defer clear(raw)
	return newDataKey(row.ID, row.MerchantID, raw), nil
}
