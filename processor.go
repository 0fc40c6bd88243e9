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
}

// AuthorizeResult is a processor's answer. For declines and failures,
// FailureCode and DeclineCode hold Payloom's canonical codes and RawCode the
// processor's own.
type AuthorizeResult struct {
	Status               AuthorizationStatus
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

// Processor is a connector to one payment processor. Every method is
// idempotent by its request's IdempotencyKey.
//
// A returned error means the outcome is unknown or the request never got an
// answer: the caller must not assume it failed. A processor's definite "no"
// is a result, not an error.
type Processor interface {
	// Name is the connector's name as shown in payments ("sandbox").
	Name() string
	Authorize(ctx context.Context, req *AuthorizeRequest) (*AuthorizeResult, error)
	Capture(ctx context.Context, req *CaptureRequest) (*OperationResult, error)
	Void(ctx context.Context, req *VoidRequest) (*OperationResult, error)
	Refund(ctx context.Context, req *RefundRequest) (*OperationResult, error)
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
