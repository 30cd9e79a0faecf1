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
-- One expression of built-in functions only (no helper of ours): SQL that PostgreSQL inlines in
-- the claims and the index keys, and that finds nothing to resolve on the search path.
-- `day::timestamp - offset AT TIME ZONE 'UTC'` is `day`'s midnight at that UTC offset; the
-- offset twelve hours before the usual reading is its local time less its UTC time then.
CREATE OR REPLACE FUNCTION local_midnight(day date, zone text) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE
        WHEN NOT isfinite(day) THEN day::timestamp AT TIME ZONE COALESCE(zone, 'UTC')
        WHEN ((day::timestamp
               - (((day::timestamp AT TIME ZONE COALESCE(zone, 'UTC')) - interval '12 hours')
                      AT TIME ZONE COALESCE(zone, 'UTC')
                  - ((day::timestamp AT TIME ZONE COALESCE(zone, 'UTC')) - interval '12 hours')
                      AT TIME ZONE 'UTC')) AT TIME ZONE 'UTC' AT TIME ZONE COALESCE(zone, 'UTC'))::date
             = day
        THEN LEAST((day::timestamp
                    - (((day::timestamp AT TIME ZONE COALESCE(zone, 'UTC')) - interval '12 hours')
                           AT TIME ZONE COALESCE(zone, 'UTC')
                       - ((day::timestamp AT TIME ZONE COALESCE(zone, 'UTC')) - interval '12 hours')
                           AT TIME ZONE 'UTC')) AT TIME ZONE 'UTC',
                   day::timestamp AT TIME ZONE COALESCE(zone, 'UTC'))
        ELSE day::timestamp AT TIME ZONE COALESCE(zone, 'UTC')
    END
    $$;
