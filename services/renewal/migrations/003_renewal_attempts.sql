-- A failed automatic renewal charge is tried again on the policy's schedule: one row per try.
ALTER TABLE auto_renewals ADD COLUMN attempt integer NOT NULL DEFAULT 1;
ALTER TABLE auto_renewals DROP CONSTRAINT auto_renewals_pkey;
ALTER TABLE auto_renewals ADD PRIMARY KEY (subscription_id, renewal_date, attempt);
