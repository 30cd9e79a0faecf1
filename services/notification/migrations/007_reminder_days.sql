-- Issue 19 item 2: the reminder scheduler's claim reads what is due, not the table.

-- The next day a reminder comes for a subscription (NOTE-1), worked out by the scheduler with
-- the policy's schedule each time it looks (services/notification/reminders.py), and the
-- renewal date it was worked out for: a renewal moves the date (and `reminders_after`), the
-- pair no longer matches, and the scheduler looks again at once. NULL next day: no reminder
-- left for that renewal date. Rows from before this migration are looked at once, in batches.
ALTER TABLE subscriptions ADD COLUMN next_reminder_on date;
ALTER TABLE subscriptions ADD COLUMN next_reminder_for date;

-- The claim's key (reminders.py NEXT_REMINDER): by itself for the CSNs on the system's clock,
-- after the CSN for those with a test clock (shared/db/due_claims.py).
CREATE INDEX subscriptions_next_reminder ON subscriptions
    ((CASE WHEN next_reminder_for = renewal_date THEN next_reminder_on ELSE '-infinity'::date END));
CREATE INDEX subscriptions_csn_next_reminder ON subscriptions
    (csn, (CASE WHEN next_reminder_for = renewal_date THEN next_reminder_on
                ELSE '-infinity'::date END));

-- The schedule (days before, the policy's `reminder_days_before`) those next days were worked
-- out with: a scheduler started with another one works them all out again (reminders.py).
CREATE TABLE reminder_schedule (
    days    integer[] NOT NULL,
    current boolean PRIMARY KEY DEFAULT true CHECK (current)  -- one row
);

-- "None while an open quote covers the renewal": one probe of open_quotes per claimed
-- subscription, without GIN's pending list (a probe reads it whole).
ALTER INDEX open_quotes_subscriptions SET (fastupdate = off);
