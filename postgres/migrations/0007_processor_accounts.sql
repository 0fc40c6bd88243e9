-- Processor accounts: a merchant's accounts at processors, per mode.
--
-- credentials is the vault's ciphertext (sealed under the merchant's data
-- key named by key_id, bound to the row's id); the clear credentials are
-- never stored. credential_keys is a JSON array of the key names set.
-- Deleting an account sets deleted_at: the row stays so that payments it
-- authorized can still be captured and refunded through it, and its name
-- stays taken (attempts name their processor).

CREATE TABLE processor_accounts (
	id              text PRIMARY KEY,
	merchant_id     text NOT NULL REFERENCES merchants (id),
	livemode        boolean NOT NULL,
	name            text NOT NULL,
	connector       text NOT NULL,
	enabled         boolean NOT NULL,
	credential_keys jsonb NOT NULL,
	credentials     bytea NOT NULL,
	key_id          text NOT NULL,
	deleted_at      timestamptz,
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL,
	version         bigint NOT NULL
);
CREATE UNIQUE INDEX processor_accounts_name ON processor_accounts (merchant_id, livemode, name);

-- Routing rules: one row per scope, the rules as JSON (payloom.RoutingRule),
-- replaced whole by PUT /v1/routing and version-checked.
CREATE TABLE routing_rules (
	merchant_id text NOT NULL REFERENCES merchants (id),
	livemode    boolean NOT NULL,
	rules       jsonb NOT NULL,
	updated_at  timestamptz NOT NULL,
	version     bigint NOT NULL,
	PRIMARY KEY (merchant_id, livemode)
);
