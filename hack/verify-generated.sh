#!/usr/bin/env bash
# Fails when the generated files in the tree (CRDs, RBAC, deepcopy) differ from what controller-gen
# writes from the current API types and markers. Generates into a scratch copy, so it never
# touches the working tree.
set -euo pipefail
: "${CONTROLLER_GEN:?set CONTROLLER_GEN to the controller-gen binary (make verify-generated does)}"
top=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Copy the tracked and new files (not ignored ones) so the module builds as it is.
(cd "$top" && git ls-files -co --exclude-standard -z) | (cd "$top" && xargs -0 cp --parents -t "$scratch" 2>/dev/null || true)
cd "$scratch"
"$CONTROLLER_GEN" object:headerFile="hack/boilerplate.go.txt" paths="./..."
"$CONTROLLER_GEN" crd rbac:roleName=manager-role paths="./..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

stale=0
for dir in api config/crd/bases config/rbac; do
  # A folder neither side has (no RBAC markers yet, say) is not stale.
  [[ -e "$top/$dir" || -e "$scratch/$dir" ]] || continue
  if ! diff -ru --exclude='*_test.go' "$top/$dir" "$scratch/$dir" >"$scratch/diff.txt"; then
    echo "generated files under $dir are stale; run 'make manifests generate' and commit the result:" >&2
    head -40 "$scratch/diff.txt" >&2
    stale=1
  fi
done
exit $stale
