"""`make bench-email`: CPU µs per email of the notification sender's three steps, one by one.

    uv run python -m bench.email_cost               # 2,000 emails, 3 rounds, the median printed
    uv run python -m bench.email_cost --emails 5000 --rounds 5

The emails are the bench's mix: order confirmations (one and three lines) in English and in
French, with a reminder and a payment failure now and then, as `services/notification/sender.py`
gets them from a claim (kind, locale, the context as JSON). The steps, each timed on its own:
  render   the templates (subject, text, HTML) with their Babel formatting (`EmailRenderer`)
  mime     the message's bytes (`build_message`)
  smtp     the emails sent on one SMTP session to the bench's SMTP sink (bench/smtp_sink.py,
           its own process), as one sender sends a claim, sink's CPU reported apart
The figure is CPU time (`time.process_time`: this process, every thread), not wall-clock: the
machine is shared, and CPU per email is what caps the rate on two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import functools
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.procstat import cpu_seconds
from bench.report import table
from bench.smtp import SmtpSink
from services.notification.message import OutgoingEmail, build_message
from services.notification.samples import SAMPLES
from services.notification.smtp import SmtpSession
from services.notification.templates import EmailRenderer, RenderedEmail

SENDER = "renewals@example.com"


def mix(count: int) -> list[tuple[str, str, str, str]]:
    """(key, kind, locale, context as JSON) for `count` emails, the bench's proportions."""
    one_line = copy.deepcopy(SAMPLES["order_confirmation"])
    one_line["items"] = one_line["items"][:1]
    shapes: list[tuple[str, str, dict[str, Any]]] = [
        ("order_confirmation", "en-US", one_line),
        ("order_confirmation", "fr-FR", one_line),
        ("order_confirmation", "en-GB", SAMPLES["order_confirmation"]),
        ("order_confirmation", "de-DE", one_line),
        ("order_confirmation", "en-US", SAMPLES["order_confirmation"]),
        ("order_confirmation", "fr-CA", one_line),
        ("renewal_reminder", "en-US", SAMPLES["renewal_reminder"]),
        ("payment_failed", "fr-FR", SAMPLES["payment_failed"]),
    ]
    emails = []
    for n in range(count):
        kind, locale, context = shapes[n % len(shapes)]
        context = {**context, "order_id": f"ORD-{n:06d}"} if "order_id" in context else context
        emails.append((f"{kind}:ORD-{n:06d}", kind, locale, json.dumps(context)))
    return emails


def cpu_of(step: Callable[[], Any]) -> tuple[float, Any]:
    started = time.process_time()
    result = step()
    return time.process_time() - started, result


def render_all(
    renderer: EmailRenderer, emails: list[tuple[str, str, str, str]]
) -> list[RenderedEmail]:
    # As the sender does: the context parsed from the claim's JSON, then rendered.
    return [
        renderer.render(kind, locale, json.loads(context)) for _, kind, locale, context in emails
    ]


def build_all(
    emails: list[tuple[str, str, str, str]], rendered: list[RenderedEmail]
) -> list[OutgoingEmail]:
    recipients = ["buyer@csn.example.com"]
    return [
        build_message(SENDER, recipients, r.subject, key, r.text, r.html)
        for (key, *_), r in zip(emails, rendered, strict=True)
    ]


def send_all(port: int, messages: list[OutgoingEmail]) -> None:
    """One SMTP session for all, each email handed to the client as the sender hands it."""

    async def run() -> None:
        smtp = SmtpSession("127.0.0.1", port)
        try:
            for index, message in enumerate(messages):
                await smtp.send(message, messages[index + 1] if index + 1 < len(messages) else None)
        finally:
            smtp.close()

    asyncio.run(run())


def measure(count: int, rounds: int) -> dict[str, float]:
    emails = mix(count)
    renderer = EmailRenderer()
    render_all(renderer, emails[:50])  # warm: the first emails of a process are not the steady cost
    figures: dict[str, list[float]] = {"render": [], "mime": [], "smtp": [], "smtp sink": []}
    with SmtpSink() as sink:
        send_all(sink.port, build_all(emails[:10], render_all(renderer, emails[:10])))
        for _ in range(rounds):
            seconds, rendered = cpu_of(lambda: render_all(renderer, emails))
            figures["render"].append(seconds)
            seconds, messages = cpu_of(functools.partial(build_all, emails, rendered))
            figures["mime"].append(seconds)
            sink_before = cpu_seconds(sink.pid) or 0.0
            seconds, _ = cpu_of(functools.partial(send_all, sink.port, messages))
            figures["smtp"].append(seconds)
            while sink.stats()["messages"] < (len(figures["smtp"]) * count + 10):
                time.sleep(0.01)
            figures["smtp sink"].append((cpu_seconds(sink.pid) or 0.0) - sink_before)
    return {step: 1e6 * statistics.median(values) / count for step, values in figures.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    per_email = measure(args.emails, args.rounds)
    total = per_email["render"] + per_email["mime"] + per_email["smtp"]
    rows = [[step, round(us)] for step, us in per_email.items()]
    rows.append(["sender total (render + mime + smtp)", round(total)])
    print(f"CPU µs per email, median of {args.rounds} rounds of {args.emails:,} emails")
    print(table(["step", "µs"], rows))
    print(json.dumps({"cpu_us_per_email": {k: round(v, 1) for k, v in per_email.items()}}))


if __name__ == "__main__":
    main()
