#!/usr/bin/env bash
# Local infrastructure without Docker: Kafka 4.1.1 (KRaft, one node), PostgreSQL 15 and a dev
# SMTP server, all on 127.0.0.1, all state under <repo>/.local/.
#
#   deploy/local/infra.sh up      start whatever is not running, create the database and topics
#   deploy/local/infra.sh down    stop what `up` started (by the pids in .local/run/)
#   deploy/local/infra.sh status  what runs, where it listens, whether it answers
#
# For the fault suite (tests/faults/, `make faults`):
#   deploy/local/infra.sh restart-kafka                   SIGKILL the broker, start it, wait for leaders
#   deploy/local/infra.sh restart-postgres [--immediate]  stop PostgreSQL (immediate: no checkpoint,
#                                                         crash recovery at start), start it again
#   deploy/local/infra.sh cluster up|down|status          a 3-broker KRaft cluster of its own
#                                                         (replication 3, min.insync.replicas 2)
#   deploy/local/infra.sh cluster kill|start <1-3>        SIGKILL / start one of its brokers
#
# Ports: RENEWALS_KAFKA_PORT (19092), RENEWALS_KAFKA_CONTROLLER_PORT (19093),
#        RENEWALS_PG_PORT (15432), RENEWALS_SMTP_PORT (12525), RENEWALS_PROMETHEUS_PORT (19090).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
LOCAL="$ROOT/.local"
RUN="$LOCAL/run"

KAFKA_PORT="${RENEWALS_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${RENEWALS_KAFKA_CONTROLLER_PORT:-19093}"
PG_PORT="${RENEWALS_PG_PORT:-15432}"
SMTP_PORT="${RENEWALS_SMTP_PORT:-12525}"
PROMETHEUS_PORT="${RENEWALS_PROMETHEUS_PORT:-19090}"

KAFKA_VERSION=4.1.1
KAFKA_DIR="$LOCAL/kafka"
KAFKA_LIBS="$KAFKA_DIR/libs"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_LOGS="$KAFKA_DIR/logs"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_START_TIMEOUT=60
# A broker restarted after SIGKILL recovers its logs first; on a loaded machine that took more
# than a minute (the fault suite's restarts).
KAFKA_RESTART_TIMEOUT=${RENEWALS_KAFKA_RESTART_TIMEOUT:-240}

PG_BIN=/usr/lib/postgresql/15/bin
# .local/pg may be a link to a folder outside the clone (see pg_up): the postgres user is given
# the resolved path, since it may not be allowed through the clone's own parent folders.
pg_paths() {
  PG_DIR="$1"
  PG_DATA="$PG_DIR/data"
  PG_LOG="$PG_DIR/log/postgres.log"
  PG_SOCKET_DIR="$PG_DIR/sock"
}
if [[ -L $LOCAL/pg ]]; then pg_paths "$(readlink -f "$LOCAL/pg")"; else pg_paths "$LOCAL/pg"; fi

SMTP_DIR="$LOCAL/smtp"
SMTP_MAIL="$SMTP_DIR/mail"
SMTP_LOG="$SMTP_DIR/smtp.log"

PROMETHEUS_DIR="$LOCAL/prometheus"
PROMETHEUS_LOG="$PROMETHEUS_DIR/prometheus.log"

# Generated passwords (shared/local_secrets.py), mode 0600, never committed.
SECRETS="${RENEWALS_SECRETS_FILE:-$LOCAL/secrets.env}"

cd "$ROOT"

say() { printf 'infra: %s\n' "$*"; }
die() {
  printf 'infra: error: %s\n' "$*" >&2
  exit 1
}

# True when something accepts TCP connections on 127.0.0.1:<port>.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# True when none of the ports answers any more.
ports_closed() {
  local port
  for port in "$@"; do ! port_open "$port" || return 1; done
}

# Print the pid recorded in .local/run/<name>.pid when that process is alive and its command
# line contains <pattern> (so a recycled pid is not taken for ours); remove a stale pid file.
running_pid() {
  local name=$1 pattern=$2 file="$RUN/$1.pid" pid
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern"; then
    echo "$pid"
    return 0
  fi
  forget "$name"
  say "$name: removed a stale pid file (pid $pid is gone)" >&2
  return 1
}

# Beside each pid file, the ports that process was started with.
record() {
  echo "$2" >"$RUN/$1.pid"
  echo "$3" >"$RUN/$1.ports"
}
forget() { rm -f "$RUN/$1.pid" "$RUN/$1.ports"; }
recorded_ports() { cat "$RUN/$1.ports" 2>/dev/null; }

# same_ports <name> <wanted ports> <env vars>: a running component must be where the
# environment says it is, or whatever reads RENEWALS_*_PORT would look in the wrong place.
same_ports() {
  local recorded
  recorded=$(recorded_ports "$1") || return 0
  [[ $recorded == "$2" ]] ||
    die "$1 already runs on port(s) $recorded but $3 ask(s) for $2: run 'deploy/local/infra.sh down' first, or unset $3"
}

# A live process (one that died as our child stays a zombie until this script exits).
alive() {
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $stat != Z* ]]
}
gone() { ! alive "$1"; }

# wait_for <seconds> <pid> <command...>: poll the command until it succeeds. Returns 1 on
# timeout, 2 as soon as <pid> (when not empty) has died.
wait_for() {
  local seconds=$1 pid=$2 deadline
  shift 2
  deadline=$((SECONDS + seconds))
  until "$@"; do
    if [[ -n $pid ]] && gone "$pid"; then return 2; fi
    if ((SECONDS >= deadline)); then return 1; fi
    sleep 0.2
  done
}

show_log_tail() {
  local file=$1 errors
  if [[ -s $file ]]; then
    printf '%s\n' "---- last lines of ${file#"$ROOT/"} ----" >&2
    tail -n 40 "$file" >&2
    errors=$(tail -n 2000 "$file" | grep -E '(ERROR|FATAL|Caused by)' | tail -n 5 | cut -c1-300) || true
    if [[ -n $errors ]]; then
      printf '%s\n' "---- its last errors ----" "$errors" >&2
    fi
    printf '%s\n' "----" >&2
  fi
}

# Stop a process we started in its own session (setsid): SIGTERM to it (uv passes it on to its
# python), a grace period, then SIGKILL to its whole process group.
stop_group() {
  local name=$1 pid=$2 grace=$3 target=$2
  if [[ $(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ') == "$pid" ]]; then target="-$pid"; fi
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_for "$grace" "" gone "$pid"; then
    say "$name: still running after ${grace}s, sending SIGKILL"
    kill -KILL -- "$target" 2>/dev/null || true
    wait_for 5 "" gone "$pid" || die "$name: pid $pid does not die"
  fi
}

# uv: $UV when set (the Makefile's variable), else on the PATH, else the PyPI package's module.
require_uv() {
  if [[ -n ${UV:-} ]] && command -v "$UV" >/dev/null; then
    UV_CMD=("$UV")
  elif command -v uv >/dev/null; then
    UV_CMD=(uv)
  elif python3 -m uv --version >/dev/null 2>&1; then
    UV_CMD=(python3 -m uv)
  else
    die "uv not found: run deploy/local/bootstrap.sh (make install) first"
  fi
}

# ---------------------------------------------------------------------------------------------
# Secrets: one password per Kafka principal and database role, made on the first `up`.

secrets_ensure() {
  RENEWALS_SECRETS_FILE="$SECRETS" "${UV_CMD[@]}" run --frozen python -m shared.local_secrets ensure >/dev/null ||
    die "could not write the secrets file $SECRETS"
}

# secret <KEY>: one value of the secrets file.
secret() {
  local value
  value=$(sed -n "s/^$1=//p" "$SECRETS" | tail -n 1)
  [[ -n $value ]] || die "$1 missing from $SECRETS (delete the file to make a new one, with new storage)"
  echo "$value"
}

# ---------------------------------------------------------------------------------------------
# Kafka

kafka_pid() { running_pid kafka "$KAFKA_PROPS"; }

kafka_libs() {
  local stamp staging
  stamp="$(sha256sum "$HERE/kafka/pom.xml" | cut -d' ' -f1)"
  if [[ -f $KAFKA_LIBS/.pom.sha256 && $(<"$KAFKA_LIBS/.pom.sha256") == "$stamp" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found: run deploy/local/bootstrap.sh first"
  say "kafka: fetching Apache Kafka $KAFKA_VERSION jars from Maven Central (once per pom.xml)"
  staging="$KAFKA_DIR/libs.partial"
  rm -rf "$staging"
  mvn -q -B -Dstyle.color=never -f "$HERE/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$staging" -DincludeScope=runtime >"$KAFKA_LOGS/mvn.log" 2>&1 || {
    show_log_tail "$KAFKA_LOGS/mvn.log"
    die "kafka: mvn could not fetch the broker jars (log above)"
  }
  echo "$stamp" >"$staging/.pom.sha256"
  rm -rf "$KAFKA_LIBS"
  mv "$staging" "$KAFKA_LIBS"
}

# kafka_properties <template...>: the templates with their placeholders filled, on stdout.
kafka_properties() {
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
    -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@DATA_DIR@|$KAFKA_DATA|g" \
    -e "s|@BROKER_PASSWORD@|$(secret KAFKA_PASSWORD_BROKER)|g" \
    "$@"
}

kafka_config() {
  (
    umask 077 # the file holds the broker's password
    kafka_properties "$HERE/kafka/server.properties" "$HERE/kafka/security.properties" >"$KAFKA_PROPS.tmp"
  )
  mv "$KAFKA_PROPS.tmp" "$KAFKA_PROPS"
}

# The super users' SCRAM credentials go in at format time (KIP-900): the broker authenticates to
# itself, and the bootstrap as admin, before any ACL or other user exists.
kafka_scram_args() {
  local line
  SCRAM_ARGS=()
  while IFS= read -r line; do SCRAM_ARGS+=(--add-scram "$line"); done < <(
    RENEWALS_SECRETS_FILE="$SECRETS" "${UV_CMD[@]}" run --frozen python "$HERE/kafka_security.py" scram-args
  )
  ((${#SCRAM_ARGS[@]} > 0)) || die "kafka: no SCRAM credentials for the storage format"
}

# The broker's code is compiled by C1 only (issue 19). With C2 as well (the JVM's default), the
# broker kept compiling for its first hour and more: 90 s of compile time (jstat) over three
# bench runs that took it 70 s of work, and about half of Kafka's CPU in a fresh `make bench`.
# Once warm, C1's code costs the same per renewal here (0.64 vs 0.67 ms): the broker's work is
# I/O, CRC and copies. RENEWALS_KAFKA_JVM_OPTS adds options (a later -XX wins: ...=4 for C2).
read -r -a KAFKA_JVM_EXTRA <<<"${RENEWALS_KAFKA_JVM_OPTS-}"
KAFKA_JVM=(-XX:TieredStopAtLevel=1 -Djava.awt.headless=true "${KAFKA_JVM_EXTRA[@]}")
KAFKA_JAVA=(java -Xmx512m "${KAFKA_JVM[@]}"
  -Dkafka.logs.dir="$KAFKA_LOGS"
  -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties"
  -cp "$KAFKA_LIBS/*")

# Which super users' credentials a storage was formatted with (a hash, not the passwords).
scram_stamp() { printf '%s\n' "${SCRAM_ARGS[@]}" | sha256sum | cut -d' ' -f1; }

kafka_format() {
  local cluster_id
  kafka_scram_args
  if [[ -f $KAFKA_DATA/meta.properties ]]; then
    [[ $(cat "$KAFKA_DATA/.sasl-format" 2>/dev/null) == "$(scram_stamp)" ]] && return 0
    # Formatted without these super users (before the broker had users, or with another
    # secrets file): nobody could log in to it. Its data is local development data; the topics
    # are made again.
    say "kafka: the storage was formatted without the super users of ${SECRETS#"$ROOT/"}; formatting it again (its messages are dropped)"
    rm -rf "$KAFKA_DATA"
    mkdir -p "$KAFKA_DATA"
  fi
  # What `kafka.tools.StorageTool random-uuid` prints, without starting a JVM for it: 16 random
  # bytes in URL-safe base64, never starting with "-".
  cluster_id="$(python3 -c 'import base64, os
while (i := base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")).startswith("-"): pass
print(i)')"
  say "kafka: formatting storage (cluster id $cluster_id)"
  "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_PROPS" \
    "${SCRAM_ARGS[@]}" >"$KAFKA_LOGS/format.log" 2>&1 || {
    show_log_tail "$KAFKA_LOGS/format.log"
    die "kafka: storage format failed"
  }
  scram_stamp >"$KAFKA_DATA/.sasl-format"
}

# Start the broker when it is not running; kafka_wait waits for it (other things start meanwhile).
kafka_start() {
  local pid
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
  if kafka_pid >/dev/null; then
    same_ports kafka "$KAFKA_PORT $KAFKA_CONTROLLER_PORT" "RENEWALS_KAFKA_PORT/RENEWALS_KAFKA_CONTROLLER_PORT"
    return 0
  fi
  if port_open "$KAFKA_PORT"; then
    die "kafka: 127.0.0.1:$KAFKA_PORT is taken by a process this script did not start (set RENEWALS_KAFKA_PORT)"
  fi
  if port_open "$KAFKA_CONTROLLER_PORT"; then
    die "kafka: 127.0.0.1:$KAFKA_CONTROLLER_PORT is taken by a process this script did not start (set RENEWALS_KAFKA_CONTROLLER_PORT)"
  fi
  command -v java >/dev/null || die "java not found: run deploy/local/bootstrap.sh first"
  kafka_libs
  kafka_config
  kafka_format
  say "kafka: starting on 127.0.0.1:$KAFKA_PORT"
  setsid nohup "${KAFKA_JAVA[@]}" kafka.Kafka "$KAFKA_PROPS" \
    >>"$KAFKA_LOGS/kafka.out" 2>&1 </dev/null 9>&- &
  record kafka $! "$KAFKA_PORT $KAFKA_CONTROLLER_PORT"
}

kafka_wait() {
  local pid status=0
  pid=$(kafka_pid 2>/dev/null) || status=2
  ((status != 0)) || wait_for "$KAFKA_START_TIMEOUT" "$pid" port_open "$KAFKA_PORT" || status=$?
  if ((status != 0)); then
    show_log_tail "$KAFKA_LOGS/server.log"
    show_log_tail "$KAFKA_LOGS/kafka.out"
    if ((status == 2)); then
      forget kafka
      die "kafka: the broker exited during start-up (logs above)"
    fi
    die "kafka: no answer on 127.0.0.1:$KAFKA_PORT after ${KAFKA_START_TIMEOUT}s (logs above)"
  fi
}

# The users and ACLs of shared/messaging/principals.py, then the topics, both as admin.
kafka_topics() {
  RENEWALS_SECRETS_FILE="$SECRETS" "${UV_CMD[@]}" run --frozen python "$HERE/kafka_security.py" sync \
    --bootstrap "127.0.0.1:$KAFKA_PORT" --timeout "$KAFKA_START_TIMEOUT" || {
    show_log_tail "$KAFKA_LOGS/server.log"
    die "kafka: the broker refused the admin principal, or creating users and ACLs failed (logs above)"
  }
  RENEWALS_SECRETS_FILE="$SECRETS" "${UV_CMD[@]}" run --frozen python "$HERE/create_topics.py" \
    --bootstrap "127.0.0.1:$KAFKA_PORT" --timeout "$KAFKA_START_TIMEOUT" || {
    show_log_tail "$KAFKA_LOGS/server.log"
    die "kafka: the broker does not serve requests, or topic creation failed (logs above)"
  }
}

kafka_down() {
  local pid
  pid=$(kafka_pid) || {
    say "kafka: not running"
    return 0
  }
  say "kafka: stopping pid $pid"
  stop_group kafka "$pid" 20
  forget kafka
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

as_postgres() {
  if ((EUID == 0)); then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

pg_pid() {
  local pid
  if pid=$(running_pid postgres "$PG_DATA"); then
    echo "$pid"
    return 0
  fi
  # Started by us but the pid file is gone: postgres keeps its own in the data folder.
  if [[ -f $PG_DATA/postmaster.pid ]]; then
    pid=$(head -n 1 "$PG_DATA/postmaster.pid")
    if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" &&
      tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$PG_DATA"; then
      echo "$pid" >"$RUN/postgres.pid"
      echo "$pid"
      return 0
    fi
  fi
  return 1
}

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; }

pg_init() {
  [[ -f $PG_DATA/PG_VERSION ]] && return 0
  local pwfile
  say "postgres: initdb in ${PG_DATA#"$ROOT/"}"
  mkdir -p "$PG_DATA"
  chmod 700 "$PG_DATA"
  pwfile="$(mktemp)"
  secret PG_PASSWORD_POSTGRES >"$pwfile" || exit 1
  if ((EUID == 0)); then chown postgres:postgres "$PG_DATA" "$pwfile"; fi
  as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
    >"$PG_DIR/log/initdb.log" 2>&1 || {
    rm -f "$pwfile"
    show_log_tail "$PG_DIR/log/initdb.log"
    rm -rf "$PG_DATA"
    die "postgres: initdb failed (log above)"
  }
  rm -f "$pwfile"
  cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# Written by deploy/local/infra.sh: trust on the socket, passwords over TCP, 127.0.0.1 only.
# The socket is the server's user's alone (unix_socket_permissions=0700, set at every start):
# trust there is for infra.sh as that user (or root), never for another account of the machine.
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   scram-sha-256
EOF
  chmod 600 "$PG_DATA/pg_hba.conf"
  if ((EUID == 0)); then chown postgres:postgres "$PG_DATA/pg_hba.conf"; fi
}

# The project's settings (postgres_tuning.conf) copied beside postgresql.conf at every start, and
# included by it once: an edit of the file applies at the next start, even of an older cluster.
pg_tune() {
  install -m 600 "$HERE/postgres_tuning.conf" "$PG_DATA/renewals_tuning.conf"
  if ((EUID == 0)); then chown postgres:postgres "$PG_DATA/renewals_tuning.conf"; fi
  grep -q "^include_if_exists = 'renewals_tuning.conf'" "$PG_DATA/postgresql.conf" ||
    echo "include_if_exists = 'renewals_tuning.conf'" >>"$PG_DATA/postgresql.conf"
}

pg_up() {
  local pid
  [[ -x $PG_BIN/postgres ]] || die "PostgreSQL 15 is not installed: run deploy/local/bootstrap.sh first"
  if ((EUID == 0)) && [[ ! -e $PG_DIR ]] && ! as_postgres test -x "$ROOT"; then
    # The clone sits below a folder the postgres user may not enter (e.g. /root, mode 700):
    # keep the data in a folder of its own and link it from .local/pg.
    local outside old_pid
    outside="/var/lib/renewals-pg/$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
    if [[ -e $outside ]]; then
      # Left by an earlier clone at this same path, or by `rm -rf .local`: .local is gone, so
      # its database goes too (Kafka starts afresh in this .local as well).
      old_pid=$(head -n 1 "$outside/data/postmaster.pid" 2>/dev/null) || true
      if [[ $old_pid =~ ^[0-9]+$ ]] && alive "$old_pid" &&
        tr '\0' ' ' <"/proc/$old_pid/cmdline" 2>/dev/null | grep -qF -- "$outside/data"; then
        die "postgres: pid $old_pid still runs from $outside/data, left by an earlier clone at $ROOT; stop it (runuser -u postgres -- $PG_BIN/pg_ctl -D $outside/data stop) and retry"
      fi
      say "postgres: removing $outside, left by an earlier clone at this path"
      rm -rf "$outside"
    fi
    mkdir -p "$outside"
    chown postgres:postgres "$outside" /var/lib/renewals-pg
    mkdir -p "$LOCAL"
    ln -s "$outside" "$PG_DIR"
    pg_paths "$outside"
    say "postgres: $LOCAL is not reachable by the postgres user; data kept in $outside (linked from .local/pg)"
  fi
  mkdir -p "$PG_DIR/log" "$PG_SOCKET_DIR"
  if ((EUID == 0)); then
    chown postgres:postgres "$PG_DIR" "$PG_DIR/log" "$PG_SOCKET_DIR"
    as_postgres test -w "$PG_DIR" ||
      die "postgres: the postgres user cannot reach $PG_DIR; a parent folder is not searchable by others (chmod o+x on it, or clone the repository elsewhere)"
  fi
  if pid=$(pg_pid); then
    same_ports postgres "$PG_PORT" RENEWALS_PG_PORT
    pg_ready || {
      say "postgres: pid $pid is running but not answering yet, waiting"
      wait_for 60 "$pid" pg_ready || {
        show_log_tail "$PG_LOG"
        die "postgres: pid $pid does not answer on 127.0.0.1:$PG_PORT"
      }
    }
    return 0
  fi
  if port_open "$PG_PORT"; then
    die "postgres: 127.0.0.1:$PG_PORT is taken by a process this script did not start (set RENEWALS_PG_PORT)"
  fi
  pg_init
  pg_tune
  say "postgres: starting on 127.0.0.1:$PG_PORT"
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 -s \
    -o "-p $PG_PORT -k $PG_SOCKET_DIR -c unix_socket_permissions=0700 -c listen_addresses=127.0.0.1 -c max_connections=200" \
    start 9>&- || {
    show_log_tail "$PG_LOG"
    die "postgres: pg_ctl start failed (log above)"
  }
  record postgres "$(head -n 1 "$PG_DATA/postmaster.pid")" "$PG_PORT"
  wait_for 30 "" pg_ready || {
    show_log_tail "$PG_LOG"
    die "postgres: started but pg_isready gets no answer on 127.0.0.1:$PG_PORT"
  }
}

# As the superuser, on the socket (trust; only the server's own user, or root, may open it): the
# only use of it. The roles' passwords reach psql
# in its environment (db_bootstrap.sql reads them with \getenv), never on its command line.
pg_bootstrap() (
  # A subshell: the exported passwords reach psql and nothing started later.
  local key value
  for key in PG_PASSWORD_POSTGRES PG_PASSWORD_RENEWAL_SVC PG_PASSWORD_BILLING_SVC \
    PG_PASSWORD_QUOTE_SVC PG_PASSWORD_NOTIFICATION_SVC; do
    value=$(secret "$key") || exit 1
    export "$key=$value"
  done
  PGOPTIONS='-c client_min_messages=warning' "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
    -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U postgres -d postgres -f "$HERE/db_bootstrap.sql" ||
    die "postgres: deploy/local/db_bootstrap.sql failed"
)

pg_down() {
  local pid
  pid=$(pg_pid) || {
    say "postgres: not running"
    return 0
  }
  say "postgres: stopping pid $pid"
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 -s stop ||
    stop_group postgres "$pid" 20
  forget postgres
}

# ---------------------------------------------------------------------------------------------
# Dev SMTP server

# answers_or_die <name> <pid> <port> <log>: wait until a server this script started answers on
# its port; else show its log, forget it if it died, and stop.
answers_or_die() {
  local status=0
  wait_for 30 "$2" port_open "$3" || status=$?
  if ((status != 0)); then
    show_log_tail "$4"
    ((status == 2)) && forget "$1"
    die "$1: no answer on 127.0.0.1:$3 (log above)"
  fi
}

# stop_recorded <name> <pid or empty>: stop a server this script started, by its process group.
stop_recorded() {
  if [[ -z $2 ]]; then
    say "$1: not running"
    return 0
  fi
  say "$1: stopping pid $2"
  stop_group "$1" "$2" 10
  forget "$1"
}

smtp_pid() { running_pid smtp "devsmtp.py"; }

smtp_up() {
  local pid
  mkdir -p "$SMTP_MAIL"
  if pid=$(smtp_pid); then
    same_ports smtp "$SMTP_PORT" RENEWALS_SMTP_PORT
  else
    if port_open "$SMTP_PORT"; then
      die "smtp: 127.0.0.1:$SMTP_PORT is taken by a process this script did not start (set RENEWALS_SMTP_PORT)"
    fi
    say "smtp: starting on 127.0.0.1:$SMTP_PORT"
    setsid "${UV_CMD[@]}" run --frozen python deploy/local/devsmtp.py \
      --host 127.0.0.1 --port "$SMTP_PORT" --maildir .local/smtp/mail \
      >>"$SMTP_LOG" 2>&1 </dev/null 9>&- &
    pid=$!
    record smtp "$pid" "$SMTP_PORT"
  fi
  answers_or_die smtp "$pid" "$SMTP_PORT" "$SMTP_LOG"
}

smtp_down() { stop_recorded smtp "$(smtp_pid)"; }

# ---------------------------------------------------------------------------------------------
# Prometheus (Debian's package): scrapes the services `make run` starts, evaluates the alerts

prometheus_pid() { running_pid prometheus "deploy/monitoring/prometheus.yml"; }

prometheus_up() {
  local pid
  command -v prometheus >/dev/null || die "prometheus is not installed: run deploy/local/bootstrap.sh first"
  mkdir -p "$PROMETHEUS_DIR/data"
  if pid=$(prometheus_pid); then
    same_ports prometheus "$PROMETHEUS_PORT" RENEWALS_PROMETHEUS_PORT
    # The configuration or the alert rules may have changed since it started: reload them.
    kill -HUP "$pid" 2>/dev/null || true
  else
    if port_open "$PROMETHEUS_PORT"; then
      die "prometheus: 127.0.0.1:$PROMETHEUS_PORT is taken by a process this script did not start (set RENEWALS_PROMETHEUS_PORT)"
    fi
    say "prometheus: starting on 127.0.0.1:$PROMETHEUS_PORT"
    setsid prometheus --config.file=deploy/monitoring/prometheus.yml \
      --storage.tsdb.path="$PROMETHEUS_DIR/data" --storage.tsdb.retention.time=2d \
      --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
      >>"$PROMETHEUS_LOG" 2>&1 </dev/null 9>&- &
    pid=$!
    record prometheus "$pid" "$PROMETHEUS_PORT"
  fi
  answers_or_die prometheus "$pid" "$PROMETHEUS_PORT" "$PROMETHEUS_LOG"
}

prometheus_down() { stop_recorded prometheus "$(prometheus_pid)"; }

# ---------------------------------------------------------------------------------------------

table() {
  local with_state=$1 ports kafka_state pg_state smtp_state prom_state kafka_pid_ pg_pid_ smtp_pid_ prom_pid_
  kafka_pid_=$(kafka_pid) || kafka_pid_=-
  pg_pid_=$(pg_pid) || pg_pid_=-
  smtp_pid_=$(smtp_pid) || smtp_pid_=-
  prom_pid_=$(prometheus_pid) || prom_pid_=-
  # What runs is shown where it runs, even when RENEWALS_*_PORT now says otherwise.
  local KAFKA_PORT=$KAFKA_PORT KAFKA_CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT PG_PORT=$PG_PORT SMTP_PORT=$SMTP_PORT PROMETHEUS_PORT=$PROMETHEUS_PORT
  if [[ $kafka_pid_ != - ]] && ports=$(recorded_ports kafka); then
    read -r KAFKA_PORT KAFKA_CONTROLLER_PORT <<<"$ports"
  fi
  if [[ $pg_pid_ != - ]] && ports=$(recorded_ports postgres); then PG_PORT=$ports; fi
  if [[ $smtp_pid_ != - ]] && ports=$(recorded_ports smtp); then SMTP_PORT=$ports; fi
  if [[ $prom_pid_ != - ]] && ports=$(recorded_ports prometheus); then PROMETHEUS_PORT=$ports; fi
  kafka_state=$(state "$kafka_pid_" port_open "$KAFKA_PORT")
  pg_state=$(state "$pg_pid_" pg_ready)
  smtp_state=$(state "$smtp_pid_" port_open "$SMTP_PORT")
  prom_state=$(state "$prom_pid_" port_open "$PROMETHEUS_PORT")
  local fmt="  %-10s %-5s %-7s %-48s %s\n"
  if [[ $with_state != yes ]]; then fmt="  %-10s %.0s%-7s %-48s %s\n"; fi
  # shellcheck disable=SC2059  # the format is chosen just above
  {
    printf "$fmt" component state pid address log
    printf "$fmt" Kafka "$kafka_state" "$kafka_pid_" "127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT)" ".local/kafka/logs/server.log"
    printf "$fmt" PostgreSQL "$pg_state" "$pg_pid_" "postgresql://postgres@127.0.0.1:$PG_PORT/renewals" ".local/pg/log/postgres.log"
    printf "$fmt" SMTP "$smtp_state" "$smtp_pid_" "127.0.0.1:$SMTP_PORT" ".local/smtp/smtp.log (mail: .local/smtp/mail/)"
    printf "$fmt" Prometheus "$prom_state" "$prom_pid_" "http://127.0.0.1:$PROMETHEUS_PORT (targets, alerts)" ".local/prometheus/prometheus.log"
  }
}

# state <pid or -> <answer check...>: up, down, or what is odd about it.
state() {
  local pid=$1
  shift
  if [[ $pid != - ]]; then
    if "$@"; then echo up; else echo "starting/not answering"; fi
  elif "$@"; then
    echo "down (port used by another process)"
  else
    echo down
  fi
}

# One infra.sh up/down at a time. The servers are started with fd 9 closed, so that they do not
# inherit (and keep) the lock.
lock() {
  mkdir -p "$RUN"
  exec 9>"$RUN/infra.lock"
  if ! flock -n 9; then
    say "waiting for another infra.sh to finish (lock: .local/run/infra.lock)"
    flock -w 300 9 || die "another infra.sh has held .local/run/infra.lock for 5 minutes"
  fi
}

# ---------------------------------------------------------------------------------------------
# Restarts, for the fault suite: the same broker and database, down and up again.

cmd_restart_kafka() {
  local pid
  require_uv
  lock
  secrets_ensure
  pid=$(kafka_pid) || die "kafka: not running (make infra-up first)"
  say "kafka: SIGKILL pid $pid"
  kill -KILL "$pid" 2>/dev/null || true
  wait_for 20 "" gone "$pid" || die "kafka: pid $pid does not die"
  # A killed JVM's listening sockets outlive its pid for a moment (threads still exiting):
  # start again only once both ports are free, or kafka_start takes them for a stranger's.
  wait_for 30 "" ports_closed "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" ||
    die "kafka: pid $pid is gone but 127.0.0.1:$KAFKA_PORT or :$KAFKA_CONTROLLER_PORT still answers after 30s"
  forget kafka
  kafka_start
  KAFKA_START_TIMEOUT=$KAFKA_RESTART_TIMEOUT
  kafka_wait
  kafka_topics >/dev/null
  say "kafka: back on 127.0.0.1:$KAFKA_PORT"
}

cmd_restart_postgres() {
  local mode=fast pid
  [[ ${1:-} == --immediate ]] && mode=immediate
  lock
  pid=$(pg_pid) || die "postgres: not running (make infra-up first)"
  # The moment of the stop (epoch seconds): the fault suite bounds the marks it loses by it.
  say "postgres: stopping pid $pid (-m $mode) at ${EPOCHREALTIME/,/.}"
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m "$mode" -w -t 60 -s stop ||
    stop_group postgres "$pid" 20
  forget postgres
  pg_up
  say "postgres: back on 127.0.0.1:$PG_PORT"
}

# ---------------------------------------------------------------------------------------------
# A three-broker KRaft cluster (each node broker and controller) on ports of its own, beside the
# single broker: brokers on RENEWALS_FAULTS_CLUSTER_PORT (KAFKA_PORT + 2) and the next two,
# controllers on the three after. State under .local/kafka-cluster/.

CLUSTER_PORT="${RENEWALS_FAULTS_CLUSTER_PORT:-$((KAFKA_PORT + 2))}"
CLUSTER_DIR="$LOCAL/kafka-cluster"
CLUSTER_NODES=(1 2 3)

cluster_broker_port() { echo $((CLUSTER_PORT + $1 - 1)); }
cluster_controller_port() { echo $((CLUSTER_PORT + $1 + 2)); }
cluster_props() { echo "$CLUSTER_DIR/node$1/server.properties"; }
cluster_pid() { running_pid "cluster-$1" "$(cluster_props "$1")"; }
cluster_bootstrap() {
  local node list=()
  for node in "${CLUSTER_NODES[@]}"; do list+=("127.0.0.1:$(cluster_broker_port "$node")"); done
  (
    IFS=,
    echo "${list[*]}"
  )
}

cluster_config() {
  local node=$1 voters=() n
  for n in "${CLUSTER_NODES[@]}"; do voters+=("$n@127.0.0.1:$(cluster_controller_port "$n")"); done
  mkdir -p "$CLUSTER_DIR/node$node/data" "$CLUSTER_DIR/node$node/logs"
  cat >"$(cluster_props "$node")" <<EOF
# Written by deploy/local/infra.sh cluster up: node $node of 3.
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$(
    IFS=,
    echo "${voters[*]}"
  )
listeners=CLIENT://127.0.0.1:$(cluster_broker_port "$node"),CONTROLLER://127.0.0.1:$(cluster_controller_port "$node")
advertised.listeners=CLIENT://127.0.0.1:$(cluster_broker_port "$node")
controller.listener.names=CONTROLLER
inter.broker.listener.name=CLIENT
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,CLIENT:SASL_PLAINTEXT
log.dirs=$CLUSTER_DIR/node$node/data
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
auto.create.topics.enable=false
num.partitions=6
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
log.retention.hours=24
EOF
  kafka_properties "$HERE/kafka/security.properties" >>"$(cluster_props "$node")"
  chmod 600 "$(cluster_props "$node")"
}

cluster_java() {
  CLUSTER_JAVA=(java -Xmx384m "${KAFKA_JVM[@]}"
    -Dkafka.logs.dir="$CLUSTER_DIR/node$1/logs"
    -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties"
    -cp "$KAFKA_LIBS/*")
}

cluster_start_node() {
  local node=$1 port
  port=$(cluster_broker_port "$node")
  if cluster_pid "$node" >/dev/null 2>&1; then return 0; fi
  if port_open "$port"; then
    die "cluster: 127.0.0.1:$port is taken (set RENEWALS_FAULTS_CLUSTER_PORT)"
  fi
  cluster_java "$node"
  setsid nohup "${CLUSTER_JAVA[@]}" kafka.Kafka "$(cluster_props "$node")" \
    >>"$CLUSTER_DIR/node$node/logs/kafka.out" 2>&1 </dev/null 9>&- &
  record "cluster-$node" $! "$port $(cluster_controller_port "$node")"
  say "cluster: broker $node starting on 127.0.0.1:$port"
}

cluster_up() {
  local node cluster_id pid
  require_uv
  secrets_ensure
  kafka_scram_args
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS" "$CLUSTER_DIR"
  command -v java >/dev/null || die "java not found: run deploy/local/bootstrap.sh first"
  kafka_libs
  if [[ ! -f $CLUSTER_DIR/cluster.id ]]; then
    python3 -c 'import base64, os
while (i := base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")).startswith("-"): pass
print(i)' >"$CLUSTER_DIR/cluster.id"
  fi
  cluster_id=$(<"$CLUSTER_DIR/cluster.id")
  for node in "${CLUSTER_NODES[@]}"; do
    cluster_config "$node"
    if [[ -f $CLUSTER_DIR/node$node/data/meta.properties &&
      $(cat "$CLUSTER_DIR/node$node/data/.sasl-format" 2>/dev/null) != "$(scram_stamp)" ]]; then
      say "cluster: node $node was formatted without the super users of ${SECRETS#"$ROOT/"}; formatting it again"
      rm -rf "$CLUSTER_DIR/node$node/data"
      mkdir -p "$CLUSTER_DIR/node$node/data"
    fi
    if [[ ! -f $CLUSTER_DIR/node$node/data/meta.properties ]]; then
      cluster_java "$node"
      "${CLUSTER_JAVA[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
        -c "$(cluster_props "$node")" "${SCRAM_ARGS[@]}" >"$CLUSTER_DIR/node$node/logs/format.log" 2>&1 || {
        show_log_tail "$CLUSTER_DIR/node$node/logs/format.log"
        die "cluster: storage format of node $node failed"
      }
      scram_stamp >"$CLUSTER_DIR/node$node/data/.sasl-format"
    fi
    cluster_start_node "$node"
  done
  for node in "${CLUSTER_NODES[@]}"; do
    pid=$(cluster_pid "$node") || die "cluster: broker $node exited at start (see $CLUSTER_DIR/node$node/logs/)"
    wait_for "$KAFKA_START_TIMEOUT" "$pid" port_open "$(cluster_broker_port "$node")" || {
      show_log_tail "$CLUSTER_DIR/node$node/logs/server.log"
      die "cluster: broker $node does not answer"
    }
  done
  RENEWALS_SECRETS_FILE="$SECRETS" "${UV_CMD[@]}" run --frozen python "$HERE/kafka_security.py" sync \
    --bootstrap "$(cluster_bootstrap)" --timeout "$KAFKA_START_TIMEOUT" ||
    die "cluster: creating users and ACLs failed"
  RENEWALS_SECRETS_FILE="$SECRETS" "${UV_CMD[@]}" run --frozen python "$HERE/create_topics.py" --bootstrap "$(cluster_bootstrap)" \
    --replication-factor 3 --timeout "$KAFKA_START_TIMEOUT" ||
    die "cluster: topic creation failed"
  say "cluster: ready at $(cluster_bootstrap)"
}

cluster_kill() {
  local pid
  pid=$(cluster_pid "$1") || die "cluster: broker $1 is not running"
  say "cluster: SIGKILL broker $1 (pid $pid)"
  kill -KILL "$pid" 2>/dev/null || true
  wait_for 20 "" gone "$pid" || die "cluster: pid $pid does not die"
  wait_for 30 "" ports_closed "$(cluster_broker_port "$1")" "$(cluster_controller_port "$1")" ||
    die "cluster: broker $1 (pid $pid) is gone but its ports still answer after 30s"
  forget "cluster-$1"
}

cluster_down() {
  local node pid
  for node in "${CLUSTER_NODES[@]}"; do
    if pid=$(cluster_pid "$node" 2>/dev/null); then
      say "cluster: stopping broker $node (pid $pid)"
      stop_group "cluster-$node" "$pid" 20
      forget "cluster-$node"
    fi
  done
}

cluster_status() {
  local node pid state
  for node in "${CLUSTER_NODES[@]}"; do
    pid=$(cluster_pid "$node" 2>/dev/null) || pid=-
    state=$(state "$pid" port_open "$(cluster_broker_port "$node")")
    printf '  broker %s  %-5s %-7s 127.0.0.1:%s\n' "$node" "$state" "$pid" "$(cluster_broker_port "$node")"
  done
}

cmd_cluster() {
  mkdir -p "$RUN"
  case "${1:-}" in
  up) cluster_up ;;
  down) cluster_down ;;
  status) cluster_status ;;
  bootstrap) cluster_bootstrap ;;
  kill | start)
    [[ ${2:-} =~ ^[1-3]$ ]] || die "usage: $0 cluster $1 <1-3>"
    if [[ $1 == kill ]]; then
      cluster_kill "$2"
    else
      cluster_start_node "$2"
      wait_for "$KAFKA_RESTART_TIMEOUT" "" port_open "$(cluster_broker_port "$2")" ||
        die "cluster: broker $2 does not answer"
    fi
    ;;
  *) die "usage: $0 cluster up|down|status|bootstrap|kill N|start N" ;;
  esac
}


cmd_up() {
  local started=${EPOCHREALTIME/,/.}
  require_uv
  lock
  secrets_ensure
  kafka_start
  pg_up
  pg_bootstrap
  smtp_up
  prometheus_up
  kafka_wait
  kafka_topics
  say "ready in $(awk -v a="$started" -v b="${EPOCHREALTIME/,/.}" 'BEGIN { printf "%.1f", b - a }')s"
  table no
  echo "  Kafka: SASL/SCRAM-SHA-512, one principal each (shared/messaging/principals.py); PostgreSQL: one role per service"
  echo "  passwords: ${SECRETS#"$ROOT/"} (generated, mode 0600; the README's Security section says who gets which)"
}

cmd_down() {
  lock
  prometheus_down
  smtp_down
  kafka_down
  pg_down
}

cmd_status() {
  mkdir -p "$RUN"
  table yes
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
restart-kafka) cmd_restart_kafka ;;
restart-postgres) cmd_restart_postgres "${2:-}" ;;
cluster) cmd_cluster "${2:-}" "${3:-}" ;;
*)
  echo "usage: $0 up|down|status|restart-kafka|restart-postgres [--immediate]|cluster ..." >&2
  exit 2
  ;;
esac
