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

-- The CSN's zone on each of its subscriptions (a copy of csn_time_zones, kept by the triggers
-- below): an index key can only read the row it indexes.
ALTER TABLE subscriptions ADD COLUMN time_zone text;
UPDATE subscriptions AS s SET time_zone = z.time_zone FROM csn_time_zones AS z WHERE z.csn = s.csn;

-- Midnight of `day` in `zone` (none: UTC). Immutable for the index: a change of the tz database
-- moves no key (as for every stored instant).
CREATE FUNCTION local_midnight(day date, zone text) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT day::timestamp AT TIME ZONE COALESCE(zone, 'UTC') $$;

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

-- Every way a subscription gets its CSN: the zone of that CSN, whichever path writes it (the
-- upstream snapshot, a purchase by quote).
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
