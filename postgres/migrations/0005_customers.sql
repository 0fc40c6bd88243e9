-- Customers, their saved payment methods, API key permissions and the
-- audit log.
--
-- api_keys.permissions lists permission names. Keys made before
-- permissions existed get the default set: every permission but
-- raw_card_data and audit:read, so that nothing they could do stops working
-- and nothing new is granted. The column default also covers keys that a
-- node of the previous release creates during a rolling upgrade.
--
-- customers.document holds the digits of a validated CPF or CNPJ; email is
-- lower case. payment_methods point at a vault card (card_token) and copy
-- its summary; the card number stays in cards.ciphertext. A customer has
-- at most one method per card fingerprint. Deleting a customer deletes its
-- methods in the same transaction (the store does it; no cascade).
--
-- audit_events is append-only: the trigger refuses UPDATE and DELETE.
-- merchant_id is '' for events that concern no merchant (a vault key
-- rotation) and has no foreign key, so that the log outlives anything it
-- names.
--
-- Safe for nodes of the previous release: they never read the new tables,
-- and the new columns have defaults.

ALTER TABLE api_keys ADD COLUMN permissions text[] NOT NULL
	DEFAULT ARRAY['payments:read', 'payments:write', 'refunds:write', 'customers:read', 'customers:write',
		'webhooks:read', 'webhooks:write'];

ALTER TABLE payments ADD COLUMN save_payment_method boolean NOT NULL DEFAULT false;

CREATE TABLE customers (
	id            text PRIMARY KEY,
	merchant_id   text NOT NULL REFERENCES merchants (id),
	livemode      boolean NOT NULL,
	name          text NOT NULL,
	email         text NOT NULL,
	phone         text NOT NULL,
	document      text NOT NULL,
	document_type text NOT NULL CHECK (document_type IN ('', 'cpf', 'cnpj')),
	reference     text NOT NULL,
	metadata      jsonb NOT NULL,
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz,
	creation_key  text
);
CREATE INDEX customers_scope ON customers (merchant_id, livemode, id);
CREATE INDEX customers_email ON customers (merchant_id, livemode, email, id);
CREATE INDEX customers_reference ON customers (merchant_id, livemode, reference, id);
CREATE UNIQUE INDEX customers_creation_key ON customers (merchant_id, livemode, creation_key);

CREATE TABLE payment_methods (
	id          text PRIMARY KEY,
	merchant_id text NOT NULL REFERENCES merchants (id),
	livemode    boolean NOT NULL,
	customer_id text NOT NULL REFERENCES customers (id),
	type        text NOT NULL,
	card_token  text NOT NULL REFERENCES cards (id),
	brand       text NOT NULL,
	first6      text NOT NULL,
	last4       text NOT NULL,
	exp_month   integer NOT NULL,
	exp_year    integer NOT NULL,
	fingerprint text NOT NULL,
	holder_name text NOT NULL,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL
);
CREATE INDEX payment_methods_customer ON payment_methods (merchant_id, livemode, customer_id, id);
CREATE UNIQUE INDEX payment_methods_fingerprint ON payment_methods (merchant_id, livemode, customer_id, fingerprint);

CREATE TABLE audit_events (
	id          text PRIMARY KEY,
	merchant_id text NOT NULL,
	livemode    boolean NOT NULL,
	action      text NOT NULL,
	outcome     text NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
	actor       text NOT NULL,
	source      text NOT NULL,
	target_id   text NOT NULL,
	details     jsonb NOT NULL,
	created_at  timestamptz NOT NULL
);
CREATE INDEX audit_events_scope ON audit_events (merchant_id, livemode, id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
	FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
