-- A day whose midnight comes twice in the CSN's zone (the clocks back from 01:00 to 00:00:
-- America/Havana, Atlantic/Azores) begins at the first one. local_midnight said the second, an
-- hour late. The automatic quotes' claim (migration 010) reads its key two hours wide of the
-- quote days (services/quote/automatic.py), so no quote came late for it; its key follows the
-- one definition all the same (shared/db/sql/local_midnight_first_instant.sql says why and how).
\ir ../../../shared/db/sql/local_midnight_first_instant.sql

-- The index keys are local_midnight's: built again with the new one (its statistics follow at
-- the next ANALYZE). Only the keys of those days move.
REINDEX INDEX subscriptions_automatic_quote_at;
