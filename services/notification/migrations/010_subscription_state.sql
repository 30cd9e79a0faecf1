-- Issue 14 item 2: what renewal owns of each subscription (dates, term, seats, what the next
-- renewal buys, auto-renew, the payment method, the status), as its `subscription.state` said
-- last (shared/state_following.py): reminders tell what will really happen with it, not with
-- the subscription system's snapshot. `subscriptions.renewal_date` follows it (the reminder
-- claim is keyed on it).
CREATE TABLE subscription_states (
    subscription_id text PRIMARY KEY,
    version         bigint NOT NULL,
    state           jsonb NOT NULL
);
