-- The renewals database, one login role and one schema per service. Idempotent: infra.sh runs
-- it as the superuser on every `up`. A service role can use only its own schema: the schemas
-- are owned by their roles, nothing is granted across, and `public` is closed.
\set ON_ERROR_STOP on

SELECT 'CREATE DATABASE renewals' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'renewals')
\gexec

-- The superuser's password, also on a data folder made before it was set by initdb.
ALTER ROLE postgres PASSWORD 'postgres';

-- One LOGIN role per service; the password is the role's name (local development only).
DO $$
DECLARE
    svc text;
BEGIN
    FOREACH svc IN ARRAY ARRAY['renewal_svc', 'billing_svc', 'quote_svc', 'notification_svc'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = svc) THEN
            EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', svc, svc);
        ELSE
            EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L', svc, svc);
        END IF;
    END LOOP;
END
$$;

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
