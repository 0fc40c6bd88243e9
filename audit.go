package payloom

import (
	"context"
	"time"
)

// PrefixAuditEvent is the ID prefix of audit events.
const PrefixAuditEvent = "aud"

// AuditAction names a security-relevant action.
type AuditAction string

const (
	AuditAPIKeyCreated    AuditAction = "api_key.created"
	AuditAPIKeyRevoked    AuditAction = "api_key.revoked"
	AuditVaultRotate      AuditAction = "vault.rotate"
	AuditVaultRetire      AuditAction = "vault.retire"
	AuditRawCardDataUsed  AuditAction = "raw_card_data.used"
	AuditPermissionDenied AuditAction = "permission.denied"
)

// AuditOutcome says how the action ended.
type AuditOutcome string

const (
	AuditSuccess AuditOutcome = "success"
	// AuditDenied: the actor was not allowed to do it.
	AuditDenied AuditOutcome = "denied"
	// AuditFailure: it was allowed but did not complete.
	AuditFailure AuditOutcome = "failure"
)

// Actors and sources that are not an API key or an address.
const (
	// AuditActorCLI and AuditSourceCLI: an operator ran the payloom command.
	AuditActorCLI  = "cli"
	AuditSourceCLI = "cli"
	// AuditActorSystem: Payloom itself (bootstrap, background jobs).
	AuditActorSystem  = "system"
	AuditSourceSystem = "system"
)

// AuditEvent records one security-relevant action: who (Actor: an API key
// ID, "cli" or "system"), what (Action, on TargetID), when, from where
// (Source: the client's IP address for the API, "cli" for the command
// line), and how it ended. It is written in the same transaction as the
// action where the action has one, so that neither exists without the
// other. MerchantID is empty for actions that concern no merchant (a vault
// key rotation).
//
// Details never hold card data or secrets: only names (a permission, a
// route, a key ID) and reasons.
type AuditEvent struct {
	ID         string            `json:"id"`
	Object     string            `json:"object"` // "audit_event"
	MerchantID string            `json:"merchant_id,omitempty"`
	Livemode   bool              `json:"livemode"`
	Action     AuditAction       `json:"action"`
	Outcome    AuditOutcome      `json:"outcome"`
	Actor      string            `json:"actor"`
	Source     string            `json:"source"`
	TargetID   string            `json:"target_id,omitempty"`
	Details    map[string]string `json:"details"`
	CreatedAt  time.Time         `json:"created_at"`
}

// NewAuditEvent returns an event with a fresh ID, dated now, by the actor
// in ctx (see WithActor; "system" when none).
func NewAuditEvent(ctx context.Context, scope Scope, action AuditAction, outcome AuditOutcome, targetID string, now time.Time) *AuditEvent {
	a := ActorFrom(ctx)
	return &AuditEvent{
		ID: NewID(PrefixAuditEvent), Object: "audit_event",
		MerchantID: scope.MerchantID, Livemode: scope.Livemode,
		Action: action, Outcome: outcome, Actor: a.ID, Source: a.Source,
		TargetID: targetID, Details: map[string]string{}, CreatedAt: now,
	}
}

// AuditFilter filters ListAuditEvents. Unlike the other lists it is not
// bound to a scope: the command line lists every merchant's events. The
// API always sets MerchantID and Livemode to the caller's scope.
type AuditFilter struct {
	ListParams
	// MerchantID nil: any merchant; pointing to "": only events that
	// concern no merchant.
	MerchantID *string
	Livemode   *bool
	Action     *AuditAction
}

// Actor is who acts and from where, for the audit log.
type Actor struct {
	// ID is an API key ID, AuditActorCLI or AuditActorSystem.
	ID string
	// Source is the client's IP address, AuditSourceCLI or
	// AuditSourceSystem.
	Source string
}

type actorKey struct{}

// WithActor returns a context that names the actor of what is done with
// it: services record it in the audit events they write.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor WithActor put in ctx, or the system.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok && a.ID != "" {
		if a.Source == "" {
			a.Source = AuditSourceSystem
		}
		return a
	}
	return Actor{ID: AuditActorSystem, Source: AuditSourceSystem}
}

// AuditService records and lists audit events.
type AuditService interface {
	// RecordAudit stores an event in a transaction of its own, for
	// actions that have none (a permission denied, raw card data
	// received). Its ID and CreatedAt are set when empty.
	RecordAudit(ctx context.Context, e *AuditEvent) error
	// ListAuditEvents lists events newest first.
	ListAuditEvents(ctx context.Context, f AuditFilter) (*List[*AuditEvent], error)
}
