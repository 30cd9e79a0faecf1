"""`renewals tail`: CloudEvents of a topic, filtered by customer, type or request."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from deploy.local.client import UpstreamClient
from deploy.local.samples import event, renewal_request, unique_csn
from services.operations.tail import EventFilter, decode, tail
from tests.integration.operations.conftest import NoteService, cli, lines_of_json, note


async def test_tail_csn_shows_only_that_customers_events(
    note_service: NoteService, kafka_bootstrap: str
) -> None:
    topic, mine, theirs = note_service.topic, unique_csn(), unique_csn()
    events = [note(theirs, "t1"), note(mine, "m1"), note(theirs, "t2"), note(mine, "m2")]
    async with UpstreamClient(kafka_bootstrap) as upstream:
        await upstream.send_many(topic, events)

    for start in (["--from-beginning"], ["--since", "10m"]):
        result = await cli("tail", topic.name, "--csn", mine, *start, "--no-follow", "--json")
        assert result.exit_code == 0, result.output
        shown = lines_of_json(result.output)
        assert sorted(s["event"]["id"] for s in shown) == sorted([events[1].id, events[3].id])
        assert {s["key"] for s in shown} == {mine}

    pretty = await cli("tail", topic.name, "--csn", mine, "--from-beginning", "--count", "1")
    assert (
        pretty.exit_code == 0 and "it.note.added" in pretty.output and theirs not in pretty.output
    )


async def test_tail_filters_by_type_and_request_id(
    note_service: NoteService, kafka_bootstrap: str
) -> None:
    topic, csn = note_service.topic, unique_csn()
    request = renewal_request(csn, ["S-1"])
    asked = event(request, subject=csn, source="/it/portal")
    async with UpstreamClient(kafka_bootstrap) as upstream:
        await upstream.send_many(topic, [note(csn, "n"), asked])

    by_type = await cli(
        "tail",
        topic.name,
        "--type",
        "renewal.requested",
        "--from-beginning",
        "--no-follow",
        "--json",
    )
    assert [s["event"]["id"] for s in lines_of_json(by_type.output)] == [asked.id]
    by_request = await cli(
        "tail",
        topic.name,
        "--request-id",
        request.request_id,
        "--from-beginning",
        "--no-follow",
        "--json",
    )
    assert [s["event"]["id"] for s in lines_of_json(by_request.output)] == [asked.id]
    bad = await cli("tail", topic.name, "--since", "yesterday")
    assert bad.exit_code == 2 and "not a duration" in bad.output


async def test_tail_follows_what_arrives_after_it_started(
    note_service: NoteService, kafka_bootstrap: str
) -> None:
    """`later` is sent only once the tail yielded `before`: by then the tail had fixed the end of
    its catch-up read, so `later` can reach it only by following."""
    topic, mine, theirs = note_service.topic, unique_csn(), unique_csn()
    before, later = note(mine, "before"), note(mine, "later")
    async with UpstreamClient(kafka_bootstrap) as upstream:
        await upstream.send_many(topic, [before])
        records = tail(
            topic.name,
            where=EventFilter(csn=mine),
            since=timedelta(minutes=1),
            bootstrap=kafka_bootstrap,
        )
        try:
            first = await asyncio.wait_for(anext(records), 30)
            await upstream.send_many(topic, [note(theirs, "not mine"), later])
            second = await asyncio.wait_for(anext(records), 30)
        finally:
            await records.aclose()
    assert [decode(r.value)["id"] for r in (first, second)] == [before.id, later.id]

    # The command prints what it follows, too.
    result = await cli("tail", topic.name, "--csn", mine, "--since", "1m", "--count", "2", "--json")
    assert [s["event"]["id"] for s in lines_of_json(result.output)] == [before.id, later.id]
