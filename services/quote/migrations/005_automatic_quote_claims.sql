-- Issue 19 item 2: the automatic quotes' claim (QUO-7) reads what is due, not the table.

-- The renewal date automatic quotes already looked at (a quote sent or not: `automatic_quotes`
-- says which); a renewal moves the date, and the subscription is looked at again on its next
-- quote day. Filled here from `automatic_quotes` for the subscriptions looked at before.
ALTER TABLE subscriptions ADD COLUMN automatic_quote_for date;
UPDATE subscriptions AS s SET automatic_quote_for = a.renewal_date
FROM automatic_quotes AS a
WHERE a.subscription_id = s.subscription_id AND a.renewal_date = s.renewal_date;

-- The claim's key: the renewal date of the subscriptions not looked at yet for it, by itself for
-- the CSNs on the system's clock, after the CSN for those with a test clock
-- (shared/db/due_claims.py).
CREATE INDEX subscriptions_automatic_quote_due ON subscriptions (renewal_date)
    WHERE automatic_quote_for IS DISTINCT FROM renewal_date;
CREATE INDEX subscriptions_csn_automatic_quote_due ON subscriptions (csn, renewal_date)
    WHERE automatic_quote_for IS DISTINCT FROM renewal_date;

-- "A quote already open for it": the open quotes naming a subscription, one probe (without
-- GIN's pending list, which a probe reads whole: every quote sent since the last VACUUM).
CREATE INDEX quotes_open_subscriptions ON quotes USING gin (subscription_ids)
    WITH (fastupdate = off) WHERE status IN ('sent', 'accepted');

-- Quote expiry's claim (QUO-8) on a test clock: the CSN's sent quotes in expiry order (those on
-- the system's clock use quotes_open).
CREATE INDEX quotes_sent_csn_expiry ON quotes (csn, expires_on) WHERE status = 'sent';
