"""The product's AsyncAPI document, generated from the services' own apps and contract models.

python -m services.asyncapi write docs/asyncapi.json   # `make docs`
python -m services.asyncapi check docs/asyncapi.json   # CI: fails when it is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from faststream.specification import AsyncAPI

from services.billing.app import create_app as billing_app
from services.billing.settings import BillingSettings
from services.notification.app import create_app as notification_app
from services.notification.settings import NotificationSettings
from services.quote.app import create_app as quote_app
from services.quote.settings import QuoteSettings
from services.renewal.app import create_app as renewal_app
from services.renewal.settings import RenewalSettings
from shared.messaging.settings import MessagingSettings

DOCUMENTED_BROKER = "127.0.0.1:19092"


def document() -> dict[str, Any]:
    # The document names the default broker address, whatever this shell's environment says.
    messaging = MessagingSettings(kafka_bootstrap=DOCUMENTED_BROKER)
    apps = (
        renewal_app(RenewalSettings(messaging=messaging)),
        billing_app(BillingSettings(messaging=messaging)),
        notification_app(NotificationSettings(messaging=messaging)),
        quote_app(QuoteSettings(messaging=messaging)),
    )
    brokers = [app.broker for app in apps if app.broker is not None]
    specification = AsyncAPI(
        *brokers,
        title="renewals",
        version="0.1.0",
        schema_version="3.0.0",
        description=(
            "Renews software subscriptions: automatic renewal, manual renewal paid online, renewal"
            " by quote, singly or up to 100 at once. Every message is a CloudEvent 1.0 in"
            " structured JSON mode, keyed by the CSN; every topic has a `<topic>.dlq` twin."
            " Clients authenticate with SASL/SCRAM-SHA-512, each as its own principal; commands"
            " (`renewal.commands`, `quote.commands`) carry the signature headers"
            " `x-renewals-signer` and `x-renewals-signature` (see those channels)."
        ),
    )
    result: dict[str, Any] = specification.to_specification().to_jsonable()
    return result


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["write", "check"])
    parser.add_argument("path", type=Path)
    args = parser.parse_args()
    fresh = render()
    if args.action == "write":
        args.path.parent.mkdir(parents=True, exist_ok=True)
        args.path.write_text(fresh)
        print(f"wrote {args.path}")
        return
    if not args.path.exists() or args.path.read_text() != fresh:
        print(f"{args.path} is out of date: run `make docs` and commit it", file=sys.stderr)
        sys.exit(1)
    print(f"{args.path} is up to date")


if __name__ == "__main__":
    main()
