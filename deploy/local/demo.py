"""`make run`'s demo: what an account portal, the catalog and the subscription system would send,
and, readably, what the product answered on its topics.

    python -m deploy.local.demo     (the services and the infrastructure must be up: `make run`)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import timedelta

from rich.console import Console

from deploy.local import samples
from deploy.local.client import Seen, TopicWatcher, UpstreamClient
from shared.clock import SystemClock
from shared.contracts import topics
from shared.messaging.settings import MessagingSettings

console = Console()

WATCHED: list[topics.Topic | str] = [
    topics.RENEWAL_EVENTS,
    topics.BILLING_EVENTS,
    topics.NOTIFICATION_EVENTS,
    topics.RENEWAL_COMMANDS.dlq,
]


def _summary(seen: Seen) -> str:
    if seen.topic.endswith(".dlq"):
        return f"error: {seen.headers.get('x-dlq-error', '?')}"
    data = seen.data
    keep = (
        "subscription_id",
        "reasons",
        "previous_renewal_date",
        "renewal_date",
        "total",
        "amount",
        "currency",
        "count",
        "succeeded",
        "rejected",
        "to",
        "subject",
        "reason",
    )
    return ", ".join(f"{k}={json.dumps(data[k], ensure_ascii=False)}" for k in keep if k in data)


async def main() -> int:
    bootstrap = MessagingSettings().kafka_bootstrap
    today = SystemClock().today()
    csn_fr, csn_us = samples.unique_csn("DEMO-FR"), samples.unique_csn("DEMO-US")
    renewal_date = today + timedelta(days=30)
    french = samples.subscription(
        f"SUB-{csn_fr}",
        csn_fr,
        renewal_date=renewal_date,
        seats=3,
        currency="EUR",
        country="FR",
        locale="fr-FR",
    )
    bulk = [
        samples.subscription(f"SUB-{csn_us}-{n}", csn_us, renewal_date=renewal_date, seats=n)
        for n in (1, 2)
    ]
    console.rule("[bold]renewals demo")
    async with TopicWatcher(bootstrap, WATCHED) as watcher, UpstreamClient(bootstrap) as upstream:
        console.print(
            "catalog      → price.published: AutoCAD LT, annual, 420.00 USD and 390.00 EUR a seat"
        )
        await upstream.send_many(
            topics.CATALOG_EVENTS,
            [
                samples.event(samples.price(), "ACDLT"),
                samples.event(
                    samples.price(currency="EUR", list_price="433.00", renewal_price="390.00"),
                    "ACDLT",
                ),
            ],
        )
        console.print(
            f"subscription → subscription.upserted: {french.subscription_id} (fr-FR, 3 seats), "
            f"{bulk[0].subscription_id}, {bulk[1].subscription_id}"
        )
        await upstream.send_many(
            topics.SUBSCRIPTION_EVENTS, [samples.event(s, s.csn) for s in (french, *bulk)]
        )
        await asyncio.sleep(2)  # the catalog and the snapshots travel on other topics than commands
        commands = [
            samples.renewal_request(csn_fr, [french.subscription_id]),
            samples.renewal_request(csn_us, [s.subscription_id for s in bulk]),
            samples.renewal_request(csn_us, [bulk[0].subscription_id], user_id="not-the-buyer"),
        ]
        console.print(
            "portal       → renewal.requested ×3: the French buyer (1 subscription), the US buyer "
            "(2 at once), and someone who is not the buyer"
        )
        await upstream.send_many(
            topics.RENEWAL_COMMANDS, [samples.event(c, c.actor.csn) for c in commands]
        )
        console.print("someone      → renewal.commands: a message that is not JSON at all")
        await upstream.send_raw(
            topics.RENEWAL_COMMANDS, b"this is not a CloudEvent", key=csn_us.encode()
        )
        missing = None
        try:
            await watcher.wait_for(
                lambda s: s.type == "email.sent" and s.data.get("kind") == "order_confirmation",
                count=2,
                timeout=45,
            )
            await watcher.wait_for(lambda s: s.type == "bulk.completed", timeout=15)
        except TimeoutError as error:
            missing = error
        await asyncio.sleep(1)
    console.rule("What came out")
    for seen in watcher.seen:
        subject = seen.event.get("subject", "") if seen.type else (seen.key or b"").decode()
        console.print(
            f"[cyan]{seen.topic:<20}[/] [bold]{seen.type or '(dead letter)':<21}[/] {subject}",
            highlight=False,
        )
        console.print(f"    {_summary(seen)}", highlight=False, soft_wrap=True)
    mail_dir = os.environ.get("RENEWALS_DEMO_MAIL_DIR", ".local/smtp/mail")
    console.print(f"Emails as the SMTP server received them: {mail_dir}/*.eml")
    if missing is not None:
        console.print(f"[red]the demo did not see everything it expected: {missing}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
