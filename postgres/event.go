package postgres

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/payloom/payloom"
)

const eventCols = `id, merchant_id, livemode, type, object_id, data, created_at`

func (t *tx) CreateEvent(ctx context.Context, ev *payloom.Event) error {
	var e enc
	args := []any{ev.ID, ev.MerchantID, ev.Livemode, string(ev.Type), ev.ObjectID, string(ev.Data.Object),
		e.timeNotNull("event created_at", ev.CreatedAt)}
	if e.err != nil {
		return e.err
	}
	// dispatched_at: see payloom.Tx.CreateEvent.
	return t.insertNew(ctx, "event", insertEventSQL, append([]any{t.prepared}, args...)...)
}

// insertEventSQL looks for the merchant's endpoints through their scope
// index: there are few per merchant.
var insertEventSQL = keyed(`INSERT INTO events (`+eventCols+`, dispatched_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7::timestamptz, CASE WHEN EXISTS (SELECT 1 FROM webhook_endpoints
		WHERE merchant_id = $2 AND livemode = $3 AND enabled) THEN NULL ELSE $7::timestamptz END)`,
	"webhook_endpoints_scope")

func (t *tx) GetEvent(ctx context.Context, scope payloom.Scope, id string) (*payloom.Event, error) {
	return t.scanEvent(t.tx.QueryRow(ctx,
		`SELECT `+eventCols+` FROM events WHERE id = $1 AND merchant_id = $2 AND livemode = $3`,
		id, scope.MerchantID, scope.Livemode))
}

func (t *tx) ListEvents(ctx context.Context, scope payloom.Scope, f payloom.EventFilter) ([]*payloom.Event, bool, error) {
	var a args
	var where []string
	if f.Type != nil {
		where = append(where, "type = "+a.arg(string(*f.Type)))
	}
	if f.ObjectID != nil {
		where = append(where, "object_id = "+a.arg(*f.ObjectID))
	}
	return list(ctx, t, "event", "events", eventCols, scope, f.ListParams, a, where, t.scanEvent)
}

func (t *tx) scanEvent(row rowScanner) (*payloom.Event, error) {
	var ev payloom.Event
	var typ, data string
	var created pgtype.Timestamptz
	if err := row.Scan(&ev.ID, &ev.MerchantID, &ev.Livemode, &typ, &ev.ObjectID, &data, &created); err != nil {
		return nil, t.dbError("event", err)
	}
	ev.Object = "event"
	ev.Type = payloom.EventType(typ)
	ev.Data.Object = json.RawMessage(data)
	ev.CreatedAt = decTime(created)
	return &ev, nil
}
