package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/payloom/payloom"
)

// Webhook endpoints.

const webhookEndpointCols = `id, merchant_id, livemode, url, description, enabled_events, enabled, disabled_reason,
	secret, previous_secret, previous_secret_expires_at, failing_since, created_at, updated_at, version`

// webhookEndpointMutable are the columns UpdateWebhookEndpoint writes, in
// webhookEndpointArgs order.
const webhookEndpointSet = `url = ?, description = ?, enabled_events = ?, enabled = ?, disabled_reason = ?,
	secret = ?, previous_secret = ?, previous_secret_expires_at = ?, failing_since = ?, updated_at = ?`

func webhookEndpointArgs(e *enc, we *payloom.WebhookEndpoint) []any {
	events := we.EnabledEvents
	if events == nil {
		events = []string{}
	}
	return []any{we.URL, we.Description, e.json(events, false), we.Enabled, we.DisabledReason,
		we.Secret.Reveal(), we.PreviousSecret.Reveal(), e.timePtr(we.PreviousSecretExpiresAt), e.timePtr(we.FailingSince),
		e.time(we.UpdatedAt)}
}

func (t *tx) CreateWebhookEndpoint(ctx context.Context, we *payloom.WebhookEndpoint) error {
	var e enc
	args := []any{we.ID, we.MerchantID, we.Livemode, e.timeNotNull("webhook endpoint created_at", we.CreatedAt), we.Version}
	args = append(args, webhookEndpointArgs(&e, we)...)
	if e.err != nil {
		return e.err
	}
	_, err := t.exec(ctx, "webhook endpoint", `INSERT INTO webhook_endpoints (id, merchant_id, livemode, created_at, version,
		url, description, enabled_events, enabled, disabled_reason, secret, previous_secret,
		previous_secret_expires_at, failing_since, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	return err
}

func (t *tx) GetWebhookEndpoint(ctx context.Context, scope payloom.Scope, id string) (*payloom.WebhookEndpoint, error) {
	return scanWebhookEndpoint(t.tx.QueryRowContext(t.c(ctx), `SELECT `+webhookEndpointCols+` FROM webhook_endpoints
		WHERE id = ? AND merchant_id = ? AND livemode = ?`, id, scope.MerchantID, scope.Livemode))
}

func (t *tx) UpdateWebhookEndpoint(ctx context.Context, we *payloom.WebhookEndpoint) error {
	var e enc
	args := webhookEndpointArgs(&e, we)
	if e.err != nil {
		return e.err
	}
	args = append(args, we.ID, we.MerchantID, we.Livemode, we.Version)
	res, err := t.exec(ctx, "webhook endpoint", `UPDATE webhook_endpoints SET `+webhookEndpointSet+`, version = version + 1
		WHERE id = ? AND merchant_id = ? AND livemode = ? AND version = ?`, args...)
	if err != nil {
		return err
	}
	if err := t.versionChecked(ctx, "webhook endpoint", "webhook_endpoints", res, we.ID, we.MerchantID, we.Livemode); err != nil {
		return err
	}
	we.Version++
	return nil
}

func (t *tx) DeleteWebhookEndpoint(ctx context.Context, scope payloom.Scope, id string) error {
	return t.execOne(ctx, "webhook endpoint", `DELETE FROM webhook_endpoints WHERE id = ? AND merchant_id = ? AND livemode = ?`,
		id, scope.MerchantID, scope.Livemode)
}

func (t *tx) ListWebhookEndpoints(ctx context.Context, scope payloom.Scope, p payloom.ListParams) ([]*payloom.WebhookEndpoint, bool, error) {
	return list(ctx, t, "webhook endpoint", "webhook_endpoints", webhookEndpointCols, scope, p, nil, nil, scanWebhookEndpoint)
}

func (t *tx) ListEnabledWebhookEndpoints(ctx context.Context, scope payloom.Scope) ([]*payloom.WebhookEndpoint, error) {
	rows, err := t.tx.QueryContext(t.c(ctx), `SELECT `+webhookEndpointCols+` FROM webhook_endpoints
		WHERE merchant_id = ? AND livemode = ? AND enabled = 1 ORDER BY id`, scope.MerchantID, scope.Livemode)
	if err != nil {
		return nil, dbError("webhook endpoint", err)
	}
	return collect(rows, "webhook endpoint", scanWebhookEndpoint)
}

func scanWebhookEndpoint(row scanner) (*payloom.WebhookEndpoint, error) {
	var we payloom.WebhookEndpoint
	var events, secret, prevSecret string
	var prevExpires, failing, created, updated sql.NullInt64
	if err := row.Scan(&we.ID, &we.MerchantID, &we.Livemode, &we.URL, &we.Description, &events, &we.Enabled,
		&we.DisabledReason, &secret, &prevSecret, &prevExpires, &failing, &created, &updated, &we.Version); err != nil {
		return nil, dbError("webhook endpoint", err)
	}
	we.Object = "webhook_endpoint"
	we.Secret = payloom.Secret(secret)
	we.PreviousSecret = payloom.Secret(prevSecret)
	we.PreviousSecretExpiresAt = decTimePtr(prevExpires)
	we.FailingSince = decTimePtr(failing)
	we.CreatedAt = decTime(created)
	we.UpdatedAt = decTime(updated)
	we.EnabledEvents = []string{}
	if err := json.Unmarshal([]byte(events), &we.EnabledEvents); err != nil {
		return nil, scanErr("webhook endpoint", fmt.Errorf("decode enabled_events: %w", err))
	}
	return &we, nil
}

// Fan-out. SQLite write transactions are exclusive, so the events an
// Update lists cannot be listed by another writer before it commits.

func (t *tx) ListUndispatchedEvents(ctx context.Context, limit int) ([]*payloom.Event, error) {
	if limit <= 0 {
		return []*payloom.Event{}, nil
	}
	rows, err := t.tx.QueryContext(t.c(ctx), `SELECT `+eventCols+` FROM events INDEXED BY events_undispatched
		WHERE dispatched_at IS NULL ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, dbError("event", err)
	}
	return collect(rows, "event", scanEvent)
}

func (t *tx) MarkEventDispatched(ctx context.Context, id string, at time.Time) error {
	var e enc
	v := e.timeNotNull("event dispatched_at", at)
	if e.err != nil {
		return e.err
	}
	return t.execOne(ctx, "event", `UPDATE events SET dispatched_at = ? WHERE id = ?`, v, id)
}

// Webhook deliveries.

const webhookDeliveryCols = `id, event_id, endpoint_id, merchant_id, livemode, status, attempts, next_attempt_at,
	lease_owner, lease_until, last_status_code, last_error, created_at, updated_at, version`

const webhookDeliverySet = `status = ?, attempts = ?, next_attempt_at = ?, lease_owner = ?, lease_until = ?,
	last_status_code = ?, last_error = ?, updated_at = ?`

func webhookDeliveryArgs(e *enc, d *payloom.WebhookDelivery) []any {
	return []any{string(d.Status), d.Attempts, e.timeNotNull("webhook delivery next_attempt_at", d.NextAttemptAt),
		d.LeaseOwner, e.time(d.LeaseUntil), d.LastStatusCode, d.LastError, e.time(d.UpdatedAt)}
}

func (t *tx) CreateWebhookDelivery(ctx context.Context, d *payloom.WebhookDelivery) error {
	var e enc
	args := []any{d.ID, d.EventID, d.EndpointID, d.MerchantID, d.Livemode,
		e.timeNotNull("webhook delivery created_at", d.CreatedAt), d.Version}
	args = append(args, webhookDeliveryArgs(&e, d)...)
	if e.err != nil {
		return e.err
	}
	_, err := t.exec(ctx, "webhook delivery", `INSERT INTO webhook_deliveries (id, event_id, endpoint_id, merchant_id,
		livemode, created_at, version, status, attempts, next_attempt_at, lease_owner, lease_until,
		last_status_code, last_error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	return err
}

func (t *tx) GetWebhookDelivery(ctx context.Context, scope payloom.Scope, id string) (*payloom.WebhookDelivery, error) {
	return scanWebhookDelivery(t.tx.QueryRowContext(t.c(ctx), `SELECT `+webhookDeliveryCols+` FROM webhook_deliveries
		WHERE id = ? AND merchant_id = ? AND livemode = ?`, id, scope.MerchantID, scope.Livemode))
}

func (t *tx) UpdateWebhookDelivery(ctx context.Context, d *payloom.WebhookDelivery) error {
	var e enc
	args := webhookDeliveryArgs(&e, d)
	if e.err != nil {
		return e.err
	}
	args = append(args, d.ID, d.MerchantID, d.Livemode, d.Version)
	res, err := t.exec(ctx, "webhook delivery", `UPDATE webhook_deliveries SET `+webhookDeliverySet+`, version = version + 1
		WHERE id = ? AND merchant_id = ? AND livemode = ? AND version = ?`, args...)
	if err != nil {
		return err
	}
	if err := t.versionChecked(ctx, "webhook delivery", "webhook_deliveries", res, d.ID, d.MerchantID, d.Livemode); err != nil {
		return err
	}
	d.Version++
	return nil
}

// ClaimWebhookDeliveries selects and leases in one statement; the write
// transaction is exclusive, so no other claim interleaves.
func (t *tx) ClaimWebhookDeliveries(ctx context.Context, now time.Time, owner string, leaseUntil time.Time, limit int) ([]*payloom.WebhookDelivery, error) {
	var e enc
	nowV := e.timeNotNull("claim time", now)
	untilV := e.timeNotNull("lease end", leaseUntil)
	if e.err != nil {
		return nil, e.err
	}
	if limit <= 0 {
		return []*payloom.WebhookDelivery{}, nil
	}
	rows, err := t.tx.QueryContext(t.c(ctx), `UPDATE webhook_deliveries
		SET lease_owner = ?1, lease_until = ?2, version = version + 1, updated_at = ?3
		WHERE id IN (SELECT id FROM webhook_deliveries INDEXED BY webhook_deliveries_due
			WHERE status = 'pending' AND next_attempt_at <= ?3 AND (lease_until IS NULL OR lease_until <= ?3)
			ORDER BY next_attempt_at, id LIMIT ?4)
		RETURNING `+webhookDeliveryCols, owner, untilV, nowV, limit)
	if err != nil {
		return nil, dbError("webhook delivery", err)
	}
	ds, err := collect(rows, "webhook delivery", scanWebhookDelivery)
	if err != nil {
		return nil, err
	}
	// RETURNING does not promise an order.
	sortDeliveries(ds)
	return ds, nil
}

func (t *tx) ListWebhookDeliveries(ctx context.Context, scope payloom.Scope, eventID string) ([]*payloom.WebhookDelivery, error) {
	rows, err := t.tx.QueryContext(t.c(ctx), `SELECT `+webhookDeliveryCols+` FROM webhook_deliveries
		WHERE merchant_id = ? AND livemode = ? AND event_id = ? ORDER BY id`, scope.MerchantID, scope.Livemode, eventID)
	if err != nil {
		return nil, dbError("webhook delivery", err)
	}
	return collect(rows, "webhook delivery", scanWebhookDelivery)
}

func scanWebhookDelivery(row scanner) (*payloom.WebhookDelivery, error) {
	var d payloom.WebhookDelivery
	var status string
	var next, lease, created, updated sql.NullInt64
	if err := row.Scan(&d.ID, &d.EventID, &d.EndpointID, &d.MerchantID, &d.Livemode, &status, &d.Attempts, &next,
		&d.LeaseOwner, &lease, &d.LastStatusCode, &d.LastError, &created, &updated, &d.Version); err != nil {
		return nil, dbError("webhook delivery", err)
	}
	d.Object = "webhook_delivery"
	d.Status = payloom.WebhookDeliveryStatus(status)
	d.NextAttemptAt = decTime(next)
	d.LeaseUntil = decTime(lease)
	d.CreatedAt = decTime(created)
	d.UpdatedAt = decTime(updated)
	return &d, nil
}

// sortDeliveries orders claimed deliveries earliest due first.
func sortDeliveries(ds []*payloom.WebhookDelivery) {
	slices.SortFunc(ds, func(a, b *payloom.WebhookDelivery) int {
		if c := a.NextAttemptAt.Compare(b.NextAttemptAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// Webhook attempts.

const webhookAttemptCols = `id, delivery_id, event_id, endpoint_id, merchant_id, livemode, url, at, status_code,
	duration_ms, error`

func (t *tx) CreateWebhookAttempt(ctx context.Context, a *payloom.WebhookAttempt) error {
	var e enc
	args := []any{a.ID, a.DeliveryID, a.EventID, a.EndpointID, a.MerchantID, a.Livemode, a.URL,
		e.timeNotNull("webhook attempt time", a.At), a.StatusCode, a.DurationMS, a.Error}
	if e.err != nil {
		return e.err
	}
	_, err := t.exec(ctx, "webhook attempt", `INSERT INTO webhook_attempts (`+webhookAttemptCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	return err
}

func (t *tx) ListWebhookAttempts(ctx context.Context, scope payloom.Scope, eventID string) ([]*payloom.WebhookAttempt, error) {
	rows, err := t.tx.QueryContext(t.c(ctx), `SELECT `+webhookAttemptCols+` FROM webhook_attempts
		WHERE merchant_id = ? AND livemode = ? AND event_id = ? ORDER BY at, id`, scope.MerchantID, scope.Livemode, eventID)
	if err != nil {
		return nil, dbError("webhook attempt", err)
	}
	return collect(rows, "webhook attempt", scanWebhookAttempt)
}

func scanWebhookAttempt(row scanner) (*payloom.WebhookAttempt, error) {
	var a payloom.WebhookAttempt
	var at sql.NullInt64
	if err := row.Scan(&a.ID, &a.DeliveryID, &a.EventID, &a.EndpointID, &a.MerchantID, &a.Livemode, &a.URL, &at,
		&a.StatusCode, &a.DurationMS, &a.Error); err != nil {
		return nil, dbError("webhook attempt", err)
	}
	a.Object = "webhook_attempt"
	a.At = decTime(at)
	return &a, nil
}
