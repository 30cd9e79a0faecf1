-- An order whose money does not hold together (a total that is not the sum of its lines, a line
-- with no seats or no price, an amount finer than its currency) is refused, not placed (issue 16
-- item 4): recorded with status `refused`, charge_status `recorded` (never claimed by the
-- charger), and why.
ALTER TABLE orders ADD COLUMN refusals text[] NOT NULL DEFAULT '{}';
