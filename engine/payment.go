package engine

import (
	"context"
	"errors"
	"time"

	"github.com/payloom/payloom"
)

// CreatePayment implements payloom.PaymentService.
//
// Phases: payment_created (payment in processing + pending attempt +
// payment.created), the processor call keyed by the attempt ID, then
// payment_recorded (outcome + events). A call with an opKey that already
// created a payment resumes it instead: a payment in processing with a
// pending attempt goes to the processor again with the same attempt ID (a
// resend: see resumePayment), any other payment is returned as it is. When
// the processor gives no answer the payment is returned in processing, not
// as an error; the recovery loop retries the same attempt.
//
// A request without a payment method creates a payment in
// requires_payment_method, to be paid on the hosted page (see checkout.go).
func (e *Engine) CreatePayment(ctx context.Context, scope payloom.Scope, opKey string, req *payloom.PaymentCreate) (*payloom.Payment, error) {
	p, err := e.createPayment(ctx, scope, opKey, req, nil, false)
	return e.present(p), err
}

// errNotClaimed answers a CreatePaymentClaimed that cannot take the key
// itself; the caller takes the usual path.
var errNotClaimed = payloom.Errorf(payloom.CodeInternal, "engine: the request cannot claim its Idempotency-Key itself")

// CreatePaymentClaimed implements payloom.ClaimingPaymentService: the
// payment_created phase also inserts the key's record (its ID is the
// operation key; no payment can have it yet, so the creation-key lookup is
// skipped), and the recording phase that ends the request also stores its
// response. Anything that fails before the key is claimed returns with
// claim.Record nil and nothing written (but a store error at the claiming
// commit, which may have happened, reports the record for the caller to
// release): the caller goes through Begin,
// which sees an existing record (replay, conflict, in progress, take-over)
// and runs CreatePayment as before. A payment paid later on the hosted
// page (no payment method) is not created here.
func (e *Engine) CreatePaymentClaimed(ctx context.Context, claim *payloom.Claim, req *payloom.PaymentCreate) (*payloom.Payment, error) {
	if claim == nil || claim.Record != nil || claim.Key == "" || len(claim.Key) > maxIdempotencyKeyLen ||
		req == nil || (req.CardToken == "" && req.PaymentMethodID == "") {
		return nil, errNotClaimed
	}
	p, err := e.createPayment(ctx, claim.Scope, payloom.NewID(payloom.PrefixIdempotency), req, claim, false)
	return e.present(p), err
}

// createPayment creates the payment of operation opKey, or resumes it. With
// a claim, opKey is the ID of the claim's record, still to be inserted.
func (e *Engine) createPayment(ctx context.Context, scope payloom.Scope, opKey string, req *payloom.PaymentCreate, claim *payloom.Claim, raced bool) (*payloom.Payment, error) {
	if opKey == "" {
		return nil, payloom.Errorf(payloom.CodeInternal, "engine: empty operation key")
	}
	// resolveCustomer fills in a saved method's token: work on a copy so
	// that the caller's request is left as it was.
	r := *req
	req = &r
	claimKey := ""
	if claim != nil {
		claimKey = claim.Key
	}
	card, route, err := e.validatePayment(ctx, scope, req, claimKey)
	if claim != nil && (err != nil || card == nil) {
		// Nothing claimed: the usual path decides (an existing record
		// may hold the answer to this very request).
		if err == nil {
			err = errNotClaimed
		}
		return nil, err
	}
	if err != nil {
		return e.resumeExisting(ctx, scope, opKey, err)
	}
	if card == nil {
		p, err := e.createUnpaid(ctx, scope, opKey, req, raced)
		if payloom.ErrorCode(err) == payloom.CodeValidation {
			return e.resumeExisting(ctx, scope, opKey, err)
		}
		return p, err
	}
	// The route is chosen before the transaction, on a draft of the
	// payment, so that a router may look at everything the payment says.
	draft := newPayment(scope, opKey, req, card, "", e.now())
	first, err := e.firstProcessor(scope, draft, req.Processor, route)
	if err != nil {
		if claim != nil {
			return nil, err
		}
		return e.resumeExisting(ctx, scope, opKey, err)
	}
	draft.Attempts[0].Processor = first.Name()

	// The event's snapshot is encoded here, not in the transaction: on
	// SQLite that runs on the single writer goroutine.
	createdEvent, err := payloom.NewEvent(scope, payloom.EventPaymentCreated, draft.ID, draft, draft.CreatedAt)
	if err != nil {
		return nil, err
	}
	var record *payloom.IdempotencyKey
	if claim != nil {
		record = e.newIdempotencyRecord(scope, opKey, claim.Key, claim.Method, claim.Path, claim.Fingerprint, draft.CreatedAt)
	}
	var p *payloom.Payment
	var created, taken bool
	err = e.update(ctx, "payment_created", func(tx payloom.Tx) error {
		p, created, taken = nil, false, false
		if record != nil {
			// The key first: if it has a record (a retry since the
			// check above), nothing is written, and the function does
			// not fail: a failed one costs a group commit a rerun.
			err := tx.CreateIdempotencyKey(ctx, record)
			if payloom.IsCode(err, payloom.CodeAlreadyExists) {
				taken = true
				return nil
			}
			if err != nil {
				return err
			}
		} else {
			if cur, err := createdBy(ctx, tx, scope, opKey); err != nil || cur != nil {
				p = cur // a concurrent request with the same key won
				return err
			}
		}
		p = draft
		if err := tx.CreatePayment(ctx, p); err != nil {
			return err
		}
		if err := tx.CreateAttempt(ctx, p.Attempts[0]); err != nil {
			return err
		}
		created = true
		return tx.CreateEvent(ctx, createdEvent)
	})
	if claim != nil {
		switch code := payloom.ErrorCode(err); {
		case err == nil && taken:
			return nil, errNotClaimed
		case code == payloom.CodeInternal || code == payloom.CodeUnavailable:
			// The commit may have happened (an ambiguous commit
			// error): the API answers 5xx and releases the record if
			// it exists, so that a retry resumes at once instead of
			// finding a lease nobody holds.
			claim.Record = record
			return nil, err
		case err != nil:
			return nil, err
		}
		claim.Record = record
		ctx = context.WithValue(ctx, claimCtxKey{}, claim)
	}
	if payloom.IsCode(err, payloom.CodeAlreadyExists) && !raced {
		// Another node created it between our read and our insert
		// (PostgreSQL); resume what it committed.
		return e.createPayment(ctx, scope, opKey, req, nil, true)
	}
	if err != nil {
		return nil, err
	}
	if !created && p.HasPage() {
		return e.resumeUnpaid(ctx, p)
	}
	if created {
		e.log.DebugContext(ctx, "payment created", "payment_id", p.ID, "attempt_id", p.Attempts[0].ID,
			"merchant_id", scope.MerchantID, "livemode", scope.Livemode,
			"amount", p.Amount, "currency", p.Currency, "capture_method", p.CaptureMethod)
		e.fault(PhasePaymentCreated)
	}
	if created {
		return e.resumePayment(ctx, p, true, card)
	}
	// Committed by an earlier run of this request: a resend.
	return e.resend(ctx, p)
}

// resumeExisting answers a request that failed a check before its
// payment_created phase: if an earlier run of the same operation already
// created the payment (a retry), that payment is resumed, because what was
// committed decides and not the (identical) request, which may no longer
// pass checks such as merchant limits changed since. Otherwise the check's
// error stands. A first run never has a payment, so the lookup is paid for
// only on this error path; the payment_created transaction looks the key up
// again in any case.
func (e *Engine) resumeExisting(ctx context.Context, scope payloom.Scope, opKey string, checkErr error) (*payloom.Payment, error) {
	var existing *payloom.Payment
	err := e.view(ctx, "get_payment_by_creation_key", func(tx payloom.Tx) error {
		var err error
		existing, err = createdBy(ctx, tx, scope, opKey)
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case existing == nil:
		return nil, checkErr
	case existing.HasPage():
		return e.resumeUnpaid(ctx, existing)
	}
	return e.resend(ctx, existing)
}

// createdBy returns the payment operation opKey created in the scope, or
// nil if it created none.
func createdBy(ctx context.Context, tx payloom.Tx, scope payloom.Scope, opKey string) (*payloom.Payment, error) {
	p, err := tx.GetPaymentByCreationKey(ctx, scope, opKey)
	if payloom.IsCode(err, payloom.CodeNotFound) {
		return nil, nil
	}
	return p, err
}

// validatePayment checks what the engine, and not the API, knows: the
// merchant's amount limits and that the token exists in the scope. It also
// guards the fields the API validates, because the engine is the last line.
// It returns the token's card and, from a PreparedRouter, the route as of
// the same read (nil: route with Route).
//
// With a claimKey (the claimed path), the merchant's read also looks for
// the key's record: a key that has one (a retry) ends the claim at once
// with errNotClaimed, before any other check and before routing, which
// may take a circuit breaker's one probe for a payment it then never
// sends.
func (e *Engine) validatePayment(ctx context.Context, scope payloom.Scope, req *payloom.PaymentCreate, claimKey string) (*payloom.Card, routeFunc, error) {
	if req == nil {
		return nil, nil, payloom.Errorf(payloom.CodeValidation, "empty payment request")
	}
	if _, ok := req.Currency.Exponent(); !ok {
		return nil, nil, payloom.FieldError("currency", "%q is not a supported ISO 4217 currency", string(req.Currency))
	}
	switch req.CaptureMethod {
	case "", payloom.CaptureMethodAutomatic, payloom.CaptureMethodManual:
	default:
		return nil, nil, payloom.FieldError("capture_method", "capture_method must be automatic or manual")
	}
	if req.PaymentMethodType != "" && req.PaymentMethodType != payloom.PaymentMethodTypeCard {
		return nil, nil, payloom.FieldError("payment_method[type]", "payment_method[type] must be card")
	}
	var m *payloom.Merchant
	taken := false
	// The card the request names and the route are read with the
	// merchant: one read transaction instead of three. A saved method's
	// card is known only after resolveCustomer, and read then.
	token := req.CardToken
	var card *payloom.Card
	var cardErr error
	var route routeFunc
	err := e.view(ctx, "get_merchant", func(tx payloom.Tx) error {
		var err error
		taken, card, cardErr, route = false, nil, nil, nil
		if m, err = tx.GetMerchant(ctx, scope.MerchantID); err != nil {
			return err
		}
		if claimKey != "" {
			_, err = tx.GetIdempotencyKey(ctx, scope, claimKey)
			if taken = err == nil; taken || !payloom.IsCode(err, payloom.CodeNotFound) {
				return err
			}
		}
		if token == "" {
			return nil
		}
		if card, cardErr = e.vault.CardIn(ctx, tx, scope, token); cardErr != nil {
			return nil // answered below, after the request's other checks
		}
		if pr, ok := e.router.(PreparedRouter); ok {
			if route, err = pr.RouterIn(ctx, tx, scope); err != nil {
				route = nil // routed later, in a read of its own
			}
		}
		return nil
	})
	if taken {
		return nil, nil, errNotClaimed
	}
	if payloom.IsCode(err, payloom.CodeNotFound) {
		return nil, nil, payloom.FieldError("merchant_id", "no such merchant")
	}
	if err != nil {
		return nil, nil, err
	}
	if req.Amount < m.MinAmount {
		return nil, nil, payloom.FieldError("amount", "amount must be at least %d (%s %s)", m.MinAmount, payloom.FormatAmount(m.MinAmount, req.Currency), req.Currency)
	}
	if req.Amount > m.MaxAmount {
		return nil, nil, payloom.FieldError("amount", "amount must be at most %d (%s %s)", m.MaxAmount, payloom.FormatAmount(m.MaxAmount, req.Currency), req.Currency)
	}
	if err := e.resolveCustomer(ctx, scope, req); err != nil {
		return nil, nil, err
	}
	if _, err := payloom.ValidatePage(req, scope.Livemode, e.now()); err != nil {
		return nil, nil, err
	}
	if req.CardToken == "" && req.PaymentMethodType == "" {
		return nil, nil, nil // no payment method: paid later, on the hosted page
	}
	const tokenParam = "payment_method[card][token]"
	if req.CardToken == "" {
		return nil, nil, payloom.FieldError(tokenParam, "payment_method[card][token] is required")
	}
	if token == "" || req.CardToken != token {
		route = nil
		card, cardErr = e.vault.Card(ctx, scope, req.CardToken)
	}
	if payloom.IsCode(cardErr, payloom.CodeNotFound) {
		return nil, nil, payloom.FieldError(tokenParam, "no such token")
	}
	if cardErr != nil {
		if payloom.ErrorCode(cardErr) == payloom.CodeInternal {
			e.log.ErrorContext(ctx, "vault read failed", "err", cardErr)
		}
		return nil, nil, cardErr
	}
	return card, route, nil
}

// Params of the payment request that name a customer or a saved method.
const (
	paramCustomerID    = "customer_id"
	paramPaymentMethod = "payment_method[card][payment_method]"
)

// resolveCustomer checks the request's customer and saved payment method
// and, for a saved method, fills in its token and customer. It works on a
// copy the caller owns: req is the engine's own from here on.
//
// A customer_id with the "cus_" prefix must name a customer of the scope
// (404 otherwise); any other value stays the merchant's free-text
// reference, as before customers existed. Saving a card needs a real
// customer. A saved method must belong to the customer named, if any.
func (e *Engine) resolveCustomer(ctx context.Context, scope payloom.Scope, req *payloom.PaymentCreate) error {
	isCustomer := payloom.HasPrefix(req.CustomerID, payloom.PrefixCustomer)
	if req.PaymentMethodID != "" && req.CardToken != "" {
		return payloom.FieldError(paramPaymentMethod, "give either payment_method[card][token] or payment_method[card][payment_method], not both")
	}
	if req.SavePaymentMethod && !isCustomer {
		return payloom.FieldError(paramCustomerID, "save_payment_method needs customer_id, the ID of a customer (cus_...)")
	}
	if !isCustomer && req.PaymentMethodID == "" {
		return nil
	}
	return e.view(ctx, "resolve_customer", func(tx payloom.Tx) error {
		if isCustomer {
			if _, err := tx.GetCustomer(ctx, scope, req.CustomerID); err != nil {
				if payloom.IsCode(err, payloom.CodeNotFound) {
					return &payloom.Error{Code: payloom.CodeNotFound, Param: paramCustomerID, Message: "no such customer"}
				}
				return err
			}
		}
		if req.PaymentMethodID == "" {
			return nil
		}
		m, err := tx.GetPaymentMethod(ctx, scope, req.PaymentMethodID)
		if payloom.IsCode(err, payloom.CodeNotFound) {
			return &payloom.Error{Code: payloom.CodeNotFound, Param: paramPaymentMethod, Message: "no such payment method"}
		}
		if err != nil {
			return err
		}
		if req.CustomerID != "" && req.CustomerID != m.CustomerID {
			return payloom.FieldError(paramPaymentMethod, "the payment method belongs to another customer")
		}
		req.CustomerID = m.CustomerID
		req.CardToken = m.CardToken
		// Already saved: nothing to save again.
		req.SavePaymentMethod = false
		return nil
	})
}

func newPayment(scope payloom.Scope, opKey string, req *payloom.PaymentCreate, card *payloom.Card, processor string, now time.Time) *payloom.Payment {
	capture := req.CaptureMethod
	if capture == "" {
		capture = payloom.CaptureMethodAutomatic
	}
	summary := card.Summary
	summary.Token = card.ID
	metadata := make(map[string]string, len(req.Metadata))
	for k, v := range req.Metadata {
		metadata[k] = v
	}
	p := &payloom.Payment{
		ID:                  payloom.NewID(payloom.PrefixPayment),
		Object:              "payment",
		MerchantID:          scope.MerchantID,
		Livemode:            scope.Livemode,
		Amount:              req.Amount,
		Currency:            req.Currency,
		Status:              payloom.PaymentStatusProcessing,
		CaptureMethod:       capture,
		CustomerID:          req.CustomerID,
		Reference:           req.Reference,
		Description:         req.Description,
		StatementDescriptor: req.StatementDescriptor,
		PaymentMethod:       &payloom.PaymentMethod{ID: req.PaymentMethodID, Type: payloom.PaymentMethodTypeCard, Card: &summary},
		SavePaymentMethod:   req.SavePaymentMethod,
		Metadata:            metadata,
		CreatedAt:           now,
		UpdatedAt:           now,
		CreationKey:         opKey,
		PaymentPage:         newPage(&req.PageOptions, nil, nil),
	}
	p.Attempts = []*payloom.Attempt{{
		ID:        payloom.NewID(payloom.PrefixAttempt),
		PaymentID: p.ID,
		Processor: processor,
		Status:    payloom.AttemptStatusPending,
		CreatedAt: now,
	}}
	return p
}

// pendingAttempt returns the payment's attempt whose outcome is unknown, if
// the payment is still waiting for it.
func pendingAttempt(p *payloom.Payment) *payloom.Attempt {
	if p.Status != payloom.PaymentStatusProcessing {
		return nil
	}
	for i := len(p.Attempts) - 1; i >= 0; i-- {
		if p.Attempts[i].Status == payloom.AttemptStatusPending {
			return p.Attempts[i]
		}
	}
	return nil
}

// resumePayment takes a committed payment to its next phase: a pending
// attempt is sent (again) to the processor under its own ID and the answer
// recorded; anything else is returned as it is.
//
// firstSend says whether this is the attempt's first send: the call made by
// the request that committed the attempt (creating the payment, confirming
// it, or recording the answer that fell back to it). Only then does a
// failure before processing (AuthorizationFailed: connection refused, a
// "not processed" 5xx, a 429) prove that the processor holds nothing under
// the attempt's key, and allow a fallback to the next processor. Any other
// send is a resend of an attempt whose first send may have been processed
// with its answer lost: a resend turned away before processing says nothing
// about that first send, so it counts as no answer and the attempt stays
// pending, for the reconciler's lookup and grace to settle. A decline on a
// resend is the processor's answer for the key and is recorded as usual.
//
// Resends found committed by an earlier request go through resend, which
// keeps to the resend window.
//
// card, if not nil, is the payment's card as the request read it moments
// ago (validatePayment): the vault reveals that copy instead of reading the
// card again.
func (e *Engine) resumePayment(ctx context.Context, p *payloom.Payment, firstSend bool, card *payloom.Card) (*payloom.Payment, error) {
	att := pendingAttempt(p)
	if att == nil {
		return p, nil
	}
	scope := p.Scope()
	proc, err := e.processorNamed(scope, att.Processor)
	if err != nil {
		return nil, err
	}
	if firstSend && !e.inResendWindow(proc, att) {
		// Every send of an attempt must start inside the resend window,
		// the first too (a request stalled between its commit and its
		// send): "not found" becomes final on the assumption that no send
		// began later (see lookupGraceFor).
		e.log.WarnContext(ctx, "the attempt is past its resend window before its first send; it is not sent and the reconciler settles it by lookup",
			"payment_id", p.ID, "attempt_id", att.ID, "processor", proc.Name(),
			"attempt_age_ms", e.now().Sub(att.CreatedAt).Milliseconds())
		return p, nil
	}
	token := ""
	if p.PaymentMethod != nil && p.PaymentMethod.Card != nil {
		token = p.PaymentMethod.Card.Token
	}

	// From here on the request's cancellation no longer applies: a charge
	// that may have been made is recorded even if the client went away.
	ctx = detached(ctx)
	var data *payloom.CardData
	if card != nil && card.ID == token {
		data, err = e.vault.RevealCard(ctx, scope, card)
	} else {
		data, err = e.vault.Reveal(ctx, scope, token)
	}
	if err != nil {
		e.log.ErrorContext(ctx, "vault reveal failed", "payment_id", p.ID, "attempt_id", att.ID, "err", err)
		return nil, err
	}
	req := &payloom.AuthorizeRequest{
		IdempotencyKey:      att.ID,
		Reference:           p.ID,
		Amount:              p.Amount,
		Currency:            p.Currency,
		Capture:             p.CaptureMethod == payloom.CaptureMethodAutomatic,
		Card:                data,
		StatementDescriptor: p.StatementDescriptor,
		Description:         p.Description,
		Livemode:            p.Livemode,
		ReturnURL:           payloom.PaymentCompleteURL(e.publicURL, p.ID),
	}
	pctx, cancel := context.WithTimeout(ctx, e.processorTimeout)
	start := time.Now()
	res, callErr := proc.Authorize(pctx, req)
	elapsed := time.Since(start)
	cancel()
	e.recordCall(scope, proc.Name(), res, callErr, elapsed)
	req.Card, card = nil, nil
	// The CVC may serve one authorization only, whatever its outcome.
	e.vault.ForgetCVC(scope, token)
	e.fault(PhaseProcessorCalled)

	if callErr != nil || res == nil {
		e.log.WarnContext(ctx, "processor gave no answer; the attempt stays pending for retry",
			"payment_id", p.ID, "attempt_id", att.ID, "processor", proc.Name(),
			"duration_ms", elapsed.Milliseconds(), "err", callErr)
		return e.Payment(ctx, scope, p.ID)
	}
	// A failure that names a transaction is the processor's own record
	// of the key (Adyen's resultCode Error, say): an answer like any other.
	if !firstSend && res.Status == payloom.AuthorizationFailed && res.TransactionID == "" {
		e.log.WarnContext(ctx, "a resend was turned away before processing; the first send's outcome is still unknown "+
			"and the attempt stays pending", "payment_id", p.ID, "attempt_id", att.ID, "processor", proc.Name(),
			"raw_code", res.RawCode, "duration_ms", elapsed.Milliseconds())
		return e.Payment(ctx, scope, p.ID)
	}
	res = e.absoluteRedirect(res)
	// p is what this request committed or read: the recording starts
	// from it (and checks it is still what is stored).
	out, fellBack, err := e.recordAuthorizationOn(ctx, PhasePaymentRecorded, scope, p, p.ID, att.ID, proc.Name(), req.Capture, res, elapsed, e.fallbackRoute(p, res))
	if err != nil {
		return nil, err
	}
	e.fault(PhasePaymentRecorded)
	return e.sendFallback(ctx, out, att.ID, fellBack)
}

// resend resumes a payment whose pending attempt an earlier request
// committed (a client's retry, a retried confirm, the reconciler after a
// "not found"): the attempt goes out again only while it is in its resend
// window, so that at a processor with Lookup every send is older than the
// lookup lag when "not found" becomes final (see lookupGraceFor). Past the
// window the payment is returned as it is, for the reconciler's lookups.
func (e *Engine) resend(ctx context.Context, p *payloom.Payment) (*payloom.Payment, error) {
	att := pendingAttempt(p)
	if att == nil {
		return p, nil
	}
	proc, err := e.processorNamed(p.Scope(), att.Processor)
	if err != nil {
		return nil, err
	}
	if !e.inResendWindow(proc, att) {
		e.log.InfoContext(ctx, "the attempt is past its resend window and is not sent again; the reconciler settles it by lookup",
			"payment_id", p.ID, "attempt_id", att.ID, "processor", proc.Name(),
			"attempt_age_ms", e.now().Sub(att.CreatedAt).Milliseconds())
		return p, nil
	}
	return e.resumePayment(ctx, p, false, nil)
}

// sendFallback sends the attempt an answer to attempt prevID moved the
// payment to, if any (bounded by MaxAttempts): as its first send when this
// request committed it (fellBack), else as a resend, because a concurrent
// request that recorded the same answer first committed it and is sending
// it.
func (e *Engine) sendFallback(ctx context.Context, out *payloom.Payment, prevID string, fellBack bool) (*payloom.Payment, error) {
	if next := pendingAttempt(out); next != nil && next.ID != prevID {
		if fellBack {
			return e.resumePayment(ctx, out, true, nil)
		}
		// The request that committed it is making its first send now:
		// only a resend, inside the window, if at all.
		return e.resend(ctx, out)
	}
	return out, nil
}

// recordAuthorization writes a processor's answer to an attempt on the
// attempt and the payment, with its events, in phase payment_recorded (the
// answer to Authorize, or Lookup's for it: the attempt is pending) or
// authentication_recorded (the outcome of the shopper's authentication:
// the attempt is in requires_action). Unless the payment still waits on
// that attempt in that phase, another request recorded it first, and the
// committed payment is returned unchanged.
//
// When the answer allows a fallback (see mayFallBack) and route has a
// processor the payment's routing has not tried, the same transaction
// records the attempt's outcome only and creates the next attempt, pending,
// at that processor: the payment is (or goes back to) processing and no
// payment.failed is sent. The caller sends that attempt (resumePayment); the
// bool reports whether this call committed it, which makes the caller's
// send the attempt's first.
func (e *Engine) recordAuthorization(ctx context.Context, phase string, scope payloom.Scope, paymentID, attemptID, procName string, capture bool, res *payloom.AuthorizeResult, elapsed time.Duration, route []payloom.Processor) (*payloom.Payment, bool, error) {
	return e.recordAuthorizationOn(ctx, phase, scope, nil, paymentID, attemptID, procName, capture, res, elapsed, route)
}

// errStaleKnown ends a recording transaction that started from a payment
// its caller knew and that turned out stale; the phase then runs again from
// the stored payment.
var errStaleKnown = errors.New("engine: the known payment is stale")

// recordAuthorizationOn is recordAuthorization starting from known, the
// payment as its caller last saw it committed (nil: read it in the
// transaction). Starting from it spares the single write path a read and
// its decoding. It is safe because a recording always writes the payment
// under its Version: if anything was committed since known was read, that
// write fails, the transaction's writes are rolled back and the phase runs
// again from the stored payment. known is consumed: it may be changed.
func (e *Engine) recordAuthorizationOn(ctx context.Context, phase string, scope payloom.Scope, known *payloom.Payment, paymentID, attemptID, procName string, capture bool, res *payloom.AuthorizeResult, elapsed time.Duration, route []payloom.Processor) (*payloom.Payment, bool, error) {
	waiting := pendingAttempt
	if phase == PhaseAuthenticationRecorded {
		waiting = authenticatingAttempt
	}
	var fellBack *payloom.Attempt
	var p *payloom.Payment
	var recorded bool
	// A request that claimed its Idempotency-Key (CreatePaymentClaimed)
	// stores its response here when this recording ends it.
	var claim *payloom.Claim
	var completed *payloom.IdempotencyKey
	record := func(tx payloom.Tx, fromKnown bool) error {
		recorded, claim, completed = false, nil, nil
		if !fromKnown {
			var err error
			if p, err = tx.GetPayment(ctx, scope, paymentID); err != nil {
				return err
			}
		}
		att := waiting(p)
		if att == nil || att.ID != attemptID {
			if fromKnown {
				return errStaleKnown // look at what is stored
			}
			return nil // already recorded by a concurrent retry
		}
		now := e.now()
		// An authentication's attempt already holds the time of the
		// authorization that asked for it.
		att.DurationMS += elapsed.Milliseconds()
		fellBack = nil
		if next := e.nextProcessor(p, res, route); next != nil {
			// Only the attempt takes the answer: apply it to a copy of
			// the payment and keep the payment processing.
			shadow := *p
			applyAuthorization(&shadow, att, procName, capture, res, now)
			fellBack = &payloom.Attempt{
				ID:        payloom.NewID(payloom.PrefixAttempt),
				PaymentID: p.ID,
				Processor: next.Name(),
				Status:    payloom.AttemptStatusPending,
				CreatedAt: now,
			}
			// From requires_action (an authentication that ended in a
			// soft decline), the payment is back with a processor.
			p.Status = payloom.PaymentStatusProcessing
			p.Processor, p.NextAction = nil, nil
			p.UpdatedAt = now
			// The payment first, as every writer does: its version
			// check (and, on PostgreSQL, its row lock) comes before
			// any other write.
			p.Attempts = append(p.Attempts, fellBack)
			if err := tx.UpdatePayment(ctx, p); err != nil {
				return err
			}
			if err := tx.UpdateAttempt(ctx, att); err != nil {
				return err
			}
			if err := tx.CreateAttempt(ctx, fellBack); err != nil {
				return err
			}
			recorded = true
			return nil
		}
		if err := e.writeOutcome(ctx, tx, scope, p, att, procName, capture, res, now); err != nil {
			return err
		}
		if c := claimFor(ctx, p); c != nil && pendingAttempt(p) == nil {
			// The payment waits for nothing more: it is what the
			// request answers.
			var err error
			if completed, err = e.completeClaimIn(ctx, tx, c, e.present(p)); err != nil {
				return err
			}
			claim = c
		}
		recorded = true
		return nil
	}
	// The usual recording of a known payment is computed before the
	// transaction, which then only writes it: the single SQLite writer
	// does not encode JSON.
	var pre *preparedRecording
	if known != nil {
		var spent bool
		pre, spent = e.prepareRecording(ctx, scope, known, waiting, attemptID, procName, capture, res, elapsed, route)
		if spent {
			known = nil // changed, but not prepared: start from the stored row
		}
	}
	fn := func(tx payloom.Tx) error {
		fromKnown := known != nil
		if fromKnown {
			// Only the first run may start from it: a store that runs
			// fn again (busy, serialization failure) reads the payment.
			p, known = known, nil
		}
		var err error
		if prepared := pre; prepared != nil && fromKnown {
			pre = nil
			recorded, claim, completed = false, nil, nil
			if err = prepared.write(ctx, tx); err == nil {
				p, recorded, fellBack = prepared.p, true, nil
				claim, completed = prepared.claim, prepared.completed
			}
		} else {
			err = record(tx, fromKnown)
		}
		if fromKnown && (errors.Is(err, errStaleKnown) || payloom.IsCode(err, payloom.CodeConflict)) {
			return errStaleKnown
		}
		return err
	}
	err := e.update(ctx, phase, fn)
	if errors.Is(err, errStaleKnown) {
		err = e.update(ctx, phase, fn)
	}
	if err != nil {
		return nil, false, err
	}
	if claim != nil && completed != nil {
		claim.Record, claim.Completed = completed, true
		claim.Code, claim.Body = completed.ResponseCode, completed.ResponseBody
	}
	if recorded && fellBack != nil {
		e.log.InfoContext(ctx, "attempt failed; falling back to the next processor", "payment_id", p.ID,
			"attempt_id", attemptID, "processor", procName, "raw_code", res.RawCode,
			"decline_class", res.DeclineClass, "next_attempt_id", fellBack.ID, "next_processor", fellBack.Processor)
		return p, true, nil
	}
	if recorded {
		args := []any{"payment_id", p.ID, "attempt_id", attemptID, "status", p.Status,
			"amount", p.Amount, "currency", p.Currency, "processor", procName,
			"duration_ms", elapsed.Milliseconds()}
		if p.Failure != nil {
			args = append(args, "failure_code", p.Failure.Code, "decline_code", p.Failure.DeclineCode)
		}
		e.log.InfoContext(ctx, "payment recorded", args...)
	}
	return p, false, nil
}

// preparedRecording is the recording of a processor's answer on a payment
// known to the request (recordAuthorizationOn), computed before its
// transaction.
type preparedRecording struct {
	p      *payloom.Payment
	att    *payloom.Attempt
	events []*payloom.Event
	// claim and done: the claimed request's response (claimDone), if
	// this recording ends it; completed is done once stored.
	claim           *payloom.Claim
	done, completed *payloom.IdempotencyKey
}

// prepareRecording computes the recording of res on known, the payment as
// the request committed it, if it is the usual one: the attempt still
// waits, no fallback follows, no card is to be saved. Otherwise it returns
// nil, and spent if it changed known on the way (known must not be used).
func (e *Engine) prepareRecording(ctx context.Context, scope payloom.Scope, known *payloom.Payment,
	waiting func(*payloom.Payment) *payloom.Attempt, attemptID, procName string, capture bool,
	res *payloom.AuthorizeResult, elapsed time.Duration, route []payloom.Processor) (pre *preparedRecording, spent bool) {
	att := waiting(known)
	if att == nil || att.ID != attemptID || known.SavePaymentMethod || e.nextProcessor(known, res, route) != nil {
		return nil, false
	}
	now := e.now()
	att.DurationMS += elapsed.Milliseconds()
	events := applyAuthorization(known, att, procName, capture, res, now)
	setTimings(known)
	evs, err := payloom.NewEvents(scope, events, known.ID, known, now)
	if err != nil {
		return nil, true
	}
	pre = &preparedRecording{p: known, att: att, events: evs}
	if c := claimFor(ctx, known); c != nil && pendingAttempt(known) == nil {
		pre.claim, pre.done = c, e.claimDone(c, e.present(known))
	}
	return pre, false
}

// write writes the prepared recording in tx, as writeOutcome and the claim
// completion would.
func (r *preparedRecording) write(ctx context.Context, tx payloom.Tx) error {
	if err := tx.UpdatePayment(ctx, r.p); err != nil {
		return err
	}
	if err := tx.UpdateAttempt(ctx, r.att); err != nil {
		return err
	}
	for _, ev := range r.events {
		if err := tx.CreateEvent(ctx, ev); err != nil {
			return err
		}
	}
	var err error
	r.completed, err = writeClaimDone(ctx, tx, r.claim, r.done)
	if r.completed == nil {
		r.claim = nil
	}
	return err
}

// writeOutcome applies a processor's answer to an authorization on the
// payment and its attempt, saves the card if the request asked for it, and
// writes both with the events the change makes, all in tx. Both recording
// phases (payment_recorded and authentication_recorded) end with it.
func (e *Engine) writeOutcome(ctx context.Context, tx payloom.Tx, scope payloom.Scope, p *payloom.Payment, att *payloom.Attempt,
	procName string, capture bool, res *payloom.AuthorizeResult, now time.Time) error {
	events := applyAuthorization(p, att, procName, capture, res, now)
	if err := e.saveCardIfAsked(ctx, tx, p, now); err != nil {
		return err
	}
	// The payment first, as every writer does: its version check (and, on
	// PostgreSQL, its row lock) comes before the attempt's write.
	if err := tx.UpdatePayment(ctx, p); err != nil {
		return err
	}
	if err := tx.UpdateAttempt(ctx, att); err != nil {
		return err
	}
	setTimings(p)
	evs, err := payloom.NewEvents(scope, events, p.ID, p, now)
	if err != nil {
		return err
	}
	for _, ev := range evs {
		if err := tx.CreateEvent(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// saveCardIfAsked saves the payment's card for its customer when the
// request asked for it and the authorization succeeded. It runs in the
// transaction that records the outcome, so a crash can neither lose nor
// repeat it; declines, failures and pending authentications save nothing.
func (e *Engine) saveCardIfAsked(ctx context.Context, tx payloom.Tx, p *payloom.Payment, now time.Time) error {
	switch {
	case p.Status != payloom.PaymentStatusAuthorized && p.Status != payloom.PaymentStatusCaptured,
		!p.SavePaymentMethod, p.PaymentMethod == nil, p.PaymentMethod.ID != "", p.PaymentMethod.Card == nil:
		return nil
	}
	pmID, err := e.savePaymentMethod(ctx, tx, p, now)
	if err != nil {
		return err
	}
	p.PaymentMethod.ID = pmID
	return nil
}

// applyAuthorization writes a processor's answer to an authorization on the
// attempt and its payment, and returns the events the change makes. A
// payment with a hosted page goes back to requires_payment_method after a
// decline or a failure, so that the shopper may try another card; any other
// payment ends there.
func applyAuthorization(p *payloom.Payment, att *payloom.Attempt, procName string, capture bool, res *payloom.AuthorizeResult, now time.Time) []payloom.EventType {
	att.CompletedAt = &now
	att.RawCode = res.RawCode
	att.TransactionID = res.TransactionID
	p.UpdatedAt = now
	if res.Status != payloom.AuthorizationFailed || res.TransactionID != "" {
		p.Processor = &payloom.ProcessorDetails{
			Name:                 procName,
			TransactionID:        res.TransactionID,
			AuthorizationCode:    res.AuthorizationCode,
			AVSResult:            res.AVSResult,
			CVVResult:            res.CVVResult,
			NetworkTransactionID: res.NetworkTransactionID,
		}
	}
	var events []payloom.EventType
	switch res.Status {
	case payloom.AuthorizationApproved:
		events = append(events, payloom.EventPaymentAuthorized)
		if capture {
			att.Status = payloom.AttemptStatusCaptured
			p.Status = payloom.PaymentStatusCaptured
			p.AmountCaptured = p.Amount
			p.AmountCapturable = 0
			events = append(events, payloom.EventPaymentCaptured)
		} else {
			att.Status = payloom.AttemptStatusAuthorized
			p.Status = payloom.PaymentStatusAuthorized
			p.AmountCapturable = p.Amount
		}
	case payloom.AuthorizationDeclined:
		f := failureOf(res, payloom.FailureCardDeclined, "Your card was declined.")
		att.Status = payloom.AttemptStatusDeclined
		att.Code, att.DeclineCode, att.Message = f.Code, f.DeclineCode, f.Message
		p.Status = payloom.PaymentStatusDeclined
		p.Failure = f
		events = append(events, payloom.EventPaymentFailed)
	case payloom.AuthorizationRequiresAction:
		att.Status = payloom.AttemptStatusRequiresAction
		p.Status = payloom.PaymentStatusRequiresAction
		p.NextAction = &payloom.NextAction{Type: "redirect_to_url", RedirectURL: res.RedirectURL}
	default: // AuthorizationFailed, and any status we do not know
		f := failureOf(res, payloom.FailureProcessingError, "An error occurred while processing your card.")
		att.Status = payloom.AttemptStatusFailed
		att.Code, att.DeclineCode, att.Message = f.Code, f.DeclineCode, f.Message
		p.Status = payloom.PaymentStatusFailed
		p.Failure = f
		events = append(events, payloom.EventPaymentFailed)
	}
	if p.Status == payloom.PaymentStatusDeclined || p.Status == payloom.PaymentStatusFailed {
		if p.HasPage() {
			p.Status = payloom.PaymentStatusRequiresPaymentMethod
			p.PaymentMethod = nil
		}
	}
	if p.Status != payloom.PaymentStatusRequiresAction {
		p.NextAction = nil
	}
	return events
}

func failureOf(res *payloom.AuthorizeResult, code, message string) *payloom.Failure {
	f := &payloom.Failure{Code: res.FailureCode, DeclineCode: res.DeclineCode, Message: res.Message}
	if f.Code == "" {
		f.Code = code
	}
	if f.Message == "" {
		f.Message = message
	}
	return f
}

// Payment implements payloom.PaymentService.
func (e *Engine) Payment(ctx context.Context, scope payloom.Scope, id string) (*payloom.Payment, error) {
	var p *payloom.Payment
	err := e.view(ctx, "get_payment", func(tx payloom.Tx) error {
		var err error
		p, err = tx.GetPayment(ctx, scope, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return e.present(p), nil
}
