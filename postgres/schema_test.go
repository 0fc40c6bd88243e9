package postgres

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/internal/pgtest"
)

// secretColumn matches column names meant for a card number or a CVC.
var secretColumn = regexp.MustCompile(`(^|_)(cvc|cvc2|cvv|cvv2|csc|pan|security_code|card_code|card_number|number)(_|$)`)

// cardTables are the tables that describe cards, with every column and its
// type. A new column there must be added here, after asking whether it
// could hold a card number or a CVC: only ciphertext (bytea written by the
// vault) holds card data, and no column can hold a CVC.
var cardTables = map[string]map[string]string{
	"cards": {
		"id": "text", "merchant_id": "text", "livemode": "boolean", "token": "text", "brand": "text",
		"first6": "text", "last4": "text", "exp_month": "integer", "exp_year": "integer",
		"fingerprint": "text", "holder_name": "text", "ciphertext": "bytea", "key_id": "text",
		"created_at": "timestamp with time zone", "country": "text",
	},
	"payment_methods": {
		"id": "text", "merchant_id": "text", "livemode": "boolean", "customer_id": "text", "type": "text",
		"card_token": "text", "brand": "text", "first6": "text", "last4": "text", "exp_month": "integer",
		"exp_year": "integer", "fingerprint": "text", "holder_name": "text",
		"created_at": "timestamp with time zone", "updated_at": "timestamp with time zone", "country": "text",
	},
}

// TestSchemaHasNoColumnForCVC: no column anywhere is named for a card
// number or a CVC, and the tables about cards have exactly the reviewed
// columns and types.
func TestSchemaHasNoColumnForCVC(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	rows, err := s.pool.Query(ctx, `SELECT table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]map[string]string{}
	n := 0
	for rows.Next() {
		var table, col, typ string
		if err := rows.Scan(&table, &col, &typ); err != nil {
			t.Fatal(err)
		}
		n++
		if secretColumn.MatchString(strings.ToLower(col)) {
			t.Errorf("column %s.%s (%s) is named for card data", table, col, typ)
		}
		if got[table] == nil {
			got[table] = map[string]string{}
		}
		got[table][col] = typ
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Fatalf("read %d columns; the query is broken", n)
	}
	for table, want := range cardTables {
		for col, typ := range got[table] {
			if want[col] != typ {
				t.Errorf("column %s.%s %s is not in the reviewed list (want %q)", table, col, typ, want[col])
			}
		}
		for col := range want {
			if _, ok := got[table][col]; !ok {
				t.Errorf("column %s.%s is missing", table, col)
			}
		}
	}
}

// TestAuditEventsAppendOnly: the table refuses changes to written events,
// whatever the code above it does.
func TestAuditEventsAppendOnly(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ev := &payloom.AuditEvent{ID: payloom.NewID(payloom.PrefixAuditEvent), Action: payloom.AuditVaultRotate,
		Outcome: payloom.AuditSuccess, Actor: "cli", Source: "cli", CreatedAt: time.Now().UTC()}
	if err := s.Update(ctx, func(tx payloom.Tx) error { return tx.CreateAuditEvent(ctx, ev) }); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE audit_events SET outcome = 'failure'`,
		`DELETE FROM audit_events`,
	} {
		if _, err := s.pool.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s = %v; want the append-only error", q, err)
		}
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE outcome = 'success'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("audit events after the refused changes = %d, %v; want 1", n, err)
	}
}

// TestPermissionsMigrationOnExistingKeys: keys made before permissions
// existed, and keys a node of the previous release makes after the
// migration (an INSERT without the column), get the default set.
func TestPermissionsMigrationOnExistingKeys(t *testing.T) {
	t.Parallel()
	s, err := Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	old := []string{createMigrationsTable}
	for _, m := range migrations {
		if m.name == "customers" {
			break
		}
		old = append(old, m.sql, `INSERT INTO schema_migrations (version, name) VALUES (`+strconv.Itoa(m.version)+`, '`+m.name+`')`)
	}
	old = append(old, `INSERT INTO merchants (id, name, min_amount, max_amount, idempotency_key_optional, created_at)
		VALUES ('mrch_1', 'm', 1, 2, false, now())`)
	for _, q := range old {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	insertKey := func(id, lookup string) {
		t.Helper()
		if _, err := s.pool.Exec(ctx, `INSERT INTO api_keys (id, merchant_id, platform, livemode, lookup, hash, last4, created_at)
			VALUES ($1, 'mrch_1', false, false, $2, '\x00', 'abcd', now())`, id, lookup); err != nil {
			t.Fatal(err)
		}
	}
	insertKey("key_old", "lk_old")
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate() over the previous release's data = %v", err)
	}
	insertKey("key_new", "lk_new")
	for _, id := range []string{"key_old", "key_new"} {
		var k *payloom.APIKey
		if err := s.View(ctx, func(tx payloom.Tx) error {
			var err error
			k, err = tx.GetAPIKey(ctx, id)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if got, want := payloom.JoinPermissions(k.Permissions), payloom.JoinPermissions(payloom.DefaultPermissions()); got != want {
			t.Errorf("permissions of %s = %s; want the default %s", id, got, want)
		}
	}
}
