package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/payloom/payloom"
)

// Capture and cancel run in three phases: action_claimed (the payment gets a
// PendingAction with the request's opKey, amount and time), the processor
// call keyed "cap_"+payment ID or "void_"+payment ID (a payment has at most
// one capture and one void, so every retry of either is deduplicated by the
// processor), and action_recorded.
//
// After the record phase the payment keeps PendingActionKey (with
// PendingAction cleared) as the key of the last finished action: a retry of
// that request after a crash between recording and responding finds its work
// done and gets the payment back, not an invalid_state error.

// CapturePayment implements payloom.PaymentService. A processor's definite
// refusal leaves the payment authorized and returns CodeInvalidState ("the
// processor refused the capture: ..."); no answer at all leaves the capture
// pending (finished by a retry with the same opKey or by recovery) and
// returns CodeUnavailable.
func (e *Engine) CapturePayment(ctx context.Context, scope payloom.Scope, opKey, id string, amount *int64) (*payloom.Payment, error) {
	p, err := e.runAction(ctx, scope, opKey, id, payloom.PendingActionCapture, amount)
	return e.present(p), err
}

// CancelPayment implements payloom.PaymentService, with the same error
// contract as CapturePayment. A payment still in requires_payment_method
// (an unpaid hosted-page payment) is canceled at once, its link dead.
func (e *Engine) CancelPayment(ctx context.Context, scope payloom.Scope, opKey, id string) (*payloom.Payment, error) {
	p, err := e.runAction(ctx, scope, opKey, id, payloom.PendingActionCancel, nil)
	return e.present(p), err
}

// actionVerb and actionTarget name an action in messages and give the status
// it leads to.
func actionVerb(action string) string {
	if action == payloom.PendingActionCapture {
		return "captured"
	}
	return "canceled"
}

func actionTarget(action string) payloom.PaymentStatus {
	if action == payloom.PendingActionCapture {
		return payloom.PaymentStatusCaptured
	}
	return payloom.PaymentStatusCanceled
}

func errActionInProgress() error {
	return payloom.Errorf(payloom.CodeInvalidState, "another capture or cancel is in progress")
}

// maxStaleTakeovers bounds how many abandoned actions one request finishes
// before deciding its own; there is at most one pending action per payment,
// so more than one is a sign of a bug or of a processor that never answers.
const maxStaleTakeovers = 2

func (e *Engine) runAction(ctx context.Context, scope payloom.Scope, opKey, id, action string, amount *int64) (*payloom.Payment, error) {
	if opKey == "" {
		return nil, payloom.Errorf(payloom.CodeInternal, "engine: empty operation key")
	}
	for takeovers := 0; ; takeovers++ {
		var p, stale *payloom.Payment
		var claimed bool
		err := e.update(ctx, "action_claimed", func(tx payloom.Tx) error {
			p, stale, claimed = nil, nil, false
			cur, err := tx.GetPayment(ctx, scope, id)
			if err != nil {
				return err
			}
			now := e.now()
			switch {
			case cur.PendingAction != "" && cur.PendingActionKey == opKey:
				if cur.PendingAction != action {
					return errActionInProgress()
				}
				p = cur // our own claim, committed before a crash: resume
				return nil
			case cur.PendingAction != "" && cur.PendingSince.Before(now.Add(-e.lockTimeout)):
				stale = cur
				return nil
			case cur.PendingAction != "":
				return errActionInProgress()
			case cur.PendingActionKey == opKey && cur.Status == actionTarget(action):
				p = cur // already done by this very request
				return nil
			case action == payloom.PendingActionCancel && cur.Status == payloom.PaymentStatusRequiresPaymentMethod:
				p = cur // nothing at the processor: cancel the unpaid payment here
				return cancelUnpaid(ctx, tx, cur, opKey, now)
			case cur.Status != payloom.PaymentStatusAuthorized:
				return payloom.Errorf(payloom.CodeInvalidState,
					"payment is %s; only authorized payments can be %s", cur.Status, actionVerb(action))
			}
			amt := cur.AmountCapturable
			if action == payloom.PendingActionCapture && amount != nil {
				amt = *amount
				if amt < 1 || amt > cur.AmountCapturable {
					return payloom.FieldError("amount",
						"amount must be between 1 and the amount capturable (%d)", cur.AmountCapturable)
				}
			}
			cur.PendingAction = action
			cur.PendingActionKey = opKey
			cur.PendingAmount = amt
			cur.PendingSince = now
			cur.UpdatedAt = now
			if err := tx.UpdatePayment(ctx, cur); err != nil {
				return err
			}
			p, claimed = cur, true
			return nil
		})
		if err != nil {
			return nil, err
		}
		if stale != nil {
			if takeovers >= maxStaleTakeovers {
				return nil, errActionInProgress()
			}
			// Its request died after claiming. Its processor call may
			// have happened, so it must be finished as it was claimed
			// before this request can decide anything.
			e.log.InfoContext(ctx, "finishing an abandoned action", "payment_id", stale.ID,
				"action", stale.PendingAction)
			if _, err := e.finishAction(ctx, stale); err != nil && !isRefusal(err) {
				return nil, err
			}
			continue
		}
		if claimed {
			e.log.InfoContext(ctx, "payment action claimed", "payment_id", p.ID, "action", action,
				"amount", p.PendingAmount, "currency", p.Currency)
			e.fault(PhaseActionClaimed)
		}
		if p.PendingAction == "" {
			return p, nil
		}
		out, err := e.finishAction(ctx, p)
		var r *refusal
		if errors.As(err, &r) {
			return nil, r.err
		}
		return out, err
	}
}

// refusal is a processor's definite "no" to a capture or void.
type refusal struct{ err *payloom.Error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func isRefusal(err error) bool {
	var r *refusal
	return errors.As(err, &r)
}

// processorKey is the idempotency key of a payment's capture or void.
func processorKey(action, paymentID string) string {
	if action == payloom.PendingActionCapture {
		return "cap_" + paymentID
	}
	return "void_" + paymentID
}

// finishAction sends a payment's pending action to the processor and records
// the answer. The caller's request or the recovery loop may run it; the
// record phase only applies if the same claim is still pending.
func (e *Engine) finishAction(ctx context.Context, p *payloom.Payment) (*payloom.Payment, error) {
	action, key, amount := p.PendingAction, p.PendingActionKey, p.PendingAmount
	scope := p.Scope()
	if p.Processor == nil || p.Processor.TransactionID == "" {
		return nil, fmt.Errorf("engine: payment %s has a pending %s but no processor transaction", p.ID, action)
	}
	proc, err := e.processorNamed(scope, p.Processor.Name)
	if err != nil {
		return nil, err
	}
	ctx = detached(ctx)
	pctx, cancel := context.WithTimeout(ctx, e.processorTimeout)
	start := time.Now()
	var res *payloom.OperationResult
	if action == payloom.PendingActionCapture {
		res, err = proc.Capture(pctx, &payloom.CaptureRequest{
			IdempotencyKey: processorKey(action, p.ID),
			TransactionID:  p.Processor.TransactionID,
			Amount:         amount,
			Currency:       p.Currency,
		})
	} else {
		res, err = proc.Void(pctx, &payloom.VoidRequest{
			IdempotencyKey: processorKey(action, p.ID),
			TransactionID:  p.Processor.TransactionID,
		})
	}
	elapsed := time.Since(start)
	cancel()
	if payloom.IsCode(err, payloom.CodeIdempotencyConflict) {
		// The key is per payment, so this only happens after the
		// processor refused an earlier capture of another amount: a
		// definite answer, not an unknown outcome to retry forever.
		res, err = &payloom.OperationResult{
			FailureCode: payloom.FailureProcessingError,
			Message:     "an earlier " + action + " of this payment was refused",
		}, nil
	}
	e.fault(PhaseActionCalled)
	if err != nil || res == nil {
		e.log.WarnContext(ctx, "processor gave no answer; the action stays pending for retry",
			"payment_id", p.ID, "action", action, "processor", proc.Name(),
			"duration_ms", elapsed.Milliseconds(), "err", err)
		return nil, &payloom.Error{
			Code:    payloom.CodeUnavailable,
			Message: "the processor did not answer; retry with the same Idempotency-Key, or the " + action + " is finished automatically",
			Err:     err,
		}
	}

	var out *payloom.Payment
	var recorded bool
	err = e.update(ctx, "action_recorded", func(tx payloom.Tx) error {
		out, recorded = nil, false
		cur, err := tx.GetPayment(ctx, scope, p.ID)
		if err != nil {
			return err
		}
		out = cur
		if cur.PendingAction != action || cur.PendingActionKey != key {
			return nil // recorded by a concurrent retry or by recovery
		}
		now := e.now()
		cur.PendingAction = ""
		cur.PendingAmount = 0
		cur.PendingSince = time.Time{}
		cur.UpdatedAt = now
		var ev payloom.EventType
		if res.Succeeded {
			cur.AmountCapturable = 0 // a capture releases the rest
			if action == payloom.PendingActionCapture {
				cur.Status = payloom.PaymentStatusCaptured
				cur.AmountCaptured = amount
				ev = payloom.EventPaymentCaptured
			} else {
				cur.Status = payloom.PaymentStatusCanceled
				ev = payloom.EventPaymentCanceled
			}
		}
		if err := tx.UpdatePayment(ctx, cur); err != nil {
			return err
		}
		recorded = true
		if ev != "" {
			return addEvent(ctx, tx, scope, ev, cur.ID, cur, now)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if recorded {
		e.log.InfoContext(ctx, "payment action recorded", "payment_id", out.ID, "action", action,
			"succeeded", res.Succeeded, "status", out.Status, "amount", amount, "currency", out.Currency,
			"amount_captured", out.AmountCaptured, "processor_code", res.FailureCode,
			"duration_ms", elapsed.Milliseconds())
	}
	e.fault(PhaseActionRecorded)
	if !res.Succeeded && recorded {
		msg := res.Message
		if msg == "" {
			msg = res.FailureCode
		}
		noun := "capture"
		if action == payloom.PendingActionCancel {
			noun = "cancel"
		}
		return out, &refusal{payloom.Errorf(payloom.CodeInvalidState, "the processor refused the %s: %s", noun, msg)}
	}
	return out, nil
}
