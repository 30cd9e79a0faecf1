-- Refunds (issue 14, LIFE-3/LIFE-5): money that arrived for an order that can no longer take
-- effect goes back through the provider, once per order. Asked by renewal (`payment.refund_
-- requested`), recorded `pending`, then given back by the refunder outside any transaction
-- (services/billing/refunds.py) and announced as `payment.refunded`.
CREATE TABLE refunds (
    order_id          text PRIMARY KEY REFERENCES orders (order_id),
    amount            numeric NOT NULL,
    currency          text NOT NULL,
    reason            text NOT NULL,
    status            text NOT NULL,  -- pending | refunding | recorded
    attempts          integer NOT NULL DEFAULT 0,
    attempt_at        timestamptz,
    refund_reference  text,
    requested_at      timestamptz NOT NULL
);
CREATE INDEX refunds_unfinished ON refunds (requested_at) WHERE status IN ('pending', 'refunding');

CREATE FUNCTION notify_refunds() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(current_schema() || '_refunds', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER refunds_requested AFTER INSERT ON refunds
    FOR EACH STATEMENT EXECUTE FUNCTION notify_refunds();

-- The simulated provider's refunds: one per idempotency key (billing's order id), like its
-- charges; the tests count money given back here.
CREATE TABLE simulated_provider_refunds (
    idempotency_key   text PRIMARY KEY,
    amount            numeric NOT NULL,
    currency          text NOT NULL,
    refund_reference  text NOT NULL,
    at                timestamptz NOT NULL
);
