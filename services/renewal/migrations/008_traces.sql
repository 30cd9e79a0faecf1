-- The traceparent of the command that asked for each batch: the bulk worker's orders and
-- answers continue its trace (issue 18 item 2). NULL for batches recorded before.
ALTER TABLE renewal_batches ADD COLUMN IF NOT EXISTS traceparent text;
