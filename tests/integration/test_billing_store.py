"""Billing's placing statement on a real database: a batch of orders is one statement (issue 19),
each row exactly as its command asked, with what billing adds to it (its refusals, the
traceparent of its answer) beside the right order."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg
import pytest

from services.billing import store
from services.billing.store import NewOrder
from shared.contracts.billing_commands import PlaceOrder
from shared.contracts.billing_events import OrderLine, OrderRefusal
from shared.contracts.subscription_events import PaymentMethod
from tests.integration.helpers import migrated

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
async def pool(admin_db: asyncpg.Connection) -> AsyncIterator[asyncpg.Pool]:
    async with migrated(admin_db, "billing") as pool:
        yield pool


def _command(n: int, **fields: object) -> PlaceOrder:
    line = OrderLine(
        subscription_id=f"S-{n}",
        product_code="ACDLT",
        product_name="AutoCAD LT",
        term="annual",
        seats=n,
        unit_price=Decimal("420.00"),
        amount=Decimal("420.00") * n,
    )
    return PlaceOrder(
        order_id=f"O-{n}",
        csn=f"CSN-{n}",
        currency="USD",
        purchase_method="direct_online",
        payment_method=PaymentMethod(type="card", recurring=True, valid=True),
        lines=[line],
        total=line.amount,
        **{"request_id": None, **fields},  # type: ignore[arg-type]
    )


async def test_issue_19_a_batch_of_orders_is_placed_each_as_asked(pool: asyncpg.Pool) -> None:
    """Three orders in one statement: one refused for two reasons (recorded, never claimed),
    one automatic with its next try, one of a quote; each keeps its own refusals and trace."""
    refused: list[OrderRefusal] = ["INVALID_PRICE", "TOTAL_MISMATCH"]
    asked = [
        NewOrder(_command(1, request_id="R-1"), refused, "00-" + "1" * 32 + "-" + "1" * 16 + "-01"),
        NewOrder(_command(2, next_retry_on=date(2026, 3, 9)), [], None),
        NewOrder(_command(3, quote_number="Q-2026-000003", request_id="R-3"), [], "tp-3"),
    ]
    async with pool.acquire() as connection:
        placed = await store.place_orders(connection, asked, NOW)
        again = await store.place_orders(connection, asked[:1], NOW)
        rows = await connection.fetch(
            "SELECT order_id, request_id, quote_number, csn, currency, purchase_method,"
            " payment_method::text, lines::text, total, next_retry_on, status, charge_status,"
            " refusals, created_at, traceparent FROM orders ORDER BY order_id"
        )
    assert placed == {"O-1", "O-2", "O-3"} and again == set()
    got = [dict(row) for row in rows]
    for row, order in zip(got, asked, strict=True):
        command = order.command
        assert json.loads(row.pop("payment_method")) == command.payment_method.model_dump(
            mode="json"
        )
        assert json.loads(row.pop("lines")) == [
            line.model_dump(mode="json") for line in command.lines
        ]
    assert got == [
        {
            "order_id": "O-1",
            "request_id": "R-1",
            "quote_number": None,
            "csn": "CSN-1",
            "currency": "USD",
            "purchase_method": "direct_online",
            "total": Decimal("420.00"),
            "next_retry_on": None,
            "status": "refused",
            "charge_status": "recorded",
            "refusals": refused,
            "created_at": NOW,
            "traceparent": asked[0].traceparent,
        },
        {
            "order_id": "O-2",
            "request_id": None,
            "quote_number": None,
            "csn": "CSN-2",
            "currency": "USD",
            "purchase_method": "direct_online",
            "total": Decimal("840.00"),
            "next_retry_on": date(2026, 3, 9),
            "status": "placed",
            "charge_status": "pending",
            "refusals": [],
            "created_at": NOW,
            "traceparent": None,
        },
        {
            "order_id": "O-3",
            "request_id": "R-3",
            "quote_number": "Q-2026-000003",
            "csn": "CSN-3",
            "currency": "USD",
            "purchase_method": "direct_online",
            "total": Decimal("1260.00"),
            "next_retry_on": None,
            "status": "placed",
            "charge_status": "pending",
            "refusals": [],
            "created_at": NOW,
            "traceparent": "tp-3",
        },
    ]
