package postgres

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/payloom/payloom"
)

// The audit log (issue 4). Rows are never updated or deleted; the table's
// trigger refuses it.

const auditCols = `id, merchant_id, livemode, action, outcome, actor, source, target_id, details, created_at`

func (t *tx) CreateAuditEvent(ctx context.Context, ev *payloom.AuditEvent) error {
	var e enc
	details := ev.Details
	if details == nil {
		details = map[string]string{}
	}
	b, err := json.Marshal(details)
	if err != nil {
		return scanErr("audit event", err)
	}
	args := []any{ev.ID, ev.MerchantID, ev.Livemode, string(ev.Action), string(ev.Outcome), ev.Actor, ev.Source,
		ev.TargetID, b, e.timeNotNull("audit event created_at", ev.CreatedAt)}
	if e.err != nil {
		return e.err
	}
	return t.insertNew(ctx, "audit event", `INSERT INTO audit_events (`+auditCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, args...)
}

func (t *tx) ListAuditEvents(ctx context.Context, f payloom.AuditFilter) ([]*payloom.AuditEvent, bool, error) {
	var a args
	var where []string
	if f.MerchantID != nil {
		where = append(where, "merchant_id = "+a.arg(*f.MerchantID))
	}
	if f.Livemode != nil {
		where = append(where, "livemode = "+a.arg(*f.Livemode))
	}
	if f.Action != nil {
		where = append(where, "action = "+a.arg(string(*f.Action)))
	}
	return listWhere(ctx, t, "audit event", "audit_events", auditCols, f.ListParams, a, where, t.scanAuditEvent)
}

func (t *tx) scanAuditEvent(row rowScanner) (*payloom.AuditEvent, error) {
	var ev payloom.AuditEvent
	var action, outcome string
	var details []byte
	var created pgtype.Timestamptz
	if err := row.Scan(&ev.ID, &ev.MerchantID, &ev.Livemode, &action, &outcome, &ev.Actor, &ev.Source,
		&ev.TargetID, &details, &created); err != nil {
		return nil, t.dbError("audit event", err)
	}
	m, err := decMetadata(details)
	if err != nil {
		return nil, scanErr("audit event", err)
	}
	ev.Object = "audit_event"
	ev.Action = payloom.AuditAction(action)
	ev.Outcome = payloom.AuditOutcome(outcome)
	ev.Details = m
	ev.CreatedAt = decTime(created)
	return &ev, nil
}

// permissionNames is k.Permissions as a text[] argument.
func permissionNames(ps []payloom.Permission) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}
