#!/usr/bin/env bash
# Builds promtool (which unit-tests the alert rules in config/prometheus) from its Go module through
# the module proxy, into a cache outside the repo, one binary per version, reused while it is there.
#
# Usage: hack/promtool.sh           builds if needed, prints the binary's path
#
# Prometheus tags its Go module v0.X.Y for release 3.X.Y; `go install pkg@version` works because
# its go.mod has no replace directives.
set -euo pipefail

VERSION="${PROMTOOL_VERSION:-v0.316.0}"
CACHE_ROOT="${LPAUTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lpauth}"
DEST="$CACHE_ROOT/bin/promtool-$VERSION"

if [[ -x "$DEST" ]]; then
  echo "$DEST"
  exit 0
fi

echo "promtool: building $VERSION from github.com/prometheus/prometheus (a few minutes the first time; cached in $DEST)" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" CGO_ENABLED=0
GOBIN="$work" go install -trimpath -ldflags "-s -w" "github.com/prometheus/prometheus/cmd/promtool@$VERSION" >&2
mkdir -p "$(dirname "$DEST")"
mv "$work/promtool" "$DEST"
"$DEST" --version >&2
echo "$DEST"
