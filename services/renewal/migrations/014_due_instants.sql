-- Issue 19 item 1: the due-date engine's claim at a million subscriptions.
--
-- A subscription's next look is a date in its CSN's time zone (csn_time_zones, none: UTC), and
-- migration 009's index of that date could only be read up to the latest today anywhere
-- (UTC+14): every claim read, and threw away, the subscriptions due tomorrow in UTC — a day of
-- renewals, 2,748 rows among a million, 20 to 70 ms a claim. Its key is now the instant the
-- next look comes (midnight of that date in the CSN's zone), so a claim reads up to now and no
-- further, whatever the size of the table.

-- The CSNs with a test clock: one (csn, next check) probe per clock (shared/db/due_claims.py).
-- At a million subscriptions the planner took subscriptions_csn for it instead (it guessed 4
-- subscriptions a CSN) and read every subscription of each clocked CSN at every claim, due or
-- not: 100 rows × 200 clocks, 8,600 buffers a claim. On "C" (the same equality for text), and
-- asked so by the claim, this index is the only one that can answer the probe.
DROP INDEX subscriptions_csn_next_check;
CREATE INDEX subscriptions_csn_next_check ON subscriptions
    (csn COLLATE "C", (CASE WHEN next_check_for = renewal_date THEN next_check_on ELSE renewal_date END))
    WHERE expiry_announced_for IS DISTINCT FROM renewal_date;

-- Each subscription carries its CSN's zone, and local_midnight(day, zone) is defined:
\ir ../../../shared/db/sql/subscription_time_zones.sql

-- The engine's key (services/renewal/due_date_engine.py NEXT_CHECK, DUE_AT) for the CSNs on the
-- system's clock.
CREATE INDEX subscriptions_next_check_at ON subscriptions
    (local_midnight(CASE WHEN next_check_for = renewal_date THEN next_check_on ELSE renewal_date END,
                    time_zone))
    WHERE expiry_announced_for IS DISTINCT FROM renewal_date;
CREATE STATISTICS subscriptions_next_check_at_stats
    ON (local_midnight(CASE WHEN next_check_for = renewal_date THEN next_check_on ELSE renewal_date END,
                       time_zone))
    FROM subscriptions;
DROP INDEX subscriptions_next_check;
DROP STATISTICS subscriptions_next_check_stats;
