-- Issue 19: a CSN's time zone saved (shared/test_clocks.py save_time_zones) moves the zone of
-- its subscriptions (migration 010's triggers: `UPDATE subscriptions … WHERE csn = …`), and
-- quote had no index of the CSN alone (migration 005's is partial): every save read all the
-- subscriptions — at a million, 642 ms a statement, the most expensive of the whole scale
-- bench. Renewal and notification have one (renewal 001, notification 007).
CREATE INDEX subscriptions_csn ON subscriptions (csn);
