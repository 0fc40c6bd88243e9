package payloom

import (
	"context"
	"time"
)

// Merchant is a business that takes payments through Payloom.
type Merchant struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// MinAmount and MaxAmount bound a payment's amount in minor units
	// (defaults DefaultMinAmount and DefaultMaxAmount).
	MinAmount int64 `json:"min_amount"`
	MaxAmount int64 `json:"max_amount"`
	// IdempotencyKeyOptional turns off the live-mode rule that
	// POST /v1/payments must carry an Idempotency-Key.
	IdempotencyKeyOptional bool      `json:"idempotency_key_optional"`
	CreatedAt              time.Time `json:"created_at"`
}

// APIKey is a secret key's stored form: never the key itself, only a SHA-256
// hash of it and a lookup string to find the row. A key belongs to one
// merchant, or is a platform key (MerchantID "") that may act for any
// merchant by naming it. Livemode fixes the mode it sees.
type APIKey struct {
	ID         string `json:"id"`
	MerchantID string `json:"merchant_id,omitempty"`
	Platform   bool   `json:"platform"`
	Livemode   bool   `json:"livemode"`
	// Lookup is a non-secret part of the key, unique, used to find the row
	// before the hash is compared in constant time.
	Lookup string `json:"-"`
	Hash   []byte `json:"-"`
	// Last4 is the key's last four characters, for display.
	Last4 string `json:"last4"`
	// Permissions is what the key may do (see Permission), in the order
	// of Permissions.
	Permissions []Permission `json:"permissions"`
	CreatedAt   time.Time    `json:"created_at"`
	RevokedAt   *time.Time   `json:"revoked_at,omitempty"`
}

// AuthService manages merchants and API keys and authenticates requests.
type AuthService interface {
	// Authenticate resolves a secret key. CodeAuthFailed for an unknown,
	// malformed or revoked key (the message does not say which).
	Authenticate(ctx context.Context, secret string) (*APIKey, error)
	// CreateMerchant creates a merchant with default limits unless m sets
	// them. CodeValidation for an empty name or bad limits.
	CreateMerchant(ctx context.Context, m *Merchant) error
	// Merchant returns a merchant. CodeNotFound.
	Merchant(ctx context.Context, id string) (*Merchant, error)
	// Bootstrap creates m (as CreateMerchant) and a test-mode key for it,
	// in one transaction, but only if no merchant exists yet; created
	// reports whether it did. CodeValidation as CreateMerchant.
	Bootstrap(ctx context.Context, m *Merchant) (key *APIKey, secret Secret, created bool, err error)
	// CountMerchants returns how many merchants exist.
	CountMerchants(ctx context.Context) (int, error)
	// CreateAPIKey makes a key for a merchant (merchantID != "") or a
	// platform key (merchantID == ""), returning the stored form and the
	// secret, which is never available again. The key gets permissions,
	// or DefaultPermissions when none are given. An api_key.created audit
	// event by the actor in ctx is written in the same transaction.
	// CodeNotFound for an unknown merchant, CodeValidation (param
	// "permissions") for an unknown permission.
	CreateAPIKey(ctx context.Context, merchantID string, livemode bool, permissions ...Permission) (*APIKey, Secret, error)
	// RevokeAPIKey revokes a key by ID, with an api_key.revoked audit
	// event in the same transaction. CodeNotFound.
	RevokeAPIKey(ctx context.Context, id string) error
}
