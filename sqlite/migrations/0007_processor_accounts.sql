-- Processor accounts: a merchant's accounts at processors, per mode.
--
-- credentials is the vault's ciphertext (sealed under the merchant's data
-- key named by key_id, bound to the row's id); the clear credentials are
-- never stored. credential_keys is a JSON array of the key names set.
-- Deleting an account sets deleted_at: the row stays so that payments it
-- authorized can still be captured and refunded through it, and its name
-- stays taken (attempts name their processor).

CREATE TABLE processor_accounts (
	id              TEXT PRIMARY KEY,
	merchant_id     TEXT NOT NULL REFERENCES merchants (id),
	livemode        INTEGER NOT NULL CHECK (livemode IN (0, 1)),
	name            TEXT NOT NULL,
	connector       TEXT NOT NULL,
	enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
	credential_keys TEXT NOT NULL,
	credentials     BLOB NOT NULL,
	key_id          TEXT NOT NULL,
	deleted_at      INTEGER,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	version         INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX processor_accounts_name ON processor_accounts (merchant_id, livemode, name);

-- Routing rules: one row per scope, the rules as JSON (payloom.RoutingRule),
-- replaced whole by PUT /v1/routing and version-checked.
CREATE TABLE routing_rules (
	merchant_id TEXT NOT NULL REFERENCES merchants (id),
	livemode    INTEGER NOT NULL CHECK (livemode IN (0, 1)),
	rules       TEXT NOT NULL,
	updated_at  INTEGER NOT NULL,
	version     INTEGER NOT NULL,
	PRIMARY KEY (merchant_id, livemode)
) STRICT;
