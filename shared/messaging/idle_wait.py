"""A batch subscriber that waits for records instead of polling for them (issue 19).

FastStream 0.7's batch subscriber asks `getmany(timeout_ms=batch_timeout_ms)` and, when that
comes back empty, sleeps `batch_timeout_ms` more before asking again
(`faststream/kafka/subscriber/usecase.py`, `BatchSubscriber.get_msg`). At 20 ms every consumer
of a quiet topic woke 25 times a second: with the five services idle, that cycling was half of
their CPU (30 % of a core; 16 % with the pause at 500 ms), and it went on under load for each
topic the load does not touch (the catalog, the clocks, the subscription system's events...).

`getmany` already returns as soon as the background fetcher hands it a record
(`aiokafka.consumer.fetcher.Fetcher.fetched_records` waits on a future the fetcher completes),
so waiting longer in it costs no latency; the pause after an empty answer is what delays a record
that arrives during it. Here the subscriber waits up to its `batch_timeout_ms` in `getmany` and
asks again at once when nothing came: a quiet consumer wakes about once per wait, a busy one is
unchanged.
Stopping is unaffected: FastStream cancels the consume task (`TasksMixin.stop`).
"""

from __future__ import annotations

from itertools import chain
from typing import Any


def wait_for_records(subscriber: Any) -> None:
    """Make `subscriber` (FastStream's `BatchSubscriber`) wait up to its own `batch_timeout_ms`
    for records, with no pause after an empty wait. Its consume loop calls
    `self.get_msg(consumer)` and handles an empty tuple by asking again."""

    async def get_msg(consumer: Any) -> tuple[Any, ...]:
        batches = await consumer.getmany(
            timeout_ms=subscriber.batch_timeout_ms, max_records=subscriber.max_records
        )
        return tuple(chain.from_iterable(batches.values()))

    subscriber.get_msg = get_msg
