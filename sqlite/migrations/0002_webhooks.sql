-- Webhooks: endpoints, the fan-out flag on events, deliveries (the durable
-- work queue the dispatcher claims with leases) and attempts (the
-- append-only log of every HTTP request).
--
-- webhook_endpoints.secret is the signing secret as it is: it must be
-- readable to sign and authenticates Payloom to the merchant only (see
-- payloom.WebhookEndpoint). enabled_events is a JSON array of strings.
-- Deliveries and attempts name their endpoint without a foreign key, so
-- that deleting an endpoint keeps the history of what was sent to it.

CREATE TABLE webhook_endpoints (
	id                         TEXT PRIMARY KEY,
	merchant_id                TEXT NOT NULL REFERENCES merchants (id),
	livemode                   INTEGER NOT NULL CHECK (livemode IN (0, 1)),
	url                        TEXT NOT NULL,
	description                TEXT NOT NULL,
	enabled_events             TEXT NOT NULL,
	enabled                    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
	disabled_reason            TEXT NOT NULL,
	secret                     TEXT NOT NULL,
	previous_secret            TEXT NOT NULL,
	previous_secret_expires_at INTEGER,
	failing_since              INTEGER,
	created_at                 INTEGER NOT NULL,
	updated_at                 INTEGER,
	version                    INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_endpoints_scope ON webhook_endpoints (merchant_id, livemode, id);

-- dispatched_at is set, in the transaction that creates an event's
-- deliveries, when the event has been fanned out. Events written before
-- webhooks existed count as fanned out: no endpoint could want them.
ALTER TABLE events ADD COLUMN dispatched_at INTEGER;
UPDATE events SET dispatched_at = created_at;
CREATE INDEX events_undispatched ON events (id) WHERE dispatched_at IS NULL;

CREATE TABLE webhook_deliveries (
	id               TEXT PRIMARY KEY,
	event_id         TEXT NOT NULL REFERENCES events (id),
	endpoint_id      TEXT NOT NULL,
	merchant_id      TEXT NOT NULL REFERENCES merchants (id),
	livemode         INTEGER NOT NULL CHECK (livemode IN (0, 1)),
	status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
	attempts         INTEGER NOT NULL CHECK (attempts >= 0),
	next_attempt_at  INTEGER NOT NULL,
	lease_owner      TEXT NOT NULL,
	lease_until      INTEGER,
	last_status_code INTEGER NOT NULL,
	last_error       TEXT NOT NULL,
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER,
	version          INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (merchant_id, livemode, event_id, id);
-- Claims read this partial index only.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
	id           TEXT PRIMARY KEY,
	delivery_id  TEXT NOT NULL REFERENCES webhook_deliveries (id),
	event_id     TEXT NOT NULL REFERENCES events (id),
	endpoint_id  TEXT NOT NULL,
	merchant_id  TEXT NOT NULL REFERENCES merchants (id),
	livemode     INTEGER NOT NULL CHECK (livemode IN (0, 1)),
	url          TEXT NOT NULL,
	at           INTEGER NOT NULL,
	status_code  INTEGER NOT NULL,
	duration_ms  INTEGER NOT NULL,
	error        TEXT NOT NULL
) STRICT;
CREATE INDEX webhook_attempts_event ON webhook_attempts (merchant_id, livemode, event_id, id);
