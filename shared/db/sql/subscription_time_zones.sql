-- Included (psql's `\ir`, expanded by shared/db/migrate.py) by the migration of each service
-- whose claims are keyed on the instant a day comes in a CSN's time zone: renewal 014,
-- notification 013, quote 010. Each service has `subscriptions (csn)` and `csn_time_zones`.

-- The CSN's zone on each of its subscriptions (a copy of csn_time_zones, kept by the triggers
-- below): an index key can only read the row it indexes.
ALTER TABLE subscriptions ADD COLUMN time_zone text;
UPDATE subscriptions AS s SET time_zone = z.time_zone FROM csn_time_zones AS z WHERE z.csn = s.csn;

-- Midnight of `day` in `zone` (none: UTC). Immutable for the index: a change of the tz database
-- moves no key (as for every stored instant).
CREATE FUNCTION local_midnight(day date, zone text) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT day::timestamp AT TIME ZONE COALESCE(zone, 'UTC') $$;

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
