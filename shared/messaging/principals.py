"""Who may do what on the broker: every principal and its ACLs, as data, in this one place.

deploy/local/kafka_security.py creates the SCRAM users and ACLs from it (infra.sh, the container
stack), the README's "Security" table is printed from it (`python -m shared.messaging.principals`),
the credential helper (credentials.py) maps a service to its principal with it, and a consumer
can ask `writers_of(topic)` which principals may have written what it reads: a topic written by
one principal only (`payment.events`, `clock.commands`, `billing.*`) proves its sender.
`renewal.commands` and `quote.commands` have several writers: each signs what it sends
(shared/messaging/signing.py), and its `channel` (and a partner's CSN) here is what the product
believes about who sent a command (issue 16 item 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from shared.contracts import topics
from shared.contracts.topics import ALL_TOPICS, Topic


class Kind(StrEnum):
    SUPER = "super"  # bypasses every ACL (super.users): the broker itself and the bootstrap admin
    SERVICE = "service"
    UPSTREAM = "upstream"
    OPERATOR = "operator"
    TEST = "test"


@dataclass(frozen=True)
class Grant:
    """One ACL: ALLOW `operation` on a resource (`topic`, `group` or `cluster`) for any host.
    `prefixed` matches every name that starts with `name`; `*` alone is every name."""

    operation: str  # READ, WRITE, CREATE, DELETE, DESCRIBE, ALL
    resource: str
    name: str
    prefixed: bool = False


@dataclass(frozen=True)
class Principal:
    name: str  # the SCRAM user name; the ACLs' principal is `User:<name>`
    kind: Kind
    who: str
    writes: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    group_prefixes: tuple[str, ...] = ()  # consumer groups it may join and commit for
    extra: tuple[Grant, ...] = field(default_factory=tuple)
    # For a system that signs commands: the channel its commands are (CONTRACT.md: portal
    # `self_service`, sales tool `sales`, a partner's tool `partner` for `partner_csn` only).
    channel: str | None = None
    partner_csn: str | None = None

    @property
    def grants(self) -> list[Grant]:
        return (
            [Grant("WRITE", "topic", name) for name in self.writes]
            + [Grant("READ", "topic", name) for name in self.reads]
            + [Grant("READ", "group", prefix, prefixed=True) for prefix in self.group_prefixes]
            + list(self.extra)
        )


def _names(*of: Topic) -> tuple[str, ...]:
    return tuple(t.name for t in of)


def _dlqs(*of: Topic) -> tuple[str, ...]:
    return tuple(t.dlq for t in of)


# What each service consumes (one group `<service>.<topic>` each, shared/messaging/runtime.py)
# and publishes through its outbox; tests/unit/messaging/test_principals.py checks the apps
# declare no more than this.
SERVICE_CONSUMES: dict[str, tuple[Topic, ...]] = {
    "renewal": (
        topics.SUBSCRIPTION_EVENTS,
        topics.CATALOG_EVENTS,
        topics.RENEWAL_COMMANDS,
        topics.BILLING_EVENTS,
        topics.QUOTE_EVENTS,
        topics.QUOTE_ORDERS,  # a quote accepted: renewal reserves its terms, then orders
        topics.CLOCK_COMMANDS,
    ),
    "billing": (topics.BILLING_COMMANDS, topics.PAYMENT_EVENTS, topics.CLOCK_COMMANDS),
    "quote": (
        topics.CATALOG_EVENTS,
        topics.SUBSCRIPTION_EVENTS,
        topics.QUOTE_COMMANDS,
        # Renewal answers a quote's order, its payment outcome too: no `billing.events` (#19).
        topics.QUOTE_ORDER_ANSWERS,
        topics.CLOCK_COMMANDS,
        topics.SUBSCRIPTION_STATE,  # what renewal holds of each subscription: quote follows it
    ),
    "notification": (
        topics.SUBSCRIPTION_EVENTS,
        topics.BILLING_EVENTS,
        topics.RENEWAL_EVENTS,
        topics.CATALOG_EVENTS,
        topics.QUOTE_EVENTS,
        topics.CLOCK_COMMANDS,
        topics.SUBSCRIPTION_STATE,  # what renewal holds of each subscription: reminders follow it
    ),
}
SERVICE_PRODUCES: dict[str, tuple[Topic, ...]] = {
    "renewal": (
        topics.RENEWAL_EVENTS,
        topics.BILLING_COMMANDS,
        topics.QUOTE_ORDER_ANSWERS,
        topics.SUBSCRIPTION_STATE,  # its only writer: renewal owns every subscription's state
    ),
    "billing": (topics.BILLING_EVENTS,),
    "quote": (topics.QUOTE_EVENTS, topics.QUOTE_ORDERS),
    "notification": (topics.NOTIFICATION_EVENTS,),
}
# The bulk worker works renewal's schema and outbox: it is the renewal principal.
SERVICE_PRINCIPAL = {"renewal": "renewal", "bulk_worker": "renewal"} | {
    s: s for s in ("billing", "quote", "notification")
}


def _service(name: str, who: str, *, also_groups: tuple[str, ...] = ()) -> Principal:
    consumed = SERVICE_CONSUMES[name]
    return Principal(
        name,
        Kind.SERVICE,
        who,
        # A message it cannot handle goes to `<topic>.dlq` of what it consumes.
        writes=_names(*SERVICE_PRODUCES[name]) + _dlqs(*consumed),
        reads=_names(*consumed),
        group_prefixes=(f"{name}.", *also_groups),
    )


def _upstream(
    name: str,
    who: str,
    *,
    writes: tuple[Topic, ...],
    reads: tuple[Topic, ...] = (),
    channel: str | None = None,
    partner_csn: str | None = None,
) -> Principal:
    return Principal(
        name,
        Kind.UPSTREAM,
        who,
        writes=_names(*writes),
        reads=_names(*reads),
        # Its own consumer groups, e.g. `portal.renewal-answers`, for what it reads.
        group_prefixes=(f"{name}.",) if reads else (),
        channel=channel,
        partner_csn=partner_csn,
    )


# The partners whose tools may connect, each its own principal tied to its partner CSN (the
# `partner_csn` of the subscriptions it sold): a partner acts only for those (issue 16 item 2).
# Onboarding a partner is a line here, then `make infra-up` (or `make up`) creates its user,
# password and signing key.
PARTNER_CSNS: tuple[str, ...] = ("P-1001", "P-1002")


def partner_principal(partner_csn: str) -> str:
    return f"partner-{partner_csn}"


COMMAND_TOPICS: tuple[Topic, ...] = (topics.RENEWAL_COMMANDS, topics.QUOTE_COMMANDS)


# What an operator's `renewals dlq replay` may republish: the topics upstream systems write for
# the product, never the product's own (`billing.*`), the payment provider's or the test clock's
# (a dead letter of those is inspected, and sent again by its owner).
OPERATOR_REPLAYS: tuple[Topic, ...] = (
    topics.SUBSCRIPTION_EVENTS,
    topics.CATALOG_EVENTS,
    topics.RENEWAL_COMMANDS,
    topics.QUOTE_COMMANDS,
)
# What tests and the bench make for themselves: fresh topics, and the groups of what consumes
# them (a test runtime `it-…`, or a service run in-process on `it.` topics: `billing.it.…`).
TEST_TOPIC_PREFIXES = ("it.", "bench.")
TEST_GROUP_PREFIXES = ("it-", "bench", *(f"{s}.it." for s in SERVICE_CONSUMES))

PRINCIPALS: tuple[Principal, ...] = (
    Principal("broker", Kind.SUPER, "the Kafka broker itself (inter-broker and controller)"),
    Principal("admin", Kind.SUPER, "the bootstrap: topics, SCRAM users and ACLs"),
    _service("renewal", "the renewal service and the bulk worker", also_groups=("bulk_worker.",)),
    _service("billing", "the billing service"),
    _service("quote", "the quote service"),
    _service("notification", "the notification service"),
    _upstream(
        "portal",
        "the account portal (signs its commands: `self_service`)",
        writes=COMMAND_TOPICS,
        reads=(topics.RENEWAL_EVENTS, topics.QUOTE_EVENTS, topics.SUBSCRIPTION_STATE),
        channel="self_service",
    ),
    *(
        _upstream(
            partner_principal(csn),
            f"partner {csn}'s tool (signs its commands: `partner` for {csn})",
            writes=COMMAND_TOPICS,
            reads=(topics.RENEWAL_EVENTS, topics.QUOTE_EVENTS),
            channel="partner",
            partner_csn=csn,
        )
        for csn in PARTNER_CSNS
    ),
    _upstream(
        "sales",
        "the sales tool (signs its commands: `sales`)",
        writes=COMMAND_TOPICS,
        reads=(topics.RENEWAL_EVENTS, topics.QUOTE_EVENTS),
        channel="sales",
    ),
    _upstream(
        "subscriptions",
        "the subscription system",
        writes=(topics.SUBSCRIPTION_EVENTS,),
        reads=(topics.RENEWAL_EVENTS,),
    ),
    _upstream("catalog", "the catalog", writes=(topics.CATALOG_EVENTS,)),
    _upstream(
        "payments",
        "the payment provider",
        writes=(topics.PAYMENT_EVENTS,),
        reads=(topics.BILLING_EVENTS,),
    ),
    Principal(
        "operator",
        Kind.OPERATOR,
        "operators: the `renewals` CLI and the console",
        # Replays, and the replay markers written to the dead-letter topics.
        writes=_names(*OPERATOR_REPLAYS) + _dlqs(*ALL_TOPICS),
        extra=(
            Grant("READ", "topic", "*"),
            Grant("DESCRIBE", "group", "*"),  # lag of every group, stale ones included
        ),
    ),
    Principal(
        "test",
        Kind.TEST,
        "the test suites and the bench (test clocks)",
        writes=_names(topics.CLOCK_COMMANDS),
        extra=(
            Grant("READ", "topic", "*"),
            Grant("DESCRIBE", "group", "*"),
            *(Grant("ALL", "topic", prefix, prefixed=True) for prefix in TEST_TOPIC_PREFIXES),
            *(Grant("ALL", "group", prefix, prefixed=True) for prefix in TEST_GROUP_PREFIXES),
        ),
    ),
)

BY_NAME: dict[str, Principal] = {p.name: p for p in PRINCIPALS}
SUPER_USERS: tuple[str, ...] = tuple(p.name for p in PRINCIPALS if p.kind is Kind.SUPER)


def principal(name: str) -> Principal:
    try:
        return BY_NAME[name]
    except KeyError:
        raise LookupError(f"no Kafka principal {name!r}; known: {', '.join(BY_NAME)}") from None


def writers_of(topic: str) -> list[str]:
    """The principals (super users apart) whose ACLs let them write `topic`."""
    return [
        p.name
        for p in PRINCIPALS
        if p.kind is not Kind.SUPER
        and any(
            g.resource == "topic"
            and g.operation in ("WRITE", "ALL")
            and (topic.startswith(g.name) if g.prefixed else g.name in (topic, "*"))
            for g in p.grants
        )
    ]


def signers_of(topic: str) -> list[str]:
    """The principals that sign what they write to `topic` (the command topics' writers)."""
    return [name for name in writers_of(topic) if BY_NAME[name].channel is not None]


SIGNERS: tuple[str, ...] = tuple(p.name for p in PRINCIPALS if p.channel is not None)


def upstream_writer_of(topic: str) -> str | None:
    """The first system outside the product that writes `topic` (the portal for
    `renewal.commands`), or the test principal for what only it writes: whom a test or the
    demo plays when it sends there. None for the product's own topics."""
    writers = writers_of(topic)
    for kind in (Kind.UPSTREAM, Kind.TEST):
        for name in writers:
            if BY_NAME[name].kind is kind:
                return name
    return None


def _writes_cell(p: Principal) -> str:
    dlqs = [t for t in p.writes if t.endswith(".dlq")]
    cell = [f"`{t}`" for t in p.writes if t not in dlqs]
    if dlqs and {t.removesuffix(".dlq") for t in dlqs} == set(p.reads):
        cell.append("the `.dlq` of each topic it reads")
    elif dlqs and set(dlqs) == {t.dlq for t in ALL_TOPICS}:
        cell.append("every `.dlq` (replay markers)")
    else:
        cell += [f"`{t}`" for t in dlqs]
    return ", ".join(cell) or "—"


def table() -> str:
    """The ACLs as a Markdown table (the README's "Security" section)."""
    lines = [
        "| principal | who | writes | reads | consumer groups | also |",
        "|---|---|---|---|---|---|",
    ]
    for p in PRINCIPALS:
        if p.kind is Kind.SUPER:
            lines.append(f"| `{p.name}` | {p.who} | super user: no ACL applies | | | |")
            continue
        extra = ", ".join(
            f"{g.operation} {g.resource} `{g.name}{'*' if g.prefixed else ''}`" for g in p.extra
        )
        lines.append(
            f"| `{p.name}` | {p.who} | {_writes_cell(p)} "
            f"| {', '.join(f'`{t}`' for t in p.reads) or '—'} "
            f"| {', '.join(f'`{g}*`' for g in p.group_prefixes) or '—'} | {extra} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
