"""The bulk worker: works recorded renewal batches into orders, many batches per transaction.

Each claimed batch is checked subscription by subscription; the eligible ones are grouped by
CSN, currency and purchase method (MAN-2) and each group becomes one order asked of billing
(one transaction, one charge, one confirmation — MAN-3). A batch is claimed with
`FOR UPDATE SKIP LOCKED` and everything it produces commits at once, so a worker killed at any
point leaves the batch pending and the next worker (or the same one restarted) does it whole,
never twice. Run it as its own process: `python -m services.renewal.bulk_worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

import asyncpg

from services.renewal.batches import finish_batches
from services.renewal.checks import ItemDecision, decide_item, request_reasons
from services.renewal.subscriptions import load_subscriptions
from shared.catalog.store import load_prices
from shared.clock import Clock
from shared.contracts.billing_commands import TOPIC as BILLING_COMMANDS
from shared.contracts.billing_commands import PlaceOrder
from shared.contracts.billing_events import OrderLine
from shared.contracts.common import Actor
from shared.contracts.envelope import new_event
from shared.contracts.renewal_events import TOPIC as RENEWAL_EVENTS
from shared.contracts.renewal_events import RenewalRejected
from shared.db.types import DbConnection
from shared.messaging.outbox import Outbox

log = logging.getLogger(__name__)

ORDER_NAMESPACE = uuid.UUID("6f1c8a52-3d0e-4a77-9b1e-2c4b5d6e7f80")


def order_id_for(request_id: str, group: tuple[str, str, str]) -> str:
    # Deterministic: working the same batch again yields the same order ids (billing dedupes).
    return str(uuid.uuid5(ORDER_NAMESPACE, f"{request_id}|{'|'.join(group)}"))


class BulkWorker:
    def __init__(
        self, pool: asyncpg.Pool, clock: Clock, *, source: str, per_claim: int, poll_seconds: float
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.source = source
        self.per_claim = per_claim
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    async def run(self) -> None:
        listener = await self.pool.acquire()
        try:
            await listener.add_listener("renewal_batches", lambda *_: self._wake.set())
            while True:
                try:
                    worked = await self.work_pending()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    log.warning("bulk worker failed, retrying", extra={"error": repr(error)})
                    worked = 0
                    await asyncio.sleep(self.poll_seconds)
                if worked:
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        finally:
            await self.pool.release(listener)

    async def work_pending(self) -> int:
        """Claim and work up to `per_claim` pending batches in one transaction."""
        async with self.pool.acquire() as connection, connection.transaction():
            batches = await connection.fetch(
                "SELECT request_id, csn, actor::text AS actor, total_items FROM renewal_batches"
                " WHERE status = 'pending' ORDER BY received_at LIMIT $1 FOR UPDATE SKIP LOCKED",
                self.per_claim,
            )
            if not batches:
                return 0
            items = await connection.fetch(
                "SELECT request_id, position, subscription_id FROM renewal_batch_items"
                " WHERE request_id = ANY($1::text[]) ORDER BY request_id, position",
                [b["request_id"] for b in batches],
            )
            by_request: dict[str, list[str]] = defaultdict(list)
            for item in items:
                by_request[item["request_id"]].append(item["subscription_id"])
            outbox = Outbox()
            updates: list[dict[str, Any]] = []
            orders: list[tuple[str, str, str, list[str]]] = []
            subscriptions = await load_subscriptions(
                connection, [i["subscription_id"] for i in items], for_update=True
            )
            prices = await load_prices(
                connection, {s.snapshot.product_code for s in subscriptions.values()}
            )
            price_index = {(p.product_code, p.term, p.currency): p for p in prices}
            for batch in batches:
                request_id = batch["request_id"]
                actor = Actor.model_validate_json(batch["actor"])
                requested = by_request[request_id]
                refused = request_reasons(requested)
                if refused:
                    # The whole request is refused and nothing is done (MAN-1).
                    self._reject(outbox, request_id, batch["csn"], None, refused)
                    updates += [
                        {
                            "request_id": request_id,
                            "position": p,
                            "status": "rejected",
                            "reasons": list(refused),
                            "order_id": None,
                        }
                        for p in range(len(requested))
                    ]
                    continue
                decisions = [
                    decide_item(actor, sid, subscriptions.get(sid), price_index)
                    for sid in requested
                ]
                order_of = self._place_orders(outbox, orders, request_id, decisions)
                for position, decision in enumerate(decisions):
                    if decision.allowed:
                        updates.append(
                            {
                                "request_id": request_id,
                                "position": position,
                                "status": "ordered",
                                "reasons": [],
                                "order_id": order_of[decision.subscription_id],
                            }
                        )
                    else:
                        self._reject(
                            outbox,
                            request_id,
                            batch["csn"],
                            decision.subscription_id,
                            decision.reasons,
                        )
                        updates.append(
                            {
                                "request_id": request_id,
                                "position": position,
                                "status": "rejected",
                                "reasons": list(decision.reasons),
                                "order_id": None,
                            }
                        )
            await self._save(connection, batches, updates, orders)
            # Batches with nothing to order (all refused) are finished now.
            await finish_batches(
                connection,
                [b["request_id"] for b in batches],
                outbox,
                clock=self.clock,
                source=self.source,
            )
            await outbox.flush(connection)
            log.info("bulk batches worked", extra={"batches": len(batches), "orders": len(orders)})
            return len(batches)

    def _place_orders(
        self,
        outbox: Outbox,
        orders: list[tuple[str, str, str, list[str]]],
        request_id: str,
        decisions: list[ItemDecision],
    ) -> dict[str, str]:
        groups: dict[tuple[str, str, str], list[ItemDecision]] = defaultdict(list)
        for decision in decisions:
            if decision.allowed and decision.subscription is not None:
                s = decision.subscription.snapshot
                groups[(s.csn, s.currency, s.purchase_method)].append(decision)  # MAN-2
        order_of: dict[str, str] = {}
        for group, members in groups.items():
            csn, currency, purchase_method = group
            order_id = order_id_for(request_id, group)
            lines = [self._line(d) for d in members]
            first = members[0].subscription
            assert first is not None
            command = PlaceOrder(
                request_id=request_id,
                order_id=order_id,
                csn=csn,
                currency=currency,
                purchase_method=purchase_method,
                payment_method=first.snapshot.payment_method,
                lines=lines,
                total=sum((Decimal(line.amount) for line in lines), Decimal(0)),
            )
            outbox.add(
                BILLING_COMMANDS,
                new_event(command, subject=csn, source=self.source, time=self.clock.now()),
            )
            ids = [d.subscription_id for d in members]
            orders.append((order_id, request_id, csn, ids))
            order_of.update(dict.fromkeys(ids, order_id))
        return order_of

    @staticmethod
    def _line(decision: ItemDecision) -> OrderLine:
        assert decision.subscription is not None
        assert decision.unit_price is not None and decision.amount is not None
        s = decision.subscription
        return OrderLine(
            subscription_id=s.subscription_id,
            product_code=s.snapshot.product_code,
            product_name=s.snapshot.product_name,
            term=s.term,
            seats=s.seats,
            unit_price=decision.unit_price,
            amount=decision.amount,
        )

    def _reject(
        self,
        outbox: Outbox,
        request_id: str,
        csn: str,
        subscription_id: str | None,
        reasons: tuple[str, ...],
    ) -> None:
        rejected = RenewalRejected(
            request_id=request_id,
            subscription_id=subscription_id,
            reasons=list(reasons),
        )
        outbox.add(
            RENEWAL_EVENTS,
            new_event(rejected, subject=csn, source=self.source, time=self.clock.now()),
        )

    async def _save(
        self,
        connection: DbConnection,
        batches: list[asyncpg.Record],
        updates: list[dict[str, Any]],
        orders: list[tuple[str, str, str, list[str]]],
    ) -> None:
        await connection.execute(
            """UPDATE renewal_batch_items AS item
               SET status = u.status, reasons = u.reasons, order_id = u.order_id
               FROM jsonb_to_recordset($1::jsonb)
                   AS u(request_id text, position int, status text, reasons text[], order_id text)
               WHERE item.request_id = u.request_id AND item.position = u.position""",
            json.dumps(updates),
        )
        if orders:
            await connection.copy_records_to_table(
                "orders",
                records=orders,
                columns=["order_id", "request_id", "csn", "subscription_ids"],
            )
        await connection.execute(
            "UPDATE renewal_batches SET worked_at = now(), status = 'ordered'"
            " WHERE request_id = ANY($1::text[])",
            [b["request_id"] for b in batches],
        )
