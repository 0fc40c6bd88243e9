// Package sandbox is Payloom's built-in test-mode processor. It answers like
// a card processor, deterministically by card number (see the Card*
// constants), and records every answer in the store's sandbox ledger so that
// a request repeated with the same idempotency key gets the same answer and
// never makes a second charge: across concurrent calls, crashes, restarts
// and nodes sharing one store.
//
// The sandbox never moves money and refuses live-mode requests unless told
// otherwise. It must never log or store a card number or CVC: the ledger
// holds only its own answers, amounts and transaction IDs.
//
// Rules for follow-up operations, all checked against the ledger:
//   - Capture: only an approved authorization made without Capture, once,
//     in its currency, for 1 up to the authorized amount (the rest is
//     released). Capturing after a void, or twice, fails.
//   - Void: only an approved authorization that is not captured, once.
//   - Refund: only a captured transaction, in its currency; each refund is
//     at least 1 and the refunds together never exceed the captured amount.
//
// A refused operation is an answer (OperationResult with Succeeded false
// and FailureCode processing_error), recorded under its key like any other.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/payloom/payloom"
)

// Name is the processor's name, as shown in payments.
const Name = "sandbox"

// Test card numbers and what they do. Any other valid card is approved.
const (
	CardVisa              = "4242424242424242" // approved
	CardMastercard        = "5555555555554444" // approved
	CardDeclined          = "4000000000000002" // card_declined / generic_decline
	CardInsufficientFunds = "4000000000009995" // card_declined / insufficient_funds
	CardIncorrectCVC      = "4000000000000127" // incorrect_cvc / incorrect_cvc
	CardExpired           = "4000000000000069" // expired_card / expired_card
	CardProcessingError   = "4000000000000119" // processing_error, status failed
	CardRequires3DS       = "4000000000003220" // requires_action with a RedirectURL
	CardFraudulent        = "4100000000000019" // card_declined / fraudulent
)

// Operation kinds of the ledger. The four answer kinds are keyed by the
// caller's idempotency key; their TransactionID is the authorization's.
const (
	KindAuthorize = "authorize"
	KindCapture   = "capture"
	KindVoid      = "void"
	KindRefund    = "refund"
)

// Ledger facts: rows the sandbox keeps about a transaction, under keys of
// its own. Their unique keys are what make two concurrent captures, or a
// capture and a void, of one transaction impossible on any store.
const (
	// kindApproval: one per approved authorization, keyed by transaction.
	kindApproval = "sandbox_approval"
	// kindSettlement: the capture or void that ended an authorization.
	kindSettlement = "sandbox_settlement"
	// kindRefundTotal: the n-th successful refund of a transaction, with
	// the running total; refund n+1 can only be written once.
	kindRefundTotal = "sandbox_refund_total"
)

// RedirectPathPrefix starts the relative RedirectURL of a 3-D Secure
// challenge: RedirectPathPrefix + transaction ID.
const RedirectPathPrefix = "/sandbox/3ds/"

// Raw response codes (ISO 8583 style) the sandbox answers with.
const (
	rawApproved        = "00"
	rawDeclined        = "05"
	rawInvalidCard     = "14"
	rawInvalidAmount   = "13"
	rawInsufficient    = "51"
	rawExpired         = "54"
	rawIncorrectCVC    = "N7"
	rawFraud           = "59"
	rawSystemError     = "96"
	rawInvalidTxn      = "12"
	rawRequiresAuth    = "1A" // "additional customer authentication required"
	maxConflictRetries = 20
)

var _ payloom.Processor = (*Processor)(nil)

// Options configure the sandbox.
type Options struct {
	// Latency is spent on every call after its answer is recorded, like a
	// processor that has charged the card but whose answer is still on the
	// way: a caller that gives up or dies meanwhile must retry with the
	// same key. It honours the context.
	Latency time.Duration
	// Clock decides whether a card has expired. Default time.Now.
	Clock payloom.Clock
	// AllowLivemode lets live-mode authorizations through. Off by default:
	// a live payment "approved" by a sandbox would be goods given away.
	AllowLivemode bool
}

// Processor is the sandbox processor.
type Processor struct {
	// CompleteAuthentication answers CodeNotSupported: the sandbox's
	// challenge page settles an authentication, and Lookup reports it.
	payloom.UnsupportedProcessor
	store payloom.Store
	opts  Options
}

// New returns a sandbox processor keeping its ledger in store.
func New(store payloom.Store, opts Options) *Processor {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &Processor{store: store, opts: opts}
}

// Name returns "sandbox".
func (p *Processor) Name() string { return Name }

// Capabilities implements payloom.Processor.
func (p *Processor) Capabilities() payloom.Capabilities {
	return payloom.Capabilities{
		PaymentMethods: []payloom.PaymentMethodType{payloom.PaymentMethodTypeCard},
		ManualCapture:  true, PartialCapture: true, PartialRefund: true, ThreeDS: true, Lookup: true,
	}
}

// Lookup implements payloom.Processor: it reads the ledger row of the
// authorization sent with req.IdempotencyKey, and what settled it since.
func (p *Processor) Lookup(ctx context.Context, req *payloom.LookupRequest) (*payloom.LookupResult, error) {
	if req.IdempotencyKey == "" {
		return nil, payloom.Errorf(payloom.CodeValidation, "sandbox: an idempotency key is required")
	}
	var out *payloom.LookupResult
	err := p.store.View(ctx, func(tx payloom.Tx) error {
		op, err := tx.GetSandboxOperation(ctx, req.IdempotencyKey)
		if payloom.IsCode(err, payloom.CodeNotFound) {
			out = &payloom.LookupResult{}
			return nil
		}
		if err != nil {
			return err
		}
		if op.Kind != KindAuthorize {
			return payloom.Errorf(payloom.CodeValidation, "sandbox: %q is not the key of an authorization", req.IdempotencyKey)
		}
		var r authRecord
		if err := decode(op, &r); err != nil {
			return err
		}
		final, err := settled(ctx, tx, &r) // a 3-D Secure challenge answered since
		if err != nil {
			return err
		}
		r = *final
		res := &payloom.LookupResult{Found: true, Result: r.result()}
		if r.Captured {
			res.Captured, res.AmountCaptured = true, op.Amount
		}
		s, err := getSettlement(ctx, tx, r.TransactionID)
		if err != nil {
			return err
		}
		if s != nil {
			res.Voided = s.Voided
			if s.Captured > 0 {
				res.Captured, res.AmountCaptured = true, s.Captured
			}
		}
		out = res
		return nil
	})
	return out, err
}

// Charges returns the number of approved authorizations in the ledger (with
// or without capture), whichever process made them.
func (p *Processor) Charges(ctx context.Context) (int, error) {
	var n int
	err := p.store.View(ctx, func(tx payloom.Tx) error {
		var err error
		n, err = tx.CountSandboxOperations(ctx, kindApproval, "")
		return err
	})
	return n, err
}

// authRecord is an authorization as the ledger keeps it, in JSON. It
// holds no card data.
type authRecord struct {
	Status               payloom.AuthorizationStatus `json:"status"`
	TransactionID        string                      `json:"transaction_id"`
	AuthorizationCode    string                      `json:"authorization_code,omitempty"`
	AVSResult            string                      `json:"avs_result,omitempty"`
	CVVResult            string                      `json:"cvv_result,omitempty"`
	NetworkTransactionID string                      `json:"network_transaction_id,omitempty"`
	FailureCode          string                      `json:"failure_code,omitempty"`
	DeclineCode          string                      `json:"decline_code,omitempty"`
	DeclineClass         payloom.DeclineClass        `json:"decline_class,omitempty"`
	RawCode              string                      `json:"raw_code"`
	Message              string                      `json:"message"`
	RedirectURL          string                      `json:"redirect_url,omitempty"`
	// Captured: the authorization was captured at once (Capture true).
	Captured bool `json:"captured"`
}

func (r *authRecord) result() *payloom.AuthorizeResult {
	return &payloom.AuthorizeResult{
		Status:               r.Status,
		TransactionID:        r.TransactionID,
		AuthorizationCode:    r.AuthorizationCode,
		AVSResult:            r.AVSResult,
		CVVResult:            r.CVVResult,
		NetworkTransactionID: r.NetworkTransactionID,
		FailureCode:          r.FailureCode,
		DeclineCode:          r.DeclineCode,
		DeclineClass:         r.DeclineClass,
		RawCode:              r.RawCode,
		Message:              r.Message,
		RedirectURL:          r.RedirectURL,
	}
}

// opRecord is a capture, void or refund answer in the ledger.
type opRecord struct {
	Succeeded     bool   `json:"succeeded"`
	TransactionID string `json:"transaction_id,omitempty"`
	FailureCode   string `json:"failure_code,omitempty"`
	RawCode       string `json:"raw_code"`
	Message       string `json:"message"`
}

func (r *opRecord) result() *payloom.OperationResult {
	return &payloom.OperationResult{
		Succeeded:     r.Succeeded,
		TransactionID: r.TransactionID,
		FailureCode:   r.FailureCode,
		RawCode:       r.RawCode,
		Message:       r.Message,
	}
}

// settlement is the kindSettlement fact.
type settlement struct {
	Voided   bool  `json:"voided"`
	Captured int64 `json:"captured"`
}

// refundTotal is the kindRefundTotal fact.
type refundTotal struct {
	Total int64 `json:"total"`
}

// errRetry rolls back an Update that lost a race for a unique key; the
// next run sees the winner's row.
var errRetry = errors.New("sandbox: lost a race for a ledger key")

// Authorize decides by card number (see the Card* constants) and records
// the answer under req.IdempotencyKey; a repeated key returns the recorded
// answer. Errors: CodeValidation for a request without an idempotency key,
// CodeIdempotencyConflict for a key already used by a different request,
// and store or context errors, after which the outcome is unknown.
func (p *Processor) Authorize(ctx context.Context, req *payloom.AuthorizeRequest) (*payloom.AuthorizeResult, error) {
	if req == nil || req.IdempotencyKey == "" {
		return nil, payloom.Errorf(payloom.CodeValidation, "sandbox: an idempotency key is required")
	}
	var rec *authRecord
	err := p.update(ctx, func(tx payloom.Tx) error {
		// The answer is decided and inserted first: a key seen before
		// (a resend) finds its row there and the first answer is
		// returned, so a first send costs no read.
		rec = p.decide(req)
		op := &payloom.SandboxOperation{
			Key:           req.IdempotencyKey,
			Kind:          KindAuthorize,
			TransactionID: rec.TransactionID,
			Amount:        req.Amount,
			Currency:      req.Currency,
			Result:        mustJSON(rec),
			CreatedAt:     p.opts.Clock().UTC(),
		}
		err := tx.CreateSandboxOperation(ctx, op)
		if payloom.IsCode(err, payloom.CodeAlreadyExists) {
			prev, err := p.previous(ctx, tx, req.IdempotencyKey, KindAuthorize, "", req.Amount, req.Currency)
			if err == nil && prev == nil {
				return errRetry // deleted meanwhile: the ledger never deletes, but do not guess
			}
			rec = new(authRecord)
			if err == nil {
				err = decode(prev, rec)
			}
			if err == nil {
				rec, err = settled(ctx, tx, rec) // a 3-D Secure challenge answered since
			}
			return err
		}
		if err != nil {
			return err
		}
		if rec.Status == payloom.AuthorizationRequiresAction {
			return openChallenge(ctx, tx, op, req)
		}
		if rec.Status != payloom.AuthorizationApproved {
			return nil
		}
		fact := *op
		fact.Key = factKey(kindApproval, rec.TransactionID)
		fact.Kind = kindApproval
		return create(ctx, tx, &fact)
	})
	if err != nil {
		return nil, err
	}
	if err := p.wait(ctx); err != nil {
		return nil, err
	}
	return rec.result(), nil
}

// decide is the sandbox's issuer: a pure function of the request, plus
// fresh random identifiers.
func (p *Processor) decide(req *payloom.AuthorizeRequest) *authRecord {
	rec := &authRecord{TransactionID: payloom.NewID("sbx")}
	fail := func(raw, msg string) *authRecord {
		rec.Status = payloom.AuthorizationFailed
		rec.FailureCode = payloom.FailureProcessingError
		rec.DeclineCode = payloom.DeclineProcessingError
		rec.RawCode, rec.Message = raw, msg
		return rec
	}
	decline := func(code, decline, raw, msg string) *authRecord {
		rec.Status = payloom.AuthorizationDeclined
		rec.FailureCode, rec.DeclineCode = code, decline
		rec.RawCode, rec.Message = raw, msg
		// Only a generic decline may turn out otherwise at another
		// acquirer; the card's own problems follow it everywhere.
		rec.DeclineClass = payloom.DeclineHard
		if decline == payloom.DeclineGeneric && raw == rawDeclined {
			rec.DeclineClass = payloom.DeclineSoft
		}
		return rec
	}
	switch {
	case req.Livemode && !p.opts.AllowLivemode:
		return fail(rawSystemError, "The sandbox processor does not accept live-mode payments.")
	case req.Card == nil:
		return fail(rawSystemError, "No card was given.")
	case req.Amount <= 0:
		return fail(rawInvalidAmount, "The amount must be positive.")
	}
	if _, ok := req.Currency.Exponent(); !ok {
		return fail(rawInvalidTxn, "The currency is not supported.")
	}
	number := req.Card.Number.Reveal()
	if !validNumber(number) {
		return decline(payloom.FailureCardDeclined, payloom.DeclineGeneric, rawInvalidCard, "Your card number is incorrect.")
	}
	switch number {
	case CardDeclined:
		return decline(payloom.FailureCardDeclined, payloom.DeclineGeneric, rawDeclined, "Your card was declined.")
	case CardInsufficientFunds:
		return decline(payloom.FailureCardDeclined, payloom.DeclineInsufficientFunds, rawInsufficient, "Your card has insufficient funds.")
	case CardIncorrectCVC:
		rec.CVVResult = "N"
		return decline(payloom.FailureIncorrectCVC, payloom.DeclineIncorrectCVC, rawIncorrectCVC, "Your card's security code is incorrect.")
	case CardExpired:
		return decline(payloom.FailureExpiredCard, payloom.DeclineExpiredCard, rawExpired, "Your card has expired.")
	case CardFraudulent:
		// Like real issuers, the message does not tell the shopper why.
		return decline(payloom.FailureCardDeclined, payloom.DeclineFraudulent, rawFraud, "Your card was declined.")
	case CardProcessingError:
		return fail(rawSystemError, "An error occurred while processing your card. Try again in a little bit.")
	case CardRequires3DS:
		rec.Status = payloom.AuthorizationRequiresAction
		rec.FailureCode = payloom.FailureAuthentication
		rec.RawCode = rawRequiresAuth
		rec.Message = "The card requires 3-D Secure authentication."
		rec.RedirectURL = RedirectPathPrefix + rec.TransactionID
		return rec
	}
	now := p.opts.Clock().UTC()
	if y, m := req.Card.ExpYear, req.Card.ExpMonth; y < now.Year() || (y == now.Year() && m < int(now.Month())) {
		return decline(payloom.FailureExpiredCard, payloom.DeclineExpiredCard, rawExpired, "Your card has expired.")
	}
	rec.Status = payloom.AuthorizationApproved
	rec.AuthorizationCode = randomString(6, "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789")
	rec.AVSResult = "Y"
	rec.CVVResult = "M"
	if req.Card.CVC.Reveal() == "" {
		rec.CVVResult = "P" // not processed: no CVC was sent
	}
	rec.NetworkTransactionID = randomString(1, "123456789") + randomString(14, "0123456789")
	rec.RawCode = rawApproved
	rec.Message = "Approved"
	rec.Captured = req.Capture
	return rec
}

// Capture captures an approved, uncaptured authorization. See the package
// comment for the rules; errors are as Authorize's.
func (p *Processor) Capture(ctx context.Context, req *payloom.CaptureRequest) (*payloom.OperationResult, error) {
	if req == nil || req.IdempotencyKey == "" {
		return nil, payloom.Errorf(payloom.CodeValidation, "sandbox: an idempotency key is required")
	}
	return p.operate(ctx, KindCapture, req.IdempotencyKey, req.TransactionID, req.Amount, req.Currency,
		func(tx payloom.Tx, auth *authRecord, authOp *payloom.SandboxOperation) (*opRecord, []*payloom.SandboxOperation, error) {
			switch {
			case auth.Captured:
				return refuse("The transaction was captured when it was authorized."), nil, nil
			case req.Currency != authOp.Currency:
				return refuse("The currency differs from the authorization's."), nil, nil
			case req.Amount <= 0 || req.Amount > authOp.Amount:
				return refuse("The amount must be between 1 and the authorized amount."), nil, nil
			}
			s, err := getSettlement(ctx, tx, req.TransactionID)
			if err != nil {
				return nil, nil, err
			}
			if s != nil {
				return refuse(settledMessage(s)), nil, nil
			}
			fact := &payloom.SandboxOperation{
				Key: factKey(kindSettlement, req.TransactionID), Kind: kindSettlement,
				TransactionID: req.TransactionID, Amount: req.Amount, Currency: req.Currency,
				Result: mustJSON(settlement{Captured: req.Amount}),
			}
			return succeed(req.TransactionID), []*payloom.SandboxOperation{fact}, nil
		})
}

// Void releases an approved authorization that is not captured.
func (p *Processor) Void(ctx context.Context, req *payloom.VoidRequest) (*payloom.OperationResult, error) {
	if req == nil || req.IdempotencyKey == "" {
		return nil, payloom.Errorf(payloom.CodeValidation, "sandbox: an idempotency key is required")
	}
	return p.operate(ctx, KindVoid, req.IdempotencyKey, req.TransactionID, 0, "",
		func(tx payloom.Tx, auth *authRecord, authOp *payloom.SandboxOperation) (*opRecord, []*payloom.SandboxOperation, error) {
			if auth.Captured {
				return refuse("A captured transaction cannot be voided; refund it instead."), nil, nil
			}
			s, err := getSettlement(ctx, tx, req.TransactionID)
			if err != nil {
				return nil, nil, err
			}
			if s != nil {
				return refuse(settledMessage(s)), nil, nil
			}
			fact := &payloom.SandboxOperation{
				Key: factKey(kindSettlement, req.TransactionID), Kind: kindSettlement,
				TransactionID: req.TransactionID, Currency: authOp.Currency,
				Result: mustJSON(settlement{Voided: true}),
			}
			return succeed(req.TransactionID), []*payloom.SandboxOperation{fact}, nil
		})
}

// Refund returns part or all of a captured transaction. The result's
// TransactionID is the refund's own.
func (p *Processor) Refund(ctx context.Context, req *payloom.RefundRequest) (*payloom.OperationResult, error) {
	if req == nil || req.IdempotencyKey == "" {
		return nil, payloom.Errorf(payloom.CodeValidation, "sandbox: an idempotency key is required")
	}
	return p.operate(ctx, KindRefund, req.IdempotencyKey, req.TransactionID, req.Amount, req.Currency,
		func(tx payloom.Tx, auth *authRecord, authOp *payloom.SandboxOperation) (*opRecord, []*payloom.SandboxOperation, error) {
			captured := int64(0)
			if auth.Captured {
				captured = authOp.Amount
			} else {
				s, err := getSettlement(ctx, tx, req.TransactionID)
				if err != nil {
					return nil, nil, err
				}
				if s != nil {
					captured = s.Captured
				}
			}
			switch {
			case captured == 0:
				return refuse("The transaction is not captured."), nil, nil
			case req.Currency != authOp.Currency:
				return refuse("The currency differs from the transaction's."), nil, nil
			case req.Amount <= 0:
				return refuse("The amount must be positive."), nil, nil
			}
			n, err := tx.CountSandboxOperations(ctx, kindRefundTotal, req.TransactionID)
			if err != nil {
				return nil, nil, err
			}
			var total refundTotal
			if n > 0 {
				last, err := tx.GetSandboxOperation(ctx, refundKey(req.TransactionID, n-1))
				if payloom.IsCode(err, payloom.CodeNotFound) {
					return nil, nil, errRetry // a concurrent refund is half visible
				}
				if err != nil {
					return nil, nil, err
				}
				if err := decode(last, &total); err != nil {
					return nil, nil, err
				}
			}
			if req.Amount > captured-total.Total {
				return refuse("The refunds would exceed the captured amount."), nil, nil
			}
			fact := &payloom.SandboxOperation{
				Key: refundKey(req.TransactionID, n), Kind: kindRefundTotal,
				TransactionID: req.TransactionID, Amount: req.Amount, Currency: req.Currency,
				Result: mustJSON(refundTotal{Total: total.Total + req.Amount}),
			}
			return succeed(payloom.NewID("sbx")), []*payloom.SandboxOperation{fact}, nil
		})
}

// operateFunc decides an operation on an approved authorization and returns
// the answer with the facts to record if it succeeded.
type operateFunc func(tx payloom.Tx, auth *authRecord, authOp *payloom.SandboxOperation) (*opRecord, []*payloom.SandboxOperation, error)

// operate runs a capture, void or refund: replay a recorded answer, or find
// the authorization, decide, and record the answer with its facts, all in
// one transaction.
func (p *Processor) operate(ctx context.Context, kind, key, txnID string, amount int64, currency payloom.Currency, fn operateFunc) (*payloom.OperationResult, error) {
	var rec *opRecord
	err := p.update(ctx, func(tx payloom.Tx) error {
		prev, err := p.previous(ctx, tx, key, kind, txnID, amount, currency)
		if err != nil || prev != nil {
			rec = new(opRecord)
			if err == nil {
				err = decode(prev, rec)
			}
			return err
		}
		var facts []*payloom.SandboxOperation
		authOp, err := tx.GetSandboxOperation(ctx, factKey(kindApproval, txnID))
		switch {
		case payloom.IsCode(err, payloom.CodeNotFound) || (err == nil && authOp.Kind != kindApproval):
			rec = &opRecord{FailureCode: payloom.FailureProcessingError, RawCode: rawInvalidTxn,
				Message: "No such approved transaction."}
		case err != nil:
			return err
		default:
			var auth authRecord
			if err := decode(authOp, &auth); err != nil {
				return err
			}
			if rec, facts, err = fn(tx, &auth, authOp); err != nil {
				return err
			}
		}
		now := p.opts.Clock().UTC()
		op := &payloom.SandboxOperation{
			Key: key, Kind: kind, TransactionID: txnID, Amount: amount, Currency: currency,
			Result: mustJSON(rec), CreatedAt: now,
		}
		// The answer first: if another run of the same key won, this one
		// rolls back before writing any fact.
		if err := create(ctx, tx, op); err != nil {
			return err
		}
		for _, f := range facts {
			f.CreatedAt = now
			if err := create(ctx, tx, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := p.wait(ctx); err != nil {
		return nil, err
	}
	return rec.result(), nil
}

// previous returns the answer recorded under key, nil if there is none, or
// CodeIdempotencyConflict if the key was used for a different request.
func (p *Processor) previous(ctx context.Context, tx payloom.Tx, key, kind, txnID string, amount int64, currency payloom.Currency) (*payloom.SandboxOperation, error) {
	op, err := tx.GetSandboxOperation(ctx, key)
	if payloom.IsCode(err, payloom.CodeNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if op.Kind != kind || op.Amount != amount || op.Currency != currency || (txnID != "" && op.TransactionID != txnID) {
		return nil, payloom.Errorf(payloom.CodeIdempotencyConflict,
			"sandbox: idempotency key %q was used for a different request", key)
	}
	return op, nil
}

// update runs fn in a store transaction, again when it lost a race for a
// unique key to a concurrent transaction (possible on PostgreSQL, where
// reading a missing row locks nothing).
func (p *Processor) update(ctx context.Context, fn func(tx payloom.Tx) error) error {
	for i := 0; ; i++ {
		err := p.store.Update(ctx, fn)
		if !errors.Is(err, errRetry) || i == maxConflictRetries {
			return err
		}
	}
}

// create inserts op, turning a unique-key loss into errRetry.
func create(ctx context.Context, tx payloom.Tx, op *payloom.SandboxOperation) error {
	err := tx.CreateSandboxOperation(ctx, op)
	if payloom.IsCode(err, payloom.CodeAlreadyExists) {
		return errRetry
	}
	return err
}

// wait spends the configured latency, or less if ctx ends first.
func (p *Processor) wait(ctx context.Context) error {
	if p.opts.Latency <= 0 {
		return nil
	}
	t := time.NewTimer(p.opts.Latency)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func getSettlement(ctx context.Context, tx payloom.Tx, txnID string) (*settlement, error) {
	op, err := tx.GetSandboxOperation(ctx, factKey(kindSettlement, txnID))
	if payloom.IsCode(err, payloom.CodeNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s settlement
	if err := decode(op, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func settledMessage(s *settlement) string {
	if s.Voided {
		return "The authorization was voided."
	}
	return "The authorization was already captured."
}

func refuse(msg string) *opRecord {
	return &opRecord{FailureCode: payloom.FailureProcessingError, RawCode: rawInvalidTxn, Message: msg}
}

func succeed(txnID string) *opRecord {
	return &opRecord{Succeeded: true, TransactionID: txnID, RawCode: rawApproved, Message: "Approved"}
}

// factKey names a fact row. Callers' keys are attempt and operation IDs
// ("att_...", "op_..."), which never start with "sandbox:".
func factKey(kind, txnID string) string { return "sandbox:" + kind + ":" + txnID }

func refundKey(txnID string, n int) string {
	return factKey(kindRefundTotal, txnID) + ":" + strconv.Itoa(n)
}

func decode(op *payloom.SandboxOperation, v any) error {
	if err := json.Unmarshal(op.Result, v); err != nil {
		return fmt.Errorf("sandbox: ledger row %q of kind %s is unreadable: %w", op.Key, op.Kind, err)
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("sandbox: " + err.Error()) // only plain structs are encoded
	}
	return b
}

// validNumber is the sandbox's own Luhn check (it does not import the
// vault): 12 to 19 digits that pass mod 10.
func validNumber(s string) bool {
	if len(s) < 12 || len(s) > 19 {
		return false
	}
	sum := 0
	for i := 0; i < len(s); i++ {
		c := s[len(s)-1-i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if i%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// randomString returns n characters drawn uniformly from alphabet.
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	limit := 256 - 256%len(alphabet) // reject above it: no modulo bias
	var buf [1]byte
	for i := 0; i < n; {
		if _, err := rand.Read(buf[:]); err != nil {
			panic("sandbox: crypto/rand failed: " + err.Error())
		}
		if int(buf[0]) >= limit {
			continue
		}
		b[i] = alphabet[int(buf[0])%len(alphabet)]
		i++
	}
	return string(b)
}
