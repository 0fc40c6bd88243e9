package payloom

import (
	"context"
	"time"
)

// PrefixProcessorAccount is the ID prefix of processor accounts.
const PrefixProcessorAccount = "pa"

// Connector names a processor account may use. The sandbox is built in and
// needs no account; an account names one of the others.
const (
	ConnectorSimulator = "simulator"
	ConnectorStripe    = "stripe"
	ConnectorAdyen     = "adyen"
)

// ProcessorAccount is a merchant's account at a processor, in one mode. Its
// Name is what payments and attempts show as their processor, unique in the
// scope.
//
// The credentials are sealed by the vault under the merchant's data key
// (Ciphertext, KeyID, bound to the account's ID): no store column, log line
// or response holds them in the clear. CredentialKeys lists which keys are
// set (e.g. "api_key"), which is all the API ever shows after creation.
type ProcessorAccount struct {
	ID             string   `json:"id"`
	Object         string   `json:"object"` // "processor_account"
	MerchantID     string   `json:"merchant_id"`
	Livemode       bool     `json:"livemode"`
	Name           string   `json:"name"`
	Connector      string   `json:"connector"`
	Enabled        bool     `json:"enabled"`
	CredentialKeys []string `json:"credential_keys"`
	Ciphertext     []byte   `json:"-"`
	KeyID          string   `json:"-"`
	// DeletedAt is set by DELETE: a deleted account takes no new
	// payments and is hidden from the API, but its row, name and
	// credentials stay so that the payments it authorized can still be
	// captured, voided, refunded and reconciled through it.
	DeletedAt *time.Time `json:"-"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	Version   int64      `json:"-"`
}

// Scope returns the account's scope.
func (a *ProcessorAccount) Scope() Scope {
	return Scope{MerchantID: a.MerchantID, Livemode: a.Livemode}
}

// CredentialsAAD binds an account's sealed credentials to the account.
func (a *ProcessorAccount) CredentialsAAD() string { return "processor_account/" + a.ID }

// ProcessorAccountTx stores processor accounts (a part of Tx).
// CreateProcessorAccount returns CodeAlreadyExists for a Name used in the
// scope (the transaction stays usable), deleted accounts included: a name
// is never reused, since attempts find their processor by it.
// UpdateProcessorAccount writes Enabled, CredentialKeys, Ciphertext, KeyID,
// DeletedAt and UpdatedAt (Name and Connector are immutable), checks and
// increments Version. GetProcessorAccount returns deleted accounts too.
// ListProcessorAccounts returns every account of the scope, deleted ones
// included, in creation order (a merchant has a handful).
type ProcessorAccountTx interface {
	CreateProcessorAccount(ctx context.Context, a *ProcessorAccount) error
	GetProcessorAccount(ctx context.Context, scope Scope, id string) (*ProcessorAccount, error)
	ListProcessorAccounts(ctx context.Context, scope Scope) ([]*ProcessorAccount, error)
	UpdateProcessorAccount(ctx context.Context, a *ProcessorAccount) error
}

// RoutingRule is one of a scope's ordered routing rules: a payment that
// matches every set condition is routed to Processors (account IDs), in
// order, or by Split; a rule has exactly one of the two. The first
// matching rule wins.
type RoutingRule struct {
	Conditions RoutingConditions `json:"conditions"`
	Processors []string          `json:"processors,omitempty"`
	Split      []RoutingSplit    `json:"split,omitempty"`
}

// RoutingSplit is one account of a weighted split. A payment's order over
// the split's accounts is drawn by weight from its payment ID (weighted
// rendezvous hashing), so that every time the payment is routed (a
// fallback, recovery) it is the same draw, and disabling or reordering
// accounts leaves the others' order unchanged: the first is the payment's
// processor, the others its fallbacks.
type RoutingSplit struct {
	Processor string `json:"processor"`
	Weight    int    `json:"weight"`
}

// RoutingConditions are a rule's conditions; an unset one matches any
// payment. Amounts are minor units of the payment's currency. CardCountry
// is the card's issuing country (CardSummary.Country); a card whose
// country is unknown matches no CardCountry.
type RoutingConditions struct {
	PaymentMethodType string            `json:"payment_method_type,omitempty"`
	Currency          Currency          `json:"currency,omitempty"`
	AmountGTE         *int64            `json:"amount_gte,omitempty"`
	AmountLTE         *int64            `json:"amount_lte,omitempty"`
	CardBrand         string            `json:"card_brand,omitempty"`
	CardCountry       string            `json:"card_country,omitempty"`
	Metadata          map[string]string `json:"metadata,omitempty"`
}

// Routing is a scope's routing rules. Version is 0 for a scope that never
// set any; PutRouting with Version 0 creates the row, else it checks and
// increments Version (CodeConflict when stale).
type Routing struct {
	MerchantID string        `json:"-"`
	Livemode   bool          `json:"livemode"`
	Rules      []RoutingRule `json:"rules"`
	UpdatedAt  time.Time     `json:"updated_at"`
	Version    int64         `json:"-"`
}

// RoutingTx stores routing rules (a part of Tx). GetRouting returns
// CodeNotFound for a scope without rules.
type RoutingTx interface {
	GetRouting(ctx context.Context, scope Scope) (*Routing, error)
	PutRouting(ctx context.Context, r *Routing) error
}

// ProcessorAccountCreate is a request to add a processor account. The
// credentials a connector needs: simulator {base_url}; stripe {api_key,
// backend_url (optional)}; adyen {api_key, merchant_account, base_url}.
type ProcessorAccountCreate struct {
	Name        string
	Connector   string
	Credentials map[string]Secret
	// Enabled defaults to true.
	Enabled *bool
}

// ProcessorAccountUpdate changes the set fields. Credentials, if set,
// replace the account's credentials whole (validated as at creation).
type ProcessorAccountUpdate struct {
	Enabled     *bool
	Credentials map[string]Secret
}

// ProcessorAccountHealth is this node's view of an account's processor:
// its circuit breaker's state ("closed", "open", "half_open"), the error
// rate and median latency of its last calls (at most 100).
type ProcessorAccountHealth struct {
	Object              string     `json:"object"` // "processor_account_health"
	ProcessorAccount    string     `json:"processor_account"`
	Name                string     `json:"name"`
	State               string     `json:"state"`
	ErrorRate           float64    `json:"error_rate"`
	Calls               int        `json:"calls"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	P50MS               int64      `json:"p50_ms"`
	OpenUntil           *time.Time `json:"open_until,omitempty"`
}

// ProcessorAccountService manages processor accounts and routing rules.
// Errors: CodeNotFound for an account not in the scope (or deleted),
// CodeValidation with the offending param, CodeAlreadyExists (param
// "name") for a name used in the scope, CodeConflict for a concurrent
// change of the routing rules.
type ProcessorAccountService interface {
	CreateProcessorAccount(ctx context.Context, scope Scope, req *ProcessorAccountCreate) (*ProcessorAccount, error)
	ProcessorAccount(ctx context.Context, scope Scope, id string) (*ProcessorAccount, error)
	// ListProcessorAccounts lists the scope's accounts (not deleted ones)
	// in creation order.
	ListProcessorAccounts(ctx context.Context, scope Scope) (*List[*ProcessorAccount], error)
	UpdateProcessorAccount(ctx context.Context, scope Scope, id string, req *ProcessorAccountUpdate) (*ProcessorAccount, error)
	// DeleteProcessorAccount removes an account from routing and from the
	// API; it is refused (CodeValidation, param "id") while a routing rule
	// names it.
	DeleteProcessorAccount(ctx context.Context, scope Scope, id string) error
	ProcessorAccountHealth(ctx context.Context, scope Scope, id string) (*ProcessorAccountHealth, error)
	// Routing returns the scope's rules (none if never set).
	Routing(ctx context.Context, scope Scope) (*Routing, error)
	// PutRouting replaces the scope's rules. CodeValidation with params
	// like rules[2][processors][0] or rules[1][split][0][weight].
	PutRouting(ctx context.Context, scope Scope, rules []RoutingRule) (*Routing, error)
}
