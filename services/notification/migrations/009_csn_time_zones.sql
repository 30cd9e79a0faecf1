-- A CSN's time zone (subscription.upserted `timezone`): its today, and so every date rule for it,
-- is the date there (shared/test_clocks.py). Only the CSNs whose snapshots name one: the others
-- are on UTC. Read by primary key, next to test_clocks.
CREATE TABLE csn_time_zones (
    csn       text PRIMARY KEY,
    time_zone text NOT NULL
);
