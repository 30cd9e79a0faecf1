-- Issue 19: a single-subscription renewal request is worked by renewal's intake, in the
-- transaction that records it (services/renewal/renewal_requests.py): its batch is recorded
-- already worked, and only a pending batch (a bulk request) is worth waking the bulk worker for.
CREATE OR REPLACE FUNCTION notify_renewal_batches() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM recorded WHERE status = 'pending') THEN
        PERFORM pg_notify('renewal_batches', '');
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER renewal_batches_recorded ON renewal_batches;
CREATE TRIGGER renewal_batches_recorded AFTER INSERT ON renewal_batches
    REFERENCING NEW TABLE AS recorded
    FOR EACH STATEMENT EXECUTE FUNCTION notify_renewal_batches();
