"""The renewal rules of DOMAIN.md as pure, synchronous functions (see README.md in this folder).

Everything a service needs is importable from here: the domain types, the policy, one
`decide_*` function per action returning a `Decision`, the date and price helpers, and the
schedulers' helpers.
"""

from shared.eligibility.dates import (
    RenewalMethod,
    SubscriptionState,
    add_months,
    add_term,
    days_in_term,
    expires_on,
    grace_ends,
    is_already_renewed,
    method_grace_ends,
    renewed_term,
    state_of,
    term_start,
    window_opens,
)
from shared.eligibility.decisions import (
    decide_add_seats,
    decide_align_dates,
    decide_auto_renew,
    decide_cancel_quote,
    decide_change_terms,
    decide_manual_renewal,
    decide_primary_admin_change,
    decide_quote,
)
from shared.eligibility.explain import explain
from shared.eligibility.grouping import Group, group_subscriptions
from shared.eligibility.model import (
    Actor,
    Flags,
    PaymentMethod,
    Person,
    Price,
    Promotion,
    Quote,
    QuoteChanges,
    QuoteRequest,
    Subscription,
)
from shared.eligibility.outcomes import Action, Advisory, Decision, SubscriptionOutcome
from shared.eligibility.parsing import (
    InvalidRequestError,
    actor_from_dict,
    parse_explain_request,
    policy_from_dict,
    price_from_dict,
    promotion_from_dict,
    subscription_from_dict,
)
from shared.eligibility.policy import Policy
from shared.eligibility.pricing import (
    Money,
    Preview,
    PriceBasis,
    PriceLine,
    Totals,
    best_promotion,
    find_price,
    renewal_unit_price,
    round_money,
)
from shared.eligibility.reasons import Reason, in_contract_order
from shared.eligibility.rendering import decision_to_dict
from shared.eligibility.roles import email_recipient, may_act_for
from shared.eligibility.schedules import (
    RenewalOption,
    automatic_quote_date,
    automatic_quote_due,
    reminder_dates,
    renewal_options,
    renews_automatically,
)
from shared.eligibility.self_service import self_service_available, self_service_reasons
from shared.eligibility.terms import (
    PaidRenewal,
    RefundReason,
    Reservation,
    reservation_reasons,
    settle_paid_renewal,
)

__all__ = [
    "Action",
    "Actor",
    "Advisory",
    "Decision",
    "Flags",
    "Group",
    "InvalidRequestError",
    "Money",
    "PaidRenewal",
    "PaymentMethod",
    "Person",
    "Policy",
    "Preview",
    "Price",
    "PriceBasis",
    "PriceLine",
    "Promotion",
    "Quote",
    "QuoteChanges",
    "QuoteRequest",
    "Reason",
    "RefundReason",
    "RenewalMethod",
    "RenewalOption",
    "Reservation",
    "Subscription",
    "SubscriptionOutcome",
    "SubscriptionState",
    "Totals",
    "actor_from_dict",
    "add_months",
    "add_term",
    "automatic_quote_date",
    "automatic_quote_due",
    "best_promotion",
    "days_in_term",
    "decide_add_seats",
    "decide_align_dates",
    "decide_auto_renew",
    "decide_cancel_quote",
    "decide_change_terms",
    "decide_manual_renewal",
    "decide_primary_admin_change",
    "decide_quote",
    "decision_to_dict",
    "email_recipient",
    "expires_on",
    "explain",
    "find_price",
    "grace_ends",
    "group_subscriptions",
    "in_contract_order",
    "is_already_renewed",
    "may_act_for",
    "method_grace_ends",
    "parse_explain_request",
    "policy_from_dict",
    "price_from_dict",
    "promotion_from_dict",
    "reminder_dates",
    "renewal_options",
    "renewal_unit_price",
    "renewed_term",
    "renews_automatically",
    "reservation_reasons",
    "round_money",
    "self_service_available",
    "self_service_reasons",
    "settle_paid_renewal",
    "state_of",
    "subscription_from_dict",
    "term_start",
    "window_opens",
]
