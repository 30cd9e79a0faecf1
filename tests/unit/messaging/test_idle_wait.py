"""Issue 19: a batch consumer waits in `getmany` for records and asks again at once when none
came, instead of FastStream's pause after an empty answer (shared/messaging/idle_wait.py).

These drive FastStream's own consume loop (`_run_consume_loop`, the pinned 0.7.8) with a
consumer whose answers the test scripts, so that they fail if FastStream stops calling
`get_msg` or if the pause comes back."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber import usecase

from shared.messaging.idle_wait import wait_for_records


class ScriptedConsumer:
    """Answers `getmany` from a script; stops the subscriber's loop after the last answer."""

    def __init__(self, subscriber: Any, answers: list[dict[str, list[str]]]) -> None:
        self.subscriber = subscriber
        self.answers = answers
        self.asked: list[dict[str, Any]] = []

    async def getmany(self, **kwargs: Any) -> dict[str, list[str]]:
        self.asked.append(kwargs)
        answer = self.answers[len(self.asked) - 1]
        if len(self.asked) == len(self.answers):
            self.subscriber.running = False
        return answer


def _subscriber(max_records: int = 7, wait_ms: int = 1000) -> Any:
    broker = KafkaBroker()
    return broker.subscriber(
        "t", group_id="g", batch=True, max_records=max_records, batch_timeout_ms=wait_ms
    )


async def _never_pause(*_: Any) -> None:
    raise AssertionError("the consume loop paused after an empty answer")


async def test_a_quiet_consumer_asks_again_at_once_and_waits_in_getmany(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subscriber = _subscriber(max_records=7, wait_ms=1000)
    wait_for_records(subscriber)
    consumed: list[Any] = []

    async def consume_one(batch: Any) -> None:
        consumed.append(batch)

    monkeypatch.setattr(subscriber, "consume_one", consume_one)
    monkeypatch.setattr(usecase.anyio, "sleep", _never_pause)
    consumer = ScriptedConsumer(subscriber, [{}, {}, {"t-0": ["a", "b"], "t-1": ["c"]}])
    subscriber.running = True

    await subscriber._run_consume_loop(consumer)

    assert consumer.asked == [{"timeout_ms": 1000, "max_records": 7}] * 3
    assert consumed == [("a", "b", "c")]  # the partitions' records, one batch, in order


async def test_without_it_faststream_pauses_after_an_empty_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The behaviour the module replaces, seen on the same loop: the test above would not
    notice a FastStream that no longer pauses, this one would."""
    subscriber = _subscriber()
    monkeypatch.setattr(usecase.anyio, "sleep", _never_pause)
    consumer = ScriptedConsumer(subscriber, [{}])
    subscriber.running = True

    with pytest.raises(AssertionError, match="paused"):
        await subscriber._run_consume_loop(consumer)
