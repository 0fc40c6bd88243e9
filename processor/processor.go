// Package processor holds what every payment connector shares: the table of
// Payloom's canonical decline codes with the routing class of each, the
// builders of the three kinds of "no" (declined, failed, unknown), the rule
// that tells an HTTP call that never left this machine from one whose
// answer was lost, and the redaction of card-number-like digits in text a
// processor sends back.
//
// The connectors live in its subpackages (sandbox, simulator, stripe,
// adyen); processortest is the contract suite they all pass. This package
// must never see card data: connectors hand it codes, messages and errors
// only, and it must never decide anything from a processor's free text.
package processor

import (
	"context"
	"net/http/httptrace"
	"regexp"
	"sync/atomic"

	"github.com/payloom/payloom"
)

// Canonical decline codes beyond the root package's (DeclineGeneric,
// DeclineInsufficientFunds, DeclineFraudulent, DeclineExpiredCard,
// DeclineIncorrectCVC, DeclineProcessingError, DeclineAuthenticationFail).
// They follow Stripe's decline-code vocabulary, which Payloom's API already
// speaks, so that a code means the same thing whichever processor said it.
const (
	DeclineDoNotHonor             = "do_not_honor"
	DeclineLostCard               = "lost_card"
	DeclineStolenCard             = "stolen_card"
	DeclinePickupCard             = "pickup_card"
	DeclineRestrictedCard         = "restricted_card"
	DeclineInvalidNumber          = "invalid_number"
	DeclineInvalidAmount          = "invalid_amount"
	DeclineInvalidAccount         = "invalid_account"
	DeclineCardNotSupported       = "card_not_supported"
	DeclineCurrencyNotSupported   = "currency_not_supported"
	DeclineIssuerNotAvailable     = "issuer_not_available"
	DeclineTryAgainLater          = "try_again_later"
	DeclineReenterTransaction     = "reenter_transaction"
	DeclineCallIssuer             = "call_issuer"
	DeclineDoNotTryAgain          = "do_not_try_again"
	DeclineTransactionNotAllowed  = "transaction_not_allowed"
	DeclineNotPermitted           = "not_permitted"
	DeclineCardVelocityExceeded   = "card_velocity_exceeded"
	DeclineWithdrawalCountLimit   = "withdrawal_count_limit_exceeded"
	DeclineAuthenticationRequired = "authentication_required"
	DeclineIncorrectPIN           = "incorrect_pin"
	DeclinePINTryExceeded         = "pin_try_exceeded"
	DeclineIncorrectZip           = "incorrect_zip"
	DeclineSecurityViolation      = "security_violation"
	DeclineDuplicateTransaction   = "duplicate_transaction"
	DeclineRevocation             = "revocation_of_authorization"
	DeclineMerchantBlacklist      = "merchant_blacklist"
	DeclineApproveWithID          = "approve_with_id"
)

// Canonical failure codes beyond the root package's.
const (
	FailureIncorrectNumber = "incorrect_number"
)

// Decline is what a canonical decline code means: the failure code shown
// beside it, its class for routing, and a message safe to show a shopper
// (issuers' reasons are not: they help card testers).
type Decline struct {
	Code        string
	FailureCode string
	Class       payloom.DeclineClass
	Message     string
}

const (
	msgDeclined = "Your card was declined."
	msgTryAgain = "Your card was declined. Try again in a little bit."
)

// declines is the one table that decides hard against soft. Hard: the
// issuer's answer follows the card to every acquirer (and schemes fine
// merchants who retry such codes). Soft: an acquirer-side or transient
// refusal that another processor may well approve.
var declines = map[string]Decline{
	payloom.DeclineGeneric:            {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineSoft, Message: msgDeclined},
	DeclineDoNotHonor:                 {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineSoft, Message: msgDeclined},
	DeclineIssuerNotAvailable:         {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineSoft, Message: msgTryAgain},
	DeclineTryAgainLater:              {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineSoft, Message: msgTryAgain},
	DeclineReenterTransaction:         {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineSoft, Message: msgTryAgain},
	payloom.DeclineProcessingError:    {FailureCode: payloom.FailureProcessingError, Class: payloom.DeclineSoft, Message: "An error occurred while processing your card. Try again in a little bit."},
	DeclineCardNotSupported:           {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineSoft, Message: "Your card does not support this type of purchase."},
	DeclineCurrencyNotSupported:       {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineSoft, Message: "Your card does not support this currency."},
	DeclineApproveWithID:              {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineSoft, Message: msgTryAgain},
	payloom.DeclineInsufficientFunds:  {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: "Your card has insufficient funds."},
	payloom.DeclineFraudulent:         {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: msgDeclined},
	payloom.DeclineExpiredCard:        {FailureCode: payloom.FailureExpiredCard, Class: payloom.DeclineHard, Message: "Your card has expired."},
	payloom.DeclineIncorrectCVC:       {FailureCode: payloom.FailureIncorrectCVC, Class: payloom.DeclineHard, Message: "Your card's security code is incorrect."},
	payloom.DeclineAuthenticationFail: {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: "The card's authentication failed."},
	DeclineAuthenticationRequired:     {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: "Your card requires authentication."},
	DeclineLostCard:                   {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: msgDeclined},
	DeclineStolenCard:                 {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: msgDeclined},
	DeclinePickupCard:                 {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: msgDeclined},
	DeclineRestrictedCard:             {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: msgDeclined},
	DeclineInvalidNumber:              {FailureCode: FailureIncorrectNumber, Class: payloom.DeclineHard, Message: "Your card number is incorrect."},
	DeclineInvalidAmount:              {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: "The amount is not valid for this card."},
	DeclineInvalidAccount:             {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: msgDeclined},
	DeclineCallIssuer:                 {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: msgDeclined},
	DeclineDoNotTryAgain:              {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: msgDeclined},
	DeclineTransactionNotAllowed:      {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: "Your card does not support this type of purchase."},
	DeclineNotPermitted:               {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: msgDeclined},
	DeclineCardVelocityExceeded:       {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: "Your card has exceeded its limit."},
	DeclineWithdrawalCountLimit:       {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: "Your card has exceeded its limit."},
	DeclineIncorrectPIN:               {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: msgDeclined},
	DeclinePINTryExceeded:             {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: msgDeclined},
	DeclineIncorrectZip:               {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: "Your card's postal code is incorrect."},
	DeclineSecurityViolation:          {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: msgDeclined},
	DeclineDuplicateTransaction:       {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: msgDeclined},
	DeclineRevocation:                 {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: msgDeclined},
	DeclineMerchantBlacklist:          {FailureCode: payloom.FailureCardDeclined, Class: payloom.DeclineHard, Message: msgDeclined},
}

func init() {
	for code, d := range declines {
		d.Code = code
		declines[code] = d
	}
}

// LookupDecline returns what a canonical decline code means; false for a
// code not in the table.
func LookupDecline(code string) (Decline, bool) {
	d, ok := declines[code]
	return d, ok
}

// DeclineCodes returns every canonical decline code, for tests and docs.
func DeclineCodes() []string {
	out := make([]string, 0, len(declines))
	for c := range declines {
		out = append(out, c)
	}
	return out
}

// Declined builds the result of a processed and declined authorization.
// declineCode is canonical; a code outside the table becomes a soft
// generic decline (RawCode keeps what the processor said), because a
// decline we cannot read is not proof that the card is unusable.
func Declined(declineCode, rawCode string) *payloom.AuthorizeResult {
	d, ok := declines[declineCode]
	if !ok {
		d = declines[payloom.DeclineGeneric]
		d.Code = payloom.DeclineGeneric
	}
	return &payloom.AuthorizeResult{
		Status:       payloom.AuthorizationDeclined,
		DeclineClass: d.Class,
		FailureCode:  d.FailureCode,
		DeclineCode:  d.Code,
		RawCode:      rawCode,
		Message:      d.Message,
	}
}

// Failed builds the result of an authorization the processor definitely
// did not process: safe to send to another processor.
func Failed(rawCode, message string) *payloom.AuthorizeResult {
	return &payloom.AuthorizeResult{
		Status:      payloom.AuthorizationFailed,
		FailureCode: payloom.FailureProcessingError,
		DeclineCode: payloom.DeclineProcessingError,
		RawCode:     rawCode,
		Message:     Redact(message),
	}
}

// Raw codes the connectors use when the processor gave none.
const (
	// RawNotSent: the request never left this machine (no connection).
	RawNotSent = "not_sent"
	// RawNotProcessed: the processor answered that it did not process it.
	RawNotProcessed = "not_processed"
)

// ErrUnavailable returns the error of a capture, void or refund that was
// not sent or that the processor refused to process: retrying it with the
// same idempotency key is safe. It is an error rather than a refused
// OperationResult because nothing was decided; an operation result says
// what the processor decided.
func ErrUnavailable(connector, op, why string) error {
	return &payloom.Error{Code: payloom.CodeUnavailable,
		Message: connector + ": the " + op + " was not processed (" + Redact(why) + "); retry it with the same idempotency key"}
}

// SendTrace records whether an HTTP request may have reached the server.
// Attach it with TraceSend before the call; after a failed call,
// MaybeSent false proves the request never left: no connection was ever
// handed to it (refused, unreachable, DNS or TLS failure, or the context
// ended first).
//
// It is deliberately conservative: once a connection was obtained, even a
// failure while writing counts as "maybe sent", because a partly written
// request on a reused connection cannot be shown to have been discarded.
type SendTrace struct{ conn atomic.Bool }

// TraceSend returns a context carrying a fresh SendTrace (composed with
// any trace already in ctx).
func TraceSend(ctx context.Context) (context.Context, *SendTrace) {
	st := new(SendTrace)
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { st.conn.Store(true) },
	}), st
}

// MaybeSent reports whether a connection was obtained for the request.
func (s *SendTrace) MaybeSent() bool { return s.conn.Load() }

// panLike matches runs of 12 to 19 digits, optionally split by single
// spaces or dashes: anything that could be a card number.
var panLike = regexp.MustCompile(`\d(?:[ -]?\d){11,18}`)

// Redact replaces card-number-like digit runs in text that came from a
// processor (messages, error bodies) before it is put in a result or an
// error: a processor echoing a request field must not leak a card number
// into Payloom's logs or responses.
func Redact(s string) string {
	return panLike.ReplaceAllString(s, "[REDACTED]")
}
