package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one numbered file, migrations/NNNN_name.sql. Migrations are
// forward-only: a released file is never edited, a change is a new file.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations is the embedded list, in version order. A malformed file name
// is a build mistake, caught by the package's tests.
var migrations = mustLoadMigrations(migrationFS)

func mustLoadMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic(err)
	}
	return ms
}

func loadMigrations(fsys fs.FS) ([]migration, error) {
	files, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, f := range files {
		base := strings.TrimSuffix(path.Base(f), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || name == "" {
			return nil, fmt.Errorf("sqlite: migration file %q is not named NNNN_name.sql", f)
		}
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("sqlite: migration versions must be 1, 2, 3 ... without gaps; found %d at position %d", m.version, i+1)
		}
	}
	return ms, nil
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at INTEGER NOT NULL
) STRICT`

// Migrate applies the migrations the file lacks, all in one transaction.
// The transaction begins IMMEDIATE, so a second process migrating at the
// same time waits, then finds nothing left to do. It refuses a file that a
// newer binary has migrated further.
func (s *Store) Migrate(ctx context.Context) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		// Statements of a write batch must not be interrupted (see tx.c).
		ctx := context.WithoutCancel(ctx)
		if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
		applied, err := appliedMigrations(ctx, tx)
		if err != nil {
			return err
		}
		if err := checkApplied(applied); err != nil {
			return err
		}
		for _, m := range migrations {
			if _, ok := applied[m.version]; ok {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("sqlite: migration %04d_%s: %w", m.version, m.name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, time.Now().UnixNano()); err != nil {
				return fmt.Errorf("sqlite: record migration %d: %w", m.version, err)
			}
		}
		return nil
	})
}

// MigrationsCurrent reports whether every embedded migration is applied. It
// returns an error for a file migrated by a newer binary.
func (s *Store) MigrationsCurrent(ctx context.Context) (bool, error) {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return false, fmt.Errorf("sqlite: %w", err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return false, fmt.Errorf("sqlite: %w", err)
	}
	if n == 0 {
		return false, nil
	}
	applied, err := appliedMigrations(ctx, tx)
	if err != nil {
		return false, err
	}
	if err := checkApplied(applied); err != nil {
		return false, err
	}
	return len(applied) == len(migrations), nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func appliedMigrations(ctx context.Context, q querier) (map[int]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT version, name FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[int]string{}
	for rows.Next() {
		var v int
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			return nil, fmt.Errorf("sqlite: read schema_migrations: %w", err)
		}
		applied[v] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: read schema_migrations: %w", err)
	}
	return applied, nil
}

// checkApplied refuses a database whose history this binary does not know:
// a newer binary's migration, or a renamed one.
func checkApplied(applied map[int]string) error {
	for v, name := range applied {
		if v < 1 || v > len(migrations) {
			return fmt.Errorf("sqlite: database has migration %d (%s), unknown to this binary: it was migrated by a newer version", v, name)
		}
		if m := migrations[v-1]; m.name != name {
			return fmt.Errorf("sqlite: database migration %d is %q, this binary's is %q", v, name, m.name)
		}
	}
	return nil
}
