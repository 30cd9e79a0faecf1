"""The renewal service's settings: shared messaging and database settings plus its own."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.db.settings import DatabaseSettings
from shared.eligibility import Policy
from shared.messaging.settings import MessagingSettings


class RenewalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RENEWALS_RENEWAL_", extra="ignore")

    messaging: MessagingSettings = Field(default_factory=MessagingSettings)
    database: DatabaseSettings = Field(
        default_factory=lambda: DatabaseSettings.for_service("renewal")
    )
    policy: Policy = Field(default_factory=Policy)
    source: str = "/renewals/renewal"
    # The bulk worker: how many recorded batches one transaction works, and its fallback poll.
    bulk_batches_per_claim: int = 500
    bulk_poll_seconds: float = 0.5
    # The due-date engine: how often it looks when nothing woke it (migration 018), and how many
    # subscriptions one transaction takes.
    engine_interval_seconds: float = 2.0
    engine_batch_size: int = 500
