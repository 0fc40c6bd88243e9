-- The issuing country of a card (ISO 3166-1 alpha-2), found by the vault
-- from the number's leading digits when it tokenized the card; '' when
-- unknown, as for every card tokenized before this migration (the number's
-- digits beyond first6 are not readable outside the vault, so there is
-- nothing to derive it from here). Routing rules match on it. A saved
-- payment method keeps its card's.
ALTER TABLE cards ADD COLUMN country TEXT NOT NULL DEFAULT '';
ALTER TABLE payment_methods ADD COLUMN country TEXT NOT NULL DEFAULT '';
