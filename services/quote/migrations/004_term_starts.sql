-- Issue 14: the renewal date each quoted subscription had when the quote was priced: the term
-- the quote buys starts there. Renewal refuses the order once that term was bought by another
-- order (ALREADY_RENEWED), so a quote accepted after a manual renewal never charges twice.
ALTER TABLE quotes ADD COLUMN term_starts jsonb;  -- {subscription_id: "YYYY-MM-DD"}
