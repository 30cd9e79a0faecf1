-- One owner of a subscription's terms (issue 14): every order that buys time (manual,
-- automatic, by quote, seats added, dates aligned) first reserves the subscription here, in the
-- transaction that asks billing to charge. One open reservation per subscription: a second order
-- while it is open is refused RENEWAL_IN_PROGRESS. Settled (paid or failed) or released
-- (abandoned after `pay_by`, the subscription expired), the row goes away.
CREATE TABLE term_reservations (
    subscription_id text PRIMARY KEY,
    order_id        text NOT NULL,
    term_start      date NOT NULL,  -- the renewal date the order buys from (LIFE-4)
    pay_by          date,           -- a manual payment's last day, once billing said it waits
    reserved_at     timestamptz NOT NULL
);
CREATE INDEX term_reservations_order ON term_reservations (order_id);
CREATE INDEX term_reservations_pay_by ON term_reservations (pay_by) WHERE pay_by IS NOT NULL;

-- Orders still waiting for billing when this arrived hold their subscriptions from now on.
INSERT INTO term_reservations (subscription_id, order_id, term_start, reserved_at)
SELECT DISTINCT ON (s.subscription_id) s.subscription_id, o.order_id, s.renewal_date, now()
FROM orders AS o CROSS JOIN LATERAL unnest(o.subscription_ids) AS u(subscription_id)
JOIN subscriptions AS s ON s.subscription_id = u.subscription_id
WHERE o.status = 'requested'
ORDER BY s.subscription_id, o.created_at
ON CONFLICT (subscription_id) DO NOTHING;

-- orders.status gains `released` (its reservation let go: money arriving later goes back) and
-- `refunded` (billing was asked to give that money back).
