package vault

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/payloom/payloom"
)

// DefaultRotateBatch is how many rows a rotation rewraps or re-encrypts
// per transaction when Rotate is given no batch size: small enough that
// each transaction is short and servers writing meanwhile wait little.
const DefaultRotateBatch = 100

// conflictRetries bounds how many batches in a row may lose to concurrent
// writers before a rotation gives up.
const conflictRetries = 10

// Errors of the key management operations, for callers to branch on.
var (
	// ErrUnknownKEK: neither the store nor this node's keyring knows the
	// key-encryption key.
	ErrUnknownKEK = errors.New("vault: no such key-encryption key")
	// ErrKEKInUse: the key-encryption key is primary, or still wraps data
	// keys or encrypts cards, so retiring it would lose them.
	ErrKEKInUse = errors.New("vault: the key-encryption key is still in use")
	// ErrKEKRetired: a retired key-encryption key cannot become primary
	// again.
	ErrKEKRetired = errors.New("vault: the key-encryption key is retired")
	// ErrKEKMismatch: this node's key under an ID is not the one the store
	// knows by that ID.
	ErrKEKMismatch = errors.New("vault: this node's key-encryption key differs from the store's")
)

// RotateResult reports a rotation.
type RotateResult struct {
	// KEKID is the new primary key-encryption key; PreviousID the former
	// one ("" when the store knew none, or it was KEKID already).
	KEKID      string
	PreviousID string
	// Rewrapped counts the data keys rewrapped under KEKID.
	Rewrapped int
	// Reencrypted counts the cards stored before envelope encryption that
	// were moved from the master key to their merchant's data key.
	Reencrypted int
}

// Rotate makes kekID, which must be in this node's keyring, the primary
// key-encryption key; then it moves every card stored before envelope
// encryption under its merchant's data key, and rewraps every data key
// under kekID, batchSize rows per transaction (DefaultRotateBatch when 0).
// Servers keep serving meanwhile: from the promotion on they wrap new data
// keys under kekID (re-reading their key files to find it), and the data
// keys they already hold unwrapped do not change. Running Rotate again with
// the current primary finishes an interrupted rotation.
//
// The promotion is recorded in the audit log in its own transaction (actor
// from ctx, see payloom.WithActor), and a failure after it is recorded as
// a failed vault.rotate.
func (v *Vault) Rotate(ctx context.Context, kekID string, batchSize int) (*RotateResult, error) {
	if batchSize <= 0 {
		batchSize = DefaultRotateBatch
	}
	res := &RotateResult{KEKID: kekID}
	k, err := v.keys.find(kekID)
	if err != nil {
		v.auditFailure(ctx, payloom.AuditVaultRotate, kekID, "promote", err)
		return nil, err
	}
	if err := v.promote(ctx, k, res); err != nil {
		v.auditFailure(ctx, payloom.AuditVaultRotate, kekID, "promote", err)
		return nil, err
	}
	if err := v.reencryptLegacyCards(ctx, batchSize, res); err != nil {
		v.auditFailure(ctx, payloom.AuditVaultRotate, kekID, "reencrypt", err)
		return res, err
	}
	if err := v.rewrapAll(ctx, k, batchSize, res); err != nil {
		v.auditFailure(ctx, payloom.AuditVaultRotate, kekID, "rewrap", err)
		return res, err
	}
	return res, nil
}

// promote registers the KEK in the store (and the master key, on a store
// that knows none yet, as the key everything so far was encrypted under)
// and makes it the primary, with its audit event.
func (v *Vault) promote(ctx context.Context, k *kek, res *RotateResult) error {
	now := v.clock().UTC()
	return v.store.Update(ctx, func(tx payloom.Tx) error {
		res.PreviousID = ""
		rows, err := tx.ListVaultKEKs(ctx)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			m := v.keys.master
			r := &payloom.VaultKEK{ID: m.id, CheckValue: m.check, Primary: true, CreatedAt: now}
			if err := tx.CreateVaultKEK(ctx, r); err != nil {
				return err
			}
			rows = append(rows, r)
		}
		var target *payloom.VaultKEK
		for _, r := range rows {
			if r.Primary && r.ID != k.id {
				res.PreviousID = r.ID
			}
			if r.ID == k.id {
				target = r
			}
		}
		switch {
		case target == nil:
			if err := tx.CreateVaultKEK(ctx, &payloom.VaultKEK{ID: k.id, CheckValue: k.check, CreatedAt: now}); err != nil {
				return err
			}
		case target.RetiredAt != nil:
			return fmt.Errorf("%w: %s", ErrKEKRetired, k.id)
		case !hmac.Equal(target.CheckValue, k.check):
			return fmt.Errorf("%w: %s (%s)", ErrKEKMismatch, k.id, k.source)
		}
		if err := tx.PromoteVaultKEK(ctx, k.id); err != nil {
			return err
		}
		ev := payloom.NewAuditEvent(ctx, payloom.Scope{}, payloom.AuditVaultRotate, payloom.AuditSuccess, k.id, now)
		ev.Details["phase"] = "promote"
		if res.PreviousID != "" {
			ev.Details["previous_kek"] = res.PreviousID
		}
		return tx.CreateAuditEvent(ctx, ev)
	})
}

// reencryptLegacyCards moves the cards encrypted under the master key
// (before envelope encryption) to their merchants' data keys, creating
// those under the primary KEK where needed.
func (v *Vault) reencryptLegacyCards(ctx context.Context, batchSize int, res *RotateResult) error {
	m := v.keys.master
	return v.inBatches(ctx, func(tx payloom.Tx) (int, []*dataKey, error) {
		cards, err := tx.ListCardsByKeyID(ctx, m.id, batchSize)
		if err != nil {
			return 0, nil, err
		}
		keys := map[string]*dataKey{}
		for _, c := range cards {
			scope := payloom.Scope{MerchantID: c.MerchantID, Livemode: c.Livemode}
			number, err := openCard(m.legacy, m.id, scope, c.ID, c)
			if err != nil {
				return 0, nil, fmt.Errorf("%w; the card cannot be moved to its merchant's data key (delete the token if it is corrupt)", err)
			}
			dk := keys[c.MerchantID]
			if dk == nil {
				if dk, err = v.dataKeyTx(ctx, tx, c.MerchantID); err != nil {
					return 0, nil, err
				}
				keys[c.MerchantID] = dk
			}
			re := *c
			re.Ciphertext, re.KeyID = sealCard(dk.aead, dk.id, scope, c.ID, number), dk.id
			if err := tx.ReencryptCard(ctx, &re, m.id); err != nil {
				return 0, nil, err
			}
		}
		made := make([]*dataKey, 0, len(keys))
		for _, dk := range keys {
			made = append(made, dk)
		}
		return len(cards), made, nil
	}, &res.Reencrypted)
}

// rewrapAll rewraps every data key not wrapped by k under k.
func (v *Vault) rewrapAll(ctx context.Context, k *kek, batchSize int, res *RotateResult) error {
	return v.inBatches(ctx, func(tx payloom.Tx) (int, []*dataKey, error) {
		deks, err := tx.ListVaultDEKsNotWrappedBy(ctx, k.id, batchSize)
		if err != nil {
			return 0, nil, err
		}
		now := v.clock().UTC()
		for _, d := range deks {
			old, err := v.keys.find(d.KEKID)
			if err != nil {
				return 0, nil, fmt.Errorf("data key %s of merchant %s: %w", d.ID, d.MerchantID, err)
			}
			raw, err := old.unwrap(d.MerchantID, d.ID, d.Wrapped)
			if err != nil {
				return 0, nil, fmt.Errorf("vault: data key %s of merchant %s does not unwrap under key-encryption key %s: %w",
					d.ID, d.MerchantID, d.KEKID, err)
			}
			d.Wrapped = k.wrap(d.MerchantID, d.ID, raw)
			clear(raw)
			d.KEKID, d.UpdatedAt = k.id, now
			if err := tx.RewrapVaultDEK(ctx, d); err != nil {
				return 0, nil, err
			}
		}
		return len(deks), nil, nil
	}, &res.Rewrapped)
}

// inBatches runs batch in its own transaction until it handles no row,
// adding the rows to *count and caching the data keys it made once their
// transaction has committed. A batch that loses to a concurrent writer
// (CodeConflict) runs again, up to conflictRetries times in a row.
func (v *Vault) inBatches(ctx context.Context, batch func(tx payloom.Tx) (int, []*dataKey, error), count *int) error {
	conflicts := 0
	for {
		var n int
		var made []*dataKey
		err := v.store.Update(ctx, func(tx payloom.Tx) error {
			var err error
			n, made, err = batch(tx)
			return err
		})
		if payloom.IsCode(err, payloom.CodeConflict) || payloom.IsCode(err, payloom.CodeAlreadyExists) {
			if conflicts++; conflicts > conflictRetries {
				return fmt.Errorf("vault: %d batches in a row lost to concurrent writers (is another rotation running?): %w",
					conflicts, err)
			}
			continue
		}
		if err != nil {
			return err
		}
		conflicts = 0
		for _, dk := range made {
			v.deks.put(dk)
		}
		*count += n
		if n == 0 {
			return nil
		}
	}
}

// RetireResult reports a retirement.
type RetireResult struct {
	KEKID string
	// Source is where this node's keyring had the key ("" when it did not).
	Source KeySource
	// DeletedFile is the key file deleted, "" when none was: the master key
	// stays (it is the root of the fingerprints), and keys from the
	// environment are the operator's to remove.
	DeletedFile string
}

// Retire retires a key-encryption key: it refuses (ErrKEKInUse) while the
// key is primary, wraps a data key or encrypts a card, and otherwise marks
// it retired in the store (with its audit event, in one transaction) and
// deletes its key file, so that from then on it decrypts nothing. A key
// this node holds that the store never knew is recorded as retired too.
// Retiring a retired key again deletes a key file left behind.
func (v *Vault) Retire(ctx context.Context, kekID string) (*RetireResult, error) {
	now := v.clock().UTC()
	err := v.store.Update(ctx, func(tx payloom.Tx) error {
		row, err := tx.GetVaultKEK(ctx, kekID)
		switch {
		case payloom.IsCode(err, payloom.CodeNotFound):
			local := v.keys.lookup(kekID)
			if local == nil {
				return fmt.Errorf("%w: %s is neither in the store nor in this node's keyring", ErrUnknownKEK, kekID)
			}
			if err := tx.CreateVaultKEK(ctx, &payloom.VaultKEK{ID: kekID, CheckValue: local.check, CreatedAt: now, RetiredAt: &now}); err != nil {
				return err
			}
		case err != nil:
			return err
		case row.RetiredAt != nil:
			return nil // already retired: only the file may be left
		case row.Primary:
			return fmt.Errorf("%w: %s is the primary key; run payloom vault rotate first, which makes a new key primary "+
				"and rewraps every data key under it", ErrKEKInUse, kekID)
		default:
			counts, err := tx.CountVaultDEKs(ctx)
			if err != nil {
				return err
			}
			cards, err := tx.CountCardsByKeyID(ctx, kekID)
			if err != nil {
				return err
			}
			if counts[kekID] > 0 || cards > 0 {
				return fmt.Errorf("%w: %s still wraps %d data keys and encrypts %d cards; run payloom vault rotate first",
					ErrKEKInUse, kekID, counts[kekID], cards)
			}
			if err := tx.RetireVaultKEK(ctx, kekID, now); err != nil {
				if payloom.IsCode(err, payloom.CodeConflict) {
					return fmt.Errorf("%w: %s (%v); run payloom vault rotate first", ErrKEKInUse, kekID, err)
				}
				return err
			}
		}
		ev := payloom.NewAuditEvent(ctx, payloom.Scope{}, payloom.AuditVaultRetire, payloom.AuditSuccess, kekID, now)
		return tx.CreateAuditEvent(ctx, ev)
	})
	if err != nil {
		v.auditFailure(ctx, payloom.AuditVaultRetire, kekID, "retire", err)
		return nil, err
	}
	res := &RetireResult{KEKID: kekID}
	if src, _, ok := v.keys.Source(kekID); ok {
		res.Source = src
	}
	path, err := v.keys.destroy(kekID)
	if err != nil {
		return res, fmt.Errorf("%s is retired, but its key file could not be deleted; delete it by hand: %w", kekID, err)
	}
	res.DeletedFile = path
	return res, nil
}

// auditFailure records a failed key management action. The error text
// holds key IDs and counts, never key material.
func (v *Vault) auditFailure(ctx context.Context, action payloom.AuditAction, kekID, phase string, cause error) {
	ctx = context.WithoutCancel(ctx) // an interrupted rotation is recorded too
	ev := payloom.NewAuditEvent(ctx, payloom.Scope{}, action, payloom.AuditFailure, kekID, v.clock().UTC())
	ev.Details["phase"] = phase
	ev.Details["reason"] = cause.Error()
	if err := v.store.Update(ctx, func(tx payloom.Tx) error { return tx.CreateAuditEvent(ctx, ev) }); err != nil {
		v.log.Error("vault: record audit event", "action", string(action), "kek", kekID, "err", err)
	}
}

// LocalState says whether this node holds a key-encryption key.
type LocalState string

const (
	// LocalPresent: this node's keyring has the key, and it is the one the
	// store knows (or the store does not know it yet).
	LocalPresent LocalState = "present"
	// LocalMissing: the store knows the key, this node does not have it.
	LocalMissing LocalState = "missing"
	// LocalMismatch: this node has a different key under the ID.
	LocalMismatch LocalState = "mismatch"
)

// KEKStatus describes one key-encryption key, never its material.
type KEKStatus struct {
	ID string
	// Registered: the store knows the key (it has been primary, or was
	// retired). A key only in this node's keyring is not registered.
	Registered bool
	CreatedAt  time.Time
	Primary    bool
	RetiredAt  *time.Time
	// DataKeys counts the data keys it wraps; Cards the cards encrypted
	// under it directly, before envelope encryption (only the master key
	// has any).
	DataKeys int
	Cards    int
	Local    LocalState
	// Source and Path say where this node's keyring found it.
	Source KeySource
	Path   string
}

// Status lists every key-encryption key the store or this node knows: the
// store's oldest first, then this node's unregistered ones by ID. It
// re-reads the key files first.
func (v *Vault) Status(ctx context.Context) ([]KEKStatus, error) {
	if err := v.keys.reload(); err != nil {
		return nil, err
	}
	var out []KEKStatus
	err := v.store.View(ctx, func(tx payloom.Tx) error {
		out = nil
		rows, err := tx.ListVaultKEKs(ctx)
		if err != nil {
			return err
		}
		counts, err := tx.CountVaultDEKs(ctx)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		add := func(s KEKStatus) error {
			n, err := tx.CountCardsByKeyID(ctx, s.ID)
			if err != nil {
				return err
			}
			s.Cards, s.DataKeys = n, counts[s.ID]
			if local := v.keys.lookup(s.ID); local != nil {
				s.Source, s.Path, s.Local = local.source, local.path, LocalPresent
			}
			out = append(out, s)
			seen[s.ID] = true
			return nil
		}
		for _, r := range rows {
			s := KEKStatus{ID: r.ID, Registered: true, CreatedAt: r.CreatedAt, Primary: r.Primary, RetiredAt: r.RetiredAt, Local: LocalMissing}
			if err := add(s); err != nil {
				return err
			}
			if local := v.keys.lookup(r.ID); local != nil && !hmac.Equal(local.check, r.CheckValue) {
				out[len(out)-1].Local = LocalMismatch
			}
		}
		ids := v.keys.KEKIDs()
		sort.Strings(ids)
		for _, id := range ids {
			if !seen[id] {
				if err := add(KEKStatus{ID: id}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return out, err
}

// String describes a status line without key material.
func (s KEKStatus) String() string {
	return s.ID + " primary=" + strconv.FormatBool(s.Primary) + " data_keys=" + strconv.Itoa(s.DataKeys) +
		" cards=" + strconv.Itoa(s.Cards) + " local=" + string(s.Local)
}
