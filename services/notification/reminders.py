"""Renewal reminders (NOTE-1): before each renewal date, on the policy's schedule (90, 30 and 7
days before by default), the buyer is told the renewal options that apply to the subscription —
auto-renew on and the payment method that will be charged; manual renewal with the pay link and
the last day of grace; a manual-only payment method and how to pay; or "contact your partner".

The scheduler runs on each CSN's clock (test clocks included). A reminder is keyed by
subscription, renewal date and offset, so it is sent once across replicas and restarts; after a
downtime only the latest reminder due is sent, never a backlog of old ones; a subscription first
seen late gets only the reminders still ahead; a renewed subscription (its renewal date moved)
is reminded for its next date only; a partner-owned renewal is left to the partner when the
policy says so, and none while an open quote covers the renewal (such a subscription is set
aside until its quote closes: `COVERED`, `store.close_quote`).
Which reminder is due and the next reminder day are eligibility's (`next_reminder`), the option
a reminder gives too (`reminder_option`): this module reads and saves.
The claim reads only the subscriptions whose next reminder day came (`next_reminder_on`, worked
out with the schedule each time the scheduler looks, issue 19 item 2), on each CSN's clock
(shared/db/due_claims.py): by the instant that day comes in the CSN's zone, so that it reads up
to now and not the next day's reminders (migration 013); each subscription it takes comes back
typed (`DueReminder`). It runs as a `WorkLoop`; a
subscription whose reminder raises is worked alone and parked (`parked_items`, loop
`renewal_reminders`), and the others are reminded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import asyncpg

from services.notification.settings import NotificationSettings
from services.notification.store import Contact, Email, queue, states
from shared import eligibility
from shared.catalog.store import load_prices
from shared.clock import Clock
from shared.contracts.state_events import SubscriptionState
from shared.contracts.subscription_events import SubscriptionUpserted
from shared.db.due_claims import claim_on_each_clock
from shared.db.types import DbConnection
from shared.eligibility import Policy, Price, ReminderLook
from shared.messaging.loops import WorkLoop
from shared.messaging.parking import IsolatingClaims, not_parked
from shared.plumbing.faults import REMINDERS_AFTER_COMMIT, FaultPoints
from shared.state_following import followed_subscription

log = logging.getLogger(__name__)

LOOP = "renewal_reminders"
# The next day the scheduler looks at a subscription: the reminder day it worked out when it
# last looked, for that renewal date; a subscription it has not looked at since its renewal
# date moved (or ever) at once. The claim's index key (migration 007).
NEXT_REMINDER = (
    "CASE WHEN s.next_reminder_for = s.renewal_date THEN s.next_reminder_on"
    " ELSE '-infinity'::date END"
)
# The instant that day comes in the CSN's time zone (the subscription's copy of it): the key of
# the claim's index for the CSNs on the system's clock (migration 013), read up to now.
DUE_AT = f"local_midnight({NEXT_REMINDER}, s.time_zone)"


def _due(rows: str, today: str) -> str:
    return f"""SELECT s.subscription_id, s.csn, s.snapshot::text AS snapshot, s.renewal_date,
           GREATEST(s.reminders_after, s.reminded_through + 1) AS look_from,
           {today} AS today
    FROM {rows}
    WHERE {NEXT_REMINDER} <= {today}  -- which reminder is due, if any, is worked out below
      -- (and whether an open quote covers the renewal: `COVERED`, on the rows locked)
      AND {not_parked(LOOP, "s.subscription_id")}
      AND ($3::text IS NULL OR s.subscription_id = $3)  -- one subscription alone (isolating)"""


# $1 the clock's now (each CSN's today is the date there in its time zone), $2 how many, $3 one
# subscription alone (or NULL).
DUE = claim_on_each_clock(
    _due,
    key=NEXT_REMINDER,
    limit="$2",
    then="SELECT * FROM claimed ORDER BY renewal_date",
    due_at=DUE_AT,
)
BATCH = 500
# Of the subscriptions claimed (locked), those an open quote covers: no reminder while it does
# (NOTE-1). Asked once the claim holds them, by a statement of its own, so that it sees every
# quote closed before — a quote closed after waits for these rows (`close_quote` unsets their
# next reminder day). It used to be a probe of open_quotes in the claim, for each row, and
# the covered rows stayed due: every claim read them again (1,500 rows, 10-15 ms a claim at a
# million subscriptions). A GIN probe per claimed id: the overlap `subscription_ids && $1` of a
# whole claim was planned, with the claim's ids in hand, as a scan of every open quote — 580-650 ms
# a claim of 500 among 41,220 open quotes (the bench at a million); this is 1.2-1.4 ms.
COVERED = """
SELECT c.sid FROM unnest($1::text[]) AS c(sid)
WHERE EXISTS (SELECT FROM open_quotes AS q WHERE q.subscription_ids @> ARRAY[c.sid])"""


@dataclass(frozen=True, kw_only=True)
class DueReminder:
    """A subscription the claim took: its next reminder day came, or is to be worked out."""

    subscription_id: str
    csn: str
    renewal_date: date
    look_from: date  # the first day not looked at yet for this renewal date
    today: date  # the CSN's
    # The subscription system's snapshot as stored: read only for a reminder to send (most of
    # a claim may only get its next day), and a broken one fails that subscription's reminder
    # alone, after the claim named what it took.
    snapshot_json: str

    def look(self, policy: Policy) -> ReminderLook:
        """Which reminder is due and the next day to look: eligibility decides (NOTE-1)."""
        return eligibility.next_reminder(self.renewal_date, self.today, self.look_from, policy)

    def contact(self) -> Contact:
        snapshot = SubscriptionUpserted.model_validate_json(self.snapshot_json)
        return Contact(self.subscription_id, self.csn, snapshot, self.renewal_date)


def _due_reminder(row: asyncpg.Record) -> DueReminder:
    return DueReminder(
        subscription_id=row["subscription_id"],
        csn=row["csn"],
        renewal_date=row["renewal_date"],
        look_from=row["look_from"],
        today=row["today"],
        snapshot_json=row["snapshot"],
    )


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
        # The schedule the stored next reminder days were worked out with (_follow_schedule).
        self.schedule = sorted(set(policy.reminder_days_before))
        self._schedule_followed = False
        self.claims = IsolatingClaims(pool, "notification", LOOP, self.run_once)

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
        if not self._schedule_followed:
            await self._follow_schedule()
            self._schedule_followed = True
        return await self.claims.step()

    async def _follow_schedule(self) -> None:
        """The next reminder days stored were worked out with the schedule recorded beside
        them: under another one (the policy changed) every subscription's is worked out again,
        by the claims that follow."""
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO reminder_schedule (days) VALUES ($1) ON CONFLICT DO NOTHING",
                self.schedule,
            )
            recorded = await connection.fetchval("SELECT days FROM reminder_schedule FOR UPDATE")
            if list(recorded) != self.schedule:
                log.warning(
                    "the reminder schedule changed: every subscription's next reminder day is"
                    " worked out again",
                    extra={"was": list(recorded), "now": self.schedule},
                )
                await connection.execute(
                    "UPDATE subscriptions SET next_reminder_for = NULL"
                    " WHERE next_reminder_for IS NOT NULL"
                )
                await connection.execute("UPDATE reminder_schedule SET days = $1", self.schedule)

    async def run_once(self, only: str | None = None) -> int:
        """Look at up to BATCH subscriptions whose next reminder day came or is to be worked
        out (or `only` that one): remind those with a reminder day come, and store each one's
        next day; returns how many."""
        async with self.pool.acquire() as connection, connection.transaction():
            claimed = await self._due(connection, only)
            self.claims.took(sub.subscription_id for sub in claimed)
            covered = await self._covered(connection, claimed)
            due = [sub for sub in claimed if sub.subscription_id not in covered]
            looked = [(sub, sub.look(self.policy)) for sub in due]
            reminded = [(sub, offset) for sub, look in looked if (offset := look.due) is not None]
            # What renewal holds of them (auto-renew, the next term): what will really happen.
            followed = await states(connection, [sub.subscription_id for sub, _ in reminded])
            buys: dict[str, tuple[eligibility.Subscription, date]] = {}
            emails = [
                email
                for sub, offset in reminded
                if (email := self._reminder(sub, offset, followed.get(sub.subscription_id), buys))
                is not None
            ]
            # Reminded through today where a reminder was due (sent, or none to this buyer), so
            # that older days are never a backlog; the next day for every one — none for those
            # a quote covers, until it closes (`store.close_quote`), nor reminded through.
            parked = [sub for sub in claimed if sub.subscription_id in covered]
            looked += [(sub, ReminderLook(due=None, next_on=None)) for sub in parked]
            await connection.execute(
                """UPDATE subscriptions AS s
                   SET reminded_through = COALESCE(u.reminded_through, s.reminded_through),
                       next_reminder_on = u.next_on, next_reminder_for = u.renewal_date
                   FROM unnest($1::text[], $2::date[], $3::date[], $4::date[])
                       AS u(subscription_id, reminded_through, next_on, renewal_date)
                   WHERE s.subscription_id = u.subscription_id""",
                [sub.subscription_id for sub, _ in looked],
                [None if look.due is None else sub.today for sub, look in looked],
                [look.next_on for _, look in looked],
                [sub.renewal_date for sub, _ in looked],
            )
            if emails:
                prices = await load_prices(
                    connection, {e.contact.snapshot.product_code for e in emails}
                )
                for email in emails:
                    self._price(email, prices, *buys[email.contact.subscription_id])
                await queue(connection, emails, self.clock.now())
        if claimed:
            self.faults.hit(REMINDERS_AFTER_COMMIT)
        return len(claimed)

    async def _due(self, connection: DbConnection, only: str | None) -> list[DueReminder]:
        rows = await connection.fetch(DUE, self.clock.now(), BATCH, only)
        return [_due_reminder(row) for row in rows]

    async def _covered(self, connection: DbConnection, claimed: list[DueReminder]) -> set[str]:
        if not claimed:
            return set()
        rows = await connection.fetch(COVERED, [sub.subscription_id for sub in claimed])
        return {row["sid"] for row in rows}

    def _reminder(
        self,
        sub: DueReminder,
        offset: int,
        state: SubscriptionState | None,
        buys: dict[str, tuple[eligibility.Subscription, date]],
    ) -> Email | None:
        """The reminder of `offset` days before: the latest due (older ones are past, not a
        backlog to send). The option and the price are those of renewal's state: auto-renew
        switched off gives the manual options, a next term or seats set their price."""
        contact = sub.contact()
        domain = followed_subscription(
            contact.snapshot, state, renewal_date=sub.renewal_date.isoformat()
        )
        option = eligibility.reminder_option(
            domain, sub.today, self.policy, partner_reminds=self.settings.partner_reminds
        )
        if option is None:
            return None  # nothing to renew, or the partner reminds
        buys[sub.subscription_id] = domain, sub.today
        return Email(
            f"renewal_reminder:{sub.subscription_id}:{sub.renewal_date}:{offset}",
            "renewal_reminder",
            contact,
            {
                "subscription_id": sub.subscription_id,
                "renewal_date": sub.renewal_date,
                "days_before": (sub.renewal_date - sub.today).days,
                "option": option.value,
                "payment_method": domain.payment_method.type,
                "pay_link": self.settings.renew_link(sub.subscription_id),
                "grace_ends": eligibility.grace_ends(domain, self.policy),
                "amount": None,
                "currency": contact.snapshot.currency,
            },
        )

    def _price(
        self, email: Email, prices: list[Price], domain: eligibility.Subscription, today: date
    ) -> None:
        """The renewal price of what the next renewal buys (TERM-1, SEAT-2, PRICE-1), priced as
        the renewal itself will be (eligibility.next_renewal_line)."""
        line = eligibility.next_renewal_line(domain, today, prices, self.policy)
        if line is not None:
            email.context["amount"] = line.amount
