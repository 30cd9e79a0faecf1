-- Issue 19: every move of a renewal date pays for an index no statement of notification reads.
--
-- `subscriptions_renewal_date` (migration 002) served the first reminder scheduler; its claim
-- reads the next-reminder keys since migrations 007 and 013 (which depend on the renewal date,
-- so no move of it can be HOT), and every other statement finds its subscriptions by id or CSN.
-- Following a renewal (store.move_renewal_dates) wrote an entry in it for each row: 500 moved
-- dates took 7.8-8.6 ms and 3,035 WAL records with it, 5.3-5.8 ms and 2,524-2,605 without.
DROP INDEX IF EXISTS subscriptions_renewal_date;
