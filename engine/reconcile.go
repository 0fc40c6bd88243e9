package engine

import (
	"context"
	"time"

	"github.com/payloom/payloom"
)

// reconcilePending settles an abandoned pending attempt (older than the
// lock timeout: no request is still working on it). When its processor
// supports Lookup, the processor is asked what became of the attempt by our
// own key first: an authorization it knows of (approved or declined) is
// recorded as if Authorize had answered, without sending anything again.
//
// An attempt the processor has no record of is sent again, under the same
// key and to the same processor, as a retry of the request would, while it
// is younger than the lookup grace: the process may have died between
// committing the attempt and sending it. From then on it is only looked up,
// and once it is older than lookupGraceFor (the grace, plus the processor
// timeout and the processor's lookup lag, so that the last send is that
// old), "not found" is taken as the answer: the attempt and the payment fail
// (not_found_at_processor, with payment.failed), and the attempt is watched
// for an authorization the processor commits late, which the late-check job
// voids (latecheck.go). An attempt of a processor without Lookup is always
// sent again; its own idempotency deduplicates it. An unknown outcome is
// never sent to another processor, not even once it has failed, nor when a
// resend is turned away before processing (see resumePayment).
//
// It reports whether the payment no longer waits on the processor.
func (e *Engine) reconcilePending(ctx context.Context, p *payloom.Payment) (bool, error) {
	att := pendingAttempt(p)
	scope := p.Scope()
	proc, err := e.processorNamed(scope, att.Processor)
	if err != nil {
		return false, err
	}
	if proc.Capabilities().Lookup {
		ctx = detached(ctx)
		lctx, cancel := context.WithTimeout(ctx, e.processorTimeout)
		start := time.Now()
		lr, err := proc.Lookup(lctx, &payloom.LookupRequest{IdempotencyKey: att.ID, Reference: p.ID, TransactionID: att.TransactionID})
		elapsed := time.Since(start)
		cancel()
		switch {
		case err != nil:
			if payloom.ErrorCode(err) != payloom.CodeValidation && !payloom.IsCode(err, payloom.CodeNotSupported) {
				e.log.WarnContext(ctx, "lookup gave no answer; the attempt stays pending",
					"payment_id", p.ID, "attempt_id", att.ID, "processor", proc.Name(), "err", err)
				return false, nil
			}
			// A connector that declared Lookup but refuses it: no
			// "not found" will ever settle the attempt, so it is sent
			// again whatever its age, as without Lookup.
			out, err := e.resumePayment(ctx, p, false, nil)
			if err != nil {
				return false, err
			}
			return pendingAttempt(out) == nil, nil
		case lr != nil && !lr.Found:
			if age := e.now().Sub(att.CreatedAt); age >= e.lookupGraceFor(proc) {
				return e.failNotFound(ctx, p, att, proc, age)
			}
			// Young enough never to have been sent: resend (within
			// the resend window; past it, wait for the grace).
		case lr != nil && lr.Result != nil:
			res := *lr.Result
			capture := p.CaptureMethod == payloom.CaptureMethodAutomatic
			captureLater := false
			if res.Status == payloom.AuthorizationApproved && capture && !lr.Captured {
				// The processor holds an authorization it did not
				// capture: record what it holds, then capture it as
				// the payment asked.
				capture, captureLater = false, true
			}
			if res.Status == payloom.AuthorizationApproved && lr.Voided {
				e.log.WarnContext(ctx, "reconciled authorization was voided at the processor",
					"payment_id", p.ID, "attempt_id", att.ID, "processor", proc.Name())
			}
			out, fellBack, err := e.recordAuthorization(ctx, PhasePaymentRecorded, scope, p.ID, att.ID, proc.Name(), capture, &res, 0, e.fallbackRoute(p, &res))
			if err != nil {
				return false, err
			}
			e.log.InfoContext(ctx, "reconciled an unknown outcome from the processor's lookup",
				"payment_id", p.ID, "attempt_id", att.ID, "processor", proc.Name(),
				"status", out.Status, "lookup_ms", elapsed.Milliseconds())
			if captureLater && out.Status == payloom.PaymentStatusAuthorized {
				// A capture under a key derived from the attempt: a
				// pass that dies here is finished by the next one,
				// through the pending capture it committed.
				c, err := e.CapturePayment(ctx, scope, "op_reconcile_capture_"+att.ID, p.ID, nil)
				if err != nil {
					e.log.WarnContext(ctx, "capture of a reconciled authorization failed; the payment stays authorized",
						"payment_id", p.ID, "attempt_id", att.ID, "processor", proc.Name(), "err", err)
					return true, nil
				}
				out = c
			}
			// A definite soft decline: the fallback attempt was
			// committed with it and is sent now.
			if out, err = e.sendFallback(ctx, out, att.ID, fellBack); err != nil {
				return false, err
			}
			return pendingAttempt(out) == nil, nil
		}
	}
	out, err := e.resend(ctx, p)
	if err != nil {
		return false, err
	}
	return pendingAttempt(out) == nil, nil
}

// lookupGraceFor is the age past which proc's "not found" for an attempt is
// final. Resends of an attempt at a processor with Lookup stop at the
// lookup grace (inResendWindow); the last one has ended (answered or timed
// out) a processor timeout later, and the processor's lookup shows what it
// made once its LookupLag has passed. Counting from creation, not from the
// last send, is then safe without storing when each send was made.
func (e *Engine) lookupGraceFor(proc payloom.Processor) time.Duration {
	return e.lookupGrace + e.processorTimeout + proc.Capabilities().LookupLag
}

// inResendWindow reports whether a pending attempt may be sent again: at a
// processor with Lookup, only while it is younger than the lookup grace
// (see lookupGraceFor); at one without, always, because a resend is the
// only way to learn its outcome.
func (e *Engine) inResendWindow(proc payloom.Processor, att *payloom.Attempt) bool {
	return !proc.Capabilities().Lookup || e.now().Sub(att.CreatedAt) < e.lookupGrace
}

// notFoundResult is the answer recorded for an attempt the processor has no
// record of past the lookup grace. It is a failure, but it proves nothing:
// the caller never lets it fall back to another processor.
var notFoundResult = payloom.AuthorizeResult{
	Status:      payloom.AuthorizationFailed,
	FailureCode: payloom.FailureNotFoundAtProcessor,
	Message:     "The processor did not answer and has no record of the payment; it was not completed.",
}

// failNotFound records a pending attempt whose processor has no record of
// it past the lookup grace: the attempt fails and so does the payment (a
// hosted-page payment goes back to requires_payment_method, like after any
// failure), with payment.failed, and in the same transaction the attempt
// starts being watched for a late authorization. No other processor is
// tried: the request may still be in the processor's hands.
func (e *Engine) failNotFound(ctx context.Context, p *payloom.Payment, att *payloom.Attempt, proc payloom.Processor, age time.Duration) (bool, error) {
	scope := p.Scope()
	res := notFoundResult
	var out *payloom.Payment
	var recorded bool
	err := e.update(ctx, "payment_recorded", func(tx payloom.Tx) error {
		out, recorded = nil, false
		cur, err := tx.GetPayment(ctx, scope, p.ID)
		if err != nil {
			return err
		}
		out = cur
		a := pendingAttempt(cur)
		if a == nil || a.ID != att.ID {
			return nil // settled meanwhile by a retry of the request
		}
		now := e.now()
		a.LateCheck, a.LateCheckAt = payloom.LateCheckWatching, now.Add(e.lateInterval)
		if err := e.writeOutcome(ctx, tx, scope, cur, a, proc.Name(), false, &res, now); err != nil {
			return err
		}
		recorded = true
		return nil
	})
	if err != nil {
		return false, err
	}
	if recorded {
		e.log.WarnContext(ctx, "the processor has no record of an unanswered attempt past the lookup grace: the payment fails "+
			"and the attempt is watched for a late authorization",
			"payment_id", p.ID, "attempt_id", att.ID, "processor", proc.Name(), "status", out.Status,
			"attempt_age_ms", age.Milliseconds())
	}
	return pendingAttempt(out) == nil, nil
}
