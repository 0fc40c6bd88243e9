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

CREATE TABLE vault_keks (
	id          TEXT PRIMARY KEY,
	check_value BLOB NOT NULL,
	is_primary  INTEGER NOT NULL CHECK (is_primary IN (0, 1)),
	created_at  INTEGER NOT NULL,
	retired_at  INTEGER,
	CHECK (NOT (is_primary = 1 AND retired_at IS NOT NULL))
) STRICT;
CREATE UNIQUE INDEX vault_keks_primary ON vault_keks (is_primary) WHERE is_primary = 1;

CREATE TABLE vault_deks (
	id          TEXT PRIMARY KEY,
	merchant_id TEXT NOT NULL REFERENCES merchants (id),
	kek_id      TEXT NOT NULL REFERENCES vault_keks (id),
	wrapped     BLOB NOT NULL,
	version     INTEGER NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX vault_deks_merchant ON vault_deks (merchant_id);
CREATE INDEX vault_deks_kek ON vault_deks (kek_id, id);

CREATE INDEX cards_key_id ON cards (key_id, id);
