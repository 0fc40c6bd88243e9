-- Payloom's initial schema.
--
-- Times are INTEGER nanoseconds since the Unix epoch (UTC); NULL stands for
-- the zero time.Time or a nil *time.Time. Booleans are 0/1. JSON columns
-- hold internal row shapes, never the API's. No column holds a full card
-- number in clear or a CVC: cards.ciphertext is AES-256-GCM output from the
-- vault.

CREATE TABLE merchants (
	id                       TEXT PRIMARY KEY,
	name                     TEXT NOT NULL,
	min_amount               INTEGER NOT NULL,
	max_amount               INTEGER NOT NULL,
	idempotency_key_optional INTEGER NOT NULL CHECK (idempotency_key_optional IN (0, 1)),
	created_at               INTEGER NOT NULL
) STRICT;

-- merchant_id is NULL for platform keys.
CREATE TABLE api_keys (
	id          TEXT PRIMARY KEY,
	merchant_id TEXT REFERENCES merchants (id),
	platform    INTEGER NOT NULL CHECK (platform IN (0, 1)),
	livemode    INTEGER NOT NULL CHECK (livemode IN (0, 1)),
	lookup      TEXT NOT NULL,
	hash        BLOB NOT NULL,
	last4       TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	revoked_at  INTEGER
) STRICT;
CREATE UNIQUE INDEX api_keys_lookup ON api_keys (lookup);
CREATE INDEX api_keys_merchant ON api_keys (merchant_id);

CREATE TABLE cards (
	id          TEXT PRIMARY KEY,
	merchant_id TEXT NOT NULL REFERENCES merchants (id),
	livemode    INTEGER NOT NULL CHECK (livemode IN (0, 1)),
	token       TEXT NOT NULL,
	brand       TEXT NOT NULL,
	first6      TEXT NOT NULL,
	last4       TEXT NOT NULL,
	exp_month   INTEGER NOT NULL,
	exp_year    INTEGER NOT NULL,
	fingerprint TEXT NOT NULL,
	holder_name TEXT NOT NULL,
	ciphertext  BLOB NOT NULL,
	key_id      TEXT NOT NULL,
	created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX cards_scope ON cards (merchant_id, livemode, id);

-- creation_key is NULL when empty, so that unkeyed rows never collide.
-- The CHECK restates the money invariants as a last line of defence.
CREATE TABLE payments (
	id                   TEXT PRIMARY KEY,
	merchant_id          TEXT NOT NULL REFERENCES merchants (id),
	livemode             INTEGER NOT NULL CHECK (livemode IN (0, 1)),
	amount               INTEGER NOT NULL,
	amount_capturable    INTEGER NOT NULL,
	amount_captured      INTEGER NOT NULL,
	amount_refunded      INTEGER NOT NULL,
	currency             TEXT NOT NULL,
	status               TEXT NOT NULL,
	capture_method       TEXT NOT NULL,
	customer_id          TEXT NOT NULL,
	reference            TEXT NOT NULL,
	description          TEXT NOT NULL,
	statement_descriptor TEXT NOT NULL,
	payment_method       TEXT,
	processor            TEXT,
	next_action          TEXT,
	failure              TEXT,
	metadata             TEXT NOT NULL,
	created_at           INTEGER NOT NULL,
	updated_at           INTEGER,
	creation_key         TEXT,
	pending_action       TEXT NOT NULL,
	pending_action_key   TEXT NOT NULL,
	pending_amount       INTEGER NOT NULL,
	pending_since        INTEGER,
	version              INTEGER NOT NULL,
	CHECK (amount >= 0 AND amount_capturable >= 0 AND amount_captured >= 0
		AND amount_refunded >= 0 AND pending_amount >= 0
		AND amount_refunded <= amount_captured)
) STRICT;
CREATE INDEX payments_scope ON payments (merchant_id, livemode, id);
CREATE INDEX payments_scope_status ON payments (merchant_id, livemode, status, id);
CREATE UNIQUE INDEX payments_creation_key ON payments (merchant_id, livemode, creation_key);
-- Stale work (ListStalePayments) reads these partial indexes only.
CREATE INDEX payments_pending_action ON payments (pending_since) WHERE pending_action <> '';

CREATE TABLE attempts (
	id             TEXT PRIMARY KEY,
	payment_id     TEXT NOT NULL REFERENCES payments (id),
	processor      TEXT NOT NULL,
	status         TEXT NOT NULL,
	code           TEXT NOT NULL,
	decline_code   TEXT NOT NULL,
	message        TEXT NOT NULL,
	raw_code       TEXT NOT NULL,
	transaction_id TEXT NOT NULL,
	duration_ms    INTEGER NOT NULL,
	created_at     INTEGER NOT NULL,
	completed_at   INTEGER
) STRICT;
CREATE INDEX attempts_payment ON attempts (payment_id, created_at, id);
CREATE INDEX attempts_pending ON attempts (created_at) WHERE status = 'pending';

CREATE TABLE refunds (
	id             TEXT PRIMARY KEY,
	merchant_id    TEXT NOT NULL REFERENCES merchants (id),
	livemode       INTEGER NOT NULL CHECK (livemode IN (0, 1)),
	payment_id     TEXT NOT NULL REFERENCES payments (id),
	amount         INTEGER NOT NULL CHECK (amount >= 0),
	currency       TEXT NOT NULL,
	status         TEXT NOT NULL,
	reason         TEXT NOT NULL,
	transaction_id TEXT NOT NULL,
	failure        TEXT,
	metadata       TEXT NOT NULL,
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER,
	creation_key   TEXT,
	version        INTEGER NOT NULL
) STRICT;
CREATE INDEX refunds_scope ON refunds (merchant_id, livemode, id);
CREATE INDEX refunds_payment ON refunds (merchant_id, livemode, payment_id, id);
CREATE UNIQUE INDEX refunds_creation_key ON refunds (merchant_id, livemode, creation_key);
CREATE INDEX refunds_pending ON refunds (created_at, id) WHERE status = 'pending';

-- events is the webhook outbox: written in the transaction of the change.
CREATE TABLE events (
	id          TEXT PRIMARY KEY,
	merchant_id TEXT NOT NULL REFERENCES merchants (id),
	livemode    INTEGER NOT NULL CHECK (livemode IN (0, 1)),
	type        TEXT NOT NULL,
	object_id   TEXT NOT NULL,
	data        TEXT NOT NULL,
	created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX events_scope ON events (merchant_id, livemode, id);
CREATE INDEX events_scope_type ON events (merchant_id, livemode, type, id);
CREATE INDEX events_object ON events (merchant_id, livemode, object_id, id);

CREATE TABLE idempotency_keys (
	id            TEXT PRIMARY KEY,
	merchant_id   TEXT NOT NULL REFERENCES merchants (id),
	livemode      INTEGER NOT NULL CHECK (livemode IN (0, 1)),
	key           TEXT NOT NULL,
	fingerprint   TEXT NOT NULL,
	method        TEXT NOT NULL,
	path          TEXT NOT NULL,
	locked_until  INTEGER,
	lock_token    TEXT NOT NULL,
	response_code INTEGER NOT NULL,
	response_body BLOB NOT NULL,
	completed_at  INTEGER,
	created_at    INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX idempotency_keys_scope_key ON idempotency_keys (merchant_id, livemode, key);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- The sandbox processor's ledger; not tied to a merchant.
CREATE TABLE sandbox_operations (
	key            TEXT PRIMARY KEY,
	kind           TEXT NOT NULL,
	transaction_id TEXT NOT NULL,
	amount         INTEGER NOT NULL,
	currency       TEXT NOT NULL,
	result         BLOB NOT NULL,
	created_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX sandbox_operations_kind ON sandbox_operations (kind, transaction_id);
