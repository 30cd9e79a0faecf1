-- Issue 19 item 3: the check at commit that every noted state change was announced (migration
-- 013, `refuse_unannounced_state`) runs once per noted row, four per automatic renewal. Its
-- table is empty between transactions, so the planner's statistics say one page and it read
-- `state_changes` whole at every check; under load that heap holds the dead rows of every
-- recent transaction (noted, then deleted by the announce): 74 pages a check, 0.12-0.14 ms,
-- 0.5 ms of PostgreSQL per renewal (pg_stat_statements, bench). Its index answers the check
-- in a probe, whatever the heap holds.
ALTER FUNCTION refuse_unannounced_state() SET enable_seqscan = off;
