"""`make run`'s last line: where Prometheus is, and whether it scrapes every service.

    python -m services.operations.prometheus_targets [--wait SECONDS]

Waits until Prometheus has scraped every target up (a scrape comes every interval, 15 s), at
most `--wait` seconds, then prints one line per target; exits 1 when a target is still down.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any


def prometheus_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('RENEWALS_PROMETHEUS_PORT', '19090')}"


def active_targets(base: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{base}/api/v1/targets?state=active", timeout=5) as response:
        targets: list[dict[str, Any]] = json.load(response)["data"]["activeTargets"]
    return targets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wait", type=float, default=45.0, help="seconds to wait for scrapes")
    args = parser.parse_args()
    base = prometheus_url()
    deadline = time.monotonic() + args.wait
    while True:
        try:
            targets = active_targets(base)
        except (urllib.error.URLError, OSError) as error:
            print(f"Prometheus does not answer at {base}: {error}", file=sys.stderr)
            return 1
        # A target scraped before its service listened is down until its next scrape: wait
        # for every target to be up (or the deadline), not only for a first scrape.
        if (targets and all(t["health"] == "up" for t in targets)) or time.monotonic() > deadline:
            break
        time.sleep(1)
    up = [t for t in targets if t["health"] == "up"]
    print(f"Prometheus {base}: {len(up)}/{len(targets)} targets up (alerts: {base}/alerts)")
    for target in targets:
        process = target["labels"].get("process", "?")
        last_error = f"  {target['lastError']}" if target.get("lastError") else ""
        print(f"  {process:<13} {target['health']:<8} {target['scrapeUrl']}{last_error}")
    return 0 if targets and len(up) == len(targets) else 1


if __name__ == "__main__":
    sys.exit(main())
