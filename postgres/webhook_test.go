package postgres

import (
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/internal/pgtest"
)

// TestWebhookMigrationOnExistingData: events written before the webhooks
// migration count as fanned out; events a node of the previous release
// writes after it (without dispatched_at) are fanned out.
func TestWebhookMigrationOnExistingData(t *testing.T) {
	t.Parallel()
	s, err := Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, q := range []string{createMigrationsTable, migrations[0].sql,
		`INSERT INTO schema_migrations (version, name) VALUES (1, 'init')`} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
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
		if _, err := s.pool.Exec(ctx, `INSERT INTO events (id, merchant_id, livemode, type, object_id, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			ev.ID, ev.MerchantID, ev.Livemode, string(ev.Type), ev.ObjectID, string(ev.Data.Object), ev.CreatedAt); err != nil {
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
