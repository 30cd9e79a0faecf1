-- A CSN's time zone, as the orders renewal asks billing to place carry it (`order.requested`
-- `timezone`): the CSN's today, from which billing counts an order's `pay_by`, is the date there
-- (shared/test_clocks.py, as every service reads it). Only the CSNs whose orders name one: the
-- others are on UTC.
CREATE TABLE csn_time_zones (
    csn       text PRIMARY KEY,
    time_zone text NOT NULL
);
