-- Issue 19 item 2: the reminder scheduler's claim at a million subscriptions.
--
-- A subscription's next reminder day is a date in its CSN's time zone (csn_time_zones, none:
-- UTC), and migration 007's index of that date could only be read up to the latest today
-- anywhere (UTC+14): every claim read, and threw away, the subscriptions whose next reminder
-- day is tomorrow in UTC — a day of reminders, 10,244 rows among a million, 30 to 70 ms a claim.
-- Its key is now the instant that day comes (midnight of it in the CSN's zone), so a claim reads
-- up to now and no further, whatever the size of the table (as renewal's migration 014 did for
-- the due-date engine).

-- The CSN's zone on each of its subscriptions (a copy of csn_time_zones, kept by the triggers
-- below): an index key can only read the row it indexes.
ALTER TABLE subscriptions ADD COLUMN time_zone text;
UPDATE subscriptions AS s SET time_zone = z.time_zone FROM csn_time_zones AS z WHERE z.csn = s.csn;

-- Midnight of `day` in `zone` (none: UTC). Immutable for the index: a change of the tz database
-- moves no key (as for every stored instant).
CREATE FUNCTION local_midnight(day date, zone text) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT day::timestamp AT TIME ZONE COALESCE(zone, 'UTC') $$;

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

-- Every way a subscription gets its CSN: the zone of that CSN.
CREATE FUNCTION take_csn_time_zone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.time_zone := (SELECT time_zone FROM csn_time_zones WHERE csn = NEW.csn);
    RETURN NEW;
END;
$$;
CREATE TRIGGER subscriptions_time_zone_inserted BEFORE INSERT ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION take_csn_time_zone();
CREATE TRIGGER subscriptions_time_zone_moved BEFORE UPDATE OF csn ON subscriptions
    FOR EACH ROW WHEN (NEW.csn IS DISTINCT FROM OLD.csn) EXECUTE FUNCTION take_csn_time_zone();

-- A CSN's zone set, changed or back to UTC: its subscriptions follow (only on a real change:
-- shared/test_clocks.py save_time_zones writes none otherwise).
CREATE FUNCTION follow_csn_time_zones() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE subscriptions AS s SET time_zone = NULL
        FROM gone_zones AS g WHERE s.csn = g.csn AND s.time_zone IS NOT NULL;
    ELSE
        UPDATE subscriptions AS s SET time_zone = n.time_zone
        FROM new_zones AS n WHERE s.csn = n.csn AND s.time_zone IS DISTINCT FROM n.time_zone;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER csn_time_zones_inserted AFTER INSERT ON csn_time_zones
    REFERENCING NEW TABLE AS new_zones
    FOR EACH STATEMENT EXECUTE FUNCTION follow_csn_time_zones();
CREATE TRIGGER csn_time_zones_updated AFTER UPDATE ON csn_time_zones
    REFERENCING NEW TABLE AS new_zones
    FOR EACH STATEMENT EXECUTE FUNCTION follow_csn_time_zones();
CREATE TRIGGER csn_time_zones_deleted AFTER DELETE ON csn_time_zones
    REFERENCING OLD TABLE AS gone_zones
    FOR EACH STATEMENT EXECUTE FUNCTION follow_csn_time_zones();
