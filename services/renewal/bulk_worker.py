"""The bulk worker: works recorded renewal batches into orders, many batches per transaction.

Each claimed batch is decided as every manual renewal request is (services/renewal/
manual_renewals.py: MAN-1, MAN-2, MAN-3); a single-subscription request is worked by renewal's
intake at once, so only bulk requests are left to the worker. A batch is claimed with `FOR
UPDATE SKIP LOCKED` and everything it produces commits at once, so a worker killed at any point
leaves the batch pending and the next worker (or the same one restarted) does it whole, never
twice. It runs as a `WorkLoop` woken by
`NOTIFY renewal_batches`; a claim that fails is worked batch by batch, and a batch that fails
alone is set aside (status `failed`, for an operator) while the others go through.
Run it as its own process: `python -m services.bulk_worker`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.renewal.background import RenewalLoop
from services.renewal.batches import claim_batches, save_worked, set_aside
from services.renewal.manual_renewals import decide_requests
from services.renewal.state import StateAnnouncer
from shared.messaging.loops import WorkLoop
from shared.messaging.outbox import Outbox
from shared.messaging.parking import IsolatingClaims, park_item
from shared.plumbing.committed_counts import counted_on_commit
from shared.plumbing.faults import BULK_AFTER_COMMIT, BULK_BEFORE_COMMIT

log = logging.getLogger(__name__)

LOOP = "bulk_worker"


@dataclass(eq=False, kw_only=True)
class BulkWorker(RenewalLoop):
    per_claim: int
    poll_seconds: float

    def __post_init__(self) -> None:
        self.claims = IsolatingClaims(
            self.pool, "bulk_worker", LOOP, self._work, set_aside=self._set_aside
        )

    def work_loop(self) -> WorkLoop:
        return WorkLoop(
            LOOP,
            self.work_pending,
            service="bulk_worker",
            poll_seconds=self.poll_seconds,
            pool=self.pool,
            channel="renewal_batches",
        )

    async def work_pending(self) -> int:
        """Claim and work up to `per_claim` pending batches in one transaction; if that fails
        for a reason other than a transient one, work them one at a time so that one bad batch
        is set aside (status `failed`, for an operator) and the others go through."""
        return await self.claims.step()

    async def _set_aside(self, key: str, reason: str) -> None:
        async with self.pool.acquire() as connection, connection.transaction():
            await set_aside(connection, key)
            await park_item(connection, loop=LOOP, item=key, reason=reason)

    async def _work(self, only: str | None = None) -> int:
        # A claim that fails is worked again one batch at a time: what it counted (refusals),
        # only if it commits.
        with counted_on_commit():
            return await self._work_in_one_transaction(only)

    async def _work_in_one_transaction(self, only: str | None) -> int:
        async with self.pool.acquire() as connection, connection.transaction():
            batches = await claim_batches(connection, self.per_claim, only, self.claims.took)
            if not batches:
                return 0
            outbox = Outbox()
            work = await decide_requests(
                connection,
                batches,
                outbox,
                clock=self.clock,
                policy=self.policy,
                source=self.source,
                counted_as="bulk_worker",
            )
            await save_worked(
                connection, batches, work.items, outbox, clock=self.clock, source=self.source
            )
            await StateAnnouncer(self.policy, self.source).announce_changes(
                connection, outbox, self.clock.now()
            )
            await outbox.flush(connection)
            self.faults.hit(BULK_BEFORE_COMMIT)
        # Committed: orders asked for, answers in the outbox; the relay publishes them.
        self.faults.hit(BULK_AFTER_COMMIT)
        log.info("bulk batches worked", extra={"batches": len(batches), "orders": len(work.orders)})
        return len(batches)
