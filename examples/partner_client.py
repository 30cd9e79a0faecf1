"""How a partner tool connects to the product: SASL/SCRAM-SHA-512 as the `partner` principal,
a `renewal.requested` CloudEvent on `renewal.commands`, the answer read from `renewal.events`
in a consumer group of its own (`partner.*`). Plain aiokafka, none of the product's code: what
any outside system needs is the bootstrap address, the mechanism, a user name and a password.

    RENEWALS_KAFKA_PASSWORD=... uv run python examples/partner_client.py CSN-1001 S-1001
    uv run python examples/partner_client.py        # from the clone: the secrets file's password

Writing anything else (billing's topics, payment.events, clock.commands) is refused by the
broker with TopicAuthorizationFailed; see the README's "Security" section.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

BOOTSTRAP = os.environ.get(
    "RENEWALS_KAFKA_BOOTSTRAP", f"127.0.0.1:{os.environ.get('RENEWALS_KAFKA_PORT', '19092')}"
)
USERNAME = "partner"


def password() -> str:
    """The partner's password: given to it by whoever runs the broker (here: the clone's
    generated secrets file, `.local/secrets.env`)."""
    if os.environ.get("RENEWALS_KAFKA_PASSWORD"):
        return os.environ["RENEWALS_KAFKA_PASSWORD"]
    secrets = Path(__file__).resolve().parents[1] / ".local" / "secrets.env"
    for line in secrets.read_text().splitlines():
        if line.startswith("KAFKA_PASSWORD_PARTNER="):
            return line.partition("=")[2]
    sys.exit(f"no password: set RENEWALS_KAFKA_PASSWORD (or run `make infra-up`, {secrets})")


def connection() -> dict[str, str]:
    return {
        "bootstrap_servers": BOOTSTRAP,
        "security_protocol": "SASL_PLAINTEXT",  # SASL_SSL (with an ssl_context) off loopback
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": USERNAME,
        "sasl_plain_password": password(),
    }


def renewal_requested(csn: str, subscription_id: str, request_id: str) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/partner-tool",
        "type": "renewal.requested",
        "time": datetime.now(UTC).isoformat(),
        "subject": csn,
        "datacontenttype": "application/json",
        "data": {
            "request_id": request_id,
            "actor": {"user_id": f"{csn}-buyer", "csn": csn},
            "subscription_ids": [subscription_id],
        },
    }


async def main(csn: str, subscription_id: str) -> int:
    request_id = f"partner-{uuid.uuid4()}"
    answers = AIOKafkaConsumer(
        "renewal.events",
        **connection(),
        group_id=f"partner.example-{uuid.uuid4().hex[:6]}",  # the partner's own groups only
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(**connection(), enable_idempotence=True, acks="all")
    await answers.start()
    await producer.start()
    try:
        while not answers.assignment():  # joined (at the end): the answer cannot slip past
            await answers.getmany(timeout_ms=200)
        event = renewal_requested(csn, subscription_id, request_id)
        await producer.send_and_wait(
            "renewal.commands",
            json.dumps(event).encode(),
            key=csn.encode(),  # everything about one customer in order
            headers=[("content-type", b"application/cloudevents+json")],
        )
        print(f"sent renewal.requested {request_id} for {subscription_id} ({csn})")
        async with asyncio.timeout(60):
            async for record in answers:
                answer = json.loads(record.value or b"{}")
                if answer.get("data", {}).get("request_id") == request_id:
                    print(f"answer: {answer['type']} {json.dumps(answer['data'])}")
                    return 0
    except TimeoutError:
        print("no answer within 60 s: are the services running (make run)?", file=sys.stderr)
        return 1
    finally:
        await producer.stop()
        await answers.stop()
    return 1


if __name__ == "__main__":
    csn, subscription = (sys.argv[1:3] + ["CSN-EXAMPLE", "S-EXAMPLE"][len(sys.argv[1:3]) :])[:2]
    sys.exit(asyncio.run(main(csn, subscription)))
