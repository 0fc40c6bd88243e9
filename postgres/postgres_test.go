package postgres

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/internal/pgtest"
	"github.com/payloom/payloom/storetest"
)

// TestMain runs every test of the package against one throwaway cluster.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// template is a database migrated once, which openStore clones: cheaper
// than migrating every test's database.
var template struct {
	once sync.Once
	name string
	err  error
}

func migratedTemplate() (string, error) {
	template.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := pgtest.Shared()
		name := pgtest.RandomName("template_")
		if err := c.CreateDatabase(ctx, name); err != nil {
			template.err = err
			return
		}
		s, err := Open(ctx, c.URL(name))
		if err != nil {
			template.err = err
			return
		}
		defer s.Close()
		if err := s.Migrate(ctx); err != nil {
			template.err = fmt.Errorf("Migrate() = %w", err)
			return
		}
		template.name = name
	})
	return template.name, template.err
}

// openStore returns a migrated store on a fresh database, closed and
// dropped when the test ends.
func openStore(t testing.TB) *Store {
	t.Helper()
	tmpl, err := migratedTemplate()
	if err != nil {
		t.Fatalf("migrated template: %v", err)
	}
	url := pgtest.NewDatabaseFrom(t, tmpl)
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open(%q) = %v", url, err)
	}
	t.Cleanup(func() { s.Close() })
	if ok, err := s.MigrationsCurrent(context.Background()); !ok || err != nil {
		t.Fatalf("MigrationsCurrent() on a clone of the template = %v, %v; want true", ok, err)
	}
	return s
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) payloom.Store { return openStore(t) })
}
