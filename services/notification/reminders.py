"""Renewal reminders (NOTE-1): before each renewal date, on the policy's schedule (90, 30 and 7
days before by default), the buyer is told the renewal options that apply to the subscription —
auto-renew on and the payment method that will be charged; manual renewal with the pay link and
the last day of grace; a manual-only payment method and how to pay; or "contact your partner".

The scheduler runs on each CSN's clock (test clocks included). A reminder is keyed by
subscription, renewal date and offset, so it is sent once across replicas and restarts; after a
downtime only the latest reminder due is sent, never a backlog of old ones; a subscription first
seen late gets only the reminders still ahead; a renewed subscription (its renewal date moved)
is reminded for its next date only; a partner-owned renewal is left to the partner when the
policy says so, and none while an open quote covers the renewal.
It runs as a `WorkLoop`; a subscription whose reminder raises is worked alone and parked
(`parked_items`, loop `renewal_reminders`), and the others are reminded.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

import asyncpg

from services.notification.directory import Contact
from services.notification.notices import Email, queue
from services.notification.settings import NotificationSettings
from shared import eligibility
from shared.catalog.store import load_prices
from shared.clock import Clock
from shared.contracts.subscription_events import SubscriptionUpserted
from shared.eligibility import Policy, Price, RenewalOption, find_price, renewal_options
from shared.messaging.faults import REMINDERS_AFTER_COMMIT, FaultPoints
from shared.messaging.loops import WorkLoop
from shared.messaging.parking import IsolatingClaims, not_parked

log = logging.getLogger(__name__)

LOOP = "renewal_reminders"
DUE = f"""
SELECT s.subscription_id, s.csn, s.snapshot::text AS snapshot, s.renewal_date,
       GREATEST(s.reminders_after, s.reminded_through + 1) AS look_from,
       COALESCE(c.today, $1) AS today
FROM subscriptions AS s LEFT JOIN test_clocks AS c USING (csn)
WHERE s.renewal_date > COALESCE(c.today, $1)
  AND NOT EXISTS (SELECT 1 FROM open_quotes AS q WHERE s.subscription_id = ANY(q.subscription_ids))
  AND EXISTS (
      SELECT 1 FROM unnest($2::int[]) AS o(days)
      WHERE s.renewal_date - o.days <= COALESCE(c.today, $1)
        AND s.renewal_date - o.days >= GREATEST(s.reminders_after, s.reminded_through + 1))
  AND {not_parked(LOOP, "s.subscription_id")}
  AND ($4::text IS NULL OR s.subscription_id = $4)  -- one subscription alone (isolating)
ORDER BY s.renewal_date
LIMIT $3
FOR UPDATE OF s SKIP LOCKED
"""
BATCH = 500


class ReminderScheduler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        policy: Policy,
        settings: NotificationSettings,
        faults: FaultPoints | None = None,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.policy = policy
        self.settings = settings
        self.faults = faults or FaultPoints()
        self.offsets = sorted(set(policy.reminder_days_before))  # smallest (latest) first
        self.claims = IsolatingClaims(pool, "notification", LOOP, self.run_once, self._candidates)

    def work_loop(self) -> WorkLoop:
        return WorkLoop(
            LOOP,
            self.step,
            service="notification",
            poll_seconds=self.settings.reminder_interval_seconds,
            pool=self.pool,
        )

    async def step(self) -> int:
        """One claim, its failing subscriptions parked (shared/messaging/parking.py)."""
        return await self.claims.step()

    async def run_once(self, only: str | None = None) -> int:
        """Look at up to BATCH subscriptions with a reminder day come (or `only` that one);
        returns how many."""
        async with self.pool.acquire() as connection, connection.transaction():
            rows = await self._due(connection, only)
            emails = [email for row in rows if (email := self._reminder(row)) is not None]
            await connection.execute(
                """UPDATE subscriptions AS s SET reminded_through = u.today
                   FROM unnest($1::text[], $2::date[]) AS u(subscription_id, today)
                   WHERE s.subscription_id = u.subscription_id""",
                [row["subscription_id"] for row in rows],
                [row["today"] for row in rows],
            )
            if emails:
                prices = await load_prices(
                    connection, {e.contact.snapshot.product_code for e in emails}
                )
                for email in emails:
                    self._price(email, [Price(**vars(p)) for p in prices])
                await queue(connection, emails, self.clock.now())
        if rows:
            self.faults.hit(REMINDERS_AFTER_COMMIT)
        return len(rows)

    async def _due(self, connection: Any, only: str | None) -> list[Any]:
        return list(await connection.fetch(DUE, self.clock.today(), self.offsets, BATCH, only))

    async def _candidates(self) -> list[str]:
        async with self.pool.acquire() as connection, connection.transaction():
            rows = await self._due(connection, None)
        return [row["subscription_id"] for row in rows]

    def _reminder(self, row: Any) -> Email | None:
        today: date = row["today"]
        renewal_date: date = row["renewal_date"]
        due = [
            d for d in self.offsets if row["look_from"] <= renewal_date - timedelta(days=d) <= today
        ]
        if not due:
            return None
        offset = due[0]  # the latest reminder due: older ones are past, not a backlog to send
        snapshot = SubscriptionUpserted.model_validate_json(row["snapshot"])
        if snapshot.purchase_method == "partner" and self.settings.partner_reminds:
            return None
        domain = eligibility.subscription_from_dict(
            {**snapshot.model_dump(mode="json"), "renewal_date": renewal_date.isoformat()}
        )
        options = renewal_options(domain, today, self.policy)
        if not options:
            return None  # a trial or an expired subscription has nothing to renew
        contact = Contact(row["subscription_id"], row["csn"], snapshot, renewal_date)
        return Email(
            f"renewal_reminder:{row['subscription_id']}:{renewal_date}:{offset}",
            "renewal_reminder",
            contact,
            {
                "subscription_id": row["subscription_id"],
                "renewal_date": renewal_date,
                "days_before": (renewal_date - today).days,
                "option": self._option(snapshot, options),
                "payment_method": snapshot.payment_method.type,
                "pay_link": self.settings.renew_link(row["subscription_id"]),
                "grace_ends": eligibility.grace_ends(domain, self.policy),
                "amount": None,
                "currency": snapshot.currency,
            },
        )

    def _option(self, snapshot: SubscriptionUpserted, options: tuple[RenewalOption, ...]) -> str:
        if RenewalOption.AUTOMATIC in options:
            return "auto_renew"
        if snapshot.purchase_method == "partner" or RenewalOption.MANUAL_ONLINE not in options:
            return "partner"
        if snapshot.payment_method.type in self.policy.manual_only_payment_methods:
            return "manual_only"  # AUTO-4
        return "manual"

    def _price(self, email: Email, prices: list[Price]) -> None:
        snapshot = email.contact.snapshot
        price = find_price(prices, snapshot.product_code, snapshot.term, snapshot.currency)
        if price is not None:
            unit = eligibility.renewal_unit_price(price, self.policy)
            email.context["amount"] = eligibility.round_money(
                unit * snapshot.seats, snapshot.currency
            )
