"""Billing's orders, their payments and their refunds: the SQL, and the typed rows it returns.

An order is placed once (its id is the key) with its charge `pending`, or refused with its
reasons; the charger claims the unfinished charges and records each outcome with its payment
row; a manual payment completes an order that awaits one (AUTO-4); a refund is asked once per
order, then claimed and recorded like a charge. A claim commits the attempt (its number, when)
before the provider hears of it, and an outcome is recorded only for the attempt that claimed
it. Placing, claiming and recording are set-based: one statement per batch or claim, whatever
its size (a manual payment comes one event at a time).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter

from services.billing.provider import ChargeResult, RefundResult
from shared.contracts.billing_commands import PlaceOrder
from shared.contracts.billing_events import OrderRefusal
from shared.contracts.subscription_events import PaymentMethod
from shared.db.types import DbConnection


def order_subscription_ids(ids: Iterable[str]) -> tuple[str, ...]:
    """An order's subscriptions as its payment events name them: in line order, each once."""
    return tuple(dict.fromkeys(ids))


@dataclass(frozen=True)
class BillingOrder:
    """What billing's payment events say of an order, so that its email needs no other event."""

    order_id: str
    csn: str
    currency: str
    total: Decimal
    subscription_ids: tuple[str, ...] = ()  # in line order, each once

    @classmethod
    def asked(cls, command: PlaceOrder) -> BillingOrder:
        """The order as its command asks for it."""
        return cls(
            order_id=command.order_id,
            csn=command.csn,
            currency=command.currency,
            total=command.total,
            subscription_ids=order_subscription_ids(line.subscription_id for line in command.lines),
        )


# The order's columns a `BillingOrder` is made of, on `orders AS o`.
ORDER_COLUMNS = """o.order_id, o.csn, o.currency, o.total,
          -- named by the payment events, for their emails (issue 17 item 3)
          ARRAY(SELECT line ->> 'subscription_id'
                FROM jsonb_array_elements(o.lines) WITH ORDINALITY AS l(line, n)
                ORDER BY n) AS subscription_ids"""


def _order(row: Mapping[str, Any]) -> BillingOrder:
    return BillingOrder(
        order_id=row["order_id"],
        csn=row["csn"],
        currency=row["currency"],
        total=row["total"],
        subscription_ids=order_subscription_ids(row["subscription_ids"]),
    )


@dataclass(frozen=True)
class NewOrder:
    """An order to place: the command as asked, why billing refuses it (none: it is placed and
    charged), and the traceparent of the event that answers it (the payment event continues it)."""

    command: PlaceOrder
    refusals: Sequence[OrderRefusal]
    traceparent: str | None


# The commands as pydantic writes them (one array, no dict in between: a third of the cost of
# building and dumping dicts, #19), and beside them, in the same order, what billing adds.
PLACE = """
INSERT INTO orders (order_id, request_id, quote_number, csn, currency, purchase_method,
                    payment_method, lines, total, next_retry_on, status,
                    charge_status, refusals, created_at, traceparent)
SELECT u.order_id, u.request_id, u.quote_number, u.csn, u.currency,
       u.purchase_method, u.payment_method, u.lines, u.total, u.next_retry_on,
       -- A refused order is recorded as settled: the charger never claims it.
       CASE WHEN b.refusals <> '' THEN 'refused' ELSE 'placed' END,
       CASE WHEN b.refusals <> '' THEN 'recorded' ELSE 'pending' END,
       string_to_array(b.refusals, ','), $2, b.traceparent
FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (
    order_id text, request_id text, quote_number text, csn text, currency text,
    purchase_method text, payment_method jsonb, lines jsonb, total numeric,
    next_retry_on date)) WITH ORDINALITY AS u(
    order_id, request_id, quote_number, csn, currency, purchase_method, payment_method, lines,
    total, next_retry_on, n)
JOIN unnest($3::text[], $4::text[]) WITH ORDINALITY AS b(refusals, traceparent, n) USING (n)
ON CONFLICT (order_id) DO NOTHING RETURNING order_id
"""

_COMMANDS = TypeAdapter(list[PlaceOrder])


async def place_orders(
    connection: DbConnection, orders: Collection[NewOrder], now: datetime
) -> set[str]:
    """Record each order once, its charge `pending` (a refused one `refused`, never charged);
    the ids recorded now: an order placed before is left as it is."""
    rows = await connection.fetch(
        PLACE,
        _COMMANDS.dump_json([order.command for order in orders]).decode(),
        now,
        # The reasons are the contract's names, which hold no comma.
        [",".join(order.refusals) for order in orders],
        [order.traceparent for order in orders],
    )
    return {row["order_id"] for row in rows}


@dataclass(frozen=True)
class ChargeAttempt:
    """One claimed charge: the order as billing placed it, and the attempt's number."""

    order: BillingOrder
    method: PaymentMethod
    next_retry_on: date | None  # when renewal will try again, if it will
    number: int
    traceparent: str | None = None  # of the order's `order.placed`: the payment continues it

    @property
    def unfinished_before(self) -> bool:
        """An earlier attempt was made and never recorded: the provider may have charged it."""
        return self.number > 1


# The attempt is committed with its number: the outcome is recorded only for that attempt.
CLAIM_CHARGES = f"""
UPDATE orders AS o
SET charge_status = 'charging', charge_attempts = o.charge_attempts + 1, charge_attempt_at = $1
FROM (SELECT order_id FROM orders
      WHERE charge_status = 'pending'
         OR (charge_status = 'charging' AND charge_attempt_at < $2)
      ORDER BY created_at
      LIMIT $3
      FOR UPDATE SKIP LOCKED) AS due
WHERE o.order_id = due.order_id
RETURNING {ORDER_COLUMNS}, o.payment_method::text AS payment_method, o.next_retry_on,
          o.charge_attempts, o.traceparent
"""


async def claim_charges(
    connection: DbConnection, *, now: datetime, stale_before: datetime, limit: int
) -> list[ChargeAttempt]:
    """Up to `limit` unfinished charges, oldest first: those pending, and those whose attempt
    was made before `stale_before` and never recorded; each attempt committed as made `now`."""
    rows = await connection.fetch(CLAIM_CHARGES, now, stale_before, limit)
    return [
        ChargeAttempt(
            order=_order(row),
            # Validated from its text as read (no dict in between: #19).
            method=PaymentMethod.model_validate_json(row["payment_method"]),
            next_retry_on=row["next_retry_on"],
            number=row["charge_attempts"],
            traceparent=row["traceparent"],
        )
        for row in rows
    ]


# Only an attempt still `charging` under its own number is recorded: one outcome per order.
RECORD_CHARGES = """
WITH outcome AS (
    SELECT * FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::text[])
        AS c(order_id, attempt, outcome, payment_reference, reason)),
recorded AS (
    UPDATE orders AS o SET status = outcome.outcome, charge_status = 'recorded'
    FROM outcome
    WHERE o.order_id = outcome.order_id AND o.charge_status = 'charging'
      AND o.charge_attempts = outcome.attempt
    RETURNING o.order_id, o.total, o.currency, outcome.outcome, outcome.payment_reference,
              outcome.reason),
paid AS (
    INSERT INTO payments (order_id, amount, currency, outcome, payment_reference, reason, at)
    SELECT order_id, total, currency, outcome, payment_reference, reason, $6 FROM recorded)
SELECT order_id FROM recorded
"""


async def record_charges(
    connection: DbConnection,
    outcomes: Sequence[tuple[ChargeAttempt, ChargeResult]],
    now: datetime,
) -> set[str]:
    """Each outcome and its payment row, for the attempts still their orders' own; the ids of
    the orders recorded (another replica may have reconciled the others meanwhile)."""
    rows = await connection.fetch(
        RECORD_CHARGES,
        [a.order.order_id for a, _ in outcomes],
        [a.number for a, _ in outcomes],
        [r.outcome for _, r in outcomes],
        [r.payment_reference for _, r in outcomes],
        [r.reason for _, r in outcomes],
        now,
    )
    return {row["order_id"] for row in rows}


@dataclass(frozen=True)
class Payment:
    """Money that arrived for an order: how much, in which currency, under which reference."""

    order_id: str
    amount: Decimal
    currency: str
    payment_reference: str


async def order_awaiting_payment(
    connection: DbConnection, order_id: str, payment_reference: str
) -> BillingOrder | None:
    """The order that waits for the manual payment of that reference (locked until the
    transaction ends), or None when there is no such order or it waits no more."""
    row = await connection.fetchrow(
        f"""SELECT {ORDER_COLUMNS} FROM orders AS o
            JOIN payments AS p ON p.order_id = o.order_id AND p.outcome = 'awaiting_manual'
            WHERE o.order_id = $1 AND o.status = 'awaiting_manual'
              AND p.payment_reference = $2
            FOR UPDATE OF o""",
        order_id,
        payment_reference,
    )
    return _order(row) if row is not None else None


async def record_manual_payment(connection: DbConnection, payment: Payment, at: datetime) -> None:
    """The order is paid: its status, and the payment (the database's unique index keeps one
    successful payment per order)."""
    await connection.execute(
        "UPDATE orders SET status = 'succeeded' WHERE order_id = $1", payment.order_id
    )
    await connection.execute(
        """INSERT INTO payments (order_id, amount, currency, outcome, payment_reference, at)
           VALUES ($1, $2, $3, 'succeeded', $4, $5)""",
        payment.order_id,
        payment.amount,
        payment.currency,
        payment.payment_reference,
        at,
    )


# The amount of the lines named (every line when none is), of an order that was paid.
REQUEST_REFUND = """
INSERT INTO refunds (order_id, amount, currency, reason, status, requested_at)
SELECT o.order_id,
       CASE WHEN cardinality($2::text[]) = 0 THEN p.amount
            ELSE (SELECT sum((l ->> 'amount')::numeric) FROM jsonb_array_elements(o.lines) AS l
                  WHERE l ->> 'subscription_id' = ANY($2::text[])) END,
       p.currency, $3, 'pending', $4
FROM orders AS o JOIN payments AS p ON p.order_id = o.order_id AND p.outcome = 'succeeded'
WHERE o.order_id = $1
ON CONFLICT (order_id) DO NOTHING
"""


async def request_refund(
    connection: DbConnection,
    order_id: str,
    subscription_ids: Sequence[str],
    reason: str,
    now: datetime,
) -> None:
    """A refund `pending` of a paid order's lines named (all of them when none is), once per
    order: asked again, or for an order that was not paid, nothing changes."""
    await connection.execute(REQUEST_REFUND, order_id, list(subscription_ids), reason, now)


@dataclass(frozen=True)
class RefundAttempt:
    """One claimed refund, and the attempt's number."""

    order_id: str
    amount: Decimal
    currency: str
    number: int


@dataclass(frozen=True)
class Refund:
    """Money given back for an order, as `payment.refunded` announces it."""

    order_id: str
    csn: str
    amount: Decimal
    currency: str
    reason: str
    refund_reference: str


CLAIM_REFUNDS = """
UPDATE refunds AS r SET status = 'refunding', attempts = r.attempts + 1, attempt_at = $1
FROM (SELECT order_id FROM refunds
      WHERE status = 'pending' OR (status = 'refunding' AND attempt_at < $2)
      ORDER BY requested_at LIMIT $3 FOR UPDATE SKIP LOCKED) AS due
WHERE r.order_id = due.order_id
RETURNING r.order_id, r.amount, r.currency, r.attempts
"""


async def claim_refunds(
    connection: DbConnection, *, now: datetime, stale_before: datetime, limit: int
) -> list[RefundAttempt]:
    """Up to `limit` unfinished refunds, oldest first, as `claim_charges` claims charges."""
    rows = await connection.fetch(CLAIM_REFUNDS, now, stale_before, limit)
    return [
        RefundAttempt(row["order_id"], row["amount"], row["currency"], row["attempts"])
        for row in rows
    ]


RECORD_REFUNDS = """
UPDATE refunds AS r SET status = 'recorded', refund_reference = u.reference
FROM unnest($1::text[], $2::integer[], $3::text[]) AS u(order_id, attempt, reference)
WHERE r.order_id = u.order_id AND r.status = 'refunding' AND r.attempts = u.attempt
RETURNING r.order_id, r.amount, r.currency, r.reason, r.refund_reference,
          (SELECT csn FROM orders AS o WHERE o.order_id = r.order_id) AS csn
"""


async def record_refunds(
    connection: DbConnection, outcomes: Sequence[tuple[RefundAttempt, RefundResult]]
) -> list[Refund]:
    """Each refund given back, for the attempts still their refunds' own."""
    rows = await connection.fetch(
        RECORD_REFUNDS,
        [a.order_id for a, _ in outcomes],
        [a.number for a, _ in outcomes],
        [r.refund_reference for _, r in outcomes],
    )
    # The columns are named as the fields.
    return [Refund(**dict(row)) for row in rows]
