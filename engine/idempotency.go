package engine

import (
	"bytes"
	"context"
	"time"

	"github.com/payloom/payloom"
)

const maxIdempotencyKeyLen = 255

func errConflict() error {
	return payloom.Errorf(payloom.CodeIdempotencyConflict,
		"this Idempotency-Key was already used with a different request; use a new key for a new request")
}

func errInProgress() error {
	return payloom.Errorf(payloom.CodeIdempotencyInProgress,
		"a request with this Idempotency-Key is still in progress; retry later")
}

func errLeaseLost() error {
	return payloom.Errorf(payloom.CodeIdempotencyInProgress,
		"the lease on this Idempotency-Key was lost to a retry of the same request")
}

// Begin implements payloom.IdempotencyService. The claim is one transaction:
// either this request creates the record, or it reads the existing one and
// decides (conflict, replay, in progress, or take over an expired lease).
// A record older than the TTL that was not purged yet is treated as gone.
func (e *Engine) Begin(ctx context.Context, scope payloom.Scope, key, method, path, fingerprint string) (*payloom.IdempotencyKey, bool, error) {
	if key == "" || len(key) > maxIdempotencyKeyLen {
		return nil, false, payloom.Errorf(payloom.CodeValidation, "Idempotency-Key must be 1 to %d characters", maxIdempotencyKeyLen)
	}
	var rec *payloom.IdempotencyKey
	var held bool
	err := e.update(ctx, "idempotency_begin", func(tx payloom.Tx) error {
		rec, held = nil, false
		now := e.now()
		fresh := e.newIdempotencyRecord(scope, payloom.NewID(payloom.PrefixIdempotency), key, method, path, fingerprint, now)
		err := tx.CreateIdempotencyKey(ctx, fresh)
		if err == nil {
			rec, held = fresh, true
			return nil
		}
		if !payloom.IsCode(err, payloom.CodeAlreadyExists) {
			return err
		}
		cur, err := tx.GetIdempotencyKey(ctx, scope, key)
		if err != nil {
			return err
		}
		if cur.CreatedAt.Before(now.Add(-e.ttl)) {
			// Expired but not purged yet: delete it and start over, as
			// if the background purge had already run.
			if err := tx.DeleteIdempotencyKey(ctx, cur); err != nil {
				return err
			}
			if err := tx.CreateIdempotencyKey(ctx, fresh); err != nil {
				return err
			}
			rec, held = fresh, true
			return nil
		}
		switch {
		case cur.Fingerprint != fingerprint || cur.Method != method || cur.Path != path:
			return errConflict()
		case cur.Completed():
			rec = cur
			return nil
		case cur.LockedUntil.After(now):
			return errInProgress()
		}
		// The holder died or gave up: take the lease over and resume
		// the operation under the same record ID.
		cur.LockToken = fresh.LockToken
		cur.LockedUntil = fresh.LockedUntil
		if err := tx.UpdateIdempotencyKey(ctx, cur); err != nil {
			return err
		}
		rec, held = cur, true
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return rec, held, nil
}

// newIdempotencyRecord returns a new record for key, held by the request
// that creates it.
func (e *Engine) newIdempotencyRecord(scope payloom.Scope, id, key, method, path, fingerprint string, now time.Time) *payloom.IdempotencyKey {
	return &payloom.IdempotencyKey{
		ID:          id,
		MerchantID:  scope.MerchantID,
		Livemode:    scope.Livemode,
		Key:         key,
		Fingerprint: fingerprint,
		Method:      method,
		Path:        path,
		LockedUntil: now.Add(e.lockTimeout),
		LockToken:   randomBase62(24),
		CreatedAt:   now,
	}
}

// claimCtxKey is the context key under which CreatePaymentClaimed passes its
// Claim down to the recording phase.
type claimCtxKey struct{}

// claimFor returns the request's Claim if it is held and waiting for the
// response of payment p, the payment created under it.
func claimFor(ctx context.Context, p *payloom.Payment) *payloom.Claim {
	c, _ := ctx.Value(claimCtxKey{}).(*payloom.Claim)
	if c == nil || c.Record == nil || c.Completed || c.Respond == nil || p.CreationKey != c.Record.ID {
		return nil
	}
	return c
}

// completeClaimIn stores the response of a claimed request, rendered from
// v, in tx: the transaction that records the outcome v shows. It returns
// the completed record, or nil when nothing was stored: the response must
// not be stored (the API then decides), or the lease was lost to a retry
// (whose holder completes the record). A lost lease never fails the
// recording it rides on.
func (e *Engine) completeClaimIn(ctx context.Context, tx payloom.Tx, c *payloom.Claim, v any) (*payloom.IdempotencyKey, error) {
	return writeClaimDone(ctx, tx, c, e.claimDone(c, v))
}

// claimDone renders the response of claim c from v, as completeClaimIn
// stores it: the completed record, or nil if the response must not be
// stored.
func (e *Engine) claimDone(c *payloom.Claim, v any) *payloom.IdempotencyKey {
	code, body, ok := c.Respond(v)
	if !ok {
		return nil
	}
	now := e.now()
	done := *c.Record
	done.ResponseCode = code
	done.ResponseBody = bytes.Clone(body)
	if done.ResponseBody == nil {
		done.ResponseBody = []byte{}
	}
	done.CompletedAt = &now
	done.LockToken = ""
	done.LockedUntil = time.Time{}
	return &done
}

// writeClaimDone stores done, claimDone's record of claim c, in tx; see
// completeClaimIn.
func writeClaimDone(ctx context.Context, tx payloom.Tx, c *payloom.Claim, done *payloom.IdempotencyKey) (*payloom.IdempotencyKey, error) {
	if done == nil {
		return nil, nil
	}
	// Conditional on the lease: no read of the record first.
	err := tx.CompleteIdempotencyKey(ctx, done, c.Record.LockToken)
	if payloom.IsCode(err, payloom.CodeNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return done, nil
}

// Complete implements payloom.IdempotencyService. It stores a copy of body
// exactly as given and clears the lease; rec is updated in place.
func (e *Engine) Complete(ctx context.Context, rec *payloom.IdempotencyKey, code int, body []byte) error {
	body = bytes.Clone(body)
	if body == nil {
		body = []byte{}
	}
	var done *payloom.IdempotencyKey
	err := e.update(ctx, "idempotency_complete", func(tx payloom.Tx) error {
		cur, err := e.heldRecord(ctx, tx, rec)
		if err != nil {
			return err
		}
		now := e.now()
		cur.ResponseCode = code
		cur.ResponseBody = body
		cur.CompletedAt = &now
		cur.LockToken = ""
		cur.LockedUntil = time.Time{}
		done = cur
		return tx.UpdateIdempotencyKey(ctx, cur)
	})
	if err != nil {
		return err
	}
	*rec = *done
	return nil
}

// Release implements payloom.IdempotencyService: the lease ends now, so the
// next Begin with the key takes the record over at once.
func (e *Engine) Release(ctx context.Context, rec *payloom.IdempotencyKey) error {
	var done *payloom.IdempotencyKey
	err := e.update(ctx, "idempotency_release", func(tx payloom.Tx) error {
		cur, err := e.heldRecord(ctx, tx, rec)
		if err != nil {
			return err
		}
		cur.LockToken = ""
		cur.LockedUntil = time.Time{}
		done = cur
		return tx.UpdateIdempotencyKey(ctx, cur)
	})
	if err != nil {
		return err
	}
	*rec = *done
	return nil
}

// Abandon implements payloom.IdempotencyService: the record of a request
// that changed nothing is deleted, so the key is free for a corrected
// request.
func (e *Engine) Abandon(ctx context.Context, rec *payloom.IdempotencyKey) error {
	return e.update(ctx, "idempotency_abandon", func(tx payloom.Tx) error {
		cur, err := e.heldRecord(ctx, tx, rec)
		if err != nil {
			return err
		}
		return tx.DeleteIdempotencyKey(ctx, cur)
	})
}

// heldRecord re-reads rec and checks that the caller still holds its lease
// (an empty token is never held: it marks a completed or released record).
func (e *Engine) heldRecord(ctx context.Context, tx payloom.Tx, rec *payloom.IdempotencyKey) (*payloom.IdempotencyKey, error) {
	cur, err := tx.GetIdempotencyKey(ctx, rec.Scope(), rec.Key)
	if payloom.IsCode(err, payloom.CodeNotFound) {
		return nil, errLeaseLost()
	}
	if err != nil {
		return nil, err
	}
	if cur.ID != rec.ID || rec.LockToken == "" || cur.LockToken != rec.LockToken || cur.Completed() {
		return nil, errLeaseLost()
	}
	return cur, nil
}

// purgeChunk bounds the records one purge transaction deletes: on SQLite
// every transaction holds the single writer, and a purge that fell behind
// (a node down for a day) must not stall payments behind one huge delete.
const purgeChunk = 1000

// Purge implements payloom.IdempotencyService, in transactions of at most
// purgeChunk records.
func (e *Engine) Purge(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := e.update(ctx, "idempotency_purge", func(tx payloom.Tx) error {
			var err error
			n, err = tx.DeleteIdempotencyKeysBefore(ctx, before, purgeChunk)
			return err
		})
		total += n
		if err != nil || n < purgeChunk || ctx.Err() != nil {
			if total > 0 {
				e.log.InfoContext(ctx, "idempotency keys purged", "count", total)
			}
			return total, err
		}
	}
}
