"""Bulk renewal by the async worker (MAN-1..3), and the due-date engine in two replicas."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request

from deploy.local import samples
from shared.contracts import topics
from shared.contracts.clock_commands import SetTestClock
from tests.scenarios.settled import loop_steps
from tests.scenarios.steps import (
    RENEWAL_DATE,
    about_subject,
    answering,
    charges_for,
    given_a_hundred_subscriptions_in_three_groups,
    given_price_known,
    given_subscriptions,
    orders_for,
    publish_price,
    request_renewal,
    until,
)


async def test_man_1_more_than_a_hundred_is_refused_and_nothing_is_done(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    command = await request_renewal(upstream, csn, *(f"S-{csn}-{n}" for n in range(101)))
    rejected = await watcher.wait_for(answering(command.request_id, "renewal.rejected"))
    assert rejected[0].data == {
        **rejected[0].data,
        "subscription_id": None,
        "reasons": ["BULK_LIMIT_EXCEEDED"],
    }
    assert await orders_for(admin_db, csn) == 0


async def test_the_bulk_worker_killed_mid_batch_resumes_without_a_second_order(
    stack, upstream, watcher, admin_db
):
    csn = samples.unique_csn()
    snapshots = await given_a_hundred_subscriptions_in_three_groups(upstream, admin_db, csn)
    await stack.armed("bulk_worker", "bulk_before_commit")
    command = await request_renewal(upstream, csn, *(s.subscription_id for s in snapshots))

    await stack.killed_at_its_fault("bulk_worker")  # died with the claim open
    assert await orders_for(admin_db, csn) == 0
    progress = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.operations.cli", "batches", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    [batch] = [b for b in json.loads(progress.stdout) if b["request_id"] == command.request_id]
    assert (batch["status"], batch["done"], batch["total_items"]) == ("pending", 0, 100)

    await stack.restart("bulk_worker")
    [completed] = await watcher.wait_for(
        answering(command.request_id, "bulk.completed"), timeout=60
    )
    assert completed.data["succeeded"] == 100
    await stack.settled(admin_db)
    assert await orders_for(admin_db, csn) == 3
    assert await charges_for(admin_db, csn) == 3


def _engine_orders(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if (
                line.startswith("renewals_due_date_engine_total{")
                and "auto_renewal_ordered" in line
            ):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_auto_1_two_engine_replicas_renew_each_of_many_due_subscriptions_exactly_once(
    stack, upstream, watcher, admin_db
):
    count = 1000
    csn = samples.unique_csn()
    product = f"P-{csn}"
    await publish_price(upstream, product)
    await given_price_known(admin_db, product)
    snapshots = [
        samples.subscription(
            f"S-{csn}-{n:04}", csn, renewal_date=RENEWAL_DATE, product_code=product, auto_renew=True
        )
        for n in range(count)
    ]
    await given_subscriptions(upstream, admin_db, *snapshots)
    second = stack.replica("renewal")
    second.start()
    try:
        await asyncio.to_thread(second.wait_ready)
        ports = (stack.services["renewal"].port, second.port)

        async def both_engines_stepped() -> bool:  # ready is not yet looking for due dates
            steps = [await asyncio.to_thread(loop_steps, [p]) for p in ports]
            return all(s.get("due_date_engine", 0) > 0 for s in steps)

        await until(both_engines_stepped, what="both replicas' engines to step once")
        before = [_engine_orders(p) for p in ports]
        await upstream.send(
            topics.CLOCK_COMMANDS, samples.event(SetTestClock(csn=csn, today=RENEWAL_DATE), csn)
        )
        await watcher.wait_for(about_subject(csn, "subscription.renewed"), count=count, timeout=150)
        await stack.settled(admin_db)
        renewed = [
            s.data["subscription_id"]
            for s in watcher.matching(about_subject(csn, "subscription.renewed"))
        ]
        assert sorted(renewed) == sorted(s.subscription_id for s in snapshots)
        assert await charges_for(admin_db, csn) == count
        shares = [_engine_orders(p) - b for p, b in zip(ports, before, strict=True)]
        assert sum(shares) == count and all(share > 0 for share in shares), shares
    finally:
        second.stop()
