-- Webhooks: endpoints, the fan-out flag on events, deliveries (the durable
-- work queue the dispatcher nodes claim with leases and SKIP LOCKED) and
-- attempts (the append-only log of every HTTP request).
--
-- webhook_endpoints.secret is the signing secret as it is: it must be
-- readable to sign and authenticates Payloom to the merchant only (see
-- payloom.WebhookEndpoint). Deliveries and attempts name their endpoint
-- without a foreign key, so that deleting an endpoint keeps the history of
-- what was sent to it.
--
-- Safe for nodes of the previous release: they never read these tables,
-- and events they insert get dispatched_at NULL, so they are fanned out.

CREATE TABLE webhook_endpoints (
	id                         text PRIMARY KEY,
	merchant_id                text NOT NULL REFERENCES merchants (id),
	livemode                   boolean NOT NULL,
	url                        text NOT NULL,
	description                text NOT NULL,
	enabled_events             jsonb NOT NULL,
	enabled                    boolean NOT NULL,
	disabled_reason            text NOT NULL,
	secret                     text NOT NULL,
	previous_secret            text NOT NULL,
	previous_secret_expires_at timestamptz,
	failing_since              timestamptz,
	created_at                 timestamptz NOT NULL,
	updated_at                 timestamptz,
	version                    bigint NOT NULL
);
CREATE INDEX webhook_endpoints_scope ON webhook_endpoints (merchant_id, livemode, id);

-- dispatched_at is set, in the transaction that creates an event's
-- deliveries, when the event has been fanned out. Events written before
-- webhooks existed count as fanned out: no endpoint could want them.
ALTER TABLE events ADD COLUMN dispatched_at timestamptz;
UPDATE events SET dispatched_at = created_at;
CREATE INDEX events_undispatched ON events (id) WHERE dispatched_at IS NULL;

CREATE TABLE webhook_deliveries (
	id               text PRIMARY KEY,
	event_id         text NOT NULL REFERENCES events (id),
	endpoint_id      text NOT NULL,
	merchant_id      text NOT NULL REFERENCES merchants (id),
	livemode         boolean NOT NULL,
	status           text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
	attempts         integer NOT NULL CHECK (attempts >= 0),
	next_attempt_at  timestamptz NOT NULL,
	lease_owner      text NOT NULL,
	lease_until      timestamptz,
	last_status_code integer NOT NULL,
	last_error       text NOT NULL,
	created_at       timestamptz NOT NULL,
	updated_at       timestamptz,
	version          bigint NOT NULL
);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (merchant_id, livemode, event_id, id);
-- Claims read this partial index only.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
	id           text PRIMARY KEY,
	delivery_id  text NOT NULL REFERENCES webhook_deliveries (id),
	event_id     text NOT NULL REFERENCES events (id),
	endpoint_id  text NOT NULL,
	merchant_id  text NOT NULL REFERENCES merchants (id),
	livemode     boolean NOT NULL,
	url          text NOT NULL,
	at           timestamptz NOT NULL,
	status_code  integer NOT NULL,
	duration_ms  bigint NOT NULL,
	error        text NOT NULL
);
CREATE INDEX webhook_attempts_event ON webhook_attempts (merchant_id, livemode, event_id, id);
