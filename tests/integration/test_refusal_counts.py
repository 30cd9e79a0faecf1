"""One refused command, one count (issue 19): `renewals_commands_refused_by_identity_total`
counts the commands answered NOT_AUTHORIZED (README "Security"), however many of their
subscriptions, or answers, the refusal names — the handlers called directly on a real database,
the counter read from the process's Prometheus registry before and after.

Billing's `renewals_billing_orders_refused_total` counts an order once under each of its reasons
by design (its help text; tests/integration/test_billing_service.py checks +1 per reason)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from deploy.local.samples import price, renewal_request, subscription, unique_csn
from services.quote.directory import save_snapshot as save_quote
from services.quote.quotes import QuoteHandlers
from services.renewal.auto_renew import set_auto_renew_handler
from services.renewal.bulk_worker import BulkWorker
from services.renewal.changes import ChangeHandlers
from services.renewal.refusals import refuse_renewal_command
from services.renewal.renewal_requests import record_renewal_request
from services.renewal.state import snapshot_handler
from shared.catalog.store import save_price
from shared.clock import FixedClock
from shared.contracts import renewal_commands
from shared.contracts.common import Actor
from shared.contracts.quote_commands import AcceptQuote, CancelQuote, RequestQuote
from shared.contracts.renewal_commands import (
    AddSeats,
    AlignRenewalDates,
    ChangeRenewalTerms,
    RequestRenewal,
    SetAutoRenew,
)
from shared.db.pool import create_pool
from shared.db.settings import DatabaseSettings
from shared.eligibility import Policy
from shared.messaging.consumer import (
    Delivery,
    UnitOfWork,
    dispatch_by_type,
)
from shared.messaging.identity import identified
from shared.messaging.signing import Unproven
from tests.integration.helpers import (
    consumed_as_a_batch,
    delivered,
    handle_in_transaction,
    migrated_schema,
    read_from_a_record,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CLOCK = FixedClock(NOW)
POLICY = Policy()
COUNTER = "renewals_commands_refused_by_identity_total"


def refused(service: str, why: str = "not_authorized") -> float:
    return REGISTRY.get_sample_value(COUNTER, {"service": service, "why": why}) or 0.0


class Owner:
    """A customer's two subscriptions, and a stranger (another CSN's portal user) who asks
    about them on its own key."""

    def __init__(self, csn: str, subscription_ids: list[str]) -> None:
        self.csn = csn
        self.ids = subscription_ids
        self.stranger_csn = unique_csn("STRANGER")
        self.stranger = Actor(user_id=f"{self.stranger_csn}-buyer", csn=self.stranger_csn)

    def from_stranger(self, command: Any) -> Delivery:
        return delivered(command, self.stranger_csn, time=NOW, signer="portal")


Owned = tuple[DatabaseSettings, Owner]


async def _owner(settings: DatabaseSettings, save: Any) -> Owner:
    csn = unique_csn("OWNER")
    ids = [f"S-{csn}-{n}" for n in range(2)]
    snapshots = [
        subscription(sid, csn, renewal_date=NOW.date() + timedelta(days=20)) for sid in ids
    ]
    await handle_in_transaction(settings, save, [delivered(s, csn, time=NOW) for s in snapshots])
    await handle_in_transaction(settings, save_price, delivered(price(), "-", time=NOW))
    return Owner(csn, ids)


@asynccontextmanager
async def owned(admin_db: asyncpg.Connection, service: str) -> AsyncIterator[Owned]:
    """A migrated schema of the service (renewal or quote), and an owner in it."""
    save = snapshot_handler(POLICY, "/renewal", CLOCK) if service == "renewal" else save_quote
    async with migrated_schema(admin_db, service) as settings:
        yield settings, await _owner(settings, save)


@pytest.fixture
async def renewal_owner(admin_db: asyncpg.Connection) -> AsyncIterator[Owned]:
    async with owned(admin_db, "renewal") as settings_and_owner:
        yield settings_and_owner


@pytest.fixture
async def quote_owner(admin_db: asyncpg.Connection) -> AsyncIterator[Owned]:
    async with owned(admin_db, "quote") as settings_and_owner:
        yield settings_and_owner


Handle = Callable[[UnitOfWork, Any], Awaitable[None]]
CHANGES = ChangeHandlers(CLOCK, POLICY, "/renewal")
# A stranger's command about both (or the first of) the owner's subscriptions: ROLE-1 refuses it
# NOT_AUTHORIZED on each subscription it names, one command all the same.
RENEWAL_COMMANDS: dict[str, tuple[Handle, Callable[[Owner], Any], bool]] = {
    "auto_renew_on_two": (
        set_auto_renew_handler(CLOCK, POLICY, "/renewal"),
        lambda o: SetAutoRenew(
            request_id="a", actor=o.stranger, subscription_ids=o.ids, enabled=True
        ),
        False,
    ),
    "align_two": (
        CHANGES.align_dates,
        lambda o: AlignRenewalDates(
            request_id="d",
            actor=o.stranger,
            subscription_ids=o.ids,
            target_date=NOW.date() + timedelta(days=40),
        ),
        False,
    ),
    "change_terms": (
        CHANGES.change_terms,
        lambda o: ChangeRenewalTerms(
            request_id="t", actor=o.stranger, subscription_id=o.ids[0], seats=3
        ),
        False,
    ),
    "add_seats": (
        CHANGES.add_seats,
        lambda o: AddSeats(request_id="s", actor=o.stranger, subscription_id=o.ids[0], seats=1),
        False,
    ),
    # A single renewal request is worked at intake, in its transaction.
    "renew_one": (
        record_renewal_request(CLOCK, "/renewal", POLICY),
        lambda o: renewal_request(o.stranger_csn, o.ids[:1]),
        True,
    ),
}


@pytest.mark.parametrize("name", list(RENEWAL_COMMANDS))
async def test_a_strangers_renewal_command_counts_once_whatever_it_names(
    renewal_owner: Owned, name: str
) -> None:
    settings, owner = renewal_owner
    handle, command, batch = RENEWAL_COMMANDS[name]
    delivery = owner.from_stranger(command(owner))
    before = refused("renewal")
    await handle_in_transaction(settings, handle, [delivery] if batch else delivery)
    assert refused("renewal") - before == 1


async def test_a_strangers_bulk_renewal_counts_once_when_the_worker_refuses_it(
    renewal_owner: Owned,
) -> None:
    """MAN-1 in bulk: recorded at intake (counted nowhere yet), refused by the bulk worker on
    each of the two subscriptions: one command, counted once, under the worker."""
    settings, owner = renewal_owner
    intake = record_renewal_request(CLOCK, "/renewal", POLICY)
    request = owner.from_stranger(renewal_request(owner.stranger_csn, owner.ids))
    before = refused("renewal"), refused("bulk_worker")
    await handle_in_transaction(settings, intake, [request])
    pool = await create_pool(settings)
    try:
        worker = BulkWorker(pool, CLOCK, POLICY, source="/renewal", per_claim=5, poll_seconds=1)
        assert await worker.work_pending() == 1
    finally:
        await pool.close()
    assert (refused("renewal") - before[0], refused("bulk_worker") - before[1]) == (0, 1)


QUOTES = QuoteHandlers(CLOCK, POLICY, "/quote")
QUOTE_COMMANDS: dict[str, Callable[[Owner], Any]] = {
    "request_two": lambda o: RequestQuote(
        request_id="q",
        actor=o.stranger,
        channel="self_service",
        kind="renewal",
        subscription_ids=o.ids,
        recipients=[],
    ),
    "accept": lambda o: AcceptQuote(request_id="a", actor=o.stranger, quote_number="Q-2026-000001"),
    "cancel": lambda o: CancelQuote(
        request_id="c", actor=o.stranger, quote_number="Q-2026-000001", channel="self_service"
    ),
}
# (service, the command's key: the owner's or the stranger's, signer, unproven, why)
IDENTITY_REFUSALS = [
    ("renewal", "stranger", None, Unproven.UNSIGNED, "unsigned"),
    ("renewal", "stranger", "portal", Unproven.BAD_SIGNATURE, "bad_signature"),
    ("renewal", "owner", "portal", None, "wrong_csn"),  # for the stranger's CSN
    ("quote", "stranger", "sales", None, "channel_mismatch"),  # the body says self_service
]


@pytest.mark.parametrize(
    ("service", "key", "signer", "unproven", "why"),
    IDENTITY_REFUSALS,
    ids=[refusal[-1] for refusal in IDENTITY_REFUSALS],
)
async def test_a_command_refused_for_who_sent_it_counts_once(
    admin_db: asyncpg.Connection,
    service: str,
    key: str,
    signer: str | None,
    unproven: Unproven | None,
    why: str,
) -> None:
    """Refused by `identified` before any handler, and answered by the service's refusal (which
    counts nothing more)."""
    async with owned(admin_db, service) as (settings, owner):
        command, handler, refuse = (
            (
                renewal_request(owner.stranger_csn, owner.ids[:1]),
                dispatch_by_type(
                    {RequestRenewal: record_renewal_request(CLOCK, "/renewal", POLICY)}
                ),
                refuse_renewal_command(CLOCK, "/renewal"),
            )
            if service == "renewal"
            else (
                QUOTE_COMMANDS["cancel"](owner),
                dispatch_by_type(QUOTES.commands()),
                QUOTES.refuse(),
            )
        )
        subject = owner.csn if key == "owner" else owner.stranger_csn
        event = delivered(command, subject, time=NOW).event
        delivery = Delivery(event, None, signer=signer, unproven=unproven)
        before = refused(service, why), refused(service)
        await handle_in_transaction(settings, identified(service, handler, refuse), [delivery])
        assert (refused(service, why) - before[0], refused(service) - before[1]) == (1, 0)


@pytest.mark.parametrize("name", list(QUOTE_COMMANDS))
async def test_a_strangers_quote_command_counts_once(quote_owner: Owned, name: str) -> None:
    settings, owner = quote_owner
    command = QUOTE_COMMANDS[name](owner)
    before = refused("quote")
    await handle_in_transaction(
        settings, QUOTES.commands()[type(command)], owner.from_stranger(command)
    )
    assert refused("quote") - before == 1


async def test_a_refusal_in_a_batch_retried_one_by_one_counts_once(
    admin_db: asyncpg.Connection,
) -> None:
    """The consumer handles a batch in one transaction and, when it fails, each message alone
    (shared/messaging/consumer.py): a refusal counted in the batch that rolled back is counted
    again when its message is handled alone. It counts once, when its transaction commits."""
    async with owned(admin_db, "renewal") as (settings, owner):
        unsigned = owner.from_stranger(renewal_request(owner.stranger_csn, owner.ids[:1]))
        unsigned = Delivery(unsigned.event, None, unproven=Unproven.UNSIGNED)
        poison = owner.from_stranger(renewal_request(owner.stranger_csn, owner.ids[1:]))
        poison = read_from_a_record(poison)  # for its dead letter

        async def fails(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
            raise RuntimeError("the admitted command fails, every time")

        before = refused("renewal", "unsigned")
        handled, [letter] = await consumed_as_a_batch(
            settings,
            renewal_commands,
            identified("renewal", fails, refuse_renewal_command(CLOCK, "/renewal")),
            [unsigned, poison],
            service="renewal",
            attempts=2,
        )
        assert (handled, letter.record) == (1, poison.record)  # the refusal alone, committed
        assert refused("renewal", "unsigned") - before == 1
