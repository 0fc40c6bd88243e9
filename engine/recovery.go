package engine

import (
	"context"
	"errors"
	"time"

	"github.com/payloom/payloom"
)

// recoveryBatch is how many abandoned payments and refunds one pass takes;
// the next pass takes the rest.
const recoveryBatch = 100

// RecoverStale makes one recovery pass: every payment with a pending attempt
// or a pending capture/cancel, and every pending refund, older than the
// lock timeout (so no live request can still be working on it) is resumed
// exactly as a retry of its request would resume it. It returns how many
// were finished (recorded); work whose processor still gives no answer stays
// pending for the next pass. Errors of single objects are joined and do not
// stop the pass.
//
// RecoverStale runs whether or not this node holds the recovery lease (for
// tests and tools); RunBackground runs its passes only under the lease.
func (e *Engine) RecoverStale(ctx context.Context) (int, error) {
	return e.recoverStale(ctx, nil)
}

// recoverStale is RecoverStale; keep, when set, is asked before each object
// whether the pass may go on (whether the node still holds the lease).
func (e *Engine) recoverStale(ctx context.Context, keep func() bool) (int, error) {
	cutoff := e.now().Add(-e.lockTimeout)
	var payments []*payloom.Payment
	var refunds []*payloom.Refund
	err := e.view(ctx, "list_stale", func(tx payloom.Tx) error {
		var err error
		if payments, err = tx.ListStalePayments(ctx, cutoff, recoveryBatch); err != nil {
			return err
		}
		refunds, err = tx.ListStaleRefunds(ctx, cutoff, recoveryBatch)
		return err
	})
	if err != nil {
		return 0, err
	}
	var errs []error
	done := 0
	stop := func() bool { return ctx.Err() != nil || (keep != nil && !keep()) }
	for _, p := range payments {
		if stop() {
			break
		}
		finished, err := e.recoverPayment(ctx, p)
		if err != nil {
			e.log.WarnContext(ctx, "recovery of a payment failed", "payment_id", p.ID, "err", err)
			errs = append(errs, err)
		}
		if finished {
			done++
		}
	}
	for _, r := range refunds {
		if stop() {
			break
		}
		out, err := e.resumeRefund(ctx, r)
		if err != nil {
			e.log.WarnContext(ctx, "recovery of a refund failed", "refund_id", r.ID, "err", err)
			errs = append(errs, err)
			continue
		}
		if out.Status != payloom.RefundStatusPending {
			done++
		}
	}
	if done > 0 {
		e.log.InfoContext(ctx, "recovered abandoned operations", "count", done)
	}
	return done, errors.Join(errs...)
}

// recoverPayment finishes whatever a payment was left waiting for and
// reports whether it is no longer waiting.
func (e *Engine) recoverPayment(ctx context.Context, p *payloom.Payment) (bool, error) {
	switch {
	case pendingAttempt(p) != nil:
		return e.reconcilePending(ctx, p)
	case p.PendingAction != "":
		out, err := e.finishAction(ctx, p)
		if isRefusal(err) {
			return true, nil // recorded: the processor said no
		}
		if err != nil {
			return false, err
		}
		return out.PendingAction == "", nil
	}
	return false, nil
}

// RunBackground runs recovery every RecoveryInterval, purges idempotency
// records older than IdempotencyTTL every PurgeInterval, expires unpaid
// payments every ExpiryInterval and checks for late authorizations every
// LateCheckInterval, starting with one of each at once. It returns when ctx
// is done.
//
// Every node runs RunBackground, and each job is done by one of them: a
// pass runs only while this node holds the job's lease (LeaseRecovery,
// LeasePurge, LeaseExpiry, LeaseLateCheck), which it takes when the lease is free or expired and renews
// every pass. A node that dies stops renewing and another takes the job
// over when the lease expires (three intervals); a node that shuts down
// releases its leases on the way out.
func (e *Engine) RunBackground(ctx context.Context) {
	defer e.releaseLeases(ctx)
	recovery := time.NewTicker(e.recoveryInterval)
	defer recovery.Stop()
	purge := time.NewTicker(e.purgeInterval)
	defer purge.Stop()
	expiry := time.NewTicker(e.expiryInterval)
	defer expiry.Stop()
	late := time.NewTicker(e.lateInterval)
	defer late.Stop()
	e.runRecovery(ctx)
	e.runPurge(ctx)
	e.runExpiry(ctx)
	e.runLateCheck(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-recovery.C:
			e.runRecovery(ctx)
		case <-purge.C:
			e.runPurge(ctx)
		case <-expiry.C:
			e.runExpiry(ctx)
		case <-late.C:
			e.runLateCheck(ctx)
		}
	}
}

func (e *Engine) runRecovery(ctx context.Context) {
	if _, _, err := e.recoveryPass(ctx); err != nil && ctx.Err() == nil {
		e.log.ErrorContext(ctx, "recovery pass failed", "err", err)
	}
}

func (e *Engine) runPurge(ctx context.Context) {
	if _, _, err := e.purgePass(ctx); err != nil && ctx.Err() == nil {
		e.log.ErrorContext(ctx, "idempotency purge failed", "err", err)
	}
}
