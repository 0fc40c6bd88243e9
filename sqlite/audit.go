package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"

	"github.com/payloom/payloom"
)

// The audit log (issue 4). Rows are never updated or deleted; the table's
// triggers refuse it.

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
		ev.TargetID, string(b), e.timeNotNull("audit event created_at", ev.CreatedAt)}
	if e.err != nil {
		return e.err
	}
	_, err = t.exec(ctx, "audit event", `INSERT INTO audit_events (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	return err
}

func (t *tx) ListAuditEvents(ctx context.Context, f payloom.AuditFilter) ([]*payloom.AuditEvent, bool, error) {
	var where []string
	var args []any
	if f.MerchantID != nil {
		where = append(where, "merchant_id = ?")
		args = append(args, *f.MerchantID)
	}
	if f.Livemode != nil {
		where = append(where, "livemode = ?")
		args = append(args, *f.Livemode)
	}
	if f.Action != nil {
		where = append(where, "action = ?")
		args = append(args, string(*f.Action))
	}
	return listWhere(ctx, t, "audit event", "audit_events", auditCols, f.ListParams, where, args, scanAuditEvent)
}

func scanAuditEvent(row scanner) (*payloom.AuditEvent, error) {
	var ev payloom.AuditEvent
	var action, outcome, details string
	var created sql.NullInt64
	if err := row.Scan(&ev.ID, &ev.MerchantID, &ev.Livemode, &action, &outcome, &ev.Actor, &ev.Source,
		&ev.TargetID, &details, &created); err != nil {
		return nil, dbError("audit event", err)
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

// decPermissions reads api_keys.permissions. A name this binary does not
// know (written by a newer one) is kept: it grants nothing here.
func decPermissions(s string) []payloom.Permission {
	out := []payloom.Permission{}
	for _, p := range strings.Split(s, ",") {
		if p != "" {
			out = append(out, payloom.Permission(p))
		}
	}
	return out
}
