-- Billing's own state: the orders it was asked for and the payments taken for them.
CREATE TABLE orders (
    order_id        text PRIMARY KEY,
    request_id      text,
    quote_number    text,
    csn             text NOT NULL,
    currency        text NOT NULL,
    purchase_method text NOT NULL,
    payment_method  jsonb NOT NULL,
    lines           jsonb NOT NULL,
    total           numeric NOT NULL,
    status          text NOT NULL,  -- placed, then what its charge gave: succeeded | failed | awaiting_manual
    created_at      timestamptz NOT NULL
);

-- At most one successful charge per order, enforced by the database itself.
CREATE TABLE payments (
    payment_id        bigserial PRIMARY KEY,
    order_id          text NOT NULL REFERENCES orders (order_id),
    amount            numeric NOT NULL,
    currency          text NOT NULL,
    outcome           text NOT NULL,  -- succeeded | failed | awaiting_manual
    payment_reference text,
    reason            text,
    at                timestamptz NOT NULL
);
CREATE UNIQUE INDEX payments_one_success_per_order ON payments (order_id) WHERE outcome = 'succeeded';
