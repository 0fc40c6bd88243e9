// Package engine is Payloom's payment engine: the payment state machine
// (create, authorize, capture, cancel, refund), the idempotency records that
// make every write safe to retry, API keys (with their permissions) and
// merchants, customers and their saved payment methods, the audit log, and
// the background loop that finishes work a crashed request left behind and
// purges old idempotency records: it runs on every node, and store leases
// make one node at a time do each job.
//
// Every write runs as a sequence of atomic phases, each one Store.Update, with
// the processor call between them. The processor call always carries a key
// derived from an object committed before the call (the attempt ID, "cap_" or
// "void_" plus the payment ID, the refund ID), so a retry after a crash at any
// point resumes from the last committed phase and the processor deduplicates
// the call: one attempt is at most one charge.
//
// A card payment may be routed over several processors (routing.go): after
// a soft decline or a failure before processing, the phase that records the
// answer also commits the next attempt, at the next processor of the route;
// an unknown outcome is settled only at its own processor, by Lookup or a
// resend under the same key (reconcile.go); an attempt the processor still
// has no record of after a grace period fails, and is watched for a late
// authorization, which is voided (latecheck.go). Circuit breakers
// (breaker.go) keep failing processors out of routes for a while.
//
// A card is saved for a customer only in the transaction that records a
// successful authorization, and key changes are audited in the transaction
// that makes them.
//
// The engine must never log, store or return a card number or CVC: it only
// holds a revealed card (payloom.CardData, whose fields are redacting
// Secrets) for the duration of one processor call. It must never create a
// second attempt for an authorization whose outcome is unknown, and the sum
// of a payment's pending and succeeded refunds must never exceed what was
// captured.
package engine

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/payloom/payloom"
)

// Defaults of Config.
const (
	DefaultLockTimeout      = 30 * time.Second
	DefaultIdempotencyTTL   = 24 * time.Hour
	DefaultProcessorTimeout = 20 * time.Second
	DefaultRecoveryInterval = 10 * time.Second
	DefaultPurgeInterval    = time.Minute
)

// Fault-hook phases, in the order a request reaches them. Config.FaultHook is
// called with one of these right after the phase has committed (or, for the
// *_called phases, right after the processor answered and before the answer
// is recorded), so a test or the crash harness can stop the process there.
const (
	PhasePaymentCreated  = "payment_created"
	PhaseProcessorCalled = "processor_called"
	PhasePaymentRecorded = "payment_recorded"
	PhaseActionClaimed   = "action_claimed"
	PhaseActionCalled    = "action_called"
	PhaseActionRecorded  = "action_recorded"
	PhaseRefundCreated   = "refund_created"
	PhaseRefundCalled    = "refund_called"
	PhaseRefundRecorded  = "refund_recorded"
	// The late-check job (latecheck.go): the reversal of a late
	// authorization is committed pending, sent, then recorded.
	PhaseLateReversalClaimed  = "late_reversal_claimed"
	PhaseLateReversalCalled   = "late_reversal_called"
	PhaseLateReversalRecorded = "late_reversal_recorded"
)

// Config wires an Engine. Store and Vault are required.
type Config struct {
	Store payloom.Store
	Vault payloom.Vault
	// Processor returns the connector for a scope (the sandbox in test
	// mode). An error means no processor is configured for that mode.
	Processor func(scope payloom.Scope) (payloom.Processor, error)
	// Clock defaults to time.Now.
	Clock payloom.Clock
	// Logger defaults to a logger that discards everything.
	Logger *slog.Logger
	// LockTimeout is the idempotency lease of a request and the age after
	// which unfinished work counts as abandoned and is recovered (default
	// 30s).
	LockTimeout time.Duration
	// IdempotencyTTL is how long idempotency records are kept (default 24h).
	IdempotencyTTL time.Duration
	// ProcessorTimeout bounds one processor call (default 20s). It must be
	// shorter than LockTimeout so that a request finishes its call before
	// its lease can be taken over; a larger value is cut to 2/3 of
	// LockTimeout.
	ProcessorTimeout time.Duration
	// FaultHook, when set, is called with a Phase* name after each phase.
	// Only tests and the crash harness set it.
	FaultHook func(phase string)
	// RecoveryInterval (default 10s) and PurgeInterval (default 1m) pace
	// RunBackground. Each job's lease lasts three of its intervals.
	RecoveryInterval time.Duration
	PurgeInterval    time.Duration
	// NodeID names this engine as the owner of the background jobs'
	// leases. It must differ between processes sharing a store; the
	// default, hostname-pid-random, does.
	NodeID string
	// PublicURL is the base URL shoppers reach this server at (no
	// trailing slash): payment_url, receipt_url, next_action and the
	// processor's return URL are built on it. Empty gives URLs relative
	// to the server.
	PublicURL string
	// ExpiryInterval (default 1m) paces the job that expires unpaid
	// payments past their expires_at.
	ExpiryInterval time.Duration
	// Router, when set, chooses the processors of each card payment and
	// enables fallback (see Router); MaxAttempts (default 3) bounds a
	// payment's attempts across them, per confirmation of a hosted-page
	// payment. MaxPaymentAttempts (default 10) bounds all the attempts of
	// one payment, whatever the confirmations: past it ConfirmPayment
	// answers CodeTooManyAttempts, so that a payment page cannot be used
	// to test card after card.
	Router             Router
	MaxAttempts        int
	MaxPaymentAttempts int
	// BreakerFailures (default 5) consecutive errors of a processor open
	// its circuit breaker for BreakerCoolDown (default 30s): routing skips
	// it (see ProcessorHealth). Only routes of a Router are filtered.
	BreakerFailures int
	BreakerCoolDown time.Duration
	// LookupGrace (default 5m, never shorter than ProcessorTimeout) is
	// how long a pending attempt that its processor's Lookup does not find
	// is sent again under the same key: the request may never have been
	// sent (a crash between committing the attempt and calling). Past it
	// the attempt is only looked up, and once it is older than
	// LookupGrace + ProcessorTimeout + the processor's
	// Capabilities.LookupLag (so that every send is older than the lag),
	// "not found" fails the attempt and the payment
	// (not_found_at_processor) and the attempt is watched for a late
	// authorization.
	LookupGrace time.Duration
	// LateCheckInterval (default 1m) paces the job that watches attempts
	// failed after an unknown outcome, and is the shortest delay between
	// two lookups of one attempt (the delay grows with the attempt's
	// age, to at most an hour). LateCheckWindow (default 7 days) is how
	// long after failing an attempt is watched.
	LateCheckInterval time.Duration
	LateCheckWindow   time.Duration
}

// Engine implements the payment, idempotency and auth services.
type Engine struct {
	store            payloom.Store
	vault            payloom.Vault
	processor        func(payloom.Scope) (payloom.Processor, error)
	clock            payloom.Clock
	log              *slog.Logger
	lockTimeout      time.Duration
	ttl              time.Duration
	processorTimeout time.Duration
	faultHook        func(string)
	recoveryInterval time.Duration
	purgeInterval    time.Duration
	node             string
	publicURL        string
	expiryInterval   time.Duration
	router           Router
	maxAttempts      int
	maxPayAttempts   int
	breakers         *breakers
	lookupGrace      time.Duration
	lateInterval     time.Duration
	lateWindow       time.Duration

	// leasesMu guards held: which job leases this engine believes it
	// holds, to log changes and release them on shutdown.
	leasesMu sync.Mutex
	held     map[string]bool
}

var (
	_ payloom.PaymentService     = (*Engine)(nil)
	_ payloom.IdempotencyService = (*Engine)(nil)
	_ payloom.AuthService        = (*Engine)(nil)
)

// New returns an engine. It panics if Store or Vault is nil: that is a wiring
// bug, not a runtime condition.
func New(cfg Config) *Engine {
	if cfg.Store == nil || cfg.Vault == nil {
		panic("engine: Config.Store and Config.Vault are required")
	}
	e := &Engine{
		store:            cfg.Store,
		vault:            cfg.Vault,
		processor:        cfg.Processor,
		clock:            cfg.Clock,
		log:              cfg.Logger,
		lockTimeout:      cfg.LockTimeout,
		ttl:              cfg.IdempotencyTTL,
		processorTimeout: cfg.ProcessorTimeout,
		faultHook:        cfg.FaultHook,
		recoveryInterval: cfg.RecoveryInterval,
		purgeInterval:    cfg.PurgeInterval,
		node:             cfg.NodeID,
		held:             map[string]bool{},
		publicURL:        strings.TrimRight(cfg.PublicURL, "/"),
		expiryInterval:   cfg.ExpiryInterval,
		router:           cfg.Router,
		maxAttempts:      cfg.MaxAttempts,
		maxPayAttempts:   cfg.MaxPaymentAttempts,
		breakers:         &breakers{m: map[breakerKey]*breaker{}, failures: cfg.BreakerFailures, coolDown: cfg.BreakerCoolDown},
		lookupGrace:      cfg.LookupGrace,
		lateInterval:     cfg.LateCheckInterval,
		lateWindow:       cfg.LateCheckWindow,
	}
	if e.breakers.failures <= 0 {
		e.breakers.failures = DefaultBreakerFailures
	}
	if e.breakers.coolDown <= 0 {
		e.breakers.coolDown = DefaultBreakerCoolDown
	}
	if e.maxAttempts <= 0 {
		e.maxAttempts = DefaultMaxAttempts
	}
	if e.maxPayAttempts <= 0 {
		e.maxPayAttempts = DefaultMaxPaymentAttempts
	}
	if e.processor == nil {
		e.processor = func(s payloom.Scope) (payloom.Processor, error) {
			return nil, errors.New("no processor configured")
		}
	}
	if e.clock == nil {
		e.clock = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.lockTimeout <= 0 {
		e.lockTimeout = DefaultLockTimeout
	}
	if e.ttl <= 0 {
		e.ttl = DefaultIdempotencyTTL
	}
	if e.processorTimeout <= 0 {
		e.processorTimeout = DefaultProcessorTimeout
	}
	if e.processorTimeout >= e.lockTimeout {
		e.processorTimeout = e.lockTimeout * 2 / 3
	}
	if e.recoveryInterval <= 0 {
		e.recoveryInterval = DefaultRecoveryInterval
	}
	if e.purgeInterval <= 0 {
		e.purgeInterval = DefaultPurgeInterval
	}
	if e.node == "" {
		e.node = defaultNodeID()
	}
	if e.expiryInterval <= 0 {
		e.expiryInterval = DefaultExpiryInterval
	}
	if e.lookupGrace <= 0 {
		e.lookupGrace = DefaultLookupGrace
	}
	if e.lookupGrace < e.processorTimeout {
		e.lookupGrace = e.processorTimeout
	}
	if e.lateInterval <= 0 {
		e.lateInterval = DefaultLateCheckInterval
	}
	if e.lateWindow <= 0 {
		e.lateWindow = DefaultLateCheckWindow
	}
	return e
}

// now returns the clock's time in UTC at microsecond precision: what every
// store keeps, so an object returned by a write equals the object read back.
func (e *Engine) now() time.Time { return e.clock().UTC().Truncate(time.Microsecond) }

func (e *Engine) fault(phase string) {
	if e.faultHook != nil {
		e.faultHook(phase)
	}
}

// maxConflictRetries bounds how often one phase is re-run after a concurrent
// writer won a version check. Phases re-read their rows inside the
// transaction, so a conflict is rare and a handful of retries is plenty.
const maxConflictRetries = 10

// update runs fn in a write transaction, re-running it (fn re-reads and
// re-decides) when a version check lost to a concurrent writer. Failures that
// are not application errors are store failures and are logged.
func (e *Engine) update(ctx context.Context, op string, fn func(tx payloom.Tx) error) error {
	var err error
	for range maxConflictRetries {
		err = e.store.Update(ctx, fn)
		if !payloom.IsCode(err, payloom.CodeConflict) {
			break
		}
	}
	// errStaleKnown is the engine's own signal to re-run a phase, not a
	// store failure.
	if err != nil && payloom.ErrorCode(err) == payloom.CodeInternal && !errors.Is(err, errStaleKnown) {
		e.log.ErrorContext(ctx, "store update failed", "op", op, "err", err)
	}
	if payloom.IsCode(err, payloom.CodeConflict) {
		// Still losing after every retry: report it as unavailable, the
		// client may retry with the same key.
		return &payloom.Error{Code: payloom.CodeUnavailable, Message: "the object is being changed by another request; retry", Err: err}
	}
	return err
}

// view runs fn in a read transaction and logs store failures.
func (e *Engine) view(ctx context.Context, op string, fn func(tx payloom.Tx) error) error {
	err := e.store.View(ctx, fn)
	if err != nil && payloom.ErrorCode(err) == payloom.CodeInternal {
		e.log.ErrorContext(ctx, "store read failed", "op", op, "err", err)
	}
	return err
}

// processorFor returns the scope's processor, or CodeInvalidState when the
// mode has none.
func (e *Engine) processorFor(scope payloom.Scope) (payloom.Processor, error) {
	p, err := e.processor(scope)
	if err != nil || p == nil {
		return nil, &payloom.Error{
			Code:    payloom.CodeInvalidState,
			Message: "no processor is configured for " + scope.Mode() + " mode",
			Err:     err,
		}
	}
	return p, nil
}

// processorNamed returns the scope's processor and checks it is the one an
// earlier phase sent work to: resuming at another processor would not be
// deduplicated.
func (e *Engine) processorNamed(scope payloom.Scope, name string) (payloom.Processor, error) {
	if e.router != nil && name != "" {
		return e.routerNamed(scope, name)
	}
	p, err := e.processorFor(scope)
	if err != nil {
		return nil, err
	}
	if name != "" && p.Name() != name {
		return nil, &payloom.Error{
			Code:    payloom.CodeUnavailable,
			Message: "the processor this operation was sent to is not configured",
			Err:     errors.New("engine: configured processor " + p.Name() + ", operation at " + name),
		}
	}
	return p, nil
}

// detached returns a context that is not canceled with the request's: once
// a processor call has been started, its outcome is recorded even if the
// client went away.
func detached(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func addEvent(ctx context.Context, tx payloom.Tx, scope payloom.Scope, typ payloom.EventType, id string, obj any, now time.Time) error {
	ev, err := payloom.NewEvent(scope, typ, id, obj, now)
	if err != nil {
		return err
	}
	return tx.CreateEvent(ctx, ev)
}

func ptr[T any](v T) *T { return &v }
