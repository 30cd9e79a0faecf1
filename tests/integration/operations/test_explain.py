"""`renewals explain SUBSCRIPTION_ID` (issue 14 item 5): "why can't this customer do that?"
answered from the live state in renewal's database, on real PostgreSQL, with the output of
`eligibility explain` — which gives the same answer to the request the command builds.

Renewal's schema here is a scratch one (its own migrations, its role), filled by renewal's own
handlers (`save_snapshots`, the catalog's); the CSN has a test clock, so "today" is fixed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from deploy.local import samples
from services.renewal.subscriptions import save_snapshots
from shared.catalog.store import save_price
from shared.contracts.envelope import EventData
from shared.db.migrate import migrate
from shared.db.settings import DatabaseSettings
from shared.eligibility.cli import main as eligibility_main
from shared.messaging.consumer import Delivery, UnitOfWork
from tests.integration.helpers import connection_to, scratch_schema
from tests.integration.operations.conftest import cli

TODAY = date(2026, 3, 2)
RENEWAL_DATE = date(2026, 4, 15)  # the window opened on 2026-01-15 (WIN-1)


@dataclass
class Renewal:
    database: DatabaseSettings
    connection: asyncpg.Connection

    async def receive(self, data: EventData, subject: str) -> None:
        """What renewal does with an upstream event: its own handler, in one transaction."""
        delivery = Delivery(samples.event(data, subject), None)
        async with self.connection.transaction():
            if data.event_type == "subscription.upserted":
                await save_snapshots(UnitOfWork(self.connection), [delivery])
            else:
                await save_price(UnitOfWork(self.connection), delivery)


@pytest.fixture
async def renewal(
    admin_db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Renewal]:
    async with scratch_schema(admin_db, "renewal") as database:
        await migrate("renewal", database)
        # The operator's command finds renewal's database as every tool does: by its settings.
        monkeypatch.setenv("RENEWALS_PG_SCHEMA_NAME", database.schema_name)
        async with connection_to(database) as connection:
            # It writes renewal's rows directly, as states to explain: nothing is published.
            await connection.execute("SET renewal.seeding = on")
            yield Renewal(database, connection)


async def a_subscription(renewal: Renewal, **overrides: Any) -> tuple[str, str]:
    csn = samples.unique_csn("EXPL")
    product = f"P-{csn}"
    await renewal.receive(samples.price(product), product)
    snapshot = samples.subscription(
        f"S-{csn}", csn, renewal_date=RENEWAL_DATE, product_code=product, seats=2, **overrides
    )
    await renewal.receive(snapshot, csn)
    await renewal.connection.execute(
        "INSERT INTO test_clocks (csn, today) VALUES ($1, $2)", csn, TODAY
    )
    return snapshot.subscription_id, csn


async def explained(*args: str) -> Any:
    result = await cli("explain", *args)
    assert result.exit_code == 0, result.output
    return result.output


def eligibility_explain(
    request: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> str:
    path = tmp_path / "request.json"
    path.write_text(request)
    capsys.readouterr()
    assert eligibility_main(["explain", str(path), *args]) == 0
    return capsys.readouterr().out


async def test_issue_14_explain_answers_from_the_live_state_as_eligibility_explain_does(
    renewal: Renewal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    subscription_id, csn = await a_subscription(renewal)

    answer = json.loads(await explained(subscription_id))

    assert (answer["action"], answer["allowed"]) == ("manual_renewal", True)
    [line] = answer["subscriptions"]
    assert (line["subscription_id"], line["unit_price"], line["total"]) == (
        subscription_id,
        "420.00",
        "840.00",
    )
    request = await explained(subscription_id, "--request")
    built = json.loads(request)
    assert built["today"] == TODAY.isoformat()  # the CSN's test clock
    assert built["actor"] == {"user_id": f"{csn}-buyer", "csn": csn}  # the buyer by default
    for output_format in ("json", "table"):
        live = await explained(subscription_id, "--format", output_format)
        assert live == eligibility_explain(request, tmp_path, capsys, "--format", output_format)


async def test_issue_14_explain_sees_what_only_renewal_s_database_knows(renewal: Renewal) -> None:
    """Renewal's own state, not the subscription system's snapshot: a renewal date renewal moved
    (renewed a year ahead: TOO_EARLY again), the seats recorded for the next renewal (SEAT-2),
    and an open order holding the term (RENEWAL_IN_PROGRESS)."""
    subscription_id, _ = await a_subscription(renewal)
    await renewal.connection.execute(
        "UPDATE subscriptions SET next_seats = 5 WHERE subscription_id = $1", subscription_id
    )
    [line] = json.loads(await explained(subscription_id))["subscriptions"]
    assert (line["allowed"], line["total"]) == (True, "2100.00")  # 5 seats at 420.00

    await renewal.connection.execute(
        "INSERT INTO term_reservations (subscription_id, order_id, term_start, reserved_at)"
        " VALUES ($1, 'ORD-OPEN', $2, now())",
        subscription_id,
        RENEWAL_DATE,
    )
    [line] = json.loads(await explained(subscription_id))["subscriptions"]
    assert (line["allowed"], line["reasons"]) == (False, ["RENEWAL_IN_PROGRESS"])

    await renewal.connection.execute(
        "DELETE FROM term_reservations WHERE subscription_id = $1", subscription_id
    )
    await renewal.connection.execute(
        "UPDATE subscriptions SET renewal_date = $2 WHERE subscription_id = $1",
        subscription_id,
        date(2027, 4, 15),
    )
    [line] = json.loads(await explained(subscription_id))["subscriptions"]
    assert line["allowed"] is False
    assert "TOO_EARLY" in line["reasons"]  # the snapshot's own date would be in the window


async def test_explain_other_actions_and_actors(renewal: Renewal) -> None:
    subscription_id, _ = await a_subscription(renewal)

    auto_renew = json.loads(await explained(subscription_id, "--action", "auto_renew_on"))
    assert (auto_renew["action"], auto_renew["allowed"]) == ("auto_renew_on", True)
    stranger = json.loads(await explained(subscription_id, "--user", "U-X", "--csn", "CSN-OTHER"))
    assert stranger["allowed"] is False
    assert "NOT_AUTHORIZED" in stranger["subscriptions"][0]["reasons"]
    seats = json.loads(await explained(subscription_id, "--action", "add_seats", "--seats", "3"))
    assert seats["action"] == "add_seats"


async def test_explain_says_what_it_cannot_answer(renewal: Renewal) -> None:
    subscription_id, _ = await a_subscription(renewal)

    unknown = await cli("explain", "S-NO-SUCH-SUBSCRIPTION")
    assert unknown.exit_code == 1
    assert "no subscription S-NO-SUCH-SUBSCRIPTION is known to the renewal service" in (
        unknown.output
    )
    without_seats = await cli("explain", subscription_id, "--action", "add_seats")
    assert without_seats.exit_code == 2
    assert "seats: Field required for this action" in without_seats.output
    cancel = await cli("explain", subscription_id, "--action", "cancel_quote")
    assert cancel.exit_code == 2
