-- Issue 15 item 4, issue 19 item 1: a claim of emails is held under a token (one uuid per
-- claim), so that a sender knows whether it still holds an email when it renews or marks it.
ALTER TABLE emails ADD COLUMN lease_token uuid;

-- The sender's claim asks exactly this: pending emails due and not leased — both say "from this
-- instant on", GREATEST(next_attempt_at, lease_until) (GREATEST ignores a NULL lease) — what a
-- customer just did before reminders, the longest due first. The index is in that order, so a
-- claim reads the first claimable entries and stops: leased and not-yet-due emails sort after
-- the due ones, and sent or failed ones are not in it at all.
CREATE INDEX emails_claimable ON emails
    ((kind = 'renewal_reminder'), (GREATEST(next_attempt_at, lease_until)))
    WHERE status = 'pending';
-- Its only reader was the former claim.
DROP INDEX emails_due;
