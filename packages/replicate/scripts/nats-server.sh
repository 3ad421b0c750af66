#!/usr/bin/env bash
# Makes sure `nats-server` (the server the replication tests start) is on PATH:
# installs Debian's package when it is missing and we are root with apt-get.
# Never fails: when it cannot install, the tests fail with one line saying so.
set -u
command -v nats-server >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "nats-server is missing: installing Debian's nats-server package" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server; } >&2 ||
    echo "installing nats-server with apt-get failed" >&2
fi
exit 0
