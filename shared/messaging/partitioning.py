"""The partition of a keyed record, as aiokafka's default partitioner picks it, once per key."""

import functools
import struct

# Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as aiokafka.partitioner has it.
_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """aiokafka's `murmur2`, the same value for every input (tests/unit/messaging/
    test_partitioning.py), in 1.6 µs instead of 2.9 for a CSN: the 4-byte words are read in
    one `struct` call and not byte by byte."""
    length = len(data)
    h = _SEED ^ length
    for k in struct.unpack_from(f"<{length >> 2}I", data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    if length & 3:
        h ^= int.from_bytes(data[length & ~3 :], "little")
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


@functools.lru_cache(maxsize=16_384)
def partition_of(key: bytes, partition_count: int) -> int:
    """The partition aiokafka's `DefaultPartitioner` gives `key` on a topic of `partition_count`
    partitions (murmur2, positive, modulo the count): the same, so a key keeps its partition
    and the order on it.

    Why here: aiokafka hashes every record's key with its pure-Python murmur2 (about 4 µs of
    the relay's 15 µs a record, bench/message_cost.py); the events of one renewal share their
    keys (the CSN, the subscription), published by the same relay within seconds, so a third
    to a half of a relay's keys are in the cache. The count is part of the cache key:
    partitions added to a topic move its keys, as they would with aiokafka's partitioner.
    Kafka numbers a topic's partitions 0 to count − 1, the sorted list aiokafka's partitioner
    indexes."""
    return (murmur2(key) & 0x7FFFFFFF) % partition_count
