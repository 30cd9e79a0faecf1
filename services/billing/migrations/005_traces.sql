-- The traceparent of each order's `order.placed`: the charger's payment event continues its
-- trace (issue 18 item 2). NULL for orders placed before.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS traceparent text;
