package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"time"
)

// Group commit.
//
// With synchronous=FULL every COMMIT waits for an fsync, and one write
// connection commits one transaction at a time: alone, that caps the store
// at one fsync per Update. Instead, callers of write queue their fn; one
// writer goroutine (started when the queue goes from idle to busy, gone
// when it is empty again) takes up to maxBatch queued requests in arrival
// order, runs them in one BEGIN IMMEDIATE transaction, each inside its own
// SAVEPOINT, COMMITs once and then answers each caller. Requests that arrive
// meanwhile form the next batch, so nothing waits on a timer and no caller
// is passed over (FIFO, bounded batches).
//
// Guarantees kept from one-transaction-per-Update:
//   - nil is returned only after the COMMIT that holds fn's writes returned
//     (durable);
//   - a fn's error or panic rolls back only its savepoint; its caller gets
//     the error (or the panic, re-raised in the caller's goroutine), the
//     others of the batch commit;
//   - a COMMIT failure fails every caller of the batch (fn may run again
//     when they retry; the Store contract allows it);
//   - SQLITE_BUSY from another process (at BEGIN, COMMIT or inside a fn)
//     rolls the whole batch back and retries it, bounded by busyRetries;
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

// runBatch runs one batch, retrying it while the file is busy, and answers
// every caller in it exactly once.
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
	for attempt := 0; ; attempt++ {
		results, err := s.batchOnce(batch)
		if err == nil {
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
	}
}

// batchOnce runs every fn of batch in one transaction and commits it. A
// non-nil error means nothing was committed and applies to the whole batch;
// otherwise results holds each caller's answer.
func (s *Store) batchOnce(batch []*writeReq) (results []writeResult, err error) {
	// The transaction outlives any one caller's ctx.
	ctx := context.Background()
	sqlTx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			sqlTx.Rollback()
		}
	}()
	results = make([]writeResult, len(batch))
	ok := 0
	if len(batch) == 1 {
		// Alone: the transaction itself is the savepoint.
		results[0] = runFn(batch[0], sqlTx)
		if isBusy(results[0].err) {
			return nil, results[0].err
		}
		if results[0].err != nil || results[0].panicked {
			return results, nil // rolled back by the deferred Rollback
		}
		ok = 1
	} else {
		for i, r := range batch {
			if _, err := sqlTx.ExecContext(ctx, "SAVEPOINT "+savepoint); err != nil {
				return nil, fmt.Errorf("sqlite: savepoint: %w", err)
			}
			res := runFn(r, sqlTx)
			if isBusy(res.err) {
				return nil, res.err
			}
			if res.err != nil || res.panicked {
				// ROLLBACK TO keeps the savepoint open; RELEASE
				// closes it. Either failing means the transaction
				// itself is gone (SQLite rolled it back): fail the
				// batch rather than commit a partial one.
				if _, err := sqlTx.ExecContext(ctx, "ROLLBACK TO "+savepoint); err != nil {
					return nil, fmt.Errorf("sqlite: rollback to savepoint: %w", err)
				}
			} else {
				ok++
			}
			if _, err := sqlTx.ExecContext(ctx, "RELEASE "+savepoint); err != nil {
				return nil, fmt.Errorf("sqlite: release savepoint: %w", err)
			}
			results[i] = res
		}
		if ok == 0 {
			return results, nil // nothing to commit
		}
	}
	if s.beforeCommit != nil {
		if err := s.beforeCommit(); err != nil {
			return nil, err
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: commit: %w", err)
	}
	committed = true
	s.commits.Add(1)
	return results, nil
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
