"""The renewal rules of DOMAIN.md as pure, synchronous functions (see README.md in this folder).

Everything a service calls is importable from here, and nothing else: the domain types, the
policy, one `decide_*` function per action returning a `Decision`, the decisions of the
schedulers (due dates, automatic quotes, reminders), of settlement and of the email recipient.
The helpers these are made of stay in their modules (README.md, "Inside the package").
"""

from shared.eligibility.dates import (
    SubscriptionState,
    expires_on,
    grace_ends,
    renewed_term,
    state_of,
    term_start,
)
from shared.eligibility.decisions import (
    decide_add_seats,
    decide_align_dates,
    decide_auto_renew,
    decide_change_terms,
    decide_manual_renewal,
)
from shared.eligibility.due_dates import (
    AutomaticOrder,
    DueDecision,
    decide_due_date,
    next_renewal_line,
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
    renewal_seats_of,
    renewal_term_of,
)
from shared.eligibility.outcomes import Action, Advisory, Decision, SubscriptionOutcome
from shared.eligibility.parsing import (
    InvalidRequestError,
    parse_explain_request,
    subscription_from_dict,
)
from shared.eligibility.policy import Policy
from shared.eligibility.pricing import (
    Money,
    Preview,
    PriceBasis,
    PriceLine,
    Totals,
)
from shared.eligibility.quote_decisions import (
    alignment_target,
    decide_accept_quote,
    decide_cancel_quote,
    decide_quote,
)
from shared.eligibility.reasons import Reason
from shared.eligibility.reminders import (
    ReminderLook,
    ReminderOption,
    next_reminder,
    reminder_option,
)
from shared.eligibility.rendering import decision_to_dict
from shared.eligibility.roles import email_recipient
from shared.eligibility.schedules import (
    automatic_quote_due,
    quote_suspends_auto_renew,
)
from shared.eligibility.terms import (
    PaidRenewal,
    RefundReason,
    Reservation,
    abandoned_refusal,
    quote_order_reasons,
    quote_took_effect,
    refund_answers_request,
    refund_refusal,
    reservation_reasons,
    seats_after_addition,
    settle_paid_quote,
    settle_paid_renewal,
)

__all__ = [
    "Action",
    "Actor",
    "Advisory",
    "AutomaticOrder",
    "Decision",
    "DueDecision",
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
    "ReminderLook",
    "ReminderOption",
    "Reservation",
    "Subscription",
    "SubscriptionOutcome",
    "SubscriptionState",
    "Totals",
    "abandoned_refusal",
    "alignment_target",
    "automatic_quote_due",
    "decide_accept_quote",
    "decide_add_seats",
    "decide_align_dates",
    "decide_auto_renew",
    "decide_cancel_quote",
    "decide_change_terms",
    "decide_due_date",
    "decide_manual_renewal",
    "decide_quote",
    "decision_to_dict",
    "email_recipient",
    "expires_on",
    "explain",
    "grace_ends",
    "group_subscriptions",
    "next_reminder",
    "next_renewal_line",
    "parse_explain_request",
    "quote_order_reasons",
    "quote_suspends_auto_renew",
    "quote_took_effect",
    "refund_answers_request",
    "refund_refusal",
    "reminder_option",
    "renewal_seats_of",
    "renewal_term_of",
    "renewed_term",
    "reservation_reasons",
    "seats_after_addition",
    "settle_paid_quote",
    "settle_paid_renewal",
    "state_of",
    "subscription_from_dict",
    "term_start",
]
