"""A keyed record's partition, computed once per key by the relay's sender (#19 plan item 3b),
is the one aiokafka's default partitioner picks from the sorted list of a topic's partitions."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from shared.messaging.partitioning import murmur2, partition_of


def keys() -> list[bytes]:
    generator = random.Random(19)
    made = [bytes(generator.randrange(256) for _ in range(n)) for n in range(70) for _ in range(20)]
    return made + [f"CSN-{n:010d}".encode() for n in range(200)] + ["Zürich-é".encode()]


def test_murmur2_is_aiokafkas_for_every_length_and_byte() -> None:
    for key in keys():
        assert murmur2(key) == aiokafka_murmur2(key), key


def test_the_partition_is_aiokafkas_for_every_key_and_count() -> None:
    default = DefaultPartitioner()
    for count in (1, 2, 3, 6, 12, 50):
        partitions = list(range(count))
        for key in keys():
            assert partition_of(key, count) == default(key, partitions, partitions)


def test_a_key_is_hashed_once_per_partition_count() -> None:
    key = b"CSN-partition-cache-" + random.randbytes(8)
    first = partition_of(key, 6)
    before = partition_of.cache_info()
    assert partition_of(key, 6) == first
    after = partition_of.cache_info()
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)
    # More partitions: computed afresh for the new count, as aiokafka would.
    partition_of(key, 12)
    assert partition_of.cache_info().misses == after.misses + 1
