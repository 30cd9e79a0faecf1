"""The policy: every number and list of DOMAIN.md in one object, defaults from the seeds.

Operators override any value with an environment variable `RENEWALS_POLICY_<FIELD>` (sets and
tuples as JSON, e.g. `RENEWALS_POLICY_SELF_SERVICE_COUNTRIES='["US","CA"]'`), or by passing
keyword arguments, which win over the environment.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.eligibility.model import PaymentMethodType, PurchaseMethod, Term

EUROPEAN_UNION = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
    }
)  # fmt: skip
EUROPEAN_ECONOMIC_AREA = EUROPEAN_UNION | {"IS", "LI", "NO"}
EUROPE = EUROPEAN_ECONOMIC_AREA | {"GB", "CH"}
SELF_SERVICE_COUNTRIES = EUROPE | {"US", "CA", "AU"}


class Policy(BaseSettings):
    """Every number and list the rules use; the defaults are the seeds' (DOMAIN.md)."""

    model_config = SettingsConfigDict(env_prefix="RENEWALS_POLICY_", frozen=True, extra="forbid")

    window_opens_days_before: int = Field(default=90, ge=0)
    """WIN-1: any renewal is possible from this many days before the renewal date."""

    grace_days_quote_or_manual: int = Field(default=45, ge=0)
    """WIN-2, LIFE-3: days after the renewal date for renewal by quote or manual online payment."""

    grace_days_otherwise: int = Field(default=30, ge=0)
    """WIN-2, LIFE-3: days after the renewal date for any other renewal (automatic)."""

    bulk_limit: int = Field(default=100, ge=1)
    """AUTO-2, MAN-1: most subscriptions in one request."""

    max_quote_recipients: int = Field(default=4, ge=0)
    """QUO-2: most recipients of a quote (the seeds say 4 or 5; the dated page says 4)."""

    automatic_quote_days_before: int = Field(default=30, ge=0)
    """QUO-7: an automatic quote goes out this many days before the renewal date."""

    automatic_quote_terms: frozenset[Term] = frozenset({"annual", "three_year"})
    """QUO-7: the terms that get automatic quotes ("by term and eligibility")."""

    quote_validity_days: int = Field(default=30, ge=1)
    """QUO-8: a quote's expiry date is this many days after it is sent (the seeds are silent)."""

    renewal_discount_percent: Decimal = Field(default=Decimal("10"), ge=0, le=100)
    """PRICE-1: renewal price = list price less this percentage when the catalog gives none."""

    renewal_discount_terms: frozenset[Term] = frozenset({"annual", "three_year"})
    """PRICE-3: monthly subscriptions are outside the renewal price (derived discount)."""

    manual_only_payment_methods: frozenset[PaymentMethodType] = frozenset(
        {"bank_transfer", "alipay", "convenience_store", "atm_transfer"}
    )
    """AUTO-4: payment methods that can't renew automatically."""

    self_service_countries: frozenset[str] = SELF_SERVICE_COUNTRIES
    """SELF-2: US, Canada, Australia and Europe (EU, EEA, UK, Switzerland), ISO 3166-1 alpha-2."""

    self_service_purchase_methods: frozenset[PurchaseMethod] = frozenset(
        {"direct_online", "direct_sales"}
    )
    """SELF-1, SELF-2: bought directly online (in some cases through the vendor's sales team)."""

    reminder_days_before: tuple[int, ...] = (90, 30, 7)
    """NOTE-1: renewal reminders to the buyer, days before the renewal date (the product's choice)."""

    payment_retry_days_after: tuple[int, ...] = (1, 3, 7)
    """AUTO-1: a failed automatic renewal charge is tried again this many days after the renewal
    date, inside the grace period (the product's choice; the seeds are silent)."""
