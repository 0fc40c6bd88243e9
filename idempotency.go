package payloom

import (
	"context"
	"time"
)

// IdempotencyKey is the record of one client Idempotency-Key in one scope.
// While a request holds it, LockedUntil is in the future; a request that
// died leaves the lock to expire, and a retry with the same key then takes
// the record over and resumes the operation (OperationKey) where it stopped.
// When the request finished, the response is stored and replayed to every
// retry.
type IdempotencyKey struct {
	ID         string
	MerchantID string
	Livemode   bool
	Key        string
	// Fingerprint is a hash of method, path and canonical body; a reuse of
	// Key with another fingerprint is an idempotency_conflict.
	Fingerprint string
	Method      string
	Path        string
	// LockedUntil is the lease of the request executing under the key.
	LockedUntil time.Time
	// LockToken identifies the holder of the lease; updates by a holder
	// whose lease was taken over are refused.
	LockToken string
	// ResponseCode and ResponseBody are set when the request completed.
	ResponseCode int
	ResponseBody []byte
	CompletedAt  *time.Time
	CreatedAt    time.Time
}

// Completed reports whether a response is stored.
func (k *IdempotencyKey) Completed() bool { return k.CompletedAt != nil }

// Scope returns the key's scope.
func (k *IdempotencyKey) Scope() Scope { return Scope{MerchantID: k.MerchantID, Livemode: k.Livemode} }

// IdempotencyService claims, completes and releases idempotency keys.
type IdempotencyService interface {
	// Begin claims key for a request with the given fingerprint. It
	// returns the record and whether the caller now holds it:
	//   - held: a new record, or one whose holder's lease expired (resume
	//     the operation with record.ID as operation key);
	//   - not held and Completed(): replay ResponseCode/ResponseBody;
	// Errors: CodeIdempotencyConflict when the fingerprint differs,
	// CodeIdempotencyInProgress while another request holds the lease.
	Begin(ctx context.Context, scope Scope, key, method, path, fingerprint string) (rec *IdempotencyKey, held bool, err error)
	// Complete stores the response and releases the lease. It fails with
	// CodeIdempotencyInProgress if the lease was lost.
	Complete(ctx context.Context, rec *IdempotencyKey, code int, body []byte) error
	// Abandon deletes a held record whose request changed nothing (the
	// engine rejected it with CodeValidation or CodeNotFound), so that the
	// client may send a corrected request under the same key. It fails
	// with CodeIdempotencyInProgress if the lease was lost.
	Abandon(ctx context.Context, rec *IdempotencyKey) error
	// Release gives up the lease without a response (after a server-side
	// error) so that a retry resumes at once.
	Release(ctx context.Context, rec *IdempotencyKey) error
	// Purge deletes records created before the cutoff and returns how many.
	Purge(ctx context.Context, before time.Time) (int64, error)
}

// Claim hands a new Idempotency-Key to the write itself: the write claims
// the key in its own first transaction and stores its response in the
// transaction that records its outcome, where the API would otherwise run
// IdempotencyService.Begin and Complete as transactions of their own. On
// the hot path (creating a card payment) that is two commits fewer per
// request, with the same guarantees: the record and the payment appear
// together, and the response is stored with the outcome it shows.
//
// The API fills in the request's side. The write sets Record once its first
// transaction claimed the key, or may have (a store error at its commit;
// the caller then releases it) (the record is then held by this request, as
// after a Begin that returned held) and Completed, Code and Body once a
// transaction stored the response. A write that returns with Record nil
// claimed nothing and changed nothing: the key had a record already (a
// retry, a conflict) or the request failed a check first, and the API takes
// its usual path (Begin, which replays, refuses or resumes).
type Claim struct {
	Scope       Scope
	Key         string
	Method      string
	Path        string
	Fingerprint string
	// Respond renders the write's result as the response the API sends;
	// ok false means the response must not be stored (the API completes
	// or releases the record itself).
	Respond func(v any) (code int, body []byte, ok bool)

	// Record is the claimed record, held by this request.
	Record *IdempotencyKey
	// Completed reports that Code and Body are stored under Record: the
	// API sends exactly them.
	Completed bool
	Code      int
	Body      []byte
}

// ClaimingPaymentService is a PaymentService that can create a payment
// under a Claim. It must claim and complete keys in the same records as the
// IdempotencyService the caller uses for everything else (the engine is
// both): the exclusion between requests with one key rests on it.
type ClaimingPaymentService interface {
	// CreatePaymentClaimed is CreatePayment under a new Idempotency-Key:
	// the key is claimed in the transaction that creates the payment (its
	// record's ID is the operation key) and, when the payment's outcome
	// is recorded by this call, completed in the transaction that records
	// it. See Claim for what the caller does with the result.
	CreatePaymentClaimed(ctx context.Context, claim *Claim, req *PaymentCreate) (*Payment, error)
}
