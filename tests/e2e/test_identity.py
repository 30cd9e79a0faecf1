"""The command topics as a hostile client meets them, on the real broker, database and service
processes (issue 16 items 2 and 3; CONTRACT.md "Who may send what"): for every command type of
`renewal.commands` and `quote.commands`, another customer's user, a partner that is not the
agent of record, a body `channel` the signer is not, an unsigned or forged command each get
NOT_AUTHORIZED and nothing more, nothing changes (the refusal is the positive signal, then the
rows are read), and a counter says so; the same messages from the right principal still work;
another tenant reusing a request id or an event id is answered. The rules are unit-tested in
tests/unit/eligibility/test_identity.py, the signatures in tests/unit/messaging/test_signing.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from deploy.local import samples
from deploy.local.client import Seen, TopicWatcher, UpstreamClient
from shared.contracts import topics
from shared.contracts.common import Actor
from shared.contracts.envelope import encode
from shared.contracts.quote_commands import AcceptQuote, CancelQuote, QuoteChanges, RequestQuote
from shared.contracts.renewal_commands import (
    AddSeats,
    AlignRenewalDates,
    ChangeRenewalTerms,
    RequestRenewal,
    SetAutoRenew,
)
from shared.messaging.signing import signed_headers, signing_key_of
from tests.scenarios.steps import RENEWAL_DATE, answering, given_subscriptions, publish_price, until

REPO = Path(__file__).resolve().parents[2]
PARTNER, OTHER_PARTNER = "P-1001", "P-1002"  # shared/messaging/principals.py PARTNER_CSNS


@dataclass
class World:
    """A customer (`csn`) with two subscriptions and a quote sent to it, and a customer of
    partner P-1002 (`partner_customer`) with one subscription and a quote that partner made."""

    csn: str
    subscriptions: list[str]
    quote_number: str
    partner_customer: str
    partner_subscription: str
    partner_quote_number: str


def buyer(csn: str) -> Actor:
    return Actor(user_id=f"{csn}-buyer", csn=csn)


def partner_user(partner_csn: str) -> Actor:
    return Actor(user_id=f"desk-{partner_csn}", csn=partner_csn)


@pytest.fixture
async def world(stack, upstream: UpstreamClient, watcher: TopicWatcher, admin_db) -> World:
    csn, customer = samples.unique_csn("ID"), samples.unique_csn("IDP")
    product = f"P-{csn}"
    await publish_price(upstream, product)
    await publish_price(
        upstream, product, term="three_year", list_price="1310.00", renewal_price="1179.00"
    )
    for service in ("renewal", "quote"):
        await until(
            lambda service=service: admin_db.fetchval(
                f"SELECT count(*) = 2 FROM {service}.prices WHERE product_code = $1", product
            ),
            what=f"{service} to store the prices of {product}",
        )
    own = [
        samples.subscription(f"S{n}-{csn}", csn, renewal_date=RENEWAL_DATE, product_code=product)
        for n in (1, 2)
    ]
    sold = samples.subscription(
        f"S-{customer}",
        customer,
        renewal_date=RENEWAL_DATE,
        product_code=product,
        purchase_method="partner",
        partner_csn=OTHER_PARTNER,
    )
    await given_subscriptions(upstream, admin_db, *own, sold)
    asked = RequestQuote(
        request_id=f"q-{csn}",
        actor=buyer(csn),
        channel="self_service",
        kind="renewal",
        subscription_ids=[own[0].subscription_id],
        recipients=[],
    )
    by_partner = RequestQuote(
        request_id=f"q-{customer}",
        actor=partner_user(OTHER_PARTNER),
        channel="partner",  # UpstreamClient sends it as partner-P-1002's tool
        kind="renewal",
        subscription_ids=[sold.subscription_id],
        recipients=[],
    )
    await upstream.send(topics.QUOTE_COMMANDS, samples.event(asked, csn))
    await upstream.send(topics.QUOTE_COMMANDS, samples.event(by_partner, customer))
    [sent] = await watcher.wait_for(answering(asked.request_id, "quote.sent"))
    [partner_sent] = await watcher.wait_for(answering(by_partner.request_id, "quote.sent"))
    return World(
        csn,
        [s.subscription_id for s in own],
        sent.data["quote_number"],
        customer,
        sold.subscription_id,
        partner_sent.data["quote_number"],
    )


def every_command(
    actor: Actor, subscriptions: list[str], quote_number: str, *, channel: str, tag: str
) -> list[tuple[Any, Any]]:
    """One command of each type of both command topics, about these subscriptions and quote."""
    first = subscriptions[0]
    rid = f"{tag}-{uuid.uuid4().hex[:8]}"
    return [
        (topics.RENEWAL_COMMANDS, RequestRenewal(request_id=f"{rid}-renew", actor=actor,
                                                 subscription_ids=[first])),
        (topics.RENEWAL_COMMANDS, SetAutoRenew(request_id=f"{rid}-auto", actor=actor,
                                               subscription_ids=[first], enabled=True)),
        (topics.RENEWAL_COMMANDS, ChangeRenewalTerms(request_id=f"{rid}-terms", actor=actor,
                                                     subscription_id=first, term="three_year")),
        (topics.RENEWAL_COMMANDS, AddSeats(request_id=f"{rid}-seats", actor=actor,
                                           subscription_id=first, seats=1)),
        (topics.RENEWAL_COMMANDS, AlignRenewalDates(
            request_id=f"{rid}-align", actor=actor, subscription_ids=subscriptions,
            target_date=RENEWAL_DATE + timedelta(days=10))),
        (topics.QUOTE_COMMANDS, RequestQuote(
            request_id=f"{rid}-quote", actor=actor, channel=channel, kind="renewal",
            subscription_ids=[first], recipients=[])),
        (topics.QUOTE_COMMANDS, AcceptQuote(request_id=f"{rid}-accept", actor=actor,
                                            quote_number=quote_number)),
        (topics.QUOTE_COMMANDS, CancelQuote(request_id=f"{rid}-cancel", actor=actor,
                                            channel=channel, quote_number=quote_number)),
    ]  # fmt: skip


def rejection_of(topic: Any) -> str:
    return "renewal.rejected" if topic == topics.RENEWAL_COMMANDS else "quote.rejected"


async def refused_only(
    stack: Any, watcher: TopicWatcher, admin_db: asyncpg.Connection, commands: list[tuple[Any, Any]]
) -> None:
    """Each command answered NOT_AUTHORIZED and nothing more: no other reason, and no other
    answer to it once the product has settled (a later one would otherwise go unseen)."""
    for topic, command in commands:
        await watcher.wait_for(answering(command.request_id, rejection_of(topic)))
    await stack.settled(admin_db)
    for topic, command in commands:
        answers = watcher.matching(lambda s, rid=command.request_id: _answers(s, rid))
        assert {(a.type, tuple(a.data["reasons"])) for a in answers} == {
            (rejection_of(topic), ("NOT_AUTHORIZED",))
        }, command


def _answers(seen: Seen, request_id: str) -> bool:
    return seen.topic in (topics.RENEWAL_EVENTS.name, topics.QUOTE_EVENTS.name) and (
        seen.data.get("request_id") == request_id
    )


async def state_of(admin_db: asyncpg.Connection, csn: str) -> dict[str, Any]:
    """What a command could change of a customer: its subscriptions' renewal state, the orders
    and reservations for them, its quotes."""
    subscriptions = await admin_db.fetch(
        "SELECT subscription_id, auto_renew, renewal_date, seats, next_term, next_seats"
        " FROM renewal.subscriptions WHERE csn = $1 ORDER BY subscription_id",
        csn,
    )
    return {
        "subscriptions": [dict(r) for r in subscriptions],
        "orders": await admin_db.fetchval(
            "SELECT count(*) FROM renewal.orders WHERE csn = $1", csn
        ),
        "quotes": [
            dict(r)
            for r in await admin_db.fetch(
                "SELECT quote_number, status FROM quote.quotes WHERE csn = $1"
                " ORDER BY quote_number",
                csn,
            )
        ],
        "charges": await admin_db.fetchval(
            "SELECT count(*) FROM billing.orders WHERE csn = $1", csn
        ),
    }


def refused_by_identity(stack, process: str, why: str) -> float:
    """The service's `renewals_commands_refused_by_identity_total` for one `why`."""
    port = stack.services[process].port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    pattern = rf'^renewals_commands_refused_by_identity_total\{{[^}}]*why="{why}"[^}}]*\}} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.MULTILINE))


def refused_everywhere(stack, why: str) -> float:
    """`refused_by_identity` summed over the processes that decide commands: renewal (a single
    renewal request is decided at intake), the bulk worker (a bulk one) and quote."""
    return sum(
        refused_by_identity(stack, process, why) for process in ("renewal", "bulk_worker", "quote")
    )


async def send_all(client: UpstreamClient, commands: list[tuple[Any, Any]], subject: str) -> None:
    for topic, command in commands:
        await client.send(topic, samples.event(command, subject))


async def test_another_customer_s_user_gets_not_authorized_and_nothing_more(
    stack, watcher, admin_db, world, kafka_bootstrap
):
    """OWASP API1: a portal user of another CSN, on its own key, asks for every command about
    this customer's subscriptions and quote: NOT_AUTHORIZED only, and nothing changed."""
    stranger = samples.unique_csn("STRANGER")
    before = await state_of(admin_db, world.csn)
    counted = refused_everywhere(stack, "not_authorized")
    commands = every_command(
        buyer(stranger), world.subscriptions, world.quote_number, channel="self_service", tag="x"
    )
    async with UpstreamClient(kafka_bootstrap, principal="portal") as portal:
        await send_all(portal, commands, stranger)
    await refused_only(stack, watcher, admin_db, commands)
    assert await state_of(admin_db, world.csn) == before
    # Exactly one count a command (a command counted twice, once per subscription or again on a
    # retry, would show here), whichever process decides it.
    assert refused_everywhere(stack, "not_authorized") - counted == len(commands)


async def test_a_portal_user_sending_on_another_customer_s_key_is_refused_before_anything(
    stack, watcher, admin_db, world, kafka_bootstrap
):
    """The command's key and subject name the victim (its answers would go there): refused as a
    whole, `wrong_csn`, before the victim's rows are read or locked."""
    stranger = samples.unique_csn("STRANGER")
    before = await state_of(admin_db, world.csn)
    counted = refused_by_identity(stack, "renewal", "wrong_csn")
    commands = every_command(
        buyer(stranger), world.subscriptions, world.quote_number, channel="self_service", tag="k"
    )
    async with UpstreamClient(kafka_bootstrap, principal="portal") as portal:
        await send_all(portal, commands, world.csn)
    await refused_only(stack, watcher, admin_db, commands)
    assert await state_of(admin_db, world.csn) == before
    assert refused_by_identity(stack, "renewal", "wrong_csn") - counted == 5


async def test_a_partner_acts_only_for_the_customers_it_is_agent_of_record_for(
    stack, watcher, admin_db, world, kafka_bootstrap
):
    """Partner P-1001's tool, signing as itself, for a subscription and a quote of partner
    P-1002's: refused NOT_AUTHORIZED only; the same term change from P-1002's tool is made."""
    before = await state_of(admin_db, world.partner_customer)
    commands = every_command(
        partner_user(PARTNER),
        [world.partner_subscription],
        world.partner_quote_number,
        channel="partner",
        tag="p",
    )
    async with UpstreamClient(kafka_bootstrap, principal=f"partner-{PARTNER}") as intruder:
        await send_all(intruder, commands, world.partner_customer)
    await refused_only(stack, watcher, admin_db, commands)
    assert await state_of(admin_db, world.partner_customer) == before

    terms = ChangeRenewalTerms(
        request_id=f"p-ok-{uuid.uuid4().hex[:8]}",
        actor=partner_user(OTHER_PARTNER),
        subscription_id=world.partner_subscription,
        term="three_year",
    )
    async with UpstreamClient(kafka_bootstrap, principal=f"partner-{OTHER_PARTNER}") as agent:
        await agent.send(topics.RENEWAL_COMMANDS, samples.event(terms, world.partner_customer))
    [updated] = await watcher.wait_for(answering(terms.request_id, "renewal_terms.updated"))
    assert updated.data["term"] == "three_year"


async def test_a_body_channel_its_signer_is_not_is_refused_and_the_right_signer_s_goes_through(
    stack, watcher, admin_db, world, kafka_bootstrap
):
    """The portal saying `sales` (a sales-only change, a cancellation self-service can't do):
    refused, counted `channel_mismatch`; the very same commands from the sales tool work."""
    counted = refused_by_identity(stack, "quote", "channel_mismatch")
    cancel = CancelQuote(
        request_id=f"c-{uuid.uuid4().hex[:8]}",
        actor=buyer(world.csn),
        channel="sales",
        quote_number=world.quote_number,
    )
    quote = RequestQuote(
        request_id=f"c-{uuid.uuid4().hex[:8]}",
        actor=buyer(world.csn),
        channel="sales",
        kind="renewal",
        subscription_ids=[world.subscriptions[1]],
        recipients=[],
        changes=QuoteChanges(add_seats=2),
    )
    before = await state_of(admin_db, world.csn)
    commands = [(topics.QUOTE_COMMANDS, cancel), (topics.QUOTE_COMMANDS, quote)]
    async with UpstreamClient(kafka_bootstrap, principal="portal") as portal:
        await send_all(portal, commands, world.csn)
    await refused_only(stack, watcher, admin_db, commands)
    assert await state_of(admin_db, world.csn) == before
    assert refused_by_identity(stack, "quote", "channel_mismatch") - counted == 2

    async with UpstreamClient(kafka_bootstrap, principal="sales") as sales:
        await send_all(sales, commands, world.csn)
    await watcher.wait_for(answering(cancel.request_id, "quote.cancelled"))
    await watcher.wait_for(answering(quote.request_id, "quote.sent"))


async def test_unsigned_and_forged_commands_are_refused_and_the_signed_one_works(
    stack, watcher, admin_db, world, kafka_bootstrap
):
    """The customer's own, valid command: unsigned, signed with a guessed key, signed then
    changed, or claiming another signer — each NOT_AUTHORIZED, nothing switched, counted by
    why; the same event signed by the portal switches auto-renew on (its event id and request
    id were not used up by the refusals)."""
    command = SetAutoRenew(
        request_id=f"f-{uuid.uuid4().hex[:8]}",
        actor=buyer(world.csn),
        subscription_ids=[world.subscriptions[0]],
        enabled=True,
    )
    topic, key = topics.RENEWAL_COMMANDS.name, world.csn.encode()
    portal_key = signing_key_of("portal")
    assert portal_key is not None

    def forged(signer: str, secret: str, *, changed: bool = False) -> tuple[bytes, Any]:
        # Each forgery its own event: the inbox takes one event id once.
        body = encode(samples.event(command, world.csn))
        headers = signed_headers(signer, secret, topic, key, body)
        if changed:
            body = body.replace(b'"enabled":true', b'"enabled":false')
            assert b'"enabled":false' in body
        return body, headers

    forgeries = {
        "unsigned": (encode(samples.event(command, world.csn)), []),
        "guessed": forged("portal", "a-guessed-key"),
        "changed": forged("portal", portal_key, changed=True),
        "claimed": forged("sales", portal_key),  # the portal's key, the sales tool's name
        "unknown": forged("mallory", portal_key),
    }
    event = samples.event(command, world.csn)
    counted = {
        why: refused_by_identity(stack, "renewal", why)
        for why in ("unsigned", "bad_signature", "unknown_signer")
    }
    before = await state_of(admin_db, world.csn)
    async with UpstreamClient(kafka_bootstrap, principal="portal") as portal:
        for body, headers in forgeries.values():
            await portal.send_raw(topic, body, key, headers=headers)
        refusals = await watcher.wait_for(
            answering(command.request_id, "renewal.rejected"), count=len(forgeries)
        )
        assert {tuple(r.data["reasons"]) for r in refusals} == {("NOT_AUTHORIZED",)}
        assert await state_of(admin_db, world.csn) == before
        assert {
            why: refused_by_identity(stack, "renewal", why) - counted[why] for why in counted
        } == {"unsigned": 1, "bad_signature": 3, "unknown_signer": 1}

        await portal.send(topics.RENEWAL_COMMANDS, event)
    [changed] = await watcher.wait_for(answering(command.request_id, "auto_renew.changed"))
    assert changed.data["enabled"] is True
    assert len(watcher.matching(answering(command.request_id, "renewal.rejected"))) == len(
        forgeries
    )


async def test_another_tenant_reusing_a_request_id_and_an_event_id_is_answered(
    stack, upstream, watcher, admin_db, world, kafka_bootstrap
):
    """CONTRACT.md: request ids are scoped to the CSN that sent them. Another customer uses this
    customer's request ids (and the same CloudEvent ids) first, for its own subscription; this
    customer's commands are still done and answered, each once."""
    other = samples.unique_csn("OTHER")
    snapshot = samples.subscription(f"S-{other}", other, renewal_date=RENEWAL_DATE)
    await given_subscriptions(upstream, admin_db, snapshot)
    reused = f"r-{uuid.uuid4().hex[:8]}"

    def both(make: Any) -> list[Any]:
        first = samples.event(make(other, snapshot.subscription_id), other)
        second = samples.event(make(world.csn, world.subscriptions[1]), world.csn)
        return [first, second.model_copy(update={"id": first.id})]

    switches = both(
        lambda csn, sid: SetAutoRenew(
            request_id=reused, actor=buyer(csn), subscription_ids=[sid], enabled=True
        )
    )
    renewals = both(
        lambda csn, sid: RequestRenewal(
            request_id=f"{reused}-renew", actor=buyer(csn), subscription_ids=[sid]
        )
    )
    for event in switches:
        await upstream.send(topics.RENEWAL_COMMANDS, event)
    for event in renewals:
        await upstream.send(topics.RENEWAL_COMMANDS, event)
    changed = await watcher.wait_for(answering(reused, "auto_renew.changed"), count=2)
    assert sorted(c.event["subject"] for c in changed) == sorted([other, world.csn])
    renewed = await watcher.wait_for(
        lambda s: (
            s.data.get("request_id") == f"{reused}-renew"
            and s.type in ("subscription.renewed", "renewal.rejected")
        ),
        count=2,
        timeout=60,
    )
    assert sorted(r.event["subject"] for r in renewed) == sorted([other, world.csn])
    assert await admin_db.fetchval(
        "SELECT auto_renew FROM renewal.subscriptions WHERE subscription_id = $1",
        world.subscriptions[1],
    )


async def test_the_example_partner_client_connects_signs_and_gets_its_answer(
    stack, upstream, admin_db
):
    """examples/partner_client.py, as partner P-1001's tool, renews a subscription P-1001 sold."""
    customer = samples.unique_csn("EX")
    snapshot = samples.subscription(
        f"S-{customer}",
        customer,
        renewal_date=RENEWAL_DATE,
        purchase_method="partner",
        partner_csn=PARTNER,
    )
    await given_subscriptions(upstream, admin_db, snapshot)
    example = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "examples" / "partner_client.py"),
        customer,
        snapshot.subscription_id,
        env={**os.environ, "RENEWALS_KAFKA_PASSWORD": "", "RENEWALS_SIGNING_KEY": ""},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(example.communicate(), 90)
    text = output.decode()
    assert example.returncode == 0, text
    assert "as partner-P-1001" in text and "answer: " in text, text
    assert "NOT_AUTHORIZED" not in text, text
