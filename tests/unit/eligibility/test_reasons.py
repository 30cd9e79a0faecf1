"""Reason codes: the contract's set, in the contract's order."""

import typing

from shared.contracts.common import ReasonCode
from shared.eligibility import Reason
from shared.eligibility.reasons import in_contract_order


def test_reasons_are_the_contracts_codes_in_the_contracts_order():
    assert [r.value for r in Reason] == list(typing.get_args(ReasonCode))


def test_in_contract_order_sorts_and_removes_duplicates():
    reasons = [Reason.NO_PRICE, Reason.NOT_AUTHORIZED, Reason.TOO_EARLY, Reason.NO_PRICE]
    assert in_contract_order(reasons) == (Reason.NOT_AUTHORIZED, Reason.TOO_EARLY, Reason.NO_PRICE)
