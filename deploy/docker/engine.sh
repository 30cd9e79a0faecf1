#!/usr/bin/env bash
# The Docker engine the container stack and its tests need (../shared/MACHINE.md, Containers):
# Debian's docker.io, docker-compose (v1) and debootstrap, installed when missing; `dockerd`
# started without bridge or iptables (every container uses the host's network). An engine that
# already answers is left alone, and `down` stops only an engine this script started.
#
#   deploy/docker/engine.sh up       install what is missing, start the engine if none answers
#   deploy/docker/engine.sh down     stop the engine if `up` started it
#   deploy/docker/engine.sh status   whether an engine answers, and which
set -euo pipefail

STATE=/var/lib/renewals-docker # the engine is the machine's, not a clone's: its state too
PID_FILE="$STATE/dockerd.pid"
LOG_FILE="$STATE/dockerd.log"
START_TIMEOUT=60

say() { printf 'docker-engine: %s\n' "$*"; }
die() {
  printf 'docker-engine: error: %s\n' "$*" >&2
  exit 1
}

answers() { docker info >/dev/null 2>&1; }

install_missing() {
  local packages=()
  command -v dockerd >/dev/null || packages+=(docker.io)
  command -v docker-compose >/dev/null || packages+=(docker-compose)
  command -v debootstrap >/dev/null || packages+=(debootstrap)
  ((${#packages[@]})) || return 0
  ((EUID == 0)) || die "missing ${packages[*]}: run as root, or: apt-get install -y ${packages[*]}"
  say "installing ${packages[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # No recommends: nothing else of Docker's (no service units to start, no extra tools).
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  hash -r
}

# dockerd refuses to start while /var/run/docker.pid names a live process — any process: a pid
# left by an engine that was killed (a session's end) is often reused by then (seen in CI:
# "pid file found, ensure docker is not running"). An engine that no longer answers is stopped,
# and a pid file naming anything but a dockerd is removed.
SYSTEM_PID_FILES=(/var/run/docker.pid /var/run/docker/containerd/containerd.pid)

is_process() { # PID NAME: whether PID is a live NAME process
  [[ $1 =~ ^[0-9]+$ ]] && tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -q "$2"
}

clear_stale_engine() {
  local file pid name
  for file in "${SYSTEM_PID_FILES[@]}"; do
    [[ -f $file ]] || continue
    pid=$(<"$file")
    name=$(basename "$file" .pid)
    if is_process "$pid" "$name"; then
      say "a $name (pid $pid) that does not answer: stopping it"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
  done
}

our_pid() {
  local pid
  [[ -f $PID_FILE ]] || return 1
  pid=$(<"$PID_FILE")
  is_process "$pid" dockerd && echo "$pid"
}

cmd_up() {
  if command -v docker >/dev/null && answers; then
    say "an engine already answers ($(docker version --format '{{.Server.Version}}')): left alone"
    return 0
  fi
  install_missing
  clear_stale_engine
  mkdir -p "$STATE"
  say "starting dockerd (no bridge, no iptables; log $LOG_FILE)"
  # setsid: the engine outlives the make target that started it, like the local infrastructure.
  setsid nohup dockerd --iptables=false --ip6tables=false --bridge=none \
    >>"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  local deadline=$((SECONDS + START_TIMEOUT))
  until answers; do
    if ! kill -0 "$(<"$PID_FILE")" 2>/dev/null; then
      tail -n 20 "$LOG_FILE" >&2
      die "dockerd exited during start-up (log above)"
    fi
    ((SECONDS < deadline)) || die "dockerd does not answer after ${START_TIMEOUT}s; see $LOG_FILE"
    sleep 0.5
  done
  say "engine $(docker version --format '{{.Server.Version}}') ready ($(docker info --format '{{.Driver}}') storage)"
}

cmd_down() {
  local pid
  if ! pid=$(our_pid); then
    say "no engine started by this script: nothing to stop"
    return 0
  fi
  kill "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  rm -f "$PID_FILE"
  say "engine stopped"
}

cmd_status() {
  if command -v docker >/dev/null && answers; then
    local by="another process"
    our_pid >/dev/null && by="this script (pid $(our_pid))"
    say "engine $(docker version --format '{{.Server.Version}}') answers, started by $by"
  else
    say "no engine answers"
    return 1
  fi
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*) die "usage: $0 up|down|status" ;;
esac
