-- What notification knows to write to the right person about the right thing (ROLE-3): the
-- subscriptions (their buyer, product, renewal date), the orders billing placed, test clocks.
CREATE TABLE subscriptions (
    subscription_id text PRIMARY KEY,
    revision        bigint NOT NULL,
    csn             text NOT NULL,
    snapshot        jsonb NOT NULL,
    renewal_date    date NOT NULL,
    -- Reminders go only for the days after this one (a subscription seen 10 days before its
    -- renewal date gets only the reminders still ahead — NOTE-1).
    reminders_after date NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_renewal_date ON subscriptions (renewal_date);

CREATE TABLE orders (
    order_id         text PRIMARY KEY,
    csn              text NOT NULL,
    subscription_ids text[] NOT NULL,
    total            numeric NOT NULL,
    currency         text NOT NULL
);

CREATE TABLE test_clocks (
    csn        text PRIMARY KEY,
    today      date NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
