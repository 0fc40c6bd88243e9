package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Group commit.
//
// With synchronous=FULL every COMMIT waits for an fsync, and one write
// connection commits one transaction at a time: alone, that caps the store
// at one fsync per Update. Instead, callers of write queue their fn; one
// writer goroutine (started when the queue goes from idle to busy, gone
// when it is empty again) takes up to maxBatch queued requests in arrival
// order, runs them in one BEGIN IMMEDIATE transaction, COMMITs once and
// then answers each caller. Requests that arrive meanwhile form the next
// batch, so nothing waits on a timer and no caller is passed over (FIFO,
// bounded batches).
//
// Optimistic batches. A fn that fails must lose only its own writes, which
// a SAVEPOINT around each fn gives, at a price: two more statements per fn
// and the page copies SQLite keeps to roll a savepoint back, about a tenth
// of the writer's CPU time, and the writer is the store's bottleneck.
// Fns rarely fail, so a batch first runs optimistically: its fns back to
// back, without savepoints. If all return nil it commits as it is: the
// same fns, in the same order, seeing the same rows as with savepoints. If
// one fails (error, panic, a statement error such as a unique violation),
// the transaction may hold that fn's partial writes: it is rolled back
// whole and the batch runs again isolated, each fn in its own SAVEPOINT.
// A fn that returned an error runs again there, and its caller gets the
// answer of that run, the one whose outcome is committed (or not). A fn
// that panicked is not run again (a panic is a bug, not a transient
// state): its caller gets the panic once the rollback has undone its
// writes, and the rest of the batch runs again isolated. A failure thus
// costs the fns before it a second run; when more than isolateAbove of the
// recent batches had a failing fn, that costs more than the savepoints
// would, and batches run isolated from the start until failures are rare
// again. A lone request needs no savepoint in either mode: the transaction
// is its savepoint.
//
// Guarantees kept from one-transaction-per-Update:
//   - nil is returned only after the COMMIT that holds fn's writes returned
//     (durable);
//   - a fn's error or panic undoes only its own writes; its caller gets the
//     error (or the panic, re-raised in the caller's goroutine), the others
//     of the batch commit (an optimistic batch runs again isolated first);
//   - a COMMIT failure fails every caller of the batch (fn may run again
//     when they retry; the Store contract allows it);
//   - SQLITE_BUSY from another process (at BEGIN, COMMIT or inside a fn)
//     rolls the whole batch back and retries it, bounded by busyRetries;
//   - SQLite ending the transaction itself inside a fn (it does on some
//     errors: SQLITE_FULL, SQLITE_IOERR, a ROLLBACK conflict clause) fails
//     the whole batch, before a later fn's statements could run outside a
//     transaction and commit one by one;
//   - a request whose ctx ends while queued is dropped before it runs.

const (
	// maxBatch bounds how many Updates share one transaction: enough to
	// absorb a burst of concurrent requests, small enough that one batch
	// never holds its callers long.
	maxBatch = 64
	// lingerBatch and linger: after a batch of at least lingerBatch
	// requests (the store is busy), when fewer are queued than that batch
	// held, the writer waits linger before taking the next batch, so that
	// the callers it just answered can queue their next write and share
	// its COMMIT. Like PostgreSQL's commit_delay: at 32 concurrent requests
	// it cuts the commits, and the CPU per request, by a fifth to a third
	// (bench/run), for at most linger more latency per write. A lone
	// caller never waits: its batches are smaller than lingerBatch.
	lingerBatch = 8
	linger      = 200 * time.Microsecond
	// isolateAbove: batches run isolated from the start while the share
	// of recent batches (of more than one fn) with a failing fn is above
	// it. Optimistic batches cost 1 + f(p + s) against 1 + s isolated, for
	// a share f of batches with a failure, which comes after a part p of
	// the batch, and savepoints that add s to the fns' cost: with s about
	// a fifth (profile of bench/run's create scenario) and p a half,
	// isolated is cheaper from f = s/(p + s), about 0.29. failWeight is
	// the weight of the last batch in that share (a moving average over
	// about 16 batches).
	isolateAbove = 0.25
	failWeight   = 1.0 / 16
	// savepoint names each fn's savepoint; they never nest (one is
	// released before the next is opened), so one name does.
	savepoint = "payloom_fn"
)

const (
	reqQueued int32 = iota
	reqTaken
	reqCanceled
)

// writeReq is one caller of write waiting for its batch.
type writeReq struct {
	ctx   context.Context
	fn    func(*sql.Tx) error
	state atomic.Int32 // reqQueued, then reqTaken (by the writer) or reqCanceled (by the caller)
	done  chan writeResult
	// exited is set when fn left the writer goroutine by runtime.Goexit.
	exited bool
}

// writeResult is what the writer answers a caller.
type writeResult struct {
	err error
	// panicked means fn panicked with panicVal; the caller re-panics.
	panicked bool
	panicVal any
	// goexit means fn called runtime.Goexit (t.FailNow in a test); the
	// caller calls it too.
	goexit bool
}

// errWriterStopped answers callers of a batch whose fn left the writer
// goroutine through runtime.Goexit.
var errWriterStopped = errors.New("sqlite: write batch abandoned: a transaction function exited its goroutine")

// write runs fn in a write transaction shared with other concurrent
// callers and returns once that transaction committed (nil) or failed.
func (s *Store) write(ctx context.Context, fn func(*sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan writeResult, 1)}
	s.wmu.Lock()
	s.wqueue = append(s.wqueue, r)
	if !s.writing {
		s.writing = true
		go s.writer()
	}
	s.wmu.Unlock()

	var res writeResult
	select {
	case res = <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqCanceled) {
			return ctx.Err()
		}
		// fn has started: its outcome, commit included, is decided by
		// the batch; wait for it rather than report a guess.
		res = <-r.done
	}
	switch {
	case res.panicked:
		panic(res.panicVal)
	case res.goexit:
		runtime.Goexit()
	}
	return res.err
}

// writer drains the queue batch by batch and exits when it is empty.
func (s *Store) writer() {
	normal := false
	defer func() {
		if !normal {
			// A fn called runtime.Goexit on this goroutine; the
			// queue still needs a writer (writing is still true).
			go s.writer()
		}
	}()
	var batch []*writeReq
	last := 0
	for {
		if last >= lingerBatch {
			s.wmu.Lock()
			short := len(s.wqueue) < last
			s.wmu.Unlock()
			if short {
				time.Sleep(linger)
			}
		}
		s.wmu.Lock()
		n := min(len(s.wqueue), maxBatch)
		if n == 0 {
			s.writing = false
			s.wmu.Unlock()
			normal = true
			return
		}
		batch = append(batch[:0], s.wqueue[:n]...)
		rest := copy(s.wqueue, s.wqueue[n:])
		clear(s.wqueue[rest:])
		s.wqueue = s.wqueue[:rest]
		s.wmu.Unlock()

		live := batch[:0]
		for _, r := range batch {
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				live = append(live, r)
			}
		}
		last = len(live)
		if len(live) > 0 {
			s.runBatch(live)
		}
		clear(batch)
	}
}

// runBatch runs one batch, first optimistically unless failures are
// frequent, isolated if the optimistic run failed, retrying it while the
// file is busy, and answers every caller in it exactly once.
func (s *Store) runBatch(batch []*writeReq) {
	answered := false
	defer func() {
		if !answered {
			// Only runtime.Goexit in a fn gets here (panics are
			// recovered per fn): the transaction was rolled back
			// by batchOnce; nobody's writes were committed.
			for _, r := range batch {
				res := writeResult{err: errWriterStopped}
				if r.exited {
					res = writeResult{goexit: true}
				}
				select {
				case r.done <- res:
				default:
				}
			}
		}
	}()
	shared := len(batch) > 1
	isolate := s.failShare > isolateAbove
	fnFailed := false
	for attempt := 0; ; {
		results, failed, err := s.batchOnce(batch, isolate && len(batch) > 1)
		if err == nil && failed >= 0 {
			// The optimistic run failed at batch[failed] and was rolled
			// back whole: run the batch again isolated, without a fn
			// that panicked.
			s.fallbacks.Add(1)
			isolate, fnFailed = true, true
			if res := results[failed]; res.panicked {
				batch[failed].done <- res
				batch = slices.Delete(batch, failed, failed+1)
			}
			continue
		}
		if err == nil {
			if shared {
				for _, res := range results {
					fnFailed = fnFailed || res.err != nil || res.panicked
				}
				f := 0.0
				if fnFailed {
					f = 1
				}
				s.failShare += (f - s.failShare) * failWeight
			}
			for i, r := range batch {
				r.done <- results[i]
			}
			answered = true
			return
		}
		if !isBusy(err) || attempt >= busyRetries {
			for _, r := range batch {
				r.done <- writeResult{err: err}
			}
			answered = true
			return
		}
		// Callers that gave up meanwhile get the busy error, as a
		// single Update would; the others are retried together.
		keep := batch[:0]
		for _, r := range batch {
			if r.ctx.Err() != nil {
				r.done <- writeResult{err: err}
			} else {
				keep = append(keep, r)
			}
		}
		batch = keep
		if len(batch) == 0 {
			answered = true
			return
		}
		if s.onBusy != nil {
			s.onBusy(attempt)
		}
		// Another process held the lock for a whole busy timeout; back
		// off a little, with jitter so that waiters do not march in step.
		time.Sleep(time.Duration(10+rand.IntN(40)) * time.Millisecond << attempt)
		attempt++
	}
}

// batchOnce runs every fn of batch in one transaction and commits it, each
// fn in its own savepoint if isolate is set (see Optimistic batches). A
// non-nil error means nothing was committed and applies to the whole batch.
// Otherwise, if failed >= 0, the optimistic run failed at batch[failed],
// whose answer is results[failed], and nothing was committed; else results
// holds each caller's answer.
func (s *Store) batchOnce(batch []*writeReq, isolate bool) (results []writeResult, failed int, err error) {
	// The transaction outlives any one caller's ctx.
	ctx := context.Background()
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return nil, -1, fmt.Errorf("sqlite: begin: %w", err)
	}
	defer conn.Close()
	sqlTx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, -1, fmt.Errorf("sqlite: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			sqlTx.Rollback()
		}
	}()
	results = make([]writeResult, len(batch))
	ok := 0
	switch {
	case len(batch) == 1:
		// Alone: the transaction itself is the savepoint.
		results[0] = runFn(batch[0], sqlTx)
		if isBusy(results[0].err) {
			return nil, -1, results[0].err
		}
		if results[0].err != nil || results[0].panicked {
			return results, -1, nil // rolled back by the deferred Rollback
		}
		ok = 1
	case !isolate:
		for i, r := range batch {
			res := runFn(r, sqlTx)
			if isBusy(res.err) {
				return nil, -1, res.err
			}
			if !inTx(conn) {
				return txEnded(len(batch), i, res), -1, nil
			}
			if res.err != nil || res.panicked {
				results[i] = res
				return results, i, nil // rolled back by the deferred Rollback
			}
			results[i] = res
		}
		ok = len(batch)
	default:
		for i, r := range batch {
			if _, err := sqlTx.ExecContext(ctx, "SAVEPOINT "+savepoint); err != nil {
				return nil, -1, fmt.Errorf("sqlite: savepoint: %w", err)
			}
			s.savepoints.Add(1)
			res := runFn(r, sqlTx)
			if isBusy(res.err) {
				return nil, -1, res.err
			}
			if res.err != nil || res.panicked {
				// ROLLBACK TO keeps the savepoint open; RELEASE
				// closes it. Either failing means the transaction
				// itself is gone (SQLite rolled it back): fail the
				// batch rather than commit a partial one.
				if _, err := sqlTx.ExecContext(ctx, "ROLLBACK TO "+savepoint); err != nil {
					return nil, -1, fmt.Errorf("sqlite: rollback to savepoint: %w", err)
				}
			} else {
				ok++
			}
			if _, err := sqlTx.ExecContext(ctx, "RELEASE "+savepoint); err != nil {
				return nil, -1, fmt.Errorf("sqlite: release savepoint: %w", err)
			}
			results[i] = res
		}
	}
	if ok == 0 {
		return results, -1, nil // nothing to commit
	}
	if s.beforeCommit != nil {
		if err := s.beforeCommit(); err != nil {
			return nil, -1, err
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return nil, -1, fmt.Errorf("sqlite: commit: %w", err)
	}
	committed = true
	s.commits.Add(1)
	return results, -1, nil
}

// inTx reports whether conn's transaction is still open. Without a
// savepoint to release after each fn, nothing else would notice that SQLite
// rolled the transaction back inside a fn that then returned nil: the next
// fns' statements would each commit on their own (autocommit). A cgo call,
// far cheaper than the RELEASE it stands in for.
func inTx(conn *sql.Conn) bool {
	open := false
	conn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		open = ok && !c.AutoCommit()
		return nil
	})
	return open
}

// errTxEnded answers the callers of a batch whose transaction SQLite
// rolled back inside a caller's fn: nothing of the batch was committed
// (but for statements that fn ran after the rollback, which SQLite
// committed one by one: its bug, as without group commit).
var errTxEnded = errors.New("sqlite: write transaction rolled back by SQLite inside a transaction function")

// txEnded is the answers of a batch whose transaction SQLite rolled back
// inside batch[i], whose run gave res: that caller gets its own error (or
// panic) wrapped, the others errTxEnded.
func txEnded(n, i int, res writeResult) []writeResult {
	results := make([]writeResult, n)
	for j := range results {
		results[j] = writeResult{err: errTxEnded}
	}
	if res.panicked {
		results[i] = res
	} else if res.err != nil {
		results[i] = writeResult{err: fmt.Errorf("%w: %w", errTxEnded, res.err)}
	}
	return results
}

// runFn runs one caller's fn, turning a panic into a result for its caller.
// A runtime.Goexit in fn is not caught here: it unwinds the writer (see
// runBatch and writer).
func runFn(r *writeReq, sqlTx *sql.Tx) (res writeResult) {
	returned := false
	defer func() {
		if p := recover(); p != nil {
			res = writeResult{panicked: true, panicVal: p}
		} else if !returned {
			r.exited = true
		}
	}()
	err := r.fn(sqlTx)
	returned = true
	return writeResult{err: err}
}
