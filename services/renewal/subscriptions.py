"""Subscriptions as the renewal service keeps them: the upstream snapshot and what it owns."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from shared import eligibility
from shared.contracts.common import Person, PurchaseMethod, Term
from shared.contracts.subscription_events import SubscriptionFlags, SubscriptionUpserted
from shared.db.types import DbConnection
from shared.messaging.consumer import Delivery, UnitOfWork
from shared.newest import newest_per_subscription
from shared.test_clocks import save_time_zones


@dataclass(frozen=True)
class Subscription:
    """The stored snapshot, with what the product owns once it arrived: the renewal date, term,
    seats, the auto-renew switch, and which renewal date a lapse or expiry was announced for."""

    snapshot: SubscriptionUpserted
    renewal_date: date
    term: Term
    seats: int
    auto_renew: bool
    lapse_announced_for: date | None = None
    expiry_announced_for: date | None = None
    next_term: Term | None = None
    next_seats: int | None = None

    @property
    def renewal_term(self) -> Term:
        """TERM-1, as the rules decide it."""
        return eligibility.renewal_term_of(self)

    @property
    def renewal_seats(self) -> int:
        """SEAT-2, as the rules decide it."""
        return eligibility.renewal_seats_of(self)

    @property
    def subscription_id(self) -> str:
        return self.snapshot.subscription_id

    @property
    def csn(self) -> str:
        return self.snapshot.csn

    # What grace is decided on (eligibility.GraceFacts): asked of the row itself, it is not
    # converted whole (`to_domain`) for it (#19 plan item 9).
    @property
    def country(self) -> str:
        return self.snapshot.country

    @property
    def purchase_method(self) -> PurchaseMethod:
        return self.snapshot.purchase_method

    @property
    def flags(self) -> SubscriptionFlags:
        return self.snapshot.flags


def to_domain(subscription: Subscription) -> eligibility.Subscription:
    """The eligibility package's view: the snapshot with the dates, term and seats we own.

    Built field by field from the snapshot, which was validated when it was read
    (`from_row`): a JSON dump and a second validation of it cost the due-date engine and the
    announce of `subscription.state` about a tenth of their time, and checked nothing more.
    """
    snapshot = subscription.snapshot
    payment = snapshot.payment_method
    flags = snapshot.flags
    return eligibility.Subscription(
        subscription_id=snapshot.subscription_id,
        csn=snapshot.csn,
        product_code=snapshot.product_code,
        product_name=snapshot.product_name,
        plan=snapshot.plan,
        term=subscription.term,
        seats=subscription.seats,
        currency=snapshot.currency,
        country=snapshot.country,
        purchase_method=snapshot.purchase_method,
        partner_csn=snapshot.partner_csn,
        payment_method=eligibility.PaymentMethod(
            type=payment.type, recurring=payment.recurring, valid=payment.valid
        ),
        auto_renew=subscription.auto_renew,
        status=snapshot.status,
        start_date=snapshot.start_date,
        renewal_date=subscription.renewal_date,
        flags=eligibility.Flags(
            maintenance_plan=flags.maintenance_plan,
            third_party_platform=flags.third_party_platform,
            legacy_system=flags.legacy_system,
            retired_product=flags.retired_product,
        ),
        managed_org=snapshot.managed_org,
        buyer=_person(snapshot.buyer),
        primary_admin=_person(snapshot.primary_admin),
        next_term=subscription.next_term,
        next_seats=subscription.next_seats,
    )


def _person(person: Person) -> eligibility.Person:
    return eligibility.Person(user_id=person.user_id, email=person.email, locale=person.locale)


async def save_snapshots(unit: UnitOfWork, deliveries: list[Delivery]) -> None:
    """Store a batch of `subscription.upserted` in one statement; an older revision than the
    one held is ignored.

    Once the product holds a subscription it owns its renewal outcome: a newer snapshot updates
    the upstream fields but never moves the renewal date the product has set. The engine looks
    at it again at once (AUTO-1: a payment method that became valid renews a lapsed one).

    The same rows as storing them one by one in order (issue 19 item 4: one statement per
    batch, not per event): per subscription, a new row takes its renewal date, term, seats and
    switch from the batch's first snapshot of it, and the newest revision (the first of equals)
    is the snapshot kept.
    """
    snapshots: list[SubscriptionUpserted] = [delivery.data for delivery in deliveries]
    first: dict[str, SubscriptionUpserted] = {}
    for data in snapshots:
        first.setdefault(data.subscription_id, data)
    newest = newest_per_subscription(snapshots, lambda s: s.revision)
    await save_time_zones(unit.connection, snapshots)
    owned = [first[sid] for sid in newest]
    kept = list(newest.values())
    await unit.connection.execute(
        """INSERT INTO subscriptions (subscription_id, revision, csn, snapshot, renewal_date, term,
                                      seats, auto_renew)
           SELECT u.subscription_id, u.revision, u.csn, u.snapshot::jsonb, u.renewal_date, u.term,
                  u.seats, u.auto_renew
           FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::date[], $6::text[],
                       $7::int[], $8::boolean[])
               AS u(subscription_id, revision, csn, snapshot, renewal_date, term, seats,
                    auto_renew)
           ORDER BY u.subscription_id  -- rows locked in id order, as every other writer does
           ON CONFLICT (subscription_id) DO UPDATE SET
               revision = EXCLUDED.revision, csn = EXCLUDED.csn, snapshot = EXCLUDED.snapshot,
               -- AUTO-1: a card fixed upstream inside grace renews at once: the due-date engine
               -- looks at the subscription again now, not on its next planned day.
               next_check_for = NULL, updated_at = now()
           WHERE subscriptions.revision < EXCLUDED.revision""",
        [s.subscription_id for s in kept],
        [s.revision for s in kept],
        [s.csn for s in kept],
        [s.model_dump_json() for s in kept],
        [s.renewal_date for s in owned],
        [s.term for s in owned],
        [s.seats for s in owned],
        [s.auto_renew for s in owned],
    )


@functools.lru_cache(maxsize=4096)
def parsed_snapshot(text: str) -> SubscriptionUpserted:
    """A stored snapshot's JSON, validated once for as long as it is read again: the due-date
    engine's claim and its announce of `subscription.state`, settlement's load and its announce,
    read the same rows in one transaction, and parsing was a fifth of the announce's time. Keyed
    by the whole text, so a new snapshot is parsed afresh; the model is frozen, so sharing one
    is safe."""
    return SubscriptionUpserted.model_validate_json(text)


# What `from_row` reads, on `subscriptions AS s`: every statement that hands rows to it (the
# loads below, the due-date engine's claim, the state announce) selects these.
SUBSCRIPTION_COLUMNS = (
    "s.snapshot::text AS snapshot, s.renewal_date, s.term, s.seats, s.auto_renew,"
    " s.lapse_announced_for, s.expiry_announced_for, s.next_term, s.next_seats"
)
SELECT_SUBSCRIPTION = f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions AS s"


def from_row(row: asyncpg.Record) -> Subscription:
    return Subscription(
        parsed_snapshot(row["snapshot"]),
        row["renewal_date"],
        row["term"],
        row["seats"],
        row["auto_renew"],
        row["lapse_announced_for"],
        row["expiry_announced_for"],
        row["next_term"],
        row["next_seats"],
    )


async def load_subscriptions(
    connection: DbConnection, subscription_ids: Iterable[str], *, for_update: bool = False
) -> dict[str, Subscription]:
    lock = " ORDER BY subscription_id FOR UPDATE" if for_update else ""
    rows = await connection.fetch(
        SELECT_SUBSCRIPTION + " WHERE subscription_id = ANY($1::text[])" + lock,
        list(set(subscription_ids)),
    )
    subscriptions = (from_row(row) for row in rows)
    return {s.subscription_id: s for s in subscriptions}


async def load_for_command(
    connection: DbConnection, subscription_ids: Iterable[str], csn: str
) -> dict[str, Subscription]:
    """The subscriptions a command about `csn` asks for: see `load_asked`."""
    return await load_asked(connection, [(sid, csn) for sid in subscription_ids])


async def load_asked(
    connection: DbConnection, asked: Iterable[tuple[str, str]]
) -> dict[str, Subscription]:
    """The subscriptions commands ask for, as (subscription id, CSN the command is about): each
    locked only when it is of that CSN (issue 16 item 3). Another tenant's rows are read without
    a lock, only to be refused, so a stranger's command never makes the owner's wait. One query
    when every one is of its command's CSN."""
    pairs = sorted(set(asked))
    rows = await connection.fetch(
        SELECT_SUBSCRIPTION + " WHERE (subscription_id, csn) IN"
        " (SELECT * FROM unnest($1::text[], $2::text[]))"
        " ORDER BY subscription_id FOR UPDATE",
        [sid for sid, _ in pairs],
        [csn for _, csn in pairs],
    )
    found = {s.subscription_id: s for s in map(from_row, rows)}
    if others := sorted({sid for sid, _ in pairs} - found.keys()):
        found |= await load_subscriptions(connection, others)
    return found


async def record_history(
    connection: DbConnection,
    rows: Sequence[
        tuple[str, Any, str, dict[str, Any], dict[str, Any] | None, str | None, str | None]
    ],
) -> None:
    """Audit trail rows: (subscription_id, at, change, detail, actor, request_id, event_id)."""
    if rows:
        await connection.copy_records_to_table(
            "subscription_history",
            records=[
                (
                    sid,
                    at,
                    change,
                    json.dumps(detail, default=str),
                    json.dumps(actor) if actor else None,
                    rid,
                    eid,
                )
                for sid, at, change, detail, actor, rid, eid in rows
            ],
            columns=[
                "subscription_id",
                "at",
                "change",
                "detail",
                "actor",
                "request_id",
                "event_id",
            ],
        )
