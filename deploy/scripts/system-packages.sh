#!/usr/bin/env bash
# What `make web`, `make dev` and `make test` need from the system besides
# Python, on Debian or Ubuntu: each command that is missing has its package
# installed with apt-get (as root, or through sudo), and Redis and RabbitMQ
# are started when nothing listens on their ports. When everything is there
# it only looks, and prints nothing.
#
#   system-packages.sh web    node and npm, for the web client's JS library
#   system-packages.sh dev    web, plus Redis and RabbitMQ listening on 6379 / 5672
#   system-packages.sh test   dev, plus what the test suite runs: Chromium (browser
#                             tests), nginx (load balancer), docker-compose (compose
#                             file), promtool (Prometheus rules), and the redis-server
#                             and rabbitmq-server programs (fault tests start private ones)
set -euo pipefail

profile=${1:-}
case "$profile" in
  web | dev | test) ;;
  *)
    echo "usage: $0 web|dev|test" >&2
    exit 2
    ;;
esac

say() { echo "system-packages: $*" >&2; }

# A user's PATH often lacks the sbin directories where nginx and rabbitmq-server live.
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
path_of() { command -v "$1" 2>/dev/null || echo "/usr/sbin/$1"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

packages=()
want() {  # want PACKAGE: queue a Debian package for installation, once
  local queued
  for queued in "${packages[@]}"; do
    [ "$queued" = "$1" ] && return 0
  done
  packages+=("$1")
}

have node || want nodejs
have npm || want npm
if [ "$profile" != web ]; then
  port_open 6379 || have redis-server || want redis-server
  port_open 5672 || have rabbitmq-server || want rabbitmq-server
fi
if [ "$profile" = test ]; then
  have redis-server || want redis-server
  have rabbitmq-server || want rabbitmq-server
  # Playwright drives Debian's Chromium at this path, not any chromium on PATH.
  [ -x /usr/bin/chromium ] || want chromium
  have nginx || want nginx
  have docker-compose || want docker-compose
  have promtool || want prometheus
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  as_root=(false)
fi

suggest() {  # suggest LINE: print the one shell command that would have done it, then fail
  case "${as_root[*]}" in
    false) say "this needs root and there is no sudo; as root, run this, then retry:" ;;
    sudo) say "that failed; run this, then retry:" && set -- "sudo sh -c '$1'" ;;
    *) say "that failed; run this, then retry:" ;;
  esac
  echo "  $1" >&2
  exit 1
}

# Recommends are left out: docker-compose would pull in a whole Docker engine and
# prometheus a node exporter, and the tests only read configuration with them.
if [ ${#packages[@]} -gt 0 ]; then
  install="apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${packages[*]}"
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing Debian packages ${packages[*]} and there is no apt-get: install their equivalents, then retry"
    exit 1
  fi
  [ "${as_root[*]}" = false ] && suggest "$install"
  say "installing ${packages[*]}"
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  if ! { "${as_root[@]}" apt-get update -qq &&
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${packages[@]}"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    suggest "$install"
  fi
fi

[ "$profile" = web ] && exit 0

wait_port() {  # wait_port PORT NAME: RabbitMQ is slow to boot
  local port=$1 name=$2
  for _ in $(seq 1 120); do
    port_open "$port" && return 0
    sleep 1
  done
  say "$name did not start listening on 127.0.0.1:$port"
  return 1
}

start() {  # start PORT NAME LINE: run shell LINE as root unless PORT already answers
  local port=$1 name=$2 line=$3
  port_open "$port" && return 0
  [ "${as_root[*]}" = false ] && suggest "$line"
  say "starting $name"
  "${as_root[@]}" sh -c "$line" || suggest "$line"
  wait_port "$port" "$name"
}

# Installing a server's package may have started it already: `start` looks again.
start 6379 Redis "mkdir -p /var/lib/redis /var/log/redis && $(path_of redis-server) \
--daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no \
--dir /var/lib/redis --logfile /var/log/redis/ci.log"
start 5672 RabbitMQ "$(path_of rabbitmq-server) -detached"
