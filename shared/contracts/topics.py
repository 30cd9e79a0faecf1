"""Every Kafka topic the product uses: the public ones of CONTRACT.md and the internal ones.

One list, read by the topic-creation command, the services and the operator tools, so that a
topic is never created by accident (auto-creation is off) and every topic has its `.dlq` twin.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int = 6
    public: bool = True
    # A compacted topic keeps the newest message per key (`cleanup.policy=compact`).
    compacted: bool = False

    @property
    def config(self) -> dict[str, str]:
        """The topic-level settings it is created with."""
        return {"cleanup.policy": "compact"} if self.compacted else {}

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"


SUBSCRIPTION_EVENTS = Topic("subscription.events")
CATALOG_EVENTS = Topic("catalog.events")
RENEWAL_COMMANDS = Topic("renewal.commands")
QUOTE_COMMANDS = Topic("quote.commands")
CLOCK_COMMANDS = Topic("clock.commands", partitions=3)
PAYMENT_EVENTS = Topic("payment.events")

RENEWAL_EVENTS = Topic("renewal.events")
QUOTE_EVENTS = Topic("quote.events")
BILLING_EVENTS = Topic("billing.events")
NOTIFICATION_EVENTS = Topic("notification.events")
# Renewal's whole state of each subscription, newest per key (the subscription id) kept.
SUBSCRIPTION_STATE = Topic("subscription.state", compacted=True)

# Internal: renewal (and later quote) ask billing for an order. Not part of the public contract.
BILLING_COMMANDS = Topic("billing.commands", public=False)
# Internal: quote asks renewal to reserve the terms an accepted quote buys and to place its order
# (`quote.orders`); renewal answers a refusal, a release, and the order's payment outcome
# (`quote.order_answers`). Renewal owns every term.
QUOTE_ORDERS = Topic("quote.orders", public=False)
QUOTE_ORDER_ANSWERS = Topic("quote.order_answers", public=False)

ALL_TOPICS: tuple[Topic, ...] = (
    SUBSCRIPTION_EVENTS,
    CATALOG_EVENTS,
    RENEWAL_COMMANDS,
    QUOTE_COMMANDS,
    CLOCK_COMMANDS,
    PAYMENT_EVENTS,
    RENEWAL_EVENTS,
    QUOTE_EVENTS,
    BILLING_EVENTS,
    NOTIFICATION_EVENTS,
    SUBSCRIPTION_STATE,
    BILLING_COMMANDS,
    QUOTE_ORDERS,
    QUOTE_ORDER_ANSWERS,
)

DLQ_PARTITIONS = 1
