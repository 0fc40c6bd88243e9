// Package postgres is Payloom's production store: payloom.Store on one
// PostgreSQL database (pgx v5 and a connection pool), shared by any number
// of identical `payloom serve` nodes.
//
// Update runs READ COMMITTED with row locks: inside it, every Get* of a row
// the transaction may change is SELECT ... FOR NO KEY UPDATE (FOR UPDATE
// without blocking foreign key checks), so two nodes touching one payment
// queue on its row instead of overwriting each other, and the Version check
// on UpdatePayment/UpdateRefund catches whatever was read outside a lock.
// Unique constraints decide every race to create (payment creation keys,
// idempotency keys, sandbox operations); inserts use ON CONFLICT DO NOTHING
// so that losing such a race is a CodeAlreadyExists answer and the
// transaction carries on. Serialization failures and deadlocks are retried
// here, with backoff, by running fn again; callers see them only as
// CodeUnavailable once the retries are spent.
//
// The package translates driver errors into payloom codes at its boundary
// and keeps its row shapes to itself. It must never store a card number in
// clear or a CVC (the domain hands it only ciphertext), and its errors never
// carry row values (a PgError's Detail, which may, is never formatted).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	neturl "net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payloom/payloom"
)

var _ payloom.Store = (*Store)(nil)

// SQLSTATE codes the package branches on.
const (
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
)

const (
	// maxAttempts bounds how often Update runs fn when the transaction
	// keeps failing with a serialization failure or deadlock.
	maxAttempts = 10
	// idleInTransactionTimeout is set on every session unless the URL
	// sets it: a node that hangs inside a transaction (a stuck process,
	// not a dead one: PostgreSQL notices those) releases its row locks
	// rather than block every other node on the same payment forever.
	idleInTransactionTimeout = "60s"
	// defaultMaxConns is the pool size unless the URL sets pool_max_conns
	// (pgxpool's own default, the number of CPUs, starves a node whose
	// requests wait on row locks).
	defaultMaxConns = 10
)

// Store is a payloom.Store on a PostgreSQL database. It is safe for
// concurrent use by many goroutines and many processes.
type Store struct {
	pool *pgxpool.Pool
	// updateIso is the isolation level of Update: READ COMMITTED. Tests
	// raise it to provoke serialization failures.
	updateIso pgx.TxIsoLevel
	// backoff returns the pause before running fn for the attempt'th time
	// (2, 3, ...).
	backoff func(attempt int) time.Duration
	// prepared is how keyed statements run (tx.prepared).
	prepared pgx.QueryExecMode
}

// Open connects to the database at url (postgres://user:pass@host:port/db?...,
// or a libpq key=value string). Pool size and timeouts are set in the URL as
// pgxpool reads them (pool_max_conns=20, pool_max_conn_lifetime=1h, ...).
// Without pool_max_conns the pool holds up to 10 connections. It pings the
// server, so that a wrong URL fails here; it does not create
// tables: call Migrate before first use.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse errors quote the URL and only try to hide the
		// password.
		return nil, errors.New("postgres: invalid database URL (check its syntax and parameters)")
	}
	params := connParams(url)
	if !params["pool_max_conns"] {
		cfg.MaxConns = defaultMaxConns
	}
	rp := cfg.ConnConfig.RuntimeParams
	if _, ok := rp["application_name"]; !ok {
		rp["application_name"] = "payloom"
	}
	if _, ok := rp["idle_in_transaction_session_timeout"]; !ok {
		rp["idle_in_transaction_session_timeout"] = idleInTransactionTimeout
	}
	// Statements are planned for their values, except keyed ones (see
	// Statement plans in tx.go): pgx sends a statement unnamed unless the
	// call asks for a prepared one, and plan_cache_mode=auto lets
	// PostgreSQL reuse the generic plan of a keyed statement. A URL that
	// chooses the statement handling gets it for every statement, each
	// planned for its values.
	prepared, planMode := pgx.QueryExecModeCacheStatement, "auto"
	if params["default_query_exec_mode"] || params["statement_cache_capacity"] || params["description_cache_capacity"] {
		prepared, planMode = cfg.ConnConfig.DefaultQueryExecMode, "force_custom_plan"
	} else {
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	}
	if _, ok := rp["plan_cache_mode"]; !ok {
		rp["plan_cache_mode"] = planMode
	}
	if err := checkExecMode(cfg.ConnConfig); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool, updateIso: pgx.ReadCommitted, backoff: backoff, prepared: prepared}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// connParams returns the names of the parameters a connection string sets:
// the query of a postgres:// URL, or the keys of a key=value string.
func connParams(conn string) map[string]bool {
	out := map[string]bool{}
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		if u, err := neturl.Parse(conn); err == nil {
			for k := range u.Query() {
				out[k] = true
			}
		}
		return out
	}
	for _, f := range strings.Fields(conn) {
		if k, _, ok := strings.Cut(f, "="); ok {
			out[k] = true
		}
	}
	return out
}

// checkExecMode refuses statement handling the store cannot work with,
// rather than fail every statement later.
func checkExecMode(c *pgx.ConnConfig) error {
	switch mode := c.DefaultQueryExecMode; {
	case mode == pgx.QueryExecModeExec || mode == pgx.QueryExecModeSimpleProtocol:
		// Without a description from the server, pgx guesses a
		// parameter's type from its Go type: a JSON document sent as
		// bytes would reach a json column as bytea text.
		name := "exec"
		if mode == pgx.QueryExecModeSimpleProtocol {
			name = "simple_protocol"
		}
		return fmt.Errorf("postgres: default_query_exec_mode=%s is not supported: use cache_statement, cache_describe or describe_exec", name)
	case mode == pgx.QueryExecModeCacheStatement && c.StatementCacheCapacity == 0:
		return errors.New("postgres: statement_cache_capacity=0 needs default_query_exec_mode=cache_describe or describe_exec")
	case mode == pgx.QueryExecModeCacheDescribe && c.DescriptionCacheCapacity == 0:
		return errors.New("postgres: description_cache_capacity=0 needs default_query_exec_mode=cache_statement or describe_exec")
	}
	return nil
}

// Pool returns the connection pool, for tools that need raw access (tests,
// operational commands). Payloom's own code goes through Update and View.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes every connection after the transactions in progress end.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Update runs fn in a READ COMMITTED transaction and commits it when fn
// returns nil. fn's own error is returned as is, after rollback. When the
// transaction fails with a serialization failure or a deadlock (whether fn
// returns that error, wraps it or swallows it), it is rolled back and fn runs
// again, up to maxAttempts times in all; then Update fails with
// CodeUnavailable. fn must not call Update or View itself.
func (s *Store) Update(ctx context.Context, fn func(tx payloom.Tx) error) error {
	for attempt := 1; ; attempt++ {
		retry, err := s.updateOnce(ctx, fn)
		if !retry {
			return err
		}
		if attempt >= maxAttempts {
			return &payloom.Error{Code: payloom.CodeUnavailable,
				Message: "the database is too busy to complete the request; retry it", Err: err}
		}
		t := time.NewTimer(s.backoff(attempt + 1))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// updateOnce runs fn in one transaction and reports whether running it again
// may succeed where this run failed.
func (s *Store) updateOnce(ctx context.Context, fn func(tx payloom.Tx) error) (retry bool, err error) {
	pt, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: s.updateIso})
	if err != nil {
		// Nothing was sent (a stale pooled connection, say): safe to retry.
		return pgconn.SafeToRetry(err) && ctx.Err() == nil, fmt.Errorf("postgres: begin: %w", err)
	}
	committed := false
	defer func() {
		// Covers fn's error and a panic in fn alike.
		if !committed {
			pt.Rollback(context.WithoutCancel(ctx))
		}
	}()
	t := &tx{tx: pt, update: true, prepared: s.prepared}
	if err := fn(t); err != nil {
		return t.retryErr != nil || isRetryable(err), err
	}
	if t.retryErr != nil {
		// fn swallowed the error, but the transaction is aborted: nothing
		// it did can commit.
		return true, t.retryErr
	}
	if err := pt.Commit(ctx); err != nil {
		// Only a definite 40001/40P01 is retried: any other commit error
		// may hide a commit that happened.
		return isRetryable(err), fmt.Errorf("postgres: commit: %w", err)
	}
	committed = true
	return false, nil
}

// View runs fn in a read-only REPEATABLE READ transaction: one consistent
// snapshot, so a payment and its attempts read by two statements agree.
// Read-only snapshots never fail to serialize. Writes inside fn fail.
func (s *Store) View(ctx context.Context, fn func(tx payloom.Tx) error) error {
	pt, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("postgres: begin read: %w", err)
	}
	defer pt.Rollback(context.WithoutCancel(ctx))
	return fn(&tx{tx: pt, prepared: s.prepared})
}

// backoff is exponential with full jitter in its upper half: 2-4 ms before
// the second run, doubling up to 128-256 ms.
func backoff(attempt int) time.Duration {
	d := 4 * time.Millisecond << min(attempt-2, 6)
	return d/2 + rand.N(d/2)
}

func isRetryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == codeSerializationFailure || pe.Code == codeDeadlockDetected
	}
	return false
}

func notFound(kind string) error {
	return &payloom.Error{Code: payloom.CodeNotFound, Message: "no such " + kind}
}

func alreadyExists(kind string) error {
	return &payloom.Error{Code: payloom.CodeAlreadyExists, Message: kind + " already exists"}
}

// dbError translates a driver error about an object of the given kind
// ("payment") into a payloom error. The server's message, which names tables
// and constraints but never values, is kept only in Err for logs.
func dbError(kind string, err error) error {
	if err == nil {
		return nil
	}
	var ae *payloom.Error
	if errors.As(err, &ae) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound(kind)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case codeUniqueViolation:
			return &payloom.Error{Code: payloom.CodeAlreadyExists, Message: kind + " already exists", Err: err}
		case codeForeignKeyViolation:
			return &payloom.Error{Code: payloom.CodeNotFound, Message: kind + " refers to an object that does not exist", Err: err}
		}
	}
	return fmt.Errorf("postgres: %s: %w", kind, err)
}
