package engine

import (
	"context"

	"github.com/payloom/payloom"
)

var _ payloom.AuditService = (*Engine)(nil)

// RecordAudit implements payloom.AuditService. Callers that cannot record
// an event must not go on with the action it describes: an audit log with
// holes is no audit log.
func (e *Engine) RecordAudit(ctx context.Context, ev *payloom.AuditEvent) error {
	if ev.ID == "" {
		ev.ID = payloom.NewID(payloom.PrefixAuditEvent)
	}
	if ev.CreatedAt.IsZero() {
		ev.CreatedAt = e.now()
	}
	ev.Object = "audit_event"
	if ev.Details == nil {
		ev.Details = map[string]string{}
	}
	return e.update(ctx, "record_audit", func(tx payloom.Tx) error {
		return tx.CreateAuditEvent(ctx, ev)
	})
}

// ListAuditEvents implements payloom.AuditService.
func (e *Engine) ListAuditEvents(ctx context.Context, f payloom.AuditFilter) (*payloom.List[*payloom.AuditEvent], error) {
	clampLimit(&f.ListParams)
	var data []*payloom.AuditEvent
	var more bool
	err := e.view(ctx, "list_audit_events", func(tx payloom.Tx) error {
		var err error
		data, more, err = tx.ListAuditEvents(ctx, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	return newList(data, more), nil
}
