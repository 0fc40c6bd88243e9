package engine

import (
	"context"
	"errors"
	"time"

	"github.com/payloom/payloom"
)

// The watch for late authorizations.
//
// An attempt that got no answer and that its processor, asked by our key
// past the lookup grace, has no record of, is recorded failed (reconcile.go).
// That is a guess: the processor may still commit the request, after
// everyone stopped waiting for it, and the shopper would then carry a hold
// (or a charge) for a payment the merchant was told failed. So the attempt
// is watched (payloom.LateCheckWatching): the late-check job asks the
// processor again, less and less often, for LateCheckWindow. When it
// shows an authorization, the job reverses it under a key derived from the
// attempt: a void ("void_late_" + attempt ID), or a refund of the whole
// amount ("refund_late_" + attempt ID) when the processor captured it. The
// reversal is committed as pending before it is sent, so a crash repeats
// the same request, which the processor deduplicates, and never forgets
// it; the outcome is recorded with payment.attempt_voided or
// payment.attempt_refunded. The payment itself does not change.

// Defaults of Config.
const (
	DefaultLookupGrace       = 5 * time.Minute
	DefaultLateCheckInterval = time.Minute
	DefaultLateCheckWindow   = 7 * 24 * time.Hour
)

// LeaseLateCheck is the lease under which a node runs the late-check job.
const LeaseLateCheck = "late_check"

// maxLateCheckDelay caps the delay between two lookups of a watched
// attempt.
const maxLateCheckDelay = time.Hour

// lateCheckBatch is how many payments one late-check pass takes.
const lateCheckBatch = 100

// Keys of the reversals, derived from the attempt so that every retry of
// one is deduplicated by the processor, and distinct from the payment's own
// capture and void keys ("cap_", "void_" + payment ID).
func lateVoidKey(att *payloom.Attempt) string   { return "void_late_" + att.ID }
func lateRefundKey(att *payloom.Attempt) string { return "refund_late_" + att.ID }

// CheckLateAuthorizations makes one pass of the late-check job: every
// watched attempt whose next check is due is looked up at its processor,
// and an authorization found is voided (or refunded, if captured); a
// reversal a crash left pending is sent again under its key. It returns
// how many late authorizations it reversed. Errors of single attempts are
// joined and do not stop the pass.
//
// It runs whether or not this node holds the late-check lease (for tests
// and tools); RunBackground runs its passes only under the lease.
func (e *Engine) CheckLateAuthorizations(ctx context.Context) (int, error) {
	return e.checkLate(ctx, nil)
}

func (e *Engine) checkLate(ctx context.Context, keep func() bool) (int, error) {
	now := e.now()
	var payments []*payloom.Payment
	err := e.view(ctx, "list_late_checks", func(tx payloom.Tx) error {
		var err error
		payments, err = tx.ListLateCheckPayments(ctx, now, lateCheckBatch)
		return err
	})
	if err != nil {
		return 0, err
	}
	var errs []error
	reversed := 0
	stop := func() bool { return ctx.Err() != nil || (keep != nil && !keep()) }
	for _, p := range payments {
		for _, att := range p.Attempts {
			if att.LateCheckAt.IsZero() || att.LateCheckAt.After(now) {
				continue
			}
			if stop() {
				return reversed, errors.Join(errs...)
			}
			done, err := e.checkLateAttempt(ctx, p, att)
			if err != nil {
				e.log.WarnContext(ctx, "late check of an attempt failed", "payment_id", p.ID, "attempt_id", att.ID, "err", err)
				errs = append(errs, err)
			}
			if done {
				reversed++
			}
		}
	}
	if reversed > 0 {
		e.log.InfoContext(ctx, "reversed late authorizations", "count", reversed)
	}
	return reversed, errors.Join(errs...)
}

// checkLateAttempt moves one watched attempt on and reports whether it
// reversed a late authorization.
func (e *Engine) checkLateAttempt(ctx context.Context, p *payloom.Payment, att *payloom.Attempt) (bool, error) {
	// Once a processor has been asked, its answer is recorded whatever
	// happens to the caller.
	ctx = detached(ctx)
	proc, err := e.processorNamed(p.Scope(), att.Processor)
	if err != nil {
		if e.now().Before(failedAt(att).Add(e.lateWindow)) {
			// Try again later (the processor may be configured
			// again) rather than block the batch.
			return false, errors.Join(err, e.postponeLateCheck(ctx, p, att))
		}
		args := []any{"payment_id", p.ID, "attempt_id", att.ID, "processor", att.Processor, "err", err}
		if att.LateCheck == payloom.LateCheckWatching {
			e.log.WarnContext(ctx, "the processor of a watched attempt is not configured and the window is over; "+
				"the watch ends without a last lookup", args...)
			return false, e.endLateCheck(ctx, p, att, att.LateCheck, payloom.LateCheckDone)
		}
		e.log.ErrorContext(ctx, "the processor of a late authorization to reverse is not configured and the window is over; "+
			"reverse it at the processor by hand", append(args, "reversal", att.LateCheck, "transaction_id", att.TransactionID)...)
		return false, e.endLateCheck(ctx, p, att, att.LateCheck, payloom.LateCheckFailed)
	}
	switch att.LateCheck {
	case payloom.LateCheckWatching:
		return e.watchLate(ctx, p, att, proc)
	case payloom.LateCheckVoidPending, payloom.LateCheckRefundPending:
		return e.reverseLate(ctx, p, att, proc, true)
	}
	// A next check without a state to act on: end it rather than loop.
	e.log.ErrorContext(ctx, "an attempt has a late check due but no watch state; the watch ends",
		"payment_id", p.ID, "attempt_id", att.ID, "late_check", att.LateCheck)
	return false, e.endLateCheck(ctx, p, att, att.LateCheck, payloom.LateCheckDone)
}

// watchLate looks a watched attempt up at its processor and claims the
// reversal of an authorization it shows.
func (e *Engine) watchLate(ctx context.Context, p *payloom.Payment, att *payloom.Attempt, proc payloom.Processor) (bool, error) {
	args := []any{"payment_id", p.ID, "attempt_id", att.ID, "processor", proc.Name()}
	if !e.now().Before(failedAt(att).Add(e.lateWindow)) {
		e.log.InfoContext(ctx, "no late authorization within the window; the watch ends", args...)
		return false, e.endLateCheck(ctx, p, att, payloom.LateCheckWatching, payloom.LateCheckDone)
	}
	if !proc.Capabilities().Lookup {
		e.log.WarnContext(ctx, "the processor of a watched attempt no longer supports Lookup; the watch ends", args...)
		return false, e.endLateCheck(ctx, p, att, payloom.LateCheckWatching, payloom.LateCheckDone)
	}
	lctx, cancel := context.WithTimeout(ctx, e.processorTimeout)
	lr, err := proc.Lookup(lctx, watchLookup(att))
	cancel()
	switch {
	case err != nil:
		e.log.WarnContext(ctx, "lookup of a watched attempt gave no answer", append(args, "err", err)...)
		return false, e.postponeLateCheck(ctx, p, att)
	case lr == nil || !lr.Found || lr.Result == nil,
		lr.Result.Status == payloom.AuthorizationRequiresAction:
		return false, e.postponeLateCheck(ctx, p, att)
	case lr.Result.Status != payloom.AuthorizationApproved:
		// Declined or failed after all: nothing is held.
		e.log.InfoContext(ctx, "the processor settled a watched attempt without an authorization; the watch ends",
			append(args, "raw_code", lr.Result.RawCode)...)
		return false, e.endLateCheck(ctx, p, att, payloom.LateCheckWatching, payloom.LateCheckDone)
	case lr.Voided:
		e.log.InfoContext(ctx, "the processor shows the late authorization voided already; the watch ends", args...)
		return false, e.endLateCheck(ctx, p, att, payloom.LateCheckWatching, payloom.LateCheckDone)
	}
	next := payloom.LateCheckVoidPending
	if lr.Captured || lr.AmountCaptured > 0 {
		next = payloom.LateCheckRefundPending
		if lr.AmountCaptured != p.Amount {
			// The refund must be the same request on every retry, so
			// its amount is the payment's: anything else is for a
			// person to sort out with the processor.
			e.log.ErrorContext(ctx, "a late authorization was captured for another amount than the payment's; "+
				"refund it at the processor by hand", append(args, "amount", p.Amount, "amount_captured", lr.AmountCaptured,
				"transaction_id", lr.Result.TransactionID)...)
			return false, e.endLateCheck(ctx, p, att, payloom.LateCheckWatching, payloom.LateCheckFailed)
		}
	}
	claimed, err := e.updateLateCheck(ctx, p, att, payloom.LateCheckWatching, func(a *payloom.Attempt, now time.Time) bool {
		a.TransactionID = lr.Result.TransactionID
		// Due at once: a crash from here on leaves it to the next pass.
		a.LateCheck, a.LateCheckAt = next, now
		return false
	})
	if err != nil || claimed == nil {
		return false, err
	}
	e.log.WarnContext(ctx, "the processor shows an authorization for an attempt recorded as failed; reversing it",
		append(args, "transaction_id", lr.Result.TransactionID, "reversal", next)...)
	e.fault(PhaseLateReversalClaimed)
	return e.reverseLate(ctx, p, claimed, proc, true)
}

// reverseLate sends the pending reversal of a late authorization and
// records its outcome. A void the processor refuses because the
// authorization was captured meanwhile turns, once (retry), into a refund.
func (e *Engine) reverseLate(ctx context.Context, p *payloom.Payment, att *payloom.Attempt, proc payloom.Processor, retry bool) (bool, error) {
	args := []any{"payment_id", p.ID, "attempt_id", att.ID, "processor", proc.Name(), "transaction_id", att.TransactionID}
	pctx, cancel := context.WithTimeout(ctx, e.processorTimeout)
	var res *payloom.OperationResult
	var err error
	if att.LateCheck == payloom.LateCheckVoidPending {
		res, err = proc.Void(pctx, &payloom.VoidRequest{IdempotencyKey: lateVoidKey(att), TransactionID: att.TransactionID})
	} else {
		res, err = proc.Refund(pctx, &payloom.RefundRequest{IdempotencyKey: lateRefundKey(att), TransactionID: att.TransactionID,
			Amount: p.Amount, Currency: p.Currency})
	}
	cancel()
	e.fault(PhaseLateReversalCalled)
	switch {
	case payloom.IsCode(err, payloom.CodeNotSupported):
		e.log.ErrorContext(ctx, "the processor cannot reverse a late authorization; reverse it at the processor by hand",
			append(args, "reversal", att.LateCheck, "err", err)...)
		return false, e.endLateCheck(ctx, p, att, att.LateCheck, payloom.LateCheckFailed)
	case payloom.IsCode(err, payloom.CodeValidation), payloom.IsCode(err, payloom.CodeIdempotencyConflict):
		// The same request would be refused the same way on every
		// retry (an empty transaction ID, say): no use sending it
		// again.
		e.log.ErrorContext(ctx, "the processor refused the reversal of a late authorization as invalid; reverse it at the processor by hand",
			append(args, "reversal", att.LateCheck, "err", err)...)
		return false, e.endLateCheck(ctx, p, att, att.LateCheck, payloom.LateCheckFailed)
	case err != nil || res == nil:
		e.log.WarnContext(ctx, "the reversal of a late authorization got no answer; it is sent again later",
			append(args, "reversal", att.LateCheck, "err", err)...)
		return false, e.postponeLateCheck(ctx, p, att)
	case res.Succeeded:
		return e.recordLateReversal(ctx, p, att, proc)
	}
	// Refused.
	if att.LateCheck == payloom.LateCheckVoidPending && retry {
		lctx, cancel := context.WithTimeout(ctx, e.processorTimeout)
		lr, lerr := proc.Lookup(lctx, watchLookup(att))
		cancel()
		switch {
		case lerr != nil:
			// Ask again later: the same void, refused again, comes
			// back here.
			return false, e.postponeLateCheck(ctx, p, att)
		case lr != nil && lr.Found && lr.Voided:
			// Voided already (an earlier void under another key, or
			// the processor's own): what the reversal was for.
			e.log.InfoContext(ctx, "the processor refused the void of a late authorization that is voided already", args...)
			return e.recordLateReversal(ctx, p, att, proc)
		case lr != nil && lr.Found && lr.AmountCaptured == p.Amount:
			refund, err := e.updateLateCheck(ctx, p, att, payloom.LateCheckVoidPending, func(a *payloom.Attempt, now time.Time) bool {
				a.LateCheck, a.LateCheckAt = payloom.LateCheckRefundPending, now
				return false
			})
			if err != nil || refund == nil {
				return false, err
			}
			return e.reverseLate(ctx, p, refund, proc, false)
		}
	}
	e.log.ErrorContext(ctx, "the processor refused to reverse a late authorization; reverse it at the processor by hand",
		append(args, "reversal", att.LateCheck, "raw_code", res.RawCode, "message", res.Message)...)
	return false, e.endLateCheck(ctx, p, att, att.LateCheck, payloom.LateCheckFailed)
}

// recordLateReversal records a reversal the processor made: the attempt
// becomes voided_late or refunded_late and the payment's event says so.
func (e *Engine) recordLateReversal(ctx context.Context, p *payloom.Payment, att *payloom.Attempt, proc payloom.Processor) (bool, error) {
	status, event := payloom.AttemptStatusVoidedLate, payloom.EventPaymentAttemptVoided
	if att.LateCheck == payloom.LateCheckRefundPending {
		status, event = payloom.AttemptStatusRefundedLate, payloom.EventPaymentAttemptRefunded
	}
	recorded, err := e.updateLateCheck(ctx, p, att, att.LateCheck, func(a *payloom.Attempt, now time.Time) bool {
		a.Status = status
		a.LateCheck, a.LateCheckAt = payloom.LateCheckDone, time.Time{}
		return true
	}, event)
	if err != nil || recorded == nil {
		return false, err
	}
	e.log.InfoContext(ctx, "reversed a late authorization", "payment_id", p.ID, "attempt_id", att.ID,
		"processor", proc.Name(), "transaction_id", att.TransactionID, "status", status)
	e.fault(PhaseLateReversalRecorded)
	return true, nil
}

// postponeLateCheck moves the attempt's next check on: half its age since
// it failed, at least the job's interval, at most an hour.
func (e *Engine) postponeLateCheck(ctx context.Context, p *payloom.Payment, att *payloom.Attempt) error {
	_, err := e.updateLateCheck(ctx, p, att, att.LateCheck, func(a *payloom.Attempt, now time.Time) bool {
		delay := min(max(now.Sub(failedAt(a))/2, e.lateInterval), max(maxLateCheckDelay, e.lateInterval))
		a.LateCheckAt = now.Add(delay)
		return false
	})
	return err
}

// endLateCheck ends the attempt's watch in state to.
func (e *Engine) endLateCheck(ctx context.Context, p *payloom.Payment, att *payloom.Attempt, from, to payloom.LateCheck) error {
	_, err := e.updateLateCheck(ctx, p, att, from, func(a *payloom.Attempt, now time.Time) bool {
		a.LateCheck, a.LateCheckAt = to, time.Time{}
		return false
	})
	return err
}

// updateLateCheck changes the attempt in its own transaction if its watch
// is still in state from (otherwise another pass moved it on, and it
// returns nil). fn changes the attempt and reports whether the payment
// changed too; then the payment is written and the events are added, with
// its snapshot.
func (e *Engine) updateLateCheck(ctx context.Context, p *payloom.Payment, att *payloom.Attempt, from payloom.LateCheck,
	fn func(a *payloom.Attempt, now time.Time) bool, events ...payloom.EventType) (*payloom.Attempt, error) {
	scope := p.Scope()
	var out *payloom.Attempt
	err := e.update(ctx, "late_check", func(tx payloom.Tx) error {
		out = nil
		cur, err := tx.GetPayment(ctx, scope, p.ID)
		if err != nil {
			return err
		}
		var a *payloom.Attempt
		for _, x := range cur.Attempts {
			if x.ID == att.ID {
				a = x
			}
		}
		if a == nil || a.LateCheck != from || a.LateCheckAt.IsZero() {
			return nil
		}
		now := e.now()
		if fn(a, now) {
			cur.UpdatedAt = now
			if err := tx.UpdatePayment(ctx, cur); err != nil {
				return err
			}
		}
		if err := tx.UpdateAttempt(ctx, a); err != nil {
			return err
		}
		setTimings(cur)
		for _, typ := range events {
			if err := addEvent(ctx, tx, scope, typ, cur.ID, cur, now); err != nil {
				return err
			}
		}
		out = a
		return nil
	})
	return out, err
}

// watchLookup is the lookup of a watched attempt: by its key (and the
// processor's transaction ID once known) only. Never by the payment's
// reference: the payment may since hold a real authorization at the same
// processor (a hosted page confirmed again), which a connector searching by
// reference could return, and the watch would void it.
func watchLookup(att *payloom.Attempt) *payloom.LookupRequest {
	return &payloom.LookupRequest{IdempotencyKey: att.ID, TransactionID: att.TransactionID}
}

// failedAt is when a watched attempt was recorded failed.
func failedAt(a *payloom.Attempt) time.Time {
	if a.CompletedAt != nil {
		return *a.CompletedAt
	}
	return a.CreatedAt
}

// lateCheckCalls is the most processor calls one watched attempt makes in
// a pass: a lookup, a void, the lookup after a refused void, the refund.
const lateCheckCalls = 4

// lateCheckPass runs one late-check pass if this engine holds, or can take,
// the late-check lease, renewing it while the pass lasts; ran reports
// whether it did.
//
// The lease is renewed between attempts only, so its term must outlast
// one attempt whose every call takes the whole processor timeout, on top
// of the intervals a lease normally lasts: otherwise another node could
// take the job over and act on the same attempt meanwhile.
func (e *Engine) lateCheckPass(ctx context.Context) (ran bool, reversed int, err error) {
	term := leaseIntervals*e.lateInterval + lateCheckCalls*e.processorTimeout
	return e.leasedPass(ctx, LeaseLateCheck, term, e.checkLate)
}

func (e *Engine) runLateCheck(ctx context.Context) {
	if _, _, err := e.lateCheckPass(ctx); err != nil && ctx.Err() == nil {
		e.log.ErrorContext(ctx, "late-check pass failed", "err", err)
	}
}
