-- Issue 19: every write of a subscription's row pays for an index no query of renewal reads.
--
-- `subscriptions_renewal_date` (migration 001) served the first due-date claim; the claims read
-- the next-check indexes since migrations 009 and 014, and every other statement of the service
-- finds its subscriptions by id or CSN. No update of a subscription can be HOT (each writes a
-- column of the next-check keys: the engine's look, settlement's renewal date), so every one
-- wrote an entry in this index too: one of five per row version, twice per automatic renewal.
DROP INDEX IF EXISTS subscriptions_renewal_date;
