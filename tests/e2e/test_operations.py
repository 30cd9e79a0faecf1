"""The operator's tools on the running stack: `health`, `subscription show`, `customer show`,
and the web console in a real headless browser (Debian's Chromium driven by Playwright).

Run alone with `uv run pytest tests/e2e/test_operations.py`. Set RENEWALS_CONSOLE_SCREENSHOT to
a path to keep a screenshot of the console (the README's comes from here).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright, expect
from typer.testing import CliRunner

from services.cli import app
from services.operations.console import ConsoleServer
from shared import samples
from shared.contracts import topics
from tests.scenarios.steps import (
    RENEWAL_DATE,
    about_subject,
    answering,
    given_price_known,
    given_subscriptions,
    publish_price,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


async def cli(*args: str) -> Any:
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), catch_exceptions=False)


@pytest.fixture
def chromium() -> str:
    assert os.path.exists(CHROMIUM), "no Chromium: run `make install` (deploy/local/bootstrap.sh)"
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def console_url() -> AsyncIterator[str]:
    server = ConsoleServer("127.0.0.1", 0)
    port = await server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.stop()


async def renewed_customer(upstream, watcher, admin_db) -> dict[str, Any]:
    """A customer whose subscription was renewed, charged and confirmed by email, and who also
    sent a message that is not JSON (a dead letter on renewal.commands.dlq)."""
    csn = samples.unique_csn()
    product = f"P-{csn}"
    await publish_price(upstream, product, renewal_price="420.00", list_price="466.00")
    snapshot = samples.subscription(
        f"S-{csn}", csn, renewal_date=RENEWAL_DATE, product_code=product
    )
    await given_price_known(admin_db, product)
    await given_subscriptions(upstream, admin_db, snapshot)
    command = samples.renewal_request(csn, [snapshot.subscription_id])
    await upstream.send(topics.RENEWAL_COMMANDS, samples.event(command, csn))
    [renewed] = await watcher.wait_for(answering(command.request_id, "subscription.renewed"))
    await watcher.wait_for(about_subject(csn, "email.sent"), timeout=60)
    await upstream.send_raw(topics.RENEWAL_COMMANDS, b"{not json", key=csn.encode())
    await watcher.wait_for(
        lambda s: s.topic == topics.RENEWAL_COMMANDS.dlq and s.key == csn.encode()
    )
    return {
        "csn": csn,
        "subscription_id": snapshot.subscription_id,
        "order_id": renewed.data["order_id"],
        "renewal_date": renewed.data["renewal_date"],
    }


async def test_health_and_lookups_tell_what_every_service_knows(stack, upstream, watcher, admin_db):
    known = await renewed_customer(upstream, watcher, admin_db)
    ports = [f"--service={name}=127.0.0.1:{s.port}" for name, s in stack.services.items()]
    smtp = f"127.0.0.1:{stack.smtp.port}"
    health = await cli("health", *ports, f"--smtp={smtp}", "--json")
    checks = {c["component"]: c for c in json.loads(health.output)}
    assert health.exit_code == 0, health.output
    assert {f"service {name}" for name in stack.services} <= set(checks)
    assert checks["smtp"]["ok"] and smtp in checks["smtp"]["detail"]

    shown = json.loads(
        (await cli("subscription", "show", known["subscription_id"], "--json")).output
    )
    [subscription] = shown["renewal"]["subscriptions"]
    assert subscription["renewal_date"] == known["renewal_date"]
    assert subscription["state"] == "active"
    assert [o["order_id"] for o in shown["billing"]["orders"]] == [known["order_id"]]
    assert [p["outcome"] for p in shown["billing"]["payments"]] == ["succeeded"]
    assert ("order_confirmation", "sent") in [(e["kind"], e["status"]) for e in shown["emails"]]
    assert shown["quotes"] == {"available": True, "open": []}  # no quote asked for it
    assert any(h["change"] == "renewed" for h in shown["renewal"]["history"]), shown["renewal"]

    customer = json.loads((await cli("customer", "show", known["csn"], "--json")).output)
    assert [s["subscription_id"] for s in customer["renewal"]["subscriptions"]] == [
        known["subscription_id"]
    ]
    assert customer["renewal"]["batches"][0]["status"] == "completed"
    missing = await cli("subscription", "show", "S-NOBODY-KNOWS")
    assert missing.exit_code == 1


async def test_the_console_shows_topics_dead_letters_and_a_customer_in_a_browser(
    stack, upstream, watcher, admin_db, browser, console_url
):
    known = await renewed_customer(upstream, watcher, admin_db)
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})

    await page.goto(console_url + "/")
    topics_table = page.locator("#topics")
    await expect(topics_table).to_contain_text("renewal.commands")
    await expect(topics_table).to_contain_text("billing.billing.commands")
    await expect(page.locator("#dlq-counts")).to_contain_text("renewal.commands.dlq")
    await expect(page.locator("#batches")).to_be_visible()
    screenshot = os.environ.get("RENEWALS_CONSOLE_SCREENSHOT")
    if screenshot:
        await page.screenshot(path=screenshot)

    await page.get_by_role("link", name="renewal.commands.dlq").click()
    letter = page.locator("#letters tr", has_text=known["csn"])
    await expect(letter).to_contain_text("not JSON")

    await page.get_by_label("search").fill(known["csn"])
    await page.get_by_role("button", name="search").click()
    await expect(page.locator("#heading")).to_have_text(f"Customer {known['csn']}")
    await expect(page.locator("#subscriptions")).to_contain_text(known["subscription_id"])
    await expect(page.locator("#subscriptions")).to_contain_text(known["renewal_date"])
    await expect(page.locator("#orders")).to_contain_text(known["order_id"])
    await expect(page.locator("#payments")).to_contain_text("succeeded")
    await expect(page.locator("#emails")).to_contain_text("order_confirmation")
    await expect(page.locator("#history")).to_contain_text("renewed")

    await page.get_by_label("search").fill(known["subscription_id"])
    await page.get_by_role("button", name="search").click()
    await expect(page.locator("#heading")).to_have_text(f"Subscription {known['subscription_id']}")


async def test_the_console_refuses_other_interfaces_without_a_token_and_checks_it() -> None:
    from services.operations.console import UnsafeBindError

    with pytest.raises(UnsafeBindError):
        ConsoleServer("0.0.0.0", 0)
    server = ConsoleServer("127.0.0.1", 0, token="s3cret")
    assert (await server.respond("GET", "/nowhere", {})).status.startswith("401")
    assert (await server.respond("GET", "/nowhere?token=s3cret", {})).status.startswith("404")
    cookie = {"cookie": "renewals_console_token=s3cret"}
    assert (await server.respond("GET", "/nowhere", cookie)).status.startswith("404")
    assert (await server.respond("POST", "/", cookie)).status.startswith("405")
