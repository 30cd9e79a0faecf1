-- Charging apart from placing (issue 15): an order is placed with its charge `pending`; the
-- charger commits the attempt (`charging`, when, how many) before it calls the provider, and
-- the outcome (`recorded`) with the payment row after. An attempt left `charging` by a crash is
-- reconciled with the provider's record of the order id.
ALTER TABLE orders
    ADD COLUMN next_retry_on     date,  -- repeated in `payment.failed`: when renewal tries again
    ADD COLUMN charge_status     text NOT NULL DEFAULT 'recorded',  -- orders placed before: charged
    ADD COLUMN charge_attempts   integer NOT NULL DEFAULT 0,
    ADD COLUMN charge_attempt_at timestamptz;
ALTER TABLE orders ALTER COLUMN charge_status DROP DEFAULT;  -- placing says `pending` itself

-- What the charger claims: only the unfinished charges, oldest first.
CREATE INDEX orders_charges_unfinished ON orders (created_at)
    WHERE charge_status IN ('pending', 'charging');

-- Wake the charger when orders are placed instead of waiting for its next poll.
CREATE FUNCTION notify_charges() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(current_schema() || '_charges', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER orders_placed AFTER INSERT ON orders
    FOR EACH STATEMENT EXECUTE FUNCTION notify_charges();

-- The simulated provider's ledger: the provider's side of the world, written by the simulator
-- (services/billing/simulator.py) in transactions of its own. A real provider keeps this record
-- itself; the tests and the fault suite count money taken here. One charge per idempotency key.
CREATE TABLE simulated_provider_charges (
    idempotency_key   text PRIMARY KEY,  -- billing's order id
    amount            numeric NOT NULL,
    currency          text NOT NULL,
    outcome           text NOT NULL,  -- succeeded | failed | awaiting_manual
    payment_reference text,
    reason            text,
    at                timestamptz NOT NULL
);
