#!/usr/bin/env bash
# Make a bare Debian machine ready for the project: uv, PostgreSQL 15, Java 17 and Maven,
# Prometheus, then the locked Python dependencies. Installs only what is missing; silent and quick when all is
# there (it runs before every make target).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

say() { printf 'bootstrap: %s\n' "$*"; }
die() {
  printf 'bootstrap: error: %s\n' "$*" >&2
  exit 1
}

apt_packages=()
[[ -x /usr/lib/postgresql/15/bin/postgres ]] || apt_packages+=(postgresql)
if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
  apt_packages+=(openjdk-17-jre-headless maven)
fi
# Prometheus scrapes `make run`'s services; its promtool unit-tests the alert rules in make test.
command -v promtool >/dev/null || apt_packages+=(prometheus)
# The console's browser test drives Debian's Chromium (Playwright never downloads a browser).
[[ -x /usr/bin/chromium ]] || apt_packages+=(chromium)
if ((${#apt_packages[@]})); then
  ((EUID == 0)) || die "missing ${apt_packages[*]}: run as root, or: apt-get install -y ${apt_packages[*]}"
  say "installing ${apt_packages[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

uv=(uv)
if ! command -v uv >/dev/null; then
  say "installing uv from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore uv
  hash -r
  # pyenv needs a rehash to see the new command; `python3 -m uv` works in any case.
  if command -v pyenv >/dev/null; then pyenv rehash 2>/dev/null || true; fi
  command -v uv >/dev/null || uv=(python3 -m uv)
fi

sync=("${uv[@]}" sync)
[[ -f uv.lock ]] && sync+=(--frozen)
if ! "${sync[@]}" --check --quiet 2>/dev/null; then
  say "installing the Python dependencies (${sync[*]})"
  "${sync[@]}"
fi
