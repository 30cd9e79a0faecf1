-- Issue 19 item 2: the reminder scheduler's claim at a million subscriptions.
--
-- A subscription's next reminder day is a date in its CSN's time zone (csn_time_zones, none:
-- UTC), and migration 007's index of that date could only be read up to the latest today
-- anywhere (UTC+14): every claim read, and threw away, the subscriptions whose next reminder
-- day is tomorrow in UTC — a day of reminders, 10,244 rows among a million, 30 to 70 ms a claim.
-- Its key is now the instant that day comes (midnight of it in the CSN's zone), so a claim reads
-- up to now and no further, whatever the size of the table (as renewal's migration 014 did for
-- the due-date engine).

-- Each subscription carries its CSN's zone, and local_midnight(day, zone) is defined:
\ir ../../../shared/db/sql/subscription_time_zones.sql

-- The claim's key (services/notification/reminders.py NEXT_REMINDER, DUE_AT) for the CSNs on
-- the system's clock; those with a test clock keep migration 007's (csn, next reminder day).
CREATE INDEX subscriptions_next_reminder_at ON subscriptions
    (local_midnight(CASE WHEN next_reminder_for = renewal_date THEN next_reminder_on
                         ELSE '-infinity'::date END,
                    time_zone));
CREATE STATISTICS subscriptions_next_reminder_at_stats
    ON (local_midnight(CASE WHEN next_reminder_for = renewal_date THEN next_reminder_on
                            ELSE '-infinity'::date END,
                       time_zone))
    FROM subscriptions;
DROP INDEX subscriptions_next_reminder;
