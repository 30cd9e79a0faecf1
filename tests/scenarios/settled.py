"""The positive signal that the product has done everything it was given: what replaces a fixed
"settle" pause before a test asserts that something happened only once (or not at all).

The product is settled when, twice in a row with no new message anywhere in between:
- every live consumer group of a service has read every contract topic to its end (a service
  commits its offset only after the transaction that holds the event's effects and outbox rows);
- no service's outbox holds an event still to publish (a published one would have moved an end
  offset, and the second round would differ);
- the work the loops own is done: no bulk batch pending, no charge pending or in flight, no
  email due and unsent (leased and being sent counts as unsent).
Anything still to happen then would need a new message or a later due date: a duplicate effect,
were there one, has shown up.

Time-driven work (a reminder, an automatic quote, a renewal on a test clock's date) starts from
no message: given the services' metrics ports, settling also waits until each time-driven loop
has completed two steps since the first round — one that began after everything was read.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from services.operations.kafka import admin, partitions_of, reader
from services.operations.topics import active_groups, contract_topics, unread
from shared.messaging.principals import SERVICE_PRINCIPAL

SERVICE_SCHEMAS = ("renewal", "billing", "quote", "notification")
# Consumer groups are named `<service>.<topic>` (shared/messaging/runtime.py).
SERVICE_GROUP_PREFIXES = tuple(f"{service}." for service in SERVICE_PRINCIPAL)

# What each schema still has to do, beyond its outbox: (what, count query).
PENDING_WORK = (
    (
        "bulk batches pending",
        "SELECT count(*) FROM renewal.renewal_batches WHERE status = 'pending'",
    ),
    (
        "charges pending or in flight",
        "SELECT count(*) FROM billing.orders WHERE charge_status IN ('pending', 'charging')",
    ),
    (
        "emails due and unsent",
        "SELECT count(*) FROM notification.emails WHERE status = 'pending'"
        " AND next_attempt_at <= now()",
    ),
)


# The loops that act on dates (on a short interval in the test stacks: TEST_STACK_SETTINGS).
TIME_DRIVEN_LOOPS = ("due_date_engine", "renewal_reminders", "automatic_quotes", "quote_expiry")


@dataclass(frozen=True)
class Snapshot:
    end_offsets: dict[str, int]
    busy: list[str]  # what is not done yet, readable: "renewal.renewal.commands lag 3"


async def consumer_lags(bootstrap: str) -> tuple[dict[str, int], list[str]]:
    """The contract topics' end offsets, and every live service group still behind one."""
    async with reader(bootstrap) as consumer, admin(bootstrap) as client:
        names = contract_topics(include_dlq=False)
        partitions = [tp for name in names for tp in await partitions_of(consumer, name)]
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        groups = [
            group
            for group, _protocol in await client.list_consumer_groups()
            if group.startswith(SERVICE_GROUP_PREFIXES)
        ]
        behind = []
        for group in sorted(await active_groups(client, groups)):
            committed = await client.list_consumer_group_offsets(group)
            read = {tp: meta.offset for tp, meta in committed.items()}
            # Services start from the earliest offset: a partition never committed is all unread.
            topic = group.split(".", 1)[1]
            lag = unread([tp for tp in partitions if tp.topic == topic], read, ends, starts)
            if lag:
                behind.append(f"{group} lag {lag}")
    end_offsets = {name: sum(ends[tp] for tp in partitions if tp.topic == name) for name in names}
    return end_offsets, behind


async def snapshot(bootstrap: str, admin_db: asyncpg.Connection) -> Snapshot:
    # Kafka first: a lag of 0 read now means the effects of everything read are committed,
    # so that the outbox and work counts read next include them.
    end_offsets, busy = await consumer_lags(bootstrap)
    for schema in SERVICE_SCHEMAS:
        unpublished = await admin_db.fetchval(f"SELECT count(*) FROM {schema}.outbox")
        if unpublished:
            busy.append(f"{schema} outbox {unpublished}")
    for what, query in PENDING_WORK:
        if count := await admin_db.fetchval(query):
            busy.append(f"{what} {count}")
    return Snapshot(end_offsets, busy)


def loop_steps(metrics_ports: Sequence[int]) -> dict[str, float]:
    """Completed steps of each time-driven loop, from the services' /metrics."""
    steps: dict[str, float] = {}
    for port in metrics_ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith("renewals_loop_steps_total{"):
                    loop = line.split('loop="', 1)[1].split('"', 1)[0]
                    if loop in TIME_DRIVEN_LOOPS:
                        steps[loop] = steps.get(loop, 0.0) + float(line.rsplit(" ", 1)[1])
    return steps


async def settled(
    bootstrap: str,
    admin_db: asyncpg.Connection,
    *,
    metrics_ports: Sequence[int] = (),
    timeout: float = 30.0,
) -> None:
    """Wait until the product is settled (see the module); raise TimeoutError naming what was
    still busy."""
    deadline = time.monotonic() + timeout
    # The first quiet round, and the loops' steps then: settled once a later round is as
    # quiet, with the same end offsets, and every time-driven loop has stepped twice since.
    quiet_since: tuple[Snapshot, dict[str, float]] | None = None
    while True:
        current = await snapshot(bootstrap, admin_db)
        steps = await asyncio.to_thread(loop_steps, metrics_ports)
        still = current.busy
        if not still and quiet_since is None:
            quiet_since = (current, steps)
            still = ["a second quiet round"]
        elif not still and quiet_since is not None:
            first, steps_then = quiet_since
            if first.end_offsets != current.end_offsets:
                quiet_since, still = (current, steps), ["messages kept arriving"]
            else:
                still = [
                    f"loop {loop} to step twice"
                    for loop, count in steps_then.items()
                    if steps.get(loop, 0.0) < count + 2
                ]
                if not still:
                    return
        else:
            quiet_since = None
        if time.monotonic() > deadline:
            raise TimeoutError(f"the product did not settle in {timeout}s: {', '.join(still)}")
        await asyncio.sleep(0.2)
