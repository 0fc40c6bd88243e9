package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

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
	_, err := t.exec(ctx, "event", `INSERT INTO events (`+eventCols+`, dispatched_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, CASE WHEN EXISTS (SELECT 1 FROM webhook_endpoints
			WHERE merchant_id = ?2 AND livemode = ?3 AND enabled = 1) THEN NULL ELSE ?7 END)`, args...)
	return err
}

func (t *tx) GetEvent(ctx context.Context, scope payloom.Scope, id string) (*payloom.Event, error) {
	return scanEvent(t.tx.QueryRowContext(t.c(ctx),
		`SELECT `+eventCols+` FROM events WHERE id = ? AND merchant_id = ? AND livemode = ?`,
		id, scope.MerchantID, scope.Livemode))
}

func (t *tx) ListEvents(ctx context.Context, scope payloom.Scope, f payloom.EventFilter) ([]*payloom.Event, bool, error) {
	var where []string
	var args []any
	if f.Type != nil {
		where = append(where, "type = ?")
		args = append(args, string(*f.Type))
	}
	if f.ObjectID != nil {
		where = append(where, "object_id = ?")
		args = append(args, *f.ObjectID)
	}
	return list(ctx, t, "event", "events", eventCols, scope, f.ListParams, where, args, scanEvent)
}

func scanEvent(row scanner) (*payloom.Event, error) {
	var ev payloom.Event
	var typ, data string
	var created sql.NullInt64
	if err := row.Scan(&ev.ID, &ev.MerchantID, &ev.Livemode, &typ, &ev.ObjectID, &data, &created); err != nil {
		return nil, dbError("event", err)
	}
	ev.Object = "event"
	ev.Type = payloom.EventType(typ)
	ev.Data.Object = json.RawMessage(data)
	ev.CreatedAt = decTime(created)
	return &ev, nil
}
