-- A day whose midnight comes twice in the CSN's zone (the clocks back from 01:00 to 00:00:
-- America/Havana, Atlantic/Azores) begins at the first one. local_midnight said the second, an
-- hour late: the due-date engine's claim (migration 014, read up to now) and its wake (018) left
-- a renewal due that day untouched for that hour, while the CSN's today said it was due
-- (shared/db/sql/local_midnight_first_instant.sql says why and how).
\ir ../../../shared/db/sql/local_midnight_first_instant.sql

-- The index keys are local_midnight's: built again with the new one (its statistics follow at
-- the next ANALYZE). Only the keys of those days move.
REINDEX INDEX subscriptions_next_check_at;
