-- Changes for the next renewal (TERM-1, SEAT-2) and orders that are not renewals: seats added
-- now (SEAT-1) and renewal dates aligned (ALIGN-1).
ALTER TABLE subscriptions ADD COLUMN next_term text;
ALTER TABLE subscriptions ADD COLUMN next_seats integer;

ALTER TABLE orders ADD COLUMN purpose text NOT NULL DEFAULT 'renewal';  -- renewal | seats | alignment
ALTER TABLE orders ADD COLUMN detail jsonb NOT NULL DEFAULT '{}'::jsonb;
