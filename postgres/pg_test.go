package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/internal/pgtest"
)

var ctx = context.Background()

// fixture creates a merchant and a captured payment of 100 USD minor units
// (amount_captured 100, nothing refunded) in a fresh store.
func fixture(t testing.TB, s *Store) (payloom.Scope, *payloom.Payment) {
	t.Helper()
	now := time.Now().UTC()
	m := &payloom.Merchant{ID: payloom.NewID(payloom.PrefixMerchant), Name: "Acme", MinAmount: 1, MaxAmount: 1e6, CreatedAt: now}
	scope := payloom.Scope{MerchantID: m.ID}
	p := newCapturedPayment(scope, now)
	err := s.Update(ctx, func(tx payloom.Tx) error {
		if err := tx.CreateMerchant(ctx, m); err != nil {
			return err
		}
		return tx.CreatePayment(ctx, p)
	})
	if err != nil {
		t.Fatalf("create fixture: %v", err)
	}
	return scope, p
}

func newCapturedPayment(scope payloom.Scope, now time.Time) *payloom.Payment {
	return &payloom.Payment{
		ID: payloom.NewID(payloom.PrefixPayment), MerchantID: scope.MerchantID, Amount: 100, AmountCaptured: 100,
		Currency: "USD", Status: payloom.PaymentStatusCaptured, CaptureMethod: payloom.CaptureMethodAutomatic,
		CreatedAt: now, UpdatedAt: now, CreationKey: payloom.NewID(payloom.PrefixOperation),
	}
}

func getPayment(t testing.TB, s *Store, scope payloom.Scope, id string) *payloom.Payment {
	t.Helper()
	var p *payloom.Payment
	err := s.View(ctx, func(tx payloom.Tx) error {
		var err error
		p, err = tx.GetPayment(ctx, scope, id)
		return err
	})
	if err != nil {
		t.Fatalf("GetPayment(%q) = %v", id, err)
	}
	return p
}

// refundOne is the shape of every engine write: read the payment (locking
// it), change it, write it back under its Version.
func refundOne(s *Store, scope payloom.Scope, id string) error {
	return s.Update(ctx, func(tx payloom.Tx) error {
		p, err := tx.GetPayment(ctx, scope, id)
		if err != nil {
			return err
		}
		p.AmountRefunded++
		return tx.UpdatePayment(ctx, p)
	})
}

func TestOpenErrorsHideThePassword(t *testing.T) {
	t.Parallel()
	port := pgtest.Shared().Port()
	tests := []struct{ name, url string }{
		{"unparsable", "postgres://payloom:hunter2secret@127.0.0.1:" + fmt.Sprint(port) + "/db?sslmode=nonsense"},
		{"wrong password user", "postgres://nobody:hunter2secret@127.0.0.1:" + fmt.Sprint(port) + "/no_such_db?sslmode=disable"},
		{"no server", "postgres://payloom:hunter2secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(ctx, tt.url)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) = nil error; want one", tt.name)
			}
			if strings.Contains(err.Error(), "hunter2secret") {
				t.Errorf("Open(%s) error %q contains the password", tt.name, err)
			}
		})
	}
}

func TestPoolSize(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	tests := []struct {
		params string
		want   int32
	}{
		{"", defaultMaxConns},
		{"&pool_max_conns=3", 3},
	}
	for _, tt := range tests {
		s, err := Open(ctx, url+tt.params)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.pool.Config().MaxConns; got != tt.want {
			t.Errorf("Open(url%s) MaxConns = %d; want %d", tt.params, got, tt.want)
		}
		s.Close()
	}
}

func TestSessionSettings(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	tests := []struct{ setting, want string }{
		{"application_name", "payloom"},
		{"idle_in_transaction_session_timeout", "1min"},
		{"plan_cache_mode", "auto"},
	}
	for _, tt := range tests {
		var got string
		if err := s.pool.QueryRow(ctx, "SELECT current_setting($1)", tt.setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("current_setting(%q) = %q; want %q", tt.setting, got, tt.want)
		}
	}
}

// TestStatementHandlingFromURL: a URL that chooses pgx's statement handling
// gets it for every statement, keyed ones too, and every statement is then
// planned for its values; a payment can be written and read back in each.
func TestStatementHandlingFromURL(t *testing.T) {
	t.Parallel()
	tmpl, err := migratedTemplate()
	if err != nil {
		t.Fatal(err)
	}
	for _, params := range []string{
		"default_query_exec_mode=cache_statement", "default_query_exec_mode=cache_describe",
		"default_query_exec_mode=describe_exec", "description_cache_capacity=0",
		"statement_cache_capacity=0&default_query_exec_mode=cache_describe",
	} {
		t.Run(params, func(t *testing.T) {
			s, err := Open(ctx, pgtest.NewDatabaseFrom(t, tmpl)+"&"+params)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var mode string
			if err := s.pool.QueryRow(ctx, "SELECT current_setting('plan_cache_mode')").Scan(&mode); err != nil {
				t.Fatal(err)
			}
			if mode != "force_custom_plan" {
				t.Errorf("plan_cache_mode = %q; want force_custom_plan", mode)
			}
			scope, p := fixture(t, s)
			if got := getPayment(t, s, scope, p.ID); got.ID != p.ID || got.Amount != p.Amount {
				t.Errorf("GetPayment = %+v; want %+v", got, p)
			}
			p.Description = "changed"
			err = s.Update(ctx, func(tx payloom.Tx) error { return tx.UpdatePayment(ctx, p) })
			if err != nil {
				t.Errorf("UpdatePayment = %v", err)
			}
		})
	}
}

// TestUnsupportedStatementHandling: statement handling the store cannot
// work with is refused at Open, with the setting named.
func TestUnsupportedStatementHandling(t *testing.T) {
	t.Parallel()
	tmpl, err := migratedTemplate()
	if err != nil {
		t.Fatal(err)
	}
	url := pgtest.NewDatabaseFrom(t, tmpl)
	for params, want := range map[string]string{
		"default_query_exec_mode=exec":                                        "default_query_exec_mode=exec",
		"default_query_exec_mode=simple_protocol":                             "default_query_exec_mode=simple_protocol",
		"statement_cache_capacity=0":                                          "statement_cache_capacity=0",
		"default_query_exec_mode=cache_describe&description_cache_capacity=0": "description_cache_capacity=0",
	} {
		s, err := Open(ctx, url+"&"+params)
		if err == nil {
			s.Close()
			t.Errorf("Open(url&%s) = nil error; want one naming %s", params, want)
		} else if !strings.Contains(err.Error(), want) {
			t.Errorf("Open(url&%s) = %v; want an error naming %s", params, err, want)
		}
	}
}

// TestMigrateConcurrently runs Migrate from three stores (three pools, as
// three nodes starting at once) on an empty database.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	var stores []*Store
	for range 3 {
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	if ok, err := stores[0].MigrationsCurrent(ctx); ok || err != nil {
		t.Fatalf("MigrationsCurrent() on an empty database = %v, %v; want false, nil", ok, err)
	}
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.Migrate(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: Migrate() = %v; want nil", i, err)
		}
	}
	for i, s := range stores {
		if ok, err := s.MigrationsCurrent(ctx); !ok || err != nil {
			t.Errorf("node %d: MigrationsCurrent() = %v, %v; want true, nil", i, ok, err)
		}
	}
	var n int
	if err := stores[0].pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(migrations) {
		t.Errorf("schema_migrations rows = %d; want %d", n, len(migrations))
	}
	// Running it again changes nothing.
	if err := stores[1].Migrate(ctx); err != nil {
		t.Errorf("second Migrate() = %v; want nil", err)
	}
	// The advisory lock was released: a session can take it at once.
	var got bool
	if err := stores[2].pool.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, migrateLockID).Scan(&got); err != nil || !got {
		t.Errorf("pg_try_advisory_lock after Migrate = %v, %v; want true, nil", got, err)
	}
}

// TestMigrationHistory: a newer release's migration leaves an old node
// ready (rolling upgrades); a known version under another name is refused.
func TestMigrationHistory(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sql     string
		current bool
		wantErr bool
	}{
		{"newer release", `INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_the_future')`, true, false},
		{"renamed", `UPDATE schema_migrations SET name = 'edited' WHERE version = 1`, false, true},
		{"missing", `DELETE FROM schema_migrations WHERE version = 1`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			if _, err := s.pool.Exec(ctx, tt.sql); err != nil {
				t.Fatal(err)
			}
			ok, err := s.MigrationsCurrent(ctx)
			if ok != tt.current || (err != nil) != tt.wantErr {
				t.Errorf("MigrationsCurrent() = %v, %v; want %v, error %v", ok, err, tt.current, tt.wantErr)
			}
			if tt.name == "renamed" {
				if err := s.Migrate(ctx); err == nil {
					t.Errorf("Migrate() on a renamed history = nil; want an error")
				}
			}
		})
	}
}

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files []string
		ok    bool
	}{
		{"ordered", []string{"0001_init.sql", "0002_more.sql"}, true},
		{"no name", []string{"0001.sql"}, false},
		{"not a number", []string{"x_init.sql"}, false},
		{"gap", []string{"0001_init.sql", "0003_more.sql"}, false},
		{"zero", []string{"0000_init.sql"}, false},
	}
	for _, tt := range tests {
		fsys := fstest.MapFS{}
		for _, f := range tt.files {
			fsys["migrations/"+f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
		}
		_, err := loadMigrations(fsys)
		if (err == nil) != tt.ok {
			t.Errorf("loadMigrations(%v) = %v; want ok %v", tt.files, err, tt.ok)
		}
	}
	if len(migrations) == 0 {
		t.Errorf("no embedded migrations")
	}
}

// raise makes the transaction's next statement fail with the SQLSTATE,
// as PostgreSQL does on a serialization failure or deadlock.
func raise(ptx payloom.Tx, sqlstate string) error {
	_, err := ptx.(*tx).exec(ctx, "test", `DO $$ BEGIN RAISE EXCEPTION 'provoked' USING ERRCODE = '`+sqlstate+`'; END $$`)
	return err
}

// TestUpdateRetries checks which failures run fn again, that a swallowed
// failure is retried too, and that retries end.
func TestUpdateRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		sqlstate string
		failRuns int // runs that fail before one succeeds
		swallow  bool
		wantRuns int
		wantCode string
	}{
		{"serialization failure once", "40001", 1, false, 2, ""},
		{"deadlock twice", "40P01", 2, false, 3, ""},
		{"swallowed serialization failure", "40001", 1, true, 2, ""},
		{"always failing", "40001", 1000, false, maxAttempts, payloom.CodeUnavailable},
		{"other error is not retried", "23514", 1000, false, 1, payloom.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			s.backoff = func(int) time.Duration { return 0 }
			scope, p := fixture(t, s)
			runs := 0
			err := s.Update(ctx, func(tx payloom.Tx) error {
				runs++
				got, err := tx.GetPayment(ctx, scope, p.ID)
				if err != nil {
					return err
				}
				got.AmountRefunded++
				if err := tx.UpdatePayment(ctx, got); err != nil {
					return err
				}
				if runs <= tt.failRuns {
					err := raise(tx, tt.sqlstate)
					if tt.swallow {
						return nil
					}
					// As the engine would: wrapped in an application error.
					return &payloom.Error{Code: payloom.CodeInternal, Message: "x", Err: err}
				}
				return nil
			})
			if got := payloom.ErrorCode(err); got != tt.wantCode {
				t.Errorf("Update() = %v (code %q); want code %q", err, got, tt.wantCode)
			}
			if runs != tt.wantRuns {
				t.Errorf("fn ran %d times; want %d", runs, tt.wantRuns)
			}
			// Only the successful run's write committed.
			want := int64(0)
			if tt.wantCode == "" {
				want = 1
			}
			if got := getPayment(t, s, scope, p.ID); got.AmountRefunded != want || got.Version != want {
				t.Errorf("after Update: AmountRefunded %d, Version %d; want %d, %d", got.AmountRefunded, got.Version, want, want)
			}
		})
	}
}

// TestUpdateRetriesRealSerializationFailure provokes a genuine 40001: at
// REPEATABLE READ (only tests raise the level), fn's snapshot predates a
// concurrent commit to the payment, so locking the payment fails and fn
// must run again on a new snapshot.
func TestUpdateRetriesRealSerializationFailure(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	s.updateIso = pgx.RepeatableRead
	scope, p := fixture(t, s)
	runs := 0
	err := s.Update(ctx, func(tx payloom.Tx) error {
		runs++
		if _, err := tx.CountMerchants(ctx); err != nil { // takes the snapshot
			return err
		}
		if runs == 1 {
			// Another node refunds in between (another connection).
			if err := refundOne(s, scope, p.ID); err != nil {
				t.Errorf("concurrent refund: %v", err)
			}
		}
		got, err := tx.GetPayment(ctx, scope, p.ID)
		if err != nil {
			return err
		}
		got.AmountRefunded++
		return tx.UpdatePayment(ctx, got)
	})
	if err != nil {
		t.Fatalf("Update() = %v; want nil", err)
	}
	if runs != 2 {
		t.Errorf("fn ran %d times; want 2 (one serialization failure)", runs)
	}
	if got := getPayment(t, s, scope, p.ID); got.AmountRefunded != 2 {
		t.Errorf("AmountRefunded = %d; want 2 (no lost update)", got.AmountRefunded)
	}
}

// TestUpdateRetriesDeadlock makes two transactions lock two payments in
// opposite orders. PostgreSQL kills one with deadlock_detected; Update runs
// its fn again and both complete.
func TestUpdateRetriesDeadlock(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	// Detect the deadlock sooner than the default second.
	s, err := Open(ctx, url+"&deadlock_timeout=50ms")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	scope, p1 := fixture(t, s)
	p2 := newCapturedPayment(scope, time.Now().UTC())
	if err := s.Update(ctx, func(tx payloom.Tx) error { return tx.CreatePayment(ctx, p2) }); err != nil {
		t.Fatal(err)
	}

	var runs atomic.Int32
	locked := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	lockBoth := func(me int, first, second string) error {
		run := 0
		return s.Update(ctx, func(tx payloom.Tx) error {
			run++
			runs.Add(1)
			a, err := tx.GetPayment(ctx, scope, first)
			if err != nil {
				return err
			}
			if run == 1 {
				// Hold the first row until the other holds its first.
				close(locked[me])
				<-locked[1-me]
			}
			b, err := tx.GetPayment(ctx, scope, second)
			if err != nil {
				return err
			}
			for _, p := range []*payloom.Payment{a, b} {
				p.AmountRefunded++
				if err := tx.UpdatePayment(ctx, p); err != nil {
					return err
				}
			}
			return nil
		})
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = lockBoth(0, p1.ID, p2.ID) })
	wg.Go(func() { errs[1] = lockBoth(1, p2.ID, p1.ID) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Update %d = %v; want nil", i, err)
		}
	}
	if got := runs.Load(); got != 3 {
		t.Errorf("fn ran %d times in all; want 3 (one deadlock victim run again)", got)
	}
	for _, id := range []string{p1.ID, p2.ID} {
		if got := getPayment(t, s, scope, id); got.AmountRefunded != 2 {
			t.Errorf("payment %s AmountRefunded = %d; want 2", id, got.AmountRefunded)
		}
	}
}

// TestGetPaymentLocksInUpdate shows the row lock: while one Update holds a
// payment it read, another Update's GetPayment of it waits (PostgreSQL
// reports the backend waiting on a lock) and does not return until the
// first commits, then sees its write.
func TestGetPaymentLocksInUpdate(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	scope, p := fixture(t, s)
	var dbName string
	if err := s.pool.QueryRow(ctx, `SELECT current_database()`).Scan(&dbName); err != nil {
		t.Fatal(err)
	}

	holding, release := make(chan struct{}), make(chan struct{})
	var secondRead atomic.Bool
	var seen int64
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		errs[0] = s.Update(ctx, func(tx payloom.Tx) error {
			got, err := tx.GetPayment(ctx, scope, p.ID)
			if err != nil {
				return err
			}
			close(holding)
			<-release
			got.AmountRefunded = 7
			return tx.UpdatePayment(ctx, got)
		})
	})
	<-holding
	wg.Go(func() {
		errs[1] = s.Update(ctx, func(tx payloom.Tx) error {
			got, err := tx.GetPayment(ctx, scope, p.ID)
			if err != nil {
				return err
			}
			secondRead.Store(true)
			seen = got.AmountRefunded
			got.AmountRefunded++
			return tx.UpdatePayment(ctx, got)
		})
	})

	// Wait (bounded) until the second transaction is blocked on a lock.
	waiting := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !secondRead.Load(); {
		var n int
		err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND wait_event_type = 'Lock'`, dbName).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			waiting = true
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if secondRead.Load() {
		t.Errorf("GetPayment in a second Update returned while the first held the row")
	} else if !waiting {
		t.Errorf("second Update never waited on a lock")
	}
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Update %d = %v; want nil", i, err)
		}
	}
	if seen != 7 {
		t.Errorf("second Update read AmountRefunded %d; want 7 (the first's committed write)", seen)
	}
	if got := getPayment(t, s, scope, p.ID); got.AmountRefunded != 8 || got.Version != 2 {
		t.Errorf("final AmountRefunded %d Version %d; want 8, 2", got.AmountRefunded, got.Version)
	}
}

// TestConcurrentRefundsNoLostUpdate: two writers each add 1 to a payment's
// AmountRefunded 50 times. Row locks serialize them: no Conflict reaches
// them and the total is exact.
func TestConcurrentRefundsNoLostUpdate(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	scope, p := fixture(t, s)
	const perWriter = 50
	var wg sync.WaitGroup
	errs := make(chan error, 2*perWriter)
	for range 2 {
		wg.Go(func() {
			for range perWriter {
				if err := refundOne(s, scope, p.ID); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("refundOne() = %v; want nil", err)
	}
	got := getPayment(t, s, scope, p.ID)
	if got.AmountRefunded != 2*perWriter || got.Version != 2*perWriter {
		t.Errorf("AmountRefunded %d, Version %d; want %d, %d", got.AmountRefunded, got.Version, 2*perWriter, 2*perWriter)
	}
	// One more would exceed what was captured: the CHECK refuses it.
	err := refundOne(s, scope, p.ID)
	if err == nil {
		t.Errorf("refunding past amount_captured = nil; want an error")
	}
}

// TestListStaleSkipsLockedRows: inside Update, the stale-work queries skip
// rows another transaction holds, so recovery on several nodes never works
// on the same payment or refund at once.
func TestListStaleSkipsLockedRows(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	scope, p1 := fixture(t, s)
	old := time.Now().UTC().Add(-time.Hour)
	p2 := newCapturedPayment(scope, old)
	var r1, r2 *payloom.Refund
	err := s.Update(ctx, func(tx payloom.Tx) error {
		if err := tx.CreatePayment(ctx, p2); err != nil {
			return err
		}
		for _, p := range []*payloom.Payment{p1, p2} {
			a := &payloom.Attempt{ID: payloom.NewID(payloom.PrefixAttempt), PaymentID: p.ID, Processor: "sandbox",
				Status: payloom.AttemptStatusPending, CreatedAt: old}
			if err := tx.CreateAttempt(ctx, a); err != nil {
				return err
			}
		}
		r1 = &payloom.Refund{ID: payloom.NewID(payloom.PrefixRefund), MerchantID: scope.MerchantID, PaymentID: p1.ID,
			Amount: 1, Currency: "USD", Status: payloom.RefundStatusPending, CreatedAt: old, CreationKey: "a"}
		r2 = &payloom.Refund{ID: payloom.NewID(payloom.PrefixRefund), MerchantID: scope.MerchantID, PaymentID: p2.ID,
			Amount: 1, Currency: "USD", Status: payloom.RefundStatusPending, CreatedAt: old, CreationKey: "b"}
		if err := tx.CreateRefund(ctx, r1); err != nil {
			return err
		}
		return tx.CreateRefund(ctx, r2)
	})
	if err != nil {
		t.Fatal(err)
	}

	holding, release, done := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() {
		done <- s.Update(ctx, func(tx payloom.Tx) error {
			if _, err := tx.GetPayment(ctx, scope, p1.ID); err != nil {
				return err
			}
			if _, err := tx.GetRefund(ctx, scope, r1.ID); err != nil {
				return err
			}
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	cutoff := time.Now().UTC()
	err = s.Update(ctx, func(tx payloom.Tx) error {
		ps, err := tx.ListStalePayments(ctx, cutoff, 10)
		if err != nil {
			return err
		}
		if len(ps) != 1 || ps[0].ID != p2.ID {
			t.Errorf("ListStalePayments with %s locked = %v; want only %s", p1.ID, paymentIDs(ps), p2.ID)
		}
		rs, err := tx.ListStaleRefunds(ctx, cutoff, 10)
		if err != nil {
			return err
		}
		if len(rs) != 1 || rs[0].ID != r2.ID {
			t.Errorf("ListStaleRefunds with %s locked returned %d refunds; want only %s", r1.ID, len(rs), r2.ID)
		}
		return nil
	})
	if err != nil {
		t.Errorf("Update(ListStale*) = %v", err)
	}
	// A View does not lock, so it sees both.
	err = s.View(ctx, func(tx payloom.Tx) error {
		ps, err := tx.ListStalePayments(ctx, cutoff, 10)
		if err == nil && len(ps) != 2 {
			t.Errorf("ListStalePayments in a View = %v; want both", paymentIDs(ps))
		}
		return err
	})
	if err != nil {
		t.Errorf("View(ListStalePayments) = %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("holding Update = %v", err)
	}
}

func paymentIDs(ps []*payloom.Payment) []string {
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	return ids
}

// TestCreateKeepsTransactionUsable: losing a unique race inside a
// transaction answers CodeAlreadyExists and the transaction still commits
// its other writes (PostgreSQL would abort it after a failed statement).
func TestCreateKeepsTransactionUsable(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	scope, _ := fixture(t, s)
	now := time.Now().UTC()
	k := &payloom.IdempotencyKey{ID: payloom.NewID(payloom.PrefixIdempotency), MerchantID: scope.MerchantID,
		Key: "k1", Method: "POST", Path: "/v1/payments", CreatedAt: now}
	op := &payloom.SandboxOperation{Key: "att_1", Kind: "authorize", Amount: 1, Currency: "USD", CreatedAt: now}
	if err := s.Update(ctx, func(tx payloom.Tx) error {
		if err := tx.CreateIdempotencyKey(ctx, k); err != nil {
			return err
		}
		return tx.CreateSandboxOperation(ctx, op)
	}); err != nil {
		t.Fatal(err)
	}
	p := newCapturedPayment(scope, now)
	err := s.Update(ctx, func(tx payloom.Tx) error {
		dup := *k
		dup.ID = payloom.NewID(payloom.PrefixIdempotency)
		if err := tx.CreateIdempotencyKey(ctx, &dup); !payloom.IsCode(err, payloom.CodeAlreadyExists) {
			t.Errorf("CreateIdempotencyKey(duplicate) = %v; want %s", err, payloom.CodeAlreadyExists)
		}
		if err := tx.CreateSandboxOperation(ctx, op); !payloom.IsCode(err, payloom.CodeAlreadyExists) {
			t.Errorf("CreateSandboxOperation(duplicate) = %v; want %s", err, payloom.CodeAlreadyExists)
		}
		return tx.CreatePayment(ctx, p)
	})
	if err != nil {
		t.Fatalf("Update after duplicates = %v; want nil", err)
	}
	getPayment(t, s, scope, p.ID)
}

// TestViewIsOneSnapshot: a View's reads agree with each other even when an
// Update commits between them.
func TestViewIsOneSnapshot(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	scope, p := fixture(t, s)
	err := s.View(ctx, func(tx payloom.Tx) error {
		before, err := tx.GetPayment(ctx, scope, p.ID)
		if err != nil {
			return err
		}
		if err := refundOne(s, scope, p.ID); err != nil {
			return err
		}
		after, err := tx.GetPayment(ctx, scope, p.ID)
		if err != nil {
			return err
		}
		if after.AmountRefunded != before.AmountRefunded {
			t.Errorf("second read in one View = %d; want %d (the snapshot)", after.AmountRefunded, before.AmountRefunded)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDBErrorCodes checks the translation of driver errors.
func TestDBErrorCodes(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	scope, _ := fixture(t, s)
	now := time.Now().UTC()
	tests := []struct {
		name string
		fn   func(tx payloom.Tx) error
		code string
	}{
		{"attempt of a missing payment", func(tx payloom.Tx) error {
			return tx.CreateAttempt(ctx, &payloom.Attempt{ID: "att_x", PaymentID: "pay_missing", Status: "pending", CreatedAt: now})
		}, payloom.CodeNotFound},
		{"payment of a missing merchant", func(tx payloom.Tx) error {
			return tx.CreatePayment(ctx, newCapturedPayment(payloom.Scope{MerchantID: "mrch_missing"}, now))
		}, payloom.CodeNotFound},
		{"check violation", func(tx payloom.Tx) error {
			p := newCapturedPayment(scope, now)
			p.AmountRefunded = p.AmountCaptured + 1
			return tx.CreatePayment(ctx, p)
		}, payloom.CodeInternal},
		{"zero created_at", func(tx payloom.Tx) error {
			return tx.CreatePayment(ctx, newCapturedPayment(scope, time.Time{}))
		}, payloom.CodeInternal},
	}
	for _, tt := range tests {
		err := s.Update(ctx, tt.fn)
		if got := payloom.ErrorCode(err); got != tt.code {
			t.Errorf("%s: Update() = %v (code %q); want code %q", tt.name, err, got, tt.code)
		}
		var pe *payloom.Error
		if tt.code == payloom.CodeInternal && errors.As(err, &pe) {
			t.Errorf("%s: store failure is a *payloom.Error %v; want a plain error", tt.name, pe)
		}
	}
}

// BenchmarkCreatePayment measures the payment_created phase: one Update
// writing a payment, its pending attempt and its event. Run it with
// PAYLOOM_PGTEST_FSYNC=on for commit latencies that mean anything.
func BenchmarkCreatePayment(b *testing.B) {
	s := openStore(b)
	scope, _ := fixture(b, s)
	create := func() error {
		now := time.Now().UTC()
		p := newCapturedPayment(scope, now)
		p.Status, p.AmountCaptured = payloom.PaymentStatusProcessing, 0
		a := &payloom.Attempt{ID: payloom.NewID(payloom.PrefixAttempt), PaymentID: p.ID, Processor: "sandbox",
			Status: payloom.AttemptStatusPending, CreatedAt: now}
		ev, err := payloom.NewEvent(scope, payloom.EventPaymentCreated, p.ID, p, now)
		if err != nil {
			return err
		}
		return s.Update(ctx, func(tx payloom.Tx) error {
			if err := tx.CreatePayment(ctx, p); err != nil {
				return err
			}
			if err := tx.CreateAttempt(ctx, a); err != nil {
				return err
			}
			return tx.CreateEvent(ctx, ev)
		})
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if err := create(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := create(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// TestLockedParentDoesNotBlockChildren: while an Update holds a payment
// (and its merchant) for writing, another transaction can still create
// rows that refer to them: the row lock is FOR NO KEY UPDATE, which foreign
// key checks do not wait for. The second store gives up on any lock wait
// after lock_timeout, so a blocking lock fails the test instead of hanging
// it.
func TestLockedParentDoesNotBlockChildren(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	scope, p := fixture(t, s)
	var dbName string
	if err := s.pool.QueryRow(ctx, `SELECT current_database()`).Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	other, err := Open(ctx, pgtest.Shared().URL(dbName)+"&lock_timeout=10s")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	holding, release, done := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() {
		done <- s.Update(ctx, func(tx payloom.Tx) error {
			if _, err := tx.GetMerchant(ctx, scope.MerchantID); err != nil {
				return err
			}
			if _, err := tx.GetPayment(ctx, scope, p.ID); err != nil {
				return err
			}
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	now := time.Now().UTC()
	err = other.Update(ctx, func(tx payloom.Tx) error {
		a := &payloom.Attempt{ID: payloom.NewID(payloom.PrefixAttempt), PaymentID: p.ID, Processor: "sandbox",
			Status: payloom.AttemptStatusPending, CreatedAt: now}
		if err := tx.CreateAttempt(ctx, a); err != nil {
			return err
		}
		ev, err := payloom.NewEvent(scope, payloom.EventPaymentCreated, p.ID, p, now)
		if err != nil {
			return err
		}
		if err := tx.CreateEvent(ctx, ev); err != nil {
			return err
		}
		return tx.CreatePayment(ctx, newCapturedPayment(scope, now))
	})
	close(release)
	if err != nil {
		t.Errorf("creating children of a locked payment and merchant = %v; want nil", err)
	}
	if err := <-done; err != nil {
		t.Errorf("holding Update = %v", err)
	}
}

// TestEventDataKeptExactly: event snapshots come back byte for byte
// (webhook signatures are computed over them), not re-encoded as jsonb
// would.
func TestEventDataKeptExactly(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	scope, p := fixture(t, s)
	data := []byte(`{ "z": 1,  "a": {"b": [1, 2.50]}, "a2": "\u00e9" }`)
	ev := &payloom.Event{ID: payloom.NewID(payloom.PrefixEvent), Object: "event", MerchantID: scope.MerchantID,
		Type: payloom.EventPaymentCreated, ObjectID: p.ID, Data: payloom.EventData{Object: data}, CreatedAt: time.Now()}
	if err := s.Update(ctx, func(tx payloom.Tx) error { return tx.CreateEvent(ctx, ev) }); err != nil {
		t.Fatal(err)
	}
	err := s.View(ctx, func(tx payloom.Tx) error {
		got, err := tx.GetEvent(ctx, scope, ev.ID)
		if err == nil && string(got.Data.Object) != string(data) {
			t.Errorf("GetEvent(%q).Data.Object = %s; want %s", ev.ID, got.Data.Object, data)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKeyedStatementPlans checks the generic plan of every keyed statement
// (tx.go, Statement plans) on fresh tables without statistics, where a
// wrong index is most tempting: it reads only through the indexes the
// statement names, and never scans a table.
func TestKeyedStatementPlans(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if _, err := c.Exec(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
		t.Fatal(err)
	}
	if len(keyedStatements) < 20 {
		t.Fatalf("%d keyed statements; want the payment path's 20 or more", len(keyedStatements))
	}
	param := regexp.MustCompile(`\$(\d+)`)
	index := regexp.MustCompile(`(?:Index Scan|Index Only Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\w+)`)
	for i, k := range keyedStatements {
		n := 0
		for _, m := range param.FindAllStringSubmatch(k.sql, -1) {
			v, _ := strconv.Atoi(m[1])
			n = max(n, v)
		}
		name := fmt.Sprintf("keyed_%d", i)
		if _, err := c.Exec(ctx, "PREPARE "+name+" AS "+k.sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Errorf("PREPARE %s: %v", k.sql, err)
			continue
		}
		args := strings.TrimSuffix(strings.Repeat("NULL, ", n), ", ")
		rows, err := c.Query(ctx, "EXPLAIN EXECUTE "+name+"("+args+")", pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Errorf("EXPLAIN %s: %v", k.sql, err)
			continue
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(lines, "\n")
		used := index.FindAllStringSubmatch(plan, -1)
		if strings.Contains(plan, "Seq Scan") || len(used) == 0 && len(k.indexes) > 0 {
			t.Errorf("generic plan of\n%s\nscans a table or uses no index; want %v:\n%s", k.sql, k.indexes, plan)
			continue
		}
		for _, u := range used {
			if !slices.Contains(k.indexes, u[1]) {
				t.Errorf("generic plan of\n%s\nuses %s; want only %v:\n%s", k.sql, u[1], k.indexes, plan)
			}
		}
	}
}

func TestConnParams(t *testing.T) {
	tests := []struct {
		conn string
		want []string
	}{
		{"postgres://u:statement_cache_capacity@h/db_cache_capacity?sslmode=disable&pool_max_conns=4",
			[]string{"sslmode", "pool_max_conns"}},
		{"postgresql://h/db?default_query_exec_mode=exec", []string{"default_query_exec_mode"}},
		{"host=h dbname=d statement_cache_capacity=0", []string{"host", "dbname", "statement_cache_capacity"}},
	}
	for _, tt := range tests {
		got := connParams(tt.conn)
		want := map[string]bool{}
		for _, k := range tt.want {
			want[k] = true
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("connParams(%q) = %v; want %v", tt.conn, got, want)
		}
	}
}
