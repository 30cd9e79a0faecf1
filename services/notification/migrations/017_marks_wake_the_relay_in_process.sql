-- Issue 19: a sent email's mark wakes the relay of its own process, not every listener.
--
-- Each mark of a sent email (leases.py MARK_ONE, one statement per email) adds its
-- `email.sent` to the outbox, and the outbox's trigger (shared migration 001) sent a NOTIFY
-- with it: a plpgsql call, the notification queue at commit, the relay's listening connection
-- woken — for every email. The sender now wakes its process's relay itself (sender.py
-- `wake_relay`, after its marks) and says so for the mark's transaction
-- (`renewals.relay_woken_here`, leases.py): the trigger is skipped then. Any other insert into
-- the outbox — the consumers', a batch of marks, a sender without a relay at hand — still
-- notifies; a relay not woken still polls (`outbox_poll_seconds`).
DROP TRIGGER outbox_inserted ON outbox;
CREATE TRIGGER outbox_inserted AFTER INSERT ON outbox FOR EACH STATEMENT
    WHEN (current_setting('renewals.relay_woken_here', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION notify_outbox();
