package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/payloom/payloom"
)

func openTest(t *testing.T, path string, busy time.Duration) *Store {
	t.Helper()
	s, err := open(path, busy)
	if err != nil {
		t.Fatalf("open(%q): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func pragma(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var v string
	if err := db.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

// TestPragmas: the settings durability and integrity rest on are in effect.
func TestPragmas(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "p.db"), defaultBusyTimeout)
	tests := []struct {
		db     string
		pragma string
		want   string
	}{
		{"write", "journal_mode", "wal"},
		{"write", "synchronous", "2"}, // FULL: a returned commit is fsynced
		{"write", "foreign_keys", "1"},
		{"write", "busy_timeout", "10000"},
		{"write", "query_only", "0"},
		{"write", "temp_store", "2"}, // MEMORY: no temporary file per batch
		{"read", "journal_mode", "wal"},
		{"read", "foreign_keys", "1"},
		{"read", "busy_timeout", "10000"},
		{"read", "query_only", "1"},
		{"read", "temp_store", "2"},
	}
	for _, tt := range tests {
		db := s.wdb
		if tt.db == "read" {
			db = s.rdb
		}
		if got := pragma(t, db, tt.pragma); got != tt.want {
			t.Errorf("%s connection: PRAGMA %s = %q; want %q", tt.db, tt.pragma, got, tt.want)
		}
	}
}

// holdWriteLock takes the file's write lock from a separate connection,
// as another process would, until the returned func is called.
func holdWriteLock(t *testing.T, path string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite3", path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		tx.Rollback()
		db.Close()
	}
}

// TestUpdateRetriesBusy: while another process holds the lock past the
// busy timeout, Update retries, and succeeds once the lock is free.
func TestUpdateRetriesBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := openTest(t, path, 20*time.Millisecond)
	release := holdWriteLock(t, path)
	var retries []int
	s.onBusy = func(attempt int) {
		retries = append(retries, attempt)
		if attempt == 1 {
			release()
		}
	}
	ran := 0
	err := s.Update(context.Background(), func(tx payloom.Tx) error {
		ran++
		return tx.CreateMerchant(context.Background(), &payloom.Merchant{ID: "mrch_1", Name: "m", CreatedAt: time.Now()})
	})
	if err != nil {
		t.Fatalf("Update after the lock was released = %v; want nil", err)
	}
	if len(retries) != 2 || ran != 1 {
		t.Errorf("busy retries = %v, fn runs = %d; want [0 1], 1", retries, ran)
	}
}

// TestUpdateBusyIsBounded: a lock that is never released ends in an error,
// not an endless wait.
func TestUpdateBusyIsBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := openTest(t, path, 5*time.Millisecond)
	release := holdWriteLock(t, path)
	defer release()
	tries := 0
	s.onBusy = func(int) { tries++ }
	err := s.Update(context.Background(), func(payloom.Tx) error { return nil })
	if !isBusy(err) {
		t.Errorf("Update under a held lock = %v; want SQLITE_BUSY", err)
	}
	if tries != busyRetries {
		t.Errorf("busy retries = %d; want %d", tries, busyRetries)
	}
}

func TestIsBusy(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{sqlite3.Error{Code: sqlite3.ErrBusy}, true},
		{sqlite3.Error{Code: sqlite3.ErrLocked}, true},
		{errors.Join(errors.New("wrapped"), sqlite3.Error{Code: sqlite3.ErrBusy}), true},
		{sqlite3.Error{Code: sqlite3.ErrConstraint}, false},
		{errors.New("busy"), false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := isBusy(tt.err); got != tt.want {
			t.Errorf("isBusy(%v) = %v; want %v", tt.err, got, tt.want)
		}
	}
}

// TestMigrateRefusesNewerSchema: a file migrated by a newer binary is not
// touched, and MigrationsCurrent says so.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "p.db"), defaultBusyTimeout)
	if _, err := s.wdb.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)`,
		len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err == nil {
		t.Errorf("Migrate() on a newer schema = nil; want an error")
	}
	if ok, err := s.MigrationsCurrent(ctx); ok || err == nil {
		t.Errorf("MigrationsCurrent() on a newer schema = %v, %v; want false and an error", ok, err)
	}
}

func TestLoadMigrations(t *testing.T) {
	if len(migrations) == 0 || migrations[0].version != 1 || migrations[0].name != "init" {
		t.Fatalf("embedded migrations = %+v; want 0001_init first", migrations)
	}
	file := &fstest.MapFile{Data: []byte("SELECT 1;")}
	tests := []struct {
		files []string
		ok    bool
	}{
		{[]string{"0001_a.sql", "0002_b.sql"}, true},
		{[]string{"0002_b.sql", "0001_a.sql"}, true},
		{[]string{"0001_a.sql", "0003_c.sql"}, false}, // gap
		{[]string{"0001.sql"}, false},
		{[]string{"x_a.sql"}, false},
		{[]string{"0000_a.sql"}, false},
		{[]string{"0001_a.sql", "1_b.sql"}, false}, // two version 1s
	}
	for _, tt := range tests {
		fsys := fstest.MapFS{}
		for _, f := range tt.files {
			fsys["migrations/"+f] = file
		}
		ms, err := loadMigrations(fsys)
		if (err == nil) != tt.ok {
			t.Errorf("loadMigrations(%v) = %v; want ok %v", tt.files, err, tt.ok)
		}
		for i, m := range ms {
			if m.version != i+1 {
				t.Errorf("loadMigrations(%v)[%d].version = %d; want %d", tt.files, i, m.version, i+1)
			}
		}
	}
}

func TestTimeEncoding(t *testing.T) {
	tests := []struct {
		in   time.Time
		null bool
		err  bool
	}{
		{time.Time{}, true, false},
		{time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600)), false, false},
		{time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), true, true},
		{time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), true, true},
	}
	for _, tt := range tests {
		var e enc
		v := e.time(tt.in)
		if (v == nil) != tt.null || (e.err != nil) != tt.err {
			t.Errorf("enc.time(%v) = %v, %v; want null %v, error %v", tt.in, v, e.err, tt.null, tt.err)
			continue
		}
		if v != nil {
			got := decTime(sql.NullInt64{Int64: v.(int64), Valid: true})
			if !got.Equal(tt.in) || got.Location() != time.UTC {
				t.Errorf("decTime(enc.time(%v)) = %v; want the same instant in UTC", tt.in, got)
			}
		}
	}
}

// TestDurability: what the server logs at start is what the connection uses.
func TestDurability(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "p.db"), defaultBusyTimeout)
	jm, sync, err := s.Durability(context.Background())
	if err != nil || jm != "wal" || sync != "full" {
		t.Errorf("Durability() = %q, %q, %v; want \"wal\", \"full\", nil", jm, sync, err)
	}
}

// TestPingWhileBusy: Open's connect is tried again while SQLite answers
// SQLITE_BUSY, until the busy timeout; any other answer ends it at once.
func TestPingWhileBusy(t *testing.T) {
	busy := sqlite3.Error{Code: sqlite3.ErrBusy}
	other := errors.New("unable to open database file")
	tests := []struct {
		name    string
		answers []error
		want    error
		calls   int
	}{
		{"busy twice, then open", []error{busy, busy, nil}, nil, 3},
		{"another error", []error{other, nil}, other, 1},
		{"busy past the timeout", nil, busy, 0},
	}
	for _, tt := range tests {
		calls := 0
		ping := func() error {
			calls++
			if tt.answers == nil {
				return busy
			}
			return tt.answers[calls-1]
		}
		err := pingWhileBusy(ping, 50*time.Millisecond)
		if !errors.Is(err, tt.want) && !(isBusy(err) && isBusy(tt.want)) {
			t.Errorf("%s: pingWhileBusy = %v; want %v", tt.name, err, tt.want)
		}
		if tt.calls > 0 && calls != tt.calls {
			t.Errorf("%s: %d pings; want %d", tt.name, calls, tt.calls)
		}
		if tt.answers == nil && calls < 2 {
			t.Errorf("%s: %d pings; want it tried again until the timeout", tt.name, calls)
		}
	}
}
