"""The bench's SMTP sink: its own process, a raw asyncio protocol that accepts every message.

    python -m bench.smtp_sink --port 2525 --watch recipients.txt

It answers the SMTP dialogue (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, with PIPELINING)
and, per message, notes only what the bench checks, without parsing MIME: the arrival
(`time.monotonic()`, the same clock in every process of the machine), the `X-Notification-Key`
header (a key seen twice is a duplicate email) and, for an order confirmation, whether its body
carries the order's total (the line the templates print only with a total). Its CPU is
therefore the least an SMTP server can cost, and the bench reports it apart from the product's.

Two verbs of its own, for the bench on the same port:
    XSTATS        → `250 {"messages": …, "watched": …, …}` (counts so far, cheap: polled)
    XDUMP <path>  → writes every message's record to <path> as JSON, then `250 written`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

KEY_HEADER = b"\r\nx-notification-key:"
CONFIRMATION = "order_confirmation"
# The plain-text part prints this line only when the email has the order's total
# (services/notification/templates/<language>/order_confirmation.txt): short, ASCII, on a line
# of its own, so no transfer encoding splits it.
TOTAL_MARKERS = (b"Total (excluding tax):", b"Total (hors taxes) :")
END_OF_DATA = b"\r\n.\r\n"


@dataclass
class Tally:
    """What the sink saw: one record per message, and counts cheap enough to poll."""

    watched: set[str]
    records: list[tuple[float, str | None, bool, bool | None]] = field(default_factory=list)
    messages: int = 0
    watched_messages: int = 0
    watched_confirmations: int = 0
    last_watched: float | None = None
    last_confirmation: float | None = None

    def add(self, recipients: list[str], data: bytes) -> None:
        now = time.monotonic()
        key = notification_key(data)
        is_watched = any(r in self.watched for r in recipients) if self.watched else True
        has_total = None
        if key is not None and key.startswith(CONFIRMATION + ":"):
            has_total = any(marker in data for marker in TOTAL_MARKERS)
        self.records.append((now, key, is_watched, has_total))
        self.messages += 1
        if is_watched:
            self.watched_messages += 1
            self.last_watched = now
            if has_total is not None:
                self.watched_confirmations += 1
                self.last_confirmation = now

    def stats(self) -> dict[str, object]:
        return {
            "messages": self.messages,
            "watched": self.watched_messages,
            "watched_confirmations": self.watched_confirmations,
            "last_watched": self.last_watched,
            "last_confirmation": self.last_confirmation,
        }


def notification_key(data: bytes) -> str | None:
    """The X-Notification-Key header's value (unfolded), looked for in the header block only."""
    head_end = data.find(b"\r\n\r\n")
    head = b"\r\n" + (data if head_end < 0 else data[:head_end])
    start = head.lower().find(KEY_HEADER)
    if start < 0:
        return None
    start += len(KEY_HEADER)
    end = start
    while True:  # a folded header goes on on lines that start with white space
        end = head.find(b"\r\n", end)
        if end < 0:
            end = len(head)
            break
        if head[end + 2 : end + 3] not in (b" ", b"\t"):
            break
        end += 2
    # Keys have no white space: what folding added goes, whatever the folder did.
    return b"".join(head[start:end].split()).decode("ascii", "replace")


class SinkProtocol(asyncio.Protocol):
    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.buffer = b""
        self.searched = 0  # how much of the buffer is known not to hold the end of DATA
        self.in_data = False
        self.recipients: list[str] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 bench-sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies: list[bytes] = []
        while True:
            if self.in_data:
                # DATA follows the 354 at once: the terminator may be the very first line.
                if self.buffer.startswith(b".\r\n"):
                    message, self.buffer = b"", self.buffer[3:]
                else:
                    # Only what arrived since the last look (and 4 bytes before) is searched.
                    end = self.buffer.find(END_OF_DATA, max(0, self.searched - 4))
                    if end < 0:
                        self.searched = len(self.buffer)
                        break
                    message, self.buffer = self.buffer[:end], self.buffer[end + 5 :]
                self.searched = 0
                self.tally.add(self.recipients, message)
                self.in_data = False
                self.recipients = []
                replies.append(b"250 OK\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            reply = self.command(line)
            if reply is None:  # QUIT
                replies.append(b"221 bye\r\n")
                assert self.transport is not None
                self.transport.write(b"".join(replies))
                self.transport.close()
                return
            replies.append(reply)
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))  # pipelined commands: one write

    def command(self, line: bytes) -> bytes | None:
        verb = line[:4].upper()
        if verb == b"EHLO":
            return b"250-bench-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        if verb == b"HELO":
            return b"250 bench-sink\r\n"
        if verb == b"MAIL":
            self.recipients = []
            return b"250 OK\r\n"
        if verb == b"RCPT":
            address = line[8:].strip().split(b" ", 1)[0].strip(b"<>").decode("utf-8", "replace")
            self.recipients.append(address)
            return b"250 OK\r\n"
        if verb == b"DATA":
            self.in_data = True
            return b"354 go ahead\r\n"
        if verb == b"RSET":
            self.recipients = []
            return b"250 OK\r\n"
        if verb == b"QUIT":
            return None
        if verb == b"XSTA":
            return b"250 " + json.dumps(self.tally.stats()).encode() + b"\r\n"
        if verb == b"XDUM":
            path = line.split(b" ", 1)[1].decode()
            Path(path).write_text(json.dumps(self.tally.records))
            return b"250 written\r\n"
        return b"250 OK\r\n"  # NOOP and anything else


async def serve(host: str, port: int, watched: set[str]) -> None:
    tally = Tally(watched)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SinkProtocol(tally), host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"smtp sink: listening on {host}:{port}, pid {os.getpid()}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--watch", type=Path, help="recipients to count apart, one a line")
    args = parser.parse_args()
    watched = set(args.watch.read_text().split()) if args.watch else set()
    asyncio.run(serve(args.host, args.port, watched))


if __name__ == "__main__":
    main()
