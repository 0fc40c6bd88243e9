package payloom

import (
	"time"
)

// PaymentStatus is where a payment stands.
type PaymentStatus string

const (
	// PaymentStatusRequiresPaymentMethod: created without a usable payment
	// method (hosted page flow).
	PaymentStatusRequiresPaymentMethod PaymentStatus = "requires_payment_method"
	// PaymentStatusRequiresAction: the shopper must act (3-D Secure).
	PaymentStatusRequiresAction PaymentStatus = "requires_action"
	// PaymentStatusProcessing: an attempt is with a processor and its
	// outcome is not recorded yet.
	PaymentStatusProcessing PaymentStatus = "processing"
	// PaymentStatusAuthorized: funds are held; capture or cancel next.
	PaymentStatusAuthorized PaymentStatus = "authorized"
	// PaymentStatusCaptured: funds were captured (refunds may follow).
	PaymentStatusCaptured PaymentStatus = "captured"
	// PaymentStatusDeclined: the issuer or processor declined. Final.
	PaymentStatusDeclined PaymentStatus = "declined"
	// PaymentStatusFailed: an error prevented an authorization. Final.
	PaymentStatusFailed PaymentStatus = "failed"
	// PaymentStatusCanceled: the authorization was voided. Final.
	PaymentStatusCanceled PaymentStatus = "canceled"
	// PaymentStatusExpired: never paid before its expiry. Final.
	PaymentStatusExpired PaymentStatus = "expired"
)

// PaymentStatuses lists every status, in lifecycle order.
var PaymentStatuses = []PaymentStatus{
	PaymentStatusRequiresPaymentMethod, PaymentStatusRequiresAction, PaymentStatusProcessing,
	PaymentStatusAuthorized, PaymentStatusCaptured, PaymentStatusDeclined, PaymentStatusFailed,
	PaymentStatusCanceled, PaymentStatusExpired,
}

// Valid reports whether s is a known status.
func (s PaymentStatus) Valid() bool {
	for _, v := range PaymentStatuses {
		if s == v {
			return true
		}
	}
	return false
}

// Final reports whether no further transition except refunds can happen.
func (s PaymentStatus) Final() bool {
	switch s {
	case PaymentStatusCaptured, PaymentStatusDeclined, PaymentStatusFailed,
		PaymentStatusCanceled, PaymentStatusExpired:
		return true
	}
	return false
}

// CaptureMethod says whether an authorization is captured at once.
type CaptureMethod string

const (
	CaptureMethodAutomatic CaptureMethod = "automatic"
	CaptureMethodManual    CaptureMethod = "manual"
)

// PaymentMethodType is the kind of payment method.
type PaymentMethodType string

const (
	PaymentMethodTypeCard PaymentMethodType = "card"
)

// PaymentMethod is the payment method of a payment as the API shows it.
// ID is the customer's saved payment method (pm_...) the payment used or
// saved, if any.
type PaymentMethod struct {
	ID   string            `json:"id,omitempty"`
	Type PaymentMethodType `json:"type"`
	Card *CardSummary      `json:"card,omitempty"`
}

// ProcessorDetails is what the processor that authorized the payment said.
type ProcessorDetails struct {
	Name                 string `json:"name"`
	TransactionID        string `json:"transaction_id,omitempty"`
	AuthorizationCode    string `json:"authorization_code,omitempty"`
	AVSResult            string `json:"avs_result,omitempty"`
	CVVResult            string `json:"cvv_result,omitempty"`
	NetworkTransactionID string `json:"network_transaction_id,omitempty"`
}

// Failure explains a declined or failed payment. Code is a Stripe-style
// error code (card_declined, expired_card, incorrect_cvc, processing_error
// ...); DeclineCode refines card_declined (insufficient_funds, fraudulent
// ...).
type Failure struct {
	Code        string `json:"code"`
	DeclineCode string `json:"decline_code,omitempty"`
	Message     string `json:"message"`
}

// Canonical failure and decline codes.
const (
	FailureCardDeclined       = "card_declined"
	FailureExpiredCard        = "expired_card"
	FailureIncorrectCVC       = "incorrect_cvc"
	FailureProcessingError    = "processing_error"
	FailureAuthentication     = "authentication_required"
	DeclineGeneric            = "generic_decline"
	DeclineInsufficientFunds  = "insufficient_funds"
	DeclineFraudulent         = "fraudulent"
	DeclineExpiredCard        = "expired_card"
	DeclineIncorrectCVC       = "incorrect_cvc"
	DeclineProcessingError    = "processing_error"
	DeclineAuthenticationFail = "authentication_failed"
)

// FailureNotFoundAtProcessor is the failure code of an attempt (and its
// payment) that the processor never answered and, asked later by our key
// (Lookup), had no record of. Payloom ends the payment there and keeps
// watching the attempt: an authorization the processor shows after all is
// voided (see AttemptStatusVoidedLate).
const FailureNotFoundAtProcessor = "not_found_at_processor"

// NextAction tells the client what the shopper must do for a payment in
// requires_action.
type NextAction struct {
	Type        string `json:"type"` // "redirect_to_url"
	RedirectURL string `json:"redirect_url"`
}

// Payment is one payment and the public shape of the API's payment object.
// Fields tagged json:"-" are internal.
type Payment struct {
	ID                  string            `json:"id"`
	Object              string            `json:"object"` // "payment"
	MerchantID          string            `json:"merchant_id"`
	Livemode            bool              `json:"livemode"`
	Amount              int64             `json:"amount"`
	AmountCapturable    int64             `json:"amount_capturable"`
	AmountCaptured      int64             `json:"amount_captured"`
	AmountRefunded      int64             `json:"amount_refunded"`
	Currency            Currency          `json:"currency"`
	Status              PaymentStatus     `json:"status"`
	CaptureMethod       CaptureMethod     `json:"capture_method"`
	CustomerID          string            `json:"customer_id,omitempty"`
	Reference           string            `json:"reference,omitempty"`
	Description         string            `json:"description,omitempty"`
	StatementDescriptor string            `json:"statement_descriptor,omitempty"`
	PaymentMethod       *PaymentMethod    `json:"payment_method,omitempty"`
	Processor           *ProcessorDetails `json:"processor,omitempty"`
	NextAction          *NextAction       `json:"next_action,omitempty"`
	Attempts            []*Attempt        `json:"attempts"`
	Failure             *Failure          `json:"failure,omitempty"`
	// ProcessingMS is Payloom's own time on the payment, from creation to
	// the last processor answer, less ProcessorMS, the sum of the
	// attempts' processor calls. Both are computed, not stored.
	ProcessingMS int64             `json:"processing_ms"`
	ProcessorMS  int64             `json:"processor_ms"`
	Metadata     map[string]string `json:"metadata"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`

	// PaymentPage: payment_url, receipt_url, expires_at, line_items and
	// the redirect URLs (see checkout.go).
	PaymentPage

	// CreationKey is the operation key of the request that created the
	// payment (the idempotency record's ID, or a random one): a retry of
	// that request finds the payment by it and resumes. Unique per scope.
	CreationKey string `json:"-"`
	// PendingAction is "capture" or "cancel" while such an operation has
	// been claimed and its processor call is not yet recorded;
	// PendingActionKey is the claiming request's operation key,
	// PendingAmount the amount to capture, PendingSince the claim time.
	PendingAction    string    `json:"-"`
	PendingActionKey string    `json:"-"`
	PendingAmount    int64     `json:"-"`
	PendingSince     time.Time `json:"-"`
	// SavePaymentMethod asks that the card be saved for CustomerID once
	// authorized: the phase that records a successful authorization saves
	// it and sets PaymentMethod.ID.
	SavePaymentMethod bool `json:"-"`
	// Version is incremented by every UpdatePayment; an update with a stale
	// Version fails with CodeConflict.
	Version int64 `json:"-"`
}

// Scope returns the payment's tenancy scope.
func (p *Payment) Scope() Scope { return Scope{MerchantID: p.MerchantID, Livemode: p.Livemode} }

// Pending actions on a payment.
const (
	PendingActionCapture = "capture"
	PendingActionCancel  = "cancel"
)

// AttemptStatus is the state of one processor attempt.
type AttemptStatus string

const (
	// AttemptStatusPending: created, and perhaps sent; no answer recorded.
	AttemptStatusPending        AttemptStatus = "pending"
	AttemptStatusAuthorized     AttemptStatus = "authorized"
	AttemptStatusCaptured       AttemptStatus = "captured"
	AttemptStatusRequiresAction AttemptStatus = "requires_action"
	AttemptStatusDeclined       AttemptStatus = "declined"
	AttemptStatusFailed         AttemptStatus = "failed"
	// AttemptStatusVoidedLate: the attempt was recorded failed after an
	// unknown outcome, the processor showed an authorization for it
	// later, and Payloom voided it there. AttemptStatusRefundedLate: the
	// same, but the processor had captured it, so Payloom refunded it.
	// Neither changes the payment, which never had those funds.
	AttemptStatusVoidedLate   AttemptStatus = "voided_late"
	AttemptStatusRefundedLate AttemptStatus = "refunded_late"
)

// LateCheck is where an attempt stands in the watch for late
// authorizations: an attempt recorded failed after an unknown outcome (the
// processor did not answer, then had no record of it) may still be
// authorized by the processor later, and Payloom must not leave that hold
// on the shopper's card. The engine's late-check job asks the processor
// again, with backoff, for a while (LateCheckWatching); when it finds an
// authorization it commits the reversal it is about to send
// (LateCheckVoidPending or LateCheckRefundPending, sent under a key derived
// from the attempt) so that a crash repeats the same request instead of
// forgetting it, then records the outcome.
type LateCheck string

const (
	LateCheckNone          LateCheck = ""
	LateCheckWatching      LateCheck = "watching"
	LateCheckVoidPending   LateCheck = "void_pending"
	LateCheckRefundPending LateCheck = "refund_pending"
	// LateCheckDone: the watch ended: the reversal succeeded, the window
	// passed with nothing found, or the processor answered that it holds
	// no authorization.
	LateCheckDone LateCheck = "done"
	// LateCheckFailed: the processor refused the reversal (or cannot do
	// it); an operator must settle it with the processor. Logged as an
	// error.
	LateCheckFailed LateCheck = "failed"
)

// Attempt is one authorization attempt at one processor. Its ID is the
// idempotency key sent to the processor, so a retried call after a crash is
// deduplicated by the processor: one attempt is at most one charge.
type Attempt struct {
	ID          string        `json:"id"`
	PaymentID   string        `json:"-"`
	Processor   string        `json:"processor"`
	Status      AttemptStatus `json:"status"`
	Code        string        `json:"code,omitempty"`
	DeclineCode string        `json:"decline_code,omitempty"`
	Message     string        `json:"message,omitempty"`
	// RawCode is the processor's own response code, unmapped.
	RawCode       string     `json:"raw_code,omitempty"`
	TransactionID string     `json:"transaction_id,omitempty"`
	DurationMS    int64      `json:"duration_ms"`
	CreatedAt     time.Time  `json:"created_at"`
	CompletedAt   *time.Time `json:"completed_at,omitempty"`

	// LateCheck is the attempt's state in the watch for late
	// authorizations; LateCheckAt is when the late-check job next looks
	// at it, set exactly while the watch is active (watching or a
	// reversal pending) and zero otherwise.
	LateCheck   LateCheck `json:"-"`
	LateCheckAt time.Time `json:"-"`
}

// PaymentCreate is a validated request to create a payment. The card is
// either CardToken (tok_...) or PaymentMethodID (a saved pm_..., which must
// belong to CustomerID when that is set; the payment then takes the
// method's customer). SavePaymentMethod saves the card for CustomerID
// (which must then be an existing customer) after a successful
// authorization. A CustomerID with the "cus_" prefix must name an existing
// customer; any other value is kept as the merchant's own reference.
type PaymentCreate struct {
	Amount              int64
	Currency            Currency
	PaymentMethodType   PaymentMethodType
	CardToken           string
	PaymentMethodID     string
	SavePaymentMethod   bool
	CaptureMethod       CaptureMethod
	CustomerID          string
	Reference           string
	Description         string
	StatementDescriptor string
	Metadata            map[string]string
	// Processor, if set, is the name of the processor to try first; the
	// route supplies the fallbacks after it.
	Processor string
	// PageOptions apply to the hosted payment page; a request without a
	// payment method (CardToken and PaymentMethodType empty) creates a
	// payment in requires_payment_method to be paid there.
	PageOptions
}

// ListParams are the cursor and time filters common to every list. IDs sort
// by creation time, so cursors are object IDs. Lists are newest first.
type ListParams struct {
	// Limit is 1 to 100; the API defaults it to 10.
	Limit int
	// StartingAfter returns objects older than this ID; EndingBefore
	// returns objects newer than it (the ones closest to it), still newest
	// first. At most one is set.
	StartingAfter string
	EndingBefore  string
	CreatedGTE    *time.Time
	CreatedLTE    *time.Time
}

// PaymentFilter filters ListPayments.
type PaymentFilter struct {
	ListParams
	Status *PaymentStatus
}

// List is one page of a list, newest first. HasMore says whether more
// objects exist beyond this page in the direction of the cursor.
type List[T any] struct {
	Object  string `json:"object"` // "list"
	Data    []T    `json:"data"`
	HasMore bool   `json:"has_more"`
}
