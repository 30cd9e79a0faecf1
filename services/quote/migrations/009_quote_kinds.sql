-- QUO-3: an alignment quote moves the renewal dates to its target once paid; the target is fixed
-- when the quote is priced, said by `quote.sent` and carried by the order to renewal.
ALTER TABLE quotes ADD COLUMN target_date date;
