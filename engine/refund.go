package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/payloom/payloom"
)

// CreateRefund implements payloom.PaymentService.
//
// Phases: refund_created reserves the amount on the payment (AmountRefunded
// grows in the same version-checked transaction that creates the pending
// refund and its refund.created event, so concurrent refunds can never
// reserve more than was captured), then the processor call keyed by the
// refund ID, then refund_recorded: succeeded, or failed with the
// reservation released. With no answer from the processor the refund is
// returned pending, not as an error, and recovery finishes it.
func (e *Engine) CreateRefund(ctx context.Context, scope payloom.Scope, opKey string, req *payloom.RefundCreate) (*payloom.Refund, error) {
	return e.createRefund(ctx, scope, opKey, req, false)
}

func (e *Engine) createRefund(ctx context.Context, scope payloom.Scope, opKey string, req *payloom.RefundCreate, raced bool) (*payloom.Refund, error) {
	if opKey == "" {
		return nil, payloom.Errorf(payloom.CodeInternal, "engine: empty operation key")
	}
	var existing *payloom.Refund
	err := e.view(ctx, "get_refund_by_creation_key", func(tx payloom.Tx) error {
		var err error
		existing, err = tx.GetRefundByCreationKey(ctx, scope, opKey)
		if payloom.IsCode(err, payloom.CodeNotFound) {
			existing, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if existing != nil {
		return e.resumeRefund(ctx, existing)
	}
	if err := validateRefund(req); err != nil {
		return nil, err
	}

	var r *payloom.Refund
	var created bool
	var remaining int64
	err = e.update(ctx, "refund_created", func(tx payloom.Tx) error {
		r, created = nil, false
		cur, err := tx.GetRefundByCreationKey(ctx, scope, opKey)
		switch {
		case err == nil:
			r = cur
			return nil
		case !payloom.IsCode(err, payloom.CodeNotFound):
			return err
		}
		// GetPayment inside Update locks the row: the check and the
		// reservation below are one atomic step.
		p, err := tx.GetPayment(ctx, scope, req.PaymentID)
		if payloom.IsCode(err, payloom.CodeNotFound) {
			return &payloom.Error{Code: payloom.CodeNotFound, Param: "payment_id", Message: "no such payment"}
		}
		if err != nil {
			return err
		}
		if p.Status != payloom.PaymentStatusCaptured {
			return payloom.Errorf(payloom.CodeInvalidState,
				"payment is %s; only captured payments can be refunded", p.Status)
		}
		left := p.AmountCaptured - p.AmountRefunded
		amt := left
		if req.Amount != nil {
			amt = *req.Amount
			if amt > left {
				return payloom.FieldError("amount", "refund amount exceeds the amount left to refund (%d)", left)
			}
		} else if left <= 0 {
			return payloom.Errorf(payloom.CodeInvalidState, "payment has already been fully refunded")
		}
		now := e.now()
		p.AmountRefunded += amt
		p.UpdatedAt = now
		if err := tx.UpdatePayment(ctx, p); err != nil {
			return err
		}
		metadata := make(map[string]string, len(req.Metadata))
		for k, v := range req.Metadata {
			metadata[k] = v
		}
		r = &payloom.Refund{
			ID:          payloom.NewID(payloom.PrefixRefund),
			Object:      "refund",
			MerchantID:  scope.MerchantID,
			Livemode:    scope.Livemode,
			PaymentID:   p.ID,
			Amount:      amt,
			Currency:    p.Currency,
			Status:      payloom.RefundStatusPending,
			Reason:      req.Reason,
			Metadata:    metadata,
			CreatedAt:   now,
			UpdatedAt:   now,
			CreationKey: opKey,
		}
		if err := tx.CreateRefund(ctx, r); err != nil {
			return err
		}
		created, remaining = true, left-amt
		return addEvent(ctx, tx, scope, payloom.EventRefundCreated, r.ID, r, now)
	})
	if payloom.IsCode(err, payloom.CodeAlreadyExists) && !raced {
		return e.createRefund(ctx, scope, opKey, req, true)
	}
	if err != nil {
		return nil, err
	}
	if created {
		e.log.InfoContext(ctx, "refund created", "refund_id", r.ID, "payment_id", r.PaymentID,
			"amount", r.Amount, "currency", r.Currency, "amount_left", remaining)
		e.fault(PhaseRefundCreated)
	}
	return e.resumeRefund(ctx, r)
}

func validateRefund(req *payloom.RefundCreate) error {
	if req == nil {
		return payloom.Errorf(payloom.CodeValidation, "empty refund request")
	}
	if req.PaymentID == "" {
		return payloom.FieldError("payment_id", "payment_id is required")
	}
	if req.Amount != nil && *req.Amount < 1 {
		return payloom.FieldError("amount", "amount must be at least 1")
	}
	switch req.Reason {
	case "", payloom.RefundReasonDuplicate, payloom.RefundReasonFraudulent, payloom.RefundReasonRequestedByCustomer:
	default:
		return payloom.FieldError("reason", "reason must be duplicate, fraudulent or requested_by_customer")
	}
	return nil
}

// resumeRefund sends a pending refund to the processor (again, under its own
// ID) and records the answer; a finished refund is returned as it is.
func (e *Engine) resumeRefund(ctx context.Context, r *payloom.Refund) (*payloom.Refund, error) {
	if r.Status != payloom.RefundStatusPending {
		return r, nil
	}
	scope := payloom.Scope{MerchantID: r.MerchantID, Livemode: r.Livemode}
	p, err := e.Payment(ctx, scope, r.PaymentID)
	if err != nil {
		return nil, err
	}
	if p.Processor == nil || p.Processor.TransactionID == "" {
		return nil, fmt.Errorf("engine: refund %s of payment %s without a processor transaction", r.ID, p.ID)
	}
	proc, err := e.processorNamed(scope, p.Processor.Name)
	if err != nil {
		return nil, err
	}
	ctx = detached(ctx)
	pctx, cancel := context.WithTimeout(ctx, e.processorTimeout)
	start := time.Now()
	res, err := proc.Refund(pctx, &payloom.RefundRequest{
		IdempotencyKey: r.ID,
		TransactionID:  p.Processor.TransactionID,
		Amount:         r.Amount,
		Currency:       r.Currency,
	})
	elapsed := time.Since(start)
	cancel()
	e.fault(PhaseRefundCalled)
	if err != nil || res == nil {
		e.log.WarnContext(ctx, "processor gave no answer; the refund stays pending for retry",
			"refund_id", r.ID, "payment_id", r.PaymentID, "processor", proc.Name(),
			"duration_ms", elapsed.Milliseconds(), "err", err)
		return e.Refund(ctx, scope, r.ID)
	}

	var out *payloom.Refund
	var recorded bool
	err = e.update(ctx, "refund_recorded", func(tx payloom.Tx) error {
		out, recorded = nil, false
		cur, err := tx.GetRefund(ctx, scope, r.ID)
		if err != nil {
			return err
		}
		out = cur
		if cur.Status != payloom.RefundStatusPending {
			return nil // recorded by a concurrent retry or by recovery
		}
		now := e.now()
		cur.TransactionID = res.TransactionID
		cur.UpdatedAt = now
		ev := payloom.EventRefundSucceeded
		if res.Succeeded {
			cur.Status = payloom.RefundStatusSucceeded
		} else {
			cur.Status = payloom.RefundStatusFailed
			code := res.FailureCode
			if code == "" {
				code = payloom.FailureProcessingError
			}
			msg := res.Message
			if msg == "" {
				msg = "The processor refused the refund."
			}
			cur.Failure = &payloom.Failure{Code: code, Message: msg}
			ev = payloom.EventRefundFailed
			// Release the reservation: the money was not returned.
			pay, err := tx.GetPayment(ctx, scope, cur.PaymentID)
			if err != nil {
				return err
			}
			pay.AmountRefunded -= cur.Amount
			pay.UpdatedAt = now
			if err := tx.UpdatePayment(ctx, pay); err != nil {
				return err
			}
		}
		if err := tx.UpdateRefund(ctx, cur); err != nil {
			return err
		}
		recorded = true
		return addEvent(ctx, tx, scope, ev, cur.ID, cur, now)
	})
	if err != nil {
		return nil, err
	}
	if recorded {
		e.log.InfoContext(ctx, "refund recorded", "refund_id", out.ID, "payment_id", out.PaymentID,
			"status", out.Status, "amount", out.Amount, "currency", out.Currency,
			"processor_code", res.FailureCode, "duration_ms", elapsed.Milliseconds())
	}
	e.fault(PhaseRefundRecorded)
	return out, nil
}

// Refund implements payloom.PaymentService.
func (e *Engine) Refund(ctx context.Context, scope payloom.Scope, id string) (*payloom.Refund, error) {
	var r *payloom.Refund
	err := e.view(ctx, "get_refund", func(tx payloom.Tx) error {
		var err error
		r, err = tx.GetRefund(ctx, scope, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}
