-- Issue 19: the subscription system's snapshot kept apart from the columns renewal's states move.
--
-- A renewal moves quote's `subscriptions.renewal_date` (its follow of `subscription.state`,
-- services/quote/directory.py FOLLOW), and the automatic quotes mark `automatic_quote_for`; both
-- are keyed in the claim's indexes, so neither update is HOT, and each wrote the whole row again:
-- 1,013 bytes, 898 of them the snapshot, which neither changes. Apart, the row they write is
-- about 115 bytes: a renewal's follow wrote 2,170 WAL bytes, 1,250 without the snapshot
-- (EXPLAIN (ANALYZE, BUFFERS, WAL) of 1,000 renewals' states, /work/notes/s10/h47-profile.md).
-- Only a newer snapshot (`subscription.upserted`) writes this table.
CREATE TABLE subscription_snapshots (
    subscription_id text PRIMARY KEY,
    snapshot        jsonb NOT NULL
);
INSERT INTO subscription_snapshots (subscription_id, snapshot)
SELECT subscription_id, snapshot FROM subscriptions;
ALTER TABLE subscriptions DROP COLUMN snapshot;
