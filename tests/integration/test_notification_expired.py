"""The expired email says what buying again costs (PRICE-1, LIFE-3): the list price of the
subscription's term, as eligibility prices it on the day it expired — handler called directly
on a real database."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from deploy.local.samples import price, subscription, unique_csn
from services.notification.directory import save_snapshots
from services.notification.notices import notice_handlers
from services.notification.settings import NotificationSettings
from shared.catalog.store import save_price
from shared.clock import FixedClock
from shared.contracts.envelope import EventData
from shared.contracts.renewal_events import SubscriptionExpired
from shared.db.settings import DatabaseSettings
from shared.messaging.consumer import Delivery, UnitOfWork
from shared.test_clocks import CsnClock
from tests.integration.helpers import connection_to, delivered

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RENEWAL_DATE = date(2026, 1, 1)  # grace (45 days) ended on 15 February


def delivery(data: EventData, subject: str) -> Delivery:
    return delivered(data, subject, time=NOW)


@pytest.mark.parametrize(("priced", "expected"), [(True, "466.00"), (False, None)])
async def test_life_3_the_expired_email_gives_the_list_price_of_buying_again(
    notification_db: DatabaseSettings, priced: bool, expected: str | None
) -> None:
    csn = unique_csn()
    product = f"P-{csn}"
    snapshot = subscription(f"S-{csn}", csn, renewal_date=RENEWAL_DATE, product_code=product)
    expired = SubscriptionExpired(
        subscription_id=snapshot.subscription_id,
        renewal_date=RENEWAL_DATE,
        expired_on=RENEWAL_DATE + timedelta(days=46),
    )
    async with connection_to(notification_db) as connection, connection.transaction():
        unit = UnitOfWork(connection)
        if priced:  # list 466.00, renewal 420.00: after expiry the list price (PRICE-1)
            await save_price(unit, delivery(price(product), product))
        await save_snapshots(CsnClock(FixedClock(NOW)).today_for)(unit, [delivery(snapshot, csn)])
        handlers = notice_handlers(FixedClock(NOW), NotificationSettings())
        await handlers[SubscriptionExpired](unit, delivery(expired, csn))
        context = json.loads(
            await connection.fetchval("SELECT context::text FROM emails WHERE kind = 'expired'")
        )
    assert context["new_purchase_price"] == expected
    assert context["currency"] == ("USD" if priced else None)
