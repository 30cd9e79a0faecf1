-- The renewal service's own state: subscriptions as it knows them, the catalog, requests, orders.

-- The subscription system's snapshot (`snapshot`) plus what the product owns once it arrived:
-- the renewal date and the renewal state.
CREATE TABLE subscriptions (
    subscription_id text PRIMARY KEY,
    revision        bigint NOT NULL,
    csn             text NOT NULL,
    snapshot        jsonb NOT NULL,
    renewal_date    date NOT NULL,
    term            text NOT NULL,
    seats           integer NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_csn ON subscriptions (csn);
CREATE INDEX subscriptions_renewal_date ON subscriptions (renewal_date);

-- A renewal request is recorded as a batch and worked by the bulk worker (one row per request,
-- one item per subscription). The request id makes the same command twice one effect.
CREATE TABLE renewal_batches (
    request_id   text PRIMARY KEY,
    csn          text NOT NULL,
    actor        jsonb NOT NULL,
    event_id     text NOT NULL,
    total_items  integer NOT NULL,
    status       text NOT NULL DEFAULT 'pending',  -- pending | ordered | completed | failed
    received_at  timestamptz NOT NULL DEFAULT now(),
    worked_at    timestamptz
);
CREATE INDEX renewal_batches_pending ON renewal_batches (received_at) WHERE status = 'pending';

CREATE TABLE renewal_batch_items (
    request_id      text NOT NULL REFERENCES renewal_batches (request_id),
    position        integer NOT NULL,
    subscription_id text NOT NULL,
    status          text NOT NULL DEFAULT 'pending',  -- pending | ordered | renewed | rejected
    reasons         text[] NOT NULL DEFAULT '{}',
    order_id        text,
    PRIMARY KEY (request_id, position)
);
CREATE INDEX renewal_batch_items_order ON renewal_batch_items (order_id);

-- Orders renewal asked billing for; billing's answer renews (or not) their subscriptions.
CREATE TABLE orders (
    order_id         text PRIMARY KEY,
    request_id       text,
    csn              text NOT NULL,
    subscription_ids text[] NOT NULL,
    status           text NOT NULL DEFAULT 'requested',  -- requested | paid | failed
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- The audit trail: every change of a subscription's renewal state, who or what caused it, why.
CREATE TABLE subscription_history (
    id              bigserial PRIMARY KEY,
    subscription_id text NOT NULL,
    at              timestamptz NOT NULL,
    change          text NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    actor           jsonb,
    request_id      text,
    event_id        text
);
CREATE INDEX subscription_history_subscription ON subscription_history (subscription_id, id);

-- Wake the bulk worker as soon as a batch is recorded.
CREATE FUNCTION notify_renewal_batches() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('renewal_batches', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER renewal_batches_recorded AFTER INSERT ON renewal_batches
    FOR EACH STATEMENT EXECUTE FUNCTION notify_renewal_batches();
