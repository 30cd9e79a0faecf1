"""The workload: subscriptions and a price as the subscription system and catalog would publish
them, then renewals of every kind, each input delivered twice (the same CloudEvent again, and the
same request under a new event id), and the follow-ups a customer would send (accept a quote, pay
a bank transfer) when the product asks for them."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from aiokafka.errors import KafkaError

from deploy.local import samples
from deploy.local.client import UpstreamClient
from shared.contracts import topics
from shared.contracts.clock_commands import SetTestClock
from shared.contracts.common import Actor
from shared.contracts.envelope import CloudEvent
from shared.contracts.payment_events import PaymentReceived
from shared.contracts.quote_commands import AcceptQuote, RequestQuote

# Inside the renewal window (WIN-1), past the 30-day reminder and automatic quote (NOTE-1,
# QUO-7): only the emails the workload asks for go out.
RENEWAL_DATE = date.today() + timedelta(days=45)
# Shares of the renewals by kind; the rest of `single` after refusals.
SHARES = {"single": 0.25, "reminded": 0.05, "bulk": 0.3, "auto": 0.2, "quote": 0.1, "bank": 0.1}
# `reminded` CSNs move their clock into the 30-day window first (a reminder, NOTE-1, and an
# automatic quote, QUO-7, become due while the load runs), then renew like `single`.
REMINDED_TODAY = RENEWAL_DATE - timedelta(days=25)
# One manual single renewal in this many has an invalid card: refused PAYMENT_METHOD_INVALID.
REFUSED_EVERY = 25
PRICE = Decimal("420.00")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Planned:
    subscription_id: str
    csn: str
    kind: str
    expect: str  # "renewed" or "refused"


@dataclass
class Action:
    """One customer action: its events (duplicates included) and the subscriptions it covers."""

    kind: str
    topic: str
    events: list[CloudEvent[Any]]
    subscription_ids: list[str]


@dataclass
class Plan:
    prefix: str
    product: str
    subscriptions: dict[str, Planned] = field(default_factory=dict)
    upserts: list[CloudEvent[Any]] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    @property
    def csns(self) -> set[str]:
        return {s.csn for s in self.subscriptions.values()}


def twice(command: Any, csn: str) -> list[CloudEvent[Any]]:
    """Delivered twice (the same CloudEvent id), and the same request under a new event id."""
    first = samples.event(command, csn, source="/fault-suite")
    return [first, first, samples.event(command, csn, source="/fault-suite")]


def plan(renewals: int, prefix: str, rng: random.Random) -> Plan:
    product = f"P-{prefix}"
    result = Plan(prefix, product)
    counts = {kind: int(renewals * share) for kind, share in SHARES.items()}
    counts["single"] += renewals - sum(counts.values())
    serial = iter(range(1_000_000))

    def new_csn() -> str:
        return f"{prefix}-{next(serial):06}"

    def add(csn: str, kind: str, n: int, expect: str = "renewed", **fields: Any) -> list[str]:
        ids = []
        for i in range(n):
            sid = f"{csn}-S{i + 1}"
            snapshot = samples.subscription(
                sid, csn, renewal_date=RENEWAL_DATE, product_code=product, **fields
            )
            result.upserts.append(samples.event(snapshot, csn, source="/fault-suite"))
            result.subscriptions[sid] = Planned(sid, csn, kind, expect)
            ids.append(sid)
        return ids

    for n in range(counts["single"]):
        csn = new_csn()
        refused = n % REFUSED_EVERY == REFUSED_EVERY - 1
        ids = add(csn, "single", 1, "refused" if refused else "renewed", payment_valid=not refused)
        request = samples.renewal_request(csn, ids)
        result.actions.append(
            Action("single", topics.RENEWAL_COMMANDS.name, twice(request, csn), ids)
        )
    left = counts["reminded"]
    while left > 0:
        size = min(left, rng.randint(1, 3))
        csn = new_csn()
        ids = add(csn, "reminded", size)
        clock = SetTestClock(csn=csn, today=REMINDED_TODAY)
        result.actions.append(Action("reminded", topics.CLOCK_COMMANDS.name, twice(clock, csn), []))
        request = samples.renewal_request(csn, ids)
        result.actions.append(
            Action("reminded", topics.RENEWAL_COMMANDS.name, twice(request, csn), ids)
        )
        left -= size
    left = counts["bulk"]
    while left > 0:
        size = min(left, rng.randint(2, 100)) if left > 1 else 1
        csn = new_csn()
        ids = add(csn, "bulk", size)
        request = samples.renewal_request(csn, ids)
        result.actions.append(
            Action("bulk", topics.RENEWAL_COMMANDS.name, twice(request, csn), ids)
        )
        left -= size
    left = counts["auto"]
    while left > 0:
        size = min(left, rng.randint(1, 5))
        csn = new_csn()
        ids = add(csn, "auto", size, auto_renew=True)
        clock = SetTestClock(csn=csn, today=RENEWAL_DATE)
        result.actions.append(Action("auto", topics.CLOCK_COMMANDS.name, twice(clock, csn), ids))
        left -= size
    left = counts["quote"]
    while left > 0:
        size = min(left, rng.randint(1, 3))
        csn = new_csn()
        ids = add(csn, "quote", size)
        quote = RequestQuote(
            request_id=f"quote-{csn}",
            actor=Actor(user_id=f"{csn}-buyer", csn=csn),
            channel="self_service",
            kind="renewal",
            subscription_ids=ids,
            recipients=[],
        )
        result.actions.append(Action("quote", topics.QUOTE_COMMANDS.name, twice(quote, csn), ids))
        left -= size
    for _ in range(counts["bank"]):
        csn = new_csn()
        ids = add(csn, "bank", 1, payment_type="bank_transfer")
        request = samples.renewal_request(csn, ids)
        result.actions.append(
            Action("bank", topics.RENEWAL_COMMANDS.name, twice(request, csn), ids)
        )
    rng.shuffle(result.actions)
    return result


async def send_retrying(
    client: UpstreamClient, topic: str, events: list[CloudEvent[Any]], progress: Progress
) -> None:
    """Publish, retrying while the broker is away (a restart): a resent event keeps its id."""
    await send_actions_retrying(client, [Action("", topic, events, [])], progress)


async def send_actions_retrying(
    client: UpstreamClient, actions: list[Action], progress: Progress
) -> None:
    """Every event of the actions at once (one round trip, not one per action), again while
    the broker is away (a restart: several minutes on a loaded machine)."""
    for attempt in range(300):
        try:
            await asyncio.gather(*(client.send_many(a.topic, a.events) for a in actions))
            return
        except KafkaError as error:
            if attempt % 10 == 0:
                progress(f"workload: publishing failed ({error!r}), retrying")
            await asyncio.sleep(1.0)
    raise RuntimeError("could not publish for five minutes")


def follow_up(record_type: str | None, event: dict[str, Any], csns: set[str]) -> Action | None:
    """What the customer does next when the product asks: accept a quote, pay a transfer."""
    csn = event.get("subject")
    if csn not in csns:
        return None
    data = event.get("data") or {}
    if record_type == "quote.sent" and data.get("request_id") == f"quote-{csn}":
        accept = AcceptQuote(
            request_id=f"accept-{csn}",
            actor=Actor(user_id=f"{csn}-buyer", csn=csn),
            quote_number=data["quote_number"],
        )
        return Action("quote", topics.QUOTE_COMMANDS.name, twice(accept, csn), [])
    if record_type == "payment.awaiting_manual":
        paid = PaymentReceived(
            payment_reference=data["payment_reference"],
            order_id=data["order_id"],
            amount=Decimal(data["amount"]),
            currency=data["currency"],
        )
        return Action("bank", topics.PAYMENT_EVENTS.name, twice(paid, csn), [])
    return None
