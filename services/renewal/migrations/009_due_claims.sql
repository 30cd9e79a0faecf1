-- Issue 19 item 2: the due-date engine's claim reads what is due, not the table.

-- Its key: the day the engine looks at a subscription next (services/renewal/engine.py
-- NEXT_CHECK), for the subscriptions not yet expired for their renewal date; by itself for the
-- CSNs on the system's clock, after the CSN for those with a test clock (shared/db/due_claims.py).
CREATE INDEX subscriptions_next_check ON subscriptions
    ((CASE WHEN next_check_for = renewal_date THEN next_check_on ELSE renewal_date END))
    WHERE expiry_announced_for IS DISTINCT FROM renewal_date;
CREATE INDEX subscriptions_csn_next_check ON subscriptions
    (csn, (CASE WHEN next_check_for = renewal_date THEN next_check_on ELSE renewal_date END))
    WHERE expiry_announced_for IS DISTINCT FROM renewal_date;
-- Statistics of that key: the planner keeps none for the expression of a partial index, and
-- took a third of the table as due (a plan costed high enough to be JIT-compiled every claim).
CREATE STATISTICS subscriptions_next_check_stats
    ON ((CASE WHEN next_check_for = renewal_date THEN next_check_on ELSE renewal_date END))
    FROM subscriptions;
-- Replaced by the two above (its key let a claim read every lapsed subscription in grace).
DROP INDEX IF EXISTS subscriptions_due;

-- AUTO-5: the sent quotes whose lines name a subscription (`lines @> '[{"subscription_id": …}]'`),
-- one probe per claimed subscription instead of every sent quote's lines. Without GIN's pending
-- list (fastupdate): a probe would read all of it, every quote sent since the last VACUUM.
CREATE INDEX quotes_sent_lines ON quotes USING gin (lines jsonb_path_ops) WITH (fastupdate = off)
    WHERE status = 'sent';
