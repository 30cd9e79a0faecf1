-- Quotes arrive with issue 7 (renewal by quote); until then the quote service keeps the catalog
-- (prices and promotions, from shared/catalog/migrations) that its quotes will be priced from.
SELECT 1;
