-- Issue 19: the due-date engine looks as soon as something became due, not at its next poll
-- (every `engine_interval_seconds`): a NOTIFY on `<schema>_due_date_engine`, sent by the
-- transaction that stored it, so only once committed, and heard by every replica's engine.
CREATE FUNCTION notify_due_date_engine() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(current_schema() || '_due_date_engine', '');
    RETURN NULL;
END;
$$;

-- A CSN's clock moved (test_clock.set): its renewal dates may have come.
CREATE TRIGGER test_clocks_moved AFTER INSERT OR UPDATE ON test_clocks
    FOR EACH STATEMENT EXECUTE FUNCTION notify_due_date_engine();

-- A subscription whose next look is its renewal date again (stored new, a newer snapshot, a
-- switch or a failed charge: `next_check_for` NULL), and that date has already come on its
-- CSN's clock. Only those rows reach the function (the WHEN); a settlement or the engine's own
-- look, which set the next look to a later day, never do.
CREATE FUNCTION notify_due_subscription() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF local_midnight(NEW.renewal_date, NEW.time_zone) <= now()
       OR EXISTS (SELECT 1 FROM test_clocks AS c
                  WHERE c.csn = NEW.csn AND c.today >= NEW.renewal_date) THEN
        PERFORM pg_notify(current_schema() || '_due_date_engine', '');
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER subscriptions_due AFTER INSERT OR UPDATE OF next_check_for ON subscriptions
    FOR EACH ROW WHEN (NEW.next_check_for IS NULL
                       AND NEW.expiry_announced_for IS DISTINCT FROM NEW.renewal_date)
    EXECUTE FUNCTION notify_due_subscription();
