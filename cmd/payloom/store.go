package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/engine"
	"github.com/payloom/payloom/postgres"
	"github.com/payloom/payloom/sqlite"
)

// dbFileName is the embedded store's file inside the data directory.
const dbFileName = "payloom.db"

// migrator is what both store implementations offer besides payloom.Store.
type migrator interface {
	payloom.Store
	Migrate(ctx context.Context) error
	MigrationsCurrent(ctx context.Context) (bool, error)
}

// store is the opened store with the name of its implementation.
type store struct {
	migrator
	kind string // "sqlite" or "postgres"
}

// ensureDataDir creates the data directory readable only by its owner: it
// holds the store and the vault's key file.
func ensureDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	return nil
}

// openStore opens PostgreSQL when databaseURL is set, else the embedded
// SQLite file in dataDir (created if missing).
func openStore(ctx context.Context, dataDir, databaseURL string) (*store, error) {
	if err := ensureDataDir(dataDir); err != nil {
		return nil, err
	}
	if databaseURL != "" {
		st, err := postgres.Open(ctx, databaseURL)
		if err != nil {
			// The URL may hold a password: do not repeat it.
			return nil, fmt.Errorf("open postgres store: %w", err)
		}
		return &store{migrator: st, kind: "postgres"}, nil
	}
	st, err := sqlite.Open(filepath.Join(dataDir, dbFileName))
	if err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	return &store{migrator: st, kind: "sqlite"}, nil
}

// ensureMigrated applies pending migrations. Checking first keeps the
// operator commands read-only (no write lock) on an up-to-date store that a
// running server is using.
func (s *store) ensureMigrated(ctx context.Context) error {
	current, err := s.MigrationsCurrent(ctx)
	if err != nil {
		return fmt.Errorf("check migrations: %w", err)
	}
	if current {
		return nil
	}
	if err := s.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// admin is what the operator commands (merchants, keys, audit) work with.
type admin struct {
	store *store
	auth  payloom.AuthService
	audit payloom.AuditService
}

func (a *admin) Close() error { return a.store.Close() }

// openAdmin opens the store (migrating it if needed) and an engine for its
// AuthService. It works while a server runs on the same data: SQLite is in
// WAL mode with a busy timeout, and every change is one short transaction.
func (m *Main) openAdmin(ctx context.Context, g *globalOptions) (*admin, error) {
	logger := m.newLogger(g.logLevel)
	st, err := openStore(ctx, g.dataDir, g.databaseURL)
	if err != nil {
		return nil, err
	}
	if err := st.ensureMigrated(ctx); err != nil {
		st.Close()
		return nil, err
	}
	// Merchants and keys need neither the vault nor a processor; loading
	// the vault here would create a key file as a side effect.
	eng := engine.New(engine.Config{Store: st, Vault: noVault{}, Logger: logger})
	return &admin{store: st, auth: eng, audit: eng}, nil
}

// noVault is the vault of the operator commands, which never touch cards.
type noVault struct{}

var _ payloom.Vault = noVault{}

var errNoVault = errors.New("the vault is not loaded in operator commands")

func (noVault) Tokenize(context.Context, payloom.Scope, *payloom.CardInput) (*payloom.Token, error) {
	return nil, errNoVault
}
func (noVault) Card(context.Context, payloom.Scope, string) (*payloom.Card, error) {
	return nil, errNoVault
}
func (noVault) Reveal(context.Context, payloom.Scope, string) (*payloom.CardData, error) {
	return nil, errNoVault
}
func (noVault) CardIn(context.Context, payloom.Tx, payloom.Scope, string) (*payloom.Card, error) {
	return nil, errNoVault
}
func (noVault) RevealCard(context.Context, payloom.Scope, *payloom.Card) (*payloom.CardData, error) {
	return nil, errNoVault
}
func (noVault) ForgetCVC(payloom.Scope, string) {}
