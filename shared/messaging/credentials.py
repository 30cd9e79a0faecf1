"""The one way every broker client gets its credentials: FastStream's broker, and aiokafka's
producers, consumers and admin clients (services, operator tools, tests, the bench, the demo).

The principal is, first, the one asked for (a test playing the payment provider asks for
`payments`); else RENEWALS_KAFKA_USERNAME; else the service's own (`create_broker`); else the
operator's. Its password is RENEWALS_KAFKA_PASSWORD when that belongs to the same principal,
else the secrets file's (shared/local_secrets.py). Without one the client still connects and the
broker refuses it, which says more than a client that never tried.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

from faststream.security import SASLScram512

from shared import local_secrets
from shared.messaging.principals import SERVICE_PRINCIPAL
from shared.messaging.settings import MessagingSettings

log = logging.getLogger(__name__)

MECHANISM = "SCRAM-SHA-512"
OPERATOR = "operator"


@dataclass(frozen=True)
class KafkaCredentials:
    username: str
    password: str = field(repr=False)
    security_protocol: str = "SASL_PLAINTEXT"

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol == "SASL_SSL"


def credentials(
    settings: MessagingSettings | None = None,
    *,
    principal: str | None = None,
    service: str | None = None,
) -> KafkaCredentials:
    settings = settings or MessagingSettings()
    name = (
        principal
        or settings.kafka_username
        or (SERVICE_PRINCIPAL.get(service, "") if service else "")
        or OPERATOR
    )
    password = settings.kafka_password if settings.kafka_username == name else ""
    password = password or local_secrets.kafka_password(name) or ""
    if not password:
        log.warning(
            "no Kafka password for principal %s: set RENEWALS_KAFKA_PASSWORD or run "
            "`make infra-up` (it writes %s)",
            name,
            local_secrets.secrets_path(),
        )
    return KafkaCredentials(name, password, settings.kafka_security_protocol)


def broker_security(creds: KafkaCredentials) -> SASLScram512:
    """For FastStream's KafkaBroker(security=…)."""
    return SASLScram512(
        creds.username,
        creds.password,
        ssl_context=ssl.create_default_context() if creds.uses_tls else None,
        use_ssl=creds.uses_tls,
    )


def client_options(
    bootstrap: str | None = None,
    *,
    principal: str | None = None,
    service: str | None = None,
    settings: MessagingSettings | None = None,
) -> dict[str, Any]:
    """`bootstrap_servers` and the SASL options of an aiokafka client acting as `principal`:
    `AIOKafkaConsumer(**client_options(bootstrap, principal="payments"), …)`."""
    settings = settings or MessagingSettings()
    creds = credentials(settings, principal=principal, service=service)
    return {
        "bootstrap_servers": bootstrap or settings.kafka_bootstrap,
        "security_protocol": creds.security_protocol,
        "sasl_mechanism": MECHANISM,
        "sasl_plain_username": creds.username,
        "sasl_plain_password": creds.password,
        **({"ssl_context": ssl.create_default_context()} if creds.uses_tls else {}),
    }
