-- Test clocks: a manual payment's `pay_by` counts from the CSN's today (its test clock if set).
CREATE TABLE test_clocks (
    csn        text PRIMARY KEY,
    today      date NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
