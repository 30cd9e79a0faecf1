-- Quotes as renewal needs them: what a paid quote renews, with which term and seats (QUO-8).
CREATE TABLE quotes (
    quote_number text PRIMARY KEY,
    csn          text NOT NULL,
    lines        jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'sent'  -- sent | paid
);
