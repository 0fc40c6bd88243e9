-- Customers, their saved payment methods, API key permissions and the
-- audit log.
--
-- api_keys.permissions is a comma-separated list of permission names. Keys
-- made before permissions existed get the default set: every permission
-- but raw_card_data and audit:read, so that nothing they could do stops
-- working and nothing new is granted.
--
-- customers.document holds the digits of a validated CPF or CNPJ; email is
-- lower case. payment_methods point at a vault card (card_token) and copy
-- its summary; the card number stays in cards.ciphertext. A customer has
-- at most one method per card fingerprint. Deleting a customer deletes its
-- methods in the same transaction (the store does it; no cascade, so that
-- a stray DELETE cannot take rows with it unseen).
--
-- audit_events is append-only: the triggers refuse UPDATE and DELETE.
-- merchant_id is '' for events that concern no merchant (a vault key
-- rotation) and has no foreign key, so that the log outlives anything it
-- names.

ALTER TABLE api_keys ADD COLUMN permissions TEXT NOT NULL
	DEFAULT 'payments:read,payments:write,refunds:write,customers:read,customers:write,webhooks:read,webhooks:write';

CREATE TABLE customers (
	id            TEXT PRIMARY KEY,
	merchant_id   TEXT NOT NULL REFERENCES merchants (id),
	livemode      INTEGER NOT NULL CHECK (livemode IN (0, 1)),
	name          TEXT NOT NULL,
	email         TEXT NOT NULL,
	phone         TEXT NOT NULL,
	document      TEXT NOT NULL,
	document_type TEXT NOT NULL CHECK (document_type IN ('', 'cpf', 'cnpj')),
	reference     TEXT NOT NULL,
	metadata      TEXT NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER,
	creation_key  TEXT
) STRICT;
CREATE INDEX customers_scope ON customers (merchant_id, livemode, id);
CREATE INDEX customers_email ON customers (merchant_id, livemode, email, id);
CREATE INDEX customers_reference ON customers (merchant_id, livemode, reference, id);
CREATE UNIQUE INDEX customers_creation_key ON customers (merchant_id, livemode, creation_key);

CREATE TABLE payment_methods (
	id          TEXT PRIMARY KEY,
	merchant_id TEXT NOT NULL REFERENCES merchants (id),
	livemode    INTEGER NOT NULL CHECK (livemode IN (0, 1)),
	customer_id TEXT NOT NULL REFERENCES customers (id),
	type        TEXT NOT NULL,
	card_token  TEXT NOT NULL REFERENCES cards (id),
	brand       TEXT NOT NULL,
	first6      TEXT NOT NULL,
	last4       TEXT NOT NULL,
	exp_month   INTEGER NOT NULL,
	exp_year    INTEGER NOT NULL,
	fingerprint TEXT NOT NULL,
	holder_name TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX payment_methods_customer ON payment_methods (merchant_id, livemode, customer_id, id);
CREATE UNIQUE INDEX payment_methods_fingerprint ON payment_methods (merchant_id, livemode, customer_id, fingerprint);

CREATE TABLE audit_events (
	id          TEXT PRIMARY KEY,
	merchant_id TEXT NOT NULL,
	livemode    INTEGER NOT NULL CHECK (livemode IN (0, 1)),
	action      TEXT NOT NULL,
	outcome     TEXT NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
	actor       TEXT NOT NULL,
	source      TEXT NOT NULL,
	target_id   TEXT NOT NULL,
	details     TEXT NOT NULL,
	created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX audit_events_scope ON audit_events (merchant_id, livemode, id);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
	SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
	SELECT RAISE(ABORT, 'audit_events is append-only');
END;

-- A payment asked to save its card for its customer once authorized.
ALTER TABLE payments ADD COLUMN save_payment_method INTEGER NOT NULL DEFAULT 0
	CHECK (save_payment_method IN (0, 1));
