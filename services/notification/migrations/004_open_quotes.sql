-- NOTE-1: no renewal reminder for a subscription an open quote already covers.
CREATE TABLE open_quotes (
    quote_number     text PRIMARY KEY,
    subscription_ids text[] NOT NULL
);
CREATE INDEX open_quotes_subscriptions ON open_quotes USING gin (subscription_ids);
