"""Term reservations on a real database, the handlers called directly (issue 14): two requests
for one subscription worked in one claim make one order; money for an expired subscription is
sent back, once, and renews nothing (LIFE-3, LIFE-5)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from deploy.local.samples import renewal_request, subscription, unique_csn
from services.renewal.renewal_requests import record_renewal_request
from services.renewal.settlement import billing_events_handler
from services.renewal.state import snapshot_handler
from shared.clock import FixedClock
from shared.contracts.billing_events import PaymentSucceeded
from shared.db.settings import DatabaseSettings
from shared.eligibility import Policy
from shared.messaging.consumer import Delivery, UnitOfWork
from tests.integration.helpers import (
    connection_to,
    delivered,
    handle_in_transaction,
    taken_outbox,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
CLOCK = FixedClock(NOW)
POLICY = Policy()
# The upsert as the app wires it: stored, and its subscription.state announced.
save_snapshot = snapshot_handler(POLICY, "/renewal", CLOCK)


def _delivery(data, csn: str) -> Delivery:
    return delivered(data, csn, time=NOW)


async def _given(settings: DatabaseSettings, csn: str, renewal_date: date, **fields) -> str:
    snapshot = subscription(f"S-{csn}", csn, renewal_date=renewal_date, **fields)
    async with connection_to(settings) as connection, connection.transaction():
        await save_snapshot(UnitOfWork(connection), [_delivery(snapshot, csn)])
        await connection.execute(
            "INSERT INTO prices VALUES ('ACDLT', 'annual', 'USD', 466, 420) ON CONFLICT DO NOTHING"
        )
    return snapshot.subscription_id


async def test_man_1_two_requests_decided_together_make_one_order_and_one_renewal_in_progress(
    renewal_db: DatabaseSettings,
) -> None:
    """A double click: two single requests of one consumed batch, worked at intake together."""
    csn = unique_csn()
    sid = await _given(renewal_db, csn, TODAY + timedelta(days=20), payment_type="bank_transfer")
    first, second = renewal_request(csn, [sid]), renewal_request(csn, [sid])
    intake = record_renewal_request(CLOCK, "/renewal", POLICY)
    await handle_in_transaction(renewal_db, intake, [_delivery(first, csn), _delivery(second, csn)])

    events = await taken_outbox(renewal_db)
    orders = [e for e in events if e["type"] == "order.requested"]
    refusals = [e["data"] for e in events if e["type"] == "renewal.rejected"]
    assert len(orders) == 1 and orders[0]["data"]["request_id"] == first.request_id
    assert refusals == [
        {
            "request_id": second.request_id,
            "subscription_id": sid,
            "reasons": ["RENEWAL_IN_PROGRESS"],
        }
    ]
    async with connection_to(renewal_db) as connection:
        held = await connection.fetch("SELECT order_id, term_start FROM term_reservations")
    assert [(r["order_id"], r["term_start"]) for r in held] == [
        (orders[0]["data"]["order_id"], TODAY + timedelta(days=20))
    ]


async def test_life_3_life_5_money_for_an_expired_subscription_goes_back_once(
    renewal_db: DatabaseSettings,
) -> None:
    csn = unique_csn()
    renewal_date = TODAY - timedelta(days=60)  # past grace: expired
    sid = await _given(renewal_db, csn, renewal_date, payment_type="bank_transfer")
    async with connection_to(renewal_db) as connection:
        await connection.execute(
            "INSERT INTO orders (order_id, request_id, csn, subscription_ids)"
            " VALUES ('O-late', NULL, $1, $2)",
            csn,
            [sid],
        )
    paid = PaymentSucceeded(
        order_id="O-late", amount=Decimal("420.00"), currency="USD", payment_reference="P-1"
    )
    settle = billing_events_handler(CLOCK, "/renewal", POLICY)

    await handle_in_transaction(renewal_db, settle, [_delivery(paid, csn), _delivery(paid, csn)])
    events = await taken_outbox(renewal_db)
    assert [(e["type"], e["data"]["order_id"], e["data"]["reason"]) for e in events] == [
        ("payment.refund_requested", "O-late", "EXPIRED")
    ]
    await handle_in_transaction(renewal_db, settle, [_delivery(paid, csn)])
    assert await taken_outbox(renewal_db) == []  # seen again: nothing
    async with connection_to(renewal_db) as connection:
        assert (
            await connection.fetchval(
                "SELECT renewal_date FROM subscriptions WHERE subscription_id = $1", sid
            )
            == renewal_date
        )
