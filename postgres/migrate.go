package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one numbered file, migrations/NNNN_name.sql. Migrations are
// forward-only: a released file is never edited, a change is a new file,
// and each must leave the schema usable by the previous release, which is
// still serving on other nodes while it runs.
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
			return nil, fmt.Errorf("postgres: migration file %q is not named NNNN_name.sql", f)
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
			return nil, fmt.Errorf("postgres: migration versions must be 1, 2, 3 ... without gaps; found %d at position %d", m.version, i+1)
		}
	}
	return ms, nil
}

// migrateLockID is the pg_advisory_lock key that serializes Migrate across
// nodes ("payloom" in ASCII): any value no other application on the
// database uses.
const migrateLockID int64 = 0x7061796c6f6f6d

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// Migrate applies the embedded migrations the database lacks, each in its
// own transaction. Any number of nodes may call it at once: a session-level
// advisory lock lets one of them migrate while the others wait, then find
// nothing left to do. Migrations a newer release applied are left alone, so
// an old node keeps starting during a rolling upgrade; a known version
// recorded under another name is refused (the files were edited or
// renumbered).
func (s *Store) Migrate(ctx context.Context) (err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockID); err != nil {
		return fmt.Errorf("postgres: migrate: take lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLockID); uerr != nil {
			// Ending the session is the other way to release the lock;
			// the pool drops the closed connection.
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()

	if _, err := conn.Exec(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	applied, err := appliedMigrations(ctx, conn.Conn())
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
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// No arguments: pgx sends it as a simple query, so a file may
			// hold several statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migration %04d_%s: %w", m.version, m.name, err)
		}
	}
	return nil
}

// MigrationsCurrent reports whether every embedded migration is applied
// (the readiness check). Later migrations from a newer release do not make
// it false: migrations are written so that the previous release keeps
// working on the new schema.
func (s *Store) MigrationsCurrent(ctx context.Context) (bool, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("postgres: %w", err)
	}
	defer conn.Release()
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return false, fmt.Errorf("postgres: %w", err)
	}
	if !exists {
		return false, nil
	}
	applied, err := appliedMigrations(ctx, conn.Conn())
	if err != nil {
		return false, err
	}
	if err := checkApplied(applied); err != nil {
		return false, err
	}
	for _, m := range migrations {
		if _, ok := applied[m.version]; !ok {
			return false, nil
		}
	}
	return true, nil
}

func appliedMigrations(ctx context.Context, conn *pgx.Conn) (map[int]string, error) {
	rows, err := conn.Query(ctx, `SELECT version, name FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("postgres: read schema_migrations: %w", err)
	}
	applied := map[int]string{}
	var v int
	var name string
	_, err = pgx.ForEachRow(rows, []any{&v, &name}, func() error {
		applied[v] = name
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: read schema_migrations: %w", err)
	}
	return applied, nil
}

// checkApplied refuses a database whose record of a version this binary
// knows names another migration.
func checkApplied(applied map[int]string) error {
	for _, m := range migrations {
		if name, ok := applied[m.version]; ok && name != m.name {
			return fmt.Errorf("postgres: database migration %d is %q, this binary's is %q", m.version, name, m.name)
		}
	}
	return nil
}
