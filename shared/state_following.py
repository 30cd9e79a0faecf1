"""Following `subscription.state` (issue 14 item 2): quote and notification keep the newest state
renewal published of each subscription beside the subscription system's snapshot, and read the
two together — what renewal owns (dates, term, seats, what the next renewal buys, auto-renew,
the payment method, the status) from the state, the rest (product, buyer, locale) from the
snapshot. Each service has its own `subscription_states` table (its migrations)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from shared import eligibility
from shared.contracts.state_events import SubscriptionState
from shared.contracts.subscription_events import SubscriptionUpserted
from shared.db.types import DbConnection
from shared.messaging.consumer import Delivery
from shared.newest import newest_per_subscription

# What a state holds that renewal owns and its followers read in place of the snapshot's (with
# whether it is a trial): `followed_fields`, and the followers' test of a state changing what
# they read (`read_by_followers`).
RENEWAL_OWNED = (
    "renewal_date",
    "term",
    "seats",
    "next_term",
    "next_seats",
    "auto_renew",
    "payment_method",
)


def read_by_followers(state: str) -> str:
    """SQL: what quote and notification read of `state` (a jsonb expression), as
    `followed_fields` takes it — not its version, the grace, an open quote or a pending order,
    nor lapsed and expired (worked out from the dates). Both keep a state only where it
    changes (their FOLLOW: `IS DISTINCT FROM`). A row, not a jsonb array built of the fields:
    the same comparison (a state carries every field), a sixth less backend CPU a renewal."""
    fields = ", ".join(f"{state} -> '{name}'" for name in RENEWAL_OWNED)
    return f"ROW({fields}, {state} ->> 'status' = 'trial')"


# The newest version wins; an older one (replayed, or read again after compaction) is ignored —
# and a newer one that changes nothing its follower reads is not written (issue 19 item 4):
# renewal publishes two states a renewal (its order pending, then settled with the date moved),
# and the first changes nothing here. A version passed by is never needed: any older one that
# comes again (a replay) reads the same as the one kept, or is older than it.
# Returns the states taken, for the service to move the columns its claims are keyed on.
FOLLOW = f"""
INSERT INTO subscription_states AS s (subscription_id, version, state)
SELECT u.state ->> 'subscription_id', (u.state ->> 'version')::bigint, u.state
FROM unnest($1::jsonb[]) WITH ORDINALITY AS u(state, n) ORDER BY u.n
ON CONFLICT (subscription_id) DO UPDATE SET version = EXCLUDED.version, state = EXCLUDED.state
WHERE s.version < EXCLUDED.version
  AND {read_by_followers("s.state")} IS DISTINCT FROM {read_by_followers("EXCLUDED.state")}
RETURNING s.subscription_id, (s.state ->> 'renewal_date')::date AS renewal_date,
          s.state ->> 'term' AS term, (s.state ->> 'seats')::int AS seats
"""


def newest_states(deliveries: Sequence[Delivery]) -> list[str]:
    """FOLLOW's parameter: the newest state of each subscription of the batch, each as pydantic
    writes it (no dict in between: a fifth of the Python), in id order, the order every batch
    locks them in."""
    states: list[SubscriptionState] = [delivery.data for delivery in deliveries]
    newest = newest_per_subscription(states, lambda s: s.version)
    return [state.model_dump_json() for _, state in sorted(newest.items())]


async def follow_states(
    connection: DbConnection, deliveries: Sequence[Delivery]
) -> list[asyncpg.Record]:
    """Keep the newest state of each subscription of the batch; the ones taken."""
    states = newest_states(deliveries)
    if not states:
        return []
    return list(await connection.fetch(FOLLOW, states))


def state_from_column(raw: str | None) -> SubscriptionState | None:
    """The stored state (jsonb read as text), or None before the first one arrived."""
    return None if raw is None else SubscriptionState.model_validate_json(raw)


def followed_fields(
    snapshot: SubscriptionUpserted, state: SubscriptionState | None
) -> dict[str, Any]:
    """The snapshot's fields with renewal's own in place (the eligibility package reads them):
    before renewal published a state, the snapshot alone."""
    fields = snapshot.model_dump(mode="json")
    if state is not None:
        fields.update(
            state.model_dump(mode="json", include=set(RENEWAL_OWNED)),
            # Lapsed and expired are worked out from the dates by the rules themselves.
            status="trial" if state.status == "trial" else "active",
        )
    return fields


def followed_subscription(
    snapshot: SubscriptionUpserted, state: SubscriptionState | None, **stored: Any
) -> eligibility.Subscription:
    """The eligibility package's view of a followed subscription: `followed_fields`, then
    what the service's own columns hold (`stored`, the contract's field names) where its claim
    read them."""
    return eligibility.subscription_from_dict({**followed_fields(snapshot, state), **stored})
