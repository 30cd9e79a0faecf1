# PostgreSQL 15 from Debian, with the project's database, roles and schemas created at start
# (the same deploy/local/db_bootstrap.sql the local infrastructure runs).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
# No cluster at install time: the entrypoint makes one where the data lives.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/renewals.conf \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/*
COPY db_bootstrap.sql /usr/local/share/renewals/db_bootstrap.sql
COPY postgres_tuning.conf /usr/local/share/renewals/postgres_tuning.conf
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PGDATA=/var/lib/renewals-pg RENEWALS_PG_PORT=5432 RENEWALS_SECRETS_FILE=/run/secrets/renewals.env
HEALTHCHECK --interval=1s --timeout=3s --retries=60 CMD test -f /run/renewals-pg-ready && pg_isready -q -h 127.0.0.1 -p "$RENEWALS_PG_PORT"
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
