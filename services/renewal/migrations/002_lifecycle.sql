-- The renewal lifecycle the product owns once a subscription arrived: the auto-renew switch,
-- what was announced for which renewal date, automatic renewal attempts, and test clocks.

ALTER TABLE subscriptions ADD COLUMN auto_renew boolean;
UPDATE subscriptions SET auto_renew = (snapshot ->> 'auto_renew')::boolean;
ALTER TABLE subscriptions ALTER COLUMN auto_renew SET NOT NULL;

-- `subscription.lapsed` / `subscription.expired` were announced for this renewal date: a renewal
-- moves the date, so a renewed subscription is simply no longer lapsed.
ALTER TABLE subscriptions ADD COLUMN lapse_announced_for date;
ALTER TABLE subscriptions ADD COLUMN expiry_announced_for date;
CREATE INDEX subscriptions_due ON subscriptions (renewal_date)
    WHERE expiry_announced_for IS NULL OR expiry_announced_for <> renewal_date;

-- One automatic renewal order per subscription and renewal date (AUTO-1): the engine never
-- charges a term twice, whatever the replicas or restarts.
CREATE TABLE auto_renewals (
    subscription_id text NOT NULL,
    renewal_date    date NOT NULL,
    order_id        text NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (subscription_id, renewal_date)
);

-- Test clocks (like Stripe's): a CSN's own today, only ever moving forward.
CREATE TABLE test_clocks (
    csn        text PRIMARY KEY,
    today      date NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Request ids of the commands answered directly (not through a batch): the same request id
-- twice, even under another event id, is one effect and one answer.
CREATE TABLE answered_requests (
    request_id  text PRIMARY KEY,
    command     text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- When the due-date engine should look at a subscription again, for the renewal date it was
-- set for (a lapsed one: on its expiry day). A renewal moves the date, and the pair no longer
-- matches: the engine then looks at the new renewal date.
ALTER TABLE subscriptions ADD COLUMN next_check_on date;
ALTER TABLE subscriptions ADD COLUMN next_check_for date;
