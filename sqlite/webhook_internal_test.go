package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/payloom/payloom"
)

// TestWebhookMigrationOnExistingData: events written before the webhooks
// migration count as fanned out (no endpoint existed to want them); events
// written after it are fanned out.
func TestWebhookMigrationOnExistingData(t *testing.T) {
	ctx := context.Background()
	s, err := open(filepath.Join(t.TempDir(), "p.db"), defaultBusyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// The previous release's schema.
	for _, q := range []string{createMigrationsTable, migrations[0].sql,
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, 'init', 0)`} {
		if _, err := s.wdb.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	scope := payloom.Scope{MerchantID: "mrch_1"}
	event := func() *payloom.Event {
		ev, err := payloom.NewEvent(scope, payloom.EventPaymentCreated, "pay_1", map[string]int{"amount": 1}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		// The previous release's INSERT (a node not yet upgraded).
		if _, err := s.wdb.Exec(`INSERT INTO events (id, merchant_id, livemode, type, object_id, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			ev.ID, ev.MerchantID, ev.Livemode, string(ev.Type), ev.ObjectID, string(ev.Data.Object), ev.CreatedAt.UnixNano()); err != nil {
			t.Fatalf("insert event: %v", err)
		}
		return ev
	}
	err = s.Update(ctx, func(tx payloom.Tx) error {
		return tx.CreateMerchant(ctx, &payloom.Merchant{ID: scope.MerchantID, Name: "m", CreatedAt: time.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	old := event()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate() over the previous release's data = %v", err)
	}
	fresh := event()
	var got []*payloom.Event
	err = s.View(ctx, func(tx payloom.Tx) error {
		got, err = tx.ListUndispatchedEvents(ctx, 10)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != fresh.ID {
		t.Errorf("ListUndispatchedEvents after the migration = %d events; want only %s (not the older %s)", len(got), fresh.ID, old.ID)
	}
}
