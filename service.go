package payloom

import "context"

// PaymentService is the payment engine as the API sees it.
//
// Write methods take an operation key (opKey): the ID of the idempotency
// record the request holds, or a fresh random key when the client sent
// none. Calling a write method again with the same opKey after a crash or
// a lost lease resumes the operation from its last committed phase and
// never repeats a processor charge.
//
// An error with CodeValidation or CodeNotFound from a write method means
// the method changed nothing: the API may then forget the idempotency
// record instead of storing the error under the client's key.
type PaymentService interface {
	// CreatePayment creates and processes a payment. A decline is not an
	// error: the payment comes back with status declined and Failure set.
	// Codes: CodeValidation (amount outside the merchant's limits, unknown
	// token with param "payment_method[card][token]").
	CreatePayment(ctx context.Context, scope Scope, opKey string, req *PaymentCreate) (*Payment, error)
	// Payment returns one payment. CodeNotFound.
	Payment(ctx context.Context, scope Scope, id string) (*Payment, error)
	ListPayments(ctx context.Context, scope Scope, f PaymentFilter) (*List[*Payment], error)
	// CapturePayment captures amount (nil: all of AmountCapturable) of an
	// authorized payment; the rest is released. CodeNotFound,
	// CodeInvalidState (not authorized, or another capture or cancel is in
	// progress), CodeValidation (param "amount").
	CapturePayment(ctx context.Context, scope Scope, opKey, id string, amount *int64) (*Payment, error)
	// CancelPayment voids an authorized payment. CodeNotFound,
	// CodeInvalidState.
	CancelPayment(ctx context.Context, scope Scope, opKey, id string) (*Payment, error)

	// CreateRefund refunds a captured payment. CodeNotFound (param
	// "payment_id"), CodeInvalidState (not captured), CodeValidation
	// (param "amount": more than what is left to refund).
	CreateRefund(ctx context.Context, scope Scope, opKey string, req *RefundCreate) (*Refund, error)
	Refund(ctx context.Context, scope Scope, id string) (*Refund, error)
	ListRefunds(ctx context.Context, scope Scope, f RefundFilter) (*List[*Refund], error)

	Event(ctx context.Context, scope Scope, id string) (*Event, error)
	ListEvents(ctx context.Context, scope Scope, f EventFilter) (*List[*Event], error)
}
