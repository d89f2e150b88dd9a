#!/usr/bin/env bash
# Makes sure Debian's chromium is installed for the pop-out window tests, which drive it headless
# (no browser is downloaded: the package is the browser). Prints the binary's path.
set -euo pipefail
find_chromium() { command -v chromium || command -v chromium-browser || command -v google-chrome || true; }
if [[ -z "$(find_chromium)" ]]; then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium is missing: install Debian's chromium package (the pop-out window tests need it)" >&2
    exit 1
  fi
  echo "chromium: installing Debian's chromium package" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
fi
find_chromium
