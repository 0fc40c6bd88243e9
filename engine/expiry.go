package engine

import (
	"context"
	"errors"
	"time"

	"github.com/payloom/payloom"
)

// LeaseExpiry is the lease under which a node expires unpaid payments.
const LeaseExpiry = "expiry"

// DefaultExpiryInterval paces the expiry job when Config.ExpiryInterval is
// not set.
const DefaultExpiryInterval = time.Minute

// expiryBatch is how many payments one query of the expiry job takes.
const expiryBatch = 100

// maxExpiryBatches bounds one pass, so that a pass renews its lease and a
// backlog is worked through over a few passes.
const maxExpiryBatches = 50

// ExpireDue makes one expiry pass: every payment in requires_payment_method
// whose expires_at has come becomes expired, with a payment.expired event,
// each in its own version-checked transaction (a shopper confirming at the
// same moment either wins, and the payment is not expired, or loses and
// gets invalid_state). It returns how many payments it expired. Errors of
// single payments are joined and do not stop the pass.
//
// ExpireDue runs whether or not this node holds the expiry lease (for tests
// and tools); RunBackground runs its passes only under the lease.
func (e *Engine) ExpireDue(ctx context.Context) (int, error) {
	return e.expireDue(ctx, nil)
}

func (e *Engine) expireDue(ctx context.Context, keep func() bool) (int, error) {
	var errs []error
	done := 0
	stop := func() bool { return ctx.Err() != nil || (keep != nil && !keep()) }
	for range maxExpiryBatches {
		var due []*payloom.Payment
		err := e.view(ctx, "list_expired", func(tx payloom.Tx) error {
			var err error
			due, err = tx.ListExpiredPayments(ctx, e.now(), expiryBatch)
			return err
		})
		if err != nil {
			return done, errors.Join(append(errs, err)...)
		}
		progressed := false
		for _, p := range due {
			if stop() {
				return done, errors.Join(errs...)
			}
			expired, err := e.expirePayment(ctx, p.Scope(), p.ID)
			if err != nil {
				e.log.WarnContext(ctx, "expiring a payment failed", "payment_id", p.ID, "err", err)
				errs = append(errs, err)
				continue
			}
			if expired {
				done++
				progressed = true
			}
		}
		if len(due) < expiryBatch || !progressed {
			break
		}
	}
	if done > 0 {
		e.log.InfoContext(ctx, "expired unpaid payments", "count", done)
	}
	return done, errors.Join(errs...)
}

// expirePayment expires one payment if it is still unpaid and due.
func (e *Engine) expirePayment(ctx context.Context, scope payloom.Scope, id string) (bool, error) {
	var expired bool
	err := e.update(ctx, "payment_expired", func(tx payloom.Tx) error {
		expired = false
		p, err := tx.GetPayment(ctx, scope, id)
		if err != nil {
			return err
		}
		now := e.now()
		if p.Status != payloom.PaymentStatusRequiresPaymentMethod || p.ExpiresAt == nil || now.Before(*p.ExpiresAt) {
			return nil // paid, canceled or confirmed meanwhile
		}
		expired = true
		return markExpired(ctx, tx, p, now)
	})
	if err == nil && expired {
		e.log.InfoContext(ctx, "payment expired", "payment_id", id)
	}
	return expired, err
}

// markExpired writes the expiry of an unpaid payment and its event.
func markExpired(ctx context.Context, tx payloom.Tx, p *payloom.Payment, now time.Time) error {
	p.Status = payloom.PaymentStatusExpired
	p.UpdatedAt = now
	if err := tx.UpdatePayment(ctx, p); err != nil {
		return err
	}
	return addEvent(ctx, tx, p.Scope(), payloom.EventPaymentExpired, p.ID, p, now)
}

// expiryPass runs one expiry pass if this engine holds, or can take, the
// expiry lease, renewing it while the pass lasts; ran reports whether it
// did.
func (e *Engine) expiryPass(ctx context.Context) (ran bool, expired int, err error) {
	return e.leasedPass(ctx, LeaseExpiry, leaseIntervals*e.expiryInterval, e.expireDue)
}

func (e *Engine) runExpiry(ctx context.Context) {
	if _, _, err := e.expiryPass(ctx); err != nil && ctx.Err() == nil {
		e.log.ErrorContext(ctx, "expiry pass failed", "err", err)
	}
}
