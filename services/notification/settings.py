"""The notification service's settings: where the SMTP server is, and the retry policy."""

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.db.settings import DatabaseSettings
from shared.eligibility import Policy
from shared.messaging.settings import MessagingSettings


class NotificationSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RENEWALS_NOTIFICATION_", extra="ignore", validate_by_name=True
    )

    messaging: MessagingSettings = Field(default_factory=MessagingSettings)
    database: DatabaseSettings = Field(
        default_factory=lambda: DatabaseSettings.for_service("notification")
    )
    policy: Policy = Field(default_factory=Policy)
    source: str = "/renewals/notification"
    smtp_host: str = "127.0.0.1"
    # The dev server of `make infra-up` listens on RENEWALS_SMTP_PORT.
    smtp_port: int = Field(
        default=12525,
        validation_alias=AliasChoices("RENEWALS_NOTIFICATION_SMTP_PORT", "RENEWALS_SMTP_PORT"),
    )
    sender_address: str = "renewals@example.com"
    # Delivery: concurrent senders, emails claimed at a time, tries before email.failed.
    senders: int = 4
    claim_size: int = 20
    # Emails SMTP accepted before their marks are recorded (one statement for them all): what a
    # sender killed before it marked them sends again — the duplicate bound (README, "Exactly
    # once"). The end of a claim, and a lease running out, record them sooner. 1 by default: the
    # bound customers were promised (one duplicate per sender per crash); more trades that bound
    # for fewer statements (issue 19 item 1: 0.16-0.18 ms of PostgreSQL per email saved).
    mark_every: int = Field(default=1, ge=1)
    max_attempts: int = 5
    retry_base_seconds: float = 2.0
    lease_seconds: float = 60.0
    poll_seconds: float = 0.5
    # Where emails send the customer: the account portal and the store.
    account_url: str = "https://account.example.com"
    store_url: str = "https://store.example.com"
    # NOTE-1: a partner-owned renewal is reminded by the partner, not by us (policy).
    partner_reminds: bool = True
    reminder_interval_seconds: float = 5.0

    def renew_link(self, subscription_id: str) -> str:
        return f"{self.account_url}/renew/{subscription_id}"

    @property
    def billing_link(self) -> str:
        return f"{self.account_url}/billing"

    @property
    def buy_link(self) -> str:
        return f"{self.store_url}/buy"
