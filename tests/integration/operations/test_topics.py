"""`renewals topics`: a consumer group that stops falls behind, and catches up when it restarts."""

from __future__ import annotations

import json

from deploy.local.client import UpstreamClient
from deploy.local.samples import unique_csn
from shared.contracts.topics import Topic
from tests.integration.helpers import eventually
from tests.integration.operations.conftest import NoteService, cli, note


async def lag_of(topic: Topic, group: str) -> int | None:
    result = await cli("topics", topic.name, "--json")
    assert result.exit_code == 0, result.output
    (stats,) = json.loads(result.output)
    assert stats["topic"] == topic.name and stats["partitions"] == topic.partitions
    return next((g["lag"] for g in stats["groups"] if g["group"] == group), None)


async def test_a_stopped_consumer_shows_a_lag_that_falls_when_it_restarts(
    note_service: NoteService, kafka_bootstrap: str
) -> None:
    topic, csn = note_service.topic, unique_csn()
    async with UpstreamClient(kafka_bootstrap) as upstream:
        async with note_service.running():
            await upstream.send_many(topic, [note(csn, "first"), note(csn, "second")])
            await eventually(note_service.committed_to_the_end, what="the first two handled")
        assert await lag_of(topic, note_service.group_id) == 0

        # Stopped: what arrives now waits, and the table says how much.
        await upstream.send_many(topic, [note(csn, f"while stopped {i}") for i in range(5)])
        assert await lag_of(topic, note_service.group_id) == 5

        async with note_service.running():
            await eventually(note_service.committed_to_the_end, what="the backlog handled")
            assert await lag_of(topic, note_service.group_id) == 0


async def test_topics_lists_every_contract_topic_with_its_rate(kafka_bootstrap: str) -> None:
    result = await cli("topics", "--json")
    assert result.exit_code == 0, result.output
    shown = {s["topic"]: s for s in json.loads(result.output)}
    assert {"renewal.commands", "billing.events", "billing.commands"} <= set(shown)
    assert all(s["per_second"] >= 0 and s["end_offset"] >= 0 for s in shown.values())


async def test_an_unknown_topic_is_an_error_not_a_crash(kafka_bootstrap: str) -> None:
    result = await cli("topics", "no.such.topic")
    assert result.exit_code == 1 and "no topic 'no.such.topic'" in result.output
