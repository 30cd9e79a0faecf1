-- Issue 19: announcing a state no longer rewrites the subscription's row.
--
-- `subscription.state`'s `version` grows with every state announced. It was a counter on each
-- subscription (`state_version`, migration 013), bumped by the announce: a second UPDATE of
-- rows the write path had just updated (a new row version, an entry in each of the table's
-- indexes, WAL) — the most expensive statement of a renewal. A sequence grows as well: the
-- announce locks each subscription before it takes a number (services/renewal/state.py), so
-- of two transactions announcing one subscription the later one, which waited for the lock,
-- takes the larger number, as readers need (the newest version wins).
CREATE SEQUENCE state_versions AS bigint;
-- Above every version already published, so that readers keep taking the new ones.
SELECT setval('state_versions', COALESCE((SELECT max(state_version) FROM subscriptions), 0) + 1, false);
ALTER TABLE subscriptions DROP COLUMN state_version;
