"""Advisory lock keys: PostgreSQL takes a bigint, derived here from a stable name."""

import hashlib


def advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
