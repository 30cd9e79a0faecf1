"""Create every Kafka topic of shared/contracts/topics.py, each with its `.dlq` twin.

Idempotent: existing topics are left as they are (a partition count that differs from the
contract is reported, never changed: that would move keys to other partitions). Waits for the
broker to answer first, and afterwards until every partition has a leader and the group
coordinator is ready, so whatever starts next does not meet a half-ready broker.

    uv run python deploy/local/create_topics.py --bootstrap 127.0.0.1:19092
"""

import argparse
import asyncio
import sys
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared.contracts.topics import ALL_TOPICS, DLQ_PARTITIONS
from shared.messaging.credentials import client_options

TOPIC_ALREADY_EXISTS = 36
READINESS_GROUP = "deploy-local-readiness"


def wanted_partitions() -> dict[str, int]:
    wanted: dict[str, int] = {}
    for topic in ALL_TOPICS:
        wanted[topic.name] = topic.partitions
        wanted[topic.dlq] = DLQ_PARTITIONS
    return wanted


async def connected_admin(bootstrap: str, deadline: float) -> AIOKafkaAdminClient:
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        # As the bootstrap's super user (shared/messaging/principals.py).
        admin = AIOKafkaAdminClient(
            **client_options(bootstrap, principal="admin"), request_timeout_ms=10_000
        )
        try:
            await admin.start()
            await admin.list_topics()
            return admin
        except (KafkaError, OSError) as error:
            last_error = error
            await admin.close()
            await asyncio.sleep(0.25)
    raise TimeoutError(f"Kafka at {bootstrap} did not answer: {last_error!r}")


async def partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    described = await admin.describe_topics(names)
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


def wanted_configs() -> dict[str, dict[str, str]]:
    """Topic-level settings, e.g. `cleanup.policy=compact` for `subscription.state`."""
    return {topic.name: topic.config for topic in ALL_TOPICS if topic.config}


async def create_missing(
    admin: AIOKafkaAdminClient,
    missing: dict[str, int],
    replication: int = 1,
    configs: dict[str, dict[str, str]] | None = None,
) -> None:
    configs = configs or {}
    if not missing:
        return
    response = await admin.create_topics(
        [
            NewTopic(
                name, partitions, replication_factor=replication, topic_configs=configs.get(name)
            )
            for name, partitions in missing.items()
        ]
    )
    failures = [
        f"{name}: error {code} {rest[0] if rest else ''}".strip()
        for name, code, *rest in response.topic_errors
        if code not in (0, TOPIC_ALREADY_EXISTS)
    ]
    if failures:
        raise RuntimeError("could not create topics: " + "; ".join(failures))


async def wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], deadline: float) -> None:
    while True:
        described = await admin.describe_topics(names)
        not_ready = [
            t["topic"]
            for t in described
            if t["error_code"] != 0 or any(p["leader"] < 0 for p in t["partitions"])
        ]
        if not not_ready:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no leader yet for: {', '.join(sorted(not_ready))}")
        await asyncio.sleep(0.1)


async def wait_for_group_coordinator(admin: AIOKafkaAdminClient, deadline: float) -> None:
    # The first FindCoordinator makes the broker create __consumer_offsets; until it is there,
    # consumer groups see GroupCoordinatorNotAvailable. Doing it here keeps that out of tests.
    while True:
        try:
            await admin.find_coordinator(READINESS_GROUP)
            return
        except KafkaError as error:
            if time.monotonic() > deadline:
                raise TimeoutError(f"group coordinator not available: {error!r}") from error
            await asyncio.sleep(0.1)


async def run(bootstrap: str, timeout: float, replication: int = 1) -> int:
    deadline = time.monotonic() + timeout
    admin = await connected_admin(bootstrap, deadline)
    try:
        wanted = wanted_partitions()
        existing = await partition_counts(admin, list(wanted))
        missing = {name: n for name, n in wanted.items() if name not in existing}
        await create_missing(admin, missing, replication, wanted_configs())
        await wait_for_leaders(admin, list(wanted), deadline)
        await wait_for_group_coordinator(admin, deadline)
        mismatched = [
            f"{name} has {existing[name]} partitions, the contract says {n}"
            for name, n in wanted.items()
            if name in existing and existing[name] != n
        ]
    finally:
        await admin.close()
    for line in mismatched:
        print(f"warning: {line}", file=sys.stderr)
    print(
        f"topics: {len(wanted)} wanted ({len(ALL_TOPICS)} + their .dlq twins), "
        f"{len(missing)} created, {len(wanted) - len(missing)} already there"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the broker, in all"
    )
    parser.add_argument(
        "--replication-factor",
        type=int,
        default=1,
        help="replicas of each topic created (3 for the fault suite's three-broker cluster)",
    )
    args = parser.parse_args()
    try:
        return asyncio.run(run(args.bootstrap, args.timeout, args.replication_factor))
    except (TimeoutError, RuntimeError, KafkaError) as error:
        print(f"create_topics: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
