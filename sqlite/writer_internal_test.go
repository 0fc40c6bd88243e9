package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/payloom/payloom"
)

// waitQueued waits until n requests wait in the write queue. It waits for a
// state, not for a time, so the tests below do not depend on scheduling.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	for {
		s.wmu.Lock()
		got := len(s.wqueue)
		s.wmu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// holdWriter starts an Update whose fn blocks until the returned func is
// called, so that Updates started meanwhile queue up and form one batch.
// The returned func waits for that first Update to return nil.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	entered, unblock := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Update(context.Background(), func(payloom.Tx) error {
			close(entered)
			<-unblock
			return nil
		})
	}()
	<-entered
	return func() {
		t.Helper()
		close(unblock)
		if err := <-done; err != nil {
			t.Errorf("blocking Update = %v; want nil", err)
		}
	}
}

func merchant(id string) *payloom.Merchant {
	return &payloom.Merchant{ID: id, Name: id, MinAmount: 1, MaxAmount: 1000, CreatedAt: time.Unix(1700000000, 0)}
}

func createMerchant(id string) func(payloom.Tx) error {
	return func(tx payloom.Tx) error { return tx.CreateMerchant(context.Background(), merchant(id)) }
}

// merchantExists reads through the read pool, i.e. what is committed.
func merchantExists(t *testing.T, s *Store, id string) bool {
	t.Helper()
	err := s.View(context.Background(), func(tx payloom.Tx) error {
		_, err := tx.GetMerchant(context.Background(), id)
		return err
	})
	if err != nil && !payloom.IsCode(err, payloom.CodeNotFound) {
		t.Fatalf("GetMerchant(%q): %v", id, err)
	}
	return err == nil
}

// TestGroupCommit: N Updates that arrive while the writer is busy share one
// COMMIT, and every one of them is committed when its Update returns.
func TestGroupCommit(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "p.db"), defaultBusyTimeout)
	const n = 20
	release := holdWriter(t, s)
	before := s.commits.Load()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Update(context.Background(), createMerchant(fmt.Sprintf("mrch_%d", i)))
		}()
	}
	waitQueued(t, s, n)
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Update %d = %v; want nil", i, err)
		}
		if id := fmt.Sprintf("mrch_%d", i); !merchantExists(t, s, id) {
			t.Errorf("merchant %q missing after its Update returned nil", id)
		}
	}
	// One commit for the blocking Update, one for the batch of n.
	if got := s.commits.Load() - before; got != 2 {
		t.Errorf("commits for 1 + %d Updates = %d; want 2", n, got)
	}
}

// TestGroupCommitIsolatesFailures: in one batch, a fn that fails or panics
// loses only its own writes; the others commit, and a later fn sees an
// earlier fn's writes of the same batch.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "p.db"), defaultBusyTimeout)
	errFn := errors.New("fn failed")
	type outcome struct {
		err      error
		panicked any
	}
	fns := []struct {
		name string
		fn   func(payloom.Tx) error
		want outcome
	}{
		{"ok1", createMerchant("mrch_ok1"), outcome{}},
		{"fails", func(tx payloom.Tx) error {
			if err := createMerchant("mrch_fails")(tx); err != nil {
				return err
			}
			return errFn
		}, outcome{err: errFn}},
		{"panics", func(tx payloom.Tx) error {
			if err := createMerchant("mrch_panics")(tx); err != nil {
				return err
			}
			panic("boom")
		}, outcome{panicked: "boom"}},
		{"readsOk1", func(tx payloom.Tx) error {
			if _, err := tx.GetMerchant(context.Background(), "mrch_ok1"); err != nil {
				return fmt.Errorf("earlier write of the batch not visible: %w", err)
			}
			// The failed fns' writes were undone before this one ran.
			for _, id := range []string{"mrch_fails", "mrch_panics"} {
				if _, err := tx.GetMerchant(context.Background(), id); !payloom.IsCode(err, payloom.CodeNotFound) {
					return fmt.Errorf("GetMerchant(%q) = %v; want not found", id, err)
				}
			}
			return createMerchant("mrch_ok2")(tx)
		}, outcome{}},
		{"duplicate", createMerchant("mrch_ok1"), outcome{err: &payloom.Error{Code: payloom.CodeAlreadyExists}}},
	}
	release := holdWriter(t, s)
	before := s.commits.Load()
	got := make([]outcome, len(fns))
	var wg sync.WaitGroup
	for i, f := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { got[i].panicked = recover() }()
			got[i].err = s.Update(context.Background(), f.fn)
		}()
		waitQueued(t, s, i+1) // queue order is batch order
	}
	release()
	wg.Wait()
	for i, f := range fns {
		g := got[i]
		switch {
		case f.want.panicked != nil:
			if g.panicked != f.want.panicked {
				t.Errorf("Update(%s) panicked with %v; want %v", f.name, g.panicked, f.want.panicked)
			}
		case f.want.err == nil:
			if g.err != nil || g.panicked != nil {
				t.Errorf("Update(%s) = %v, panic %v; want nil", f.name, g.err, g.panicked)
			}
		case errors.Is(f.want.err, errFn):
			if !errors.Is(g.err, errFn) {
				t.Errorf("Update(%s) = %v; want %v", f.name, g.err, errFn)
			}
		default:
			if !payloom.IsCode(g.err, payloom.CodeAlreadyExists) {
				t.Errorf("Update(%s) = %v; want already exists", f.name, g.err)
			}
		}
	}
	for id, want := range map[string]bool{"mrch_ok1": true, "mrch_ok2": true, "mrch_fails": false, "mrch_panics": false} {
		if got := merchantExists(t, s, id); got != want {
			t.Errorf("merchant %q exists = %v; want %v", id, got, want)
		}
	}
	if got := s.commits.Load() - before; got != 2 {
		t.Errorf("commits = %d; want 2 (the blocking Update, then one batch)", got)
	}
}

// TestGroupCommitFailureFailsAll: when the batch's COMMIT fails, every
// caller of the batch gets the error and nothing of the batch is stored.
func TestGroupCommitFailureFailsAll(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "p.db"), defaultBusyTimeout)
	errCommit := errors.New("commit failed")
	var calls int
	s.beforeCommit = func() error {
		calls++
		if calls == 2 { // the batch after the blocking Update's
			return errCommit
		}
		return nil
	}
	release := holdWriter(t, s)
	const n = 5
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Update(context.Background(), createMerchant(fmt.Sprintf("mrch_%d", i)))
		}()
	}
	waitQueued(t, s, n)
	release()
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, errCommit) {
			t.Errorf("Update %d = %v; want %v", i, err, errCommit)
		}
		if id := fmt.Sprintf("mrch_%d", i); merchantExists(t, s, id) {
			t.Errorf("merchant %q stored although its batch failed", id)
		}
	}
	// The store keeps working after a failed batch.
	if err := s.Update(context.Background(), createMerchant("mrch_after")); err != nil {
		t.Errorf("Update after a failed batch = %v; want nil", err)
	}
}

// TestUpdateCanceledWhileQueued: a caller whose ctx ends while it waits in
// the queue gets ctx's error and its fn never runs.
func TestUpdateCanceledWhileQueued(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "p.db"), defaultBusyTimeout)
	release := holdWriter(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	ran := false
	done := make(chan error, 1)
	go func() {
		done <- s.Update(ctx, func(tx payloom.Tx) error { ran = true; return createMerchant("mrch_c")(tx) })
	}()
	waitQueued(t, s, 1)
	cancel()
	err := <-done
	release()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update canceled while queued = %v; want %v", err, context.Canceled)
	}
	// Only now is ran safe to read: the writer has drained the queue.
	if err := s.Update(context.Background(), func(payloom.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if ran || merchantExists(t, s, "mrch_c") {
		t.Errorf("fn of a canceled queued Update ran = %v; want false", ran)
	}
}

// TestNestedUpdateEndsWithCtx: an Update inside an Update cannot run (its
// caller's batch is in progress), but it returns when its ctx ends instead
// of hanging, and the outer Update still commits.
func TestNestedUpdateEndsWithCtx(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "p.db"), defaultBusyTimeout)
	var inner error
	err := s.Update(context.Background(), func(tx payloom.Tx) error {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Update(ctx, createMerchant("mrch_inner")) }()
		waitQueued(t, s, 1)
		cancel()
		inner = <-done
		return createMerchant("mrch_outer")(tx)
	})
	if err != nil {
		t.Fatalf("outer Update = %v; want nil", err)
	}
	if !errors.Is(inner, context.Canceled) {
		t.Errorf("nested Update = %v; want %v", inner, context.Canceled)
	}
	if !merchantExists(t, s, "mrch_outer") || merchantExists(t, s, "mrch_inner") {
		t.Errorf("outer stored %v, inner stored %v; want true, false",
			merchantExists(t, s, "mrch_outer"), merchantExists(t, s, "mrch_inner"))
	}
}

// TestGroupCommitRetriesBusyBatch: Updates that find the file locked by
// another process are retried (as whole batches) and all commit once it is
// free.
func TestGroupCommitRetriesBusyBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := openTest(t, path, 20*time.Millisecond)
	unlock := sync.OnceFunc(holdWriteLock(t, path))
	defer unlock()
	s.onBusy = func(int) { unlock() }
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Update(context.Background(), createMerchant(fmt.Sprintf("mrch_%d", i)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Update %d = %v; want nil after the lock was released", i, err)
		}
		if id := fmt.Sprintf("mrch_%d", i); !merchantExists(t, s, id) {
			t.Errorf("merchant %q missing", id)
		}
	}
}

// writeCounts is what a batch cost the writer, for the tests below.
type writeCounts struct{ commits, savepoints, fallbacks int64 }

func counts(s *Store) writeCounts {
	return writeCounts{s.commits.Load(), s.savepoints.Load(), s.fallbacks.Load()}
}

func (c writeCounts) sub(d writeCounts) writeCounts {
	return writeCounts{c.commits - d.commits, c.savepoints - d.savepoints, c.fallbacks - d.fallbacks}
}

// runBatch queues fns (in this order) behind a blocked writer so that they
// form one batch, and returns each Update's error or panic and what the
// batch cost, the blocking Update's commit excluded.
func runBatch(t *testing.T, s *Store, fns []func(payloom.Tx) error) (errs []error, panics []any, cost writeCounts) {
	t.Helper()
	release := holdWriter(t, s)
	before := counts(s)
	before.commits++ // the blocking Update's
	errs, panics = make([]error, len(fns)), make([]any, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panics[i] = recover() }()
			errs[i] = s.Update(context.Background(), fn)
		}()
		waitQueued(t, s, i+1) // queue order is batch order
	}
	release()
	wg.Wait()
	return errs, panics, counts(s).sub(before)
}

// TestGroupCommitOptimistic: a batch whose fns all succeed runs without a
// single savepoint, and commits once.
func TestGroupCommitOptimistic(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "p.db"), defaultBusyTimeout)
	const n = 10
	fns := make([]func(payloom.Tx) error, n)
	for i := range fns {
		fns[i] = createMerchant(fmt.Sprintf("mrch_%d", i))
	}
	errs, panics, cost := runBatch(t, s, fns)
	for i := range n {
		if errs[i] != nil || panics[i] != nil {
			t.Errorf("Update %d = %v, panic %v; want nil", i, errs[i], panics[i])
		}
		if id := fmt.Sprintf("mrch_%d", i); !merchantExists(t, s, id) {
			t.Errorf("merchant %q missing after its Update returned nil", id)
		}
	}
	if want := (writeCounts{commits: 1}); cost != want {
		t.Errorf("batch of %d clean Updates cost %+v; want %+v", n, cost, want)
	}
}

// TestGroupCommitFallback: when a fn of an optimistic batch fails after
// writing, the batch is rolled back and runs again isolated. Every fn writes
// a merchant named after its run, so the test sees which run of each fn
// was committed: exactly the last run of each fn that was answered nil, no
// run of the others; the first, optimistic run of none.
func TestGroupCommitFallback(t *testing.T) {
	errFn := errors.New("fn failed")
	tests := []struct {
		name string
		// fail gives the third fn's outcome on its run'th run, after it
		// wrote: nil, errFn, errDuplicate (then the fn returns a
		// unique violation), or it panics.
		fail func(run int) error
		// wantRuns of the third fn; wantErr its caller's error (nil:
		// committed), wantPanic its panic; wantSavepoints of the
		// isolated run.
		wantRuns       int
		wantErr        error
		wantPanic      bool
		wantSavepoints int64
	}{
		{"error", func(int) error { return errFn }, 2, errFn, false, 5},
		{"error on the first run only", func(run int) error {
			if run == 1 {
				return errFn
			}
			return nil
		}, 2, nil, false, 5},
		{"panic", func(int) error { panic("boom") }, 1, nil, true, 4},
		// A statement error (unique violation) the fn returns.
		{"duplicate", func(int) error { return errDuplicate }, 2, errDuplicate, false, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, filepath.Join(t.TempDir(), "p.db"), defaultBusyTimeout)
			if err := s.Update(context.Background(), createMerchant("mrch_taken")); err != nil {
				t.Fatal(err)
			}
			const n, failing = 5, 2
			runs := make([]int, n)
			fns := make([]func(payloom.Tx) error, n)
			for i := range fns {
				fns[i] = func(tx payloom.Tx) error {
					runs[i]++
					if err := createMerchant(fmt.Sprintf("mrch_%d_run%d", i, runs[i]))(tx); err != nil {
						return err
					}
					if i != failing {
						return nil
					}
					err := tt.fail(runs[i])
					if err == errDuplicate {
						return createMerchant("mrch_taken")(tx)
					}
					return err
				}
			}
			errs, panics, cost := runBatch(t, s, fns)

			want := make([]error, n)
			want[failing] = tt.wantErr
			for i := range n {
				switch {
				case i == failing && tt.wantPanic:
					if panics[i] != "boom" {
						t.Errorf("Update %d panicked with %v; want boom", i, panics[i])
					}
				case want[i] == errDuplicate:
					if !payloom.IsCode(errs[i], payloom.CodeAlreadyExists) || panics[i] != nil {
						t.Errorf("Update %d = %v, panic %v; want already exists", i, errs[i], panics[i])
					}
				case !errors.Is(errs[i], want[i]) || panics[i] != nil:
					t.Errorf("Update %d = %v, panic %v; want %v", i, errs[i], panics[i], want[i])
				}
				committed := errs[i] == nil && panics[i] == nil
				for run := 1; run <= runs[i]; run++ {
					id := fmt.Sprintf("mrch_%d_run%d", i, run)
					if got, want := merchantExists(t, s, id), committed && run == runs[i]; got != want {
						t.Errorf("merchant %q (run %d of %d of Update %d) exists = %v; want %v", id, run, runs[i], i, got, want)
					}
				}
			}
			// The fns before the failing one ran optimistically, then
			// isolated; the failing one as wanted; the others once.
			wantRuns := []int{2, 2, tt.wantRuns, 1, 1}
			if !slices.Equal(runs, wantRuns) {
				t.Errorf("runs of each fn = %v; want %v", runs, wantRuns)
			}
			if want := (writeCounts{commits: 1, savepoints: tt.wantSavepoints, fallbacks: 1}); cost != want {
				t.Errorf("batch cost %+v; want %+v", cost, want)
			}
		})
	}
}

// errDuplicate asks TestGroupCommitFallback's failing fn for a unique
// violation.
var errDuplicate = errors.New("duplicate")

// TestGroupCommitIsolatesWhileFailuresAreFrequent: a rare failure leaves
// the next batch optimistic; while most batches have a failing fn, batches
// run isolated from the start (no optimistic run wasted), and optimistic
// again once failures stopped.
func TestGroupCommitIsolatesWhileFailuresAreFrequent(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "p.db"), defaultBusyTimeout)
	errFn := errors.New("fn failed")
	n := 0
	// batch runs one batch of two merchant inserts around fn, if any.
	batch := func(fn func(payloom.Tx) error) writeCounts {
		t.Helper()
		n++
		fns := []func(payloom.Tx) error{createMerchant(fmt.Sprintf("mrch_%d_a", n))}
		if fn != nil {
			fns = append(fns, fn)
		}
		fns = append(fns, createMerchant(fmt.Sprintf("mrch_%d_b", n)))
		errs, _, cost := runBatch(t, s, fns)
		for _, i := range []int{0, len(fns) - 1} {
			if errs[i] != nil {
				t.Fatalf("batch %d: Update %d = %v; want nil", n, i, errs[i])
			}
		}
		return cost
	}
	fail := func(payloom.Tx) error { return errFn }

	if cost := batch(fail); cost.fallbacks != 1 {
		t.Fatalf("first batch with a failing fn: cost %+v; want 1 fallback", cost)
	}
	if cost, want := batch(nil), (writeCounts{commits: 1}); cost != want {
		t.Errorf("clean batch after one failure: cost %+v; want %+v (optimistic)", cost, want)
	}
	const bound = 100
	i := 0
	for ; i < bound && batch(fail).fallbacks == 1; i++ {
	}
	if i == bound {
		t.Fatalf("%d batches in a row with a failing fn each ran optimistically first; want isolated at once after a few", bound)
	}
	for i = 0; i < bound && batch(nil).savepoints > 0; i++ {
	}
	if i == bound {
		t.Errorf("%d clean batches after frequent failures ran isolated; want optimistic again after a few", bound)
	}
}

// TestGroupCommitBusyInFn: SQLITE_BUSY inside a fn of an optimistic batch
// retries the whole batch, optimistically still: it is not a fn's failure.
func TestGroupCommitBusyInFn(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "p.db"), defaultBusyTimeout)
	busy := 0
	s.onBusy = func(int) { busy++ }
	runs := 0
	fns := []func(payloom.Tx) error{
		createMerchant("mrch_0"),
		func(tx payloom.Tx) error {
			runs++
			if err := createMerchant(fmt.Sprintf("mrch_1_run%d", runs))(tx); err != nil {
				return err
			}
			if runs == 1 {
				return fmt.Errorf("sqlite: payment: %w", sqlite3.Error{Code: sqlite3.ErrBusy})
			}
			return nil
		},
		createMerchant("mrch_2"),
	}
	errs, _, cost := runBatch(t, s, fns)
	for i, err := range errs {
		if err != nil {
			t.Errorf("Update %d = %v; want nil after the busy retry", i, err)
		}
	}
	for id, want := range map[string]bool{"mrch_0": true, "mrch_1_run1": false, "mrch_1_run2": true, "mrch_2": true} {
		if got := merchantExists(t, s, id); got != want {
			t.Errorf("merchant %q exists = %v; want %v", id, got, want)
		}
	}
	if want := (writeCounts{commits: 1}); cost != want || busy != 1 {
		t.Errorf("batch with a busy fn: cost %+v, busy retries %d; want %+v, 1", cost, busy, want)
	}
}

// TestGroupCommitTxEndedInFn: when SQLite rolls the whole transaction back
// inside a fn (here an INSERT OR ROLLBACK that conflicts) and the fn
// swallows the error, the batch fails as a whole: the fns after it must not
// run in autocommit mode, where each statement commits on its own.
func TestGroupCommitTxEndedInFn(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "p.db"), defaultBusyTimeout)
	release := holdWriter(t, s)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	fns := []func(*sql.Tx) error{
		func(sqlTx *sql.Tx) error { return createMerchant("mrch_0")(&tx{tx: sqlTx, detach: true}) },
		func(sqlTx *sql.Tx) error {
			// Schema version 1 exists: the conflict rolls back the
			// whole transaction, and the fn ignores it.
			sqlTx.Exec("INSERT OR ROLLBACK INTO schema_migrations (version, name, applied_at) VALUES (1, 'x', 0)")
			return nil
		},
		func(sqlTx *sql.Tx) error { return createMerchant("mrch_2")(&tx{tx: sqlTx, detach: true}) },
	}
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.write(context.Background(), fn)
		}()
		waitQueued(t, s, i+1)
	}
	release()
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, errTxEnded) {
			t.Errorf("Update %d = %v; want %v", i, err, errTxEnded)
		}
	}
	for _, id := range []string{"mrch_0", "mrch_2"} {
		if merchantExists(t, s, id) {
			t.Errorf("merchant %q stored although its batch failed", id)
		}
	}
	if err := s.Update(context.Background(), createMerchant("mrch_after")); err != nil {
		t.Errorf("Update after a batch SQLite rolled back = %v; want nil", err)
	}
}

// BenchmarkCreatePaymentGroupCommit is BenchmarkCreatePaymentParallel with
// 32 writers per CPU (bench/run's concurrency) and the number of Updates
// that shared each durable COMMIT: the group commit's effect, measured.
// The failing sub-benchmarks make one Update in every N fail after its
// write: what failures cost the optimistic batches (their fallbacks and the
// isolated batches after them). cpu-µs/op is the whole process's CPU time.
func BenchmarkCreatePaymentGroupCommit(b *testing.B) {
	for _, every := range []int64{0, 1000, 100, 20, 4} {
		name := "clean"
		if every > 0 {
			name = fmt.Sprintf("fail_1_in_%d", every)
		}
		b.Run(name, func(b *testing.B) { benchGroupCommit(b, every) })
	}
}

func benchGroupCommit(b *testing.B, failEvery int64) {
	ctx := context.Background()
	s, err := open(filepath.Join(b.TempDir(), "p.db"), defaultBusyTimeout)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	m := merchant("mrch_bench")
	if err := s.Update(ctx, func(tx payloom.Tx) error { return tx.CreateMerchant(ctx, m) }); err != nil {
		b.Fatal(err)
	}
	errFn := errors.New("fn failed")
	var seq, runs atomic.Int64
	now := time.Now().UTC()
	before := counts(s)
	cpu := cpuTime(b)
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p := &payloom.Payment{
				ID: payloom.NewID(payloom.PrefixPayment), Object: "payment", MerchantID: m.ID, Amount: 1000, Currency: "USD",
				Status: payloom.PaymentStatusProcessing, CaptureMethod: payloom.CaptureMethodAutomatic,
				CreatedAt: now, UpdatedAt: now, CreationKey: payloom.NewID(payloom.PrefixOperation),
			}
			fail := failEvery > 0 && seq.Add(1)%failEvery == 0
			err := s.Update(ctx, func(tx payloom.Tx) error {
				runs.Add(1)
				p.ID = payloom.NewID(payloom.PrefixPayment) // fn may run more than once
				if err := tx.CreatePayment(ctx, p); err != nil || !fail {
					return err
				}
				return errFn
			})
			if err != nil && !(fail && errors.Is(err, errFn)) {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
	if c := counts(s).sub(before); c.commits > 0 {
		b.ReportMetric(float64(b.N)/float64(c.commits), "updates/commit")
		b.ReportMetric(float64(c.fallbacks)/float64(c.commits), "fallbacks/commit")
		b.ReportMetric(float64(c.savepoints)/float64(b.N), "savepoints/op")
		b.ReportMetric(float64(runs.Load())/float64(b.N), "runs/op")
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
