#!/usr/bin/env bash
# Builds the two binaries envtest needs (kube-apiserver and etcd) from their Go modules through the
# module proxy, because the usual envtest download host is not reachable from our machines. The
# result is cached outside the repo, one folder per version, and reused while it is there.
#
# Usage: hack/envtest.sh            builds if needed, prints the KUBEBUILDER_ASSETS folder
#
# How: a throwaway wrapper module requires k8s.io/kubernetes. Kubernetes' own go.mod replaces every
# k8s.io staging module with a path inside its repository, which does not exist in the module zip,
# so the wrapper replaces each of them with its published v0.X.Y. etcd is built from
# go.etcd.io/etcd/server/v3 in the same module through a three-line main.
set -euo pipefail

K8S_VERSION="${ENVTEST_K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ENVTEST_ETCD_VERSION:-3.7.3}"
CACHE_ROOT="${LPAUTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lpauth}"
DEST="$CACHE_ROOT/envtest/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"

if [[ -x "$DEST/kube-apiserver" && -x "$DEST/etcd" ]]; then
  echo "$DEST"
  exit 0
fi

log() { echo "envtest: $*" >&2; }
# One build at a time: parallel callers (make targets, test packages) wait for it, then reuse it.
mkdir -p "$CACHE_ROOT/envtest"
exec 9>"$CACHE_ROOT/envtest/.lock"
flock 9
if [[ -x "$DEST/kube-apiserver" && -x "$DEST/etcd" ]]; then
  echo "$DEST"
  exit 0
fi
staging_version="v0.${K8S_VERSION#1.}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS="-mod=mod" CGO_ENABLED=0
log "building kube-apiserver v$K8S_VERSION and etcd v$ETCD_VERSION from Go modules (about 10 minutes the first time; cached in $DEST)"

cd "$work"
go mod init lpauth.dev/envtest-build >/dev/null 2>&1
kmod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[[ -f "$kmod" ]] || { log "could not download k8s.io/kubernetes v$K8S_VERSION"; exit 1; }

# Every "k8s.io/x => ./staging/src/k8s.io/x" line becomes "k8s.io/x => k8s.io/x v0.N.M".
args=()
while read -r mod; do
  args+=("-replace=$mod=$mod@$staging_version")
done < <(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/src/.*#\1#p' "$kmod")
[[ ${#args[@]} -gt 0 ]] || { log "found no staging replacements in $kmod"; exit 1; }
go mod edit "${args[@]}"

mkdir -p etcd
cat > etcd/main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
cat > tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO

go get "k8s.io/kubernetes@v$K8S_VERSION" "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >&2
go mod tidy -e >&2 || true

# The apiserver reports its version from ldflags; without them it says v0.0.0 and clients that
# check server versions (kubectl among them) complain.
vpkg=k8s.io/component-base/version
minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
ldflags="-s -w -X $vpkg.gitVersion=v$K8S_VERSION -X $vpkg.gitMajor=${K8S_VERSION%%.*} -X $vpkg.gitMinor=$minor"
ldflags="$ldflags -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION"

mkdir -p "$work/out"
go build -trimpath -ldflags "$ldflags" -o "$work/out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver >&2
go build -trimpath -ldflags "-s -w" -o "$work/out/etcd" ./etcd >&2
"$work/out/kube-apiserver" --version >&2

mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST.tmp" && mv "$work/out" "$DEST.tmp" && rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
log "ready in $DEST"
echo "$DEST"
