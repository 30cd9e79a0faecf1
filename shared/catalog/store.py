"""`catalog.events` as every pricing service (renewal, quote) stores it, in its own schema."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from shared.contracts.catalog_events import PricePublished, PromotionPublished
from shared.db.types import DbConnection
from shared.messaging.consumer import BatchHandler, Delivery, UnitOfWork, dispatch_by_type


@dataclass(frozen=True)
class StoredPrice:
    product_code: str
    term: str
    currency: str
    list_price: Decimal
    renewal_price: Decimal | None


@dataclass(frozen=True)
class StoredPromotion:
    promotion_code: str
    product_codes: tuple[str, ...]
    percent_off: Decimal
    starts_on: date
    ends_on: date


async def save_price(unit: UnitOfWork, delivery: Delivery) -> None:
    price: PricePublished = delivery.data
    await unit.connection.execute(
        """INSERT INTO prices (product_code, term, currency, list_price, renewal_price)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (product_code, term, currency)
           DO UPDATE SET list_price = EXCLUDED.list_price, renewal_price = EXCLUDED.renewal_price""",
        price.product_code,
        price.term,
        price.currency,
        price.list_price,
        price.renewal_price,
    )


async def save_promotion(unit: UnitOfWork, delivery: Delivery) -> None:
    promotion: PromotionPublished = delivery.data
    await unit.connection.execute(
        """INSERT INTO promotions (promotion_code, product_codes, percent_off, starts_on, ends_on)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (promotion_code) DO UPDATE SET product_codes = EXCLUDED.product_codes,
               percent_off = EXCLUDED.percent_off, starts_on = EXCLUDED.starts_on,
               ends_on = EXCLUDED.ends_on""",
        promotion.promotion_code,
        list(promotion.product_codes),
        promotion.percent_off,
        promotion.starts_on,
        promotion.ends_on,
    )


def catalog_handler() -> BatchHandler:
    return dispatch_by_type({PricePublished: save_price, PromotionPublished: save_promotion})


async def load_prices(connection: DbConnection, product_codes: Iterable[str]) -> list[StoredPrice]:
    rows = await connection.fetch(
        "SELECT product_code, term, currency, list_price, renewal_price FROM prices"
        " WHERE product_code = ANY($1::text[])",
        sorted(set(product_codes)),
    )
    return [StoredPrice(**dict(row)) for row in rows]


async def load_promotions(
    connection: DbConnection, product_codes: Iterable[str], on: date | None = None
) -> list[StoredPromotion]:
    """The products' promotions running on `on`; all of them (for callers that apply each
    CSN's own day, test clocks included) without it."""
    rows = await connection.fetch(
        "SELECT promotion_code, product_codes, percent_off, starts_on, ends_on FROM promotions"
        " WHERE product_codes && $1::text[]"
        " AND ($2::date IS NULL OR (starts_on <= $2 AND ends_on >= $2))",
        sorted(set(product_codes)),
        on,
    )
    return [
        StoredPromotion(**{**dict(row), "product_codes": tuple(row["product_codes"])})
        for row in rows
    ]
