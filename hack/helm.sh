#!/usr/bin/env bash
# Builds helm (once, cached outside the repo) from its Go module through the module proxy, like
# controller-gen and kustomize, for `make helm` and the chart tests. Prints the binary's path.
set -euo pipefail
version=${HELM_VERSION:-v3.22.0}
cache=${LPAUTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lpauth}
bin="$cache/bin/helm-$version"
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$cache/bin"
# One build at a time (parallel test packages, make targets); the others wait, then reuse it.
exec 9>"$cache/bin/.helm.lock"
flock 9
if [[ ! -x "$bin" ]]; then
  echo "helm: building $version from helm.sh/helm/v3 (once)" >&2
  # Built beside its final place, then renamed: a kill mid-build never leaves half a binary.
  tmp=$(mktemp -d "$cache/bin/.helm-build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOBIN="$tmp" go install "helm.sh/helm/v3/cmd/helm@$version" >&2
  mv "$tmp/helm" "$bin"
fi
echo "$bin"
