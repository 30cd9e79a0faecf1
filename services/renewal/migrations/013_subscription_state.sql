-- Issue 14 item 2: after every change of a subscription's renewal state, renewal publishes the
-- whole state on `subscription.state` (services/renewal/state.py), in the same transaction.

-- Grows with every state announced: the `version` of `subscription.state`.
ALTER TABLE subscriptions ADD COLUMN state_version bigint NOT NULL DEFAULT 0;

-- The subscriptions whose state changed in the open transaction and is not announced yet.
-- Written by the triggers below, emptied by the announce (state.py) in the same transaction:
-- a row is never committed (the check at the end refuses it), so it needs no WAL (UNLOGGED)
-- and another transaction never sees one of ours.
CREATE UNLOGGED TABLE state_changes (subscription_id text NOT NULL);
CREATE INDEX state_changes_subscription ON state_changes (subscription_id);

-- What the state is made of: the subscription's own columns (`revision` stands for a new
-- upstream snapshot: status, payment method), the open order holding its next term
-- (`term_reservations`) and an open quote covering it (`quotes` sent).
CREATE FUNCTION note_subscription_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('renewal.seeding', true) = 'on' THEN
        RETURN NULL;  -- a seeding tool (bench/scale_data.py) writing rows that publish nothing
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO state_changes SELECT subscription_id FROM changed_rows;
    ELSE
        INSERT INTO state_changes
        SELECT n.subscription_id FROM changed_rows AS n JOIN previous_rows AS o USING (subscription_id)
        WHERE (n.revision, n.csn, n.renewal_date, n.term, n.seats, n.auto_renew, n.next_term,
               n.next_seats, n.lapse_announced_for, n.expiry_announced_for)
              IS DISTINCT FROM
              (o.revision, o.csn, o.renewal_date, o.term, o.seats, o.auto_renew, o.next_term,
               o.next_seats, o.lapse_announced_for, o.expiry_announced_for);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER subscriptions_inserted AFTER INSERT ON subscriptions
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION note_subscription_changes();
CREATE TRIGGER subscriptions_updated AFTER UPDATE ON subscriptions
    REFERENCING OLD TABLE AS previous_rows NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION note_subscription_changes();

CREATE FUNCTION note_reservation_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('renewal.seeding', true) = 'on' THEN
        RETURN NULL;  -- a seeding tool (bench/scale_data.py) writing rows that publish nothing
    END IF;
    INSERT INTO state_changes SELECT subscription_id FROM changed_rows;
    RETURN NULL;
END;
$$;
CREATE TRIGGER term_reservations_inserted AFTER INSERT ON term_reservations
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION note_reservation_changes();
CREATE TRIGGER term_reservations_deleted AFTER DELETE ON term_reservations
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION note_reservation_changes();

CREATE FUNCTION note_quote_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('renewal.seeding', true) = 'on' THEN
        RETURN NULL;  -- a seeding tool (bench/scale_data.py) writing rows that publish nothing
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO state_changes
        SELECT line ->> 'subscription_id' FROM changed_rows AS q, jsonb_array_elements(q.lines) AS line;
    ELSE
        INSERT INTO state_changes
        SELECT line ->> 'subscription_id'
        FROM changed_rows AS n JOIN previous_rows AS o USING (quote_number),
             jsonb_array_elements(n.lines) AS line
        WHERE n.status IS DISTINCT FROM o.status;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER quotes_inserted AFTER INSERT ON quotes
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION note_quote_changes();
CREATE TRIGGER quotes_updated AFTER UPDATE ON quotes
    REFERENCING OLD TABLE AS previous_rows NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION note_quote_changes();

-- At commit: a change still noted was not announced — a write path forgot to call the announce
-- (or wrote after it). The transaction fails rather than let readers follow a stale state.
CREATE FUNCTION refuse_unannounced_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM state_changes WHERE subscription_id = NEW.subscription_id) THEN
        RAISE EXCEPTION 'the state of subscription % changed and was not announced on subscription.state',
            NEW.subscription_id
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'call services.renewal.state.announce_changes after the change';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER state_announced AFTER INSERT ON state_changes
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION refuse_unannounced_state();
