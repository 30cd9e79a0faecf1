"""What the suite watches: every record on the output and dead-letter topics (with when it
arrived here), and the dev SMTP server's mail folder."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from functools import cached_property
from pathlib import Path
from typing import Any

from deploy.local.client import TopicWatcher
from shared.contracts import topics
from shared.contracts.topics import ALL_TOPICS

OUTPUT_TOPICS = (
    topics.RENEWAL_EVENTS.name,
    topics.BILLING_EVENTS.name,
    topics.QUOTE_EVENTS.name,
    topics.NOTIFICATION_EVENTS.name,
)
DLQ_TOPICS = tuple(t.dlq for t in ALL_TOPICS)


@dataclass
class Record:
    arrived: float  # monotonic, in this process
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]

    @cached_property
    def event(self) -> dict[str, Any]:
        try:
            parsed = json.loads(self.value or b"null")
        except (ValueError, RecursionError):
            return {}
        return parsed if isinstance(parsed, dict) else {}

    @property
    def type(self) -> str | None:
        return self.headers.get("ce-type") or self.event.get("type")

    @property
    def data(self) -> dict[str, Any]:
        data = self.event.get("data")
        return data if isinstance(data, dict) else {}


class Recorder(TopicWatcher):
    """A TopicWatcher that keeps Records: outputs and every `.dlq`, from their end at start."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap, [*OUTPUT_TOPICS, *DLQ_TOPICS])
        self.records: list[Record] = []

    async def _collect(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            now = time.monotonic()
            for batch in batches.values():
                for r in batch:
                    headers = {k: (v or b"").decode(errors="replace") for k, v in r.headers or ()}
                    self.records.append(
                        Record(now, r.topic, r.partition, r.offset, r.key, r.value, headers)
                    )


@dataclass(frozen=True)
class Mail:
    notification_key: str | None
    recipients: str
    path: str

    @property
    def received(self) -> float:
        """Epoch seconds, from the dev SMTP server's file name (20261130T051152.362120Z-….eml)."""
        stamp = self.path.split("-", 1)[0]
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC).timestamp()


def read_mailbox(maildir: Path, marker: str, since: float) -> list[Mail]:
    """The .eml files the dev SMTP server stored since `since` (epoch seconds) for recipients
    whose address contains `marker` (the run's CSN prefix, lowercased by the samples)."""
    found: list[Mail] = []
    parser = BytesHeaderParser(policy=default_policy)
    if not maildir.is_dir():
        return found
    for path in maildir.glob("*.eml"):
        try:
            if path.stat().st_mtime < since:
                continue
            headers = parser.parsebytes(path.read_bytes())
        except OSError:
            continue
        recipients = str(headers.get("X-RcptTo", ""))
        if marker not in recipients.lower():
            continue
        key = str(headers.get("X-Notification-Key") or "").strip()  # a folded header unfolded
        found.append(Mail(key or None, recipients, path.name))
    return found
