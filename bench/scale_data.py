"""The scale phase's data: N subscriptions and a year of their history, written set-based.

THIS MODULE MIRRORS THE SERVICES' MIGRATIONS (services/*/migrations/, shared/db/migrations/)
AND MUST FOLLOW THEM: a column added there that the product reads gets its value here too, or
the scale figures measure tables the product never sees. Each table is written by its own
service's role into its own schema (the roles can use nothing else), with
`INSERT … SELECT … FROM generate_series` — one statement per table — then `VACUUM (ANALYZE)`.

What N subscriptions get (g = 0 … N-1, four subscriptions per CSN `SCALE-<g/4>`):
- every service's copy of the subscription (renewal, notification, quote), the snapshot being
  the product's own `SubscriptionUpserted` JSON (deploy/local/samples.py) with its fields replaced;
  renewal dates spread over the next 364 days (none due today), half renewing automatically;
- last year's renewal: renewal's order, history row, request (manual) or automatic order row,
  billing's order, payment and the provider's charge, notification's confirmation (sent), and
  the inbox rows of the events that carried them;
- the quotes: last year's automatic quote of each manual subscription (paid), and this year's
  for those renewing within 30 days (sent, open — renewal's and notification's copies too);
- what the reminder scheduler and the automatic quotes already did today (their next reminder
  day, the renewal date quoted for): nothing is due now, so the timed phases measure the same
  work as on empty tables, only among more rows.
The rows are tagged by their `SCALE-` CSN; they go with the bench's database at the end.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from bench import e2e
from deploy.local import samples
from shared import local_secrets
from shared.db.migrate import apply_migrations
from shared.eligibility import Policy

Progress = Callable[[str], None]
PER_CSN = 4


def _snapshot_template() -> str:
    """The product's own snapshot JSON; the SQL below replaces the per-subscription fields."""
    snapshot = samples.subscription("X", "X", renewal_date=date(2030, 1, 1))
    return snapshot.model_dump_json()


# Per-row expressions shared by the statements (g is the row number).
CSN = f"'SCALE-' || lpad((g / {PER_CSN})::text, 8, '0')"
SUB = f"{CSN} || '-SUB-' || (g % {PER_CSN} + 1)"
RENEWAL_DATE = "($1::date + 1 + (g % 364))"  # $1 = today
PREVIOUS_DATE = f"({RENEWAL_DATE} - 365)"
# The W3C traceparent a command's work kept (issue 18): one trace per subscription's history.
TRACEPARENT = (
    "'00-' || md5('scale-trace-' || g) || '-' || left(md5('scale-span-' || g), 16) || '-01'"
)
AUTO = "(g % 2 = 0)"
SEATS = "(1 + g % 3)"
AMOUNT = f"(420.00 * {SEATS})"
ORDER_ID = "md5('scale-order-' || g)::uuid::text"
QUOTE_OLD = "'Q-SCALE-' || lpad(g::text, 9, '0')"
QUOTE_NEW = "'Q-SCALE-NEW-' || lpad(g::text, 9, '0')"
BUYER = f"'buyer@' || lower({CSN}) || '.example.com'"
LAST_YEAR = "($2::timestamptz - interval '365 days' + (g % 364) * interval '1 day')"  # $2 = now
LINES = (
    f"jsonb_build_array(jsonb_build_object('term', 'annual', 'seats', {SEATS},"
    f" 'amount', {AMOUNT}::text, 'unit_price', '420.00', 'product_code', 'ACDLT',"
    f" 'product_name', 'AutoCAD LT', 'subscription_id', {SUB}))"
)
QUOTE_LINES = (
    f"jsonb_build_array(jsonb_build_object('term', 'annual', 'seats', {SEATS},"
    f" 'amount', {AMOUNT}::text, 'discount', '0.00', 'unit_price', '420.00',"
    f" 'product_code', 'ACDLT', 'subscription_id', {SUB}))"
)
SNAPSHOT = (
    f"$3::jsonb || jsonb_build_object('subscription_id', {SUB}, 'csn', {CSN},"
    f" 'renewal_date', {RENEWAL_DATE}, 'start_date', {PREVIOUS_DATE}, 'seats', {SEATS},"
    f" 'auto_renew', {AUTO},"
    f" 'buyer', ($3::jsonb -> 'buyer') || jsonb_build_object('email', {BUYER},"
    f" 'user_id', {CSN} || '-buyer'),"
    f" 'primary_admin', ($3::jsonb -> 'primary_admin') || jsonb_build_object('email', {BUYER},"
    f" 'user_id', {CSN} || '-buyer'))"
)
# This year's open quote: manual subscriptions renewing within 30 days (QUO-7 already ran).
QUOTE_DAY_PASSED = "(g % 364 < 30)"
OPEN_QUOTE = f"(NOT {AUTO} AND {QUOTE_DAY_PASSED})"
ROWS = "FROM generate_series(0, $4::int - 1) AS g"
# The reminder scheduler's next day (services/notification/reminders.py) after it looked today:
# the first reminder day of the product's default schedule after today.
REMINDER_DAYS = sorted(set(Policy().reminder_days_before))
NEXT_REMINDER = (
    f"(SELECT min({RENEWAL_DATE} - d) FROM unnest(ARRAY{REMINDER_DAYS}) AS d"
    f" WHERE d > 0 AND {RENEWAL_DATE} - d > $1::date)"
)
# Types every parameter, also those a statement does not use.
TYPED = "WITH parameters AS (SELECT $1::date, $2::timestamptz, $3::jsonb, $4::int) "

# (role's service, statement): $1 today, $2 now, $3 snapshot template, $4 N.
STATEMENTS: list[tuple[str, str]] = [
    # -- renewal (services/renewal/migrations 001-006)
    (
        "renewal",
        f"""INSERT INTO subscriptions (subscription_id, revision, csn, snapshot, renewal_date, term,
            seats, updated_at, auto_renew, lapse_announced_for, expiry_announced_for,
            next_check_on, next_check_for, next_term, next_seats, time_zone)
        SELECT {SUB}, 1, {CSN}, {SNAPSHOT}, {RENEWAL_DATE}, 'annual', {SEATS}, {LAST_YEAR},
            {AUTO}, NULL, NULL, NULL, NULL, NULL, NULL,
            NULL -- no scale CSN has a zone: UTC (migration 014's trigger sets it so anyway)
            {ROWS}""",
    ),
    (
        "renewal",
        f"""INSERT INTO orders (order_id, request_id, csn, subscription_ids, status, created_at,
            purpose, detail)
        SELECT {ORDER_ID}, CASE WHEN {AUTO} THEN NULL ELSE 'req-scale-' || g END, {CSN},
            ARRAY[{SUB}], 'paid', {LAST_YEAR}, 'renewal', '{{}}'::jsonb {ROWS}""",
    ),
    (
        "renewal",
        f"""INSERT INTO auto_renewals (subscription_id, renewal_date, order_id, created_at, attempt)
        SELECT {SUB}, {PREVIOUS_DATE}, {ORDER_ID}, {LAST_YEAR}, 1 {ROWS} WHERE {AUTO}""",
    ),
    (
        "renewal",
        # The batch's key is the request id scoped to its signer and CSN (issue 16).
        f"""INSERT INTO renewal_batches (request_id, csn, actor, event_id, total_items, status,
            received_at, worked_at, traceparent, client_request_id, signer)
        SELECT 'portal|' || {CSN} || '|req-scale-' || g, {CSN},
            jsonb_build_object('csn', {CSN}, 'user_id', {CSN} || '-buyer'),
            md5('scale-request-' || g)::uuid::text, 1, 'completed', {LAST_YEAR}, {LAST_YEAR},
            {TRACEPARENT}, 'req-scale-' || g, 'portal'
        {ROWS} WHERE NOT {AUTO}""",
    ),
    (
        "renewal",
        f"""INSERT INTO renewal_batch_items (request_id, position, subscription_id, status,
            reasons, order_id)
        SELECT 'portal|' || {CSN} || '|req-scale-' || g, 0, {SUB}, 'renewed', '{{}}'::text[],
            {ORDER_ID} {ROWS}
        WHERE NOT {AUTO}""",
    ),
    (
        "renewal",
        f"""INSERT INTO subscription_history (subscription_id, at, change, detail, actor,
            request_id, event_id)
        SELECT {SUB}, {LAST_YEAR}, 'renewed', jsonb_build_object('term', 'annual',
            'seats', {SEATS}, 'order_id', {ORDER_ID}, 'renewal_date', {RENEWAL_DATE},
            'previous_renewal_date', {PREVIOUS_DATE}), NULL, NULL,
            md5('scale-renewed-' || g)::uuid::text {ROWS}""",
    ),
    (
        "renewal",
        f"""INSERT INTO quotes (quote_number, csn, lines, status, auto_renew_suspended)
        SELECT {QUOTE_OLD}, {CSN}, {QUOTE_LINES}, 'paid', '{{}}'::text[] {ROWS} WHERE NOT {AUTO}
        UNION ALL
        SELECT {QUOTE_NEW}, {CSN}, {QUOTE_LINES}, 'sent', '{{}}'::text[] {ROWS} WHERE {OPEN_QUOTE}""",
    ),
    (
        "renewal",
        # subscription.upserted and payment.succeeded, each consumed once
        f"""INSERT INTO inbox (event_id, topic, received_at)
        SELECT md5('scale-upserted-' || g)::uuid::text, 'subscription.events', {LAST_YEAR} {ROWS}
        UNION ALL
        SELECT md5('scale-paid-' || g)::uuid::text, 'billing.events', {LAST_YEAR} {ROWS}""",
    ),
    # -- billing (services/billing/migrations 001-006)
    (
        "billing",
        f"""INSERT INTO orders (order_id, request_id, quote_number, csn, currency,
            purchase_method, payment_method, lines, total, status, created_at, next_retry_on,
            charge_status, charge_attempts, charge_attempt_at, traceparent, refusals)
        SELECT {ORDER_ID}, CASE WHEN {AUTO} THEN NULL ELSE 'req-scale-' || g END, NULL, {CSN},
            'USD', 'direct_online', '{{"type": "card", "valid": true, "recurring": true}}',
            {LINES}, {AMOUNT}, 'succeeded', {LAST_YEAR}, NULL, 'recorded', 1, {LAST_YEAR},
            {TRACEPARENT}, '{{}}'::text[]
        {ROWS}""",
    ),
    (
        "billing",
        f"""INSERT INTO payments (order_id, amount, currency, outcome, payment_reference, reason, at)
        SELECT {ORDER_ID}, {AMOUNT}, 'USD', 'succeeded',
            'SIM-' || upper(left(md5('scale-pay-' || g), 16)), NULL, {LAST_YEAR} {ROWS}""",
    ),
    (
        "billing",
        f"""INSERT INTO simulated_provider_charges (idempotency_key, amount, currency, outcome,
            payment_reference, reason, at)
        SELECT {ORDER_ID}, {AMOUNT}, 'USD', 'succeeded',
            'SIM-' || upper(left(md5('scale-pay-' || g), 16)), NULL, {LAST_YEAR} {ROWS}""",
    ),
    (
        "billing",
        f"""INSERT INTO inbox (event_id, topic, received_at)
        SELECT md5('scale-ordered-' || g)::uuid::text, 'billing.commands', {LAST_YEAR} {ROWS}""",
    ),
    # -- notification (services/notification/migrations 001-007)
    (
        "notification",
        f"""INSERT INTO subscriptions (subscription_id, revision, csn, snapshot, renewal_date,
            reminders_after, updated_at, reminded_through, next_reminder_on, next_reminder_for,
            time_zone)
        SELECT {SUB}, 1, {CSN}, {SNAPSHOT}, {RENEWAL_DATE}, {PREVIOUS_DATE}, {LAST_YEAR},
            $1::date, {NEXT_REMINDER}, {RENEWAL_DATE},
            NULL -- no scale CSN has a zone: UTC (migration 013's trigger sets it so anyway)
            {ROWS}""",
    ),
    (
        "notification",
        # the schedule the next days were worked out with (the scheduler of an earlier phase
        # may have recorded it already)
        f"""INSERT INTO reminder_schedule (days, current)
        SELECT ARRAY{REMINDER_DAYS}, true ON CONFLICT (current) DO UPDATE SET days = EXCLUDED.days""",
    ),
    (
        "notification",
        f"""INSERT INTO open_quotes (quote_number, subscription_ids)
        SELECT {QUOTE_NEW}, ARRAY[{SUB}] {ROWS} WHERE {OPEN_QUOTE}""",
    ),
    (
        "notification",
        f"""INSERT INTO emails (notification_key, kind, csn, recipients, locale, context,
            subscription_ids, order_id, quote_number, status, attempts, next_attempt_at,
            lease_until, subject, last_error, created_at, sent_at, lease_token, traceparent)
        SELECT 'order_confirmation:' || {ORDER_ID}, 'order_confirmation', {CSN}, ARRAY[{BUYER}],
            'en-US', jsonb_build_object('items', jsonb_build_array(jsonb_build_object(
                'term', 'annual', 'seats', {SEATS}, 'product_name', 'AutoCAD LT',
                'renewal_date', {RENEWAL_DATE}, 'subscription_id', {SUB})),
                'total', {AMOUNT}::text, 'currency', 'USD', 'order_id', {ORDER_ID}),
            ARRAY[{SUB}], {ORDER_ID}, NULL, 'sent', 1, {LAST_YEAR}, NULL::timestamptz,
            'Your renewal is confirmed: AutoCAD LT (order ' || {ORDER_ID} || ')', NULL,
            {LAST_YEAR}, {LAST_YEAR}, md5('scale-lease-' || g)::uuid, {TRACEPARENT} {ROWS}
        UNION ALL
        SELECT 'quote:' || {QUOTE_NEW}, 'quote', {CSN}, ARRAY[{BUYER}], 'en-US',
            jsonb_build_object('quote_number', {QUOTE_NEW}, 'total', {AMOUNT}::text,
                'currency', 'USD'),
            ARRAY[{SUB}], NULL, {QUOTE_NEW}, 'sent', 1, $2::timestamptz, NULL,
            'Your renewal quote ' || {QUOTE_NEW}, NULL, $2::timestamptz, $2::timestamptz,
            md5('scale-qlease-' || g)::uuid, {TRACEPARENT} {ROWS} WHERE {OPEN_QUOTE}""",
    ),
    (
        "notification",
        f"""INSERT INTO inbox (event_id, topic, received_at)
        SELECT md5('scale-upserted-' || g)::uuid::text, 'subscription.events', {LAST_YEAR} {ROWS}
        UNION ALL
        SELECT md5('scale-renewed-' || g)::uuid::text, 'renewal.events', {LAST_YEAR} {ROWS}""",
    ),
    # -- quote (services/quote/migrations 001-005, the snapshot apart since 012)
    (
        "quote",
        f"""INSERT INTO subscriptions (subscription_id, revision, csn, renewal_date,
            term, seats, automatic_quote_for, time_zone)
        SELECT {SUB}, 1, {CSN}, {RENEWAL_DATE}, 'annual', {SEATS},
            CASE WHEN {QUOTE_DAY_PASSED} THEN {RENEWAL_DATE} END,
            NULL -- no scale CSN has a zone: UTC (migration 010's trigger sets it so anyway)
            {ROWS}""",
    ),
    (
        "quote",
        f"""INSERT INTO subscription_snapshots (subscription_id, snapshot)
        SELECT {SUB}, {SNAPSHOT} {ROWS}""",
    ),
    (
        "quote",
        f"""INSERT INTO quotes (quote_number, request_id, csn, partner_csn, channel, kind,
            subscription_ids, recipients, currency, total, lines, expires_on, status, order_id,
            created_at, term_starts, target_date)
        SELECT {QUOTE_OLD}, NULL, {CSN}, NULL, 'sales', 'renewal', ARRAY[{SUB}], ARRAY[{BUYER}],
            'USD', {AMOUNT}, {QUOTE_LINES}, {PREVIOUS_DATE}, 'paid', {ORDER_ID},
            {LAST_YEAR} - interval '30 days', jsonb_build_object({SUB}, {PREVIOUS_DATE}),
            NULL::date  -- a renewal quote has no alignment target (QUO-3)
        {ROWS} WHERE NOT {AUTO}
        UNION ALL
        SELECT {QUOTE_NEW}, NULL, {CSN}, NULL, 'sales', 'renewal', ARRAY[{SUB}], ARRAY[{BUYER}],
            'USD', {AMOUNT}, {QUOTE_LINES}, {RENEWAL_DATE}, 'sent', NULL, $2::timestamptz,
            jsonb_build_object({SUB}, {RENEWAL_DATE}), NULL::date
        {ROWS} WHERE {OPEN_QUOTE}""",
    ),
    (
        "quote",
        # Every subscription met the quote day: an automatic renewal gets no quote (NULL).
        f"""INSERT INTO automatic_quotes (subscription_id, renewal_date, quote_number, created_at)
        SELECT {SUB}, {PREVIOUS_DATE}, CASE WHEN {AUTO} THEN NULL ELSE {QUOTE_OLD} END,
            {LAST_YEAR} - interval '30 days' {ROWS}
        UNION ALL
        SELECT {SUB}, {RENEWAL_DATE}, CASE WHEN {AUTO} THEN NULL ELSE {QUOTE_NEW} END,
            $2::timestamptz {ROWS} WHERE {QUOTE_DAY_PASSED}""",
    ),
    (
        "quote",
        f"""INSERT INTO inbox (event_id, topic, received_at)
        SELECT md5('scale-upserted-' || g)::uuid::text, 'subscription.events', {LAST_YEAR} {ROWS}
        UNION ALL
        SELECT md5('scale-renewed-' || g)::uuid::text, 'renewal.events', {LAST_YEAR} {ROWS}""",
    ),
]


async def service_connect(service: str) -> asyncpg.Connection:
    """The service's own role (search_path = its schema, set on the role by infra.sh)."""
    settings = e2e.admin_settings()
    role = f"{service}_svc"
    password = local_secrets.database_password(role) or ""
    return await asyncpg.connect(**{**settings, "user": role, "password": password})


async def load(count: int, today: date, progress: Progress) -> dict[str, Any]:
    """Write the N subscriptions and their history; returns rows per table and seconds."""
    template = json.loads(_snapshot_template())
    args = (today, datetime.now(UTC), json.dumps(template), count)
    started = time.monotonic()
    tables: dict[str, int] = {}

    async def fill(service: str) -> None:
        """One service's tables, in order, on its own connection: the four run side by side."""
        connection = await service_connect(service)
        try:
            await apply_migrations(connection, service, service)  # the tables as the product's
            # Nothing here needs to survive a crash: no WAL flush per statement.
            await connection.execute("SET synchronous_commit = off")
            await connection.execute(
                "SET renewal.seeding = on"
            )  # no subscription.state to announce
            for owner, sql in STATEMENTS:
                if owner != service:
                    continue
                table = sql.split("INSERT INTO ", 1)[1].split(" ", 1)[0]
                step = time.monotonic()
                status = await connection.execute(TYPED + sql, *args)
                rows = int(status.rsplit(" ", 1)[1])
                tables[f"{service}.{table}"] = tables.get(f"{service}.{table}", 0) + rows
                progress(
                    f"scale: {service}.{table} +{rows:,} rows in {time.monotonic() - step:.1f} s"
                )
            step = time.monotonic()
            # Its own tables by name: a database-wide ANALYZE trips over the tables another
            # service's migrations are creating meanwhile.
            written = dict.fromkeys(
                t.split(".", 1)[1] for t in tables if t.startswith(f"{service}.")
            )
            # VACUUM as well: a table a year old has been vacuumed many times; one just bulk
            # loaded is owed a vacuum of every page (insert-driven autovacuum, freezing, the
            # visibility map), which autovacuum would otherwise pay during the timed part and
            # the figures would measure the loading, not the product (issue 19 item 7).
            await connection.execute(f"VACUUM (ANALYZE) {', '.join(written)}")
            progress(f"scale: VACUUM (ANALYZE) {service} in {time.monotonic() - step:.1f} s")
        finally:
            await connection.close()

    await asyncio.gather(*(fill(service) for service in dict.fromkeys(s for s, _ in STATEMENTS)))
    return {"rows": dict(sorted(tables.items())), "seconds": round(time.monotonic() - started, 1)}
