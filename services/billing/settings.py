"""The billing service's settings."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.db.settings import DatabaseSettings
from shared.messaging.settings import MessagingSettings


class BillingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RENEWALS_BILLING_", extra="ignore")

    messaging: MessagingSettings = Field(default_factory=MessagingSettings)
    database: DatabaseSettings = Field(
        default_factory=lambda: DatabaseSettings.for_service("billing")
    )
    source: str = "/renewals/billing"
    # How long a customer has to pay an order by bank transfer, convenience store or ATM.
    manual_payment_days: int = 14
