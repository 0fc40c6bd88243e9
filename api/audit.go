package api

import (
	"slices"

	"github.com/payloom/payloom"
)

// auditActions are the actions GET /v1/audit_events filters on.
var auditActions = []payloom.AuditAction{
	payloom.AuditAPIKeyCreated, payloom.AuditAPIKeyRevoked, payloom.AuditVaultRotate, payloom.AuditVaultRetire,
	payloom.AuditRawCardDataUsed, payloom.AuditPermissionDenied,
}

// listAuditEvents lists the audit events of the caller's scope: its
// merchant and mode. Events that concern no merchant (vault rotations)
// are the operator's, listed by `payloom audit list`.
func (s *server) listAuditEvents(c *call) (any, error) {
	lp, err := parseListParams(c.query, payloom.PrefixAuditEvent)
	if err != nil {
		return nil, err
	}
	f := payloom.AuditFilter{ListParams: lp, MerchantID: &c.scope.MerchantID, Livemode: &c.scope.Livemode}
	if v, ok := param(c.query, "action"); ok {
		a := payloom.AuditAction(v)
		if !slices.Contains(auditActions, a) {
			return nil, payloom.FieldError("action", "action must be one of %s", joinQuoted(auditActions))
		}
		f.Action = &a
	}
	return s.audit.ListAuditEvents(c.ctx(), f)
}
