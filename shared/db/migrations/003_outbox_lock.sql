-- The outbox relay's lock (issue 16, item 6): one row of this schema, which only the schema's
-- own role can reach. An advisory lock was database-wide: any role could take another schema's
-- key and silence its relay.
CREATE TABLE outbox_lock (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton)
);
INSERT INTO outbox_lock DEFAULT VALUES;
