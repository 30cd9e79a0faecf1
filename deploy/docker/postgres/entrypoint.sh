#!/bin/bash
# Start PostgreSQL on 127.0.0.1:$RENEWALS_PG_PORT (host networking: the port is the machine's).
# A new data folder is initialised first; the database, roles and schemas are (re)applied on
# every start by db_bootstrap.sql (idempotent) on a server that listens on its socket only, then
# the real server runs in the foreground as PID 1's child, so `docker stop` stops it cleanly.
# The passwords (the superuser's, used by nothing but this bootstrap, and each service role's)
# come from the secrets file mounted at $RENEWALS_SECRETS_FILE (shared/local_secrets.py).
set -euo pipefail

SECRETS="${RENEWALS_SECRETS_FILE:-/run/secrets/renewals.env}"
secret() {
  local value
  value=$(sed -n "s/^$1=//p" "$SECRETS" | tail -n 1)
  [[ -n $value ]] || {
    echo "postgres: $1 missing from $SECRETS (mount the stack's secrets file there)" >&2
    exit 1
  }
  echo "$value"
}

BIN=/usr/lib/postgresql/15/bin
SOCKETS=/run/postgresql
as_postgres() { runuser -u postgres -- "$@"; }

# Each into the environment, where db_bootstrap.sql reads it (\getenv): never on a command line.
for key in PG_PASSWORD_POSTGRES PG_PASSWORD_RENEWAL_SVC PG_PASSWORD_BILLING_SVC \
  PG_PASSWORD_QUOTE_SVC PG_PASSWORD_NOTIFICATION_SVC; do
  value=$(secret "$key") # an assignment: a missing one stops the script here
  export "$key=$value"
done

rm -f /run/renewals-pg-ready
mkdir -p "$PGDATA" "$SOCKETS"
chown postgres:postgres "$PGDATA" "$SOCKETS"
chmod 700 "$PGDATA"

if [[ ! -f $PGDATA/PG_VERSION ]]; then
  (umask 077 && echo "$PG_PASSWORD_POSTGRES" >/tmp/pwfile) && chown postgres /tmp/pwfile
  as_postgres "$BIN/initdb" -D "$PGDATA" -U postgres --pwfile=/tmp/pwfile \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f /tmp/pwfile
  cat >"$PGDATA/pg_hba.conf" <<'HBA'
# Trust on the container's socket, passwords over TCP, 127.0.0.1 only.
local   all       all                  trust
host    all       all   127.0.0.1/32   scram-sha-256
HBA
fi

# The project's settings (deploy/local/postgres_tuning.conf), as the local infrastructure has them.
install -m 600 -o postgres -g postgres /usr/local/share/renewals/postgres_tuning.conf \
  "$PGDATA/renewals_tuning.conf"
grep -q "^include_if_exists = 'renewals_tuning.conf'" "$PGDATA/postgresql.conf" ||
  echo "include_if_exists = 'renewals_tuning.conf'" >>"$PGDATA/postgresql.conf"

as_postgres "$BIN/pg_ctl" -D "$PGDATA" -w -o "-c listen_addresses='' -k $SOCKETS" start >/dev/null
# runuser keeps the environment (the passwords) for psql.
as_postgres psql -q -h "$SOCKETS" -U postgres -d postgres \
  -f /usr/local/share/renewals/db_bootstrap.sql
as_postgres "$BIN/pg_ctl" -D "$PGDATA" -w -m fast stop >/dev/null

unset PG_PASSWORD_POSTGRES PG_PASSWORD_RENEWAL_SVC PG_PASSWORD_BILLING_SVC \
  PG_PASSWORD_QUOTE_SVC PG_PASSWORD_NOTIFICATION_SVC # the server needs none of them

touch /run/renewals-pg-ready
echo "postgres: listening on 127.0.0.1:$RENEWALS_PG_PORT"
exec runuser -u postgres -- "$BIN/postgres" -D "$PGDATA" -k "$SOCKETS" \
  -c listen_addresses=127.0.0.1 -c port="$RENEWALS_PG_PORT"
