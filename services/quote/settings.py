"""The quote service's settings."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.db.settings import DatabaseSettings
from shared.eligibility import Policy
from shared.messaging.settings import MessagingSettings


class QuoteSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RENEWALS_QUOTE_", extra="ignore")

    messaging: MessagingSettings = Field(default_factory=MessagingSettings)
    database: DatabaseSettings = Field(
        default_factory=lambda: DatabaseSettings.for_service("quote")
    )
    policy: Policy = Field(default_factory=Policy)
    source: str = "/renewals/quote"
    expiry_interval_seconds: float = 2.0
