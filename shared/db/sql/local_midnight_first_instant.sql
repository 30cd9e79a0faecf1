-- Included (psql's `\ir`) by renewal 020, notification 018 and quote 013, after
-- subscription_time_zones.sql (renewal 014, notification 013, quote 010) defined local_midnight.
--
-- The instant `day` begins in `zone` (none: UTC): the first instant whose date there is `day`,
-- which is when the CSN's today becomes `day` (shared/test_clocks.py: CsnClock with zoneinfo,
-- and the claims' SQL today, both read the date at an instant, which is never ambiguous).
--
-- `day::timestamp AT TIME ZONE zone` alone says so on most days, and on a day whose midnight the
-- clocks skip (America/Santiago, Havana, Beirut, Cairo…: 00:00 → 01:00) it reads it at the offset
-- before the change, which is the change itself: right. But where the clocks go back from 01:00
-- to 00:00 (America/Havana, Atlantic/Azores), midnight comes twice, and PostgreSQL takes the
-- second one (the offset after the change), an hour after the day began: between the two, a
-- renewal, reminder or automatic quote the CSN's today says is due was not claimed (its index
-- key not reached yet). So: the midnight read at the offset the zone had twelve hours earlier
-- (the afternoon before) when that is already `day` there — the first midnight — else the
-- usual one (where the clocks went back from 24:00 to 23:00, that reading is still the day
-- before; where they went forward in the afternoon before, it is later than the usual one, which
-- stands). The infinite dates (notification's "no reminder day", -infinity) have no offset.
--
-- One expression of immutable built-in functions only: SQL that PostgreSQL inlines in the
-- claims and the index keys (with a stable one, as `timestamptz - interval` is, it would call
-- the function for every row, 30 times slower), and that finds nothing to resolve on the search
-- path (no helper of ours, for a REINDEX or an ANALYZE under another one). So instants are
-- reckoned as UTC wall times (`timestamp`), "usual" being the usual reading as one:
--   usual             (day::timestamp AT TIME ZONE zone) AT TIME ZONE 'UTC'
--   local time at w   w AT TIME ZONE 'UTC' AT TIME ZONE zone
--   offset 12 h before  local time at (usual - 12 h) less (usual - 12 h)
--   earlier           (day::timestamp - that offset) AT TIME ZONE 'UTC'
-- Cheap on the usual day: a microsecond before the usual reading it is still the day before
-- there, and nothing more is read (a row's key is computed on each write of it, and by the
-- REINDEX).
CREATE OR REPLACE FUNCTION local_midnight(day date, zone text) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE
        WHEN NOT isfinite(day)
             -- the local time a microsecond before the usual reading: the day before
             OR ((day::timestamp AT TIME ZONE COALESCE(zone, 'UTC')) AT TIME ZONE 'UTC'
                 - interval '1 microsecond') AT TIME ZONE 'UTC' AT TIME ZONE COALESCE(zone, 'UTC')
                < day::timestamp
        THEN day::timestamp AT TIME ZONE COALESCE(zone, 'UTC')
        -- the earlier reading is midnight there, or later that day: the first of the two
        WHEN ((day::timestamp
               - (((day::timestamp AT TIME ZONE COALESCE(zone, 'UTC')) AT TIME ZONE 'UTC'
                   - interval '12 hours') AT TIME ZONE 'UTC' AT TIME ZONE COALESCE(zone, 'UTC')
                  - ((day::timestamp AT TIME ZONE COALESCE(zone, 'UTC')) AT TIME ZONE 'UTC'
                     - interval '12 hours')))
              AT TIME ZONE 'UTC' AT TIME ZONE COALESCE(zone, 'UTC'))::date = day
        THEN LEAST(
            (day::timestamp
             - (((day::timestamp AT TIME ZONE COALESCE(zone, 'UTC')) AT TIME ZONE 'UTC'
                 - interval '12 hours') AT TIME ZONE 'UTC' AT TIME ZONE COALESCE(zone, 'UTC')
                - ((day::timestamp AT TIME ZONE COALESCE(zone, 'UTC')) AT TIME ZONE 'UTC'
                   - interval '12 hours')))
            AT TIME ZONE 'UTC',
            day::timestamp AT TIME ZONE COALESCE(zone, 'UTC'))
        ELSE day::timestamp AT TIME ZONE COALESCE(zone, 'UTC')
    END
    $$;
