-- Issue 19 item 2: a subscription's next reminder day is known as soon as its renewal date is.
--
-- A subscription first seen, or whose renewal date moved (a renewal moves it a term on), had no
-- next reminder day for its date (`next_reminder_for` behind `renewal_date`), so the reminder
-- claim read it at once to work one out — every renewal cost the scheduler a read and an update
-- of a subscription none of whose reminders was due (10,000 renewals: 28,900 rows read and
-- written). The statements that set the date now also set the first day a reminder of it can
-- be due: the first day of the schedule on or after the first day not looked at yet. It is a
-- lower bound of the scheduler's own next day (which also skips the days up to today): the
-- claim reads the subscription when that day comes (migration 013's index) and works out the
-- reminder then, with the CSN's today. No schedule recorded yet (the scheduler has not started):
-- '-infinity', looked at at once, as before.
CREATE FUNCTION first_reminder_day(renewal_date date, look_from date) RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM reminder_schedule) THEN '-infinity'::date
                ELSE (SELECT min(renewal_date - d)
                      FROM reminder_schedule, unnest(days) AS d
                      -- eligibility.reminder_days: a day on or after the date is no reminder
                      WHERE d > 0 AND renewal_date - d >= look_from) END
$$;
