-- The hosted payment page, 3-D Secure and receipts.
--
-- expires_at: when a payment created without a payment method stops
-- accepting one (nanoseconds, like every time here); NULL for payments that
-- never expire. checkout: JSON with the payment's line items, its
-- success, failure and return URLs, the SHA-256 of its page secret and its
-- receipt secret; NULL when it has none of them. The page secret itself is
-- never stored.
ALTER TABLE payments ADD COLUMN expires_at INTEGER;
ALTER TABLE payments ADD COLUMN checkout TEXT;
-- The expiry job reads this partial index only.
CREATE INDEX payments_expiring ON payments (expires_at, id)
	WHERE status = 'requires_payment_method' AND expires_at IS NOT NULL;
