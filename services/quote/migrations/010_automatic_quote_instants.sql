-- Issue 19 item 2: the automatic quotes' claim (QUO-7) at a million subscriptions.
--
-- The quote day is a date in the CSN's time zone (csn_time_zones, none: UTC), and migration
-- 005's index of the renewal date could only be read up to the latest today anywhere (UTC+14):
-- every claim read, and threw away, the subscriptions whose quote day is tomorrow in UTC — a day
-- of renewals, 2,748 rows among a million, 8 to 25 ms a claim; and, from the start of the
-- index, every subscription first seen after its renewal date (never quoted, so never looked
-- at for it). Its key is now the instant the renewal date comes (midnight of it in the CSN's
-- zone): a claim reads the renewal dates still ahead, up to the quote days come (two hours more
-- for the clocks going back: services/quote/automatic.py DUE_AT), as renewal's migration 014
-- did for the due-date engine.

-- Each subscription carries its CSN's zone, and local_midnight(day, zone) is defined:
\ir ../../../shared/db/sql/subscription_time_zones.sql

-- The claim's key for the CSNs on the system's clock, of the subscriptions not looked at yet
-- for their renewal date; those with a test clock keep migration 005's (csn, renewal date).
CREATE INDEX subscriptions_automatic_quote_at ON subscriptions
    (local_midnight(renewal_date, time_zone))
    WHERE automatic_quote_for IS DISTINCT FROM renewal_date;
DROP INDEX subscriptions_automatic_quote_due;
