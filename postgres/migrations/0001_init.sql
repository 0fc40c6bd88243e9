-- Payloom's initial schema on PostgreSQL.
--
-- Times are timestamptz (microsecond precision); NULL stands for the zero
-- time.Time or a nil *time.Time. The payment's nested objects and metadata
-- are jsonb in internal row shapes, never the API's. Event data is text, so
-- the snapshot's bytes are kept exactly (webhook signatures are computed
-- over them). No column holds a full card number in clear or a CVC:
-- cards.ciphertext is AES-256-GCM output from the vault.
--
-- Forward-only: this file never changes once released; a change is a new
-- file. Later files must keep working for nodes still running the previous
-- release (add columns with defaults, never drop or rename in the same
-- release that stops using them).

CREATE TABLE merchants (
	id                       text PRIMARY KEY,
	name                     text NOT NULL,
	min_amount               bigint NOT NULL,
	max_amount               bigint NOT NULL,
	idempotency_key_optional boolean NOT NULL,
	created_at               timestamptz NOT NULL
);

-- merchant_id is NULL for platform keys.
CREATE TABLE api_keys (
	id          text PRIMARY KEY,
	merchant_id text REFERENCES merchants (id),
	platform    boolean NOT NULL,
	livemode    boolean NOT NULL,
	lookup      text NOT NULL,
	hash        bytea NOT NULL,
	last4       text NOT NULL,
	created_at  timestamptz NOT NULL,
	revoked_at  timestamptz
);
CREATE UNIQUE INDEX api_keys_lookup ON api_keys (lookup);
CREATE INDEX api_keys_merchant ON api_keys (merchant_id);

CREATE TABLE cards (
	id          text PRIMARY KEY,
	merchant_id text NOT NULL REFERENCES merchants (id),
	livemode    boolean NOT NULL,
	token       text NOT NULL,
	brand       text NOT NULL,
	first6      text NOT NULL,
	last4       text NOT NULL,
	exp_month   integer NOT NULL,
	exp_year    integer NOT NULL,
	fingerprint text NOT NULL,
	holder_name text NOT NULL,
	ciphertext  bytea NOT NULL,
	key_id      text NOT NULL,
	created_at  timestamptz NOT NULL
);
CREATE INDEX cards_scope ON cards (merchant_id, livemode, id);

-- creation_key is NULL when empty, so that unkeyed rows never collide.
-- The CHECK restates the money invariants as a last line of defence.
CREATE TABLE payments (
	id                   text PRIMARY KEY,
	merchant_id          text NOT NULL REFERENCES merchants (id),
	livemode             boolean NOT NULL,
	amount               bigint NOT NULL,
	amount_capturable    bigint NOT NULL,
	amount_captured      bigint NOT NULL,
	amount_refunded      bigint NOT NULL,
	currency             text NOT NULL,
	status               text NOT NULL,
	capture_method       text NOT NULL,
	customer_id          text NOT NULL,
	reference            text NOT NULL,
	description          text NOT NULL,
	statement_descriptor text NOT NULL,
	payment_method       jsonb,
	processor            jsonb,
	next_action          jsonb,
	failure              jsonb,
	metadata             jsonb NOT NULL,
	created_at           timestamptz NOT NULL,
	updated_at           timestamptz,
	creation_key         text,
	pending_action       text NOT NULL,
	pending_action_key   text NOT NULL,
	pending_amount       bigint NOT NULL,
	pending_since        timestamptz,
	version              bigint NOT NULL,
	CONSTRAINT payments_amounts CHECK (amount >= 0 AND amount_capturable >= 0 AND amount_captured >= 0
		AND amount_refunded >= 0 AND pending_amount >= 0
		AND amount_refunded <= amount_captured)
);
CREATE INDEX payments_scope ON payments (merchant_id, livemode, id);
CREATE INDEX payments_scope_status ON payments (merchant_id, livemode, status, id);
CREATE UNIQUE INDEX payments_creation_key ON payments (merchant_id, livemode, creation_key);
CREATE INDEX payments_pending_action ON payments (pending_since) WHERE pending_action <> '';

CREATE TABLE attempts (
	id             text PRIMARY KEY,
	payment_id     text NOT NULL REFERENCES payments (id),
	processor      text NOT NULL,
	status         text NOT NULL,
	code           text NOT NULL,
	decline_code   text NOT NULL,
	message        text NOT NULL,
	raw_code       text NOT NULL,
	transaction_id text NOT NULL,
	duration_ms    bigint NOT NULL,
	created_at     timestamptz NOT NULL,
	completed_at   timestamptz
);
CREATE INDEX attempts_payment ON attempts (payment_id, created_at, id);
CREATE INDEX attempts_pending ON attempts (created_at) WHERE status = 'pending';

CREATE TABLE refunds (
	id             text PRIMARY KEY,
	merchant_id    text NOT NULL REFERENCES merchants (id),
	livemode       boolean NOT NULL,
	payment_id     text NOT NULL REFERENCES payments (id),
	amount         bigint NOT NULL CHECK (amount >= 0),
	currency       text NOT NULL,
	status         text NOT NULL,
	reason         text NOT NULL,
	transaction_id text NOT NULL,
	failure        jsonb,
	metadata       jsonb NOT NULL,
	created_at     timestamptz NOT NULL,
	updated_at     timestamptz,
	creation_key   text,
	version        bigint NOT NULL
);
CREATE INDEX refunds_scope ON refunds (merchant_id, livemode, id);
CREATE INDEX refunds_payment ON refunds (payment_id, id);
CREATE UNIQUE INDEX refunds_creation_key ON refunds (merchant_id, livemode, creation_key);
CREATE INDEX refunds_pending ON refunds (created_at) WHERE status = 'pending';

-- events is the webhook outbox: written in the transaction of the change.
CREATE TABLE events (
	id          text PRIMARY KEY,
	merchant_id text NOT NULL REFERENCES merchants (id),
	livemode    boolean NOT NULL,
	type        text NOT NULL,
	object_id   text NOT NULL,
	data        text NOT NULL,
	created_at  timestamptz NOT NULL
);
CREATE INDEX events_scope ON events (merchant_id, livemode, id);
CREATE INDEX events_scope_type ON events (merchant_id, livemode, type, id);
CREATE INDEX events_object ON events (object_id, id);

-- Claimed through the unique index, never through isolation alone.
CREATE TABLE idempotency_keys (
	id            text PRIMARY KEY,
	merchant_id   text NOT NULL REFERENCES merchants (id),
	livemode      boolean NOT NULL,
	key           text NOT NULL,
	fingerprint   text NOT NULL,
	method        text NOT NULL,
	path          text NOT NULL,
	locked_until  timestamptz,
	lock_token    text NOT NULL,
	response_code integer NOT NULL,
	response_body bytea NOT NULL,
	completed_at  timestamptz,
	created_at    timestamptz NOT NULL
);
CREATE UNIQUE INDEX idempotency_keys_scope_key ON idempotency_keys (merchant_id, livemode, key);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- The sandbox processor's ledger; not tied to a merchant.
CREATE TABLE sandbox_operations (
	key            text PRIMARY KEY,
	kind           text NOT NULL,
	transaction_id text NOT NULL,
	amount         bigint NOT NULL,
	currency       text NOT NULL,
	result         bytea NOT NULL,
	created_at     timestamptz NOT NULL
);
CREATE INDEX sandbox_operations_kind ON sandbox_operations (kind, transaction_id);
