-- QUO-7: one automatic quote per subscription and renewal date, whatever the replicas.
CREATE TABLE automatic_quotes (
    subscription_id text NOT NULL,
    renewal_date    date NOT NULL,
    quote_number    text,  -- null when the subscription could not be quoted (its reasons logged)
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (subscription_id, renewal_date)
);
