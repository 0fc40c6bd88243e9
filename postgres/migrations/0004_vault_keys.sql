-- Envelope encryption of card numbers (the vault's key management).
--
-- vault_keks lists the key-encryption keys (KEKs) the vault has used: never
-- their material, which lives only in key files or the environment.
-- check_value is an HMAC of a fixed label under the KEK: it lets a node tell
-- that its key under this id holds other bytes (a wrong file copied to one
-- node) and reveals nothing of the key. At most one KEK is primary: the one
-- that wraps new and rewrapped data keys. A retired KEK wraps nothing and
-- its material has been deleted.
--
-- vault_deks holds one data-encryption key (DEK) per merchant, only ever
-- wrapped (AES-256-GCM under kek_id, bound to merchant_id and id).
-- version counts rewraps, so that concurrent rotations never overwrite
-- each other's work.
--
-- cards.key_id names the DEK that encrypted a card, or a KEK for cards
-- encrypted before envelope encryption (migrated by `payloom vault
-- rotate`); cards_key_id finds those.
--
-- Safe for nodes of the previous release: they never read these tables and
-- keep encrypting new cards under the master key, which the next rotation
-- migrates like any older card.

CREATE TABLE vault_keks (
	id          text PRIMARY KEY,
	check_value bytea NOT NULL,
	is_primary  boolean NOT NULL,
	created_at  timestamptz NOT NULL,
	retired_at  timestamptz,
	CHECK (NOT (is_primary AND retired_at IS NOT NULL))
);
CREATE UNIQUE INDEX vault_keks_primary ON vault_keks ((true)) WHERE is_primary;

CREATE TABLE vault_deks (
	id          text PRIMARY KEY,
	merchant_id text NOT NULL REFERENCES merchants (id),
	kek_id      text NOT NULL REFERENCES vault_keks (id),
	wrapped     bytea NOT NULL,
	version     bigint NOT NULL,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX vault_deks_merchant ON vault_deks (merchant_id);
CREATE INDEX vault_deks_kek ON vault_deks (kek_id, id);

CREATE INDEX cards_key_id ON cards (key_id, id);
