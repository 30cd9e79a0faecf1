-- The last day the reminder scheduler looked at a subscription: it looks again only when a
-- reminder day after that one has come, so a quiet subscription costs it nothing.
ALTER TABLE subscriptions ADD COLUMN reminded_through date;
