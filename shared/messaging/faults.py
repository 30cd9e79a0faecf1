"""Fault-injection points that tests arm through `RENEWALS_FAULTS` to kill a process on purpose.

`after_db_commit`: SIGKILL the process right after a batch's database commit and before its Kafka
offset commit — the window where a naive consumer would apply an effect twice on redelivery.
`bulk_before_commit`: SIGKILL the bulk worker in the middle of working a claim of batches.
"""

import logging
import os
import signal

log = logging.getLogger(__name__)

AFTER_DB_COMMIT = "after_db_commit"
# The bulk worker, mid-batch: orders decided and written, the transaction not yet committed.
BULK_BEFORE_COMMIT = "bulk_before_commit"
# The email sender, after the SMTP server accepted an email, before it is marked sent.
AFTER_SMTP_ACCEPT = "after_smtp_accept"
# The email sender, mid-claim: the first email of several sent and marked, the others not yet.
SENDER_MID_CLAIM = "sender_mid_claim"
# Billing's charger: the attempt committed, the provider not called yet / the provider charged,
# the outcome not recorded yet (services/billing/charges.py reconciles both on restart).
BILLING_BEFORE_CHARGE = "billing_before_charge"
BILLING_AFTER_CHARGE = "billing_after_charge"


class FaultPoints:
    def __init__(self, armed: set[str] | frozenset[str] = frozenset()) -> None:
        self.armed = frozenset(armed)

    def hit(self, point: str) -> None:
        if point in self.armed:
            log.warning("fault point reached: killing the process", extra={"fault": point})
            for handler in logging.getLogger().handlers:
                handler.flush()
            os.kill(os.getpid(), signal.SIGKILL)
