package engine

import (
	"context"
	"strings"
	"time"

	"github.com/payloom/payloom"
)

// The hosted payment page, 3-D Secure and receipts.
//
// A payment created without a payment method is stored in
// requires_payment_method with the SHA-256 of a fresh page secret; the
// secret itself appears once, in payment_url, in the creation response. The
// shopper's card (or the merchant's, through the API) is attached by
// ConfirmPayment, whose phase payment_confirmed moves the payment to
// processing with a new pending attempt, in one transaction; from there the
// attempt runs exactly as CreatePayment's does (the same resumePayment and
// recordAuthorization, and the same routing and fallback: the first attempt
// goes to the route's first processor, a soft decline or a failure before
// sending moves on to the next). A decline that ends the routing sends the
// payment back to requires_payment_method, and another confirm adds
// another attempt, routed anew (ConfirmAttemptID marks where).
//
// A payment in requires_action waits for the shopper at the issuer. When the
// shopper comes back, CompleteAuthentication asks the processor what the
// authentication decided (the connector's CompleteAuthentication with what
// the browser brought back, or Lookup keyed by the attempt ID) and records
// it in phase authentication_recorded, version-checked like every other
// phase, with the same fallback rules as an authorization's answer.

var _ payloom.CheckoutService = (*Engine)(nil)

// Fault-hook phases of the hosted-page flows (see the Phase* constants).
const (
	PhasePaymentConfirmed       = "payment_confirmed"
	PhaseAuthenticationRecorded = "authentication_recorded"
)

// present fills the URLs a returned payment shows: receipt_url on a captured
// payment that has a receipt secret. It returns p (nil for nil).
func (e *Engine) present(p *payloom.Payment) *payloom.Payment {
	setTimings(p)
	if p != nil && p.Status == payloom.PaymentStatusCaptured && p.ReceiptSecret != "" {
		p.ReceiptURL = payloom.ReceiptPageURL(e.publicURL, p.ID, p.ReceiptSecret.Reveal())
	}
	return p
}

// absoluteRedirect makes a processor's relative redirect URL (the sandbox's
// challenge page) absolute on the public URL, so that a merchant can send the
// shopper there from anywhere.
func (e *Engine) absoluteRedirect(res *payloom.AuthorizeResult) *payloom.AuthorizeResult {
	if res == nil || e.publicURL == "" || !strings.HasPrefix(res.RedirectURL, "/") || strings.HasPrefix(res.RedirectURL, "//") {
		return res
	}
	out := *res
	out.RedirectURL = e.publicURL + res.RedirectURL
	return &out
}

// newPage returns the page part of a new payment: the request's options,
// a fresh receipt secret, and for a payment paid on the hosted page the
// hash of its page secret and its expiry.
func newPage(o *payloom.PageOptions, secretHash []byte, expires *time.Time) payloom.PaymentPage {
	pg := payloom.PaymentPage{
		ExpiresAt:      expires,
		SuccessURL:     o.SuccessURL,
		FailureURL:     o.FailureURL,
		ReturnURL:      o.ReturnURL,
		PageSecretHash: secretHash,
		ReceiptSecret:  payloom.NewPageSecret(),
	}
	if len(o.LineItems) > 0 {
		pg.LineItems = append([]payloom.LineItem(nil), o.LineItems...)
	}
	return pg
}

// createUnpaid is CreatePayment for a request without a payment method:
// phase payment_created stores the payment in requires_payment_method with
// its page, and the response carries payment_url with the new secret.
func (e *Engine) createUnpaid(ctx context.Context, scope payloom.Scope, opKey string, req *payloom.PaymentCreate, raced bool) (*payloom.Payment, error) {
	now := e.now()
	expires, err := payloom.ValidatePage(req, scope.Livemode, now)
	if err != nil {
		return nil, err
	}
	secret := payloom.NewPageSecret()
	var p *payloom.Payment
	var created bool
	err = e.update(ctx, "payment_created", func(tx payloom.Tx) error {
		p, created = nil, false
		if cur, err := createdBy(ctx, tx, scope, opKey); err != nil || cur != nil {
			p = cur // a concurrent request with the same key won
			return err
		}
		capture := req.CaptureMethod
		if capture == "" {
			capture = payloom.CaptureMethodAutomatic
		}
		metadata := make(map[string]string, len(req.Metadata))
		for k, v := range req.Metadata {
			metadata[k] = v
		}
		p = &payloom.Payment{
			ID:                  payloom.NewID(payloom.PrefixPayment),
			Object:              "payment",
			MerchantID:          scope.MerchantID,
			Livemode:            scope.Livemode,
			Amount:              req.Amount,
			Currency:            req.Currency,
			Status:              payloom.PaymentStatusRequiresPaymentMethod,
			CaptureMethod:       capture,
			CustomerID:          req.CustomerID,
			Reference:           req.Reference,
			Description:         req.Description,
			StatementDescriptor: req.StatementDescriptor,
			Attempts:            []*payloom.Attempt{},
			Metadata:            metadata,
			CreatedAt:           now,
			UpdatedAt:           now,
			CreationKey:         opKey,
			PaymentPage:         newPage(&req.PageOptions, payloom.HashPageSecret(secret.Reveal()), expires),
		}
		if err := tx.CreatePayment(ctx, p); err != nil {
			return err
		}
		created = true
		return addEvent(ctx, tx, scope, payloom.EventPaymentCreated, p.ID, p, now)
	})
	if payloom.IsCode(err, payloom.CodeAlreadyExists) && !raced {
		return e.createPayment(ctx, scope, opKey, req, nil, true)
	}
	if err != nil {
		return nil, err
	}
	if !created {
		return e.resumeUnpaid(ctx, p)
	}
	e.log.InfoContext(ctx, "payment created for the hosted page", "payment_id", p.ID,
		"merchant_id", scope.MerchantID, "livemode", scope.Livemode, "amount", p.Amount,
		"currency", p.Currency, "expires_at", p.ExpiresAt)
	e.fault(PhasePaymentCreated)
	p.PaymentURL = payloom.PaymentPageURL(e.publicURL, p.ID, secret.Reveal())
	return p, nil
}

// resumeUnpaid answers a retry of the request that created a hosted-page
// payment. The page secret was stored only as a hash, so the retry cannot
// be given the first response's payment_url: while nobody has paid yet, the
// secret is replaced and the new payment_url returned (the first one, which
// its client never received, stops working). A payment already being paid
// is returned as it is, without payment_url.
//
// Retries with a completed response never get here: the API replays that
// response, payment_url included.
func (e *Engine) resumeUnpaid(ctx context.Context, p *payloom.Payment) (*payloom.Payment, error) {
	if p.Status != payloom.PaymentStatusRequiresPaymentMethod || len(p.Attempts) > 0 {
		return p, nil
	}
	secret := payloom.NewPageSecret()
	var out *payloom.Payment
	err := e.update(ctx, "page_secret_rotated", func(tx payloom.Tx) error {
		out = nil
		cur, err := tx.GetPayment(ctx, p.Scope(), p.ID)
		if err != nil {
			return err
		}
		out = cur
		if cur.Status != payloom.PaymentStatusRequiresPaymentMethod || len(cur.Attempts) > 0 {
			return nil
		}
		cur.PageSecretHash = payloom.HashPageSecret(secret.Reveal())
		if err := tx.UpdatePayment(ctx, cur); err != nil {
			return err
		}
		cur.PaymentURL = payloom.PaymentPageURL(e.publicURL, cur.ID, secret.Reveal())
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.log.InfoContext(ctx, "hosted-page payment resumed by its creation key; page secret replaced",
		"payment_id", out.ID, "status", out.Status)
	return out, nil
}

// ConfirmPayment implements payloom.CheckoutService.
func (e *Engine) ConfirmPayment(ctx context.Context, scope payloom.Scope, opKey, id string, req *payloom.PaymentConfirm) (*payloom.Payment, error) {
	if opKey == "" {
		return nil, payloom.Errorf(payloom.CodeInternal, "engine: empty operation key")
	}
	const tokenParam = "payment_method[card][token]"
	if req == nil || req.CardToken == "" {
		return nil, payloom.FieldError(tokenParam, "payment_method[card][token] is required")
	}
	if req.ReturnURL != "" {
		if err := payloom.ValidateRedirectURL("return_url", req.ReturnURL, scope.Livemode); err != nil {
			return nil, err
		}
	}
	card, err := e.vault.Card(ctx, scope, req.CardToken)
	if payloom.IsCode(err, payloom.CodeNotFound) {
		return nil, payloom.FieldError(tokenParam, "no such token")
	}
	if err != nil {
		if payloom.ErrorCode(err) == payloom.CodeInternal {
			e.log.ErrorContext(ctx, "vault read failed", "err", err)
		}
		return nil, err
	}
	summary := card.Summary
	summary.Token = card.ID
	method := &payloom.PaymentMethod{Type: payloom.PaymentMethodTypeCard, Card: &summary}
	first, err := e.confirmRoute(ctx, scope, opKey, id, method)
	if err != nil {
		return nil, err
	}

	var p *payloom.Payment
	var confirmed, expired bool
	err = e.update(ctx, PhasePaymentConfirmed, func(tx payloom.Tx) error {
		p, confirmed, expired = nil, false, false
		cur, err := tx.GetPayment(ctx, scope, id)
		if err != nil {
			return err
		}
		now := e.now()
		switch {
		case cur.PendingActionKey == opKey:
			p = cur // this very request confirmed it before: resume
			return nil
		case cur.Status != payloom.PaymentStatusRequiresPaymentMethod:
			return payloom.Errorf(payloom.CodeInvalidState,
				"payment is %s; only a payment in requires_payment_method can be confirmed", cur.Status)
		case cur.ExpiresAt != nil && !now.Before(*cur.ExpiresAt):
			p, expired = cur, true
			return markExpired(ctx, tx, cur, now)
		case payloom.AttemptsExhausted(cur, e.maxPayAttempts):
			// Each card is routed anew (MaxAttempts of its own): this
			// bounds them all, against card testing on the page.
			return payloom.Errorf(payloom.CodeTooManyAttempts,
				"the payment has had %d attempts, as many as a payment may; it cannot be confirmed again: create a new payment", len(cur.Attempts))
		case first == nil:
			// It was being paid when the route was chosen and is back
			// in requires_payment_method since (a decline).
			return payloom.Errorf(payloom.CodeInvalidState, "the payment changed while it was confirmed; try again")
		}
		att := &payloom.Attempt{
			ID:        payloom.NewID(payloom.PrefixAttempt),
			PaymentID: cur.ID,
			Processor: first.Name(),
			Status:    payloom.AttemptStatusPending,
			CreatedAt: now,
		}
		cur.Status = payloom.PaymentStatusProcessing
		cur.PaymentMethod = method
		cur.Processor, cur.Failure, cur.NextAction = nil, nil, nil
		cur.PendingActionKey = opKey
		// This card's routing starts here: the attempts of earlier
		// cards neither use up its attempts nor its processors.
		cur.ConfirmAttemptID = att.ID
		if req.ReturnURL != "" {
			cur.ReturnURL = req.ReturnURL
		}
		cur.UpdatedAt = now
		if err := tx.UpdatePayment(ctx, cur); err != nil {
			return err
		}
		if err := tx.CreateAttempt(ctx, att); err != nil {
			return err
		}
		cur.Attempts = append(cur.Attempts, att)
		p, confirmed = cur, true
		return nil
	})
	if payloom.IsCode(err, payloom.CodeTooManyAttempts) {
		e.log.WarnContext(ctx, "a confirmation was refused: the payment has had as many attempts as a payment may",
			"payment_id", id, "max_payment_attempts", e.maxPayAttempts)
	}
	if err != nil {
		return nil, err
	}
	if expired {
		e.log.InfoContext(ctx, "payment expired", "payment_id", p.ID, "expires_at", p.ExpiresAt)
		return nil, payloom.Errorf(payloom.CodeInvalidState, "the payment expired at %s", p.ExpiresAt.Format(time.RFC3339))
	}
	if confirmed {
		e.log.InfoContext(ctx, "payment confirmed", "payment_id", p.ID,
			"attempt_id", p.Attempts[len(p.Attempts)-1].ID, "amount", p.Amount, "currency", p.Currency)
		e.fault(PhasePaymentConfirmed)
	}
	var out *payloom.Payment
	if confirmed {
		out, err = e.resumePayment(ctx, p, true, nil)
	} else {
		// A retry of this very confirmation finds the attempt
		// committed by its first run: a resend.
		out, err = e.resend(ctx, p)
	}
	return e.present(out), err
}

// confirmRoute chooses the processor of a confirmation's first attempt, as
// CreatePayment does for a payment created with its card: the route for
// the payment as it will be, card included (routing rules may look at its
// brand). It runs before the confirmation's transaction, because a router
// may read the store. It returns nil, and no error, when there is nothing
// to route: the payment is not waiting for a card (the transaction gives
// the reason) or this very request already confirmed it.
func (e *Engine) confirmRoute(ctx context.Context, scope payloom.Scope, opKey, id string, method *payloom.PaymentMethod) (payloom.Processor, error) {
	var cur *payloom.Payment
	err := e.view(ctx, "get_payment", func(tx payloom.Tx) error {
		var err error
		cur, err = tx.GetPayment(ctx, scope, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if cur.PendingActionKey == opKey || cur.Status != payloom.PaymentStatusRequiresPaymentMethod {
		return nil, nil
	}
	draft := *cur
	draft.Status = payloom.PaymentStatusProcessing
	draft.PaymentMethod = method
	draft.Attempts = nil
	return e.firstProcessor(scope, &draft, "", nil)
}

// cancelUnpaid cancels a payment in requires_payment_method inside the
// cancel's claim transaction: no processor holds anything for it. Keeping
// opKey as PendingActionKey makes a retry of the cancel find its work done.
func cancelUnpaid(ctx context.Context, tx payloom.Tx, p *payloom.Payment, opKey string, now time.Time) error {
	p.Status = payloom.PaymentStatusCanceled
	p.PendingActionKey = opKey
	p.UpdatedAt = now
	if err := tx.UpdatePayment(ctx, p); err != nil {
		return err
	}
	return addEvent(ctx, tx, p.Scope(), payloom.EventPaymentCanceled, p.ID, p, now)
}

// CompleteAuthentication implements payloom.CheckoutService.
func (e *Engine) CompleteAuthentication(ctx context.Context, id string, details map[string]string) (*payloom.Payment, error) {
	p, err := e.findPayment(ctx, id)
	if err != nil {
		return nil, err
	}
	att := authenticatingAttempt(p)
	if att == nil {
		return e.present(p), nil
	}
	scope := p.Scope()
	proc, err := e.processorNamed(scope, att.Processor)
	if err != nil {
		return nil, err
	}
	ctx = detached(ctx)
	res, elapsed, err := e.authenticationOutcome(ctx, proc, p, att, details)
	if payloom.IsCode(err, payloom.CodeValidation) {
		// Details the processor refuses (forged, stale, for another
		// payment) decide nothing: the authentication stays open.
		e.log.WarnContext(ctx, "the processor refused the details of an authentication", "payment_id", p.ID,
			"attempt_id", att.ID, "processor", proc.Name(), "err", err)
		return e.present(p), nil
	}
	if err != nil || res == nil {
		e.log.WarnContext(ctx, "the processor did not tell the outcome of an authentication", "payment_id", p.ID,
			"attempt_id", att.ID, "processor", proc.Name(), "err", err)
		return nil, &payloom.Error{Code: payloom.CodeUnavailable,
			Message: "the processor did not answer; try again in a moment", Err: err}
	}
	if res.Status == payloom.AuthorizationRequiresAction {
		return e.present(p), nil // the shopper has not answered yet
	}
	res = e.absoluteRedirect(res)
	capture := p.CaptureMethod == payloom.CaptureMethodAutomatic
	out, fellBack, err := e.recordAuthorization(ctx, PhaseAuthenticationRecorded, scope, p.ID, att.ID, proc.Name(), capture, res, elapsed, e.fallbackRoute(p, res))
	if err != nil {
		return nil, err
	}
	e.fault(PhaseAuthenticationRecorded)
	// A soft decline after the authentication: the attempt at the next
	// processor was committed with it. Bounded by MaxAttempts.
	if out, err = e.sendFallback(ctx, out, att.ID, fellBack); err != nil {
		return nil, err
	}
	return e.present(out), nil
}

// authenticationOutcome asks att's processor what the shopper's
// authentication decided: CompleteAuthentication with what the browser
// brought back, or, for a connector that learns it on its own side
// (CodeNotSupported), Lookup by the attempt's key. A result in
// requires_action means there is no outcome yet (Lookup finding nothing
// included).
func (e *Engine) authenticationOutcome(ctx context.Context, proc payloom.Processor, p *payloom.Payment, att *payloom.Attempt, details map[string]string) (*payloom.AuthorizeResult, time.Duration, error) {
	pctx, cancel := context.WithTimeout(ctx, e.processorTimeout)
	defer cancel()
	start := time.Now()
	res, err := proc.CompleteAuthentication(pctx, &payloom.AuthenticationRequest{
		IdempotencyKey: att.ID, Reference: p.ID, TransactionID: att.TransactionID, Details: details,
	})
	if payloom.IsCode(err, payloom.CodeNotSupported) {
		var lr *payloom.LookupResult
		lr, err = proc.Lookup(pctx, &payloom.LookupRequest{
			IdempotencyKey: att.ID, Reference: p.ID, TransactionID: att.TransactionID,
		})
		res = nil
		if err == nil && lr != nil && lr.Found && lr.Result != nil {
			res = lr.Result
		} else if err == nil {
			res = &payloom.AuthorizeResult{Status: payloom.AuthorizationRequiresAction}
		}
	}
	return res, time.Since(start), err
}

// authenticatingAttempt returns the attempt a payment in requires_action
// waits on.
func authenticatingAttempt(p *payloom.Payment) *payloom.Attempt {
	if p.Status != payloom.PaymentStatusRequiresAction {
		return nil
	}
	for i := len(p.Attempts) - 1; i >= 0; i-- {
		if p.Attempts[i].Status == payloom.AttemptStatusRequiresAction {
			return p.Attempts[i]
		}
	}
	return nil
}

// findPayment reads a payment by ID in any scope.
func (e *Engine) findPayment(ctx context.Context, id string) (*payloom.Payment, error) {
	if !payloom.HasPrefix(id, payloom.PrefixPayment) {
		return nil, payloom.Errorf(payloom.CodeNotFound, "no such payment")
	}
	var p *payloom.Payment
	err := e.view(ctx, "find_payment", func(tx payloom.Tx) error {
		var err error
		p, err = tx.FindPayment(ctx, id)
		return err
	})
	return p, err
}

// errNoSuchPage is the one answer to a wrong payment ID, a wrong secret and
// a secret of another payment.
func errNoSuchPage() error { return payloom.Errorf(payloom.CodeNotFound, "no such payment page") }

// PagePayment implements payloom.CheckoutService.
func (e *Engine) PagePayment(ctx context.Context, id, secret string) (*payloom.Payment, error) {
	p, err := e.findPayment(ctx, id)
	if payloom.IsCode(err, payloom.CodeNotFound) {
		return nil, errNoSuchPage()
	}
	if err != nil {
		return nil, err
	}
	if !payloom.PageSecretMatches(p.PageSecretHash, secret) {
		return nil, errNoSuchPage()
	}
	return e.present(p), nil
}

// ReceiptPayment implements payloom.CheckoutService.
func (e *Engine) ReceiptPayment(ctx context.Context, id, secret string) (*payloom.Receipt, error) {
	p, err := e.findPayment(ctx, id)
	if payloom.IsCode(err, payloom.CodeNotFound) {
		return nil, errNoSuchPage()
	}
	if err != nil {
		return nil, err
	}
	if !payloom.SecretMatches(p.ReceiptSecret, secret) || p.Status != payloom.PaymentStatusCaptured {
		return nil, errNoSuchPage()
	}
	rc := &payloom.Receipt{Payment: e.present(p), CapturedAt: p.UpdatedAt}
	scope := p.Scope()
	err = e.view(ctx, "receipt", func(tx payloom.Tx) error {
		var err error
		if rc.Merchant, err = tx.GetMerchant(ctx, scope.MerchantID); err != nil {
			return err
		}
		typ := payloom.EventPaymentCaptured
		evs, _, err := tx.ListEvents(ctx, scope, payloom.EventFilter{
			ListParams: payloom.ListParams{Limit: 1}, Type: &typ, ObjectID: &p.ID,
		})
		if err != nil {
			return err
		}
		if len(evs) > 0 {
			rc.CapturedAt = evs[0].CreatedAt
		}
		// Refunds, newest first page by page, then oldest first.
		f := payloom.RefundFilter{ListParams: payloom.ListParams{Limit: maxListLimit}, PaymentID: &p.ID}
		for {
			page, more, err := tx.ListRefunds(ctx, scope, f)
			if err != nil {
				return err
			}
			rc.Refunds = append(rc.Refunds, page...)
			if !more || len(page) == 0 {
				break
			}
			f.StartingAfter = page[len(page)-1].ID
		}
		for i, j := 0, len(rc.Refunds)-1; i < j; i, j = i+1, j-1 {
			rc.Refunds[i], rc.Refunds[j] = rc.Refunds[j], rc.Refunds[i]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rc, nil
}
