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
// Only an attempt the processor has no record of (it never arrived, or the
// process died before sending) is sent again, under the same key and to the
// same processor, as a retry of the request would; so is every attempt of a
// processor without Lookup, whose own idempotency deduplicates it. An
// unknown outcome is never sent to another processor.
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
			// A connector that declared Lookup but refuses it: resend.
		case lr != nil && lr.Found && lr.Result != nil:
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
			out, err := e.recordAuthorization(ctx, PhasePaymentRecorded, scope, p.ID, att.ID, proc.Name(), capture, &res, 0, e.fallbackRoute(p, &res))
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
			if next := pendingAttempt(out); next != nil && next.ID != att.ID {
				// A definite soft decline: the fallback attempt was
				// committed with it and is sent now.
				out, err = e.resumePayment(ctx, out)
				if err != nil {
					return false, err
				}
			}
			return pendingAttempt(out) == nil, nil
		}
	}
	out, err := e.resumePayment(ctx, p)
	if err != nil {
		return false, err
	}
	return pendingAttempt(out) == nil, nil
}
