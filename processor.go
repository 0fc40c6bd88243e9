package payloom

import (
	"context"
	"time"
)

// AuthorizationStatus is a processor's answer to an authorization.
type AuthorizationStatus string

const (
	AuthorizationApproved       AuthorizationStatus = "approved"
	AuthorizationDeclined       AuthorizationStatus = "declined"
	AuthorizationRequiresAction AuthorizationStatus = "requires_action"
	// AuthorizationFailed: the processor answered with an error; no
	// authorization exists.
	AuthorizationFailed AuthorizationStatus = "failed"
)

// AuthorizeRequest asks a processor to authorize (and with Capture, also
// capture) an amount on a card. IdempotencyKey is the attempt ID: sending the
// same request again with it must not authorize twice.
type AuthorizeRequest struct {
	IdempotencyKey      string
	Reference           string // our payment ID
	Amount              int64
	Currency            Currency
	Capture             bool
	Card                *CardData
	StatementDescriptor string
	Description         string
	Livemode            bool
	// ReturnURL is where the processor's authentication page (3-D Secure)
	// sends the shopper back to. It carries no secret.
	ReturnURL string
}

// DeclineClass says what a decline means for routing.
type DeclineClass string

const (
	// DeclineHard: the issuer refused for a reason another processor
	// cannot change (stolen card, insufficient funds, closed account ...).
	// Routing stops.
	DeclineHard DeclineClass = "hard"
	// DeclineSoft: another processor (another acquirer) may approve the
	// same card (generic decline by the acquirer, issuer unavailable,
	// "do not honour" at one acquirer ...). Routing may try the next.
	DeclineSoft DeclineClass = "soft"
)

// AuthorizeResult is a processor's answer. For declines and failures,
// FailureCode and DeclineCode hold Payloom's canonical codes and RawCode the
// processor's own.
//
// How the three kinds of "no" differ, which is what routing decides on:
//   - Status AuthorizationDeclined with DeclineClass hard or soft: the
//     processor processed the request and declined it;
//   - Status AuthorizationFailed: the processor definitely did not
//     process the request (the connection was refused, a documented
//     "not processed" 5xx, a 429, a validation error before any
//     authorization): safe to send to another processor if it was the
//     key's first send (the engine knows; a resend's earlier send may
//     have been processed, so there it counts as no answer, unless the
//     failure names a TransactionID: then it is the processor's own final
//     record of the key). A refusal because another request with the same
//     key is in progress is NOT AuthorizationFailed but a Go error: that
//     other request may authorize;
//   - a Go error from Authorize: the request may have been processed and
//     the answer was lost (timeout after sending, connection dropped): the
//     outcome is unknown, and only Lookup on the same processor may settle
//     it. Routing never tries another processor after it.
type AuthorizeResult struct {
	Status               AuthorizationStatus
	DeclineClass         DeclineClass
	TransactionID        string
	AuthorizationCode    string
	AVSResult            string
	CVVResult            string
	NetworkTransactionID string
	FailureCode          string
	DeclineCode          string
	RawCode              string
	Message              string
	// RedirectURL is where the shopper authenticates, for RequiresAction.
	RedirectURL string
}

// CaptureRequest captures Amount of an authorization.
type CaptureRequest struct {
	IdempotencyKey string
	TransactionID  string
	Amount         int64
	Currency       Currency
}

// VoidRequest releases an authorization.
type VoidRequest struct {
	IdempotencyKey string
	TransactionID  string
}

// RefundRequest returns Amount of a captured transaction.
type RefundRequest struct {
	IdempotencyKey string
	TransactionID  string
	Amount         int64
	Currency       Currency
}

// OperationResult is a processor's answer to a capture, void or refund.
type OperationResult struct {
	Succeeded     bool
	TransactionID string
	FailureCode   string
	RawCode       string
	Message       string
}

// LookupRequest asks a processor what became of an authorization sent with
// IdempotencyKey (our attempt ID) and Reference (our payment ID). A
// connector matches on IdempotencyKey (and TransactionID, when given),
// never on Reference alone: a payment may have several attempts at one
// processor. Reference may be empty (the late-check job sends none).
type LookupRequest struct {
	IdempotencyKey string
	Reference      string
	// TransactionID, if known, is the processor's ID for it.
	TransactionID string
}

// LookupResult is what the processor knows of an earlier authorization.
// Found false means the processor has no record of it: it was never
// processed. Otherwise Result is the authorization's answer as Authorize
// would have returned it, and Captured, Voided and AmountCaptured describe
// what happened to it since.
type LookupResult struct {
	Found          bool
	Result         *AuthorizeResult
	Captured       bool
	Voided         bool
	AmountCaptured int64
}

// AuthenticationRequest asks a processor for the outcome of an
// authorization that answered requires_action, once the shopper has come
// back from authenticating (3-D Secure) at its RedirectURL.
type AuthenticationRequest struct {
	// IdempotencyKey and Reference are the authorization's (our attempt
	// ID and payment ID); TransactionID is the processor's ID it answered
	// with.
	IdempotencyKey string
	Reference      string
	TransactionID  string
	// Details are the parameters the shopper's browser brought back to
	// the return URL (Adyen's redirectResult). They come from a browser:
	// untrusted, possibly forged, possibly absent (the shopper has not
	// come back yet). A connector reads only the keys it knows and sends
	// nothing else on.
	Details map[string]string
}

// Capabilities is what a connector supports. Currencies nil means every
// currency; Countries nil means every card country.
type Capabilities struct {
	PaymentMethods []PaymentMethodType
	Currencies     []Currency
	Countries      []string
	ManualCapture  bool
	PartialCapture bool
	PartialRefund  bool
	// ThreeDS: an authorization may answer requires_action with a
	// RedirectURL, and CompleteAuthentication (or, for a connector that
	// answers it CodeNotSupported, Lookup) reports its outcome once the
	// shopper has authenticated.
	ThreeDS bool
	// Lookup says whether Lookup can find an authorization by our
	// reference (without it, unknown outcomes cannot be reconciled).
	Lookup bool
	// LookupLag is how long after an authorization Lookup may still miss
	// it (an eventually consistent search): the reconciler takes "not
	// found" as final only for an attempt older than this (and than its
	// own lookup grace). Zero: Lookup sees an authorization at once.
	LookupLag time.Duration
}

// CodeNotSupported is the code of the *Error a connector returns for an
// operation it lacks; see UnsupportedProcessor.
const CodeNotSupported = "not_supported"

// Processor is a connector to one payment processor. Every method is
// idempotent by its request's IdempotencyKey.
//
// A returned error means the outcome is unknown or the request never got an
// answer: the caller must not assume it failed. A processor's definite "no"
// is a result, not an error. An operation the connector does not have
// answers an *Error with CodeNotSupported (embed UnsupportedProcessor).
type Processor interface {
	// Name is the connector's name as shown in payments ("sandbox").
	Name() string
	Capabilities() Capabilities
	Authorize(ctx context.Context, req *AuthorizeRequest) (*AuthorizeResult, error)
	Capture(ctx context.Context, req *CaptureRequest) (*OperationResult, error)
	Void(ctx context.Context, req *VoidRequest) (*OperationResult, error)
	Refund(ctx context.Context, req *RefundRequest) (*OperationResult, error)
	Lookup(ctx context.Context, req *LookupRequest) (*LookupResult, error)
	// CompleteAuthentication returns the outcome of an authorization that
	// answered requires_action: the answer Authorize gives for an
	// authorization without authentication, or requires_action again while
	// the shopper has not finished. A connector whose processor learns the
	// outcome on its own side, so that Lookup reports it (the sandbox,
	// Stripe), answers CodeNotSupported and the engine asks Lookup. Details
	// the processor refuses (forged, expired, already used) are an *Error
	// with CodeValidation, and the authorization stays as it was; a Go error
	// is an unknown outcome, and the same request may be sent again.
	CompleteAuthentication(ctx context.Context, req *AuthenticationRequest) (*AuthorizeResult, error)
}

// UnsupportedProcessor answers CodeNotSupported for every operation.
// Connectors embed it and override what they support.
type UnsupportedProcessor struct{}

func unsupported(op string) error {
	return &Error{Code: CodeNotSupported, Message: "the processor does not support " + op}
}

func (UnsupportedProcessor) Capabilities() Capabilities { return Capabilities{} }
func (UnsupportedProcessor) Authorize(context.Context, *AuthorizeRequest) (*AuthorizeResult, error) {
	return nil, unsupported("authorize")
}
func (UnsupportedProcessor) Capture(context.Context, *CaptureRequest) (*OperationResult, error) {
	return nil, unsupported("capture")
}
func (UnsupportedProcessor) Void(context.Context, *VoidRequest) (*OperationResult, error) {
	return nil, unsupported("void")
}
func (UnsupportedProcessor) Refund(context.Context, *RefundRequest) (*OperationResult, error) {
	return nil, unsupported("refund")
}
func (UnsupportedProcessor) Lookup(context.Context, *LookupRequest) (*LookupResult, error) {
	return nil, unsupported("lookup")
}
func (UnsupportedProcessor) CompleteAuthentication(context.Context, *AuthenticationRequest) (*AuthorizeResult, error) {
	return nil, unsupported("completing an authentication")
}

// SandboxOperation is one operation recorded by the built-in sandbox
// processor, keyed by the caller's idempotency key. It lives in the store so
// that the sandbox deduplicates across crashes and across nodes, and so that
// tests can count charges.
type SandboxOperation struct {
	Key           string
	Kind          string // "authorize", "capture", "void", "refund"
	TransactionID string
	Amount        int64
	Currency      Currency
	// Result is the JSON of the answer returned, replayed on a retry.
	Result    []byte
	CreatedAt time.Time
}
