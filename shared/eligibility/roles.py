"""Who may act on a subscription (ROLE-1, ROLE-2) and who gets its emails (ROLE-3)."""

from __future__ import annotations

from typing import Protocol, TypeVar

from shared.eligibility.model import Actor, Subscription

PersonT = TypeVar("PersonT", covariant=True)


class Bought(Protocol[PersonT]):
    """Anything that names its buyer: the package's Subscription, or a service's copy of the
    subscription system's snapshot (whose person type is the contract's)."""

    @property
    def buyer(self) -> PersonT: ...


def is_buyer(actor: Actor, subscription: Subscription) -> bool:
    return actor.csn == subscription.csn and actor.user_id == subscription.buyer.user_id


def may_act_for(actor: Actor, subscription: Subscription) -> bool:
    """ROLE-1: the buyer, or in a managed organisation the primary admin (ROLE-2: the buyer
    keeps acting after handing the admin role to someone else of the same CSN)."""
    if is_buyer(actor, subscription):
        return True
    return (
        subscription.managed_org
        and actor.csn == subscription.csn
        and actor.user_id == subscription.admin.user_id
    )


def is_agent_of_record(actor: Actor, subscription: Subscription) -> bool:
    """A partner's user acting for the subscription it sold (QUO-1)."""
    return subscription.partner_csn is not None and actor.csn == subscription.partner_csn


def email_recipient(subscription: Bought[PersonT]) -> PersonT:
    """ROLE-3: purchase, billing and renewal emails go to the buyer — never to the primary admin
    the role was handed to (ROLE-2)."""
    return subscription.buyer
