-- Quotes (QUO-1..8): the quote service's own state, and what it needs to decide and price them.

-- The subscriptions, as the subscription system sends them and as renewals move them.
CREATE TABLE subscriptions (
    subscription_id text PRIMARY KEY,
    revision        bigint NOT NULL,
    csn             text NOT NULL,
    snapshot        jsonb NOT NULL,
    renewal_date    date NOT NULL,
    term            text NOT NULL,
    seats           integer NOT NULL
);

-- Human-readable numbers unique for ever: Q-<year>-<sequence>.
CREATE SEQUENCE quote_number_seq;

CREATE TABLE quotes (
    quote_number     text PRIMARY KEY,
    request_id       text,
    csn              text NOT NULL,
    partner_csn      text,
    channel          text NOT NULL,
    kind             text NOT NULL,
    subscription_ids text[] NOT NULL,
    recipients       text[] NOT NULL,
    currency         text NOT NULL,
    total            numeric NOT NULL,
    lines            jsonb NOT NULL,
    expires_on       date NOT NULL,
    status           text NOT NULL DEFAULT 'sent',  -- sent | accepted | paid | expired | cancelled
    order_id         text UNIQUE,
    created_at       timestamptz NOT NULL
);
CREATE INDEX quotes_open ON quotes (expires_on) WHERE status IN ('sent', 'accepted');
CREATE INDEX quotes_csn ON quotes (csn);

CREATE TABLE answered_requests (
    request_id  text PRIMARY KEY,
    command     text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE test_clocks (
    csn        text PRIMARY KEY,
    today      date NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
