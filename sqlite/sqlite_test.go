package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/sqlite"
	"github.com/payloom/payloom/storetest"
)

// mustOpen opens and migrates a store on path, closed at cleanup.
func mustOpen(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func tempPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "payloom.db")
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) payloom.Store { return mustOpen(t, tempPath(t)) })
}

// seed stores a merchant and a captured payment and returns the payment.
func seed(t testing.TB, s payloom.Store) *payloom.Payment {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	m := &payloom.Merchant{ID: payloom.NewID(payloom.PrefixMerchant), Name: "Acme", MinAmount: 1, MaxAmount: 100, CreatedAt: now}
	p := &payloom.Payment{ID: payloom.NewID(payloom.PrefixPayment), MerchantID: m.ID, Amount: 1_000_000,
		AmountCaptured: 1_000_000, Currency: "USD", Status: payloom.PaymentStatusCaptured, CreatedAt: now}
	err := s.Update(ctx, func(tx payloom.Tx) error {
		if err := tx.CreateMerchant(ctx, m); err != nil {
			return err
		}
		return tx.CreatePayment(ctx, p)
	})
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	return p
}

func getPayment(t testing.TB, s payloom.Store, p *payloom.Payment) *payloom.Payment {
	t.Helper()
	var got *payloom.Payment
	err := s.View(context.Background(), func(tx payloom.Tx) error {
		var err error
		got, err = tx.GetPayment(context.Background(), p.Scope(), p.ID)
		return err
	})
	if err != nil {
		t.Fatalf("GetPayment(%q): %v", p.ID, err)
	}
	return got
}

// increment adds one to the payment's AmountRefunded in one Update.
func increment(s payloom.Store, p *payloom.Payment) error {
	ctx := context.Background()
	return s.Update(ctx, func(tx payloom.Tx) error {
		got, err := tx.GetPayment(ctx, p.Scope(), p.ID)
		if err != nil {
			return err
		}
		got.AmountRefunded++
		return tx.UpdatePayment(ctx, got)
	})
}

func TestReopenKeepsData(t *testing.T) {
	path := tempPath(t)
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := seed(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	s2 := mustOpen(t, path)
	if got := getPayment(t, s2, p); got.Amount != p.Amount {
		t.Errorf("after reopen, GetPayment(%q).Amount = %d; want %d", p.ID, got.Amount, p.Amount)
	}
	if s2.Path() != path {
		t.Errorf("Path() = %q; want %q", s2.Path(), path)
	}
}

// TestTwoStoresOneFile: two Stores on one file, as two processes would have,
// write concurrently without lost updates or busy errors.
func TestTwoStoresOneFile(t *testing.T) {
	path := tempPath(t)
	a := mustOpen(t, path)
	b := mustOpen(t, path)
	p := seed(t, a)
	const each = 25
	errs := make(chan error, 2*each)
	var wg sync.WaitGroup
	for _, s := range []*sqlite.Store{a, b} {
		for range each {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- increment(s, p)
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Update from one of two stores = %v; want nil", err)
		}
	}
	for name, s := range map[string]*sqlite.Store{"a": a, "b": b} {
		if got := getPayment(t, s, p); got.AmountRefunded != 2*each {
			t.Errorf("store %s: AmountRefunded = %d; want %d", name, got.AmountRefunded, 2*each)
		}
	}
}

// TestWriterWaitsForOtherStore: an Update waits for another Store's open
// write transaction and then succeeds.
func TestWriterWaitsForOtherStore(t *testing.T) {
	path := tempPath(t)
	a := mustOpen(t, path)
	b := mustOpen(t, path)
	p := seed(t, a)
	ctx := context.Background()
	holding := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.Update(ctx, func(tx payloom.Tx) error {
			got, err := tx.GetPayment(ctx, p.Scope(), p.ID)
			if err != nil {
				return err
			}
			got.AmountRefunded++
			if err := tx.UpdatePayment(ctx, got); err != nil {
				return err
			}
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	bDone := make(chan error, 1)
	go func() { bDone <- increment(b, p) }()
	// b cannot commit before a does: it waits for a's write lock.
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("a.Update = %v", err)
	}
	if err := <-bDone; err != nil {
		t.Fatalf("b.Update (waiting for a) = %v; want nil", err)
	}
	if got := getPayment(t, b, p); got.AmountRefunded != 2 || got.Version != 2 {
		t.Errorf("AmountRefunded, Version = %d, %d; want 2, 2", got.AmountRefunded, got.Version)
	}
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(tempPath(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if ok, err := s.MigrationsCurrent(ctx); ok || err != nil {
		t.Errorf("MigrationsCurrent() on a new file = %v, %v; want false, nil", ok, err)
	}
	for i := range 2 { // the second run is a no-op
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate() #%d = %v", i+1, err)
		}
		if ok, err := s.MigrationsCurrent(ctx); !ok || err != nil {
			t.Errorf("MigrationsCurrent() after Migrate #%d = %v, %v; want true, nil", i+1, ok, err)
		}
	}
	seed(t, s)
}

// TestMigrateConcurrently: two processes migrating one new file at once
// both succeed, and the schema is built once.
func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	path := tempPath(t)
	var stores []*sqlite.Store
	for range 4 {
		s, err := sqlite.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	errs := make(chan error, len(stores))
	for _, s := range stores {
		go func() { errs <- s.Migrate(ctx) }()
	}
	for range stores {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Migrate() = %v; want nil", err)
		}
	}
	for i, s := range stores {
		if ok, err := s.MigrationsCurrent(ctx); !ok || err != nil {
			t.Errorf("store %d: MigrationsCurrent() = %v, %v; want true, nil", i, ok, err)
		}
	}
	seed(t, stores[0])
}

// TestOpenConcurrently: several stores opening one new file at once all
// open it (in production: two processes starting on a new data directory).
// Each switches the new file to WAL; the rare race in which SQLite answers
// one of them SQLITE_BUSY at once is covered by TestPingWhileBusy, which
// does not depend on timing.
func TestOpenConcurrently(t *testing.T) {
	for round := range 20 {
		path := tempPath(t)
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				s, err := sqlite.Open(path)
				if err == nil {
					err = s.Close()
				}
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: concurrent Open() = %v; want nil", round, err)
			}
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{
		"",
		":memory:",
		filepath.Join(dir, "a?mode=memory"),
		"file:" + filepath.Join(dir, "x.db"),
		filepath.Join(dir, "missing-dir", "x.db"),
	} {
		if s, err := sqlite.Open(path); err == nil {
			s.Close()
			t.Errorf("Open(%q) = nil error; want an error", path)
		}
	}
}

func TestFileIsPrivate(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path)
	seed(t, s)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode&0o077 != 0 {
		t.Errorf("database file mode = %v; want no group or other access", mode)
	}
}

// TestUpdateCanceled: a canceled context stops an Update before fn runs.
func TestUpdateCanceled(t *testing.T) {
	s := mustOpen(t, tempPath(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := s.Update(ctx, func(payloom.Tx) error { ran = true; return nil })
	if err == nil || ran {
		t.Errorf("Update(canceled ctx) = %v, fn ran %v; want an error and no run", err, ran)
	}
}
