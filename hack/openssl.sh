#!/usr/bin/env bash
# Prints the build tags of the fastest RS256 signer this machine can build: "openssl" (libcrypto
# through cgo) when cgo and libssl-dev are available, installing Debian's libssl-dev when it is
# missing and we may; nothing (the pure-Go signer) otherwise. Messages go to stderr.
set -euo pipefail
[[ "$(go env CGO_ENABLED)" == "1" ]] || { echo "openssl signer: cgo is off; using the pure-Go signer" >&2; exit 0; }
has_headers() { echo '#include <openssl/evp.h>' | "$(go env CC)" -E -x c - >/dev/null 2>&1; }
if ! has_headers && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "openssl signer: installing Debian's libssl-dev" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libssl-dev >&2
fi
if has_headers; then
  echo openssl
else
  echo "openssl signer: libssl-dev is missing; using the pure-Go signer" >&2
fi
