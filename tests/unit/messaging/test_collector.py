"""The garbage collector's pace in a service (issue 19 item 6): set once started, 0 leaves it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shared.messaging.settings import MessagingSettings
from shared.plumbing.collector import tune_garbage_collector


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_the_youngest_generation_is_collected_less_often_and_startup_is_frozen() -> None:
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()

    tune_garbage_collector(50_000)

    assert gc.get_threshold() == (50_000, 10, 10)
    assert gc.get_freeze_count() > 0


def test_zero_keeps_cpython_s_pace() -> None:
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()

    tune_garbage_collector(0)

    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_the_services_tune_it_by_default_and_the_setting_turns_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert MessagingSettings().gc_young_threshold == 50_000
    monkeypatch.setenv("RENEWALS_GC_YOUNG_THRESHOLD", "0")
    assert MessagingSettings().gc_young_threshold == 0
