-- AUTO-5: the subscriptions whose auto-renew a changing renewal quote switched off, to switch
-- back on once the quote is paid, expired or cancelled.
ALTER TABLE quotes ADD COLUMN auto_renew_suspended text[] NOT NULL DEFAULT '{}';
