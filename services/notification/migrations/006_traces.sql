-- The traceparent of the event that queued each email (or of the reminder's decision): its
-- `email.sent` / `email.failed` continue that trace (issue 18 item 2). NULL for older emails.
ALTER TABLE emails ADD COLUMN IF NOT EXISTS traceparent text;
