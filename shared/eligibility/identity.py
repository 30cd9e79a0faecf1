"""Who sent a command, as the product proved it, and what that sender may act on (issue 16
items 2 and 3; CONTRACT.md "Who may send what"; DOMAIN.md "Time and channels").

The channel and the partner come from the sender's signature, never from the body alone: the
account portal is `self_service` (its users act for their own CSN only, ROLE-1), the sales tool is
`sales` (the vendor's sales team, for any customer), a partner's tool is `partner` for its own
partner CSN only (the agent of record, QUO-1). Anyone else gets NOT_AUTHORIZED and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.eligibility.model import Actor, Channel, Quote, Subscription
from shared.eligibility.reasons import Reason
from shared.eligibility.roles import may_act_for


@dataclass(frozen=True, kw_only=True)
class Sender:
    """The proven sender of a command: its channel, and for a partner the CSN it is."""

    channel: Channel
    partner_csn: str | None = None


def command_reasons(
    sender: Sender, actor: Actor, *, csn: str, channel: Channel | None = None
) -> list[Reason]:
    """The command as a whole, before anything of anyone's is read or locked.

    NOT_AUTHORIZED when the body's `channel` disagrees with the sender (the portal saying
    `sales`); when a self-service actor sends for another CSN than its own (the command's key
    and subject: its answers go there); when a partner's user is not of that partner's CSN.
    """
    if channel is not None and channel != sender.channel:
        return [Reason.NOT_AUTHORIZED]
    if sender.channel == "self_service" and actor.csn != csn:
        return [Reason.NOT_AUTHORIZED]
    if sender.channel == "partner" and (
        sender.partner_csn is None or actor.csn != sender.partner_csn
    ):
        return [Reason.NOT_AUTHORIZED]
    return []


def sender_may_act_for(sender: Sender, actor: Actor, subscription: Subscription) -> bool:
    """Self-service: ROLE-1 (the buyer, or a managed organisation's primary admin, of the
    subscription's own CSN). Partner: only the agent of record of the subscription. Sales:
    the vendor's sales team acts for any customer."""
    if sender.channel == "self_service":
        return may_act_for(actor, subscription)
    if sender.channel == "partner":
        return subscription.partner_csn is not None and subscription.partner_csn == (
            sender.partner_csn
        )
    return True


def may_handle_quote(
    actor: Actor, quote: Quote, *, channel: Channel, sender: Sender | None
) -> bool:
    """Whether this sender may act on this quote at all (QUO-5 then decides what it may do):
    a self-service user of the quote's CSN, the quote's own agent of record, or sales. With a
    proven sender the channel is the sender's and a partner is the sender's partner CSN; without
    one (the rules run on their own, `renewals-eligibility explain`) the body is believed."""
    if sender is not None and sender.channel != channel:
        return False
    if channel == "self_service":
        return actor.csn == quote.csn
    if channel == "partner":
        partner = sender.partner_csn if sender is not None else actor.csn
        return quote.partner_csn is not None and quote.partner_csn == partner
    return True


def applies_self_service(sender: Sender | None) -> bool:
    """SELF-1/SELF-2 close the account's self-service options; a partner or the sales team may
    do what self-service can't (SELF-3 points the customer to them). Without a proven sender the
    rules assume self-service, the strictest."""
    return sender is None or sender.channel == "self_service"
