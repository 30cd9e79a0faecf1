"""Where self-service applies (SELF-1, SELF-2) and why not (SELF-3)."""

from __future__ import annotations

from shared.eligibility.model import GraceFacts
from shared.eligibility.policy import Policy
from shared.eligibility.reasons import Reason


def self_service_reasons(subscription: GraceFacts, policy: Policy) -> tuple[Reason, ...]:
    """Every reason the account's self-service options are closed to this subscription.

    SELF-2: bought directly (online, or through the vendor's sales team) in a self-service
    country; SELF-1: not a maintenance plan, a third-party-platform product, a legacy-system
    product, a reseller's product or a retired product. Empty when self-service is open.
    """
    reasons: list[Reason] = []
    if subscription.country not in policy.self_service_countries:
        reasons.append(Reason.SELF_SERVICE_UNAVAILABLE_COUNTRY)
    if subscription.flags.maintenance_plan:
        reasons.append(Reason.SELF_SERVICE_UNAVAILABLE_MAINTENANCE_PLAN)
    if subscription.flags.third_party_platform:
        reasons.append(Reason.SELF_SERVICE_UNAVAILABLE_THIRD_PARTY_PLATFORM)
    if subscription.flags.legacy_system:
        reasons.append(Reason.SELF_SERVICE_UNAVAILABLE_LEGACY_SYSTEM)
    if subscription.purchase_method not in policy.self_service_purchase_methods:
        reasons.append(Reason.SELF_SERVICE_UNAVAILABLE_RESELLER)
    if subscription.flags.retired_product:
        reasons.append(Reason.SELF_SERVICE_UNAVAILABLE_RETIRED_PRODUCT)
    return tuple(reasons)


def self_service_available(subscription: GraceFacts, policy: Policy) -> bool:
    return not self_service_reasons(subscription, policy)


def renewable_by_quote_or_manual_payment(subscription: GraceFacts, policy: Policy) -> bool:
    """Whether a quote or a manual online payment can renew it (which gives the 45-day grace).

    Manual online payment and self-service quotes need self-service (SELF-1, SELF-2); a partner
    quotes what it sold and the sales team what it sold (QUO-1), self-service or not.
    """
    return self_service_available(subscription, policy) or subscription.purchase_method in (
        "partner",
        "direct_sales",
    )
