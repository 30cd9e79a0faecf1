"""What the services set aside so that the rest goes on: outbox rows the broker refused
(`outbox_parked`) and items a background loop could not handle (`parked_items`). List them
with their errors; put one back to be tried again, or drop it.

Each service's schema is read with its own role. A parked outbox row is named
`<service>:<id>` (ids are per schema); the bulk worker's rows are in renewal's schema.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from services.operations.lookup import database_of

SERVICES = ("renewal", "billing", "quote", "notification")


@dataclass(frozen=True)
class ParkedEvent:
    ref: str  # <service>:<id>
    service: str
    id: int
    topic: str
    key: str | None
    size: int
    error: str
    created_at: datetime
    parked_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ParkedItem:
    service: str
    loop: str
    item: str
    reason: str
    parked_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def services_of(service: str | None) -> tuple[str, ...]:
    if service is None:
        return SERVICES
    if service == "bulk_worker":
        return ("renewal",)
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}: one of {', '.join(SERVICES)}")
    return (service,)


def parse_ref(ref: str) -> tuple[str, int]:
    service, _, number = ref.partition(":")
    if service not in SERVICES or not number.isdigit():
        raise ValueError(
            f"{ref!r} is not a parked event as `outbox list` names it (<service>:<id>)"
        )
    return service, int(number)


async def parked_events(service: str | None = None) -> list[ParkedEvent]:
    found = []
    for name in services_of(service):
        async with database_of(name) as db:
            rows = await db.fetch(
                "SELECT id, topic, key, octet_length(value) AS size, error, created_at, parked_at"
                " FROM outbox_parked ORDER BY id"
            )
        found += [
            ParkedEvent(
                ref=f"{name}:{row['id']}",
                service=name,
                id=row["id"],
                topic=row["topic"],
                key=row["key"].decode(errors="replace") if row["key"] is not None else None,
                size=row["size"],
                error=row["error"],
                created_at=row["created_at"],
                parked_at=row["parked_at"],
            )
            for row in rows
        ]
    return found


async def retry_event(ref: str) -> int:
    """Put a parked event back at the end of its service's outbox; returns its new outbox id.
    The relay is woken by the insert (NOTIFY) and publishes it with the others."""
    service, parked_id = parse_ref(ref)
    async with database_of(service) as db, db.transaction():
        new_id = await db.fetchval(
            """WITH back AS (DELETE FROM outbox_parked WHERE id = $1
                             RETURNING topic, key, value, headers, created_at)
               INSERT INTO outbox (topic, key, value, headers, created_at)
               SELECT topic, key, value, headers, created_at FROM back RETURNING id""",
            parked_id,
        )
    if new_id is None:
        raise LookupError(f"no parked event {ref}")
    return int(new_id)


async def drop_event(ref: str) -> None:
    """Delete a parked event for good (its effect is then never announced)."""
    service, parked_id = parse_ref(ref)
    async with database_of(service) as db:
        dropped = await db.fetchval(
            "DELETE FROM outbox_parked WHERE id = $1 RETURNING id", parked_id
        )
    if dropped is None:
        raise LookupError(f"no parked event {ref}")


async def parked_items(service: str | None = None) -> list[ParkedItem]:
    found = []
    for name in services_of(service):
        async with database_of(name) as db:
            rows = await db.fetch(
                "SELECT loop, item, reason, parked_at FROM parked_items ORDER BY parked_at"
            )
        found += [ParkedItem(service=name, **dict(row)) for row in rows]
    return found


async def retry_item(service: str, loop: str, item: str) -> None:
    """Let the loop claim the item again (after the cause was fixed)."""
    [name] = services_of(service)
    async with database_of(name) as db, db.transaction():
        retried = await db.fetchval(
            "DELETE FROM parked_items WHERE loop = $1 AND item = $2 RETURNING item", loop, item
        )
        if retried is not None and loop == "bulk_worker":  # its batch is set aside as failed
            await db.execute(
                "UPDATE renewal_batches SET status = 'pending', worked_at = NULL"
                " WHERE request_id = $1 AND status = 'failed'",
                item,
            )
    if retried is None:
        raise LookupError(f"no item {item} parked by {loop} in {name}")
