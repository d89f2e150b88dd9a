#!/usr/bin/env bash
# Installs Debian's wrk for `make bench` when it is missing and we may; the bench runs without it
# (it then skips the rows measured with wrk). Messages go to stderr.
set -euo pipefail
command -v wrk >/dev/null 2>&1 && exit 0
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "bench: installing Debian's wrk" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk) >&2 ||
    echo "bench: could not install wrk; its rows are skipped" >&2
else
  echo "bench: wrk is missing (apt-get install wrk); its rows are skipped" >&2
fi
