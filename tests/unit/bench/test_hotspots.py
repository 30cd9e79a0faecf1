"""Reading EXPLAIN (ANALYZE) output (issue 19 item 7): the nodes that read the most rows in all,
kept plus filtered out, times their loops — a subquery run per candidate shows as such."""

from __future__ import annotations

from bench.hotspots import HOT, Hot, _read

PLAN = """Limit  (cost=1.14..48504.27 rows=500 width=178) (actual time=14.589..4716.843 rows=300 loops=1)
  Buffers: shared hit=153156
  ->  Index Scan using subscriptions_renewal_date on subscriptions s  (cost=0.29..10455.82 rows=19900 width=961) (actual time=0.041..238.090 rows=20000 loops=1)
        Filter: (expiry_announced_for IS DISTINCT FROM renewal_date)
  ->  Index Scan using test_clocks_pkey on test_clocks c  (cost=0.15..0.17 rows=1 width=42) (actual time=0.004..0.004 rows=0 loops=20000)
  ->  Seq Scan on parked_items parked  (cost=0.00..0.00 rows=1 width=38) (never executed)
  SubPlan 1
    ->  Seq Scan on quotes q  (cost=0.00..590.50 rows=8 width=0) (actual time=14.428..14.428 rows=0 loops=300)
          Filter: ((status = 'sent'::text))
          Rows Removed by Filter: 10705
          Buffers: shared hit=110946
Execution Time: 4732.921 ms"""


def test_the_nodes_that_read_most_come_first_with_their_loops() -> None:
    explained = _read(HOT[0], "auto", PLAN)
    assert explained.milliseconds == 4732.921
    assert explained.buffers == "shared hit=153156"
    assert explained.scans == [
        "quotes (Seq Scan): 10,705 rows × 300 loops",
        "subscriptions (Index Scan): 20,000 rows",
    ]


def test_every_hot_statement_is_found_in_the_services() -> None:
    from bench.hotspots import _sql

    missing = [h.where for h in HOT if isinstance(h, Hot) and _sql(h) is None]
    assert missing == []
