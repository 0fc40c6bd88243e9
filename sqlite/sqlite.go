// Package sqlite is Payloom's embedded store: payloom.Store on one SQLite
// file (github.com/mattn/go-sqlite3), the default for a single node.
//
// The file is in WAL mode with synchronous=FULL, so a commit that returns nil
// is on disk. Writes go through one dedicated connection that opens every
// transaction with BEGIN IMMEDIATE: writers queue for the file's write lock
// up front instead of deadlocking on a read-to-write upgrade. Reads use a
// separate query-only pool and never wait for writers. Concurrent Updates
// are grouped into one transaction and one fsync (group commit); a
// caller's failure undoes only its own work. Several processes may
// open the same file (the CLI writes while the server runs): SQLite's file
// locks and a busy timeout serialize them, and Update retries a transaction
// that still found the file busy.
//
// The package translates driver errors into payloom codes at its boundary
// and keeps its row shapes to itself. It must never store a card number in
// clear or a CVC (the domain hands it only ciphertext), and its errors never
// carry row values.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/payloom/payloom"
)

var _ payloom.Store = (*Store)(nil)

const (
	// defaultBusyTimeout is how long SQLite itself waits for another
	// connection's lock before answering SQLITE_BUSY.
	defaultBusyTimeout = 10 * time.Second
	// busyRetries is how many more times Update runs a transaction that
	// failed with SQLITE_BUSY or SQLITE_LOCKED despite the busy timeout.
	busyRetries = 4
	// stmtCacheSize is the driver's per-connection prepared statement
	// cache: the hot path re-binds statements instead of re-parsing SQL.
	stmtCacheSize = 128
)

// driverName is mattn/go-sqlite3 with Payloom's per-connection settings
// that the DSN cannot carry.
const driverName = "sqlite3_payloom"

func init() {
	sql.Register(driverName, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		// temp_store=MEMORY keeps statement journals in memory. An
		// isolated group-commit batch runs its callers in savepoints (an
		// optimistic one only after a failure, writer.go), and SQLite
		// spills a savepoint's statement journal to a temporary file
		// (/var/tmp/etilqs_*) by default: an open, unlink, page writes and
		// close per batch, a third of the write path's system calls.
		// Nothing durable lives there: the WAL holds every commit.
		_, err := c.Exec("PRAGMA temp_store=MEMORY", nil)
		return err
	}})
}

// Store is a payloom.Store on one SQLite file. It is safe for concurrent
// use, and other processes may use the same file at the same time.
type Store struct {
	path string
	// wdb holds the single write connection; Update waits for it, which
	// serializes writers within the process; concurrent Updates share one
	// transaction and one fsync (group commit, writer.go).
	wdb *sql.DB
	// rdb is the read-only pool for View, Ping and MigrationsCurrent.
	rdb *sql.DB
	// onBusy, if set (by tests), is called before a busy retry.
	onBusy func(attempt int)

	// Group commit (writer.go): callers of write queue in wqueue; while
	// writing is true one writer goroutine drains it, batch by batch.
	wmu     sync.Mutex
	wqueue  []*writeReq
	writing bool
	// failShare is the share of recent batches with a failing fn, which
	// decides whether the next runs optimistically or isolated (a
	// savepoint per fn); only the writer goroutine uses it.
	failShare float64
	// commits counts COMMITs of the write path, savepoints the SAVEPOINTs
	// it opened, fallbacks its optimistic batches run again isolated: for
	// tests.
	commits, savepoints, fallbacks atomic.Int64
	// beforeCommit, if set (by tests), runs before each COMMIT; an error
	// fails the batch as a failed COMMIT would.
	beforeCommit func() error
}

// Open opens (creating if needed, with mode 0600) the SQLite file at path.
// It does not create tables: call Migrate before the first use.
func Open(path string) (*Store, error) {
	return open(path, defaultBusyTimeout)
}

func open(path string, busyTimeout time.Duration) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	// The driver reads options after '?'; a path holding one would be
	// misread, so refuse it rather than open the wrong file.
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("sqlite: unsupported database path %q", path)
	}
	// Create the file ourselves so that it, and the -wal and -shm files
	// SQLite derives from its mode, are private to the owner.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}

	common := fmt.Sprintf("_busy_timeout=%d&_foreign_keys=on&_stmt_cache_size=%d",
		busyTimeout.Milliseconds(), stmtCacheSize)
	wdb, err := sql.Open(driverName, path+"?"+common+
		"&_txlock=immediate&_journal_mode=WAL&_synchronous=FULL")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	// Connect now: this switches the file to WAL before any reader opens
	// it, and reports a bad path at Open rather than at the first write.
	if err := pingWhileBusy(wdb.Ping, busyTimeout); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	rdb, err := sql.Open(driverName, path+"?"+common+"&_txlock=deferred&_query_only=on")
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	n := max(4, runtime.NumCPU())
	rdb.SetMaxOpenConns(n)
	rdb.SetMaxIdleConns(n)
	rdb.SetConnMaxIdleTime(5 * time.Minute)
	if err := pingWhileBusy(rdb.Ping, busyTimeout); err != nil {
		wdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return &Store{path: path, wdb: wdb, rdb: rdb}, nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Close closes both connection pools. Transactions in progress are rolled
// back by SQLite.
func (s *Store) Close() error {
	return errors.Join(s.rdb.Close(), s.wdb.Close())
}

// Ping checks that the file can be read.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.rdb.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Update runs fn in a write transaction and commits it when fn returns nil;
// a nil return means the commit is on disk. fn's own error is returned as
// is, and none of fn's writes are kept.
//
// Concurrent Updates are grouped (group commit, see writer.go): one
// transaction runs several callers' fns one after the other, and one COMMIT
// (one fsync) makes them all durable. A fn sees the writes of the fns
// before it in the same group: the group is serializable in queue order. A
// fn's error or panic undoes only its own writes (the group is rolled back
// and run again with a SAVEPOINT around each fn); a failed COMMIT fails
// every caller of the group. fn may run more than once (whole group run
// again after another fn of it failed, or retried when another process
// holds the file busy), so it must have no effect outside the transaction.
//
// ctx is checked before fn runs: a caller whose ctx ends while it is queued
// gets ctx's error and fn never runs. Once fn has started, the group's
// statements no longer follow ctx (an interrupt would abort the whole
// shared transaction); Update then waits for the group's outcome.
//
// fn must not call Update itself: the inner call queues behind the group
// its caller is part of and waits until its own ctx ends (as before group
// commit, when it waited for the one write connection).
func (s *Store) Update(ctx context.Context, fn func(tx payloom.Tx) error) error {
	return s.write(ctx, func(sqlTx *sql.Tx) error {
		return fn(&tx{tx: sqlTx, detach: true})
	})
}

// View runs fn in a read-only transaction: one consistent snapshot of the
// file, taken at its first read. Writes inside fn fail.
func (s *Store) View(ctx context.Context, fn func(tx payloom.Tx) error) error {
	sqlTx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlite: begin read: %w", err)
	}
	defer sqlTx.Rollback()
	return fn(&tx{tx: sqlTx})
}

// pingWhileBusy calls ping until it does not fail with SQLITE_BUSY, for at
// most timeout. Two processes opening a new file at once both switch it to
// WAL, each upgrading its read lock to a write lock; SQLite answers one of
// them SQLITE_BUSY at once rather than wait on a deadlock, whatever the
// busy timeout. The other finishes the switch in a moment, and a new
// connection then finds the file in WAL.
func pingWhileBusy(ping func() error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	pause := 5 * time.Millisecond
	for {
		err := ping()
		if !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// isBusy reports whether err is SQLite's "file locked by someone else".
func isBusy(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked
	}
	return false
}

// dbError translates a driver error about an object of the given kind
// ("payment") into a payloom error. The driver's text, which names tables
// and constraints but never values, is kept only in Err for logs.
func dbError(kind string, err error) error {
	if err == nil {
		return nil
	}
	var pe *payloom.Error
	if errors.As(err, &pe) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(kind)
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.ExtendedCode {
		case sqlite3.ErrConstraintUnique, sqlite3.ErrConstraintPrimaryKey:
			return &payloom.Error{Code: payloom.CodeAlreadyExists, Message: kind + " already exists", Err: err}
		case sqlite3.ErrConstraintForeignKey:
			return &payloom.Error{Code: payloom.CodeNotFound, Message: kind + " refers to an object that does not exist", Err: err}
		}
	}
	return fmt.Errorf("sqlite: %s: %w", kind, err)
}

func notFound(kind string) error {
	return &payloom.Error{Code: payloom.CodeNotFound, Message: "no such " + kind}
}

// Durability reports the write connection's effective journal_mode and
// synchronous setting (e.g. "wal", "full"), as SQLite reads them back: the
// facts behind "a nil Update is on disk", for the server to log at start.
func (s *Store) Durability(ctx context.Context) (journalMode, synchronous string, err error) {
	var sync int
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&journalMode); err != nil {
		return "", "", fmt.Errorf("sqlite: journal_mode: %w", err)
	}
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return "", "", fmt.Errorf("sqlite: synchronous: %w", err)
	}
	names := map[int]string{0: "off", 1: "normal", 2: "full", 3: "extra"}
	synchronous, ok := names[sync]
	if !ok {
		synchronous = fmt.Sprint(sync)
	}
	return journalMode, synchronous, nil
}
