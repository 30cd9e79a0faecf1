"""How a partner tool connects to the product: SASL/SCRAM-SHA-512 as its own principal
(`partner-P-1001`: partner P-1001's tool), a `renewal.requested` CloudEvent on
`renewal.commands` for one of the customers it is agent of record for, signed with its signing
key, and the answer read from `renewal.events` in a consumer group of its own
(`partner-P-1001.*`). Plain aiokafka and the standard library, none of the product's code: what
any outside system needs is the bootstrap address, the mechanism, a user name, a password and a
signing key.

    RENEWALS_KAFKA_PASSWORD=... RENEWALS_SIGNING_KEY=... \
        uv run python examples/partner_client.py CSN-1001 S-1001
    uv run python examples/partner_client.py CSN-1001 S-1001   # from the clone: .local/secrets.env

The product believes the channel (`partner`) and the partner (P-1001) of the signature, never
of the body: an unsigned or badly signed command, or one for a subscription P-1001 did not
sell, is answered NOT_AUTHORIZED. Writing anything else (billing's topics, payment.events,
clock.commands) is refused by the broker with TopicAuthorizationFailed; see the README's
"Security" section.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
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
PARTNER_CSN = "P-1001"
USERNAME = f"partner-{PARTNER_CSN}"
TOPIC = "renewal.commands"


def secret(variable: str, key: str) -> str:
    """A credential given to the partner by whoever runs the product: from the environment, or
    here from the clone's generated secrets file (`.local/secrets.env`)."""
    if os.environ.get(variable):
        return os.environ[variable]
    secrets = Path(
        os.environ.get("RENEWALS_SECRETS_FILE")
        or Path(__file__).resolve().parents[1] / ".local" / "secrets.env"
    )
    for line in secrets.read_text().splitlines():
        if line.startswith(f"{key}="):
            return line.partition("=")[2]
    sys.exit(f"no {key}: set {variable} (or run `make infra-up`, {secrets})")


def password() -> str:
    return secret("RENEWALS_KAFKA_PASSWORD", "KAFKA_PASSWORD_PARTNER_P_1001")


def signature(signing_key: str, topic: str, key: bytes, value: bytes) -> str:
    """HMAC-SHA256 over the topic, the Kafka key and the value, each preceded by its length
    (8 bytes, big-endian): the README's "Signed commands"."""
    mac = hmac.new(signing_key.encode(), digestmod=hashlib.sha256)
    for part in (topic.encode(), key, value):
        mac.update(len(part).to_bytes(8, "big") + part)
    return mac.hexdigest()


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
            # A user of the partner's own account: the partner acts for its customer.
            "actor": {"user_id": "partner-desk-1", "csn": PARTNER_CSN},
            "subscription_ids": [subscription_id],
        },
    }


async def main(csn: str, subscription_id: str) -> int:
    request_id = f"partner-{uuid.uuid4()}"
    answers = AIOKafkaConsumer(
        "renewal.events",
        **connection(),
        group_id=f"{USERNAME}.example-{uuid.uuid4().hex[:6]}",  # the partner's own groups only
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(**connection(), enable_idempotence=True, acks="all")
    await answers.start()
    await producer.start()
    try:
        while not answers.assignment():  # joined (at the end): the answer cannot slip past
            await answers.getmany(timeout_ms=200)
        key = csn.encode()  # everything about one customer in order
        value = json.dumps(renewal_requested(csn, subscription_id, request_id)).encode()
        signing_key = secret("RENEWALS_SIGNING_KEY", "SIGNING_KEY_PARTNER_P_1001")
        await producer.send_and_wait(
            TOPIC,
            value,
            key=key,
            headers=[
                ("content-type", b"application/cloudevents+json"),
                ("x-renewals-signer", USERNAME.encode()),
                ("x-renewals-signature", signature(signing_key, TOPIC, key, value).encode()),
            ],
        )
        print(f"sent renewal.requested {request_id} for {subscription_id} ({csn}) as {USERNAME}")
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
