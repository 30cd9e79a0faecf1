"""The billing service's settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.db.settings import DatabaseSettings
from shared.messaging.settings import MessagingSettings


@dataclass(frozen=True)
class ProviderCalls:
    """How the charger and the refunder work: claims of `batch_size`, each provider call within
    `timeout_seconds`, an attempt left to its claimer for `lease`; their events from `source`."""

    source: str
    batch_size: int
    lease: timedelta
    timeout_seconds: float


class BillingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RENEWALS_BILLING_", extra="ignore")

    messaging: MessagingSettings = Field(default_factory=MessagingSettings)
    database: DatabaseSettings = Field(
        default_factory=lambda: DatabaseSettings.for_service("billing")
    )
    source: str = "/renewals/billing"
    # How long a customer has to pay an order by bank transfer, convenience store or ATM.
    manual_payment_days: int = 14
    # The charger (services/billing/charges.py) and the refunder: orders charged per claim; how
    # often it looks for work when no NOTIFY woke it; how long one provider call may take; and
    # how long an attempt stays another replica's before it counts as abandoned and is
    # reconciled (longer than the timeout, so that a live attempt is never reconciled under its
    # feet).
    charge_batch_size: int = 500
    charge_poll_seconds: float = 1.0
    charge_timeout_seconds: float = 20.0
    charge_lease_seconds: float = 60.0

    def provider_calls(self) -> ProviderCalls:
        return ProviderCalls(
            source=self.source,
            batch_size=self.charge_batch_size,
            lease=timedelta(seconds=self.charge_lease_seconds),
            timeout_seconds=self.charge_timeout_seconds,
        )
