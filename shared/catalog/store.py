"""`catalog.events` as every pricing service (renewal, quote, notification) stores it, in its own
schema, and read back as the eligibility package prices with it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from shared.contracts.catalog_events import PricePublished, PromotionPublished
from shared.db.types import DbConnection
from shared.eligibility import Price, Promotion
from shared.messaging.consumer import BatchHandler, Delivery, UnitOfWork, dispatch_by_type


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


async def load_prices(connection: DbConnection, product_codes: Iterable[str]) -> list[Price]:
    rows = await connection.fetch(
        "SELECT product_code, term, currency, list_price, renewal_price FROM prices"
        " WHERE product_code = ANY($1::text[])",
        sorted(set(product_codes)),
    )
    return [Price(**dict(row)) for row in rows]


async def load_promotions(
    connection: DbConnection, product_codes: Iterable[str], on: date | None = None
) -> list[Promotion]:
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
        Promotion(**{**dict(row), "product_codes": tuple(row["product_codes"])}) for row in rows
    ]


async def load_catalog(
    connection: DbConnection, product_codes: Iterable[str], on: date | None = None
) -> tuple[list[Price], list[Promotion]]:
    """The products' prices and promotions (those running on `on`, or all of them)."""
    codes = sorted(set(product_codes))
    return await load_prices(connection, codes), await load_promotions(connection, codes, on)
