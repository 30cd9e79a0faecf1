#!/usr/bin/env bash
# The container stack (deploy/docker-compose.yml), driven by `make up`, `make down`, `make logs`.
#
#   deploy/docker/stack.sh up            engine up, images built when missing, stack started and
#                                        every container healthy
#   deploy/docker/stack.sh demo          the demo of `make run`, from the services image, against
#                                        the container stack
#   deploy/docker/stack.sh renewals ...  the operator CLI (renewals health, topics, dlq list...)
#                                        from the services image, pointed at the stack
#   deploy/docker/stack.sh down          stop and remove the containers (the volumes stay;
#                                        `down --volumes` forgets the data too)
#   deploy/docker/stack.sh logs [svc]    follow the logs, of one service or of all
#   deploy/docker/stack.sh ps            the containers and their health
#   deploy/docker/stack.sh where         where everything listens
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# Another env file and project name run a second stack beside the first (the compose test does).
ENV_FILE="$(realpath "${RENEWALS_STACK_ENV:-$HERE/stack.env}")"
export RENEWALS_STACK_ENV="$ENV_FILE" # the containers' env_file in docker-compose.yml
PROJECT="${RENEWALS_STACK_PROJECT:-renewals}"
COMPOSE=(docker-compose --project-name "$PROJECT" --project-directory "$ROOT/deploy"
  --env-file "$ENV_FILE" --file "$ROOT/deploy/docker-compose.yml")
HEALTH_TIMEOUT=180

say() { printf 'stack: %s\n' "$*"; }
die() {
  printf 'stack: error: %s\n' "$*" >&2
  exit 1
}

# The ports of the env file (compose substitutes them, the containers get them) and the mail folder.
load_settings() {
  set -a
  # shellcheck source=stack.env
  source "$ENV_FILE"
  set +a
  export RENEWALS_MAIL_DIR="${RENEWALS_MAIL_DIR:-$ROOT/.local/docker/mail}"
  mkdir -p "$RENEWALS_MAIL_DIR"
  # The secrets file (shared/local_secrets.py), the same as `make infra-up`'s unless told, and
  # the services' own env files made from it (docker-compose.yml).
  RENEWALS_SECRETS_FILE="$(realpath -m "${RENEWALS_SECRETS_FILE:-$ROOT/.local/secrets.env}")"
  RENEWALS_STACK_SECRETS_DIR="${RENEWALS_STACK_SECRETS_DIR:-$ROOT/.local/docker/secrets-$PROJECT}"
  export RENEWALS_SECRETS_FILE RENEWALS_STACK_SECRETS_DIR
  # Compose reads every env file even to stop or list: empty ones until `up` fills them.
  (
    umask 077
    mkdir -p "$RENEWALS_STACK_SECRETS_DIR"
    for service in renewal bulk_worker billing notification quote; do
      touch "$RENEWALS_STACK_SECRETS_DIR/$service.env"
    done
  )
}

# secret <KEY>: one value of the secrets file.
secret() {
  local value
  value=$(sed -n "s/^$1=//p" "$RENEWALS_SECRETS_FILE" | tail -n 1)
  [[ -n $value ]] || die "$1 missing from $RENEWALS_SECRETS_FILE"
  echo "$value"
}

# The secrets file, made (or completed) on first start by the services image, which knows the
# principals; then one env file per service process with its own principal and role only.
prepare_secrets() {
  local dir service principal role kafka_password pg_password
  dir=$(dirname "$RENEWALS_SECRETS_FILE")
  mkdir -p "$dir"
  docker run --rm --network none -v "$dir:/secrets" \
    --env RENEWALS_SECRETS_FILE="/secrets/$(basename "$RENEWALS_SECRETS_FILE")" \
    "$RENEWALS_IMAGE_SERVICES" python -m shared.local_secrets ensure >/dev/null ||
    die "could not write the secrets file $RENEWALS_SECRETS_FILE"
  for service in renewal bulk_worker billing notification quote; do
    principal=$service role=${service}_svc
    [[ $service == bulk_worker ]] && principal=renewal role=renewal_svc
    kafka_password=$(secret "KAFKA_PASSWORD_${principal^^}")
    pg_password=$(secret "PG_PASSWORD_${role^^}")
    (
      umask 077
      printf '%s\n' "RENEWALS_KAFKA_USERNAME=$principal" "RENEWALS_KAFKA_PASSWORD=$kafka_password" \
        "RENEWALS_PG_USER=$role" "RENEWALS_PG_PASSWORD=$pg_password" \
        >"$RENEWALS_STACK_SECRETS_DIR/$service.env"
      # The services that verify signed commands (issue 16) get the signers' keys.
      if [[ $service == renewal || $service == quote ]]; then
        grep '^SIGNING_KEY_' "$RENEWALS_SECRETS_FILE" | sed 's/^/RENEWALS_/' \
          >>"$RENEWALS_STACK_SECRETS_DIR/$service.env"
      fi
    )
  done
}

# The tags of the images built from the current sources, built first when missing.
export_built_images() {
  local built line
  built=$(python3 "$HERE/images.py" build --env) || die "building the images failed (output above)"
  while IFS= read -r line; do export "${line?}"; done <<<"$built"
}

# Commands that only find the project's containers (down, logs, ps) need no image: compose
# still wants every variable of the file set.
export_no_images() {
  local name
  for name in POSTGRES KAFKA SMTP PROMETHEUS SERVICES; do export "RENEWALS_IMAGE_$name=unused"; done
}

wait_healthy() {
  local deadline=$((SECONDS + HEALTH_TIMEOUT)) waiting id state
  while :; do
    waiting=()
    for id in $("${COMPOSE[@]}" ps -q); do
      state=$(docker inspect --format '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.State.ExitCode}}' "$id")
      case "$state" in
      *" running healthy "* | *" exited - 0") ;; # healthy, or the one-shot topics job done
      *" running "*) waiting+=("${state%% *}") ;;
      *) die "container ${state%% *} is ${state#* } (see: make logs)" ;;
      esac
    done
    ((${#waiting[@]} == 0)) && return 0
    ((SECONDS < deadline)) || die "not healthy after ${HEALTH_TIMEOUT}s: ${waiting[*]//\//} (see: make logs)"
    sleep 1
  done
}

where() {
  cat <<EOF
Every container of the stack runs on the host's network, on 127.0.0.1:
  kafka          127.0.0.1:$RENEWALS_KAFKA_PORT        (controller $RENEWALS_KAFKA_CONTROLLER_PORT)
  postgres       127.0.0.1:$RENEWALS_PG_PORT        database renewals, roles <service>_svc
  smtp           127.0.0.1:$RENEWALS_SMTP_PORT        mail kept in ${RENEWALS_MAIL_DIR#"$ROOT/"}
  prometheus     http://127.0.0.1:$RENEWALS_PROMETHEUS_PORT   targets, alerts
  renewal-1      http://127.0.0.1:$RENEWALS_RENEWAL_1_HTTP_PORT/ready  /metrics
  renewal-2      http://127.0.0.1:$RENEWALS_RENEWAL_2_HTTP_PORT/ready  /metrics
  bulk-worker    http://127.0.0.1:$RENEWALS_BULK_WORKER_HTTP_PORT/ready  /metrics
  billing        http://127.0.0.1:$RENEWALS_BILLING_HTTP_PORT/ready  /metrics
  notification   http://127.0.0.1:$RENEWALS_NOTIFICATION_HTTP_PORT/ready  /metrics
  quote          http://127.0.0.1:$RENEWALS_QUOTE_HTTP_PORT/ready  /metrics
Operator commands against it: deploy/docker/stack.sh renewals health   (or topics, dlq list, tail ...)
Logs: make logs [SERVICE=billing]     Stop: make down
EOF
}

cmd_up() {
  "$HERE/engine.sh" up
  load_settings
  export_built_images
  prepare_secrets
  say "starting the containers"
  "${COMPOSE[@]}" up --detach --remove-orphans 2>&1 | sed 's/^/  /'
  wait_healthy
  say "up, every container healthy (where everything listens: $0 where)"
}

cmd_where() {
  load_settings
  where
}

# A command of the services image the running stack uses, on the host's network, with the
# stack's settings.
in_services_image() {
  load_settings
  export_no_images
  local container image tty=()
  container=$("${COMPOSE[@]}" ps -q renewal-1 2>/dev/null) || true
  [[ -n $container ]] || die "the stack is not up: make up"
  image=$(docker inspect --format '{{.Config.Image}}' "$container")
  [[ -t 0 && -t 1 ]] && tty=(--interactive --tty)
  local health="renewal-1=127.0.0.1:$RENEWALS_RENEWAL_1_HTTP_PORT"
  health+=",renewal-2=127.0.0.1:$RENEWALS_RENEWAL_2_HTTP_PORT"
  health+=",bulk_worker=127.0.0.1:$RENEWALS_BULK_WORKER_HTTP_PORT"
  health+=",billing=127.0.0.1:$RENEWALS_BILLING_HTTP_PORT"
  health+=",notification=127.0.0.1:$RENEWALS_NOTIFICATION_HTTP_PORT"
  health+=",quote=127.0.0.1:$RENEWALS_QUOTE_HTTP_PORT"
  # The operator's tools (the operator principal) and the demo (each upstream system's) read
  # the secrets file, as they do from the clone.
  docker run --rm "${tty[@]}" --network host --env-file "$ENV_FILE" \
    --volume "$RENEWALS_SECRETS_FILE:/run/secrets/renewals.env:ro" \
    --env RENEWALS_SECRETS_FILE=/run/secrets/renewals.env \
    --env RENEWALS_HEALTH_SERVICES="$health" \
    --env RENEWALS_DEMO_MAIL_DIR="${RENEWALS_MAIL_DIR#"$ROOT/"}" \
    "$image" "$@"
}

cmd_down() {
  if ! docker info >/dev/null 2>&1; then
    say "no Docker engine answers: nothing to stop"
    return 0
  fi
  load_settings
  export_no_images
  "${COMPOSE[@]}" down --remove-orphans "$@"
  # Forgetting the data forgets the services' env files too (the secrets file stays: `make run`
  # and the next `make up` use it).
  if [[ " $* " == *" --volumes "* ]]; then rm -rf "$RENEWALS_STACK_SECRETS_DIR"; fi
}

cmd_logs() {
  load_settings
  export_no_images
  "${COMPOSE[@]}" logs --follow --tail 100 "$@"
}

cmd_ps() {
  load_settings
  export_no_images
  "${COMPOSE[@]}" ps
}

action="${1:-}"
shift || true
case "$action" in
up) cmd_up ;;
demo) in_services_image python -m deploy.local.demo ;;
renewals) in_services_image renewals "$@" ;;
down) cmd_down "$@" ;;
logs) cmd_logs "$@" ;;
ps) cmd_ps ;;
where) cmd_where ;;
*) die "usage: $0 up|demo|renewals ...|down|logs [service]|ps|where" ;;
esac
