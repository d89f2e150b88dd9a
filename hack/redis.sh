#!/usr/bin/env bash
# Makes sure redis-server is installed (Debian's package) for the replay-store tests, which start
# their own server on a free loopback port. Prints the binary's path.
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "redis-server is missing: install Debian's redis-server package (the replay-store tests need it)" >&2
    exit 1
  fi
  echo "redis: installing Debian's redis-server package" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >&2
  # The package starts a system service; the tests run their own servers, so stop it.
  (service redis-server stop || systemctl stop redis-server) >/dev/null 2>&1 || true
fi
command -v redis-server
