package payloom

import "time"

// RefundStatus is where a refund stands.
type RefundStatus string

const (
	// RefundStatusPending: reserved against the payment, processor call
	// not yet recorded.
	RefundStatusPending   RefundStatus = "pending"
	RefundStatusSucceeded RefundStatus = "succeeded"
	RefundStatusFailed    RefundStatus = "failed"
)

// Refund reasons.
const (
	RefundReasonDuplicate           = "duplicate"
	RefundReasonFraudulent          = "fraudulent"
	RefundReasonRequestedByCustomer = "requested_by_customer"
)

// Refund returns some or all of a captured payment's amount. A pending or
// succeeded refund counts in the payment's AmountRefunded, which never
// exceeds AmountCaptured.
type Refund struct {
	ID            string            `json:"id"`
	Object        string            `json:"object"` // "refund"
	MerchantID    string            `json:"merchant_id"`
	Livemode      bool              `json:"livemode"`
	PaymentID     string            `json:"payment_id"`
	Amount        int64             `json:"amount"`
	Currency      Currency          `json:"currency"`
	Status        RefundStatus      `json:"status"`
	Reason        string            `json:"reason,omitempty"`
	TransactionID string            `json:"transaction_id,omitempty"`
	Failure       *Failure          `json:"failure,omitempty"`
	Metadata      map[string]string `json:"metadata"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`

	// CreationKey is the operation key of the creating request (see
	// Payment.CreationKey). Unique per scope.
	CreationKey string `json:"-"`
	Version     int64  `json:"-"`
}

// RefundCreate is a validated request to refund a payment. Amount nil means
// the whole refundable remainder.
type RefundCreate struct {
	PaymentID string
	Amount    *int64
	Reason    string
	Metadata  map[string]string
}

// RefundFilter filters ListRefunds.
type RefundFilter struct {
	ListParams
	PaymentID *string
}
