"""`renewals dlq`: an incident from end to end on a real consumer. A message its consumer
refuses is dead-lettered, seen in `dlq list` with its error, replayed once the fix is deployed,
and handled once — a second replay is left out."""

from __future__ import annotations

import json

from aiokafka import AIOKafkaConsumer, TopicPartition

from deploy.local.client import UpstreamClient
from deploy.local.samples import unique_csn
from shared.messaging.credentials import client_options
from tests.integration.helpers import end_offsets, eventually
from tests.integration.operations.conftest import NoteService, NoteV1, cli, note


async def dead_letters_of(topic: str) -> list[dict]:
    result = await cli("dlq", "list", "--topic", topic, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


async def test_a_malformed_message_is_listed_replayed_after_the_fix_and_handled_once(
    note_service: NoteService, kafka_bootstrap: str
) -> None:
    topic, csn = note_service.topic, unique_csn()
    urgent = note(csn, "urgent", priority=1)  # NoteV1, deployed first, has no `priority`
    fine = note(csn, "fine")
    async with UpstreamClient(kafka_bootstrap) as upstream:
        async with note_service.running(NoteV1):
            await upstream.send_many(topic, [urgent, fine])
            await upstream.send_raw(topic, b"\x00\xff not json", key=csn.encode())
            await eventually(note_service.committed_to_the_end, what="the batch consumed")
        assert await note_service.handled(fine.id) == 1

    letters = await dead_letters_of(topic.name)
    assert len(letters) == 2
    (bad,) = [d for d in letters if d["event_id"] == urgent.id]
    assert bad["dlq_topic"] == topic.dlq and bad["original_topic"] == topic.name
    assert bad["error_type"] == "InvalidEventError" and "priority" in bad["error"]
    assert bad["consumer_group"] == note_service.group_id and bad["csn"] == csn
    assert bad["replayed_as"] is None

    shown = await cli("dlq", "show", bad["ref"], "--json")
    assert json.loads(shown.output)["headers"]["x-dlq-original-topic"] == topic.name

    before = await end_offsets(kafka_bootstrap, topic.name)
    dry = await cli(
        "dlq",
        "replay",
        "--all",
        "--topic",
        topic.name,
        "--type",
        "it.note.added",
        "--dry-run",
        "--json",
    )
    assert [r["ref"] for r in json.loads(dry.output)["replayed"]] == [bad["ref"]]
    assert await end_offsets(kafka_bootstrap, topic.name) == before  # a dry run publishes nothing

    async with note_service.running():  # the fix: NoteV2 accepts `priority`
        replayed = await cli("dlq", "replay", bad["ref"], "--json")
        (done,) = json.loads(replayed.output)["replayed"]
        assert done["ref"] == bad["ref"] and done["to"] == topic.name
        await eventually(lambda: note_service.handled(urgent.id), what="the replay handled")

        again = await cli("dlq", "replay", bad["ref"], "--json")
        report = json.loads(again.output)
        assert report["replayed"] == [] and report["already_replayed"][0]["ref"] == bad["ref"]
        await eventually(note_service.committed_to_the_end, what="everything consumed")

    assert await note_service.handled(urgent.id) == 1
    after = await end_offsets(kafka_bootstrap, topic.name)
    assert sum(after.values()) == sum(before.values()) + 1  # one replay, not two
    (listed,) = [d for d in await dead_letters_of(topic.name) if d["ref"] == bad["ref"]]
    assert listed["replayed_as"] is not None

    # The replay is the original message, byte for byte, under its original key.
    replay_topic, partition, offset = listed["replayed_as"].rsplit(":", 2)
    reader = AIOKafkaConsumer(**client_options(kafka_bootstrap), enable_auto_commit=False)
    await reader.start()
    try:
        from aiokafka import TopicPartition

        tp = TopicPartition(replay_topic, int(partition))
        reader.assign([tp])
        reader.seek(tp, int(offset))
        record = (await reader.getmany(tp, timeout_ms=5000, max_records=1))[tp][0]
    finally:
        await reader.stop()
    assert record.key == csn.encode() and json.loads(record.value)["id"] == urgent.id
    assert dict(record.headers)["x-replayed-from"] == bad["ref"].encode()


async def test_replay_needs_a_choice_and_says_what_is_unknown(kafka_bootstrap: str) -> None:
    nothing = await cli("dlq", "replay")
    assert nothing.exit_code == 2 and "--all" in nothing.output
    unknown = await cli("dlq", "replay", "subscription.events.dlq:0:999999999")
    assert unknown.exit_code == 1 and "no such dead letter" in unknown.output


async def test_a_truncated_dead_letter_is_refused_by_name_and_skipped_by_all_with_its_origin(
    note_service: NoteService, kafka_bootstrap: str
) -> None:
    """A dead letter cut to fit the broker (`x-dlq-truncated`) holds only the start of the
    original: replaying it would publish a broken message. The tool says where the whole
    original is instead, and publishes nothing of it."""
    topic, csn = note_service.topic, unique_csn()
    small = note(csn, "small", priority=1)  # refused by NoteV1, dead-lettered whole
    big = json.dumps({"not": "an event", "padding": "x" * 40_000}).encode()
    async with (
        UpstreamClient(kafka_bootstrap) as upstream,
        note_service.running(NoteV1, max_message_bytes=16 * 1024),
    ):
        await upstream.send_many(topic, [small])
        await upstream.send_raw(topic, big, key=csn.encode())
        await eventually(note_service.committed_to_the_end, what="the batch consumed")

    letters = await dead_letters_of(topic.name)
    (cut,) = [d for d in letters if d["truncated"]]
    (whole,) = [d for d in letters if not d["truncated"]]
    assert whole["event_id"] == small.id and cut["original_size"] == len(big)
    origin = f"{topic.name} partition {cut['original_partition']} offset {cut['original_offset']}"
    before = await end_offsets(kafka_bootstrap, topic.name)

    refused = await cli("dlq", "replay", cut["ref"], whole["ref"])
    said = " ".join(refused.output.split())  # as one line, whatever the terminal's width
    assert refused.exit_code == 1, refused.output
    assert f"{cut['ref']} is truncated" in said and origin in said and whole["ref"] not in said
    assert await end_offsets(kafka_bootstrap, topic.name) == before  # nothing published at all

    dry = await cli("dlq", "replay", "--all", "--topic", topic.name, "--dry-run")
    said = " ".join(dry.output.split())
    assert dry.exit_code == 0, dry.output
    assert f"would replay {whole['ref']}" in said
    assert f"skipped: {cut['ref']} is truncated" in said and origin in said

    replayed = await cli("dlq", "replay", "--all", "--topic", topic.name, "--json")
    report = json.loads(replayed.output)
    assert [r["ref"] for r in report["replayed"]] == [whole["ref"]]
    assert report["truncated"] == [
        {
            "ref": cut["ref"],
            "original_topic": topic.name,
            "original_partition": cut["original_partition"],
            "original_offset": cut["original_offset"],
            "original_size": len(big),
        }
    ]
    after = await end_offsets(kafka_bootstrap, topic.name)
    assert sum(after.values()) == sum(before.values()) + 1  # the whole letter only

    # What the note names is where the whole original is.
    reader = AIOKafkaConsumer(**client_options(kafka_bootstrap), enable_auto_commit=False)
    await reader.start()
    try:
        tp = TopicPartition(topic.name, cut["original_partition"])
        reader.assign([tp])
        reader.seek(tp, cut["original_offset"])
        record = (await reader.getmany(tp, timeout_ms=5000, max_records=1))[tp][0]
    finally:
        await reader.stop()
    assert record.value == big
