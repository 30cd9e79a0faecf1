-- The renewals database, one login role and one schema per service. Idempotent: infra.sh runs
-- it as the superuser on every `up` (the superuser's only use in the product). A service role can
-- use only its own schema: the schemas are owned by their roles, nothing is granted across, and
-- `public` is closed.
\set ON_ERROR_STOP on

SELECT 'CREATE DATABASE renewals' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'renewals')
\gexec

-- Passwords come from the environment (infra.sh and the container's entrypoint set it from the
-- secrets file, shared/local_secrets.py; never argv, which other users can read): nothing here
-- or in the repository knows them. A missing one leaves its variable unset, and stops the script.
\getenv postgres_password PG_PASSWORD_POSTGRES
\getenv renewal_password PG_PASSWORD_RENEWAL_SVC
\getenv billing_password PG_PASSWORD_BILLING_SVC
\getenv quote_password PG_PASSWORD_QUOTE_SVC
\getenv notification_password PG_PASSWORD_NOTIFICATION_SVC

-- The superuser's, also on a data folder made before it was set by initdb.
ALTER ROLE postgres PASSWORD :'postgres_password';

-- One LOGIN role per service, each with its own generated password.
SELECT format('CREATE ROLE %I LOGIN', role) FROM (VALUES ('renewal_svc'), ('billing_svc'), ('quote_svc'), ('notification_svc')) AS r(role)
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role)
\gexec
ALTER ROLE renewal_svc LOGIN PASSWORD :'renewal_password';
ALTER ROLE billing_svc LOGIN PASSWORD :'billing_password';
ALTER ROLE quote_svc LOGIN PASSWORD :'quote_password';
ALTER ROLE notification_svc LOGIN PASSWORD :'notification_password';

REVOKE ALL ON DATABASE renewals FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE renewals TO renewal_svc, billing_svc, quote_svc, notification_svc;

ALTER ROLE renewal_svc SET search_path = renewal;
ALTER ROLE billing_svc SET search_path = billing;
ALTER ROLE quote_svc SET search_path = quote;
ALTER ROLE notification_svc SET search_path = notification;

\connect renewals

REVOKE ALL ON SCHEMA public FROM PUBLIC;

CREATE SCHEMA IF NOT EXISTS renewal AUTHORIZATION renewal_svc;
CREATE SCHEMA IF NOT EXISTS billing AUTHORIZATION billing_svc;
CREATE SCHEMA IF NOT EXISTS quote AUTHORIZATION quote_svc;
CREATE SCHEMA IF NOT EXISTS notification AUTHORIZATION notification_svc;

-- A schema that already existed keeps its owner with IF NOT EXISTS: make sure of it.
ALTER SCHEMA renewal OWNER TO renewal_svc;
ALTER SCHEMA billing OWNER TO billing_svc;
ALTER SCHEMA quote OWNER TO quote_svc;
ALTER SCHEMA notification OWNER TO notification_svc;
