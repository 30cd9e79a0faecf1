"""The garbage collector's pace in a service: startup objects frozen, young collections rarer."""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def tune_garbage_collector(young_threshold: int) -> None:
    """Collect the youngest generation every `young_threshold` allocations (CPython's 700), and
    freeze what startup made (modules, pydantic validators, the app) out of every collection.

    Why: a consumed batch keeps ~500 events alive while it is handled, each a few dozen tracked
    objects; at 700 allocations a young collection runs every few events and, as survivors pile
    up, older ones rescan them — a third of the consumer's parsing CPU (issue 19 item 6,
    bench/message_cost.py `--gc-threshold`). Almost every object here dies by reference count;
    the collector is only for cycles, which a rarer pass still finds. 0 keeps CPython's pace."""
    if young_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
    log.info(
        "garbage collector tuned",
        extra={"young_threshold": young_threshold, "frozen": gc.get_freeze_count()},
    )
