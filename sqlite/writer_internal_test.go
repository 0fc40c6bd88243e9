package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

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

// BenchmarkCreatePaymentGroupCommit is BenchmarkCreatePaymentParallel with
// 32 writers per CPU (bench/run's concurrency) and the number of Updates
// that shared each durable COMMIT: the group commit's effect, measured.
func BenchmarkCreatePaymentGroupCommit(b *testing.B) {
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
	now := time.Now().UTC()
	before := s.commits.Load()
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
			if err := s.Update(ctx, func(tx payloom.Tx) error { return tx.CreatePayment(ctx, p) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if c := s.commits.Load() - before; c > 0 {
		b.ReportMetric(float64(b.N)/float64(c), "updates/commit")
	}
}
