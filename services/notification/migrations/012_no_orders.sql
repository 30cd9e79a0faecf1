-- Issue 17 item 3, issue 19 item 3: `payment.failed` and `payment.awaiting_manual` name their
-- order's CSN, subscriptions and amount, so notification no longer keeps billing's orders (nor
-- consumes `order.placed`): their emails are made from the payment event alone.
DROP TABLE orders;
