-- Every email the product sends, keyed by its notification key (e.g. order_confirmation:<order>):
-- the same key is never sent twice, across redeliveries, restarts and replicas.
CREATE TABLE emails (
    notification_key text PRIMARY KEY,
    kind             text NOT NULL,
    csn              text NOT NULL,
    recipients       text[] NOT NULL,
    locale           text NOT NULL,
    context          jsonb NOT NULL,
    subscription_ids text[] NOT NULL DEFAULT '{}',
    order_id         text,
    quote_number     text,
    status           text NOT NULL DEFAULT 'pending',  -- pending | sent | failed
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    lease_until      timestamptz,
    subject          text,
    last_error       text,
    created_at       timestamptz NOT NULL,
    sent_at          timestamptz
);
CREATE INDEX emails_due ON emails (next_attempt_at) WHERE status = 'pending';

CREATE FUNCTION notify_emails() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('notification_emails', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER emails_queued AFTER INSERT ON emails
    FOR EACH STATEMENT EXECUTE FUNCTION notify_emails();
