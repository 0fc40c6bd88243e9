package payloom

import (
	"context"
	"time"
)

// Store is Payloom's durable state. Implementations: sqlite (embedded, the
// default) and postgres. Both pass the one contract suite in storetest.
//
// All work happens in transactions. Update runs fn in a read-write
// transaction and commits it if fn returns nil; a commit that returns nil
// is durable (on disk, fsynced). Implementations may run fn more than once
// (PostgreSQL serialization failures, SQLite busy), so fn must not have side
// effects outside the transaction. View runs fn in a read-only transaction
// and may run concurrently with other Views and an Update.
//
// An implementation may run the fns of concurrent Updates in one database
// transaction, in queue order (the sqlite store does, to share one fsync):
// a fn then sees the committed effects of the fns before it, its error
// undoes only its own writes, and nil is still returned only once the shared
// commit is durable. The sqlite store runs a group without savepoints first
// and, when a fn fails, rolls the group back and runs it again with a
// savepoint around each fn: every fn of the group may then run twice, the
// failing one too, and its caller gets the answer of the run whose outcome
// is committed (or not). Calling Update from
// inside an Update's fn is not allowed.
//
// Inside an Update, every Get* method that reads a row the transaction may
// then update locks that row until commit (SELECT ... FOR UPDATE on
// PostgreSQL; SQLite write transactions are exclusive).
type Store interface {
	Update(ctx context.Context, fn func(tx Tx) error) error
	View(ctx context.Context, fn func(tx Tx) error) error
	// Ping checks the store is reachable.
	Ping(ctx context.Context) error
	Close() error
}

// Tx is one transaction. Methods return *Error codes: CodeNotFound for a
// missing row (also for a row that exists in another scope),
// CodeAlreadyExists for a unique violation, CodeConflict for an update with
// a stale Version. Any other error is a store failure.
//
// Create* methods store the object as given (the caller sets IDs and
// times); Update* methods write every mutable field. Maps and slices that
// are nil are stored empty and read back non-nil-empty.
type Tx interface {
	// Merchants and API keys.
	CreateMerchant(ctx context.Context, m *Merchant) error
	GetMerchant(ctx context.Context, id string) (*Merchant, error)
	UpdateMerchant(ctx context.Context, m *Merchant) error
	CountMerchants(ctx context.Context) (int, error)
	CreateAPIKey(ctx context.Context, k *APIKey) error
	GetAPIKey(ctx context.Context, id string) (*APIKey, error)
	// GetAPIKeyByLookup finds a key (revoked or not) by its Lookup.
	GetAPIKeyByLookup(ctx context.Context, lookup string) (*APIKey, error)
	// UpdateAPIKey writes RevokedAt.
	UpdateAPIKey(ctx context.Context, k *APIKey) error

	// Cards (the vault's rows).
	CreateCard(ctx context.Context, c *Card) error
	GetCard(ctx context.Context, scope Scope, id string) (*Card, error)

	// Payments, with their attempts. GetPayment fills Attempts in creation
	// order. UpdatePayment checks p.Version, writes every mutable field
	// (not attempts) and increments p.Version.
	CreatePayment(ctx context.Context, p *Payment) error
	GetPayment(ctx context.Context, scope Scope, id string) (*Payment, error)
	GetPaymentByCreationKey(ctx context.Context, scope Scope, key string) (*Payment, error)
	UpdatePayment(ctx context.Context, p *Payment) error
	// ListPayments returns a page newest first and whether more exist in
	// the cursor's direction. Attempts are filled.
	ListPayments(ctx context.Context, scope Scope, f PaymentFilter) ([]*Payment, bool, error)
	// ListStalePayments returns payments (any scope) that have a pending
	// attempt or a pending action begun before the cutoff: work a crashed
	// request left behind. At most limit rows, oldest first.
	ListStalePayments(ctx context.Context, before time.Time, limit int) ([]*Payment, error)
	// ListLateCheckPayments returns payments (any scope) that have an
	// attempt whose LateCheckAt is set and not after due: attempts the
	// watch for late authorizations must look at now. At most limit rows,
	// oldest payment first; attempts are filled.
	ListLateCheckPayments(ctx context.Context, due time.Time, limit int) ([]*Payment, error)
	// UpdateAttempt writes every mutable field of the attempt (all but
	// ID, PaymentID and CreatedAt); CodeNotFound if it does not exist.
	CreateAttempt(ctx context.Context, a *Attempt) error
	UpdateAttempt(ctx context.Context, a *Attempt) error

	// Refunds. UpdateRefund checks and increments Version like payments.
	CreateRefund(ctx context.Context, r *Refund) error
	GetRefund(ctx context.Context, scope Scope, id string) (*Refund, error)
	GetRefundByCreationKey(ctx context.Context, scope Scope, key string) (*Refund, error)
	UpdateRefund(ctx context.Context, r *Refund) error
	ListRefunds(ctx context.Context, scope Scope, f RefundFilter) ([]*Refund, bool, error)
	// ListStaleRefunds returns pending refunds (any scope) created before
	// the cutoff, oldest first, at most limit.
	ListStaleRefunds(ctx context.Context, before time.Time, limit int) ([]*Refund, error)

	// Events. CreateEvent marks the event fanned out at once (as
	// MarkEventDispatched at its CreatedAt would) when its scope has no
	// enabled webhook endpoint at that moment: nothing would deliver it, and
	// the fan-out need not read and write it again. An endpoint receives
	// only events created after it (see the fan-out), so none is missed,
	// except one enabled or created concurrently with the event's
	// transaction, which the event's own transaction cannot see.
	CreateEvent(ctx context.Context, e *Event) error
	GetEvent(ctx context.Context, scope Scope, id string) (*Event, error)
	ListEvents(ctx context.Context, scope Scope, f EventFilter) ([]*Event, bool, error)

	// Idempotency keys. CreateIdempotencyKey returns CodeAlreadyExists when
	// (scope, Key) exists, and the transaction stays usable afterwards.
	// UpdateIdempotencyKey writes lock and response fields.
	CreateIdempotencyKey(ctx context.Context, k *IdempotencyKey) error
	GetIdempotencyKey(ctx context.Context, scope Scope, key string) (*IdempotencyKey, error)
	UpdateIdempotencyKey(ctx context.Context, k *IdempotencyKey) error
	// CompleteIdempotencyKey stores k's ResponseCode, ResponseBody and
	// CompletedAt and clears its lock, in one conditional write: only if
	// record k.ID is still held under token and not completed;
	// CodeNotFound otherwise (completed, released, taken over or gone).
	CompleteIdempotencyKey(ctx context.Context, k *IdempotencyKey, token string) error
	// DeleteIdempotencyKey deletes the record k.ID in k's scope.
	// CodeNotFound if it does not exist there.
	DeleteIdempotencyKey(ctx context.Context, k *IdempotencyKey) error
	// DeleteIdempotencyKeysBefore deletes at most limit records created
	// before the cutoff, oldest first, and returns how many: a purge runs
	// in bounded transactions, however far behind it is.
	DeleteIdempotencyKeysBefore(ctx context.Context, before time.Time, limit int) (int64, error)

	// Webhook endpoints. UpdateWebhookEndpoint checks and increments
	// Version like payments. DeleteWebhookEndpoint returns CodeNotFound for
	// an unknown endpoint; the endpoint's deliveries and attempts stay.
	// ListEnabledWebhookEndpoints returns every enabled endpoint of the
	// scope, oldest first (fan-out reads it).
	CreateWebhookEndpoint(ctx context.Context, e *WebhookEndpoint) error
	GetWebhookEndpoint(ctx context.Context, scope Scope, id string) (*WebhookEndpoint, error)
	UpdateWebhookEndpoint(ctx context.Context, e *WebhookEndpoint) error
	DeleteWebhookEndpoint(ctx context.Context, scope Scope, id string) error
	ListWebhookEndpoints(ctx context.Context, scope Scope, p ListParams) ([]*WebhookEndpoint, bool, error)
	ListEnabledWebhookEndpoints(ctx context.Context, scope Scope) ([]*WebhookEndpoint, error)

	// Webhook fan-out. Events are fanned out exactly once: inside one
	// Update, ListUndispatchedEvents returns events (any scope) not yet
	// marked, oldest first, at most limit; the caller creates their
	// deliveries and MarkEventDispatched each one. Inside an Update the
	// returned events are locked until commit and events another
	// transaction holds are skipped (SKIP LOCKED on PostgreSQL; SQLite
	// write transactions are exclusive), so nodes fanning out at once never
	// take the same event. A flag, not an ID cursor: IDs from several nodes
	// commit out of order, and a cursor would skip a late commit.
	// MarkEventDispatched returns CodeNotFound for an unknown event.
	ListUndispatchedEvents(ctx context.Context, limit int) ([]*Event, error)
	MarkEventDispatched(ctx context.Context, id string, at time.Time) error

	// Webhook deliveries. UpdateWebhookDelivery checks and increments
	// Version (CodeConflict when stale, CodeNotFound when missing).
	// ClaimWebhookDeliveries atomically leases up to limit deliveries
	// (any scope) that are pending, due (NextAttemptAt <= now) and not
	// leased (LeaseUntil <= now): it sets LeaseOwner = owner and LeaseUntil
	// = leaseUntil, increments Version and returns them, earliest due
	// first. Concurrent claims never return the same delivery while its
	// lease runs. ListWebhookDeliveries lists an event's deliveries, oldest
	// first.
	CreateWebhookDelivery(ctx context.Context, d *WebhookDelivery) error
	GetWebhookDelivery(ctx context.Context, scope Scope, id string) (*WebhookDelivery, error)
	UpdateWebhookDelivery(ctx context.Context, d *WebhookDelivery) error
	ClaimWebhookDeliveries(ctx context.Context, now time.Time, owner string, leaseUntil time.Time, limit int) ([]*WebhookDelivery, error)
	ListWebhookDeliveries(ctx context.Context, scope Scope, eventID string) ([]*WebhookDelivery, error)
	// Webhook attempts are append-only. ListWebhookAttempts lists an
	// event's attempts in the scope, oldest first.
	CreateWebhookAttempt(ctx context.Context, a *WebhookAttempt) error
	ListWebhookAttempts(ctx context.Context, scope Scope, eventID string) ([]*WebhookAttempt, error)

	// The sandbox processor's ledger. CreateSandboxOperation returns
	// CodeAlreadyExists for a known Key and the transaction stays usable.
	CreateSandboxOperation(ctx context.Context, op *SandboxOperation) error
	GetSandboxOperation(ctx context.Context, key string) (*SandboxOperation, error)
	// CountSandboxOperations counts operations of a kind whose
	// TransactionID is given ("" counts every one of that kind).
	CountSandboxOperations(ctx context.Context, kind, transactionID string) (int, error)

	// The hosted payment page's lookups (checkout.go).
	CheckoutTx

	// Processor accounts (processoraccount.go).
	ProcessorAccountTx
	RoutingTx

	// Leases let background jobs run on every node yet do each job once:
	// a node works on the job named name only while it holds the job's
	// lease, and a dead node's lease expires.
	//
	// AcquireLease gives the lease to owner until `until` if it is free,
	// expired (its until <= now) or already owner's (a renewal, which moves
	// its end to until), and reports whether owner holds it now. Losing to
	// another owner is not an error, and the transaction stays usable.
	// Inside an Update the lease stays locked until commit whether owner
	// got it or not (the row lock on PostgreSQL; SQLite write transactions
	// are exclusive), so transactions that begin by acquiring the same
	// lease run one after the other: Bootstrap relies on that.
	// ReleaseLease ends owner's lease at once, so that another node may
	// take it without waiting for it to expire; it does nothing when owner
	// does not hold the lease (it expired and was taken over).
	AcquireLease(ctx context.Context, name, owner string, now, until time.Time) (bool, error)
	ReleaseLease(ctx context.Context, name, owner string) error

	// --- Customers, saved payment methods and the audit log (issue 4). ---

	// Customers. UpdateCustomer writes every mutable field.
	// DeleteCustomer deletes the customer and its saved payment methods;
	// CodeNotFound if it does not exist in the scope. CreateCustomer
	// returns CodeAlreadyExists for a CreationKey used in the scope, and
	// the transaction stays usable.
	CreateCustomer(ctx context.Context, c *Customer) error
	GetCustomer(ctx context.Context, scope Scope, id string) (*Customer, error)
	GetCustomerByCreationKey(ctx context.Context, scope Scope, key string) (*Customer, error)
	UpdateCustomer(ctx context.Context, c *Customer) error
	DeleteCustomer(ctx context.Context, scope Scope, id string) error
	ListCustomers(ctx context.Context, scope Scope, f CustomerFilter) ([]*Customer, bool, error)

	// Saved payment methods. CreatePaymentMethod returns CodeNotFound for
	// a customer not in the scope, CodeAlreadyExists when the customer
	// already has a method with the card's fingerprint (the transaction
	// stays usable). GetPaymentMethodByFingerprint finds that one.
	// UpdatePaymentMethod writes CardToken, Card and UpdatedAt.
	CreatePaymentMethod(ctx context.Context, m *SavedPaymentMethod) error
	GetPaymentMethod(ctx context.Context, scope Scope, id string) (*SavedPaymentMethod, error)
	GetPaymentMethodByFingerprint(ctx context.Context, scope Scope, customerID, fingerprint string) (*SavedPaymentMethod, error)
	UpdatePaymentMethod(ctx context.Context, m *SavedPaymentMethod) error
	DeletePaymentMethod(ctx context.Context, scope Scope, id string) error
	ListPaymentMethods(ctx context.Context, scope Scope, customerID string, p ListParams) ([]*SavedPaymentMethod, bool, error)

	// The audit log is append-only. ListAuditEvents returns a page newest
	// first and whether more exist in the cursor's direction.
	CreateAuditEvent(ctx context.Context, e *AuditEvent) error
	ListAuditEvents(ctx context.Context, f AuditFilter) ([]*AuditEvent, bool, error)

	// --- The vault's key management (issue 4): envelope encryption. ---

	// Key-encryption keys (KEKs), never their material. CreateVaultKEK
	// returns CodeAlreadyExists for a known ID or a second primary, and the
	// transaction stays usable. ListVaultKEKs lists every KEK, oldest
	// first. PromoteVaultKEK makes the KEK the only primary: CodeNotFound
	// for an unknown ID, CodeConflict for a retired one. RetireVaultKEK
	// sets RetiredAt: CodeNotFound for an unknown ID, CodeConflict while
	// the KEK is primary, wraps a data key or is the KeyID of a card; a
	// retired KEK stays as it is.
	CreateVaultKEK(ctx context.Context, k *VaultKEK) error
	GetVaultKEK(ctx context.Context, id string) (*VaultKEK, error)
	ListVaultKEKs(ctx context.Context) ([]*VaultKEK, error)
	PromoteVaultKEK(ctx context.Context, id string) error
	RetireVaultKEK(ctx context.Context, id string, at time.Time) error

	// Data-encryption keys (DEKs), one per merchant, stored wrapped.
	// CreateVaultDEK returns CodeAlreadyExists when the merchant has one
	// (the transaction stays usable) and CodeNotFound for an unknown
	// merchant. RewrapVaultDEK writes KEKID, Wrapped and UpdatedAt, checks
	// and increments Version (CodeConflict when stale, CodeNotFound when
	// missing). Both return CodeConflict unless KEKID is the primary KEK,
	// and inside an Update they hold the primary's row until commit, so
	// that a promotion waits for them: nothing is ever wrapped by a KEK
	// after it stopped being primary. ListVaultDEKsNotWrappedBy returns up
	// to limit DEKs (any merchant) wrapped by another KEK than kekID, by
	// ID. CountVaultDEKs counts the DEKs each KEK wraps.
	CreateVaultDEK(ctx context.Context, d *VaultDEK) error
	GetVaultDEK(ctx context.Context, id string) (*VaultDEK, error)
	GetVaultDEKByMerchant(ctx context.Context, merchantID string) (*VaultDEK, error)
	RewrapVaultDEK(ctx context.Context, d *VaultDEK) error
	ListVaultDEKsNotWrappedBy(ctx context.Context, kekID string, limit int) ([]*VaultDEK, error)
	CountVaultDEKs(ctx context.Context) (map[string]int, error)

	// Cards by the key that encrypted them, to re-encrypt them.
	// ListCardsByKeyID returns up to limit cards (any scope) whose KeyID is
	// keyID, by ID; CountCardsByKeyID counts them. ReencryptCard writes
	// c.Ciphertext and c.KeyID if the row's KeyID is still oldKeyID:
	// CodeConflict when it is not, CodeNotFound when the card is missing.
	ListCardsByKeyID(ctx context.Context, keyID string, limit int) ([]*Card, error)
	CountCardsByKeyID(ctx context.Context, keyID string) (int, error)
	ReencryptCard(ctx context.Context, c *Card, oldKeyID string) error
}
