"""The operator's tools on the running stack: `health`, `subscription show`, `customer show`,
and the web console in a real headless browser (Debian's Chromium driven by Playwright), its
charts drawn from a Prometheus of the test's own that scrapes the test stack every second.

Run alone with `uv run pytest tests/e2e/test_operations.py`. Set RENEWALS_CONSOLE_SCREENSHOT to
a path to keep a screenshot of the console (the README's comes from here).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from playwright.async_api import Browser, async_playwright, expect
from typer.testing import CliRunner

from deploy.local import samples
from services.operations.cli import app
from services.operations.console import TOKEN_COOKIE, TOKEN_ENV, ConsoleServer
from services.operations.console import prometheus as console_prometheus
from services.operations.kafka import partitions_of
from services.operations.prometheus_targets import active_targets
from shared.contracts import topics
from shared.messaging.credentials import client_options
from tests.scenarios.steps import (
    RENEWAL_DATE,
    about_subject,
    answering,
    given_price_known,
    given_subscriptions,
    publish_price,
    request_renewal,
)
from tests.support.smtp import free_port

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
def stack_prometheus(stack, tmp_path: Path) -> Iterator[str]:
    """Debian's Prometheus scraping the test stack's services every second (the one of
    `make infra-up` scrapes `make run`'s ports, not these)."""
    port = free_port()
    targets = [f"127.0.0.1:{service.port}" for service in stack.services.values()]
    config = tmp_path / "prometheus.yml"
    config.write_text(  # JSON is YAML
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "renewals", "static_configs": [{"targets": targets}]}
                ],
            }
        )
    )
    with (tmp_path / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        # Every service scraped once before the test makes traffic: its counters' rise is seen.
        while not scraped_all(url, len(targets)):
            assert process.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the test's Prometheus scraped nothing in 30 s"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def scraped_all(url: str, count: int) -> bool:
    try:
        targets = active_targets(url)
    except OSError:
        return False  # not listening yet
    return len(targets) == count and all(t["health"] == "up" for t in targets)


CHART_MINUTES = 1  # the test's Prometheus has seconds of data: a short window shows their shape


@pytest.fixture
async def console_url(stack_prometheus: str) -> AsyncIterator[str]:
    server = ConsoleServer("127.0.0.1", 0, prometheus=stack_prometheus, chart_minutes=CHART_MINUTES)
    port = await server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.stop()


async def charted(prometheus_url: str, topic: str) -> list[tuple[float, float]]:
    """Waits until Prometheus has a throughput line for the topic (two samples, one above 0)."""
    deadline = time.monotonic() + 30
    while True:
        window = console_prometheus.window_ending(time.time(), CHART_MINUTES)
        query = console_prometheus.QUERIES["throughput"]
        points = (await console_prometheus.query_range(prometheus_url, query, window)).get(topic)
        if points and len(points) >= 2 and max(v for _, v in points) > 0:
            return points
        assert time.monotonic() < deadline, f"no throughput of {topic} in Prometheus: {points}"
        await asyncio.sleep(0.5)


async def stale_group(bootstrap: str) -> str:
    """A consumer group that read one message of renewal.commands, committed and left: nothing
    consumes for it any more (a service renamed or removed)."""
    group = f"it-console-gone-{uuid.uuid4().hex[:8]}"  # a test group (principals.py)
    consumer = AIOKafkaConsumer(
        **client_options(bootstrap), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, topics.RENEWAL_COMMANDS.name)
        ends = await consumer.end_offsets(partitions)
        read = next(tp for tp in partitions if ends[tp] > 0)
        consumer.assign([read])
        await consumer.commit({read: 1})
    finally:
        await consumer.stop()
    return group


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
    command = await request_renewal(upstream, csn, snapshot.subscription_id)
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


async def test_the_console_shows_charts_topics_dead_letters_and_a_customer_in_a_browser(
    stack, upstream, watcher, admin_db, browser, console_url, stack_prometheus, kafka_bootstrap
):
    known = await renewed_customer(upstream, watcher, admin_db)
    gone = await stale_group(kafka_bootstrap)
    screenshot = os.environ.get("RENEWALS_CONSOLE_SCREENSHOT")
    if screenshot:
        # For the README's picture only: half a minute of real traffic, so that the charts
        # show more than the test's first seconds.
        started = time.monotonic()
        while time.monotonic() - started < 30:
            await renewed_customer(upstream, watcher, admin_db)
    await charted(stack_prometheus, topics.RENEWAL_COMMANDS.name)
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})

    await page.goto(console_url + "/")
    # Issue 18 item 3: a line per topic and metric, drawn on the server as SVG.
    throughput = page.locator('svg[data-chart="renewal.commands/throughput"]')
    assert int(await throughput.get_attribute("data-points") or 0) >= 2
    await expect(throughput.locator("polyline")).to_have_count(1)
    assert "no data" not in (await throughput.get_attribute("aria-label") or "")
    lag = page.locator('svg[data-chart="renewal.commands/lag"]')
    assert int(await lag.get_attribute("data-points") or 0) >= 1
    await expect(page.locator("#charts svg.chart")).to_have_count(3 * len(topics.ALL_TOPICS))
    topics_table = page.locator("#topics")
    await expect(topics_table).to_contain_text("renewal.commands")
    await expect(topics_table).to_contain_text("billing.billing.commands")  # a live group
    # A group nothing consumes for is hidden, and said to be.
    await expect(topics_table).not_to_contain_text(gone)
    await expect(page.locator("#stale-note")).to_contain_text("hidden")
    await expect(page.locator("#dlq-counts")).to_contain_text("renewal.commands.dlq")
    await expect(page.locator("#batches")).to_be_visible()
    if screenshot:
        await page.screenshot(path=screenshot)

    await page.locator("#show-stale").click()
    stale = page.locator("#topics tr.stale", has_text=gone)
    await expect(stale).to_contain_text("no consumer, last read a message of")
    await expect(stale.locator("td").nth(4)).to_have_css("color", "rgb(154, 161, 176)")  # grey
    await expect(topics_table).to_contain_text("billing.billing.commands")

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


async def test_the_console_shows_a_renewal_s_trace_in_a_browser(
    stack, upstream, watcher, admin_db, browser
):
    """Issue 18 items 2-3: the trace view, linked from what the search found."""
    known = await renewed_customer(upstream, watcher, admin_db)
    server = ConsoleServer("127.0.0.1", 0, prometheus=f"http://127.0.0.1:{free_port()}")
    await server.start()
    try:
        page = await browser.new_page(viewport={"width": 1400, "height": 800})
        await page.goto(server.url + "/")
        await page.get_by_label("search").fill(known["subscription_id"])
        await page.get_by_role("button", name="search").click()
        await page.locator("#trace-link").click()
        await expect(page.locator("#heading")).to_have_text(f"Trace of {known['subscription_id']}")
        path = page.locator("#trace")
        for kind in (
            "renewal.requested",
            "order.requested",
            "order.placed",
            "subscription.renewed",
        ):
            await expect(path).to_contain_text(kind)
        await expect(path.locator("tr", has_text="payment.succeeded")).to_contain_text("billing")
        await expect(path.locator("tr", has_text="email.sent")).to_contain_text("notification")
        screenshot = os.environ.get("RENEWALS_CONSOLE_SCREENSHOT")
        if screenshot:
            await page.screenshot(path=Path(screenshot).with_name("console-trace.png"))
        # From the customer's orders too, and an id nothing mentions says so.
        await page.goto(server.url + f"/customer/{known['csn']}")
        await page.locator("#orders").get_by_role("link", name=known["order_id"]).click()
        await expect(page.locator("#heading")).to_have_text(f"Trace of {known['order_id']}")
        await expect(page.locator("#trace")).to_contain_text("email.sent")
        await page.goto(server.url + f"/trace?id=NOTHING-{known['csn']}")
        await expect(page.locator("#no-trace")).to_contain_text(f"NOTHING-{known['csn']}")
    finally:
        await server.stop()


async def test_without_prometheus_the_console_says_so_in_place_of_the_charts(
    kafka_bootstrap, browser
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    server = ConsoleServer("127.0.0.1", 0, prometheus=nobody)
    await server.start()
    try:
        page = await browser.new_page()
        response = await page.goto(server.url + "/")
        assert response is not None and response.status == 200
        await expect(page.locator("#charts-unavailable")).to_contain_text(
            f"Prometheus at {nobody} does not answer"
        )
        await expect(page.locator("#charts")).to_have_count(0)
        await expect(page.locator("#topics")).to_contain_text("renewal.commands")
    finally:
        await server.stop()


@pytest.fixture
def console_with_token(kafka_bootstrap) -> Iterator[tuple[str, str]]:
    """`renewals console` as an operator starts it, its token in the environment."""
    token = uuid.uuid4().hex
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "services.operations.cli", "console", f"--port={port}"],
        env={**os.environ, TOKEN_ENV: token, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        said = process.stdout.readline()
        assert "(token required)" in said, said + process.stdout.read()
        yield f"http://127.0.0.1:{port}", token
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_the_console_takes_its_token_from_the_environment_into_a_strict_cookie(
    browser, console_with_token
) -> None:
    """Issue 16 item 7: the token once in a URL becomes an HttpOnly, SameSite=Strict cookie and
    leaves the address; another name in `Host` (DNS rebinding) is refused."""
    url, token = console_with_token
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{url}/dlq?topic=renewal.commands.dlq&token={token}")
    await expect(page).to_have_url(f"{url}/dlq?topic=renewal.commands.dlq")
    await expect(page.locator("h2").first).to_have_text("Dead letters of renewal.commands.dlq")
    [cookie] = await context.cookies()
    assert (cookie["name"], cookie["value"]) == (TOKEN_COOKIE, token)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]
    again = await page.goto(f"{url}/")  # the cookie alone lets the operator in
    assert again is not None and again.status == 200

    stranger = await browser.new_page()
    refused = await stranger.goto(f"{url}/")
    assert refused is not None and refused.status == 401
    wrong = await stranger.goto(f"{url}/?token=not-{token}")
    assert wrong is not None and wrong.status == 401

    def rebound() -> int:
        connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=5)
        connection.request(
            "GET", "/", headers={"Host": "attacker.example", "Cookie": f"{TOKEN_COOKIE}={token}"}
        )
        return connection.getresponse().status

    assert await asyncio.to_thread(rebound) == 400
