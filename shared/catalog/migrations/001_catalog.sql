-- The catalog as a pricing service keeps it: prices per product, term and currency; promotions.
CREATE TABLE prices (
    product_code  text NOT NULL,
    term          text NOT NULL,
    currency      text NOT NULL,
    list_price    numeric NOT NULL,
    renewal_price numeric,
    PRIMARY KEY (product_code, term, currency)
);

CREATE TABLE promotions (
    promotion_code text PRIMARY KEY,
    product_codes  text[] NOT NULL,
    percent_off    numeric NOT NULL,
    starts_on      date NOT NULL,
    ends_on        date NOT NULL
);
