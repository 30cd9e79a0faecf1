"""The gauges Prometheus alerts on are sampled by every service: outbox backlog and age, and the
lag of each consumer."""

from __future__ import annotations

from prometheus_client import REGISTRY

from deploy.local.client import UpstreamClient
from deploy.local.samples import unique_csn
from tests.integration.helpers import eventually
from tests.integration.operations.conftest import NoteService, note


async def test_outbox_age_and_consumer_lag_are_sampled(
    note_service: NoteService, kafka_bootstrap: str
) -> None:
    labels = {"service": note_service.name, "topic": note_service.topic.name}
    async with UpstreamClient(kafka_bootstrap) as upstream, note_service.running():
        await upstream.send_many(note_service.topic, [note(unique_csn(), "n")])
        await eventually(note_service.committed_to_the_end, what="the note handled")

        def sampled() -> bool:
            lag = REGISTRY.get_sample_value("renewals_consumer_lag", labels)
            age = REGISTRY.get_sample_value(
                "renewals_outbox_oldest_age_seconds", {"service": note_service.name}
            )
            return lag == 0 and age == 0

        await eventually(sampled, what="lag and outbox age sampled")
