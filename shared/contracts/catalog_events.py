"""`catalog.events`: list prices and promotions published by the catalog (subject: product code)."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import Field, model_validator

from shared.contracts.common import (
    MAX_IDS,
    CurrencyCode,
    Percent,
    ProductCode,
    PromotionCode,
    Term,
    UnitPrice,
)
from shared.contracts.envelope import EventData, EventRegistry
from shared.contracts.topics import CATALOG_EVENTS

TOPIC = CATALOG_EVENTS


class PricePublished(EventData):
    """Prices per seat per term; without `renewal_price` the policy's renewal discount applies."""

    event_type: ClassVar[str] = "price.published"
    product_code: ProductCode
    term: Term
    currency: CurrencyCode
    list_price: UnitPrice
    renewal_price: UnitPrice | None = None


class PromotionPublished(EventData):
    event_type: ClassVar[str] = "promotion.published"
    promotion_code: PromotionCode
    product_codes: list[ProductCode] = Field(max_length=MAX_IDS)
    percent_off: Percent
    starts_on: date
    ends_on: date

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> PromotionPublished:
        if self.ends_on < self.starts_on:
            raise ValueError(f"ends_on {self.ends_on} is before starts_on {self.starts_on}")
        return self


REGISTRY = EventRegistry(TOPIC.name, PricePublished, PromotionPublished)
