"""The product's processes: each service's module and the port of its `/ready` and `/metrics`.

The launcher (deploy/local/launcher.py), the operator's `renewals health` and Prometheus's
targets all read this one list.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    http_port: int


# Ports of their own on 127.0.0.1 for readiness and /metrics (Prometheus scrapes these).
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("renewal", "services.renewal", 18081),
    ServiceSpec("bulk_worker", "services.bulk_worker", 18082),
    ServiceSpec("billing", "services.billing", 18083),
    ServiceSpec("notification", "services.notification", 18084),
    ServiceSpec("quote", "services.quote", 18085),
)
