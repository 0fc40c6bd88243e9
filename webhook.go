package payloom

import (
	"context"
	"time"
)

// ID prefixes of the webhook objects.
const (
	PrefixWebhookEndpoint = "we"
	PrefixWebhookDelivery = "wd"
	PrefixWebhookAttempt  = "wa"
)

// EventWebhookEndpointDisabled is recorded when Payloom disables an
// endpoint by itself: it answered 410 Gone, or every delivery to it failed
// for days. Its data object is the endpoint.
const EventWebhookEndpointDisabled EventType = "webhook_endpoint.disabled"

// WebhookEventAll in EnabledEvents subscribes an endpoint to every event
// type, including types added later.
const WebhookEventAll = "*"

// WebhookEndpoint is a merchant's URL that receives events of its scope.
//
// Secret signs every delivery (Standard Webhooks, HMAC-SHA256). It must be
// readable to sign, so the stores keep it as it is, like every
// Stripe-style webhook sender does: it authenticates Payloom to the
// merchant and opens nothing in Payloom, unlike an API key (stored only as
// a hash) or a card number (encrypted by the vault). It is shown to the
// merchant once, at creation or rotation. After a rotation PreviousSecret
// also signs until PreviousSecretExpiresAt, so that the receiver can switch
// without losing a delivery.
type WebhookEndpoint struct {
	ID          string `json:"id"`
	Object      string `json:"object"` // "webhook_endpoint"
	MerchantID  string `json:"merchant_id"`
	Livemode    bool   `json:"livemode"`
	URL         string `json:"url"`
	Description string `json:"description"`
	// EnabledEvents holds event type names, or the single entry "*".
	EnabledEvents []string `json:"enabled_events"`
	// Enabled is false once the merchant or Payloom disabled the endpoint;
	// DisabledReason says why when Payloom did.
	Enabled        bool   `json:"enabled"`
	DisabledReason string `json:"disabled_reason,omitempty"`

	Secret                  Secret     `json:"-"`
	PreviousSecret          Secret     `json:"-"`
	PreviousSecretExpiresAt *time.Time `json:"-"`
	// FailingSince is the time of the first failed attempt since the last
	// successful one: an endpoint failing for Options.DisableAfter is
	// disabled.
	FailingSince *time.Time `json:"-"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	// Version is incremented by every UpdateWebhookEndpoint; an update
	// with a stale Version fails with CodeConflict.
	Version int64 `json:"-"`
}

// Scope returns the endpoint's tenancy scope.
func (e *WebhookEndpoint) Scope() Scope { return Scope{MerchantID: e.MerchantID, Livemode: e.Livemode} }

// Subscribed reports whether the endpoint wants events of type typ.
func (e *WebhookEndpoint) Subscribed(typ EventType) bool {
	for _, v := range e.EnabledEvents {
		if v == WebhookEventAll || v == string(typ) {
			return true
		}
	}
	return false
}

// WebhookDeliveryStatus is where the delivery of one event to one
// endpoint stands.
type WebhookDeliveryStatus string

const (
	// WebhookDeliveryPending: not delivered yet; due at NextAttemptAt.
	WebhookDeliveryPending WebhookDeliveryStatus = "pending"
	// WebhookDeliverySucceeded: a 2xx answer was received. Final.
	WebhookDeliverySucceeded WebhookDeliveryStatus = "succeeded"
	// WebhookDeliveryFailed: the retry schedule is spent, or the endpoint
	// was disabled or deleted. Final.
	WebhookDeliveryFailed WebhookDeliveryStatus = "failed"
)

// WebhookDelivery is the durable work item "send this event to this
// endpoint". The dispatcher claims due deliveries with a lease (LeaseOwner
// until LeaseUntil) so that two nodes never send one attempt at once, and a
// dead node's claim expires.
type WebhookDelivery struct {
	ID         string                `json:"id"`
	Object     string                `json:"object"` // "webhook_delivery"
	EventID    string                `json:"event_id"`
	EndpointID string                `json:"endpoint_id"`
	MerchantID string                `json:"merchant_id"`
	Livemode   bool                  `json:"livemode"`
	Status     WebhookDeliveryStatus `json:"status"`
	// Attempts counts the HTTP requests made so far.
	Attempts       int       `json:"attempts"`
	NextAttemptAt  time.Time `json:"next_attempt_at"`
	LeaseOwner     string    `json:"-"`
	LeaseUntil     time.Time `json:"-"`
	LastStatusCode int       `json:"last_status_code,omitempty"`
	LastError      string    `json:"last_error,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	// Version is incremented by every UpdateWebhookDelivery and every
	// claim, so a node whose lease was taken over cannot write.
	Version int64 `json:"-"`
}

// Scope returns the delivery's tenancy scope.
func (d *WebhookDelivery) Scope() Scope { return Scope{MerchantID: d.MerchantID, Livemode: d.Livemode} }

// WebhookAttempt records one HTTP request of a delivery: when, the status
// code (0 when no response came), how long it took and what went wrong.
type WebhookAttempt struct {
	ID         string    `json:"id"`
	Object     string    `json:"object"` // "webhook_attempt"
	DeliveryID string    `json:"delivery_id"`
	EventID    string    `json:"event_id"`
	EndpointID string    `json:"endpoint_id"`
	MerchantID string    `json:"merchant_id"`
	Livemode   bool      `json:"livemode"`
	URL        string    `json:"url"`
	At         time.Time `json:"created_at"`
	StatusCode int       `json:"status_code"`
	DurationMS int64     `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
}

// WebhookEndpointCreate is a request to create an endpoint.
type WebhookEndpointCreate struct {
	URL           string
	EnabledEvents []string
	Description   string
}

// WebhookEndpointUpdate is a partial update: nil fields are unchanged.
type WebhookEndpointUpdate struct {
	URL           *string
	EnabledEvents *[]string
	Enabled       *bool
	Description   *string
}

// WebhookService manages webhook endpoints and deliveries for the API.
type WebhookService interface {
	// CreateEndpoint validates and stores an endpoint and returns it with
	// its signing secret, which is never shown again. CodeValidation with
	// params "url" (malformed, not https in live mode, or resolving to a
	// private address in live mode), "enabled_events", "description".
	CreateEndpoint(ctx context.Context, scope Scope, req *WebhookEndpointCreate) (*WebhookEndpoint, Secret, error)
	// Endpoint returns one endpoint. CodeNotFound.
	Endpoint(ctx context.Context, scope Scope, id string) (*WebhookEndpoint, error)
	ListEndpoints(ctx context.Context, scope Scope, p ListParams) (*List[*WebhookEndpoint], error)
	// UpdateEndpoint changes the set fields; enabling an endpoint clears
	// DisabledReason. CodeNotFound, CodeValidation as CreateEndpoint.
	UpdateEndpoint(ctx context.Context, scope Scope, id string, req *WebhookEndpointUpdate) (*WebhookEndpoint, error)
	// DeleteEndpoint deletes an endpoint; its pending deliveries fail when
	// they come due, and its attempts stay listed. CodeNotFound.
	DeleteEndpoint(ctx context.Context, scope Scope, id string) error
	// RotateSecret gives the endpoint a new secret, returned once; the
	// old one keeps signing for 24 hours. CodeNotFound.
	RotateSecret(ctx context.Context, scope Scope, id string) (*WebhookEndpoint, Secret, error)
	// ListDeliveryAttempts lists every attempt to deliver an event, oldest
	// first. CodeNotFound for an unknown event.
	ListDeliveryAttempts(ctx context.Context, scope Scope, eventID string) ([]*WebhookAttempt, error)
	// Resend creates a new delivery of the event, due now, to every
	// enabled endpoint subscribed to its type. CodeNotFound.
	Resend(ctx context.Context, scope Scope, eventID string) ([]*WebhookDelivery, error)
}
