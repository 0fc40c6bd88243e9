-- The hosted payment page, 3-D Secure and receipts.
--
-- expires_at: when a payment created without a payment method stops
-- accepting one; NULL for payments that never expire. checkout: the
-- payment's line items, its success, failure and return URLs, the SHA-256
-- of its page secret and its receipt secret; NULL when it has none of them.
-- The page secret itself is never stored. Both columns are nullable, so
-- nodes of the previous release keep working while this one rolls out.
ALTER TABLE payments ADD COLUMN expires_at timestamptz;
ALTER TABLE payments ADD COLUMN checkout jsonb;
-- The expiry job reads this partial index only.
CREATE INDEX payments_expiring ON payments (expires_at, id)
	WHERE status = 'requires_payment_method' AND expires_at IS NOT NULL;
